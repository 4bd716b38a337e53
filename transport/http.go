// Package transport carries MCP to clients: stdio for desktop clients, and
// streamable HTTP plus legacy SSE on one listener for agent platforms, with
// bearer auth, Origin checks and graceful shutdown.
package transport

import (
	"cmp"
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/mark3labs/mcp-go/server"
	"golang.org/x/sync/semaphore"

	"github.com/filestage/filestage/auth"
	"github.com/filestage/filestage/config"
)

// Paths served over HTTP.
const (
	PathMCP     = "/mcp"
	PathSSE     = "/sse"
	PathMessage = "/message"
	PathHealth  = "/healthz"
	PathMetrics = "/metrics"
)

// HTTPOptions configure the HTTP transport.
type HTTPOptions struct {
	// Auth, when set, proves who calls the MCP paths; without it every
	// request is the local principal's.
	Auth *auth.Authenticator
	// AuthToken is shorthand for an Auth accepting this one token.
	AuthToken string
	// ToolScopes name the scope each tool needs, by tool name.
	ToolScopes map[string]string
	// Resources are, with OAuth, the protected resource (RFC 9728) each
	// MCP endpoint is, by path (PathMCP, PathSSE).
	Resources map[string]string
	// PublicURL is where clients reach this server (through a proxy, say):
	// its origin and its Host are allowed besides loopback ones.
	PublicURL string
	// AllowedOrigins are further browser origins allowed.
	AllowedOrigins []string
	// Routes are further handlers by ServeMux pattern, served without the
	// bearer token (the local provider's signed upload URLs).
	Routes map[string]http.Handler
	// MaxBodyBytes caps an MCP request body: mcp-go reads bodies whole,
	// so without it one request could fill the memory. Zero means 8 MiB.
	MaxBodyBytes int64
	// Stateless serves streamable HTTP without sessions, so that any
	// replica behind a load balancer can answer any request; the legacy
	// SSE endpoints, whose sessions live in one process, are turned off.
	Stateless bool
	// MaxSessions caps live sessions, streamable HTTP and SSE together;
	// zero means DefaultMaxSessions.
	MaxSessions int
	// MaxClientSessions caps one client's sessions; zero means no cap.
	MaxClientSessions int
	// MetricsHandler, when set, serves /metrics behind the same checks
	// and authentication as /mcp, to principals granted MetricsScope:
	// the metrics are the whole server's, every client's activity in them.
	MetricsHandler http.Handler
	MetricsScope   string
	// Metrics, when set, count authentication failures.
	Metrics Metrics
	Logger  *slog.Logger
}

// HTTP serves streamable HTTP at /mcp and SSE at /sse and /message.
type HTTP struct {
	mux        *http.ServeMux
	streamable *server.StreamableHTTPServer
	sse        *server.SSEServer
	sessions   *sessions
	stateless  bool
	// bodies bounds the memory of the MCP request bodies held at once.
	bodies *semaphore.Weighted

	auth       *auth.Authenticator
	toolScopes map[string]string
	// scopes are the tools' scopes, sorted.
	scopes []string
	// metadata are the RFC 9728 documents by endpoint path, served at
	// metadataURL(path), when OAuth is on.
	metadata  map[string]resourceMetadata
	publicURL string
	metrics   Metrics
	log       *slog.Logger
}

// NewHTTP builds the HTTP handler for s.
func NewHTTP(s *server.MCPServer, o HTTPOptions) *HTTP {
	origins, publicHost := o.AllowedOrigins, ""
	if u, err := url.Parse(o.PublicURL); err == nil && u.Host != "" {
		origins, publicHost = append([]string{u.Scheme + "://" + u.Host}, origins...), u.Host
	}
	opts := []server.StreamableHTTPOption{
		server.WithEndpointPath(PathMCP),
		server.WithHeartbeatInterval(30 * time.Second),
		// Clients that never send DELETE (the TypeScript SDK's close
		// does not) would otherwise keep their sessions until shutdown.
		server.WithSessionIdleTTL(SessionIdleTTL),
		server.WithStreamableHTTPLogger(o.Logger),
		// checkHost below does this, knowing the public URL's host.
		server.WithDisableLocalhostProtection(true),
		server.WithStreamableHTTPCORS(server.WithCORSAllowedOrigins(origins...)),
	}
	if o.Stateless {
		opts = append(opts,
			// No session ID is minted, and none is asked for: each
			// request gets a session of its own that ends with it, so a
			// replica that never saw the initialize can answer the call.
			server.WithStateLess(true),
			// mcp-go would register a GET stream under the empty session
			// ID, and every sessionless POST on the replica would then
			// run in that one session: one client's progress could go
			// out on another's stream. filestage sends nothing outside a
			// call's own response, so there is no stream to offer (405).
			server.WithDisableStreaming(true),
		)
	}
	h := &HTTP{mux: http.NewServeMux(), stateless: o.Stateless, auth: o.Auth, toolScopes: o.ToolScopes, metrics: o.Metrics, log: o.Logger}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	if h.auth == nil && o.AuthToken != "" {
		h.auth, _ = auth.New(auth.Options{Token: o.AuthToken})
	}
	for _, s := range o.ToolScopes {
		if !slices.Contains(h.scopes, s) {
			h.scopes = append(h.scopes, s)
		}
	}
	slices.Sort(h.scopes)
	h.sessions = newSessions(o.MaxSessions, o.MaxClientSessions, func(id string) { deleteSession(h.streamable, id) })
	if !o.Stateless {
		opts = append(opts, server.WithSessionIdManagerResolver(h.sessions))
	}
	h.streamable = server.NewStreamableHTTPServer(s, opts...)
	h.sse = server.NewSSEServer(s,
		server.WithSSEEndpoint(PathSSE),
		server.WithMessageEndpoint(PathMessage),
		server.WithKeepAlive(true),
		server.WithSSEDisableLocalhostProtection(true),
		// Without a CORS list mcp-go answers SSE with Allow-Origin: *.
		server.WithSSECORS(server.WithCORSAllowedOrigins(origins...)),
		server.WithSessionIDGenerator(h.sessions.generateSSE),
	)
	maxBody := o.MaxBodyBytes
	if maxBody <= 0 {
		maxBody = 8 << 20
	}
	h.bodies = semaphore.NewWeighted(bodyMemory(maxBody))
	guard := func(next http.Handler) http.Handler {
		return checkHost(publicHost, checkOrigin(origins, h.authenticate(limitBody(maxBody, next))))
	}
	if h.auth != nil && h.auth.OAuth != nil {
		// RFC 9728 section 3.1: the metadata of the resource at /mcp is at
		// the well-known path with /mcp appended, and /sse's with /sse
		// (clients check that a resource is the endpoint they use); the
		// bare one serves clients that look there.
		h.publicURL = strings.TrimSuffix(o.PublicURL, "/")
		h.metadata = map[string]resourceMetadata{}
		for _, path := range []string{PathMCP, PathSSE} {
			h.metadata[path] = resourceMetadata{
				Resource:               cmp.Or(o.Resources[path], h.publicURL+path),
				AuthorizationServers:   h.auth.OAuth.Issuers(),
				ScopesSupported:        h.scopes,
				BearerMethodsSupported: []string{"header"},
				ResourceName:           "filestage",
			}
			h.mux.HandleFunc(PathResourceMetadata+path, h.serveResourceMetadata(h.metadata[path]))
		}
		h.mux.HandleFunc(PathResourceMetadata, h.serveResourceMetadata(h.metadata[PathMCP]))
	}
	streamable := h.inspect(h.streamable, true)
	if o.Stateless {
		streamable = noStreamWhenStateless(streamable)
	}
	h.mux.Handle(PathMCP, guard(streamable))
	sse := h.limitSSE(h.inspect(h.sse, false))
	if o.Stateless {
		// An SSE session is a stream held by one replica, which every
		// /message POST must reach: behind a load balancer without
		// affinity most would land elsewhere and fail at random. Refusing
		// at once, saying why, beats failing half of the calls.
		sse = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			http.Error(w, "the legacy SSE transport is off in --stateless mode (its sessions live in one replica): use streamable HTTP at "+PathMCP, http.StatusNotFound)
		})
		if o.Logger != nil {
			o.Logger.Info("stateless streamable HTTP: no sessions, any replica answers any request; SSE at " + PathSSE + " is off")
		}
	}
	h.mux.Handle(PathSSE, guard(sse))
	h.mux.Handle(PathMessage, guard(sse))
	if o.MetricsHandler != nil {
		h.mux.Handle("GET "+PathMetrics, guard(h.requireScope(o.MetricsScope, o.MetricsHandler)))
	}
	h.mux.HandleFunc("GET "+PathHealth, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"status":"ok"}` + "\n"))
	})
	for pattern, handler := range o.Routes {
		h.mux.Handle(pattern, handler)
	}
	return h
}

// noStreamWhenStateless answers a GET on /mcp itself: without sessions
// there is no stream of server-initiated messages to offer, and the
// transport's specification says to answer 405. Every client asks after
// every initialize; mcp-go would answer without an Allow header and log
// a line at info each time, after the caller was authenticated.
func noStreamWhenStateless(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet {
			next.ServeHTTP(w, r)
			return
		}
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "no stream to open: this server is stateless (--stateless); POST each message to "+PathMCP, http.StatusMethodNotAllowed)
	})
}

func (h *HTTP) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

// sseFlushGrace is how long CloseSessions lets SSE streams write answers
// already queued: mcp-go queues an SSE answer after the tool handler
// returns, and a closed session drops what its stream has not yet written.
const sseFlushGrace = 500 * time.Millisecond

// CloseSessions ends every MCP session, which ends their long-lived streams.
func (h *HTTP) CloseSessions(ctx context.Context) {
	// Shutdown, not CloseSessions: it also stops the idle-session sweeper,
	// a goroutine that would outlive the server.
	h.sessions.close()
	h.streamable.Shutdown(ctx)
	select {
	case <-time.After(sseFlushGrace):
	case <-ctx.Done():
	}
	h.sse.CloseSessions()
}

// limitBody refuses request bodies over max bytes: at once when they say
// so, else when reading reaches the cap.
func limitBody(max int64, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > max {
			http.Error(w, "request body too large: the limit is "+strconv.FormatInt(max, 10)+" bytes; stage large files by URL", http.StatusRequestEntityTooLarge)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, max)
		next.ServeHTTP(w, r)
	})
}

// checkHost refuses requests that arrive on a loopback connection naming a
// host that is neither loopback nor the public URL's: a page whose name was
// rebound to 127.0.0.1 (DNS rebinding) must not reach a local server.
func checkHost(publicHost string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		local, _ := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
		if local != nil && config.IsLoopback(local.String()) && !config.IsLoopback(r.Host) && !strings.EqualFold(r.Host, publicHost) {
			refusing(r.Context(), "host")
			http.Error(w, "forbidden: Host "+r.Host+" is not this server's (see --public-url)", http.StatusForbidden)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// checkOrigin refuses browser requests from origins that are neither
// loopback nor allowed, as the MCP transport rules ask; requests without an
// Origin header (non-browser clients) pass.
func checkOrigin(allowed []string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if origin := r.Header.Get("Origin"); origin != "" && !originAllowed(origin, allowed) {
			refusing(r.Context(), "origin")
			http.Error(w, "forbidden: origin "+origin+" is not allowed (see --allowed-origins)", http.StatusForbidden)
			return
		}
		next.ServeHTTP(w, r)
	})
}

func originAllowed(origin string, allowed []string) bool {
	for _, a := range allowed {
		if strings.EqualFold(origin, a) {
			return true
		}
	}
	u, err := url.Parse(origin)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return false
	}
	return config.IsLoopback(u.Host)
}

// cancelGrace is how long calls cancelled at the shutdown deadline get to
// clean up.
const cancelGrace = 5 * time.Second

// DefaultDrainTimeout is how long tool calls in flight may finish at
// shutdown when ServeOptions say nothing.
const DefaultDrainTimeout = 30 * time.Second

// ServeOptions say how Serve shuts down and what it bounds.
type ServeOptions struct {
	// Drain, when set, lets tool calls in flight finish at shutdown, for
	// up to DrainTimeout (zero: DefaultDrainTimeout); then they are
	// cancelled and get cancelGrace more.
	Drain        *Drain
	DrainTimeout time.Duration
	// CloseSessions, when set, ends the MCP sessions so their streams end.
	CloseSessions func(context.Context)
	// MaxConnections caps open connections; zero means MaxConnectionsFor().
	MaxConnections int
	// Metrics, when set, count what is refused, as the log line does.
	Metrics Metrics
	Logger  *slog.Logger
	// rate is the request body rate floor; zero means MinBodyRate after
	// bodyGrace. Tests shorten it.
	rate bodyRate
}

// Serve serves h on ln until ctx ends, then shuts down gracefully: it stops
// accepting, lets tool calls in flight finish (drain), closes the sessions
// so their streams end, and waits for handlers to return. Connections are
// capped, request bodies must keep arriving, and a refused request's
// connection is released at once.
func Serve(ctx context.Context, ln net.Listener, h http.Handler, o ServeOptions) error {
	log := o.Logger
	refused := newRefusals(log)
	refused.metrics = o.Metrics
	defer refused.flush()
	maxConns := o.MaxConnections
	if maxConns <= 0 {
		maxConns = MaxConnectionsFor()
	}
	limited := newConnLimit(ln, maxConns, refused)
	if o.rate == (bodyRate{}) {
		o.rate = bodyRate{grace: bodyGrace, min: MinBodyRate, credit: maxBodyCredit}
	}
	srv := &http.Server{
		Handler:           accessLog(log, bounded(h, o.rate, refused)),
		ReadHeaderTimeout: 10 * time.Second,
		// Idle keep-alive connections are not held forever. No Read or
		// WriteTimeout: they would cut long uploads and SSE streams;
		// bodies have a rate floor instead (bounded).
		IdleTimeout:    2 * time.Minute,
		MaxHeaderBytes: 64 << 10,
		ConnState:      limited.track,
		ErrorLog:       slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(limited) }()
	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down", "addr", ln.Addr().String())
	base := context.WithoutCancel(ctx)
	drainTimeout := cmp.Or(o.DrainTimeout, DefaultDrainTimeout)
	dctx, cancelDrain := context.WithTimeout(base, drainTimeout)
	defer cancelDrain()
	// The connections get the drain and the cancelled calls' grace after
	// it: a call cancelled at the deadline still answers, and its
	// connection then closes in time for a clean exit.
	sctx, cancel := context.WithTimeout(base, drainTimeout+cancelGrace)
	defer cancel()
	shut := make(chan error, 1)
	go func() { shut <- srv.Shutdown(sctx) }()
	if o.Drain != nil {
		if err := o.Drain.Wait(dctx); err != nil {
			// Cancelled calls remove their temporary files and abort
			// uploads in parts: give them a moment to.
			log.Warn("tool calls still running at shutdown deadline; cancelling them")
			o.Drain.CancelAll()
			o.Drain.Wait(sctx)
		}
	}
	if o.CloseSessions != nil {
		o.CloseSessions(sctx)
	}
	err := <-shut
	if err != nil {
		srv.Close()
	}
	if e := <-served; !errors.Is(e, http.ErrServerClosed) {
		err = errors.Join(err, e)
	}
	return err
}

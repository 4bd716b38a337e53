// Package telemetry is what filestage tells an operator beyond its logs.
//
// Its Prometheus metrics (metrics.go) are the OpenTelemetry MCP semantic
// conventions' server operation and session durations, taken from mcp-go's
// hooks, and filestage's own counters (bytes fetched and stored, tool
// outcomes, provider attempts, refusals), gauges (calls in flight, spool
// bytes, sessions) and the Go runtime and process collectors. They live in
// the registry given to NewMetrics: there is no global state. The packages
// that count (tools, transport, providers) define the small interfaces or
// hooks they call, and the words of their labels, which Metrics
// implements and uses: none of them imports Prometheus or this package.
package telemetry

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"reflect"
	"strconv"
	"sync"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/filestage/filestage/providers"
	"github.com/filestage/filestage/tools"
	"github.com/filestage/filestage/transport"
)

// authReasons are the transport's reasons of AuthFailed, whose series
// start at zero.
var authReasons = []string{transport.AuthMissingToken, transport.AuthInvalidToken, transport.AuthInsufficientScope, transport.AuthUnavailable}

// ErrorOther is error_type when a failure's kind is not known, and
// gen_ai_tool_name for a tool the server does not have (as the OpenTelemetry
// conventions' _OTHER): label values never come from what a client made up.
const ErrorOther = "_OTHER"

// ToolError is error_type of a tools/call answered with isError.
const ToolError = "tool_error"

// operationBuckets are the OpenTelemetry MCP conventions' advice for
// mcp.server.operation.duration, in seconds.
var operationBuckets = []float64{0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 30, 60, 120, 300}

// sessionBuckets extend them to the hours a session may last.
var sessionBuckets = []float64{0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 900, 1800, 3600, 7200, 14400}

// MetricsOptions say what NewMetrics labels and registers.
type MetricsOptions struct {
	// Provider is the storage provider's name, the provider label.
	Provider string
	// NoRuntime leaves out the Go runtime and process collectors (tests
	// that compare whole expositions).
	NoRuntime bool
}

// Metrics are filestage's series, registered in one registry. Its methods
// are safe for concurrent use and cheap: counters are looked up by label
// once per call, never per byte.
type Metrics struct {
	reg      *prometheus.Registry
	provider string

	operations *prometheus.HistogramVec
	sessions   prometheus.Histogram
	fetched    *prometheus.CounterVec
	stored     prometheus.Counter
	toolCalls  *prometheus.CounterVec
	inFlight   *prometheus.GaugeVec
	attempts   *prometheus.CounterVec
	refusals   *prometheus.CounterVec
	authFails  *prometheus.CounterVec

	fetchedHTTP, fetchedFile, fetchedData prometheus.Counter

	// started holds when each MCP request in flight began, by the
	// request's own message (see requestKey); opened when each session did.
	started sync.Map
	opened  sync.Map
}

// NewMetrics registers filestage's series in reg.
func NewMetrics(reg *prometheus.Registry, o MetricsOptions) *Metrics {
	m := &Metrics{reg: reg, provider: o.Provider}
	m.operations = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "mcp_server_operation_duration_seconds",
		Help:    "Time the server took to answer an MCP request (OpenTelemetry mcp.server.operation.duration): mcp_method_name, gen_ai_tool_name for tools/call, error_type empty on success, else the JSON-RPC error code or tool_error.",
		Buckets: operationBuckets,
	}, []string{"mcp_method_name", "gen_ai_tool_name", "error_type"})
	m.sessions = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "mcp_server_session_duration_seconds",
		Help:    "How long MCP sessions lasted, from registration to end (OpenTelemetry mcp.server.session.duration).",
		Buckets: sessionBuckets,
	})
	m.fetched = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "filestage_source_fetched_bytes_total",
		Help: "Bytes read from sources by stage calls, by source kind (http, file, data); a failed call counts what it read.",
	}, []string{"kind"})
	stored := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "filestage_provider_stored_bytes_total",
		Help: "Bytes stage calls and user uploads stored with the provider (none for bytes it already held).",
	}, []string{"provider"})
	m.toolCalls = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "filestage_tool_calls_total",
		Help: "Tool calls by tool and outcome: ok, or the tool error's slug (BUSY, SOURCE_REFUSED, ...).",
	}, []string{"tool", "outcome"})
	m.inFlight = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "filestage_tool_calls_in_flight",
		Help: "Tool calls running now, by tool.",
	}, []string{"tool"})
	m.attempts = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "filestage_provider_attempts_total",
		Help: "HTTP attempts of the provider client, by provider, op (api or upload) and outcome: ok, retry (failed and made again) or error (failed, given up).",
	}, []string{"provider", "op", "outcome"})
	m.refusals = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "filestage_http_refusals_total",
		Help: "Connections and requests the HTTP listener refused, by reason (max_connections, slow_body, or the answer's status such as unauthorized or too_many_requests): the counts of the 'refused connections and requests' log line.",
	}, []string{"reason"})
	m.authFails = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "filestage_auth_failures_total",
		Help: "Requests refused by authentication, by reason: missing_token and invalid_token (401), insufficient_scope (403), unavailable (the token could not be checked: 503).",
	}, []string{"reason"})
	reg.MustRegister(m.operations, m.sessions, m.fetched, stored, m.toolCalls, m.inFlight, m.attempts, m.refusals, m.authFails)
	m.stored = stored.WithLabelValues(o.Provider)
	m.fetchedHTTP = m.fetched.WithLabelValues(tools.SourceHTTP)
	m.fetchedFile = m.fetched.WithLabelValues(tools.SourceFile)
	m.fetchedData = m.fetched.WithLabelValues(tools.SourceData)
	for _, op := range []string{providers.OpAPI, providers.OpUpload} {
		for _, outcome := range []string{providers.AttemptOK, providers.AttemptRetry, providers.AttemptError} {
			m.attempts.WithLabelValues(o.Provider, op, outcome)
		}
	}
	for _, r := range authReasons {
		m.authFails.WithLabelValues(r)
	}
	if !o.NoRuntime {
		reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	return m
}

// Handler serves the exposition of the registry.
func (m *Metrics) Handler() http.Handler {
	return promhttp.InstrumentMetricHandler(m.reg, promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		// A scrape is cheap, but not free: a flood waits in line.
		MaxRequestsInFlight: 4,
		Timeout:             10 * time.Second,
	}))
}

// Tools are initialised at zero for each tool, so that a rate has a start.
func (m *Metrics) Tools(names ...string) {
	for _, n := range names {
		m.toolCalls.WithLabelValues(n, tools.OutcomeOK)
		m.inFlight.WithLabelValues(n)
	}
}

// CallStarted counts a tool call in flight (tools.Metrics).
func (m *Metrics) CallStarted(tool string) { m.inFlight.WithLabelValues(tool).Inc() }

// CallEnded ends it with its outcome: tools.OutcomeOK or the tool error's slug.
func (m *Metrics) CallEnded(tool, outcome string) {
	m.inFlight.WithLabelValues(tool).Dec()
	m.toolCalls.WithLabelValues(tool, outcome).Inc()
}

// Fetched counts n bytes read from a source of kind tools.SourceHTTP, tools.SourceFile
// or tools.SourceData (tools.Metrics); one call per stage, not per read.
func (m *Metrics) Fetched(kind string, n int64) {
	var c prometheus.Counter
	switch kind {
	case tools.SourceHTTP:
		c = m.fetchedHTTP
	case tools.SourceFile:
		c = m.fetchedFile
	case tools.SourceData:
		c = m.fetchedData
	default:
		c = m.fetched.WithLabelValues(kind)
	}
	if n > 0 {
		c.Add(float64(n))
	}
}

// Stored counts n bytes the provider stored (tools.Metrics).
func (m *Metrics) Stored(n int64) {
	if n > 0 {
		m.stored.Add(float64(n))
	}
}

// ProviderAttempt is the provider client's hook: one attempt of op
// (providers.OpAPI or OpUpload) ended with outcome.
func (m *Metrics) ProviderAttempt(op, outcome string) {
	m.attempts.WithLabelValues(m.provider, op, outcome).Inc()
}

// Refused counts a refused connection or request (transport.Metrics).
func (m *Metrics) Refused(reason string) { m.refusals.WithLabelValues(reason).Inc() }

// AuthFailed counts a request authentication refused (transport.Metrics).
func (m *Metrics) AuthFailed(reason string) { m.authFails.WithLabelValues(reason).Inc() }

// WatchSpool reports the spool's bytes in use and its budget, read at each
// scrape.
func (m *Metrics) WatchSpool(inUse, limit func() int64) {
	m.reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "filestage_spool_bytes_in_use",
			Help: "Disk reserved by the temporary files of stage calls and received uploads (--spool-budget).",
		}, func() float64 { return float64(inUse()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "filestage_spool_budget_bytes",
			Help: "The spool budget: the most disk temporary files may use at once.",
		}, func() float64 { return float64(limit()) }),
	)
}

// WatchSessions reports the transport's live sessions, read at each scrape.
func (m *Metrics) WatchSessions(count func() int) {
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "filestage_sessions_open",
		Help: "Live MCP sessions over HTTP, streamable HTTP and SSE together (--max-sessions).",
	}, func() float64 { return float64(count()) }))
}

// Instrument adds the MCP operation and session hooks to srv's hooks,
// creating them when it has none: the hooks already there (the drain's,
// the resources') stay. Call it once srv has its tools: a tools/call of any
// other name is counted as ErrorOther, and each tool's series start at zero.
func (m *Metrics) Instrument(srv *server.MCPServer) {
	hooks := srv.GetHooks()
	if hooks == nil {
		hooks = &server.Hooks{}
		server.WithHooks(hooks)(srv)
	}
	known := map[string]bool{}
	for name := range srv.ListTools() {
		known[name] = true
		m.Tools(name)
	}
	hooks.AddBeforeAny(func(ctx context.Context, id any, method mcp.MCPMethod, message any) {
		m.started.Store(requestKey(ctx, id, message), time.Now())
	})
	hooks.AddOnSuccess(func(ctx context.Context, id any, method mcp.MCPMethod, message any, result any) {
		errType := ""
		if isToolError(result) {
			errType = ToolError
		}
		m.observe(ctx, id, method, message, known, errType)
	})
	hooks.AddOnError(func(ctx context.Context, id any, method mcp.MCPMethod, message any, err error) {
		m.observe(ctx, id, method, message, known, errorType(err))
	})
	hooks.AddOnRegisterSession(func(_ context.Context, s server.ClientSession) {
		m.opened.Store(s.SessionID(), time.Now())
	})
	hooks.AddOnUnregisterSession(func(_ context.Context, s server.ClientSession) {
		if t, ok := m.opened.LoadAndDelete(s.SessionID()); ok {
			m.sessions.Observe(time.Since(t.(time.Time)).Seconds())
		}
	})
}

func (m *Metrics) observe(ctx context.Context, id any, method mcp.MCPMethod, message any, known map[string]bool, errType string) {
	// An error mcp-go raises before the method's handler (a message it
	// cannot parse) has no start: there is no duration to tell.
	t, ok := m.started.LoadAndDelete(requestKey(ctx, id, message))
	if !ok {
		return
	}
	tool := ""
	if method == mcp.MethodToolsCall {
		tool = ErrorOther
		if req, ok := message.(*mcp.CallToolRequest); ok && known[req.Params.Name] {
			tool = req.Params.Name
		}
	}
	m.operations.WithLabelValues(string(method), tool, errType).Observe(time.Since(t.(time.Time)).Seconds())
}

// sessionRequest keys a request by its session and id, when its message
// cannot key it.
type sessionRequest struct {
	session string
	id      any
}

// requestKey identifies one request from its before hook to its success or
// error hook. mcp-go hands both the same pointer to the request it decoded,
// which no other request in flight shares, even when two clients (or two
// sessionless requests) use the same id; the session and id do otherwise.
func requestKey(ctx context.Context, id any, message any) any {
	if message != nil && reflect.TypeOf(message).Kind() == reflect.Pointer {
		return message
	}
	k := sessionRequest{id: id}
	if s := server.ClientSessionFromContext(ctx); s != nil {
		k.session = s.SessionID()
	}
	if id != nil && !reflect.TypeOf(id).Comparable() {
		k.id = nil
	}
	return k
}

func isToolError(result any) bool {
	switch r := result.(type) {
	case *mcp.CallToolResult:
		return r != nil && r.IsError
	case mcp.CallToolResult:
		return r.IsError
	}
	return false
}

// errorType is a JSON-RPC failure's code, as error.type.
func errorType(err error) string {
	var rpc interface{ ToJSONRPCError() mcp.JSONRPCError }
	if errors.As(err, &rpc) {
		return strconv.Itoa(rpc.ToJSONRPCError().Error.Code)
	}
	return ErrorOther
}

// DebugMux is what --metrics-listen serves: the exposition h at /metrics
// and, with profiles, Go's net/http/pprof at /debug/pprof/ (on this
// listener of its own only: a profile names code paths and costs CPU).
// Not the command line (/debug/pprof/cmdline), which may hold a token
// given as a flag. Anything else is 404.
func DebugMux(h http.Handler, profiles bool) *http.ServeMux {
	mux := http.NewServeMux()
	mux.Handle("GET "+transport.PathMetrics, h)
	if profiles {
		mux.HandleFunc("GET /debug/pprof/", pprof.Index)
		mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	}
	return mux
}

// ServeMetrics serves h (a DebugMux) on ln, without authentication, until
// ctx ends: --metrics-listen. A profile may take up to its write timeout,
// 30 s.
func ServeMetrics(ctx context.Context, ln net.Listener, h http.Handler, log *slog.Logger) error {
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	err := srv.Shutdown(sctx)
	if e := <-served; !errors.Is(e, http.ErrServerClosed) {
		err = errors.Join(err, e)
	}
	return err
}

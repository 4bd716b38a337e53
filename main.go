// Command filestage is an MCP server that stages files where connector
// platforms can attach them. main wires config → provider → tools →
// transport and nothing else.
package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/mark3labs/mcp-go/server"
	"go.opentelemetry.io/otel"

	"github.com/filestage/filestage/auth"
	"github.com/filestage/filestage/cli"
	"github.com/filestage/filestage/config"
	"github.com/filestage/filestage/providers"
	"github.com/filestage/filestage/providers/alloy"
	"github.com/filestage/filestage/providers/composio"
	"github.com/filestage/filestage/providers/local"
	"github.com/filestage/filestage/providers/quant"
	"github.com/filestage/filestage/providers/recoup"
	"github.com/filestage/filestage/providers/s3"
	"github.com/filestage/filestage/schema"
	"github.com/filestage/filestage/source"
	"github.com/filestage/filestage/spool"
	"github.com/filestage/filestage/telemetry"
	"github.com/filestage/filestage/tools"
	"github.com/filestage/filestage/transport"
	"github.com/filestage/filestage/upload"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.Getenv, nil))
}

// run is the whole program; ready, when set, learns the listener's address.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string, ready func(net.Addr)) int {
	cfg, err := config.Parse(args, getenv)
	switch {
	case errors.Is(err, config.ErrHelp):
		fmt.Fprint(stdout, config.Usage(cfg.Command))
		return 0
	case err != nil:
		fmt.Fprintf(stderr, "filestage: %v\nRun 'filestage --help' for usage.\n", err)
		return 2
	case cfg.Command == config.CmdVersion:
		fmt.Fprintln(stdout, "filestage", thisVersion())
		return 0
	case cfg.Command == config.CmdCompletion:
		script, _ := config.Completion(cfg.Shell) // Parse checked the shell
		fmt.Fprint(stdout, script)
		return 0
	case cfg.Command == config.CmdTokenNew:
		token, line, err := auth.NewToken(cfg.TokenName, cfg.TokenScopes)
		if err != nil {
			fmt.Fprintf(stderr, "filestage: %v\n", err)
			return 2
		}
		fmt.Fprintf(stdout, "%s\n\nThe token above is shown once: give it to %s. filestage keeps only its hash.\nAdd this line to the tokens file (--tokens-file), then send filestage SIGHUP:\n\n%s\n", token, cfg.TokenName, line)
		return 0
	case cfg.Command == config.CmdHealth:
		target := cfg.HealthURL
		if target == "" {
			target = config.LocalURL(cmp.Or(cfg.Listen, config.DefaultHTTPListen))
		}
		if err := cli.Health(ctx, target, stdout); err != nil {
			fmt.Fprintf(stderr, "filestage: %v\n", err)
			return 1
		}
		return 0
	}
	log := newLogger(stderr, cfg)
	if cfg.Command == config.CmdLs || cfg.Command == config.CmdRm || cfg.Command == config.CmdGC {
		if err := storeCommand(ctx, cfg, stdout, stderr, log); err != nil {
			if !errors.Is(err, cli.ErrFailed) {
				fmt.Fprintf(stderr, "filestage: %v\n", err)
			}
			return 1
		}
		return 0
	}
	switch err := serve(ctx, cfg, stdin, stdout, stderr, getenv, log, ready); {
	case errors.Is(err, cli.ErrFailed):
		return 1
	case err != nil && (cfg.Command != config.CmdServe || errors.As(err, new(startError))):
		fmt.Fprintf(stderr, "filestage: %v\n", err)
		return 1
	case err != nil:
		log.Error("filestage stopped", "err", err)
		return 1
	}
	return 0
}

func serve(ctx context.Context, cfg config.Config, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string, log *slog.Logger, ready func(net.Addr)) (err error) {
	// A failure before serving begins is the operator's to fix: run
	// prints it as one plain line, not as a log record.
	serving := false
	defer func() {
		if err != nil && !serving {
			err = startError{err}
		}
	}()
	if err := prepareDataDir(cfg.DataDir); err != nil {
		return err
	}
	ver := thisVersion()
	// "(devel)" is no token for a User-Agent.
	short := strings.Trim(ver.version, "()")
	// A command serves nothing: its upload links name the HTTP server a
	// filestage on the same data directory runs.
	var ln net.Listener
	publicURL := cfg.PublicURL
	if cfg.Command == config.CmdServe {
		var err error
		if ln, err = net.Listen("tcp", cfg.Listen); err != nil {
			return listenError("listen", "FILESTAGE_LISTEN", cfg.Listen, err)
		}
		defer ln.Close()
		if publicURL == "" {
			publicURL = "http://" + ln.Addr().String()
		}
	} else if publicURL == "" {
		publicURL = config.LocalURL(cfg.Listen)
	}

	spoolDir := filepath.Join(cfg.DataDir, "tmp")
	if err := os.MkdirAll(spoolDir, 0o700); err != nil {
		return dataDirError(cfg.DataDir, err)
	}
	if n, _ := spool.Sweep(spoolDir, 24*time.Hour); n > 0 {
		log.Info("removed temporary files a crash left behind", "count", n, "dir", spoolDir)
	}
	budget := cfg.SpoolBudget
	if budget == 0 {
		var err error
		if budget, err = spool.DefaultBudget(spoolDir); err != nil {
			return err
		}
	}
	spoolBudget := spool.NewBudget(budget)
	metrics := newMetrics(cfg, spoolBudget)

	registry := newRegistry()
	if !slices.Contains(registry.Names(), cfg.Provider) {
		return fmt.Errorf("--provider %q is not a provider: choose one of %s", cfg.Provider, strings.Join(registry.Names(), ", "))
	}
	provider, err := registry.Open(ctx, cfg.Provider, providers.Settings{
		DataDir: cfg.DataDir, PublicURL: publicURL, MaxBytes: cfg.MaxBytes, Getenv: getenv, Logger: log,
		HTTP: countAttempts(providers.NewClient("filestage/"+short), metrics), Spool: spoolBudget,
		Retention: cfg.Retention, DownloadTTL: cfg.DownloadURLTTL,
	})
	if err != nil {
		return err
	}
	if c, ok := provider.(io.Closer); ok {
		defer c.Close()
	}
	if r, ok := provider.(providers.Runner); ok && cfg.Command == config.CmdServe {
		rctx, stop := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { defer close(done); r.Run(rctx) }()
		// Before the provider closes: defers run in reverse.
		defer func() { stop(); <-done }()
	}
	sources, err := source.New(source.Options{
		AllowPrivate: cfg.AllowPrivateURLs, MaxBytes: cfg.MaxBytes, Timeout: cfg.FetchTimeout, UserAgent: "filestage/" + short,
		FileRoots: cfg.FileRoots, MaxInlineBytes: cfg.MaxInlineBytes, DenyCIDRs: cfg.DenyCIDRs,
		// The signing key, the objects and other calls' spools.
		DenyDirs: []string{cfg.DataDir},
	})
	if err != nil {
		return err
	}
	if roots := sources.RootsContaining(cfg.DataDir); len(roots) > 0 {
		log.Warn("a file root contains the data directory, or lies inside it; files in the data directory are never staged", "roots", roots, "data_dir", cfg.DataDir)
	}
	stages := cfg.MaxConcurrentStages
	if stages == 0 {
		stages = tools.DefaultConcurrentStages()
	}
	authn, resources, err := authenticator(cfg, publicURL)
	if err != nil {
		return err
	}
	clientStages, clientSessions := cfg.ClientMaxStages, cfg.ClientMaxSessions
	if authn != nil && (authn.Tokens != nil || authn.OAuth != nil) {
		// Several clients share the server: none may take all of it.
		if clientStages == 0 {
			clientStages = max(1, stages/4)
		}
		if clientSessions == 0 {
			clientSessions = max(1, cmp.Or(cfg.MaxSessions, transport.DefaultMaxSessions)/4)
		}
	}
	toolScopes := map[string]string{tools.StageName: cfg.ScopeStage, tools.StageManyName: cfg.ScopeStage, tools.PresignName: cfg.ScopePresign,
		tools.UserUploadName: cfg.ScopeStage, tools.GetUserUploadName: cfg.ScopeStage}
	svc := &tools.Service{Provider: provider, Sources: sources, SpoolDir: spoolDir, MaxBytes: cfg.MaxBytes, Logger: log,
		Stages: tools.NewSlots(stages), Spool: spoolBudget, Scopes: toolScopes, InlineResourceBytes: cfg.MaxInlineBytes,
		Callers: tools.NewCallers(auth.Limits{Stages: clientStages, CallsPerMinute: cfg.ClientCallsPerMinute})}
	svc.Metrics = metrics

	if _, ok := provider.(providers.Handler); ok {
		// Its upload URLs are this server's, or, for a command, another
		// filestage's on the same data directory.
		svc.ServedHere = strings.TrimSuffix(publicURL, "/")
		svc.URLsEndWithProcess = cfg.Command == config.CmdServe && cfg.Transport == config.TransportStdio
	}
	if cfg.Command == config.CmdServe {
		// The person's own files arrive through pages on this server.
		uploads, err := upload.New(upload.Options{Dir: filepath.Join(cfg.DataDir, "uploads"), PublicURL: publicURL, TTL: cfg.UploadLinkTTL,
			MaxBytes: cfg.MaxBytes, Spool: spoolBudget, Stage: svc.StageFinished, Logger: log})
		if err != nil {
			return err
		}
		defer uploads.Close()
		svc.Uploads = uploads
	}

	switch cfg.Command {
	case config.CmdStage:
		return cli.Stage(ctx, svc, schema.StageRequest{URL: cfg.Source, ToolSlug: cfg.ToolSlug, ToolkitSlug: cfg.ToolkitSlug, Filename: cfg.Filename}, stdout, stderr)
	case config.CmdPresign:
		return cli.Presign(ctx, svc, cfg.Source, schema.PresignRequest{ToolkitSlug: cfg.ToolkitSlug, ToolSlug: cfg.ToolSlug, Filename: cfg.Filename, Mimetype: cfg.Mimetype}, stdout, stderr)
	}

	// Traces go where the standard OTEL_* variables say; none unless set.
	tp, stopTraces, err := telemetry.TracesFromEnv(ctx, getenv, short)
	if err != nil {
		return err
	}
	defer func() {
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := stopTraces(fctx); err != nil {
			log.Warn("spans not exported at exit", "err", err)
		}
	}()
	drain := transport.NewDrain()
	serverOpts := []server.ServerOption{server.WithToolHandlerMiddleware(drain.Middleware), server.WithHooks(drain.Hooks())}
	if tp != nil {
		serverOpts = append(serverOpts, telemetry.ServerOptions(tp)...)
		// The SDK's own complaints (an unreachable collector) go to the
		// log, in its format, not to stderr on their own.
		otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) { log.Warn("traces not exported", "err", err) }))
	}
	mcpServer := tools.NewServer(short, svc, serverOpts...)
	metrics.Instrument(mcpServer)
	stopMetrics, err := serveMetrics(ctx, cfg, metrics, log)
	if err != nil {
		return err
	}
	defer stopMetrics()

	routes := map[string]http.Handler{}
	if svc.Uploads != nil {
		// The link is the capability: no bearer token is asked.
		routes[upload.PathPrefix] = svc.Uploads.Handler()
	}
	if h, ok := provider.(providers.Handler); ok {
		routes[h.Pattern()] = h
	}
	serving = true
	if ready != nil {
		ready(ln.Addr())
	}
	log.Info("filestage started", "version", ver.String(), "transport", cfg.Transport, "provider", cfg.Provider,
		"addr", ln.Addr().String(), "public_url", publicURL, "data_dir", cfg.DataDir, "private_urls", cfg.AllowPrivateURLs,
		"file_roots", sources.Roots(), "max_concurrent_stages", stages, "spool_budget", budget, "auth", authMode(cfg, authn))

	if cfg.Transport == config.TransportStdio {
		uploads := http.NewServeMux()
		for pattern, h := range routes {
			uploads.Handle(pattern, h)
		}
		sctx, stop := context.WithCancel(ctx)
		defer stop()
		done := make(chan error, 1)
		go func() {
			done <- transport.Serve(sctx, ln, uploads, transport.ServeOptions{Logger: log, MaxConnections: cfg.MaxConnections, Metrics: metrics})
		}()
		err := transport.ServeStdio(ctx, mcpServer, stdin, stdout, drain, cfg.DrainTimeout, log)
		stop()
		return errors.Join(err, <-done)
	}
	if authn != nil && authn.Tokens != nil {
		// Caught from here on: SIGHUP's default is to end the process.
		hup := make(chan os.Signal, 1)
		signal.Notify(hup, syscall.SIGHUP)
		defer signal.Stop(hup)
		go reloadTokens(ctx, hup, authn.Tokens, log)
	}
	if authn != nil && authn.OAuth != nil {
		log.Info("accepting OAuth access tokens", "issuers", authn.OAuth.Issuers(), "audiences", authn.OAuth.Audiences())
	}
	h := transport.NewHTTP(mcpServer, transport.HTTPOptions{
		Auth: authn, Resources: resources, ToolScopes: toolScopes, PublicURL: publicURL, AllowedOrigins: cfg.AllowedOrigins, Routes: routes, Logger: log, Stateless: cfg.Stateless,
		MaxSessions: cfg.MaxSessions, MaxClientSessions: clientSessions,
		// Room for the largest data: URL, however it is encoded.
		MaxBodyBytes: 4*cfg.MaxInlineBytes + 1<<20,
		Metrics:      metrics, MetricsHandler: mainMetrics(cfg, metrics), MetricsScope: cfg.ScopeMetrics,
	})
	metrics.WatchSessions(h.Sessions)
	return transport.Serve(ctx, ln, h, transport.ServeOptions{Drain: drain, DrainTimeout: cfg.DrainTimeout, CloseSessions: h.CloseSessions, MaxConnections: cfg.MaxConnections, Logger: log, Metrics: metrics})
}

// startError is a failure before serving began.
type startError struct{ error }

func (e startError) Unwrap() error { return e.error }

// prepareDataDir makes sure filestage can write in the data directory
// before anything else does, so that a problem names --data-dir rather
// than a file deep inside: it creates the directory (config refused a
// --data-dir whose parent is missing, so only its last element; the
// default's whole path) and a probe file.
func prepareDataDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return dataDirError(dir, err)
	}
	f, err := os.CreateTemp(dir, ".probe-")
	if err != nil {
		return dataDirError(dir, err)
	}
	f.Close()
	if err := os.Remove(f.Name()); err != nil {
		return dataDirError(dir, err)
	}
	return nil
}

// dataDirError says what filestage could not do in the data directory dir
// and which setting changes it.
func dataDirError(dir string, err error) error {
	what := "cannot use it"
	var pe *fs.PathError
	if errors.As(err, &pe) {
		switch {
		case pe.Op == "mkdir" && errors.Is(pe.Err, syscall.ENOTDIR):
			what, err = pe.Path+" is not a folder", nil
		case pe.Op == "mkdir":
			what, err = "cannot create "+pe.Path, pe.Err
		case pe.Op == "open":
			what, err = "cannot write in "+filepath.Dir(pe.Path), pe.Err
		}
	}
	if err != nil {
		what += ": " + err.Error()
	}
	return fmt.Errorf("--data-dir %s: %s; choose a writable folder with --data-dir or FILESTAGE_DATA_DIR", dir, what)
}

// listenError names the flag (listen or metrics-listen) and its variable
// in place of the socket call that failed.
func listenError(flag, env, addr string, err error) error {
	var se *os.SyscallError
	if errors.As(err, &se) {
		err = se.Err
	}
	return fmt.Errorf("--%s %s: %v; choose another address with --%s or %s", flag, addr, err, flag, env)
}

// authenticator is the authentication cfg asks for, or nil for none, and
// with OAuth, the protected resource each MCP endpoint is (RFC 9728): its
// own URL, unless --oauth-audience names one for both.
func authenticator(cfg config.Config, publicURL string) (*auth.Authenticator, map[string]string, error) {
	o := auth.Options{Token: cfg.AuthToken, TokensFile: cfg.TokensFile}
	if cfg.Transport != config.TransportHTTP || cfg.Command != config.CmdServe {
		return nil, nil, nil // stdio's one client is the local user
	}
	var resources map[string]string
	if len(cfg.OAuthIssuers) > 0 {
		resources = map[string]string{}
		var audiences []string
		for _, path := range []string{transport.PathMCP, transport.PathSSE} {
			resources[path] = cmp.Or(cfg.OAuthAudience, strings.TrimSuffix(publicURL, "/")+path)
			if !slices.Contains(audiences, resources[path]) {
				audiences = append(audiences, resources[path])
			}
		}
		o.OAuth = &auth.OAuthOptions{Issuers: cfg.OAuthIssuers, Audiences: audiences,
			IntrospectionURL: cfg.OAuthIntrospectionURL, ClientID: cfg.OAuthIntrospectionClientID, ClientSecret: cfg.OAuthIntrospectionClientSecret}
	}
	a, err := auth.New(o)
	return a, resources, err
}

// reloadTokens reads the tokens file again on each hangup: clients removed
// from it are refused from then on, and their sessions end.
func reloadTokens(ctx context.Context, hup <-chan os.Signal, t *auth.Tokens, log *slog.Logger) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			if err := t.Load(); err != nil {
				log.Error("tokens file not reloaded; the clients stay as they were", "err", err)
				continue
			}
			log.Info("tokens file reloaded", "clients", t.Count())
		}
	}
}

// storeCommand runs ls, rm or gc on the local store in the data directory,
// beside any server using it.
func storeCommand(ctx context.Context, cfg config.Config, stdout, stderr io.Writer, log *slog.Logger) error {
	if cfg.Provider != local.Name {
		return fmt.Errorf("%s works on the local store; with --provider %s, use the platform's own tools", cfg.Command, cfg.Provider)
	}
	// A mistyped --data-dir would otherwise become a new, empty store.
	if _, err := os.Stat(filepath.Join(cfg.DataDir, "index.db")); err != nil {
		return fmt.Errorf("no local store in %s (--data-dir, FILESTAGE_DATA_DIR): %w", cfg.DataDir, err)
	}
	store, err := local.New(providers.Settings{DataDir: cfg.DataDir, PublicURL: cmp.Or(cfg.PublicURL, "http://"+cfg.Listen),
		Retention: cfg.Retention, Logger: log})
	if err != nil {
		return err
	}
	defer store.Close()
	switch cfg.Command {
	case config.CmdLs:
		return cli.Ls(ctx, store, cfg.Prefix, cfg.JSON, stdout)
	case config.CmdRm:
		return cli.Rm(ctx, store, cfg.Keys, stdout, stderr)
	default:
		return cli.GC(ctx, store, stdout)
	}
}

// newLogger writes cfg's level and format to w.
func newLogger(w io.Writer, cfg config.Config) *slog.Logger {
	opts := &slog.HandlerOptions{Level: cfg.LogLevel}
	var h slog.Handler = slog.NewTextHandler(w, opts)
	if cfg.LogFormat == "json" {
		h = slog.NewJSONHandler(w, opts)
	}
	return slog.New(transport.LogHandler(h))
}

// newRegistry holds every provider; config.Providers names them for the
// help.
func newRegistry() *providers.Registry {
	r := providers.NewRegistry()
	r.Register(local.Name, local.Open)
	r.Register(s3.Name, s3.Open)
	r.Register(composio.Name, composio.Open)
	r.Register(alloy.Name, alloy.Open)
	r.Register(recoup.Name, recoup.Open)
	r.Register(quant.Name, quant.Open)
	return r
}

// authMode says how callers prove who they are, for the start-up line;
// never a token.
func authMode(cfg config.Config, a *auth.Authenticator) string {
	switch {
	case cfg.Transport == config.TransportStdio:
		return "none: stdio's one client is the local user"
	case a == nil:
		return "none: loopback only"
	}
	var modes []string
	if cfg.AuthToken != "" {
		modes = append(modes, "a bearer token (--auth-token)")
	}
	if a.Tokens != nil {
		modes = append(modes, fmt.Sprintf("named tokens from %s (clients: %d)", cfg.TokensFile, a.Tokens.Count()))
	}
	if a.OAuth != nil {
		modes = append(modes, "OAuth access tokens from "+strings.Join(a.OAuth.Issuers(), ", "))
	}
	return strings.Join(modes, "; ")
}

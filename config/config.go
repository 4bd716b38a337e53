// Package config reads filestage's command line and environment. Every flag
// has an environment variable; a flag given on the command line wins.
package config

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/filestage/filestage/source"
)

// Commands.
const (
	CmdServe   = "serve"
	CmdVersion = "version"
	// CmdStage and CmdPresign run one tool call from the command line.
	CmdStage   = "stage"
	CmdPresign = "presign"
	// CmdTokenNew prints a fresh named token and its tokens file line.
	CmdTokenNew = "token new"
	// CmdLs, CmdRm and CmdGC list, remove and expire the local store's
	// objects, beside a server running on the same data directory.
	CmdLs = "ls"
	CmdRm = "rm"
	CmdGC = "gc"
	// CmdHealth asks a running server's /healthz, for container health
	// checks: the image has no shell or curl to do it.
	CmdHealth = "health"
)

// Transports.
const (
	TransportStdio = "stdio"
	TransportHTTP  = "http"
)

// Config is a parsed command line.
type Config struct {
	Command          string
	Transport        string
	Listen           string
	Provider         string
	DataDir          string
	PublicURL        string
	MaxBytes         int64
	AllowPrivateURLs bool
	AuthToken        string
	AllowedOrigins   []string
	FetchTimeout     time.Duration
	// DrainTimeout is how long tool calls in flight may finish at
	// shutdown before they are cancelled.
	DrainTimeout time.Duration
	LogLevel     slog.Level
	// LogFormat is text (logfmt) or json.
	LogFormat string
	// MetricsListen, when set, serves /metrics there, without
	// authentication, instead of on the main listener.
	MetricsListen string
	// Pprof serves Go's profiles (net/http/pprof) beside the metrics on
	// MetricsListen: a listener of its own, never the public one.
	Pprof bool
	// FileRoots are the directories file:// sources may be read below.
	FileRoots      []string
	MaxInlineBytes int64
	// Stateless serves streamable HTTP without sessions, so that replicas
	// behind a load balancer need no affinity; the SSE endpoints are off.
	Stateless bool

	// Limits that keep one caller from exhausting the server. Zero means
	// the default, fitted to the machine where it says so.
	MaxConnections      int
	MaxSessions         int
	MaxConcurrentStages int
	SpoolBudget         int64
	// DenyCIDRs are networks source URLs must not reach, besides the
	// private and special-purpose ones and the machine's own addresses.
	DenyCIDRs []netip.Prefix

	// Who may call: named clients in a tokens file, OAuth 2.1 access
	// tokens from trusted issuers, or both (and AuthToken).
	TokensFile                     string
	OAuthIssuers                   []string
	OAuthAudience                  string
	OAuthIntrospectionURL          string
	OAuthIntrospectionClientID     string
	OAuthIntrospectionClientSecret string
	// ScopeStage and ScopePresign are the scopes the two tools need;
	// ScopeMetrics, reading /metrics on the main listener.
	ScopeStage, ScopePresign, ScopeMetrics string
	// Each client's share, where its own entry sets none; zero: no limit,
	// and for ClientMaxStages, a quarter of MaxConcurrentStages when more
	// than one client can exist.
	ClientMaxStages      int
	ClientCallsPerMinute int
	// ClientMaxSessions: zero means a quarter of MaxSessions when more
	// than one client can exist, else no limit.
	ClientMaxSessions int

	// UploadLinkTTL is how long a request_user_upload link works.
	UploadLinkTTL time.Duration
	// Retention is how long the local store keeps an object after it
	// was last staged; zero keeps objects for ever.
	Retention time.Duration
	// DownloadURLTTL is how long a download_url works.
	DownloadURLTTL time.Duration

	// Shell is completion's argument.
	Shell string

	// Prefix and JSON are ls's; Keys are rm's arguments.
	Prefix string
	JSON   bool
	Keys   []string
	// HealthURL is health's argument: the server to ask (default the one
	// --listen names).
	HealthURL string

	// TokenName and TokenScopes are token new's client and scopes.
	TokenName   string
	TokenScopes []string

	// Source is the URL a stage or presign command reads: its argument,
	// turned into a file:// URL when it is a path. The file's directory
	// is added to FileRoots: a person may read the file they name.
	Source      string
	ToolSlug    string
	ToolkitSlug string
	Filename    string
	Mimetype    string
}

// DefaultHTTPListen is where the HTTP transport listens by default.
const DefaultHTTPListen = "127.0.0.1:8080"

// DefaultMaxInlineBytes is the default cap of a data: URL's decoded bytes.
const DefaultMaxInlineBytes = source.DefaultMaxInlineBytes

// ErrHelp is returned when the user asked for help; the usage text is the
// caller's to print.
var ErrHelp = flag.ErrHelp

// DefaultRetention is how long the local store keeps a file by default.
const DefaultRetention = 7 * 24 * time.Hour

// DefaultMaxBytes is the default byte cap: 512 MiB.
const DefaultMaxBytes = 512 << 20

type option struct {
	flag, env, help string
	value           flag.Value
}

// defaults is the configuration before flags and environment.
func defaults() Config {
	return Config{
		Command:        CmdServe,
		Transport:      TransportStdio,
		Provider:       "local",
		MaxBytes:       DefaultMaxBytes,
		MaxInlineBytes: DefaultMaxInlineBytes,
		FetchTimeout:   15 * time.Minute,
		DrainTimeout:   30 * time.Second,
		UploadLinkTTL:  30 * time.Minute,
		Retention:      DefaultRetention,
		DownloadURLTTL: time.Hour,
		LogLevel:       slog.LevelInfo,
		LogFormat:      "text",
		ScopeStage:     "files:stage",
		ScopePresign:   "files:presign",
		ScopeMetrics:   "metrics:read",
	}
}

// Parse reads args (without the program name) and the environment. On
// ErrHelp, the returned Config's Command is the one help was asked for.
func Parse(args []string, getenv func(string) string) (Config, error) {
	c := defaults()
	// Only a server asked for by name takes folders as arguments: a
	// mistyped command must not become a folder to serve.
	var serveNamed bool
	if len(args) > 0 {
		switch args[0] {
		case CmdServe:
			serveNamed, args = true, args[1:]
		case CmdStage, CmdPresign, CmdLs, CmdRm, CmdGC, CmdHealth:
			// A command's output is its answer; the log only says what
			// went wrong, unless asked for more.
			c.Command, c.LogLevel, args = args[0], slog.LevelWarn, args[1:]
		case CmdVersion, "--version", "-version":
			c.Command = CmdVersion
			return c, nil
		case "token":
			return c, c.tokenNew(args[1:])
		case CmdCompletion:
			c.Command = CmdCompletion
			if len(args) != 2 {
				return c, fmt.Errorf("usage: filestage completion %s", strings.Join(Shells, "|"))
			}
			c.Shell = args[1]
			_, err := Completion(c.Shell)
			return c, err
		case "help":
			if len(args) > 1 {
				c.Command = helpCommand(args[1])
			}
			return c, ErrHelp
		}
	}
	var origins, roots, deny string
	fs := flag.NewFlagSet("filestage", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	for _, o := range options(&c, &origins, &roots, &deny) {
		if v := getenv(o.env); v != "" {
			if err := o.value.Set(v); err != nil {
				return c, fmt.Errorf("%s=%q: %w", o.env, v, err)
			}
			if l, ok := o.value.(*listValue); ok {
				l.fromEnv = true // a flag replaces the environment's list
			}
		}
		fs.Var(o.value, o.flag, o.help)
	}
	if c.Command == CmdStage || c.Command == CmdPresign {
		for _, o := range commandOptions(&c) {
			fs.Var(o.value, o.flag, o.help)
		}
	}
	if c.Command == CmdLs {
		for _, o := range lsOptions(&c) {
			fs.Var(o.value, o.flag, o.help)
		}
	}
	// Flags may follow the argument: filestage stage report.pdf --tool-slug X.
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return c, err
		}
		if fs.NArg() == 0 {
			break
		}
		positional, args = append(positional, fs.Arg(0)), fs.Args()[1:]
	}
	for _, o := range list(origins) {
		c.AllowedOrigins = append(c.AllowedOrigins, strings.TrimSuffix(o, "/"))
	}
	c.FileRoots = list(roots)
	for _, d := range list(deny) {
		p, err := parsePrefix(d)
		if err != nil {
			return c, err
		}
		c.DenyCIDRs = append(c.DenyCIDRs, p)
	}
	switch {
	case c.Command == CmdHealth:
		// A health check must not fail on settings only serving needs
		// (a data directory, auth for a public listener): it reads
		// --listen and nothing else.
		if len(positional) > 1 {
			return c, fmt.Errorf("health takes at most one URL: filestage health [http://HOST:PORT]")
		}
		if len(positional) == 1 {
			c.HealthURL = positional[0]
		}
		return c, nil
	case c.Command == CmdStage || c.Command == CmdPresign:
		if len(positional) != 1 {
			return c, fmt.Errorf("%s takes one file: filestage %s <%s> [flags]", c.Command, c.Command, map[string]string{CmdStage: "url-or-path", CmdPresign: "path"}[c.Command])
		}
		if err := c.source(positional[0]); err != nil {
			return c, err
		}
	case c.Command == CmdRm:
		if len(positional) == 0 {
			return c, errors.New("rm takes the keys to remove: filestage rm KEY... (filestage ls lists them)")
		}
		c.Keys = positional
	case serveNamed:
		// filestage serve FOLDER...: how a host that passes a list of
		// folders as arguments (a Claude Desktop bundle's directory
		// setting) names the roots.
		c.FileRoots = append(c.FileRoots, positional...)
	case len(positional) > 0:
		return c, fmt.Errorf("unexpected argument %q", positional[0])
	}
	// A token read from a secrets file often ends in a newline.
	c.AuthToken = strings.TrimSpace(c.AuthToken)
	c.OAuthIntrospectionClientSecret = strings.TrimSpace(c.OAuthIntrospectionClientSecret)
	if err := c.validate(); err != nil {
		return c, err
	}
	return c, c.resolveDataDir(runtime.GOOS, getenv)
}

// tokenNew reads token new NAME [--scopes A,B].
func (c *Config) tokenNew(args []string) error {
	c.Command = CmdTokenNew
	fs := flag.NewFlagSet("filestage token new", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	scopes := fs.String("scopes", "", "comma-separated scopes the client gets (default all)")
	if len(args) == 0 || args[0] != "new" {
		return errors.New("usage: filestage token new NAME [--scopes files:stage,files:presign]")
	}
	args = args[1:]
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return err
		}
		if fs.NArg() == 0 {
			break
		}
		positional, args = append(positional, fs.Arg(0)), fs.Args()[1:]
	}
	if len(positional) != 1 {
		return errors.New("usage: filestage token new NAME [--scopes files:stage,files:presign]")
	}
	c.TokenName, c.TokenScopes = positional[0], list(*scopes)
	for _, s := range c.TokenScopes {
		if !validScope(s) {
			return fmt.Errorf("--scopes: %q is not a scope (printable ASCII, no spaces, quotes or backslashes)", s)
		}
	}
	return nil
}

// validScope reports whether s is an RFC 6749 scope-token.
func validScope(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if r <= 0x20 || r > 0x7e || r == '"' || r == '\\' {
			return false
		}
	}
	return true
}

// AuthOn reports whether HTTP callers must prove who they are.
func (c *Config) AuthOn() bool {
	return c.AuthToken != "" || c.TokensFile != "" || len(c.OAuthIssuers) > 0
}

// list splits a comma-separated setting.
func list(s string) []string {
	var out []string
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}

// source reads a command's argument: an http(s) or data: URL as it is, a
// path or a file:// URL as the file's URL, with the file's directory
// (symlinks resolved) as a root. presign reads local files only.
func (c *Config) source(arg string) error {
	scheme, _, _ := strings.Cut(arg, ":")
	switch scheme = strings.ToLower(scheme); {
	case scheme == "http" || scheme == "https" || scheme == "data":
		if c.Command == CmdPresign {
			return fmt.Errorf("presign hashes a local file: give its path, not a URL")
		}
		c.Source = arg
		return nil
	case scheme == "file":
		u, err := url.Parse(arg)
		if err != nil {
			return fmt.Errorf("%q: %w", arg, err)
		}
		arg = filepath.FromSlash(u.Path)
	}
	p, err := filepath.Abs(arg)
	if err == nil {
		p, err = filepath.EvalSymlinks(p)
	}
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%s: no such file", arg)
	} else if err != nil {
		return fmt.Errorf("%s: %w", arg, err)
	}
	if c.Source, err = source.FileURL(p); err != nil {
		return err
	}
	c.FileRoots = append(c.FileRoots, filepath.Dir(p))
	return nil
}

// commandOptions are the flags of stage and presign: one call's arguments,
// never read from the environment.
func lsOptions(c *Config) []option {
	return []option{
		{"prefix", "", "list only keys that start with this", (*stringValue)(&c.Prefix)},
		{"json", "", "print one JSON object per file", (*boolValue)(&c.JSON)},
	}
}

func commandOptions(c *Config) []option {
	return []option{
		{"tool-slug", "", "action the file is for, e.g. GMAIL_SEND_EMAIL (required)", (*stringValue)(&c.ToolSlug)},
		{"toolkit-slug", "", "app the action belongs to, e.g. gmail (stage: default from the tool slug; presign: required)", (*stringValue)(&c.ToolkitSlug)},
		{"filename", "", "name to store the file under (default: from the source)", (*stringValue)(&c.Filename)},
		{"mimetype", "", "presign: MIME type to sign (default: detected from the bytes)", (*stringValue)(&c.Mimetype)},
	}
}

// parsePrefix reads a --deny-cidrs entry: a network, or one address.
func parsePrefix(s string) (netip.Prefix, error) {
	if p, err := netip.ParsePrefix(s); err == nil {
		return p.Masked(), nil
	}
	if a, err := netip.ParseAddr(s); err == nil {
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	return netip.Prefix{}, fmt.Errorf("--deny-cidrs: %q is not a network such as 64:ff9b::/96 or 203.0.113.0/24", s)
}

func options(c *Config, origins, roots, deny *string) []option {
	return []option{
		{"transport", "FILESTAGE_TRANSPORT", "stdio or http (streamable HTTP at /mcp and SSE at /sse on one listener)", (*stringValue)(&c.Transport)},
		{"listen", "FILESTAGE_LISTEN", "address to listen on (http default 127.0.0.1:8080; stdio: upload URLs of the local provider, default an ephemeral loopback port)", (*stringValue)(&c.Listen)},
		{"provider", "FILESTAGE_PROVIDER", "storage provider", (*stringValue)(&c.Provider)},
		{"data-dir", "FILESTAGE_DATA_DIR", "where the local provider keeps files, its signing key and temporary files", (*stringValue)(&c.DataDir)},
		{"public-url", "FILESTAGE_PUBLIC_URL", "base URL of this server as uploaders reach it, when behind a proxy (default http://<listen address>)", (*stringValue)(&c.PublicURL)},
		{"max-bytes", "FILESTAGE_MAX_BYTES", "largest file accepted, e.g. 512MiB, 2GiB or a byte count", (*sizeValue)(&c.MaxBytes)},
		{"allow-private-urls", "FILESTAGE_ALLOW_PRIVATE_URLS", "let stage_connector_file fetch loopback and private addresses (development and tests only)", (*boolValue)(&c.AllowPrivateURLs)},
		{"stateless", "FILESTAGE_STATELESS", "http: serve streamable HTTP without sessions, so replicas behind a load balancer need no affinity (turns off the legacy SSE endpoints)", (*boolValue)(&c.Stateless)},
		{"auth-token", "FILESTAGE_AUTH_TOKEN", "the one bearer token of a single-client server, required on /mcp and /sse (prefer the environment variable: flags show in ps)", (*stringValue)(&c.AuthToken)},
		{"tokens-file", "FILESTAGE_TOKENS_FILE", "file of named clients, one per line: NAME sha256:HASH [scopes=A,B] [max-stages=N] [calls-per-minute=N]; 'filestage token new NAME' prints one; re-read on SIGHUP", (*stringValue)(&c.TokensFile)},
		{"oauth-issuer", "FILESTAGE_OAUTH_ISSUER", "http: accept OAuth 2.1 access tokens from this authorization server (issuer URL; repeat or comma-separate for several)", &listValue{vals: &c.OAuthIssuers}},
		{"oauth-audience", "FILESTAGE_OAUTH_AUDIENCE", "audience access tokens must carry, and the resource both endpoints' metadata names (default <public URL>/mcp or <public URL>/sse, RFC 8707)", (*stringValue)(&c.OAuthAudience)},
		{"oauth-introspection-url", "FILESTAGE_OAUTH_INTROSPECTION_URL", "RFC 7662 endpoint for opaque tokens (default the first issuer's introspection_endpoint)", (*stringValue)(&c.OAuthIntrospectionURL)},
		{"oauth-introspection-client-id", "FILESTAGE_OAUTH_INTROSPECTION_CLIENT_ID", "client ID filestage introspects opaque tokens with (introspection is off without it)", (*stringValue)(&c.OAuthIntrospectionClientID)},
		{"oauth-introspection-client-secret", "FILESTAGE_OAUTH_INTROSPECTION_CLIENT_SECRET", "that client's secret (prefer the environment variable)", (*stringValue)(&c.OAuthIntrospectionClientSecret)},
		{"scope-stage", "FILESTAGE_SCOPE_STAGE", "scope a token needs to call stage_connector_file", (*stringValue)(&c.ScopeStage)},
		{"scope-presign", "FILESTAGE_SCOPE_PRESIGN", "scope a token needs to call request_presigned_upload", (*stringValue)(&c.ScopePresign)},
		{"scope-metrics", "FILESTAGE_SCOPE_METRICS", "scope a token needs to read /metrics on the main listener (every client's activity is in them)", (*stringValue)(&c.ScopeMetrics)},
		{"client-max-stages", "FILESTAGE_CLIENT_MAX_STAGES", "most stage calls one client runs at once, where its tokens file entry sets none (default a quarter of --max-concurrent-stages when several clients can exist; 0 and one client: no limit)", (*intValue)(&c.ClientMaxStages)},
		{"client-max-sessions", "FILESTAGE_CLIENT_MAX_SESSIONS", "http: most sessions one client holds at once (default a quarter of --max-sessions when several clients can exist; 0 and one client: no limit)", (*intValue)(&c.ClientMaxSessions)},
		{"client-calls-per-minute", "FILESTAGE_CLIENT_CALLS_PER_MINUTE", "most tool calls one client makes per minute, where its tokens file entry sets none (default 0: no limit)", (*intValue)(&c.ClientCallsPerMinute)},
		{"allowed-origins", "FILESTAGE_ALLOWED_ORIGINS", "comma-separated browser origins allowed besides loopback and the public URL", (*stringValue)(origins)},
		{"file-roots", "FILESTAGE_FILE_ROOTS", "comma-separated directories whose files stage_connector_file may read as file:// URLs (default none)", (*stringValue)(roots)},
		{"max-inline-bytes", "FILESTAGE_MAX_INLINE_BYTES", "largest data: URL accepted, decoded", (*sizeValue)(&c.MaxInlineBytes)},
		{"fetch-timeout", "FILESTAGE_FETCH_TIMEOUT", "time limit for fetching one source URL, body included", (*durationValue)(&c.FetchTimeout)},
		{"max-connections", "FILESTAGE_MAX_CONNECTIONS", "http: most open connections; at the cap a new one replaces the longest idle, else is closed (default 4096, at most half the open-file limit)", (*intValue)(&c.MaxConnections)},
		{"max-sessions", "FILESTAGE_MAX_SESSIONS", "http: most live MCP sessions, streamable HTTP and SSE together (default 1000)", (*intValue)(&c.MaxSessions)},
		{"max-concurrent-stages", "FILESTAGE_MAX_CONCURRENT_STAGES", "most stage_connector_file calls at once; more wait briefly, then get BUSY (default 64 per CPU)", (*intValue)(&c.MaxConcurrentStages)},
		{"spool-budget", "FILESTAGE_SPOOL_BUDGET", "most disk that stage calls' temporary files may use at once, e.g. 10GiB (default half the free space of <data-dir>/tmp at start)", (*sizeValue)(&c.SpoolBudget)},
		{"deny-cidrs", "FILESTAGE_DENY_CIDRS", "comma-separated networks source URLs must not reach, besides private ones and this machine's addresses (e.g. your NAT64 prefix)", (*stringValue)(deny)},
		{"upload-link-ttl", "FILESTAGE_UPLOAD_LINK_TTL", "how long a request_user_upload link works", (*durationValue)(&c.UploadLinkTTL)},
		{"retention", "FILESTAGE_RETENTION", "how long the local store keeps a file after it was last staged, e.g. 7d or 36h; 0 keeps files for ever", (*durationValue)(&c.Retention)},
		{"download-url-ttl", "FILESTAGE_DOWNLOAD_URL_TTL", "how long a download_url works (local and s3)", (*durationValue)(&c.DownloadURLTTL)},
		{"drain-timeout", "FILESTAGE_DRAIN_TIMEOUT", "at shutdown (SIGTERM, Ctrl-C), how long tool calls in flight may finish before they are cancelled, which gives them 5 s more to clean up", (*durationValue)(&c.DrainTimeout)},
		{"log-level", "FILESTAGE_LOG_LEVEL", "debug, info, warn or error (logs go to stderr)", (*levelValue)(&c.LogLevel)},
		{"log-format", "FILESTAGE_LOG_FORMAT", "text (key=value) or json (one object per line)", (*stringValue)(&c.LogFormat)},
		{"metrics-listen", "FILESTAGE_METRICS_LISTEN", "serve Prometheus metrics at /metrics on this address of their own, without authentication (default: http serves them on --listen, behind its authentication; stdio serves none)", (*stringValue)(&c.MetricsListen)},
		{"pprof", "FILESTAGE_PPROF", "also serve Go's CPU, heap and goroutine profiles at /debug/pprof/ on --metrics-listen, which it requires on loopback", (*boolValue)(&c.Pprof)},
	}
}

func (c *Config) validate() error {
	var public *url.URL
	if c.PublicURL != "" {
		u, err := url.Parse(c.PublicURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("--public-url %q: want an absolute http(s) URL such as https://files.example.com", c.PublicURL)
		}
		c.PublicURL, public = strings.TrimSuffix(c.PublicURL, "/"), u
	}
	switch c.Transport {
	case TransportStdio:
		// stdio has no sessions to share; saying so beats ignoring a
		// setting meant for a deployment that forgot --transport http.
		if c.Stateless && c.Command == CmdServe {
			return fmt.Errorf("--stateless is for --transport http: stdio serves one client and has nothing to share between replicas")
		}
		if c.Listen == "" && c.Command != CmdServe {
			c.Listen = DefaultHTTPListen // where a local server's upload links point
		}
		if c.Listen == "" {
			c.Listen = "127.0.0.1:0"
		}
	case TransportHTTP:
		if c.Listen == "" {
			c.Listen = DefaultHTTPListen
		}
		if c.Command != CmdServe {
			break // commands serve nothing
		}
		if !c.AuthOn() && !IsLoopback(c.Listen) {
			return fmt.Errorf("refusing to serve MCP on %s, which is not a loopback address, without authentication: set FILESTAGE_AUTH_TOKEN, FILESTAGE_TOKENS_FILE or FILESTAGE_OAUTH_ISSUER, or listen on 127.0.0.1", c.Listen)
		}
		// Behind a proxy the listener is loopback but the server is not.
		if !c.AuthOn() && public != nil && !IsLoopback(public.Host) {
			return fmt.Errorf("refusing to serve MCP at %s, which is not a loopback address, without authentication: set FILESTAGE_AUTH_TOKEN, FILESTAGE_TOKENS_FILE or FILESTAGE_OAUTH_ISSUER", c.PublicURL)
		}
	default:
		return fmt.Errorf("--transport %q: use stdio or http", c.Transport)
	}
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		return fmt.Errorf("--listen %q: want host:port, e.g. 127.0.0.1:8080", c.Listen)
	}
	if c.MaxBytes <= 0 {
		return fmt.Errorf("--max-bytes must be positive")
	}
	if c.MaxInlineBytes <= 0 {
		return fmt.Errorf("--max-inline-bytes must be positive")
	}
	if c.MaxConnections < 0 || c.MaxSessions < 0 || c.MaxConcurrentStages < 0 {
		return fmt.Errorf("--max-connections, --max-sessions and --max-concurrent-stages must be positive (or 0 for the default)")
	}
	if len(c.OAuthIssuers) > 0 && c.Transport != TransportHTTP && c.Command == CmdServe {
		return fmt.Errorf("--oauth-issuer is for --transport http: stdio has no bearer tokens (its one client is the local user)")
	}
	for _, iss := range c.OAuthIssuers {
		if u, err := url.Parse(iss); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
			return fmt.Errorf("--oauth-issuer %q: want the issuer's URL, such as https://auth.example.com", iss)
		}
	}
	if c.OAuthAudience != "" && len(c.OAuthIssuers) == 0 {
		return fmt.Errorf("--oauth-audience needs --oauth-issuer")
	}
	if (c.OAuthIntrospectionClientID != "") != (c.OAuthIntrospectionClientSecret != "") {
		return fmt.Errorf("--oauth-introspection-client-id and --oauth-introspection-client-secret go together")
	}
	if !validScope(c.ScopeStage) || !validScope(c.ScopePresign) || !validScope(c.ScopeMetrics) {
		return fmt.Errorf("--scope-stage, --scope-presign and --scope-metrics: a scope is printable ASCII without spaces, quotes or backslashes")
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		return fmt.Errorf("--log-format %q: want text or json", c.LogFormat)
	}
	if c.MetricsListen != "" {
		if _, port, err := net.SplitHostPort(c.MetricsListen); err != nil || port == "" {
			return fmt.Errorf("--metrics-listen %q: want host:port, e.g. 127.0.0.1:9090", c.MetricsListen)
		}
		if c.MetricsListen == c.Listen && !strings.HasSuffix(c.Listen, ":0") {
			return fmt.Errorf("--metrics-listen %s is --listen's address: give the metrics a port of their own, or leave --metrics-listen out to serve them on --listen", c.MetricsListen)
		}
	}
	if c.Pprof && (c.MetricsListen == "" || !IsLoopback(c.MetricsListen)) {
		return fmt.Errorf("--pprof serves profiles on a loopback --metrics-listen only (a profile costs the server CPU, and a heap or goroutine dump pauses it): set --metrics-listen 127.0.0.1:9090, say")
	}
	if c.UploadLinkTTL <= 0 {
		return fmt.Errorf("--upload-link-ttl must be positive")
	}
	if c.Retention < 0 {
		return fmt.Errorf("--retention must be 0 (keep for ever) or positive")
	}
	if c.DownloadURLTTL <= 0 {
		return fmt.Errorf("--download-url-ttl must be positive")
	}
	if c.FetchTimeout <= 0 {
		return fmt.Errorf("--fetch-timeout must be positive")
	}
	if c.DrainTimeout <= 0 {
		return fmt.Errorf("--drain-timeout must be positive: calls in flight need some time to finish")
	}
	for _, o := range c.AllowedOrigins {
		if u, err := url.Parse(o); err != nil || u.Scheme == "" || u.Host == "" {
			return fmt.Errorf("--allowed-origins: %q is not an origin such as https://app.example.com", o)
		}
	}
	return nil
}

// LocalURL is the base URL at which this machine reaches a server
// listening on listen: one listening on every address (":8080",
// "0.0.0.0:8080", "[::]:8080") is reached on loopback.
func LocalURL(listen string) string {
	host, port, err := net.SplitHostPort(listen)
	if ip := net.ParseIP(host); err == nil && (host == "" || ip != nil && ip.IsUnspecified()) {
		listen = net.JoinHostPort("127.0.0.1", port)
	}
	return "http://" + listen
}

// IsLoopback reports whether a listen address only accepts local connections.
func IsLoopback(hostport string) bool {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		host = hostport
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(strings.Trim(host, "[]"))
	return err == nil && ip.IsLoopback()
}

// resolveDataDir defaults the data directory for goos, makes it absolute
// (a desktop client's working directory is anyone's guess), and refuses a
// --data-dir whose parent is missing: a typo is not created with all its
// parents. Only the data directory itself is created, at start.
func (c *Config) resolveDataDir(goos string, getenv func(string) string) error {
	given := c.DataDir
	if given == "" {
		d, err := defaultDataDir(goos, getenv)
		if err != nil {
			return err
		}
		c.DataDir = d
	}
	abs, err := filepath.Abs(c.DataDir)
	if err != nil {
		return fmt.Errorf("--data-dir %q: %w", c.DataDir, err)
	}
	c.DataDir = abs
	if given == "" {
		return nil // the default's folders are created as needed
	}
	parent := filepath.Dir(abs)
	if _, err := os.Stat(parent); errors.Is(err, fs.ErrNotExist) {
		hint := ""
		if strings.HasPrefix(given, "~") {
			hint = " (only a shell expands ~: write the whole path)"
		}
		return fmt.Errorf("--data-dir %s: %s does not exist%s; create it first, or choose another folder with --data-dir or FILESTAGE_DATA_DIR", abs, parent, hint)
	}
	return nil
}

// defaultDataDir is the data directory when none is given: in
// $XDG_DATA_HOME, else where goos keeps an application's data (as
// os.UserConfigDir says for darwin and windows). With no such variable set
// it is an error, not a shared temporary directory, which would hold the
// signing key.
func defaultDataDir(goos string, getenv func(string) string) (string, error) {
	if d := getenv("XDG_DATA_HOME"); d != "" {
		return filepath.Join(d, "filestage"), nil
	}
	home, unset := getenv("HOME"), "HOME"
	switch goos {
	case "windows":
		if d := getenv("AppData"); d != "" {
			return filepath.Join(d, "filestage"), nil
		}
		unset = "AppData"
	case "darwin":
		if home != "" {
			return filepath.Join(home, "Library", "Application Support", "filestage"), nil
		}
	default:
		if home != "" {
			return filepath.Join(home, ".local", "share", "filestage"), nil
		}
	}
	return "", fmt.Errorf("no data directory: %s and XDG_DATA_HOME are unset; choose a folder with --data-dir or FILESTAGE_DATA_DIR", unset)
}

// Usage is the help text.
// helpCommand is the command "help NAME" asks about.
func helpCommand(name string) string {
	switch name {
	case CmdStage, CmdPresign, CmdLs, CmdRm, CmdGC, CmdHealth:
		return name
	case "token":
		return CmdTokenNew
	}
	return CmdServe
}

// Providers names each provider with the settings it requires, for the
// help. TestProvidersHaveHelp keeps it in step with main's registry.
var Providers = []struct{ Name, Settings string }{
	{"local", "none: the embedded store in --data-dir (the default)"},
	{"s3", "FILESTAGE_S3_BUCKET; AWS_REGION and credentials from the AWS SDK's chain (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_ENDPOINT_URL_S3 ...)"},
	{"composio", "COMPOSIO_API_KEY"},
	{"alloy", "ALLOY_API_KEY"},
	{"recoup", "RECOUP_API_KEY"},
	{"quant", "QUANT_API_TOKEN, QUANT_ORGANIZATION"},
}

// commandHelp is each command's usage line and what it does.
var commandHelp = map[string][2]string{
	CmdStage:    {"filestage stage <url-or-path> --tool-slug SLUG [flags]", "Stage one file, as stage_connector_file does, and print its descriptor as JSON."},
	CmdPresign:  {"filestage presign <path> --toolkit-slug APP --tool-slug SLUG [flags]", "Hash a local file and print a presigned upload for it as JSON, as request_presigned_upload answers."},
	CmdLs:       {"filestage ls [--prefix P] [--json] [flags]", "List the files the local store in --data-dir holds; it works beside a running server."},
	CmdRm:       {"filestage rm KEY... [flags]", "Remove files (by s3key) from the local store in --data-dir."},
	CmdGC:       {"filestage gc [flags]", "Remove the local store's expired files now, as the server's sweeper does."},
	CmdHealth:   {"filestage health [URL] [flags]", "Ask a running server whether it is up (GET /healthz) and exit 0 if it is, 1 if not: a container's health check. URL defaults to the server --listen names (FILESTAGE_LISTEN, default 127.0.0.1:8080; an address on every interface is asked on loopback)."},
	CmdTokenNew: {"filestage token new NAME [--scopes A,B]", "Print a fresh token for a named client, shown once, and the line that adds it to the tokens file (--tokens-file)."},
}

// Usage is the help of command: the server's (CmdServe) lists every
// command, flag and provider; another command's, its own flags first.
// Each flag shows its default and its environment variable.
func Usage(command string) string {
	var b strings.Builder
	d := defaults()
	var s string
	flags := func(title string, opts []option) {
		b.WriteString("\n" + title + "\n")
		for _, o := range opts {
			fmt.Fprintf(&b, "  --%s\n      %s", o.flag, o.help)
			var notes []string
			if v := o.value.String(); v != "" && v != "0" && v != "false" && v != "0s" {
				notes = append(notes, "default "+v)
			}
			if o.env != "" {
				notes = append(notes, "$"+o.env)
			}
			if len(notes) > 0 {
				fmt.Fprintf(&b, " (%s)", strings.Join(notes, "; "))
			}
			b.WriteString("\n")
		}
	}
	if h, ok := commandHelp[command]; ok {
		fmt.Fprintf(&b, "Usage: %s\n\n%s\n", h[0], h[1])
		switch command {
		case CmdStage, CmdPresign:
			flags("Flags of "+command+":", commandOptions(&d))
		case CmdLs:
			flags("Flags of ls:", lsOptions(&d))
		case CmdHealth:
			return b.String() + "\nFlags of health:\n  --listen\n      the server's address (default " + DefaultHTTPListen + "; $FILESTAGE_LISTEN)\n"
		case CmdTokenNew:
			return b.String() + "\nFlags of token new:\n  --scopes\n      comma-separated scopes the client gets (default: all)\n"
		}
		b.WriteString("\nEvery flag of the server applies too (filestage --help lists them), e.g. --data-dir, --provider.\n")
		return b.String()
	}
	b.WriteString(`filestage: an MCP server that stages files where connector platforms can attach them.

Usage:
  filestage                      serve MCP over stdio with the embedded local store
  filestage serve [flags] [FOLDER...]
                                 serve with the given flags; files below each
                                 FOLDER are readable as file:// URLs, as with
                                 --file-roots
  filestage stage <url-or-path> --tool-slug SLUG [flags]
                                 stage one file; print its descriptor as JSON
  filestage presign <path> --toolkit-slug APP --tool-slug SLUG [flags]
                                 hash a file; print a presigned upload for it as JSON
  filestage token new NAME [--scopes A,B]
                                 print a fresh token for a named client, and
                                 the line that adds it to the tokens file
  filestage ls [--prefix P] [--json]
                                 list the files the local store holds
  filestage rm KEY...            remove files from the local store
  filestage gc                   remove the local store's expired files now
  filestage health [URL]         exit 0 if the server at URL (default --listen's)
                                 answers /healthz, 1 if not
  filestage version, --version   print the version and the build's VCS revision
  filestage help [COMMAND]       print this help, or a command's
  filestage completion bash|zsh|fish
                                 print a shell completion script

Example:
  filestage serve --transport http --listen 127.0.0.1:8080
`)
	flags("Flags (each also read from the environment variable shown):", options(&d, &s, &s, &s))
	b.WriteString("\nProviders (--provider) and the settings each requires:\n")
	for _, p := range Providers {
		fmt.Fprintf(&b, "  %-10s %s\n", p.Name, p.Settings)
	}
	b.WriteString(`
Tools: stage_connector_file (fetch a URL, hash, upload, return {name, mimetype, s3key})
       stage_connector_files (the same for up to 20 files, for an array of file_uploadable)
       request_presigned_upload (presigned URL and headers for bytes you hold)
       request_user_upload, get_user_upload (a page where the person sends their own file)
`)
	return b.String()
}

// listValue is a repeatable, comma-separated flag.
type listValue struct {
	vals    *[]string
	fromEnv bool
}

func (v *listValue) Set(s string) error {
	if v.fromEnv {
		*v.vals, v.fromEnv = nil, false
	}
	*v.vals = append(*v.vals, list(s)...)
	return nil
}

func (v *listValue) String() string {
	if v.vals == nil {
		return ""
	}
	return strings.Join(*v.vals, ",")
}

type stringValue string

func (v *stringValue) Set(s string) error { *v = stringValue(s); return nil }
func (v *stringValue) String() string     { return string(*v) }

type boolValue bool

func (v *boolValue) Set(s string) error {
	b, err := strconv.ParseBool(s)
	if err != nil {
		return errors.New("want true or false")
	}
	*v = boolValue(b)
	return nil
}
func (v *boolValue) String() string   { return strconv.FormatBool(bool(*v)) }
func (v *boolValue) IsBoolFlag() bool { return true }

type intValue int

func (v *intValue) Set(s string) error {
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil || n < 0 {
		return errors.New("want a whole number, 0 or more")
	}
	*v = intValue(n)
	return nil
}
func (v *intValue) String() string { return strconv.Itoa(int(*v)) }

type durationValue time.Duration

func (v *durationValue) Set(s string) error {
	s = strings.TrimSpace(s)
	// Whole days, as retention is usually given; Go's durations stop at h.
	if days, ok := strings.CutSuffix(s, "d"); ok {
		if n, err := strconv.ParseInt(days, 10, 64); err == nil && n >= 0 && n <= 100*365 {
			*v = durationValue(time.Duration(n) * 24 * time.Hour)
			return nil
		}
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return errors.New("want a duration such as 90s, 15m, 36h or 7d")
	}
	*v = durationValue(d)
	return nil
}
func (v *durationValue) String() string { return time.Duration(*v).String() }

type levelValue slog.Level

func (v *levelValue) Set(s string) error { return (*slog.Level)(v).UnmarshalText([]byte(s)) }
func (v *levelValue) String() string     { return slog.Level(*v).String() }

type sizeValue int64

var units = []struct {
	suffix string
	mult   int64
}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"B", 1}}

// Set parses a byte count with an optional unit: 1048576, 512MiB, 2GB.
func (v *sizeValue) Set(s string) error {
	s = strings.TrimSpace(s)
	mult := int64(1)
	for _, u := range units {
		if strings.HasSuffix(s, u.suffix) {
			s, mult = strings.TrimSpace(strings.TrimSuffix(s, u.suffix)), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 || n > (1<<62)/mult {
		return errors.New("want a size such as 512MiB, 2GiB or a byte count")
	}
	*v = sizeValue(n * mult)
	return nil
}
func (v *sizeValue) String() string { return strconv.FormatInt(int64(*v), 10) }

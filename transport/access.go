package transport

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"golang.org/x/time/rate"
)

// access is what one HTTP request's access line says beyond the request
// itself: its id, shared by every log line of the request, and who called,
// which only the authentication knows.
type access struct {
	id     string
	client string
	// reason, when set, names a refusal better than its status does.
	reason string
	// opens is set on an initialize: its line stays info, so that the
	// log tells who started sessions from where.
	opens bool
}

type accessKey struct{}

// RequestID is the id of the HTTP request ctx belongs to, or "".
func RequestID(ctx context.Context) string {
	if a, _ := ctx.Value(accessKey{}).(*access); a != nil {
		return a.id
	}
	return ""
}

// refusing names the reason the request is about to be refused for, for
// the access line and the refusal counts: a reason word, never anything
// the client sent.
func refusing(ctx context.Context, reason string) {
	if a, _ := ctx.Value(accessKey{}).(*access); a != nil {
		a.reason = reason
	}
}

// refusalReason is why a request answered code was refused.
func refusalReason(ctx context.Context, code int) string {
	if a, _ := ctx.Value(accessKey{}).(*access); a != nil && a.reason != "" {
		return a.reason
	}
	return reasonFor(code)
}

// opensSession marks the request as an initialize, for the access line.
func opensSession(ctx context.Context) {
	if a, _ := ctx.Value(accessKey{}).(*access); a != nil {
		a.opens = true
	}
}

// noteClient records who called, for the access line.
func noteClient(ctx context.Context, name string) {
	if a, _ := ctx.Value(accessKey{}).(*access); a != nil {
		a.client = name
	}
}

// HeaderRequestID carries the request id in each answer, so that a client
// reporting a problem can name the lines it caused.
const HeaderRequestID = "X-Request-Id"

// accessLog writes one line per request when it ends: method, path
// without its query (signatures and session ids live there), status,
// bytes, duration, client and remote address. Refusals are warnings, at
// most refusalLines a second: under attack a line per refusal would be a
// second attack, on the log, and the periodic "refused connections and
// requests" line counts them all anyway. Health checks and metric scrapes
// are debug.
func accessLog(log *slog.Logger, next http.Handler) http.Handler {
	warns := rate.NewLimiter(refusalLines, 2*refusalLines)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		a := &access{id: newRequestID()}
		w.Header().Set(HeaderRequestID, a.id)
		rec := &accessRecorder{ResponseWriter: w}
		next.ServeHTTP(rec, r.WithContext(context.WithValue(r.Context(), accessKey{}, a)))
		if rec.status == 0 {
			rec.status = http.StatusOK // net/http's answer to a handler that wrote nothing
		}
		level := accessLevel(r, rec.status, a.opens)
		if !log.Enabled(r.Context(), level) || (level == slog.LevelWarn && !warns.Allow()) {
			return
		}
		attrs := []slog.Attr{
			slog.String("request_id", a.id),
			slog.String("method", r.Method),
			slog.String("path", logPath(r.URL.Path)),
			slog.Int("status", rec.status),
			slog.Int64("bytes", rec.bytes),
			slog.Duration("duration", time.Since(start).Round(time.Microsecond)),
			slog.String("client", a.client),
			slog.String("remote", r.RemoteAddr),
		}
		if rec.status >= 400 {
			attrs = append(attrs, slog.String("reason", refusalReason(r.Context(), rec.status)))
		}
		// The request id is an attribute here already: the handler that
		// adds it from the context must not add it twice.
		log.LogAttrs(context.Background(), level, "http", attrs...)
	})
}

// accessLevel is the level of a request's access line. Refusals are
// warnings. A message an MCP client posts that is answered well is one
// of the calls the tools' metrics count (mcp_server_operation_duration_seconds,
// filestage_tool_calls_total): its line is debug, as are health checks and
// metric scrapes, which come every few seconds. A line per call would
// cost a light call more than its own work; the calls that do work worth
// a line (staging) write their own, and an initialize (opens) stays
// info: who opened sessions, from where, is what an operator looks for
// when a token may have leaked.
func accessLevel(r *http.Request, status int, opens bool) slog.Level {
	switch {
	case status == http.StatusMethodNotAllowed && noStream(r):
		return slog.LevelDebug
	case status >= 400:
		return slog.LevelWarn
	case opens:
		return slog.LevelInfo
	case r.URL.Path == PathHealth || r.URL.Path == PathMetrics:
		return slog.LevelDebug
	case r.Method == http.MethodPost && (r.URL.Path == PathMCP || r.URL.Path == PathMessage):
		return slog.LevelDebug
	}
	return slog.LevelInfo
}

func newRequestID() string {
	b := make([]byte, 8)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// refusalLines is how many refused requests a second get a line each.
const refusalLines = 20

// maxLogPath is the longest path a line shows: a client chooses it.
const maxLogPath = 256

// logPath is a path as the log may show it: the ids of upload links,
// which are their capability, are left out, and a long path is cut.
func logPath(p string) string {
	const tus, page, assets = "/u/tus/", "/u/", "/u/assets/"
	if len(p) > maxLogPath {
		p = strings.ToValidUTF8(p[:maxLogPath], "") + "…"
	}
	switch {
	case strings.HasPrefix(p, assets):
		return p
	case strings.HasPrefix(p, tus):
		return tus + "{id}"
	case strings.HasPrefix(p, page):
		return page + "{id}"
	}
	return p
}

// accessRecorder notes an answer's status and size for the access line.
type accessRecorder struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (r *accessRecorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *accessRecorder) Write(p []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	n, err := r.ResponseWriter.Write(p)
	r.bytes += int64(n)
	return n, err
}

// Flush serves streams (SSE, streamable HTTP) that look for a Flusher.
func (r *accessRecorder) Flush() {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	http.NewResponseController(r.ResponseWriter).Flush()
}

func (r *accessRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// LogHandler adds the request id of a record's context to every record,
// so that the tools' lines name the request they served.
func LogHandler(h slog.Handler) slog.Handler { return requestIDHandler{h} }

type requestIDHandler struct{ slog.Handler }

func (h requestIDHandler) Handle(ctx context.Context, r slog.Record) error {
	if id := RequestID(ctx); id != "" {
		r.AddAttrs(slog.String("request_id", id))
	}
	return h.Handler.Handle(ctx, r)
}

func (h requestIDHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return requestIDHandler{h.Handler.WithAttrs(attrs)}
}

func (h requestIDHandler) WithGroup(name string) slog.Handler {
	return requestIDHandler{h.Handler.WithGroup(name)}
}

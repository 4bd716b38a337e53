package transport

import (
	"bytes"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestAccessLogBounded: a flood of refused requests writes a bounded
// number of lines, and a path a client made long is cut.
func TestAccessLogBounded(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	h := accessLog(log, http.NotFoundHandler())
	for range 500 {
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/nothing", nil))
	}
	if n := strings.Count(buf.String(), "msg=http"); n == 0 || n > 3*refusalLines {
		t.Errorf("%d lines for 500 refusals at once", n)
	}

	buf.Reset()
	h = accessLog(log, http.NotFoundHandler())
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/"+strings.Repeat("x", 10_000), nil))
	line := buf.String()
	if !strings.Contains(line, "path=/"+strings.Repeat("x", maxLogPath-1)+"…") || len(line) > 2*maxLogPath+300 {
		t.Errorf("line of %d bytes: %.400s", len(line), line)
	}

	buf.Reset()
	for _, p := range []string{"/u/abcdefSECRET", "/u/tus/abcdefSECRET"} {
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, p, nil))
	}
	if strings.Contains(buf.String(), "SECRET") {
		t.Errorf("an upload link id was logged: %s", buf.String())
	}
}

// TestAccessLevels: refusals warn; MCP messages answered well, health
// checks and scrapes are debug (their totals are metrics), but for an
// initialize; every other request, streams and file transfers among them,
// is info.
func TestAccessLevels(t *testing.T) {
	for _, tt := range []struct {
		method, path string
		status       int
		opens        bool
		want         slog.Level
	}{
		{http.MethodPost, PathMCP, 200, false, slog.LevelDebug},
		{http.MethodPost, PathMCP, 200, true, slog.LevelInfo},
		{http.MethodPost, PathMessage, 202, true, slog.LevelInfo},
		{http.MethodPost, PathMCP, 503, true, slog.LevelWarn},
		{http.MethodPost, PathMCP, 202, false, slog.LevelDebug},
		{http.MethodPost, PathMessage, 202, false, slog.LevelDebug},
		{http.MethodPost, PathMCP, 401, false, slog.LevelWarn},
		{http.MethodPost, PathMCP, 503, false, slog.LevelWarn},
		{http.MethodGet, PathMCP, 200, false, slog.LevelInfo},
		{http.MethodGet, PathMCP, 405, false, slog.LevelDebug}, // no stream to offer (--stateless)
		{http.MethodPost, PathMCP, 405, false, slog.LevelWarn},
		{http.MethodGet, PathSSE, 405, false, slog.LevelWarn},
		{http.MethodDelete, PathMCP, 200, false, slog.LevelInfo},
		{http.MethodGet, PathSSE, 200, false, slog.LevelInfo},
		{http.MethodGet, PathHealth, 200, false, slog.LevelDebug},
		{http.MethodGet, PathMetrics, 200, false, slog.LevelDebug},
		{http.MethodGet, PathMetrics, 403, false, slog.LevelWarn},
		{http.MethodPut, "/files/a/b/c.pdf", 200, false, slog.LevelInfo},
		{http.MethodGet, "/files/a/b/c.pdf", 206, false, slog.LevelInfo},
		{http.MethodPost, "/files/a/b/c.pdf", 405, false, slog.LevelWarn},
		{http.MethodPatch, "/u/tus/x", 204, false, slog.LevelInfo},
	} {
		if got := accessLevel(httptest.NewRequest(tt.method, tt.path, nil), tt.status, tt.opens); got != tt.want {
			t.Errorf("%s %s %d (initialize %v): %v, want %v", tt.method, tt.path, tt.status, tt.opens, got, tt.want)
		}
	}
}

// TestNoStreamIsNoRefusal: the 405 a stateless server answers every
// client's GET on /mcp is not counted as a refusal; a 405 elsewhere is.
func TestNoStreamIsNoRefusal(t *testing.T) {
	refused := newRefusals(slog.New(slog.DiscardHandler))
	refused.last = time.Now() // no periodic line, which would clear the counts
	h := bounded(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusMethodNotAllowed)
	}), bodyRate{grace: time.Second, min: 1, credit: 1}, refused)
	for _, tt := range []struct{ method, path string }{
		{http.MethodGet, PathMCP}, {http.MethodPost, PathMCP}, {http.MethodGet, PathSSE},
	} {
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(tt.method, tt.path, nil))
	}
	if got := refused.counts[reasonFor(http.StatusMethodNotAllowed)]; got != 2 {
		t.Errorf("%d refusals counted, want 2 (POST /mcp and GET /sse)", got)
	}
}

package transport

import (
	"bytes"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
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

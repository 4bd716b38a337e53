package tools

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// serve serves body at path from a loopback server and returns its base URL.
func serve(t *testing.T, path, contentType, disposition string, body []byte) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != path {
			http.NotFound(w, r)
			return
		}
		if contentType != "" {
			w.Header().Set("Content-Type", contentType)
		} else {
			w.Header()["Content-Type"] = nil // keep net/http from sniffing one
		}
		if disposition != "" {
			w.Header().Set("Content-Disposition", disposition)
		}
		w.Write(body)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func TestStageSourceFaults(t *testing.T) {
	const max = 64 << 10
	tests := []struct {
		name    string
		handler http.HandlerFunc
		slug    string
		status  int
	}{
		{"announced over the cap", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", fmt.Sprint(max+1))
			w.Write(make([]byte, max+1))
		}, "SOURCE_TOO_LARGE", 413},
		{"streams past the cap without a length", func(w http.ResponseWriter, r *http.Request) {
			for range 10 {
				w.Write(make([]byte, max/4))
				w.(http.Flusher).Flush()
			}
		}, "SOURCE_TOO_LARGE", 413},
		{"body shorter than Content-Length", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", "5000")
			w.Write(make([]byte, 1000))
			w.(http.Flusher).Flush()
			conn, _, _ := w.(http.Hijacker).Hijack()
			conn.Close()
		}, "SOURCE_UNREACHABLE", 502},
		{"server error", func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "boom", http.StatusInternalServerError)
		}, "SOURCE_HTTP_ERROR", 502},
		{"too many redirects", func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, r.URL.Path+"x", http.StatusFound)
		}, "SOURCE_UNREACHABLE", 502},
		{"redirect to another scheme", func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "file:///etc/passwd", http.StatusFound)
		}, "INVALID_ARGUMENT", 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := &fakeProvider{}
			f := newFixture(t, p, max)
			srv := httptest.NewServer(tt.handler)
			defer srv.Close()
			e := errorOf(t, f.call(t, StageName, map[string]any{"url": srv.URL + "/f", "toolSlug": "GMAIL_SEND_EMAIL"}))
			if e.Slug != tt.slug || e.Status != tt.status {
				t.Errorf("got %s %d (%s), want %s %d", e.Slug, e.Status, e.Message, tt.slug, tt.status)
			}
			if !strings.HasPrefix(e.Message, "url: ") {
				t.Errorf("message %q does not name url", e.Message)
			}
			if p.calls() != 0 {
				t.Error("a failed fetch reached the provider")
			}
			f.spoolEmpty(t)
		})
	}
}

package transport

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
)

const initialize = `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`

func newTestServer(t *testing.T, token string, extra http.Handler) *httptest.Server {
	t.Helper()
	routes := map[string]http.Handler{}
	if extra != nil {
		routes["/files/"] = extra
	}
	h := NewHTTP(server.NewMCPServer("t", "1"), HTTPOptions{
		AuthToken: token, PublicURL: "https://files.example.com/", AllowedOrigins: []string{"https://app.example.com"}, Routes: routes, Logger: slog.New(slog.DiscardHandler),
	})
	srv := httptest.NewServer(h)
	t.Cleanup(func() {
		h.CloseSessions(context.Background())
		srv.Close()
	})
	return srv
}

func do(t *testing.T, method, url string, headers map[string]string) *http.Response {
	t.Helper()
	var body *strings.Reader
	if method == http.MethodPost {
		body = strings.NewReader(initialize)
	} else {
		body = strings.NewReader("")
	}
	req, _ := http.NewRequest(method, url, body)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	for k, v := range headers {
		if k == "Host" {
			req.Host = v
		} else {
			req.Header.Set(k, v)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	t.Cleanup(cancel)
	resp, err := http.DefaultClient.Do(req.WithContext(ctx))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func TestAccess(t *testing.T) {
	const token = "tok-123"
	srv := newTestServer(t, token, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(299) }))
	auth := "Bearer " + token
	tests := []struct {
		name    string
		method  string
		path    string
		headers map[string]string
		status  int
	}{
		{"mcp without a token", "POST", "/mcp", nil, 401},
		{"mcp with a wrong token", "POST", "/mcp", map[string]string{"Authorization": "Bearer tok-124"}, 401},
		{"mcp with a token prefix", "POST", "/mcp", map[string]string{"Authorization": "Bearer tok-12"}, 401},
		{"mcp with basic auth", "POST", "/mcp", map[string]string{"Authorization": "Basic dG9rLTEyMw=="}, 401},
		{"mcp with the token", "POST", "/mcp", map[string]string{"Authorization": auth}, 200},
		{"scheme is case-insensitive", "POST", "/mcp", map[string]string{"Authorization": "bearer " + token}, 200},
		{"sse without a token", "GET", "/sse", nil, 401},
		{"sse with the token", "GET", "/sse", map[string]string{"Authorization": auth}, 200},
		{"message without a token", "POST", "/message?sessionId=x", nil, 401},
		{"foreign origin with the token", "POST", "/mcp", map[string]string{"Authorization": auth, "Origin": "https://evil.example"}, 403},
		{"foreign origin on sse", "GET", "/sse", map[string]string{"Authorization": auth, "Origin": "http://evil.example:8080"}, 403},
		{"null origin", "POST", "/mcp", map[string]string{"Authorization": auth, "Origin": "null"}, 403},
		{"allowed origin", "POST", "/mcp", map[string]string{"Authorization": auth, "Origin": "https://app.example.com"}, 200},
		{"loopback origin", "POST", "/mcp", map[string]string{"Authorization": auth, "Origin": "http://localhost:6274"}, 200},
		{"rebound Host on loopback", "POST", "/mcp", map[string]string{"Authorization": auth, "Host": "evil.example:80"}, 403},
		{"rebound Host on sse", "GET", "/sse", map[string]string{"Authorization": auth, "Host": "evil.example"}, 403},
		{"public Host through a proxy", "POST", "/mcp", map[string]string{"Authorization": auth, "Host": "files.example.com"}, 200},
		{"public origin", "POST", "/mcp", map[string]string{"Authorization": auth, "Origin": "https://files.example.com"}, 200},
		{"health needs no token", "GET", "/healthz", nil, 200},
		{"preflight from an allowed origin", "OPTIONS", "/mcp", map[string]string{"Origin": "https://app.example.com", "Access-Control-Request-Method": "POST"}, 204},
		{"preflight on sse", "OPTIONS", "/sse", map[string]string{"Origin": "https://app.example.com", "Access-Control-Request-Method": "GET"}, 204},
		{"preflight from a foreign origin", "OPTIONS", "/mcp", map[string]string{"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"}, 403},
		{"upload route needs no token", "PUT", "/files/a", nil, 299},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := do(t, tt.method, srv.URL+tt.path, tt.headers)
			if resp.StatusCode != tt.status {
				t.Errorf("status %d, want %d", resp.StatusCode, tt.status)
			}
			if tt.status == 401 && resp.Header.Get("WWW-Authenticate") == "" {
				t.Error("401 without WWW-Authenticate")
			}
			if got := resp.Header.Get("Access-Control-Allow-Origin"); got == "*" || (tt.method == "OPTIONS" && tt.status == 204 && got != tt.headers["Origin"]) {
				t.Errorf("Access-Control-Allow-Origin: %q", got)
			}
		})
	}
}

func TestNoTokenMeansOpen(t *testing.T) {
	srv := newTestServer(t, "", nil)
	if resp := do(t, "POST", srv.URL+"/mcp", nil); resp.StatusCode != 200 {
		t.Errorf("status %d", resp.StatusCode)
	}
}

func TestDrain(t *testing.T) {
	d := NewDrain()
	release := make(chan struct{})
	entered := make(chan struct{})
	slow := d.Middleware(func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		close(entered)
		<-release
		return mcp.NewToolResultText("done"), nil
	})
	result := make(chan *mcp.CallToolResult)
	go func() { r, _ := slow(context.Background(), mcp.CallToolRequest{}); result <- r }()
	<-entered

	waited := make(chan error)
	go func() { waited <- d.Wait(context.Background()) }()
	select {
	case <-waited:
		t.Fatal("Wait returned while a call was in flight")
	case <-time.After(50 * time.Millisecond):
	}
	// New calls are refused while draining.
	if r, _ := d.Middleware(nil)(context.Background(), mcp.CallToolRequest{}); !r.IsError {
		t.Error("a call during the drain was accepted")
	}
	close(release)
	if r := <-result; r.IsError {
		t.Error("the call in flight failed")
	}
	if err := <-waited; err != nil {
		t.Error(err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	d2 := NewDrain()
	d2.enter("s", &call{})
	if err := d2.Wait(ctx); err == nil {
		t.Error("Wait ignored its context")
	}
}

package transport

import (
	"context"
	"io"
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

// TestBodyLimit: an MCP request body over the cap is refused, whether it
// announces its length or not.
func TestBodyLimit(t *testing.T) {
	h := NewHTTP(server.NewMCPServer("t", "1"), HTTPOptions{MaxBodyBytes: 1000, Logger: slog.New(slog.DiscardHandler)})
	srv := httptest.NewServer(h)
	defer srv.Close()
	defer h.CloseSessions(context.Background())
	big := `{"jsonrpc":"2.0","id":1,"method":"ping","params":{"pad":"` + strings.Repeat("x", 2000) + `"}}`
	for _, chunked := range []bool{false, true} {
		var body io.Reader = strings.NewReader(big)
		if chunked {
			body = io.MultiReader(body) // no length: sent chunked
		}
		req, _ := http.NewRequest(http.MethodPost, srv.URL+PathMCP, body)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode/100 == 2 {
			t.Errorf("chunked %v: a %d-byte body was accepted (%s)", chunked, len(big), resp.Status)
		}
	}
	if resp := do(t, http.MethodPost, srv.URL+PathMCP, nil); resp.StatusCode != http.StatusOK {
		t.Errorf("a small body: %s", resp.Status)
	}
}

type fakeSession struct{ id string }

func (s fakeSession) Initialize()                                         {}
func (s fakeSession) Initialized() bool                                   { return true }
func (s fakeSession) NotificationChannel() chan<- mcp.JSONRPCNotification { return nil }
func (s fakeSession) SessionID() string                                   { return s.id }

type fakeStreamableSession struct{ fakeSession }

func (fakeStreamableSession) UpgradeToSSEWhenReceiveNotification() {}

// TestSessionEndCancelsItsCalls: the end of an SSE session cancels its
// calls and only its; a streamable HTTP session's end (an idle sweep, say)
// cancels nothing, since its calls end with their own requests.
func TestSessionEndCancelsItsCalls(t *testing.T) {
	d := NewDrain()
	unregister := d.Hooks().OnUnregisterSession[0]
	running := func(s server.ClientSession) (context.Context, chan struct{}) {
		started, ctxs := make(chan struct{}), make(chan context.Context, 1)
		done := make(chan struct{})
		go func() {
			d.Middleware(func(ctx context.Context, _ mcp.CallToolRequest) (*mcp.CallToolResult, error) {
				ctxs <- ctx
				close(started)
				<-ctx.Done()
				return nil, nil
			})(server.NewMCPServer("t", "1").WithContext(context.Background(), s), mcp.CallToolRequest{})
			close(done)
		}()
		<-started
		return <-ctxs, done
	}
	sse, sseDone := running(fakeSession{"a"})
	other, _ := running(fakeSession{"b"})
	streamable, _ := running(fakeStreamableSession{fakeSession{"c"}})
	unregister(context.Background(), fakeSession{"a"})
	unregister(context.Background(), fakeStreamableSession{fakeSession{"c"}})
	select {
	case <-sseDone:
	case <-time.After(5 * time.Second):
		t.Fatal("the SSE session's call was not cancelled")
	}
	if sse.Err() == nil || other.Err() != nil || streamable.Err() != nil {
		t.Errorf("cancelled: sse %v, other session %v, streamable %v", sse.Err(), other.Err(), streamable.Err())
	}
	d.CancelAll()
	if other.Err() == nil || streamable.Err() == nil {
		t.Error("CancelAll left calls running")
	}
}

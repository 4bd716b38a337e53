package transport

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/filestage/filestage/auth"
)

// named returns an authenticator of the named clients of lines.
func named(t *testing.T, lines ...string) *auth.Authenticator {
	t.Helper()
	path := filepath.Join(t.TempDir(), "tokens")
	os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o600)
	a, err := auth.New(auth.Options{TokensFile: path})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// scopedServer serves two tools, each needing its own scope, to the named
// clients "both" (every scope) and "presign" (files:presign only).
func scopedServer(t *testing.T, stateless bool) (url, both, presign string, called *[]string) {
	t.Helper()
	tb, lb, _ := auth.NewToken("both", nil)
	tp, lp, _ := auth.NewToken("presign", []string{auth.ScopePresign})
	a := named(t, lb, lp)
	calls := &[]string{}
	s := server.NewMCPServer("t", "1", server.WithToolCapabilities(false))
	for _, name := range []string{"stage", "presign"} {
		s.AddTool(mcp.NewTool(name), func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			*calls = append(*calls, name+" by "+auth.FromContext(ctx).Name)
			return mcp.NewToolResultText("ok"), nil
		})
	}
	srv := newAccessServer(t, s, HTTPOptions{Auth: a, Stateless: stateless, ToolScopes: map[string]string{"stage": auth.ScopeStage, "presign": auth.ScopePresign}})
	return srv.URL + PathMCP, tb, tp, calls
}

// TestScopeSpellings: a tools/call for a tool the token's scopes do not
// cover is refused with 403 and the scope it needs, however the method and
// the tool's name are spelled in JSON; mcp-go reads them with the same
// decoder, so no spelling reads one way here and another there.
func TestScopeSpellings(t *testing.T) {
	bodies := []struct{ name, body string }{
		{"plain", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"stage"}}`},
		{"escaped slash", `{"jsonrpc":"2.0","id":1,"method":"tools\/call","params":{"name":"stage"}}`},
		{"unicode escapes", `{"jsonrpc":"2.0","id":1,"method":"tools\u002fcall","params":{"name":"st\u0061ge"}}`},
		{"key case", `{"jsonrpc":"2.0","id":1,"METHOD":"tools/call","Params":{"NAME":"stage"}}`},
		{"duplicate name, last wins", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"presign","name":"stage"}}`},
		{"duplicate method", `{"jsonrpc":"2.0","id":1,"method":"ping","method":"tools/call","params":{"name":"stage"}}`},
	}
	for _, stateless := range []bool{false, true} {
		for _, version := range []string{mcp.LATEST_LEGACY_PROTOCOL_VERSION, mcp.LATEST_PROTOCOL_VERSION} {
			url, _, presign, calls := scopedServer(t, stateless)
			session := ""
			if !stateless && version == mcp.LATEST_LEGACY_PROTOCOL_VERSION {
				session = openSession(t, url, presign)
			}
			for _, b := range bodies {
				t.Run(map[bool]string{false: "stateful", true: "stateless"}[stateless]+"/"+version+"/"+b.name, func(t *testing.T) {
					resp := post(t, url, presign, session, version, b.body)
					challenge := resp.Header.Get("WWW-Authenticate")
					if resp.StatusCode != http.StatusForbidden || !strings.Contains(challenge, `error="insufficient_scope"`) || !strings.Contains(challenge, `scope="files:stage"`) {
						t.Errorf("%d, WWW-Authenticate %q", resp.StatusCode, challenge)
					}
				})
			}
			// Every other JSON type where the name goes, and a batch: no
			// tool runs (checked below), whatever the answer says.
			for _, v := range []string{`5`, `true`, `null`, `["stage"]`, `{"name":"stage"}`} {
				body := `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":` + v + `}}`
				post(t, url, presign, session, version, body)
				post(t, url, presign, session, version, "["+body+"]")
			}
			if len(*calls) != 0 {
				t.Errorf("tools ran: %v", *calls)
			}
			// The scope it holds works.
			resp := rpcClient{url: url, version: version, token: presign}.post(t, session, "tools/call", "presign", `"id":2,`, `"name":"presign"`)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK || len(*calls) != 1 || (*calls)[0] != "presign by presign" {
				t.Errorf("the presign call: %d, calls %v", resp.StatusCode, *calls)
			}
		}
	}
}

// TestChallenges: without OAuth, 401 says realm; the token never reaches
// the handler.
func TestChallenges(t *testing.T) {
	var seen []string
	h := NewHTTP(server.NewMCPServer("t", "1"), HTTPOptions{AuthToken: "tok", Routes: nil})
	inner := h.authenticate(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = append(seen, r.Header.Get("Authorization"))
	}))
	for _, tc := range []struct {
		header, challenge string
		status            int
	}{
		{"", `Bearer realm="filestage"`, 401},
		{"Bearer nope", `Bearer realm="filestage", error="invalid_token", error_description="the token is not one this server accepts"`, 401},
		{"Basic dG9rOg==", `Bearer realm="filestage", error="invalid_token"`, 401},
		{"Bearer tok", "", 200},
		{"bearer   tok  ", "", 200},
	} {
		req, _ := http.NewRequest(http.MethodPost, "/mcp", nil)
		if tc.header != "" {
			req.Header.Set("Authorization", tc.header)
		}
		w := &recorder{header: http.Header{}, status: 200}
		inner.ServeHTTP(w, req)
		if w.status != tc.status || !strings.HasPrefix(w.header.Get("WWW-Authenticate"), tc.challenge) {
			t.Errorf("Authorization %q: %d %q", tc.header, w.status, w.header.Get("WWW-Authenticate"))
		}
	}
	for _, a := range seen {
		if a != "" {
			t.Errorf("the handler saw Authorization %q", a)
		}
	}
	if q := quote("a\"b\\c\nd\u00e9"); q != `"a\"b\\c d "` {
		t.Errorf("quote: %s", q)
	}
}

type recorder struct {
	header http.Header
	status int
}

func (r *recorder) Header() http.Header         { return r.header }
func (r *recorder) Write(p []byte) (int, error) { return len(p), nil }
func (r *recorder) WriteHeader(s int)           { r.status = s }

// post sends one JSON-RPC message with token, to session in version ("" for
// none of either), and returns the answer, its body read.
func post(t *testing.T, url, token, session, version, body string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	if version != "" {
		req.Header.Set(mcp.HeaderProtocolVersion, version)
	}
	if session != "" {
		req.Header.Set(server.HeaderKeySessionID, session)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

func openSession(t *testing.T, url, token string) string {
	t.Helper()
	resp := post(t, url, token, "", mcp.LATEST_LEGACY_PROTOCOL_VERSION, initialize)
	id := resp.Header.Get(server.HeaderKeySessionID)
	if id == "" {
		t.Fatalf("initialize: %d, no session", resp.StatusCode)
	}
	post(t, url, token, id, mcp.LATEST_LEGACY_PROTOCOL_VERSION, `{"jsonrpc":"2.0","method":"notifications/initialized"}`)
	return id
}

// TestClientSessionCap: one client's sessions are capped on top of the
// server's. At its cap a client's own oldest unused session makes room;
// when all of its sessions are in use it is refused, and another client
// is not.
func TestClientSessionCap(t *testing.T) {
	ta, la, _ := auth.NewToken("a", nil)
	tb, lb, _ := auth.NewToken("b", nil)
	srv := newAccessServer(t, server.NewMCPServer("t", "1"), HTTPOptions{Auth: named(t, la, lb), MaxSessions: 10, MaxClientSessions: 2})
	url := srv.URL + PathMCP
	ping := `{"jsonrpc":"2.0","id":3,"method":"ping"}`
	first, second := openSession(t, url, ta), openSession(t, url, ta)
	post(t, url, ta, second, mcp.LATEST_LEGACY_PROTOCOL_VERSION, ping) // second is in use, first is not
	third := openSession(t, url, ta)
	if resp := post(t, url, ta, first, mcp.LATEST_LEGACY_PROTOCOL_VERSION, ping); resp.StatusCode != http.StatusNotFound {
		t.Errorf("a's unused first session after its third: %d, want 404 (ended to make room)", resp.StatusCode)
	}
	post(t, url, ta, third, mcp.LATEST_LEGACY_PROTOCOL_VERSION, ping)
	resp := post(t, url, ta, "", mcp.LATEST_LEGACY_PROTOCOL_VERSION, initialize)
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Errorf("a's fourth session with two in use: %d", resp.StatusCode)
	}
	if sse := do(t, http.MethodGet, srv.URL+PathSSE, map[string]string{"Authorization": "Bearer " + ta}); sse.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("a's SSE stream at its cap: %d", sse.StatusCode)
	}
	for _, id := range []string{second, third} {
		if resp := post(t, url, ta, id, mcp.LATEST_LEGACY_PROTOCOL_VERSION, ping); resp.StatusCode != http.StatusOK {
			t.Errorf("a's session in use: %d", resp.StatusCode)
		}
	}
	openSession(t, url, tb)
	openSession(t, url, tb)
}

// TestSessionCapUnreadableEra: an initialize whose _meta claims protocol
// 2026-07-28 but does not decode is a legacy one to mcp-go, which opens a
// session for it: it counts against the caps like any other.
func TestSessionCapUnreadableEra(t *testing.T) {
	ta, la, _ := auth.NewToken("a", nil)
	srv := newAccessServer(t, server.NewMCPServer("t", "1"), HTTPOptions{Auth: named(t, la), MaxSessions: 10, MaxClientSessions: 1})
	url := srv.URL + PathMCP
	used := openSession(t, url, ta)
	post(t, url, ta, used, mcp.LATEST_LEGACY_PROTOCOL_VERSION, `{"jsonrpc":"2.0","id":3,"method":"ping"}`)
	sneaky := `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"},"_meta":0,"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"x","version":"1"}}}`
	// No protocol version header: the era is the _meta's alone.
	resp := post(t, url, ta, "", "", sneaky)
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get(server.HeaderKeySessionID) != "" {
		t.Errorf("a second session past a cap of one, with an unreadable _meta: %d, session %q", resp.StatusCode, resp.Header.Get(server.HeaderKeySessionID))
	}
}

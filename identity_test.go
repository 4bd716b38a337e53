package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	mcptransport "github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/filestage/filestage/auth"
	"github.com/filestage/filestage/internal/hydratest"
	"github.com/filestage/filestage/internal/testfile"
	"github.com/filestage/filestage/schema"
)

// principals is a way for two clients, alice and bob, to prove who they
// are: the server's settings, and each client's token once the server
// listens at addr.
type principals struct {
	name   string
	env    func(t *testing.T) map[string]string
	tokens func(t *testing.T, addr string) (alice, bob string)
}

// namedTokens: two clients of a tokens file.
func namedTokens() principals {
	var alice, bob string
	return principals{
		name: "named-tokens",
		env: func(t *testing.T) map[string]string {
			var la, lb string
			alice, la, _ = auth.NewToken("alice", nil)
			bob, lb, _ = auth.NewToken("bob", nil)
			return map[string]string{"FILESTAGE_TOKENS_FILE": tokensFile(t, la, lb)}
		},
		tokens: func(*testing.T, string) (string, string) { return alice, bob },
	}
}

// oauthClients: two OAuth clients of a real authorization server, one
// with the client-credentials grant, one with a user's authorization code.
func oauthClients() principals {
	var hs *hydratest.Server
	return principals{
		name: "oauth",
		env: func(t *testing.T) map[string]string {
			hs = hydratest.Start(t)
			return map[string]string{"FILESTAGE_OAUTH_ISSUER": hs.Issuer}
		},
		tokens: func(t *testing.T, addr string) (string, string) {
			aud := "http://" + addr + "/mcp"
			scopes := []string{auth.ScopeStage, auth.ScopePresign}
			ca := hs.NewClient(t, scopes, []string{aud}, []string{"http://127.0.0.1:9/cb"}, "")
			cb := hs.NewClient(t, scopes, []string{aud}, []string{"http://127.0.0.1:9/cb"}, "")
			return hs.ClientCredentials(t, ca, scopes, aud), hs.AuthCode(t, cb, "bob", scopes, aud)
		},
	}
}

// mode is how a client reaches the server.
type mode struct {
	name    string
	args    []string
	version string
	sse     bool
}

var isolationModes = []mode{
	{"streamable/" + mcp.LATEST_LEGACY_PROTOCOL_VERSION, []string{"serve", "--transport", "http", "--listen", "127.0.0.1:0"}, mcp.LATEST_LEGACY_PROTOCOL_VERSION, false},
	{"streamable/" + mcp.LATEST_PROTOCOL_VERSION, []string{"serve", "--transport", "http", "--listen", "127.0.0.1:0"}, mcp.LATEST_PROTOCOL_VERSION, false},
	{"stateless/" + mcp.LATEST_LEGACY_PROTOCOL_VERSION, []string{"serve", "--transport", "http", "--listen", "127.0.0.1:0", "--stateless"}, mcp.LATEST_LEGACY_PROTOCOL_VERSION, false},
	{"stateless/" + mcp.LATEST_PROTOCOL_VERSION, []string{"serve", "--transport", "http", "--listen", "127.0.0.1:0", "--stateless"}, mcp.LATEST_PROTOCOL_VERSION, false},
	{"sse/" + mcp.LATEST_LEGACY_PROTOCOL_VERSION, []string{"serve", "--transport", "http", "--listen", "127.0.0.1:0"}, mcp.LATEST_LEGACY_PROTOCOL_VERSION, true},
}

// dial connects an MCP client with token over m.
func dial(t *testing.T, addr, token string, m mode) *client.Client {
	t.Helper()
	hdr := map[string]string{"Authorization": "Bearer " + token}
	var c *client.Client
	var err error
	if m.sse {
		c, err = client.NewSSEMCPClient("http://"+addr+"/sse", mcptransport.WithHeaders(hdr))
	} else {
		c, err = client.NewStreamableHttpClient("http://"+addr+"/mcp", mcptransport.WithHTTPHeaders(hdr))
	}
	if err != nil {
		t.Fatal(err)
	}
	return connectWith(t, c, m.version)
}

// sessionOf is the session a client's requests name, and the request that
// names another one: the Mcp-Session-Id header, or SSE's sessionId.
func sessionOf(c *client.Client, m mode) string {
	if m.sse {
		return c.GetTransport().(*mcptransport.SSE).GetEndpoint().Query().Get("sessionId")
	}
	return c.GetSessionId()
}

// gatedSource sends half its body, then waits for open before the rest.
func gatedSource(t *testing.T, body []byte) (src *httptest.Server, asked <-chan struct{}, open func()) {
	a, gate := make(chan struct{}), make(chan struct{})
	var askedOnce, openOnce sync.Once
	src = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", fmt.Sprint(len(body)))
		w.Write(body[:len(body)/2])
		w.(http.Flusher).Flush()
		askedOnce.Do(func() { close(a) })
		select {
		case <-gate:
			w.Write(body[len(body)/2:])
		case <-r.Context().Done():
		}
	}))
	open = func() { openOnce.Do(func() { close(gate) }) }
	t.Cleanup(func() { open(); src.Close() })
	return src, a, open
}

// raw sends one request with a bearer token, as a client would by hand:
// to a session of its choosing, in a protocol version ("" for none). It
// returns the status, WWW-Authenticate and the body.
func raw(t *testing.T, method, url, token, session, version, body string) (status int, challenge, answer string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	if version != "" {
		req.Header.Set(mcp.HeaderProtocolVersion, version)
	}
	if session != "" {
		req.Header.Set(server.HeaderKeySessionID, session)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := http.DefaultClient.Do(req.WithContext(ctx))
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body) // a GET stream ends with the context
	return resp.StatusCode, resp.Header.Get("WWW-Authenticate"), string(bytes.TrimSpace(b))
}

// TestIsolation: bob, holding a good token of his own, tries to post into
// alice's session, stream from it, end it, cancel her call and read her
// progress, over every transport, both protocol versions and --stateless,
// with named tokens and with OAuth. Each attempt is answered exactly as if
// her session did not exist, her call completes unharmed with all its
// progress, bob hears none of it, and her stored file is not his to find.
func TestIsolation(t *testing.T) {
	for _, ps := range []principals{namedTokens(), oauthClients()} {
		for _, m := range isolationModes {
			t.Run(ps.name+"/"+m.name, func(t *testing.T) {
				s := start(t, ps.env(t), m.args...)
				aliceToken, bobToken := ps.tokens(t, s.addr)
				body := testfile.Random(512 << 10)
				src, asked, open := gatedSource(t, body)

				alice := dial(t, s.addr, aliceToken, m)
				bob := dial(t, s.addr, bobToken, m)
				var mu sync.Mutex
				var aliceHeard, bobHeard []mcp.JSONRPCNotification
				alice.OnNotification(func(n mcp.JSONRPCNotification) { mu.Lock(); aliceHeard = append(aliceHeard, n); mu.Unlock() })
				bob.OnNotification(func(n mcp.JSONRPCNotification) { mu.Lock(); bobHeard = append(bobHeard, n); mu.Unlock() })

				done := make(chan *mcp.CallToolResult, 1)
				go func() {
					req := mcp.CallToolRequest{}
					req.Params.Name = "stage_connector_file"
					req.Params.Arguments = map[string]any{"url": src.URL + "/a.bin", "toolSlug": "GMAIL_SEND_EMAIL"}
					req.Params.Meta = &mcp.Meta{ProgressToken: "alice-1"}
					ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
					defer cancel()
					res, err := alice.CallTool(ctx, req)
					if err != nil {
						t.Errorf("alice's call: %v", err)
					}
					done <- res
				}()
				select {
				case <-asked:
				case <-time.After(10 * time.Second):
					t.Fatal("alice's source was never asked")
				}

				endpoint := "http://" + s.addr + "/mcp"
				if m.sse {
					endpoint = "http://" + s.addr + "/message?sessionId="
				}
				victim, own := sessionOf(alice, m), sessionOf(bob, m)
				list := `{"jsonrpc":"2.0","id":99,"method":"tools/list"}`
				if victim != "" {
					// As if alice's session did not exist.
					unknownURL, victimURL, victimSession, unknownSession := endpoint, endpoint, victim, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
					if m.sse {
						unknownURL, victimURL, victimSession, unknownSession = endpoint+unknownSession, endpoint+victim, "", ""
					}
					wantStatus, _, wantBody := raw(t, http.MethodPost, unknownURL, bobToken, unknownSession, m.version, list)
					if status, _, got := raw(t, http.MethodPost, victimURL, bobToken, victimSession, m.version, list); status != wantStatus || got != wantBody || status < 400 {
						t.Errorf("bob posting into alice's session: %d %s; an unknown session gets %d %s", status, got, wantStatus, wantBody)
					}
					if !m.sse {
						for _, method := range []string{http.MethodGet, http.MethodDelete} {
							if status, _, got := raw(t, method, endpoint, bobToken, victim, m.version, ""); status != http.StatusNotFound {
								t.Errorf("bob's %s of alice's session: %d %s, want 404", method, status, got)
							}
						}
					}
				}
				// Cancels naming every request ID alice may have used,
				// through her session, through his own, and through none.
				for id := range 8 {
					cancel := fmt.Sprintf(`{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":%d}}`, id)
					for _, session := range []string{victim, own, ""} {
						url, header := endpoint, session
						if m.sse {
							url, header = endpoint+session, ""
						}
						raw(t, http.MethodPost, url, bobToken, header, m.version, cancel)
					}
				}
				time.Sleep(200 * time.Millisecond) // a cancel that got through would land now
				open()
				var res *mcp.CallToolResult
				select {
				case res = <-done:
				case <-time.After(30 * time.Second):
					t.Fatal("alice's call did not finish")
				}
				if res == nil {
					return
				}
				staged := decode[schema.StageResponse](t, res)
				if staged.MD5 != md5hex(body) {
					t.Fatalf("alice's call: md5 %s, want %s", staged.MD5, md5hex(body))
				}
				time.Sleep(100 * time.Millisecond)
				mu.Lock()
				progress := 0
				for _, n := range aliceHeard {
					if n.Method == "notifications/progress" {
						progress++
					}
				}
				if progress == 0 {
					t.Error("alice heard no progress of her own call")
				}
				if len(bobHeard) > 0 {
					t.Errorf("bob heard %d notifications, the first %+v", len(bobHeard), bobHeard[0])
				}
				mu.Unlock()

				// The same bytes for bob are a new object, under his own key:
				// nothing tells him alice stored them.
				presign := decode[schema.PresignResponse](t, call(t, bob, "request_presigned_upload", map[string]any{
					"toolkit_slug": "gmail", "tool_slug": "GMAIL_SEND_EMAIL", "filename": "a.bin", "mimetype": staged.Mimetype, "md5": staged.MD5,
				}))
				if presign.Type != "new" || presign.Key == staged.S3Key {
					t.Errorf("bob's presign of alice's bytes: type %s, key %s (alice's: %s)", presign.Type, presign.Key, staged.S3Key)
				}
				again := decode[schema.PresignResponse](t, call(t, alice, "request_presigned_upload", map[string]any{
					"toolkit_slug": "gmail", "tool_slug": "GMAIL_SEND_EMAIL", "filename": "a.bin", "mimetype": staged.Mimetype, "md5": staged.MD5,
				}))
				if again.Type != "existing" || again.Key != staged.S3Key {
					t.Errorf("alice's presign of her own bytes: type %s, key %s, want existing %s", again.Type, again.Key, staged.S3Key)
				}
			})
		}
	}
}

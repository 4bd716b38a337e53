package main

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/filestage/filestage/auth"
	"github.com/filestage/filestage/internal/hydratest"
	"github.com/filestage/filestage/schema"
)

// claimsOf reads a JWT's claims without checking it.
func claimsOf(t *testing.T, token string) map[string]any {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %.20s…", token)
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var c map[string]any
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	return c
}

// forge signs claims with a key of the attacker's own, under the header
// fields given (the kid of the issuer's real key, say).
func forge(t *testing.T, claims map[string]any, kid string) string {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: k}, (&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", kid))
	if err != nil {
		t.Fatal(err)
	}
	payload, _ := json.Marshal(claims)
	jws, err := s.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	out, _ := jws.CompactSerialize()
	return out
}

const initialize = `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`

// TestOAuth runs filestage as an OAuth 2.1 resource server of a real
// authorization server (Ory Hydra): an MCP client finds the authorization
// server from a 401 alone, good tokens work over streamable HTTP and SSE,
// every kind of bad token is refused with the right status and
// WWW-Authenticate, scopes decide which tools a token sees and calls, and
// the token goes no further than filestage.
func TestOAuth(t *testing.T) {
	hs := hydratest.Start(t)
	var srcMu sync.Mutex
	var srcAuth []string
	src := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		srcMu.Lock()
		srcAuth = append(srcAuth, r.Header.Get("Authorization"))
		srcMu.Unlock()
		w.Write([]byte("hello from the source"))
	}))
	defer src.Close()
	s := start(t, map[string]string{
		"FILESTAGE_OAUTH_ISSUER":                      hs.Issuer,
		"FILESTAGE_OAUTH_INTROSPECTION_URL":           hs.Admin + "/admin/oauth2/introspect",
		"FILESTAGE_OAUTH_INTROSPECTION_CLIENT_ID":     "filestage",
		"FILESTAGE_OAUTH_INTROSPECTION_CLIENT_SECRET": "unused-by-hydra-admin",
	}, "serve", "--transport", "http", "--listen", "127.0.0.1:0")
	base := "http://" + s.addr
	resource := base + "/mcp"
	metadataURL := base + "/.well-known/oauth-protected-resource/mcp"

	t.Run("discovery", func(t *testing.T) {
		// Each endpoint is a protected resource of its own: clients check
		// that the resource is the URL they use.
		for _, path := range []string{"/mcp", "/sse", "/message?sessionId=x"} {
			want := metadataURL
			if path != "/mcp" {
				want = base + "/.well-known/oauth-protected-resource/sse"
			}
			status, challenge, _ := raw(t, http.MethodPost, base+path, "", "", "", initialize)
			if status != http.StatusUnauthorized || !strings.Contains(challenge, `resource_metadata="`+want+`"`) ||
				!strings.Contains(challenge, `scope="files:presign files:stage"`) || strings.Contains(challenge, "error=") {
				t.Errorf("%s without a token: %d, WWW-Authenticate %q", path, status, challenge)
			}
		}
		for path, want := range map[string]string{"/.well-known/oauth-protected-resource/mcp": resource, "/.well-known/oauth-protected-resource": resource, "/.well-known/oauth-protected-resource/sse": base + "/sse"} {
			status, _, body := raw(t, http.MethodGet, base+path, "", "", "", "")
			var md map[string]any
			json.Unmarshal([]byte(body), &md)
			if status != http.StatusOK || md["resource"] != want || !equalJSON(md["authorization_servers"], []string{hs.Issuer}) ||
				!equalJSON(md["scopes_supported"], []string{"files:presign", "files:stage"}) || !equalJSON(md["bearer_methods_supported"], []string{"header"}) {
				t.Errorf("GET %s: %d %s", path, status, body)
			}
		}
	})

	scopes := []string{auth.ScopeStage, auth.ScopePresign}
	full := hs.NewClient(t, scopes, []string{resource, "https://elsewhere.example/mcp"}, []string{"http://127.0.0.1:9/cb"}, "")
	good := hs.ClientCredentials(t, full, scopes, resource)

	t.Run("good token", func(t *testing.T) {
		for _, sse := range []bool{false, true} {
			c := dial(t, s.addr, good, mode{version: mcp.LATEST_LEGACY_PROTOCOL_VERSION, sse: sse})
			res := decode[schema.StageResponse](t, call(t, c, "stage_connector_file", map[string]any{"url": src.URL + "/f.txt", "toolSlug": "GMAIL_SEND_EMAIL"}))
			if res.MD5 == "" {
				t.Errorf("sse=%v: %+v", sse, res)
			}
		}
		user := hs.NewClient(t, scopes, []string{resource}, []string{"http://127.0.0.1:9/cb"}, "")
		c := dial(t, s.addr, hs.AuthCode(t, user, "carol", scopes, resource), mode{version: mcp.LATEST_PROTOCOL_VERSION})
		call(t, c, "stage_connector_file", map[string]any{"url": "data:text/plain;base64,aGk=", "toolSlug": "GMAIL_SEND_EMAIL"})
		srcMu.Lock()
		defer srcMu.Unlock()
		for _, a := range srcAuth {
			if a != "" {
				t.Errorf("the source was sent Authorization: %q", a)
			}
		}
		if strings.Contains(s.logs.String(), good) {
			t.Error("the access token is in the log")
		}
	})

	t.Run("refused tokens", func(t *testing.T) {
		claims := claimsOf(t, good)
		var header struct {
			Kid string `json:"kid"`
		}
		hb, _ := base64.RawURLEncoding.DecodeString(strings.Split(good, ".")[0])
		json.Unmarshal(hb, &header)
		with := func(k string, v any) map[string]any {
			c := map[string]any{}
			for key, val := range claims {
				c[key] = val
			}
			if v == nil {
				delete(c, k)
			} else {
				c[k] = v
			}
			return c
		}
		none := func(c map[string]any) string {
			h, _ := json.Marshal(map[string]any{"alg": "none", "typ": "JWT", "kid": header.Kid})
			b, _ := json.Marshal(c)
			return base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(b) + "."
		}
		opaque := hs.NewClient(t, scopes, []string{"https://elsewhere.example/mcp"}, []string{"http://127.0.0.1:9/cb"}, "opaque")
		tests := []struct{ name, token, why string }{
			{"garbage", "not-a-token", "not active"},
			{"wrong audience", hs.ClientCredentials(t, full, scopes, "https://elsewhere.example/mcp"), "audience"},
			{"no audience", hs.ClientCredentials(t, full, scopes, ""), "audience"},
			{"re-signed", forge(t, claims, header.Kid), "does not verify"},
			{"re-signed with our audience added", forge(t, with("aud", []string{resource}), header.Kid), "does not verify"},
			{"wrong issuer", forge(t, with("iss", "https://evil.example/"), header.Kid), "not trusted"},
			{"expired", forge(t, with("exp", time.Now().Add(-time.Hour).Unix()), header.Kid), ""},
			{"alg none", none(claims), "allowed algorithm"},
			{"alg none, expiry extended", none(with("exp", time.Now().Add(24*time.Hour).Unix())), "allowed algorithm"},
			{"signature dropped", strings.Join(strings.Split(good, ".")[:2], ".") + ".", "does not verify"},
			{"opaque, for another audience", hs.ClientCredentials(t, opaque, scopes, "https://elsewhere.example/mcp"), "audience"},
			{"opaque, made up", "ory_at_madeup.madeup", "not active"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				for path, md := range map[string]string{"/mcp": metadataURL, "/sse": base + "/.well-known/oauth-protected-resource/sse"} {
					status, challenge, body := raw(t, http.MethodPost, base+path, tt.token, "", "", initialize)
					if status != http.StatusUnauthorized || !strings.Contains(challenge, `error="invalid_token"`) ||
						!strings.Contains(challenge, `resource_metadata="`+md+`"`) || !strings.Contains(body, tt.why) {
						t.Errorf("%s: %d, WWW-Authenticate %q, body %q (want it to say %q)", path, status, challenge, body, tt.why)
					}
				}
			})
		}
	})

	t.Run("opaque token by introspection", func(t *testing.T) {
		opaque := hs.NewClient(t, scopes, []string{resource}, []string{"http://127.0.0.1:9/cb"}, "opaque")
		token := hs.ClientCredentials(t, opaque, []string{auth.ScopePresign}, resource)
		if strings.Count(token, ".") == 2 {
			t.Fatalf("Hydra issued a JWT to an opaque-strategy client")
		}
		c := dial(t, s.addr, token, mode{version: mcp.LATEST_LEGACY_PROTOCOL_VERSION})
		listed := listTools(t, c)
		if strings.Join(listed, ",") != "request_presigned_upload" {
			t.Errorf("tools listed for a presign-only token: %v", listed)
		}
	})

	t.Run("scopes", func(t *testing.T) {
		presignOnly := hs.ClientCredentials(t, full, []string{auth.ScopePresign}, resource)
		for _, m := range []mode{{version: mcp.LATEST_LEGACY_PROTOCOL_VERSION}, {version: mcp.LATEST_PROTOCOL_VERSION}, {version: mcp.LATEST_LEGACY_PROTOCOL_VERSION, sse: true}} {
			c := dial(t, s.addr, presignOnly, m)
			if listed := listTools(t, c); strings.Join(listed, ",") != "request_presigned_upload" {
				t.Errorf("sse=%v %s: tools listed %v", m.sse, m.version, listed)
			}
			decode[schema.PresignResponse](t, call(t, c, "request_presigned_upload", map[string]any{
				"toolkit_slug": "gmail", "tool_slug": "GMAIL_SEND_EMAIL", "filename": "a.txt", "mimetype": "text/plain", "md5": "5d41402abc4b2a76b9719d911017c592",
			}))
		}
		// The call itself is refused with 403 and the scope it needs.
		c := dial(t, s.addr, presignOnly, mode{version: mcp.LATEST_LEGACY_PROTOCOL_VERSION})
		callBody := `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"stage_connector_file","arguments":{"url":"data:,x","toolSlug":"GMAIL_SEND_EMAIL"}}}`
		for _, body := range []string{callBody, strings.Replace(callBody, `"tools/call"`, `"tools\/call"`, 1), strings.Replace(callBody, `"name"`, `"NAME"`, 1)} {
			req, _ := http.NewRequest(http.MethodPost, base+"/mcp", strings.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+presignOnly)
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Accept", "application/json, text/event-stream")
			req.Header.Set("Mcp-Session-Id", c.GetSessionId())
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			challenge := resp.Header.Get("WWW-Authenticate")
			if resp.StatusCode != http.StatusForbidden || !strings.Contains(challenge, `error="insufficient_scope"`) || !strings.Contains(challenge, `scope="files:stage"`) {
				t.Errorf("%s: %d, WWW-Authenticate %q", body, resp.StatusCode, challenge)
			}
		}
	})
}

func listTools(t *testing.T, c *client.Client) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := c.ListTools(ctx, mcp.ListToolsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, tool := range res.Tools {
		names = append(names, tool.Name)
	}
	return names
}

func equalJSON(got any, want []string) bool {
	a, _ := json.Marshal(got)
	b, _ := json.Marshal(want)
	return string(a) == string(b)
}

// TestOAuthKeyRotation: the authorization server rotates its signing key
// while filestage runs. A token of the new key works at once, without a
// restart; a token of the withdrawn key is refused from then on.
func TestOAuthKeyRotation(t *testing.T) {
	hs := hydratest.Start(t)
	s := start(t, map[string]string{"FILESTAGE_OAUTH_ISSUER": hs.Issuer}, "serve", "--transport", "http", "--listen", "127.0.0.1:0")
	resource := "http://" + s.addr + "/mcp"
	scopes := []string{auth.ScopeStage, auth.ScopePresign}
	c := hs.NewClient(t, scopes, []string{resource}, []string{"http://127.0.0.1:9/cb"}, "")
	old := hs.ClientCredentials(t, c, scopes, resource)
	if status, _, body := raw(t, http.MethodPost, resource, old, "", "", initialize); status != http.StatusOK {
		t.Fatalf("a token before the rotation: %d %s", status, body)
	}
	hs.RotateKeys(t)
	fresh := hs.ClientCredentials(t, c, scopes, resource)
	if status, _, body := raw(t, http.MethodPost, resource, fresh, "", "", initialize); status != http.StatusOK {
		t.Fatalf("a token of the new key: %d %s", status, body)
	}
	status, challenge, _ := raw(t, http.MethodPost, resource, old, "", "", initialize)
	if status != http.StatusUnauthorized || !strings.Contains(challenge, `error="invalid_token"`) {
		t.Errorf("a token of the withdrawn key: %d, WWW-Authenticate %q", status, challenge)
	}
}

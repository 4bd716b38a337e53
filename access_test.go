package main

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	mcptransport "github.com/mark3labs/mcp-go/client/transport"

	"github.com/filestage/filestage/internal/testfile"
	"github.com/filestage/filestage/schema"
	"github.com/filestage/filestage/transport"
)

// TestSecretsNeverLogged runs every provider over HTTP at debug level, as
// the real binary wires it, and drives both tools down their success and
// failure paths, with bad tokens and secrets in source URLs; the log must
// not show the provider's API key, the auth token (right or wrong), an
// upload URL's signature, a source URL's query or the local store's key.
func TestSecretsNeverLogged(t *testing.T) {
	for name, setup := range backends {
		t.Run(name, func(t *testing.T) {
			b, env := setup(t)
			token := randomHex(t)
			env["FILESTAGE_PROVIDER"] = name
			env["FILESTAGE_LOG_LEVEL"] = "debug"
			env["FILESTAGE_AUTH_TOKEN"] = token
			s := start(t, env, "serve", "--transport", "http", "--listen", "127.0.0.1:0")
			// Secrets the test makes up: a wrong token a client might
			// send, and a signature in a source URL's query.
			wrong, sourceSig := randomHex(t), randomHex(t)
			secrets := append(slices.Clone(b.secrets), token, wrong, sourceSig)

			for _, path := range []string{transport.PathMCP, transport.PathSSE, transport.PathMessage + "?sessionId=x"} {
				method := http.MethodPost
				if path == transport.PathSSE {
					method = http.MethodGet
				}
				req, _ := http.NewRequest(method, "http://"+s.addr+path, strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"ping"}`))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("Authorization", "Bearer "+wrong)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusUnauthorized {
					t.Errorf("%s %s with a wrong token: %s", method, path, resp.Status)
				}
			}

			c, err := client.NewStreamableHttpClient("http://"+s.addr+transport.PathMCP,
				mcptransport.WithHTTPHeaders(map[string]string{"Authorization": "Bearer " + token}))
			if err != nil {
				t.Fatal(err)
			}
			connect(t, c)
			img := testfile.PNG(32 << 10)
			src := sourceServer(t, map[string][]byte{"/img/chart": img}, "image/png")
			query := "?X-Amz-Signature=" + sourceSig

			staged := call(t, c, "stage_connector_file", map[string]any{"url": src.URL + "/img/chart" + query, "toolSlug": "SLACK_UPLOAD_FILE"})
			if staged.IsError {
				t.Errorf("stage: %s", text(staged))
			}
			toolError(t, call(t, c, "stage_connector_file", map[string]any{"url": src.URL + "/missing.png" + query, "toolSlug": "SLACK_UPLOAD_FILE"}))
			toolError(t, call(t, c, "stage_connector_file", map[string]any{"url": src.URL + "/img/chart" + query, "toolSlug": "slack_upload_file"}))

			body := testfile.PNG(16 << 10)
			args := map[string]any{"toolkit_slug": "gmail", "tool_slug": "GMAIL_SEND_EMAIL", "filename": "a.png", "mimetype": "image/png", "md5": md5hex(body)}
			if b.presign {
				slot := decode[schema.PresignResponse](t, call(t, c, "request_presigned_upload", args))
				u, err := url.Parse(slot.NewPresignedURL)
				if err != nil {
					t.Fatal(err)
				}
				// A presigned URL's query is its authorisation.
				found := false
				for _, values := range u.Query() {
					for _, v := range values {
						if len(v) >= 16 {
							secrets, found = append(secrets, v), true
						}
					}
				}
				if !found {
					t.Errorf("no signature found in the upload URL %s", u.Redacted())
				}
				req, _ := http.NewRequest(slot.Method, slot.NewPresignedURL, bytes.NewReader(body))
				for k, v := range slot.Headers {
					req.Header.Set(k, v)
				}
				if resp, err := http.DefaultClient.Do(req); err != nil {
					t.Fatal(err)
				} else if resp.Body.Close(); resp.StatusCode/100 != 2 {
					t.Errorf("PUT: %s", resp.Status)
				}
			} else {
				toolError(t, call(t, c, "request_presigned_upload", args))
			}
			args["md5"] = "not-a-digest"
			toolError(t, call(t, c, "request_presigned_upload", args))

			if key, err := os.ReadFile(filepath.Join(s.dataDir, "secret")); err == nil {
				secrets = append(secrets, string(key), hex.EncodeToString(key),
					base64.StdEncoding.EncodeToString(key), base64.RawURLEncoding.EncodeToString(key))
			}
			// Let the last calls' log lines land.
			time.Sleep(100 * time.Millisecond)
			logs := s.logs.String()
			if !strings.Contains(logs, `msg="tool failed"`) {
				t.Errorf("no failure was logged: the test looked at nothing\n%s", logs)
			}
			for _, secret := range secrets {
				if secret != "" && strings.Contains(logs, secret) {
					t.Errorf("the log shows a secret (%.6s…):\n%s", secret, logs)
				}
			}
		})
	}
}

// TestAccessWiring checks that the real wiring hands the token, the public
// URL and the allowed origins to the HTTP transport: the transport's own
// tests cannot see main.go.
func TestAccessWiring(t *testing.T) {
	const token = "wiring-token-0123456789"
	s := start(t, map[string]string{
		"FILESTAGE_AUTH_TOKEN": token, "FILESTAGE_PUBLIC_URL": "https://files.example.com", "FILESTAGE_ALLOWED_ORIGINS": "https://app.example.com",
	}, "serve", "--transport", "http", "--listen", "127.0.0.1:0")
	auth := "Bearer " + token
	tests := []struct {
		name, method, path string
		headers            map[string]string
		status             int
	}{
		{"no token", "POST", transport.PathMCP, nil, 401},
		{"wrong token on sse", "GET", transport.PathSSE, map[string]string{"Authorization": "Bearer nope"}, 401},
		{"wrong token on message", "POST", transport.PathMessage + "?sessionId=x", map[string]string{"Authorization": "Bearer nope"}, 401},
		{"the token", "POST", transport.PathMCP, map[string]string{"Authorization": auth}, 200},
		{"the public URL's Host, as a proxy sends it", "POST", transport.PathMCP, map[string]string{"Authorization": auth, "Host": "files.example.com"}, 200},
		{"a rebound Host", "POST", transport.PathMCP, map[string]string{"Authorization": auth, "Host": "evil.example"}, 403},
		{"the public URL's origin", "POST", transport.PathMCP, map[string]string{"Authorization": auth, "Origin": "https://files.example.com"}, 200},
		{"an allowed origin", "POST", transport.PathMCP, map[string]string{"Authorization": auth, "Origin": "https://app.example.com"}, 200},
		{"a foreign origin", "POST", transport.PathMCP, map[string]string{"Authorization": auth, "Origin": "https://evil.example"}, 403},
		// Upload URLs carry their own authorisation, the signature.
		{"an upload without a signature", "PUT", "/files/gmail/GMAIL_SEND_EMAIL/x.png", nil, 403},
		{"health", "GET", transport.PathHealth, nil, 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(tt.method, "http://"+s.addr+tt.path, strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Accept", "application/json, text/event-stream")
			for k, v := range tt.headers {
				if k == "Host" {
					req.Host = v
				} else {
					req.Header.Set(k, v)
				}
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tt.status {
				t.Errorf("status %d, want %d", resp.StatusCode, tt.status)
			}
			if tt.status == 401 && !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer ") {
				t.Errorf("401 with WWW-Authenticate %q", resp.Header.Get("WWW-Authenticate"))
			}
		})
	}
}

func randomHex(t *testing.T) string {
	t.Helper()
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

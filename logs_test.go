package main

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/filestage/filestage/auth"
	"github.com/filestage/filestage/schema"
	"github.com/filestage/filestage/tools"
	"github.com/filestage/filestage/transport"
)

// TestAccessLog: with --log-format json every line is a JSON object; each
// HTTP request has one access line (at debug level for MCP messages) with
// its id, path, status and client;
// a tool's lines carry the id of the request that called it; and no line
// holds a token, a signature or an upload link's id.
func TestAccessLog(t *testing.T) {
	token, line, _ := auth.NewToken("alice", nil)
	s := start(t, map[string]string{"FILESTAGE_LOG_FORMAT": "json", "FILESTAGE_LOG_LEVEL": "debug", "FILESTAGE_TOKENS_FILE": tokensFile(t, line)},
		"serve", "--transport", "http", "--listen", "127.0.0.1:0", "--stateless")
	c := dial(t, s.addr, token, isolationModes[2])
	staged := decode[schema.StageResponse](t, call(t, c, tools.StageName, map[string]any{
		"url": "data:text/plain;base64," + base64.StdEncoding.EncodeToString([]byte("logged")), "toolSlug": "GMAIL_SEND_EMAIL"}))
	asked := decode[schema.UserUploadResponse](t, call(t, c, "request_user_upload", map[string]any{"toolSlug": "GMAIL_SEND_EMAIL"}))
	link, err := url.Parse(asked.UploadURL)
	if err != nil || asked.UploadURL == "" {
		t.Fatalf("upload URL %q: %v", asked.UploadURL, err)
	}
	linkID := strings.TrimPrefix(link.Path, "/u/")

	type sent struct {
		method, url, token string
		status             int
		path, client       string
	}
	requests := []sent{
		{"GET", staged.DownloadURL, "", 200, "/files/" + staged.S3Key, ""},
		{"GET", "http://" + s.addr + "/mcp", "", 401, "/mcp", ""},
		{"POST", "http://" + s.addr + "/mcp", "not-a-token", 401, "/mcp", ""},
		{"GET", asked.UploadURL, "", 200, "/u/{id}", ""},
		{"GET", "http://" + s.addr + "/files/" + staged.S3Key + "?expires=1&signature=forged", "", 403, "/files/" + staged.S3Key, ""},
	}
	ids := map[string]sent{}
	for _, r := range requests {
		req, _ := http.NewRequest(r.method, r.url, nil)
		if r.token != "" {
			req.Header.Set("Authorization", "Bearer "+r.token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		id := resp.Header.Get(transport.HeaderRequestID)
		if resp.StatusCode != r.status || id == "" {
			t.Fatalf("%s %s: %d, request id %q", r.method, r.url, resp.StatusCode, id)
		}
		ids[id] = r
	}
	s.stop(t)

	logs := s.logs.String()
	for _, secret := range []string{token, "signature=", "forged", linkID} {
		if strings.Contains(logs, secret) {
			t.Errorf("the log holds %q", secret)
		}
	}
	var lines []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(logs), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil || m["time"] == nil || m["level"] == nil || m["msg"] == nil {
			t.Fatalf("not a JSON log line: %q (%v)", l, err)
		}
		lines = append(lines, m)
	}
	accessLines := map[string][]map[string]any{}
	var stagedLine map[string]any
	for _, m := range lines {
		if m["msg"] == "filestage started" && !strings.HasPrefix(fmt.Sprint(m["auth"]), "named tokens from ") {
			t.Errorf("the start-up line says auth %v", m["auth"])
		}
		id, _ := m["request_id"].(string)
		if m["msg"] == "http" {
			accessLines[id] = append(accessLines[id], m)
		}
		if m["msg"] == "staged" {
			stagedLine = m
		}
	}
	for id, r := range ids {
		got := accessLines[id]
		if len(got) != 1 {
			t.Errorf("%s %s: %d access lines", r.method, r.url, len(got))
			continue
		}
		m := got[0]
		level := "INFO"
		if r.status >= 400 {
			level = "WARN"
		}
		if m["method"] != r.method || m["path"] != r.path || m["status"] != float64(r.status) || m["client"] != r.client || m["level"] != level ||
			m["remote"] == "" || m["duration"] == nil || m["bytes"] == nil {
			t.Errorf("%s %s: access line %v", r.method, r.url, m)
		}
	}
	// The tool's line and the access line of the request that called it.
	id, _ := stagedLine["request_id"].(string)
	if call := accessLines[id]; id == "" || len(call) != 1 || call[0]["method"] != "POST" || call[0]["path"] != "/mcp" || call[0]["client"] != "alice" {
		t.Errorf("staged line %v; its request's access lines %v", stagedLine, accessLines[id])
	}
}

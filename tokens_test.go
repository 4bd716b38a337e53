package main

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/filestage/filestage/auth"
	"github.com/filestage/filestage/internal/testfile"
	"github.com/filestage/filestage/schema"
)

var legacy = mode{version: mcp.LATEST_LEGACY_PROTOCOL_VERSION}

// tokensFile writes lines to a fresh tokens file and returns its path.
func tokensFile(t *testing.T, lines ...string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "tokens")
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// stageAsync starts a stage call of url and returns its result when done.
func stageAsync(t *testing.T, c interface {
	CallTool(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error)
}, url string) <-chan *mcp.CallToolResult {
	done := make(chan *mcp.CallToolResult, 1)
	go func() {
		req := mcp.CallToolRequest{}
		req.Params.Name = "stage_connector_file"
		req.Params.Arguments = map[string]any{"url": url, "toolSlug": "GMAIL_SEND_EMAIL"}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		res, err := c.CallTool(ctx, req)
		if err != nil {
			res = &mcp.CallToolResult{IsError: true, Content: []mcp.Content{mcp.NewTextContent("protocol error: " + err.Error())}}
		}
		done <- res
	}()
	return done
}

func wait[T any](t *testing.T, what string, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(30 * time.Second):
		t.Fatalf("%s: timed out", what)
	}
	var zero T
	return zero
}

// TestNamedTokenLimits: a client's own limits from the tokens file hold
// it, and only it, back, with a tool error saying when to try again; it
// recovers once its calls end or time passes.
func TestNamedTokenLimits(t *testing.T) {
	alice, la, _ := auth.NewToken("alice", nil)
	bob, lb, _ := auth.NewToken("bob", nil)
	s := start(t, map[string]string{"FILESTAGE_TOKENS_FILE": tokensFile(t, la+" max-stages=1 calls-per-minute=120", lb)}, "serve", "--transport", "http", "--listen", "127.0.0.1:0")
	a, b := dial(t, s.addr, alice, legacy), dial(t, s.addr, bob, legacy)

	body := testfile.Random(256 << 10)
	src, asked, open := gatedSource(t, body)
	first := stageAsync(t, a, src.URL+"/held.bin")
	wait(t, "alice's first stage to start", asked)
	busy := toolError(t, call(t, a, "stage_connector_file", map[string]any{"url": "data:,second", "toolSlug": "GMAIL_SEND_EMAIL"}))
	if busy.Slug != "BUSY" || busy.Status != 503 || !strings.Contains(busy.Message, "this client") {
		t.Errorf("alice's second stage: %+v", busy)
	}
	decode[schema.StageResponse](t, call(t, b, "stage_connector_file", map[string]any{"url": "data:,bob", "toolSlug": "GMAIL_SEND_EMAIL"}))
	open()
	decode[schema.StageResponse](t, wait(t, "alice's first stage", first))
	decode[schema.StageResponse](t, call(t, a, "stage_connector_file", map[string]any{"url": "data:,again", "toolSlug": "GMAIL_SEND_EMAIL"}))

	presign := map[string]any{"toolkit_slug": "gmail", "tool_slug": "GMAIL_SEND_EMAIL", "filename": "a.txt", "mimetype": "text/plain", "md5": "5d41402abc4b2a76b9719d911017c592"}
	var limited *schema.ErrorBody
	for range 200 {
		res := call(t, a, "request_presigned_upload", presign)
		if res.IsError {
			e := toolError(t, res)
			limited = &e
			break
		}
	}
	if limited == nil || limited.Slug != "RATE_LIMITED" || limited.Status != 429 || !strings.Contains(limited.SuggestedFix, "Wait 1 s") {
		t.Fatalf("200 calls at a limit of 120 a minute: %+v", limited)
	}
	decode[schema.PresignResponse](t, call(t, b, "request_presigned_upload", presign))
	time.Sleep(time.Second)
	decode[schema.PresignResponse](t, call(t, a, "request_presigned_upload", presign))
}

// TestTokensFileReload: on SIGHUP a client removed from the tokens file is
// refused at once, its running call ends and its sessions end; a client
// that stays carries on undisturbed, and a file with a mistake changes
// nothing.
func TestTokensFileReload(t *testing.T) {
	alice, la, _ := auth.NewToken("alice", nil)
	bob, lb, _ := auth.NewToken("bob", nil)
	path := tokensFile(t, la, lb)
	s := start(t, map[string]string{"FILESTAGE_TOKENS_FILE": path}, "serve", "--transport", "http", "--listen", "127.0.0.1:0")
	a, aSSE, b := dial(t, s.addr, alice, legacy), dial(t, s.addr, alice, mode{version: mcp.LATEST_LEGACY_PROTOCOL_VERSION, sse: true}), dial(t, s.addr, bob, legacy)
	lost := make(chan struct{})
	aSSE.OnConnectionLost(func(error) { close(lost) })
	session := a.GetSessionId()
	src, asked, _ := gatedSource(t, testfile.Random(256<<10))
	running := stageAsync(t, a, src.URL+"/held.bin")
	wait(t, "alice's stage to start", asked)

	hangup := func() {
		t.Helper()
		if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
	}
	// A mistake: nothing changes.
	os.WriteFile(path, []byte("alice not-a-hash\n"), 0o600)
	hangup()
	waitFor(t, "the log to report the mistake", func() bool { return strings.Contains(s.logs.String(), "tokens file not reloaded") })
	if status, _, _ := raw(t, http.MethodPost, "http://"+s.addr+"/mcp", alice, "", "", initialize); status != http.StatusOK {
		t.Fatalf("alice after a reload that failed: %d", status)
	}

	os.WriteFile(path, []byte(lb+"\n"), 0o600)
	hangup()
	waitFor(t, "alice to be refused", func() bool {
		status, _, _ := raw(t, http.MethodPost, "http://"+s.addr+"/mcp", alice, "", "", initialize)
		return status == http.StatusUnauthorized
	})
	if res := wait(t, "alice's running stage to end", running); !res.IsError {
		t.Error("alice's stage finished after her token was removed")
	}
	wait(t, "alice's SSE stream to end", lost)
	decode[schema.StageResponse](t, call(t, b, "stage_connector_file", map[string]any{"url": "data:,bob", "toolSlug": "GMAIL_SEND_EMAIL"}))

	// Alice back with a new token: her old session is gone.
	alice2, la2, _ := auth.NewToken("alice", nil)
	os.WriteFile(path, []byte(lb+"\n"+la2+"\n"), 0o600)
	hangup()
	waitFor(t, "alice's new token to work", func() bool {
		status, _, _ := raw(t, http.MethodPost, "http://"+s.addr+"/mcp", alice2, "", "", initialize)
		return status == http.StatusOK
	})
	if status, _, body := raw(t, http.MethodPost, "http://"+s.addr+"/mcp", alice2, session, mcp.LATEST_LEGACY_PROTOCOL_VERSION, `{"jsonrpc":"2.0","id":5,"method":"tools/list"}`); status != http.StatusNotFound {
		t.Errorf("alice's session from before her token was removed: %d %s", status, body)
	}
}

// TestTokenNewCommand: filestage token new prints a fresh token once and
// the tokens file line that accepts it, holding only its hash.
func TestTokenNewCommand(t *testing.T) {
	var out, errOut strings.Builder
	if code := run(context.Background(), []string{"token", "new", "ci-bot", "--scopes", "files:stage"}, strings.NewReader(""), &out, &errOut, func(string) string { return "" }, nil); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	lines := strings.Split(out.String(), "\n")
	token, line := lines[0], ""
	for _, l := range lines {
		if strings.HasPrefix(l, "ci-bot ") {
			line = l
		}
	}
	if want := "ci-bot " + auth.HashToken(token) + " scopes=files:stage"; line != want || strings.Count(out.String(), token) != 1 {
		t.Fatalf("output:\n%s\nwant the token once and the line %q", out.String(), want)
	}
	s := start(t, map[string]string{"FILESTAGE_TOKENS_FILE": tokensFile(t, line)}, "serve", "--transport", "http", "--listen", "127.0.0.1:0")
	c := dial(t, s.addr, token, legacy)
	if names := listTools(t, c); strings.Join(names, ",") != "get_user_upload,request_user_upload,stage_connector_file,stage_connector_files" {
		t.Errorf("tools of a files:stage client: %v", names)
	}
	if code := run(context.Background(), []string{"token", "new", "bad/name"}, strings.NewReader(""), &out, &errOut, func(string) string { return "" }, nil); code != 2 {
		t.Errorf("a bad name: exit %d", code)
	}
}

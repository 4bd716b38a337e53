package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/filestage/filestage/internal/testfile"
)

// TestTypeScriptClient drives the built binary with the official TypeScript
// MCP SDK (interop/ts/client.mjs) over stdio, streamable HTTP and SSE: a
// client not written in Go lists both tools and completes both flows.
func TestTypeScriptClient(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs node")
	}
	node, err := exec.LookPath("node")
	if err == nil {
		_, err = os.Stat(filepath.Join("interop", "ts", "node_modules", "@modelcontextprotocol", "sdk"))
	}
	if err != nil {
		msg := "needs node and the TypeScript MCP SDK: run `npm ci --prefix interop/ts` (" + err.Error() + ")"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	bin := binary(t)
	body := testfile.PNG(100 << 10)
	src := sourceServer(t, map[string][]byte{"/images/logo": body}, "application/octet-stream")

	for _, tc := range []struct{ transport, path string }{{"stdio", ""}, {"http", "/mcp"}, {"sse", "/sse"}} {
		t.Run(tc.transport, func(t *testing.T) {
			env := []string{"FILESTAGE_DATA_DIR=" + t.TempDir(), "FILESTAGE_ALLOW_PRIVATE_URLS=true"}
			for _, kv := range os.Environ() { // none of the developer's own settings
				if !strings.HasPrefix(kv, "FILESTAGE_") {
					env = append(env, kv)
				}
			}
			target := bin
			if tc.path != "" {
				target = "http://" + startBinary(t, bin, env) + tc.path
			}
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, node, filepath.Join("interop", "ts", "client.mjs"),
				tc.transport, target, src.URL+"/images/logo", md5hex(body), strconv.Itoa(len(body)))
			cmd.Env, cmd.WaitDelay = env, 5*time.Second
			out, err := cmd.CombinedOutput()
			if err != nil || !regexp.MustCompile(`(?m)^ok `+tc.transport+`$`).Match(out) {
				t.Fatalf("node client.mjs %s: %v\n%s", tc.transport, err, out)
			}
		})
	}
}

// startBinary serves MCP over HTTP from the built binary and returns the
// address it logged; at cleanup it sends SIGTERM and wants exit status 0.
func startBinary(t *testing.T, bin string, env []string) string {
	t.Helper()
	logs := &syncBuffer{}
	cmd := exec.Command(bin, "serve", "--transport", "http", "--listen", "127.0.0.1:0")
	cmd.Env, cmd.Stderr = env, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var waitErr error
	done := make(chan struct{})
	go func() { waitErr = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
			if waitErr != nil {
				t.Errorf("filestage exited with %v after SIGTERM\n%s", waitErr, logs)
			}
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			<-done
			t.Errorf("filestage did not exit within 30s of SIGTERM\n%s", logs)
		}
	})
	started := regexp.MustCompile(`msg="filestage started" .*\baddr=(\S+)`)
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if m := started.FindStringSubmatch(logs.String()); m != nil {
			return m[1]
		}
		select {
		case <-done:
			t.Fatalf("filestage exited before it started (%v)\n%s", waitErr, logs)
		default:
		}
	}
	t.Fatalf("filestage did not log its start within 15s\n%s", logs)
	return ""
}

package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/filestage/filestage/internal/hydratest"
	"github.com/filestage/filestage/internal/testfile"
)

// needNode returns node's path, or skips the test (fails it when CI=true)
// when node or the TypeScript MCP SDK is missing.
func needNode(t *testing.T) string {
	t.Helper()
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
	return node
}

// TestTypeScriptClient drives the built binary with the official TypeScript
// MCP SDK (interop/ts/client.mjs) over stdio, streamable HTTP and SSE: a
// client not written in Go lists both tools and completes both flows.
func TestTypeScriptClient(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs node")
	}
	node := needNode(t)
	bin := binary(t)
	body := testfile.PNG(100 << 10)
	src := sourceServer(t, map[string][]byte{"/images/logo": body}, "application/octet-stream")

	runTSClients(t, node, bin, "client.mjs", "ok ", src.URL+"/images/logo", md5hex(body), strconv.Itoa(len(body)))
}

// runTSClients runs the interop script (interop/ts/<script>) against bin
// over stdio, streamable HTTP and SSE, with args after the transport and
// the target (the binary for stdio, else the endpoint of a server started
// from it); the script must print a line of ok and the transport's name.
func runTSClients(t *testing.T, node, bin, script, ok string, args ...string) {
	t.Helper()
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
			cmd := exec.CommandContext(ctx, node, append([]string{filepath.Join("interop", "ts", script), tc.transport, target}, args...)...)
			cmd.Env, cmd.WaitDelay = env, 5*time.Second
			out, err := cmd.CombinedOutput()
			if err != nil || !regexp.MustCompile(`(?m)^`+regexp.QuoteMeta(ok+tc.transport)+`$`).Match(out) {
				t.Fatalf("node %s %s: %v\n%s", script, tc.transport, err, out)
			}
		})
	}
}

// TestTypeScriptOAuth runs the official TypeScript MCP SDK's own OAuth
// client (interop/ts/oauth.mjs) against the built binary serving as an
// OAuth 2.1 resource server for a real authorization server, Ory Hydra, over
// streamable HTTP and SSE. The SDK gets the 401, finds Hydra from it alone
// (protected resource metadata, then Hydra's metadata) and sends the user to
// authorize; this test plays the user agent (login and consent as alice,
// accepted through Hydra's admin API) and hands the final redirect back.
// With the token, the SDK completes both flows; without it, or with a bad
// one, filestage refuses (oauth.mjs checks both).
func TestTypeScriptOAuth(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs node")
	}
	node := needNode(t)
	hs := hydratest.Start(t)
	bin := binary(t)
	body := testfile.PNG(100 << 10)
	src := sourceServer(t, map[string][]byte{"/images/logo": body}, "application/octet-stream")

	for _, tc := range []struct{ kind, path string }{{"http", "/mcp"}, {"sse", "/sse"}} {
		t.Run(tc.kind, func(t *testing.T) {
			env := []string{
				"FILESTAGE_DATA_DIR=" + t.TempDir(),
				"FILESTAGE_ALLOW_PRIVATE_URLS=true",
				"FILESTAGE_TRANSPORT=http",
				"FILESTAGE_OAUTH_ISSUER=" + hs.Issuer,
			}
			for _, kv := range os.Environ() { // none of the developer's own settings
				if !strings.HasPrefix(kv, "FILESTAGE_") {
					env = append(env, kv)
				}
			}
			addr := startBinary(t, bin, env)
			// The redirect URI is never contacted: the final redirect is
			// handed to oauth.mjs on its stdin.
			const redirectURI = "http://127.0.0.1:1/callback"
			// The client may ask for the endpoint it uses as its audience:
			// /mcp and /sse are each a protected resource.
			oc := hs.NewClient(t, []string{"files:stage", "files:presign"}, []string{"http://" + addr + tc.path}, []string{redirectURI}, "")

			ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, node, filepath.Join("interop", "ts", "oauth.mjs"),
				tc.kind, "http://"+addr+tc.path, src.URL+"/images/logo", md5hex(body), strconv.Itoa(len(body)),
				oc.ID, oc.Secret, redirectURI)
			cmd.Env, cmd.WaitDelay = env, 5*time.Second
			stderr := &syncBuffer{}
			cmd.Stderr = stderr
			stdin, err := cmd.StdinPipe()
			if err != nil {
				t.Fatal(err)
			}
			stdout, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			var out strings.Builder
			output := func() string { return out.String() + stderr.String() }
			authorized, ok := 0, false
			lines := bufio.NewScanner(stdout)
			lines.Buffer(nil, 1<<20)
			for lines.Scan() {
				line := lines.Text()
				fmt.Fprintln(&out, line)
				switch {
				case strings.HasPrefix(line, "AUTHORIZE "):
					authorized++
					final, err := hs.AcceptAuthorizationErr(strings.TrimPrefix(line, "AUTHORIZE "), "alice")
					if err != nil {
						cancel()
						cmd.Wait()
						t.Fatalf("accepting the authorization oauth.mjs asked for: %v\n%s", err, output())
					}
					if _, err := io.WriteString(stdin, final+"\n"); err != nil {
						t.Errorf("writing the redirect to oauth.mjs: %v", err)
					}
				case strings.HasPrefix(line, "TOKEN "):
					t.Logf("access token claims: %s", strings.TrimPrefix(line, "TOKEN "))
				case line == "ok oauth "+tc.kind:
					ok = true
				}
			}
			stdin.Close()
			err = cmd.Wait()
			if err != nil || !ok || authorized != 1 {
				t.Fatalf("node oauth.mjs %s: %v (authorizations: %d)\n%s", tc.kind, err, authorized, output())
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

package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/filestage/filestage/internal/testfile"
	"github.com/filestage/filestage/schema"
)

// TestSources stages each kind of source through MCP, on the local store
// over stdio and streamable HTTP, and on S3 (real server) and Recoup
// (which fetches, so it must refuse the local kinds).
func TestSources(t *testing.T) {
	for _, name := range []string{"local/stdio", "local/streamable-http", "s3", "composio", "recoup"} {
		t.Run(name, func(t *testing.T) {
			provider, tr, _ := strings.Cut(name, "/")
			if tr == "" {
				tr = "streamable-http"
			}
			b, env := backends[provider](t)
			env["FILESTAGE_PROVIDER"] = provider
			roots := t.TempDir()
			env["FILESTAGE_FILE_ROOTS"] = roots
			env["FILESTAGE_MAX_INLINE_BYTES"] = "64KiB"
			for _, x := range transports {
				if x.name == tr {
					s := start(t, env, x.args...)
					testSources(t, s, x.connect(t, s, mcp.LATEST_LEGACY_PROTOCOL_VERSION), b, roots)
				}
			}
		})
	}
}

func testSources(t *testing.T, s *instance, c *client.Client, b backend, root string) {
	pdf := append([]byte("%PDF-1.7\n"), testfile.Random(300<<10)...)
	if err := os.WriteFile(filepath.Join(root, "Q3 report.pdf"), pdf, 0o644); err != nil {
		t.Fatal(err)
	}
	outside := filepath.Join(t.TempDir(), "secret.txt")
	os.WriteFile(outside, []byte("secret"), 0o644)
	os.Symlink(outside, filepath.Join(root, "link-out.txt"))
	os.Mkdir(filepath.Join(root, "dir"), 0o755)
	os.Symlink("/dev/zero", filepath.Join(root, "zero"))
	png := testfile.PNG(40 << 10)

	ok := []struct {
		name, url  string
		body       []byte
		file, mime string
	}{
		{"file", "file://" + filepath.ToSlash(filepath.Join(root, "Q3%20report.pdf")), pdf, "Q3 report.pdf", "application/pdf"},
		{"data", "data:image/png;name=chart.png;base64," + base64.StdEncoding.EncodeToString(png), png, "chart.png", "image/png"},
		{"data without a name", "data:;base64," + base64.StdEncoding.EncodeToString(png), png, "", "image/png"},
	}
	for _, tt := range ok {
		t.Run(tt.name, func(t *testing.T) {
			res := call(t, c, "stage_connector_file", map[string]any{"url": tt.url, "toolSlug": "GMAIL_SEND_EMAIL"})
			if b.fetches {
				if e := toolError(t, res); e.Slug != "UNSUPPORTED_BY_PROVIDER" || !strings.Contains(e.SuggestedFix, "--provider local") {
					t.Errorf("got %+v, want UNSUPPORTED_BY_PROVIDER", e)
				}
				return
			}
			out := decode[schema.StageResponse](t, res)
			if out.MD5 != md5hex(tt.body) || out.Size == nil || *out.Size != int64(len(tt.body)) || out.Mimetype != tt.mime || (tt.file != "" && out.Name != tt.file) {
				t.Errorf("got %+v, want %s %s %s", out, md5hex(tt.body), tt.file, tt.mime)
			}
			if stored, ok := b.object(t, out.S3Key); !ok || !bytes.Equal(stored, tt.body) {
				t.Errorf("storage does not hold the bytes under %s", out.S3Key)
			}
		})
	}

	refused := []struct {
		name, url, slug, says string
	}{
		{"dot-dot escape", "file://" + filepath.ToSlash(root) + "/../" + filepath.Base(filepath.Dir(outside)) + "/secret.txt", "SOURCE_REFUSED", "outside the allowed file roots"},
		{"symlink out of the root", "file://" + filepath.ToSlash(filepath.Join(root, "link-out.txt")), "SOURCE_REFUSED", "outside the allowed file roots"},
		{"a directory", "file://" + filepath.ToSlash(filepath.Join(root, "dir")), "SOURCE_NOT_A_FILE", "directory"},
		{"the root itself", "file://" + filepath.ToSlash(root), "SOURCE_NOT_A_FILE", "directory"},
		{"/dev/zero", "file:///dev/zero", "SOURCE_REFUSED", "outside"},
		{"a link to /dev/zero", "file://" + filepath.ToSlash(filepath.Join(root, "zero")), "SOURCE_REFUSED", "outside"},
		{"a missing file", "file://" + filepath.ToSlash(filepath.Join(root, "missing.pdf")), "SOURCE_NOT_A_FILE", "does not exist"},
		{"a host", "file://fileserver/share/a.pdf", "INVALID_ARGUMENT", "names no host"},
		{"over-cap data", "data:application/octet-stream;base64," + base64.StdEncoding.EncodeToString(make([]byte, 64<<10+1)), "SOURCE_TOO_LARGE", "more than 65536 bytes"},
		{"data without a comma", "data:image/png;base64", "INVALID_ARGUMENT", "comma"},
		{"bad base64", "data:image/png;base64,iVBOR*w0KGgo=", "INVALID_ARGUMENT", "base64"},
		{"bad media type", "data:png;base64,aGk=", "INVALID_ARGUMENT", "type/subtype"},
		{"an unknown scheme", "ftp://example.com/a.png", "INVALID_ARGUMENT", "ftp"},
	}
	for _, tt := range refused {
		t.Run(tt.name, func(t *testing.T) {
			e := toolError(t, call(t, c, "stage_connector_file", map[string]any{"url": tt.url, "toolSlug": "GMAIL_SEND_EMAIL"}))
			if b.fetches && !strings.HasPrefix(tt.url, "ftp:") { // Recoup refuses every local source alike
				tt.slug, tt.says = "UNSUPPORTED_BY_PROVIDER", "fetches URLs itself"
			}
			if e.Slug != tt.slug || !strings.Contains(e.Message, tt.says) || e.SuggestedFix == "" {
				t.Errorf("got %+v, want %s saying %q", e, tt.slug, tt.says)
			}
			if !b.fetches && !strings.HasPrefix(e.Message, "url: ") {
				t.Errorf("the message does not name the field: %s", e.Message)
			}
			if strings.Contains(e.Message, "secret") && tt.name == "symlink out of the root" {
				t.Errorf("the message shows where the link leads: %s", e.Message)
			}
		})
	}
	checkTmpEmpty(t, s.dataDir)
}

// slowSource serves body in chunks with a pause between them, announcing
// its length, so that a stage takes long enough to report progress.
func slowSource(t *testing.T, body []byte, chunks int, pause time.Duration) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", fmt.Sprint(len(body)))
		w.Header().Set("Content-Type", "application/octet-stream")
		writeSlowly(w, r, body, chunks, pause)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// writeSlowly writes body in chunks pieces, each flushed and followed by
// pause, until the client goes away.
func writeSlowly(w http.ResponseWriter, r *http.Request, body []byte, chunks int, pause time.Duration) {
	step := max(1, len(body)/chunks)
	for off := 0; off < len(body); off += step {
		if _, err := w.Write(body[off:min(off+step, len(body))]); err != nil {
			return
		}
		w.(http.Flusher).Flush()
		select {
		case <-time.After(pause):
		case <-r.Context().Done():
			return
		}
	}
}

// TestProgress: a call with a progressToken gets notifications/progress in
// order, each further than the last, with the total of both passes.
func TestProgress(t *testing.T) {
	for _, tr := range transports {
		for _, version := range tr.versions {
			t.Run(tr.name+"/"+version, func(t *testing.T) {
				body := testfile.Random(4 << 20)
				src := slowSource(t, body, 16, 80*time.Millisecond)
				s := start(t, nil, tr.args...)
				c := tr.connect(t, s, version)
				heard := progressOf(c)
				req := mcp.CallToolRequest{}
				req.Params.Name = "stage_connector_file"
				req.Params.Arguments = map[string]any{"url": src.URL + "/big.bin", "toolSlug": "SLACK_UPLOAD_FILE"}
				req.Params.Meta = &mcp.Meta{ProgressToken: "stage-1"}
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				res, err := c.CallTool(ctx, req)
				if err != nil {
					t.Fatal(err)
				}
				if out := decode[schema.StageResponse](t, res); out.MD5 != md5hex(body) {
					t.Fatalf("md5 %s, want %s", out.MD5, md5hex(body))
				}
				time.Sleep(100 * time.Millisecond) // over stdio the last one may follow the answer
				got := heard()
				if len(got) < 3 {
					t.Fatalf("%d progress notifications for a 1.3 s stage, want several: %v", len(got), got)
				}
				total := float64(2 * len(body))
				last := -1.0
				for i, n := range got {
					p, _ := n["progress"].(float64)
					if n["progressToken"] != "stage-1" || n["total"] != total || p <= last || p > total || n["message"] == "" {
						t.Errorf("notification %d: %v (previous progress %v, total %v)", i, n, last, total)
					}
					last = p
				}
				if last != total {
					t.Errorf("the last notification says %v of %v: %v", last, total, got)
				}
				if len(got) > 10 {
					t.Errorf("%d notifications in about 1.3 s: more than a few a second", len(got))
				}
			})
		}
	}
}

// TestCancel stops a stage while its source is still sending: by
// notifications/cancelled (stdio), by the client dropping the request's
// connection (streamable HTTP), its SSE stream, or its end of stdio. The
// fetch must stop, and no temporary file and no object may remain.
func TestCancel(t *testing.T) {
	cases := []struct {
		name string
		tr   int // index in transports
		// drop ends the call from the client's side.
		drop func(s *instance, c *client.Client, cancel context.CancelFunc)
	}{
		// stdio: the client sends notifications/cancelled.
		{"stdio/cancelled", 0, func(_ *instance, _ *client.Client, cancel context.CancelFunc) { cancel() }},
		{"stdio/client gone", 0, func(s *instance, _ *client.Client, _ context.CancelFunc) { s.stdout.Close() }},
		// HTTP: the request's connection closes.
		{"streamable-http", 1, func(_ *instance, _ *client.Client, cancel context.CancelFunc) { cancel() }},
		// SSE has no way to cancel one call: the client drops its stream.
		{"sse", 2, func(_ *instance, c *client.Client, _ context.CancelFunc) { c.Close() }},
	}
	for _, cc := range cases {
		tr := transports[cc.tr]
		t.Run(cc.name, func(t *testing.T) {
			body := testfile.Random(1 << 20)
			sent := make(chan struct{})
			gone := make(chan struct{})
			var once sync.Once
			src := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Length", fmt.Sprint(len(body)))
				w.Write(body[:len(body)/2])
				w.(http.Flusher).Flush()
				once.Do(func() { close(sent) })
				<-r.Context().Done() // the rest never comes
				close(gone)
			}))
			defer src.Close()
			s := start(t, nil, tr.args...)
			c := tr.connect(t, s, tr.versions[0])

			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() {
				req := mcp.CallToolRequest{}
				req.Params.Name = "stage_connector_file"
				req.Params.Arguments = map[string]any{"url": src.URL + "/half.bin", "toolSlug": "GMAIL_SEND_EMAIL"}
				_, err := c.CallTool(ctx, req)
				done <- err
			}()
			select {
			case <-sent:
			case err := <-done:
				t.Fatalf("the call ended before the source sent anything: %v", err)
			case <-time.After(10 * time.Second):
				t.Fatal("the source was never asked")
			}
			waitFor(t, "a spool file", func() bool { return countFiles(filepath.Join(s.dataDir, "tmp")) > 0 })
			cc.drop(s, c, cancel)
			defer cancel()
			select {
			case <-gone:
			case <-time.After(5 * time.Second):
				t.Fatal("the source was still being read 5 s after the cancellation")
			}
			waitFor(t, "the tool to give up", func() bool { return strings.Contains(s.logs.String(), "CANCELLED") })
			waitFor(t, "the spool file to go", func() bool { return countFiles(filepath.Join(s.dataDir, "tmp")) == 0 })
			if n := countFiles(filepath.Join(s.dataDir, "objects")); n != 0 {
				t.Errorf("%d objects stored by a cancelled stage", n)
			}
		})
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	waitUntil(t, what, 5*time.Second, cond)
}

// waitUntil polls cond until it holds, or fails the test after limit.
func waitUntil(t *testing.T, what string, limit time.Duration, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(limit); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("waited %v for %s", limit, what)
		}
	}
}

// countFiles counts the regular files below dir.
func countFiles(dir string) int {
	n := 0
	filepath.WalkDir(dir, func(_ string, d os.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			n++
		}
		return nil
	})
	return n
}

// TestDataDirIsNeverASource: the README's FILESTAGE_FILE_ROOTS="$HOME"
// with the data directory under it: start-up warns, and nothing in the
// data directory (the signing key, the objects, other calls' spools) can
// be staged, through the real server over stdio, while a file beside it
// can.
func TestDataDirIsNeverASource(t *testing.T) {
	home := t.TempDir()
	data := filepath.Join(home, ".local", "share", "filestage")
	// The default data directory, below HOME, as a newcomer has it.
	s := start(t, map[string]string{"FILESTAGE_DATA_DIR": "", "HOME": home, "FILESTAGE_FILE_ROOTS": home})
	if !strings.Contains(s.logs.String(), "contains the data directory") {
		t.Errorf("no start-up warning:\n%s", s.logs)
	}
	c := transports[0].connect(t, s, mcp.LATEST_LEGACY_PROTOCOL_VERSION)
	os.WriteFile(filepath.Join(home, "notes.txt"), []byte("mine"), 0o644)
	os.WriteFile(filepath.Join(data, "tmp", ".spool-other-call"), []byte("theirs"), 0o600)
	os.Symlink(filepath.Join(data, "secret"), filepath.Join(home, "key-link"))
	for _, p := range []string{filepath.Join(data, "secret"), filepath.Join(data, "tmp", ".spool-other-call"), filepath.Join(home, "key-link"), data} {
		res := call(t, c, "stage_connector_file", map[string]any{"url": "file://" + filepath.ToSlash(p), "toolSlug": "GMAIL_SEND_EMAIL"})
		if e := toolError(t, res); e.Slug != "SOURCE_REFUSED" && e.Slug != "SOURCE_NOT_A_FILE" {
			t.Errorf("%s: %s (%s), want SOURCE_REFUSED", p, e.Slug, e.Message)
		}
	}
	res := call(t, c, "stage_connector_file", map[string]any{"url": "file://" + filepath.ToSlash(filepath.Join(home, "notes.txt")), "toolSlug": "GMAIL_SEND_EMAIL"})
	if out := decode[schema.StageResponse](t, res); out.MD5 != md5hex([]byte("mine")) {
		t.Errorf("a file beside the data directory: %+v", out)
	}
}

// progressOf collects the progress notifications c hears; heard returns
// those so far.
func progressOf(c *client.Client) (heard func() []map[string]any) {
	var mu sync.Mutex
	var got []map[string]any
	c.OnNotification(func(n mcp.JSONRPCNotification) {
		if n.Method == "notifications/progress" {
			mu.Lock()
			got = append(got, n.Params.AdditionalFields)
			mu.Unlock()
		}
	})
	return func() []map[string]any {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(got)
	}
}

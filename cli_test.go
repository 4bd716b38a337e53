package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/filestage/filestage/cli"
	"github.com/filestage/filestage/config"
	"github.com/filestage/filestage/internal/testfile"
	"github.com/filestage/filestage/providers"
	"github.com/filestage/filestage/schema"
)

// command runs filestage with args as a person would, returning stdout,
// stderr and the exit code.
func command(t *testing.T, env map[string]string, args ...string) (string, string, int) {
	t.Helper()
	var out, errs bytes.Buffer
	code := run(context.Background(), args, strings.NewReader(""), &out, &errs, func(k string) string { return env[k] }, nil)
	return out.String(), errs.String(), code
}

// TestCommands: stage and presign print what the tools answer, and what
// they store is what a server on the same data directory serves.
func TestCommands(t *testing.T) {
	dir := t.TempDir()
	pdf := append([]byte("%PDF-1.7\n"), testfile.Random(200<<10)...)
	file := filepath.Join(dir, "Q3 report.pdf")
	if err := os.WriteFile(file, pdf, 0o644); err != nil {
		t.Fatal(err)
	}
	// A server on the same data directory, as the presigned URLs expect.
	s := start(t, nil, "serve", "--transport", "http", "--listen", "127.0.0.1:0")
	env := map[string]string{"FILESTAGE_DATA_DIR": s.dataDir, "FILESTAGE_PUBLIC_URL": "http://" + s.addr, "FILESTAGE_ALLOW_PRIVATE_URLS": "true"}

	t.Run("stage a path", func(t *testing.T) {
		stdout, stderr, code := command(t, env, "stage", file, "--tool-slug", "GMAIL_SEND_EMAIL")
		var out schema.StageResponse
		if code != 0 || json.Unmarshal([]byte(stdout), &out) != nil {
			t.Fatalf("exit %d, stdout %q, stderr %q", code, stdout, stderr)
		}
		if out.Name != "Q3 report.pdf" || out.Mimetype != "application/pdf" || out.MD5 != md5hex(pdf) || out.S3Key != "gmail/GMAIL_SEND_EMAIL/"+md5hex(pdf)+".pdf" {
			t.Errorf("got %+v", out)
		}
		if stored, _ := os.ReadFile(filepath.Join(s.dataDir, "objects", filepath.FromSlash(out.S3Key))); !bytes.Equal(stored, pdf) {
			t.Error("the store does not hold the file")
		}
		if stderr != "" {
			t.Errorf("stderr is not a terminal, yet the command wrote %q", stderr)
		}
	})

	t.Run("stage a URL", func(t *testing.T) {
		png := testfile.PNG(30 << 10)
		src := sourceServer(t, map[string][]byte{"/logo": png}, "image/png")
		stdout, stderr, code := command(t, env, "stage", src.URL+"/logo", "--tool-slug", "SLACK_UPLOAD_FILE", "--filename", "brand.png")
		var out schema.StageResponse
		if code != 0 || json.Unmarshal([]byte(stdout), &out) != nil || out.Name != "brand.png" || out.MD5 != md5hex(png) {
			t.Fatalf("exit %d, stdout %q, stderr %q", code, stdout, stderr)
		}
	})

	t.Run("presign, then PUT to the server", func(t *testing.T) {
		body := testfile.PNG(50 << 10)
		png := filepath.Join(dir, "chart.png")
		os.WriteFile(png, body, 0o644)
		stdout, stderr, code := command(t, env, "presign", png, "--toolkit-slug", "slack", "--tool-slug", "SLACK_UPLOAD_FILE")
		var out schema.PresignResponse
		if code != 0 || json.Unmarshal([]byte(stdout), &out) != nil {
			t.Fatalf("exit %d, stdout %q, stderr %q", code, stdout, stderr)
		}
		if out.Type != "new" || out.FileUploadable.Name != "chart.png" || out.FileUploadable.Mimetype != "image/png" || !strings.Contains(out.NewPresignedURL, fmt.Sprintf("size=%d", len(body))) {
			t.Fatalf("got %+v", out)
		}
		if stderr != "" || out.Note != "" {
			t.Errorf("a server answers at the URL, yet stderr %q, note %q", stderr, out.Note)
		}
		req, _ := http.NewRequest(out.Method, out.NewPresignedURL, bytes.NewReader(body))
		for k, v := range out.Headers {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("PUT: %v %v", resp, err)
		}
		resp.Body.Close()
		// The same file staged over MCP is found, not stored again.
		c := transports[1].connect(t, s, mcp.LATEST_LEGACY_PROTOCOL_VERSION)
		staged := decode[schema.StageResponse](t, call(t, c, "stage_connector_file", map[string]any{
			"url": "data:image/png;base64," + b64(body), "toolSlug": "SLACK_UPLOAD_FILE",
		}))
		if staged.Type != "existing" || staged.S3Key != out.Key {
			t.Errorf("stage after the PUT: %+v, want existing %s", staged, out.Key)
		}
	})

	failures := []struct {
		args []string
		code int
		says string
	}{
		{[]string{"stage", file}, 1, "toolSlug: is required"},
		{[]string{"stage", file, "--tool-slug", "gmail"}, 1, "UPPERCASE"},
		{[]string{"stage", dir, "--tool-slug", "GMAIL_SEND_EMAIL"}, 1, "directory"},
		{[]string{"stage", filepath.Join(dir, "missing.pdf"), "--tool-slug", "GMAIL_SEND_EMAIL"}, 2, "no such file"},
		{[]string{"stage", "data:text/plain,hi", "--tool-slug", "GMAIL_SEND_EMAIL", "--max-inline-bytes", "1"}, 1, "SOURCE_TOO_LARGE"},
		{[]string{"presign", file, "--tool-slug", "GMAIL_SEND_EMAIL"}, 1, "toolkit_slug"},
		{[]string{"presign", "https://example.com/a.pdf", "--toolkit-slug", "gmail", "--tool-slug", "GMAIL_SEND_EMAIL"}, 2, "local file"},
		{[]string{"stage", file, "--tool-slug", "GMAIL_SEND_EMAIL", "--provider", "recoup"}, 1, "RECOUP_API_KEY"},
	}
	for _, tt := range failures {
		stdout, stderr, code := command(t, env, tt.args...)
		if code != tt.code || stdout != "" || !strings.Contains(stderr, tt.says) {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want exit %d saying %q", tt.args, code, stdout, stderr, tt.code, tt.says)
		}
	}
	checkTmpEmpty(t, s.dataDir)
}

func TestProgressBar(t *testing.T) {
	var b bytes.Buffer
	bar := cli.Bar(&b)
	bar(0, 0, "reading 1.0 MiB")
	bar(50, 200, "reading 50 B of 100 B")
	bar(200, 200, "done: 100 B")
	want := "\rreading 1.0 MiB\x1b[K" +
		"\r[=======                       ]  25%  reading 50 B of 100 B\x1b[K" +
		"\r[==============================] 100%  done: 100 B\x1b[K\n"
	if b.String() != want {
		t.Errorf("got  %q\nwant %q", b.String(), want)
	}
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// TestBinaryProgressOnATerminal runs the real binary with its stderr on a
// terminal (script(1), from util-linux, gives it one): the bar is drawn.
func TestBinaryProgressOnATerminal(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	script, err := exec.LookPath("script")
	if err != nil {
		t.Fatal("script(1) is missing: install Debian's bsdutils (util-linux elsewhere)")
	}
	bin := binary(t)
	body := testfile.Random(8 << 20)
	src := slowSource(t, body, 8, 100*time.Millisecond)
	cmd := exec.Command(script, "-qefc", bin+" stage "+src.URL+"/big.bin --tool-slug GMAIL_SEND_EMAIL --allow-private-urls --data-dir "+t.TempDir()+" >/dev/null", "/dev/null")
	cmd.Env = append(os.Environ(), "TERM=xterm")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if !strings.Contains(string(out), "] 100%  done: 8.0 MiB") || !strings.Contains(string(out), "reading ") {
		t.Errorf("no progress bar on the terminal: %q", out)
	}
}

// TestProgressBarClamps: a file that grows while it is read passes its
// total; the bar stays full instead of breaking.
func TestProgressBarClamps(t *testing.T) {
	var b bytes.Buffer
	cli.Bar(&b)(300, 200, "reading")
	if !strings.Contains(b.String(), "] 100%") {
		t.Errorf("got %q", b.String())
	}
}

// TestPresignWhereNothingListens: the presign command prints the URL, and
// says on stderr what to start, when nothing answers where it points.
func TestPresignWhereNothingListens(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	file := filepath.Join(t.TempDir(), "a.txt")
	os.WriteFile(file, []byte("hello"), 0o644)
	env := map[string]string{"FILESTAGE_DATA_DIR": t.TempDir(), "FILESTAGE_PUBLIC_URL": "http://" + addr}
	stdout, stderr, code := command(t, env, "presign", file, "--toolkit-slug", "slack", "--tool-slug", "SLACK_UPLOAD_FILE")
	var out schema.PresignResponse
	if code != 0 || json.Unmarshal([]byte(stdout), &out) != nil || !strings.HasPrefix(out.NewPresignedURL, "http://"+addr+"/files/") {
		t.Fatalf("exit %d, stdout %q", code, stdout)
	}
	want := "filestage: nothing answers at http://" + addr + ", where this URL points: the upload fails until a filestage on the same data directory listens there:\n  filestage serve --transport http --listen " + addr + " (with this --data-dir)\n"
	if stderr != want {
		t.Errorf("stderr:\n%s\nwant:\n%s", stderr, want)
	}
	// A --listen on every address is reached, and named, on loopback.
	_, port, _ := net.SplitHostPort(addr)
	env = map[string]string{"FILESTAGE_DATA_DIR": t.TempDir()}
	stdout, stderr, code = command(t, env, "presign", file, "--toolkit-slug", "slack", "--tool-slug", "SLACK_UPLOAD_FILE", "--listen", ":"+port)
	if code != 0 || !strings.Contains(stdout, `"new_presigned_url": "http://127.0.0.1:`+port+`/files/`) || stderr != want {
		t.Errorf("--listen :%s: exit %d\nstdout %s\nstderr %s", port, code, stdout, stderr)
	}
}

// TestPresignOverStdioSaysTheURLEndsWithTheProcess: over stdio the upload
// URL is this process's; over HTTP it is the server's and needs no note.
func TestPresignOverStdioSaysTheURLEndsWithTheProcess(t *testing.T) {
	args := map[string]any{"toolkit_slug": "slack", "tool_slug": "SLACK_UPLOAD_FILE", "filename": "a.txt", "mimetype": "text/plain", "md5": md5hex([]byte("hi"))}
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			s := start(t, nil, tr.args...)
			c := tr.connect(t, s, tr.versions[0])
			out := decode[schema.PresignResponse](t, call(t, c, "request_presigned_upload", args))
			if stdio := tr.name == "stdio"; stdio != strings.Contains(out.Note, "upload before it exits") {
				t.Errorf("note %q", out.Note)
			}
		})
	}
}

// TestProvidersHaveHelp: --help names every provider there is.
func TestProvidersHaveHelp(t *testing.T) {
	var named []string
	for _, p := range config.Providers {
		named = append(named, p.Name)
	}
	slices.Sort(named)
	if got := newRegistry().Names(); !slices.Equal(got, named) {
		t.Errorf("providers %v; the help names %v", got, named)
	}
}

// TestHealth: filestage health exits 0 when the server it names answers
// /healthz, 1 with the reason when not, and finds the server from --listen
// alone, whatever else the environment holds.
func TestHealth(t *testing.T) {
	s := start(t, nil, "serve", "--transport", "http", "--listen", "127.0.0.1:0")
	_, port, _ := net.SplitHostPort(s.addr)
	unwell := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "draining", http.StatusServiceUnavailable)
	}))
	defer unwell.Close()
	// A 200 somewhere else is no answer of the server's.
	moved := httptest.NewServer(http.RedirectHandler("http://"+s.addr+"/healthz", http.StatusFound))
	defer moved.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()

	for _, tt := range []struct {
		name string
		env  map[string]string
		args []string
		code int
		out  string // in stdout when 0, in stderr otherwise
	}{
		{"URL", nil, []string{"http://" + s.addr}, 0, "http://" + s.addr + "/healthz: ok"},
		{"URL with the path", nil, []string{"http://" + s.addr + "/healthz"}, 0, ": ok"},
		{"--listen", nil, []string{"--listen", s.addr}, 0, ": ok"},
		{"FILESTAGE_LISTEN", map[string]string{"FILESTAGE_LISTEN": s.addr}, nil, 0, ": ok"},
		{"every address, asked on loopback", map[string]string{"FILESTAGE_LISTEN": "0.0.0.0:" + port}, nil, 0, "http://127.0.0.1:" + port + "/healthz: ok"},
		{"every address, no host", nil, []string{"--listen", ":" + port}, 0, ": ok"},
		{"settings only serving needs", map[string]string{
			"FILESTAGE_LISTEN": "0.0.0.0:" + port, "FILESTAGE_TRANSPORT": "http",
			"FILESTAGE_DATA_DIR": "/nonexistent/filestage", "FILESTAGE_PROVIDER": "s3",
		}, nil, 0, ": ok"},
		{"nothing listens", nil, []string{"http://" + closed}, 1, "does not answer"},
		{"default, nothing listens", map[string]string{"FILESTAGE_LISTEN": closed}, nil, 1, "http://" + closed + "/healthz does not answer"},
		{"not up", nil, []string{unwell.URL}, 1, "answered 503"},
		{"redirected", nil, []string{moved.URL}, 1, "answered 302"},
		{"a password in the URL", nil, []string{"ftp://ana:hunter2@" + s.addr}, 1, "not a server's URL"},
		{"not a URL", nil, []string{"ftp://" + s.addr}, 1, "not a server's URL"},
		{"no host", nil, []string{"http:///healthz"}, 1, "not a server's URL"},
		{"two URLs", nil, []string{"http://" + s.addr, "http://" + s.addr}, 2, "at most one URL"},
		{"a bad setting", map[string]string{"FILESTAGE_LISTEN": s.addr}, []string{"--no-such-flag"}, 2, "no-such-flag"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			stdout, stderr, code := command(t, tt.env, append([]string{"health"}, tt.args...)...)
			got := stdout
			if tt.code != 0 {
				got = stderr
			}
			if code != tt.code || !strings.Contains(got, tt.out) || strings.Contains(stdout+stderr, "hunter2") {
				t.Errorf("exit %d, stdout %q, stderr %q; want exit %d and %q", code, stdout, stderr, tt.code, tt.out)
			}
		})
	}
}

// TestProviderVariables: config.Variables, which the release's manifests
// declare, names exactly the variables each provider reads, for that
// provider; and every provider's required ones are marked so.
func TestProviderVariables(t *testing.T) {
	listed := map[string]map[string]config.Variable{}
	for _, v := range config.Variables() {
		if v.Provider == "" {
			continue
		}
		if listed[v.Provider] == nil {
			listed[v.Provider] = map[string]config.Variable{}
		}
		listed[v.Provider][v.Name] = v
	}
	for _, name := range newRegistry().Names() {
		if name == "local" {
			continue // reads only flags
		}
		t.Run(name, func(t *testing.T) {
			// Once with every variable set, once with only the required
			// ones: between them, fallbacks read only when another
			// variable is unset are read too.
			read := map[string]bool{}
			onlyRequired := false
			getenv := func(k string) string {
				read[k] = true
				switch {
				case onlyRequired && !listed[name][k].Required:
					return ""
				case strings.HasSuffix(k, "_URL") || strings.HasPrefix(k, "AWS_ENDPOINT_URL"):
					return "http://127.0.0.1:1"
				case k == "FILESTAGE_S3_PATH_STYLE":
					return "true"
				case k == "AWS_PROFILE":
					return "" // a profile must exist in the shared files
				}
				return "x"
			}
			s := providers.Settings{Getenv: getenv, DataDir: t.TempDir(), PublicURL: "http://127.0.0.1:1", HTTP: providers.NewClient("filestage-test")}
			for _, onlyRequired = range []bool{false, true} {
				if _, err := newRegistry().Open(context.Background(), name, s); err != nil {
					t.Fatalf("open (only the required variables: %v): %v", onlyRequired, err)
				}
			}
			onlyRequired = false
			for k := range read {
				if _, ok := listed[name][k]; !ok {
					t.Errorf("%s reads %s, which config.Variables does not list for it", name, k)
				}
			}
			for k, v := range listed[name] {
				if !read[k] {
					t.Errorf("config.Variables lists %s for %s, which does not read it", k, name)
				}
				if v.Required {
					if _, err := newRegistry().Open(context.Background(), name, providers.Settings{Getenv: func(n string) string {
						if n == k {
							return ""
						}
						return getenv(n)
					}, HTTP: s.HTTP}); err == nil || !strings.Contains(err.Error(), k) {
						t.Errorf("without %s: %v, want an error naming it", k, err)
					}
				}
			}
		})
	}
}

// TestCommandHelp: a command's --help prints its own help on stdout and
// exits 0.
func TestCommandHelp(t *testing.T) {
	for _, args := range [][]string{{"stage", "--help"}, {"help", "ls"}, {"--help"}} {
		stdout, stderr, code := command(t, nil, args...)
		cfg, _ := config.Parse(args, func(string) string { return "" })
		if code != 0 || stderr != "" || stdout != config.Usage(cfg.Command) || !strings.Contains(stdout, "Usage") {
			t.Errorf("%v: exit %d, stderr %q, stdout %q", args, code, stderr, stdout)
		}
	}
}

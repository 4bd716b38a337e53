package main

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/mark3labs/mcp-go/client"
	mcptransport "github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/filestage/filestage/internal/testfile"
	"github.com/filestage/filestage/providers/alloy/alloytest"
	"github.com/filestage/filestage/providers/composio/composiotest"
	"github.com/filestage/filestage/providers/quant/quanttest"
	"github.com/filestage/filestage/providers/recoup/recouptest"
	"github.com/filestage/filestage/providers/s3/s3test"
	"github.com/filestage/filestage/schema"
)

// server is one filestage started through run, as main starts it.
type instance struct {
	dataDir string
	addr    string
	logs    *syncBuffer
	stdin   io.Reader
	stdout  io.WriteCloser
	cancel  context.CancelFunc
	exit    chan int
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// start runs filestage in-process with private URLs allowed (the test
// sources are on loopback) and a fresh data directory.
func start(t *testing.T, env map[string]string, args ...string) *instance {
	t.Helper()
	s := &instance{dataDir: t.TempDir(), logs: &syncBuffer{}, exit: make(chan int, 1)}
	full := map[string]string{"FILESTAGE_DATA_DIR": s.dataDir, "FILESTAGE_ALLOW_PRIVATE_URLS": "true"}
	for k, v := range env {
		full[k] = v
	}
	s.dataDir = full["FILESTAGE_DATA_DIR"]
	stdinR, stdinW := io.Pipe()
	stdoutR, stdoutW := io.Pipe()
	s.stdin, s.stdout = stdoutR, stdinW
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	ready := make(chan net.Addr, 1)
	go func() {
		code := run(ctx, args, stdinR, stdoutW, s.logs, func(k string) string { return full[k] }, func(a net.Addr) { ready <- a })
		stdoutW.Close()
		s.exit <- code
	}()
	select {
	case a := <-ready:
		s.addr = a.String()
	case code := <-s.exit:
		t.Fatalf("filestage exited with %d before listening:\n%s", code, s.logs)
	}
	t.Cleanup(func() {
		s.stop(t)
		if t.Failed() {
			t.Logf("filestage log:\n%s", s.logs)
		}
	})
	return s
}

// stop ends the server as a signal would and checks it exited cleanly.
func (s *instance) stop(t *testing.T) {
	t.Helper()
	s.cancel()
	s.stdout.Close()
	select {
	case code, ok := <-s.exit:
		if !ok {
			return // stopped before
		}
		if code != 0 {
			t.Errorf("filestage exited with %d", code)
		}
		close(s.exit)
	case <-time.After(40 * time.Second):
		t.Errorf("filestage did not stop")
	}
}

func connect(t *testing.T, c *client.Client) *client.Client {
	t.Helper()
	return connectWith(t, c, mcp.LATEST_LEGACY_PROTOCOL_VERSION)
}

func connectWith(t *testing.T, c *client.Client, version string) *client.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// Start's context lives as long as the connection (the SSE stream).
	if err := c.Start(context.Background()); err != nil {
		t.Fatalf("start client: %v", err)
	}
	init := mcp.InitializeRequest{}
	init.Params.ProtocolVersion = version
	init.Params.ClientInfo = mcp.Implementation{Name: "filestage-test", Version: "1"}
	if _, err := c.Initialize(ctx, init); err != nil {
		t.Fatalf("initialize: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// transports lists how clients reach filestage: each starts a server with
// args and connects a client speaking the given protocol version. The
// 2026-07-28 protocol has no initialize handshake and no SSE transport.
var transports = []struct {
	name     string
	args     []string
	versions []string
	connect  func(t *testing.T, s *instance, version string) *client.Client
}{
	{"stdio", nil, []string{mcp.LATEST_LEGACY_PROTOCOL_VERSION, mcp.LATEST_PROTOCOL_VERSION}, func(t *testing.T, s *instance, version string) *client.Client {
		return connectWith(t, client.NewClient(mcptransport.NewIO(s.stdin, s.stdout, io.NopCloser(strings.NewReader("")))), version)
	}},
	{"streamable-http", []string{"serve", "--transport", "http", "--listen", "127.0.0.1:0"}, []string{mcp.LATEST_LEGACY_PROTOCOL_VERSION, mcp.LATEST_PROTOCOL_VERSION}, func(t *testing.T, s *instance, version string) *client.Client {
		c, err := client.NewStreamableHttpClient("http://" + s.addr + "/mcp")
		if err != nil {
			t.Fatal(err)
		}
		return connectWith(t, c, version)
	}},
	{"sse", []string{"serve", "--transport", "http", "--listen", "127.0.0.1:0"}, []string{mcp.LATEST_LEGACY_PROTOCOL_VERSION}, func(t *testing.T, s *instance, version string) *client.Client {
		c, err := client.NewSSEMCPClient("http://" + s.addr + "/sse")
		if err != nil {
			t.Fatal(err)
		}
		return connectWith(t, c, version)
	}},
}

func call(t *testing.T, c *client.Client, tool string, args map[string]any) *mcp.CallToolResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req := mcp.CallToolRequest{}
	req.Params.Name = tool
	req.Params.Arguments = args
	res, err := c.CallTool(ctx, req)
	if err != nil {
		t.Fatalf("%s: protocol error: %v", tool, err)
	}
	return res
}

// decode reads a successful result's structured content, and checks that
// the text fallback says the same.
func decode[T any](t *testing.T, res *mcp.CallToolResult) T {
	t.Helper()
	if res.IsError {
		t.Fatalf("tool error: %s", text(res))
	}
	var fromStructured, fromText T
	raw, err := json.Marshal(res.StructuredContent)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &fromStructured); err != nil {
		t.Fatalf("structured content %s: %v", raw, err)
	}
	if err := json.Unmarshal([]byte(text(res)), &fromText); err != nil {
		t.Fatalf("text fallback: %v", err)
	}
	a, _ := json.Marshal(fromStructured)
	b, _ := json.Marshal(fromText)
	if !bytes.Equal(a, b) {
		t.Fatalf("structured content %s differs from text %s", a, b)
	}
	return fromStructured
}

func text(res *mcp.CallToolResult) string {
	var parts []string
	for _, c := range res.Content {
		if tc, ok := c.(mcp.TextContent); ok {
			parts = append(parts, tc.Text)
		}
	}
	return strings.Join(parts, "\n")
}

func toolError(t *testing.T, res *mcp.CallToolResult) schema.ErrorBody {
	t.Helper()
	if !res.IsError {
		t.Fatalf("want a tool error, got %s", text(res))
	}
	if res.StructuredContent != nil {
		t.Errorf("error result carries structuredContent %v; clients validate it against the output schema", res.StructuredContent)
	}
	var env schema.ErrorEnvelope
	if err := json.Unmarshal([]byte(text(res)), &env); err != nil {
		t.Fatalf("error text is not the JSON envelope: %v\n%s", err, text(res))
	}
	return env.Error
}

func md5hex(b []byte) string { s := md5.Sum(b); return hex.EncodeToString(s[:]) }

// sourceServer serves files by path on loopback, as an image host would.
func sourceServer(t *testing.T, files map[string][]byte, contentType string) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, ok := files[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", contentType)
		w.Write(b)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func checkTmpEmpty(t *testing.T, dataDir string) {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(dataDir, "tmp"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		t.Errorf("temp file left behind: %s", e.Name())
	}
}

// backend is a provider under test and the storage behind it.
type backend struct {
	storage string // metadata.storage_backend of its slots
	presign bool   // offers request_presigned_upload
	dedupe  bool   // answers existing for bytes it already holds
	keyed   bool   // keys are filestage's content address <toolkit>/<TOOL_SLUG>/<md5><ext>
	fetches bool   // the platform fetches URLs itself: stage answers carry no size, md5 or type
	// object reads what the storage holds under key.
	object func(t *testing.T, key string) ([]byte, bool)
	// secrets must never appear in filestage's log.
	secrets []string
}

// backends start each provider's storage (a fake that follows the
// platform's documented contract, or a real S3 server) and return the
// environment that points filestage at it.
var backends = map[string]func(t *testing.T) (backend, map[string]string){
	"local": func(t *testing.T) (backend, map[string]string) {
		dir := t.TempDir()
		return backend{storage: "local", presign: true, dedupe: true, keyed: true,
				object: func(t *testing.T, key string) ([]byte, bool) {
					b, err := os.ReadFile(filepath.Join(dir, "objects", filepath.FromSlash(key)))
					return b, err == nil
				}},
			map[string]string{"FILESTAGE_DATA_DIR": dir}
	},
	"composio": func(t *testing.T) (backend, map[string]string) {
		f := composiotest.New(t)
		return backend{storage: "s3", presign: true, dedupe: true, object: fake(f.Object), secrets: []string{f.APIKey}}, f.Env()
	},
	"alloy": func(t *testing.T) (backend, map[string]string) {
		f := alloytest.New(t)
		return backend{storage: "s3", presign: true, dedupe: true, object: fake(f.Object), secrets: []string{f.APIKey}}, f.Env()
	},
	"recoup": func(t *testing.T) (backend, map[string]string) {
		f := recouptest.New(t)
		return backend{fetches: true, object: fake(f.Object), secrets: []string{f.APIKey}}, f.Env()
	},
	"quant": func(t *testing.T) (backend, map[string]string) {
		f := quanttest.New(t)
		return backend{storage: "s3", presign: true, object: fake(f.Object), secrets: []string{f.APIKey}}, f.Env()
	},
	"s3": func(t *testing.T) (backend, map[string]string) {
		env := s3test.Env(t)
		env["FILESTAGE_PROVIDER"] = "s3"
		c := s3test.Client(env)
		return backend{storage: "s3", presign: true, dedupe: true, keyed: true, secrets: []string{env["AWS_SECRET_ACCESS_KEY"]},
			object: func(t *testing.T, key string) ([]byte, bool) {
				out, err := c.GetObject(context.Background(), &awss3.GetObjectInput{Bucket: aws.String(env["FILESTAGE_S3_BUCKET"]), Key: aws.String(key)})
				if err != nil {
					return nil, false
				}
				defer out.Body.Close()
				b, err := io.ReadAll(out.Body)
				return b, err == nil
			}}, env
	},
}

// fake adapts a fake platform's object lookup.
func fake(object func(key string) ([]byte, bool)) func(*testing.T, string) ([]byte, bool) {
	return func(_ *testing.T, key string) ([]byte, bool) { return object(key) }
}

// TestEndToEnd drives both tools through real MCP clients: on the local
// store over every transport and protocol version, and on every provider
// over streamable HTTP.
func TestEndToEnd(t *testing.T) {
	for _, tr := range transports {
		for _, version := range tr.versions {
			t.Run(tr.name+"/"+version, func(t *testing.T) {
				b, env := backends["local"](t)
				s := start(t, env, tr.args...)
				testEndToEnd(t, s, tr.connect(t, s, version), b)
			})
		}
	}
	for name, setup := range backends {
		if name == "local" {
			continue
		}
		t.Run("provider/"+name, func(t *testing.T) {
			b, env := setup(t)
			env["FILESTAGE_PROVIDER"] = name
			s := start(t, env, transports[1].args...)
			testEndToEnd(t, s, transports[1].connect(t, s, mcp.LATEST_LEGACY_PROTOCOL_VERSION), b)
		})
	}
}

func testEndToEnd(t *testing.T, s *instance, c *client.Client, b backend) {
	t.Run("list tools", func(t *testing.T) {
		res, err := c.ListTools(context.Background(), mcp.ListToolsRequest{})
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, tool := range res.Tools {
			names = append(names, tool.Name)
			if tool.OutputSchema.Type != "object" {
				t.Errorf("%s: output schema type %q, want object", tool.Name, tool.OutputSchema.Type)
			}
		}
		slices.Sort(names)
		if want := []string{"get_user_upload", "request_presigned_upload", "request_user_upload", "stage_connector_file", "stage_connector_files"}; !slices.Equal(names, want) {
			t.Errorf("tools %v, want %v", names, want)
		}
	})

	img := testfile.PNG(200 << 10)
	src := sourceServer(t, map[string][]byte{"/images/logo": img}, "application/octet-stream")

	t.Run("stage", func(t *testing.T) {
		out := decode[schema.StageResponse](t, call(t, c, "stage_connector_file", map[string]any{
			"url": src.URL + "/images/logo", "toolSlug": "LINKEDIN_CREATE_LINKED_IN_POST",
		}))
		if !out.Success || out.Mimetype != "image/png" || out.S3Key == "" || (out.Name != "logo.png" && !b.fetches) || out.Name == "" {
			t.Errorf("got %+v", out) // a platform that fetches names the file itself
		}
		if !b.fetches && (out.Size == nil || *out.Size != int64(len(img)) || out.MD5 != md5hex(img) || out.Type != "new") {
			t.Errorf("size %v md5 %s type %s, want %d %s new", out.Size, out.MD5, out.Type, len(img), md5hex(img))
		}
		if want := "linkedin/LINKEDIN_CREATE_LINKED_IN_POST/" + md5hex(img) + ".png"; b.keyed && out.S3Key != want {
			t.Errorf("key %s, want %s", out.S3Key, want)
		}
		if stored, ok := b.object(t, out.S3Key); !ok || !bytes.Equal(stored, img) {
			t.Errorf("storage does not hold the source's bytes under %s", out.S3Key)
		}
	})

	t.Run("presign, PUT, then stage the same bytes", func(t *testing.T) {
		body := testfile.PNG(1 << 20)
		sum := md5hex(body)
		args := map[string]any{"toolkit_slug": "gmail", "tool_slug": "GMAIL_SEND_EMAIL", "filename": "photo.png", "mimetype": "image/png", "md5": sum}
		if !b.presign {
			if e := toolError(t, call(t, c, "request_presigned_upload", args)); e.Slug != "UNSUPPORTED_BY_PROVIDER" {
				t.Errorf("got %+v, want UNSUPPORTED_BY_PROVIDER", e)
			}
			return
		}
		out := decode[schema.PresignResponse](t, call(t, c, "request_presigned_upload", args))
		if out.Type != "new" || out.Metadata.StorageBackend != b.storage || out.FileUploadable.S3Key != out.Key || out.FileUploadable.Name != "photo.png" || out.Method == "" {
			t.Fatalf("unexpected slot %+v", out)
		}
		req, _ := http.NewRequest(out.Method, out.NewPresignedURL, bytes.NewReader(body))
		for k, v := range out.Headers {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode/100 != 2 {
			t.Fatalf("PUT: %s", resp.Status)
		}
		if stored, ok := b.object(t, out.Key); !ok || !bytes.Equal(stored, body) {
			t.Errorf("storage does not hold the uploaded bytes under %s", out.Key)
		}

		want := map[bool]string{true: "existing", false: "new"}[b.dedupe]
		again := decode[schema.PresignResponse](t, call(t, c, "request_presigned_upload", args))
		if again.Type != want || (b.dedupe && again.Key != out.Key) {
			t.Errorf("second request: type %q key %q, want %s (%s)", again.Type, again.Key, want, out.Key)
		}
		// The same bytes staged from a URL are found, not uploaded again.
		src := sourceServer(t, map[string][]byte{"/p/photo.png": body}, "image/png")
		staged := decode[schema.StageResponse](t, call(t, c, "stage_connector_file", map[string]any{
			"url": src.URL + "/p/photo.png", "toolSlug": "GMAIL_SEND_EMAIL",
		}))
		if staged.Type != want || (b.dedupe && staged.S3Key != out.Key) || staged.MD5 != sum {
			t.Errorf("stage of uploaded bytes: %+v, want %s %s", staged, want, out.Key)
		}
	})

	t.Run("bad input is a tool error", func(t *testing.T) {
		e := toolError(t, call(t, c, "stage_connector_file", map[string]any{"url": src.URL + "/images/logo", "toolSlug": "gmail_send_email"}))
		if e.Slug != "INVALID_ARGUMENT" || !strings.Contains(e.Message, "toolSlug") || !strings.Contains(e.SuggestedFix, "GMAIL_SEND_EMAIL") {
			t.Errorf("got %+v", e)
		}
		if b.fetches {
			return
		}
		e = toolError(t, call(t, c, "stage_connector_file", map[string]any{"url": src.URL + "/missing.png", "toolSlug": "GMAIL_SEND_EMAIL"}))
		if e.Slug != "SOURCE_HTTP_ERROR" || !strings.Contains(e.Message, "404") {
			t.Errorf("got %+v", e)
		}
	})
	checkTmpEmpty(t, s.dataDir)
	secrets := b.secrets
	if key, err := os.ReadFile(filepath.Join(s.dataDir, "secret")); err == nil {
		secrets = append(secrets, hex.EncodeToString(key), "signature=")
	}
	logs := s.logs.String()
	for _, secret := range secrets {
		if strings.Contains(logs, secret) {
			t.Errorf("the log shows a secret (%.4s…)", secret)
		}
	}
}

// TestPrivateURLsRefusedByDefault runs without --allow-private-urls: the
// loopback source must never see a request.
func TestPrivateURLsRefusedByDefault(t *testing.T) {
	var hits int
	var mu sync.Mutex
	src := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		hits++
		mu.Unlock()
	}))
	defer src.Close()
	s := start(t, map[string]string{"FILESTAGE_ALLOW_PRIVATE_URLS": "false"})
	c := transports[0].connect(t, s, mcp.LATEST_LEGACY_PROTOCOL_VERSION)
	e := toolError(t, call(t, c, "stage_connector_file", map[string]any{"url": src.URL + "/x.png", "toolSlug": "GMAIL_SEND_EMAIL"}))
	if e.Slug != "SOURCE_REFUSED" || e.Status != 403 || !strings.Contains(e.SuggestedFix, "--allow-private-urls") {
		t.Errorf("got %+v", e)
	}
	mu.Lock()
	defer mu.Unlock()
	if hits != 0 {
		t.Errorf("the private source saw %d requests", hits)
	}
}

// TestGracefulShutdown stops the server while a stage is in flight over
// each HTTP transport: the call must still complete.
func TestGracefulShutdown(t *testing.T) {
	for _, tr := range transports[1:] {
		t.Run(tr.name, func(t *testing.T) {
			body := testfile.PNG(64 << 10)
			requested := make(chan struct{})
			release := make(chan struct{})
			src := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Length", fmt.Sprint(len(body)))
				w.Write(body[:1000])
				w.(http.Flusher).Flush()
				close(requested)
				<-release
				w.Write(body[1000:])
			}))
			defer src.Close()
			s := start(t, nil, tr.args...)
			c := tr.connect(t, s, tr.versions[0])
			done := make(chan *mcp.CallToolResult, 1)
			go func() {
				req := mcp.CallToolRequest{}
				req.Params.Name = "stage_connector_file"
				req.Params.Arguments = map[string]any{"url": src.URL + "/slow.png", "toolSlug": "SLACK_UPLOAD_FILE"}
				res, err := c.CallTool(context.Background(), req)
				if err != nil {
					res = mcp.NewToolResultError("protocol error: " + err.Error())
				}
				done <- res
			}()
			select {
			case <-requested:
			case res := <-done:
				t.Fatalf("call ended before the source was asked: %s", text(res))
			}
			s.cancel() // as SIGTERM would
			time.Sleep(200 * time.Millisecond)
			close(release)
			out := decode[schema.StageResponse](t, <-done)
			if out.MD5 != md5hex(body) {
				t.Errorf("md5 %s, want %s", out.MD5, md5hex(body))
			}
		})
	}
}

// TestDrainTimeout: at shutdown a call still running after
// --drain-timeout is cancelled, over every transport: the server exits
// cleanly long before the default drain would have ended, and the call's
// temporary file is gone.
func TestDrainTimeout(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			requested := make(chan struct{})
			src := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Length", "1000000")
				w.Write(make([]byte, 1000))
				w.(http.Flusher).Flush()
				close(requested)
				<-r.Context().Done() // never more
			}))
			defer src.Close()
			s := start(t, nil, append(slices.Clone(tr.args), "--drain-timeout", "300ms")...)
			c := tr.connect(t, s, tr.versions[0])
			done := make(chan *mcp.CallToolResult, 1)
			go func() {
				req := mcp.CallToolRequest{}
				req.Params.Name = "stage_connector_file"
				req.Params.Arguments = map[string]any{"url": src.URL + "/endless.bin", "toolSlug": "SLACK_UPLOAD_FILE"}
				res, err := c.CallTool(context.Background(), req)
				if err != nil {
					res = mcp.NewToolResultError("protocol error: " + err.Error())
				}
				done <- res
			}()
			<-requested
			s.cancel() // as SIGTERM would
			select {
			case code := <-s.exit:
				close(s.exit)
				if code != 0 {
					t.Errorf("exit %d", code)
				}
			case <-time.After(20 * time.Second): // the default drain alone is 30 s
				t.Fatal("filestage did not stop within 20 s of a 300 ms drain")
			}
			select {
			case res := <-done:
				if !res.IsError {
					t.Errorf("the cancelled call succeeded: %s", text(res))
				}
			case <-time.After(10 * time.Second):
				t.Error("the call never ended")
			}
			checkTmpEmpty(t, s.dataDir)
			if !strings.Contains(s.logs.String(), "cancelling them") {
				t.Errorf("no line says calls were cancelled:\n%s", s.logs)
			}
		})
	}
}

func TestHTTPBearerAuth(t *testing.T) {
	const token = "s3cret-token-for-tests"
	s := start(t, map[string]string{"FILESTAGE_AUTH_TOKEN": token}, "serve", "--transport", "http", "--listen", "127.0.0.1:0")

	bad, err := client.NewStreamableHttpClient("http://"+s.addr+"/mcp", mcptransport.WithHTTPHeaders(map[string]string{"Authorization": "Bearer wrong"}))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	bad.Start(ctx)
	if _, err := bad.Initialize(ctx, mcp.InitializeRequest{}); err == nil {
		t.Error("initialize with a wrong token succeeded")
	}
	bad.Close()

	for _, path := range []string{"/mcp", "/sse"} {
		var c *client.Client
		hdr := map[string]string{"Authorization": "Bearer " + token}
		if path == "/mcp" {
			c, err = client.NewStreamableHttpClient("http://"+s.addr+path, mcptransport.WithHTTPHeaders(hdr))
		} else {
			c, err = client.NewSSEMCPClient("http://"+s.addr+path, mcptransport.WithHeaders(hdr))
		}
		if err != nil {
			t.Fatal(err)
		}
		connect(t, c)
	}
	if strings.Contains(s.logs.String(), token) {
		t.Error("the auth token appears in the log")
	}
}

var build struct {
	once sync.Once
	dir  string
	out  []byte
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if build.dir != "" {
		os.RemoveAll(build.dir)
	}
	os.Exit(code)
}

// binary builds the real filestage binary once per test run.
func binary(t *testing.T) string {
	t.Helper()
	build.once.Do(func() {
		if build.dir, build.err = os.MkdirTemp("", "filestage-bin-"); build.err == nil {
			build.out, build.err = exec.Command("go", "build", "-o", filepath.Join(build.dir, "filestage"), ".").CombinedOutput()
		}
	})
	if build.err != nil {
		t.Fatalf("go build: %v\n%s", build.err, build.out)
	}
	return filepath.Join(build.dir, "filestage")
}

// TestBinaryOverStdio builds the real binary and drives it as Claude
// Desktop would: a subprocess speaking MCP on stdin and stdout.
func TestBinaryOverStdio(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := binary(t)
	dataDir := t.TempDir()
	c, err := client.NewStdioMCPClient(bin, []string{"FILESTAGE_DATA_DIR=" + dataDir, "FILESTAGE_ALLOW_PRIVATE_URLS=1", "HOME=" + t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	init := mcp.InitializeRequest{}
	init.Params.ProtocolVersion = mcp.LATEST_LEGACY_PROTOCOL_VERSION
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := c.Initialize(ctx, init); err != nil {
		t.Fatalf("initialize: %v", err)
	}
	defer c.Close()
	body := testfile.PNG(10 << 10)
	src := sourceServer(t, map[string][]byte{"/a/chart": body}, "image/png")
	out := decode[schema.StageResponse](t, call(t, c, "stage_connector_file", map[string]any{"url": src.URL + "/a/chart", "toolSlug": "GMAIL_SEND_EMAIL", "filename": "q3 chart.png"}))
	if out.Name != "q3 chart.png" || out.Mimetype != "image/png" || out.MD5 != md5hex(body) {
		t.Errorf("got %+v", out)
	}
	if _, err := os.Stat(filepath.Join(dataDir, "objects", filepath.FromSlash(out.S3Key))); err != nil {
		t.Errorf("object not stored: %v", err)
	}
}

// TestStartupRefusals: a missing provider setting or an unsafe listener
// stops filestage at start-up with a message that says what to set.
func TestStartupRefusals(t *testing.T) {
	tests := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--provider", "composio"}, 1, "COMPOSIO_API_KEY"},
		{[]string{"--provider", "alloy"}, 1, "ALLOY_API_KEY"},
		{[]string{"--provider", "recoup"}, 1, "RECOUP_API_KEY"},
		{[]string{"--provider", "quant"}, 1, "QUANT_API_TOKEN"},
		{[]string{"--provider", "s3"}, 1, "FILESTAGE_S3_BUCKET"},
		{[]string{"--provider", "dropbox"}, 1, "choose one of alloy, composio, local, quant, recoup, s3"},
		{[]string{"serve", "--transport", "http", "--listen", "0.0.0.0:0"}, 2, "FILESTAGE_AUTH_TOKEN"},
	}
	for _, tt := range tests {
		var out, errs bytes.Buffer
		env := map[string]string{"FILESTAGE_DATA_DIR": t.TempDir()}
		code := run(context.Background(), tt.args, strings.NewReader(""), &out, &errs, func(k string) string { return env[k] }, nil)
		if code != tt.code || !strings.Contains(errs.String(), tt.want) || out.Len() != 0 {
			t.Errorf("%v: exit %d, stderr %q, stdout %q; want exit %d naming %s", tt.args, code, errs.String(), out.String(), tt.code, tt.want)
		}
	}
}

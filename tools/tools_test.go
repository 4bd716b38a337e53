package tools

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/filestage/filestage/internal/testfile"
	"github.com/filestage/filestage/providers"
	"github.com/filestage/filestage/schema"
	"github.com/filestage/filestage/source"
)

// fakeProvider records what the tools ask of storage.
type fakeProvider struct {
	mu        sync.Mutex
	requests  []providers.UploadRequest
	uploaded  [][]byte
	slotType  providers.SlotType
	uploadErr error
}

func (f *fakeProvider) RequestUpload(_ context.Context, req providers.UploadRequest) (providers.Slot, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests = append(f.requests, req)
	typ := f.slotType
	if typ == "" {
		typ = providers.SlotNew
	}
	return providers.Slot{ID: "id1", Key: "k/" + req.Filename, URL: "https://storage.test/put", Method: "PUT",
		Headers: map[string]string{"Content-Type": req.Mimetype}, ExpiresAt: time.Unix(1e9, 0), Type: typ, StorageBackend: "fake"}, nil
}

func (f *fakeProvider) Upload(_ context.Context, _ providers.Slot, body providers.Body) error {
	if f.uploadErr != nil {
		return f.uploadErr
	}
	b, err := io.ReadAll(body.Reader())
	f.mu.Lock()
	defer f.mu.Unlock()
	f.uploaded = append(f.uploaded, b)
	return err
}

func (f *fakeProvider) calls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.requests)
}

type fixture struct {
	provider *fakeProvider
	spoolDir string
	client   *client.Client
}

func newOpener(t *testing.T, o source.Options) *source.Opener {
	t.Helper()
	s, err := source.New(o)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// newFixture serves the tools to an in-process MCP client.
func newFixture(t *testing.T, p providers.Provider, maxBytes int64) *fixture {
	return newFixtureWith(t, p, maxBytes, func(*Service) {})
}

// newFixtureWith is newFixture with the service changed by set first.
func newFixtureWith(t *testing.T, p providers.Provider, maxBytes int64, set func(*Service)) *fixture {
	t.Helper()
	f := &fixture{spoolDir: t.TempDir()}
	if fp, ok := p.(*fakeProvider); ok {
		f.provider = fp
	}
	svc := &Service{
		Provider: p,
		Sources:  newOpener(t, source.Options{AllowPrivate: true, MaxBytes: maxBytes, Timeout: 10 * time.Second}),
		SpoolDir: f.spoolDir,
		MaxBytes: maxBytes,
		Logger:   slog.New(slog.DiscardHandler),
	}
	set(svc)
	srv := NewServer("test", svc)
	c, err := client.NewInProcessClient(srv)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	init := mcp.InitializeRequest{}
	init.Params.ProtocolVersion = mcp.LATEST_LEGACY_PROTOCOL_VERSION
	if _, err := c.Initialize(context.Background(), init); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	f.client = c
	return f
}

func (f *fixture) call(t *testing.T, tool string, args any) *mcp.CallToolResult {
	t.Helper()
	req := mcp.CallToolRequest{}
	req.Params.Name = tool
	req.Params.Arguments = args
	res, err := f.client.CallTool(context.Background(), req)
	if err != nil {
		t.Fatalf("protocol error, want a tool result: %v", err)
	}
	return res
}

func (f *fixture) spoolEmpty(t *testing.T) {
	t.Helper()
	entries, _ := os.ReadDir(f.spoolDir)
	for _, e := range entries {
		t.Errorf("spool file left behind: %s", e.Name())
	}
}

func errorOf(t *testing.T, res *mcp.CallToolResult) schema.ErrorBody {
	t.Helper()
	if !res.IsError {
		t.Fatalf("want a tool error, got %+v", res.Content)
	}
	if res.StructuredContent != nil {
		t.Errorf("error result carries structuredContent")
	}
	var env schema.ErrorEnvelope
	if err := json.Unmarshal([]byte(res.Content[0].(mcp.TextContent).Text), &env); err != nil {
		t.Fatalf("error text is not the JSON envelope: %v", err)
	}
	if env.Error.Message == "" || env.Error.SuggestedFix == "" || env.Error.Slug == "" || env.Error.Status == 0 {
		t.Errorf("incomplete envelope %+v", env.Error)
	}
	return env.Error
}

func TestBadInput(t *testing.T) {
	const hexMD5 = "5d41402abc4b2a76b9719d911017c592"
	presign := func(override map[string]any) map[string]any {
		args := map[string]any{"toolkit_slug": "gmail", "tool_slug": "GMAIL_SEND_EMAIL", "filename": "a.pdf", "mimetype": "application/pdf", "md5": hexMD5}
		for k, v := range override {
			if v == nil {
				delete(args, k)
			} else {
				args[k] = v
			}
		}
		return args
	}
	tests := []struct {
		name   string
		tool   string
		args   any
		slug   string
		status int
		// field must be named in the message.
		field string
	}{
		{"stage: no arguments", StageName, map[string]any{}, "INVALID_ARGUMENT", 400, "url"},
		{"stage: arguments not an object", StageName, []any{1, 2}, "INVALID_ARGUMENT", 400, "arguments"},
		{"stage: url of wrong type", StageName, map[string]any{"url": 5, "toolSlug": "GMAIL_SEND_EMAIL"}, "INVALID_ARGUMENT", 400, "url"},
		{"stage: toolSlug missing", StageName, map[string]any{"url": "https://example.com/a.png"}, "INVALID_ARGUMENT", 400, "toolSlug"},
		{"stage: toolSlug lower case", StageName, map[string]any{"url": "https://example.com/a.png", "toolSlug": "gmail_send_email"}, "INVALID_ARGUMENT", 400, "toolSlug"},
		{"stage: toolSlug with spaces", StageName, map[string]any{"url": "https://example.com/a.png", "toolSlug": "GMAIL SEND"}, "INVALID_ARGUMENT", 400, "toolSlug"},
		{"stage: toolSlug one word", StageName, map[string]any{"url": "https://example.com/a.png", "toolSlug": "GMAIL"}, "INVALID_ARGUMENT", 400, "toolSlug"},
		{"stage: ftp scheme", StageName, map[string]any{"url": "ftp://example.com/a.png", "toolSlug": "GMAIL_SEND_EMAIL"}, "INVALID_ARGUMENT", 400, "url"},
		{"stage: gopher scheme", StageName, map[string]any{"url": "gopher://example.com/", "toolSlug": "GMAIL_SEND_EMAIL"}, "INVALID_ARGUMENT", 400, "url"},
		{"stage: not absolute", StageName, map[string]any{"url": "a.png", "toolSlug": "GMAIL_SEND_EMAIL"}, "INVALID_ARGUMENT", 400, "url"},
		{"stage: no host", StageName, map[string]any{"url": "https:///a.png", "toolSlug": "GMAIL_SEND_EMAIL"}, "INVALID_ARGUMENT", 400, "url"},
		{"stage: unknown argument", StageName, map[string]any{"url": "https://example.com/a.png", "tool_slug": "GMAIL_SEND_EMAIL"}, "INVALID_ARGUMENT", 400, "tool_slug"},
		{"stage: bad toolkitSlug", StageName, map[string]any{"url": "https://example.com/a.png", "toolSlug": "GMAIL_SEND_EMAIL", "toolkitSlug": "g mail!"}, "INVALID_ARGUMENT", 400, "toolkitSlug"},
		{"stage: filename with nothing left", StageName, map[string]any{"url": "https://example.com/a.png", "toolSlug": "GMAIL_SEND_EMAIL", "filename": "../.."}, "INVALID_ARGUMENT", 400, "filename"},
		{"presign: no arguments", PresignName, map[string]any{}, "INVALID_ARGUMENT", 400, "toolkit_slug"},
		{"presign: toolkit_slug missing", PresignName, presign(map[string]any{"toolkit_slug": nil}), "INVALID_ARGUMENT", 400, "toolkit_slug"},
		{"presign: tool_slug lower case", PresignName, presign(map[string]any{"tool_slug": "gmail_send_email"}), "INVALID_ARGUMENT", 400, "tool_slug"},
		{"presign: filename missing", PresignName, presign(map[string]any{"filename": nil}), "INVALID_ARGUMENT", 400, "filename"},
		{"presign: mimetype missing", PresignName, presign(map[string]any{"mimetype": nil}), "INVALID_ARGUMENT", 400, "mimetype"},
		{"presign: mimetype not a type", PresignName, presign(map[string]any{"mimetype": "pdf"}), "INVALID_ARGUMENT", 400, "mimetype"},
		{"presign: md5 missing", PresignName, presign(map[string]any{"md5": nil}), "INVALID_ARGUMENT", 400, "md5"},
		{"presign: md5 not hex", PresignName, presign(map[string]any{"md5": "zz41402abc4b2a76b9719d911017c592"}), "INVALID_ARGUMENT", 400, "md5"},
		{"presign: md5 31 hex", PresignName, presign(map[string]any{"md5": hexMD5[1:]}), "INVALID_ARGUMENT", 400, "md5"},
		{"presign: md5 sha1 length", PresignName, presign(map[string]any{"md5": "aaf4c61ddcc5e8a2dabede0f3b482cd9aea9434d"}), "INVALID_ARGUMENT", 400, "md5"},
		{"presign: md5 base64 of 15 bytes", PresignName, presign(map[string]any{"md5": "XUFAKrxLKna5cZ2REBfF"}), "INVALID_ARGUMENT", 400, "md5"},
		{"presign: md5 a number", PresignName, presign(map[string]any{"md5": 123}), "INVALID_ARGUMENT", 400, "md5"},
		{"presign: size negative", PresignName, presign(map[string]any{"size": -1}), "INVALID_ARGUMENT", 400, "size"},
		{"presign: size a string", PresignName, presign(map[string]any{"size": "12"}), "INVALID_ARGUMENT", 400, "size"},
		{"presign: size a fraction", PresignName, presign(map[string]any{"size": 1.5}), "INVALID_ARGUMENT", 400, "size"},
		{"presign: size over the cap", PresignName, presign(map[string]any{"size": 1 << 40}), "FILE_TOO_LARGE", 413, "size"},
		{"presign: unknown argument", PresignName, presign(map[string]any{"toolSlug": "GMAIL_SEND_EMAIL"}), "INVALID_ARGUMENT", 400, "toolSlug"},
	}
	f := newFixture(t, &fakeProvider{}, 1<<20)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := errorOf(t, f.call(t, tt.tool, tt.args))
			if e.Slug != tt.slug || e.Status != tt.status || e.Code != tt.status {
				t.Errorf("slug %s status %d code %d, want %s %d", e.Slug, e.Status, e.Code, tt.slug, tt.status)
			}
			if !strings.HasPrefix(e.Message, tt.field+":") && !strings.Contains(e.Message, `"`+tt.field+`"`) && !strings.Contains(e.Message, tt.field) {
				t.Errorf("message %q does not name %s", e.Message, tt.field)
			}
		})
	}
	if n := f.provider.calls(); n != 0 {
		t.Errorf("bad input reached the provider %d times", n)
	}
	f.spoolEmpty(t)
}

func TestPresignAcceptsBothMD5Forms(t *testing.T) {
	f := newFixture(t, &fakeProvider{}, 1<<20)
	for _, md5 := range []string{"5d41402abc4b2a76b9719d911017c592", "5D41402ABC4B2A76B9719D911017C592", "XUFAKrxLKna5cZ2REBfFkg==", "XUFAKrxLKna5cZ2REBfFkg"} {
		res := f.call(t, PresignName, map[string]any{"toolkit_slug": "Slack", "tool_slug": "SLACK_UPLOAD_FILE", "filename": "notes/a.txt", "mimetype": "text/plain; charset=utf-8", "md5": md5, "size": 5})
		if res.IsError {
			t.Fatalf("md5 %q refused: %v", md5, res.Content)
		}
	}
	want := providers.UploadRequest{ToolkitSlug: "slack", ToolSlug: "SLACK_UPLOAD_FILE", Filename: "a.txt", Mimetype: "text/plain", Size: 5, Owner: "local",
		MD5: [16]byte{0x5d, 0x41, 0x40, 0x2a, 0xbc, 0x4b, 0x2a, 0x76, 0xb9, 0x71, 0x9d, 0x91, 0x10, 0x17, 0xc5, 0x92}}
	for i, got := range f.provider.requests {
		if got != want {
			t.Errorf("request %d: %+v, want %+v", i, got, want)
		}
	}
}

// urlStager is a provider that fetches URLs itself, as Recoup does.
type urlStager struct {
	fakeProvider
	got providers.StageURLRequest
}

func (u *urlStager) StageURL(_ context.Context, req providers.StageURLRequest) (providers.Descriptor, error) {
	u.got = req
	return providers.Descriptor{Name: "x.png", Mimetype: "image/png", S3Key: "remote/x.png"}, nil
}

func TestStageHandsURLToProvidersThatFetch(t *testing.T) {
	p := &urlStager{}
	f := newFixture(t, p, 1<<20)
	res := f.call(t, StageName, map[string]any{"url": "https://images.example/x.png", "toolSlug": "LINKEDIN_CREATE_LINKED_IN_POST"})
	if res.IsError {
		t.Fatalf("tool error: %v", res.Content)
	}
	want := providers.StageURLRequest{URL: "https://images.example/x.png", ToolkitSlug: "linkedin", ToolSlug: "LINKEDIN_CREATE_LINKED_IN_POST"}
	if p.got != want {
		t.Errorf("provider got %+v, want %+v", p.got, want)
	}
	if n := p.calls(); n != 0 {
		t.Errorf("RequestUpload called %d times; the provider stages URLs itself", n)
	}
	p.got = providers.StageURLRequest{}
	if e := errorOf(t, f.call(t, StageName, map[string]any{"url": "ftp://images.example/x.png", "toolSlug": "GMAIL_SEND_EMAIL"})); e.Slug != "INVALID_ARGUMENT" {
		t.Errorf("ftp URL: %+v", e)
	}
	if p.got.URL != "" {
		t.Error("an ftp URL was handed to the provider")
	}
}

func TestStageNeverDescribesBytesNotStored(t *testing.T) {
	p := &fakeProvider{uploadErr: errors.New("connection reset by peer")}
	f := newFixture(t, p, 1<<20)
	src := serve(t, "/a.png", "image/png", "", testfile.PNG(4096))
	e := errorOf(t, f.call(t, StageName, map[string]any{"url": src + "/a.png", "toolSlug": "GMAIL_SEND_EMAIL"}))
	if e.Slug != "STORAGE_ERROR" || !strings.Contains(e.SuggestedFix, "Nothing was stored") {
		t.Errorf("got %+v", e)
	}
	f.spoolEmpty(t)
}

func TestStageSkipsUploadWhenStorageHasTheBytes(t *testing.T) {
	p := &fakeProvider{slotType: providers.SlotExisting}
	f := newFixture(t, p, 1<<20)
	src := serve(t, "/a.png", "image/png", "", testfile.PNG(4096))
	res := f.call(t, StageName, map[string]any{"url": src + "/a.png", "toolSlug": "GMAIL_SEND_EMAIL"})
	if res.IsError {
		t.Fatal(res.Content)
	}
	if len(p.uploaded) != 0 {
		t.Errorf("uploaded %d times to an existing slot", len(p.uploaded))
	}
	if got := res.StructuredContent.(map[string]any)["type"]; got != "existing" {
		t.Errorf("type %v, want existing", got)
	}
}

func TestStageNamesAndTypes(t *testing.T) {
	png := testfile.PNG(2048)
	tests := []struct {
		name, path, contentType, disposition string
		body                                 []byte
		args                                 map[string]any
		wantName, wantType                   string // wantName is a regular expression
	}{
		{"sniffed over a wrong Content-Type", "/img/logo", "application/octet-stream", "", png, nil, `^logo\.png$`, "image/png"},
		{"Content-Disposition wins over the path", "/download", "image/png", `attachment; filename="Q3 report.png"`, png, nil, `^Q3 report\.png$`, "image/png"},
		{"RFC 5987 filename", "/dl", "", `attachment; filename*=UTF-8''r%C3%A9sum%C3%A9.png`, png, nil, `^résumé\.png$`, "image/png"},
		{"text refined by Content-Type", "/data", "text/csv; charset=utf-8", "", []byte("a,b\n1,2\n"), nil, `^data\.csv$`, "text/csv"},
		{"text refined by extension", "/notes.md", "", "", []byte("# Title\n\nbody\n"), nil, `^notes\.md$`, "text/markdown"},
		{"generated name", "/", "application/pdf", "", []byte("%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n"), nil, `^file-[0-9a-f]{8}\.pdf$`, "application/pdf"},
		{"filename argument wins", "/img/logo", "image/png", `attachment; filename="x.png"`, png, map[string]any{"filename": "chosen.png"}, `^chosen\.png$`, "image/png"},
		{"path traversal in header", "/a", "image/png", `attachment; filename="../../etc/passwd.png"`, png, nil, `^passwd\.png$`, "image/png"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := &fakeProvider{}
			f := newFixture(t, p, 1<<20)
			src := serve(t, tt.path, tt.contentType, tt.disposition, tt.body)
			args := map[string]any{"url": src + tt.path, "toolSlug": "GMAIL_SEND_EMAIL"}
			for k, v := range tt.args {
				args[k] = v
			}
			res := f.call(t, StageName, args)
			if res.IsError {
				t.Fatal(res.Content)
			}
			out := res.StructuredContent.(map[string]any)
			if name := out["name"].(string); !regexp.MustCompile(tt.wantName).MatchString(name) {
				t.Errorf("name %q, want %q", name, tt.wantName)
			}
			if out["mimetype"] != tt.wantType {
				t.Errorf("mimetype %v, want %s", out["mimetype"], tt.wantType)
			}
			if len(p.uploaded) != 1 || !bytes.Equal(p.uploaded[0], tt.body) {
				t.Errorf("uploaded bytes differ from the source")
			}
			f.spoolEmpty(t)
		})
	}
}

func TestToolSchemasMirrorTheDocs(t *testing.T) {
	type object struct {
		Required   []string                   `json:"required"`
		Properties map[string]json.RawMessage `json:"properties"`
	}
	read := func(raw json.RawMessage) object {
		var o object
		if err := json.Unmarshal(raw, &o); err != nil {
			t.Fatal(err)
		}
		return o
	}
	tests := []struct {
		name          string
		schema        json.RawMessage
		required, all []string
	}{
		// Recoup UploadConnectorFileRequest / Response.
		{"stage input", StageTool().RawInputSchema, []string{"url", "toolSlug"}, []string{"url", "toolSlug", "filename", "toolkitSlug"}},
		{"stage output", StageTool().RawOutputSchema, []string{"success", "name", "mimetype", "s3key"}, []string{"success", "name", "mimetype", "s3key", "size", "md5", "type",
			// filestage's own, each absent when the storage says nothing of it.
			"file_id", "download_url", "download_url_expires_at", "expires_at"}},
		// Composio POST /api/v3/files/upload/request body and 200 response.
		{"presign input", PresignTool().RawInputSchema, []string{"toolkit_slug", "tool_slug", "filename", "mimetype", "md5"}, []string{"toolkit_slug", "tool_slug", "filename", "mimetype", "md5", "size"}},
		{"presign output", PresignTool().RawOutputSchema,
			// expires_at is filestage's own, and absent when there is no URL.
			[]string{"id", "key", "new_presigned_url", "type", "metadata", "method", "headers", "file_uploadable"},
			[]string{"id", "key", "new_presigned_url", "type", "metadata", "method", "headers", "expires_at", "file_uploadable",
				"file_id", "download_url", "download_url_expires_at", "file_expires_at", "note"}},
	}
	for _, tt := range tests {
		o := read(tt.schema)
		got := slices.Sorted(func(yield func(string) bool) {
			for k := range o.Properties {
				if !yield(k) {
					return
				}
			}
		})
		if !slices.Equal(got, slices.Sorted(slices.Values(tt.all))) {
			t.Errorf("%s: properties %v, want %v", tt.name, got, tt.all)
		}
		if !slices.Equal(slices.Sorted(slices.Values(o.Required)), slices.Sorted(slices.Values(tt.required))) {
			t.Errorf("%s: required %v, want %v", tt.name, o.Required, tt.required)
		}
	}
	meta := read(read(PresignTool().RawOutputSchema).Properties["metadata"])
	if _, ok := meta.Properties["storage_backend"]; !ok {
		t.Error("presign output: metadata.storage_backend missing")
	}
	desc := read(read(PresignTool().RawOutputSchema).Properties["file_uploadable"])
	if !slices.Equal(slices.Sorted(slices.Values(desc.Required)), []string{"mimetype", "name", "s3key"}) {
		t.Errorf("file_uploadable required %v", desc.Required)
	}
}

// TestToolSnapshots fails when a tool's definition changes; run with
// UPDATE_TOOLSNAPS=true to accept a change on purpose.
func TestToolSnapshots(t *testing.T) {
	for _, tool := range []mcp.Tool{StageTool(), StageManyTool(), PresignTool(), UserUploadTool(), GetUserUploadTool()} {
		got, err := json.MarshalIndent(tool, "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, '\n')
		path := filepath.Join("__toolsnaps__", tool.Name+".snap")
		if os.Getenv("UPDATE_TOOLSNAPS") == "true" {
			if err := os.MkdirAll("__toolsnaps__", 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, got, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (run with UPDATE_TOOLSNAPS=true to create it)", err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s changed; if on purpose, run UPDATE_TOOLSNAPS=true go test ./tools and commit the snapshot.\ngot:\n%s", tool.Name, got)
		}
	}
}

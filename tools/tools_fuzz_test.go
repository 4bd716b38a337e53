package tools

import (
	"context"
	"crypto/md5"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/filestage/filestage/providers"
	"github.com/filestage/filestage/schema"
	"github.com/filestage/filestage/source"
)

// fuzzStorage answers at once and keeps nothing: the fuzz targets test the
// tools, not storage.
type fuzzStorage struct{}

func (fuzzStorage) RequestUpload(_ context.Context, req providers.UploadRequest) (providers.Slot, error) {
	return providers.Slot{ID: "fuzz", Key: providers.ContentKey(req), URL: "https://storage.invalid/put", Method: "PUT",
		Headers: map[string]string{"Content-Type": req.Mimetype}, ExpiresAt: time.Unix(1e9, 0), Type: providers.SlotNew, StorageBackend: "fuzz"}, nil
}

func (fuzzStorage) Upload(_ context.Context, _ providers.Slot, body providers.Body) error {
	_, err := io.Copy(io.Discard, body.Reader())
	return err
}

// fuzzFetchingStorage fetches URLs itself, as Recoup does, so that staging
// an http(s) URL never leaves the process.
type fuzzFetchingStorage struct{ fuzzStorage }

func (fuzzFetchingStorage) StageURL(_ context.Context, req providers.StageURLRequest) (providers.Descriptor, error) {
	return providers.Descriptor{Name: "fetched.bin", Mimetype: "application/octet-stream", S3Key: req.ToolkitSlug + "/" + req.ToolSlug + "/fetched.bin"}, nil
}

// fuzzServers are the tools served twice: by a provider that fetches
// http(s) URLs itself, and by one that is handed bytes, behind an opener
// with no file roots. A call goes to the first when its url is http(s),
// so no input makes the process fetch anything: data: URLs are decoded
// in memory and file:// URLs are refused before the disk is looked at.
type fuzzServers struct {
	fetching, local       *server.MCPServer
	fetchingSvc, localSvc *Service
}

func newFuzzServers(f *testing.F) *fuzzServers {
	sources, err := source.New(source.Options{MaxBytes: 1 << 20, MaxInlineBytes: 4096, Timeout: time.Second})
	if err != nil {
		f.Fatal(err)
	}
	svc := func(p providers.Provider) *Service {
		return &Service{Provider: p, Sources: sources, SpoolDir: f.TempDir(), MaxBytes: 1 << 20, Logger: slog.New(slog.DiscardHandler)}
	}
	s := &fuzzServers{fetchingSvc: svc(fuzzFetchingStorage{}), localSvc: svc(fuzzStorage{})}
	s.fetching, s.local = NewServer("fuzz", s.fetchingSvc), NewServer("fuzz", s.localSvc)
	return s
}

// pick returns the server and service a stage call with these arguments
// must go to; presign calls fetch nothing and may go to either.
func (s *fuzzServers) pick(tool string, raw []byte) (*server.MCPServer, *Service) {
	if tool != StageName {
		return s.local, s.localSvc
	}
	// Lenient decoding finds the same url as the handler's strict one
	// whenever that succeeds; when it fails, nothing is fetched anyway.
	var in schema.StageRequest
	json.Unmarshal(raw, &in)
	if u, err := source.ParseURL(strings.TrimSpace(in.URL)); err == nil && u.Scheme != "data" && u.Scheme != "file" {
		return s.fetching, s.fetchingSvc
	}
	return s.local, s.localSvc
}

// call runs raw as the arguments of tool: through the server's JSON-RPC
// handling when raw is JSON (as a client would send it), else straight
// through the tool's handler, which is what decodes RawArguments.
//
// JSON that does not decode into an any, a number beyond float64 such as
// 1e400, also goes straight to the handler: mcp-go (v1.2.1) decodes the
// arguments into an any besides keeping them raw, and answers such a call
// with a protocol error before filestage sees it.
func (s *fuzzServers) call(t *testing.T, tool string, raw []byte) *mcp.CallToolResult {
	srv, svc := s.pick(tool, raw)
	var v any
	if json.Unmarshal(raw, &v) != nil {
		req := mcp.CallToolRequest{}
		req.Params.Name = tool
		req.Params.RawArguments = raw
		h := handle(svc, StageName, svc.Stage)
		if tool == PresignName {
			h = handle(svc, PresignName, svc.Presign)
		}
		res, err := h(context.Background(), req)
		if err != nil || res == nil {
			t.Fatalf("handler returned (%v, %v), want a tool result", res, err)
		}
		return res
	}
	msg := `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"` + tool + `","arguments":` + string(raw) + `}}`
	switch resp := srv.HandleMessage(context.Background(), json.RawMessage(msg)).(type) {
	case mcp.JSONRPCResponse:
		res, ok := resp.Result.(*mcp.CallToolResult)
		if !ok {
			t.Fatalf("result of type %T, want *mcp.CallToolResult", resp.Result)
		}
		return res
	case mcp.JSONRPCError:
		t.Fatalf("protocol error %d %q, want a tool result", resp.Error.Code, resp.Error.Message)
	default:
		t.Fatalf("answer of type %T, want a JSON-RPC response", resp)
	}
	return nil
}

// fuzzCheckResult holds for every answer: a success with the tool's
// structured output, or a tool error whose only content is the JSON error
// envelope with slug, message, fix and a 4xx or 5xx status.
func fuzzCheckResult(t *testing.T, tool string, res *mcp.CallToolResult) {
	t.Helper()
	if len(res.Content) != 1 {
		t.Fatalf("%d content items, want 1", len(res.Content))
	}
	text, ok := res.Content[0].(mcp.TextContent)
	if !ok {
		t.Fatalf("content of type %T, want text", res.Content[0])
	}
	if res.IsError {
		if res.StructuredContent != nil {
			t.Errorf("error result carries structuredContent")
		}
		var env schema.ErrorEnvelope
		if err := json.Unmarshal([]byte(text.Text), &env); err != nil {
			t.Fatalf("error text is not the JSON envelope: %v: %q", err, text.Text)
		}
		e := env.Error
		if e.Slug == "" || e.Message == "" || e.SuggestedFix == "" || e.Status < 400 || e.Status > 599 || e.Code != e.Status {
			t.Fatalf("incomplete error envelope %+v", e)
		}
		if strings.ToUpper(e.Slug) != e.Slug || strings.ContainsAny(e.Slug, " \t\n") {
			t.Errorf("slug %q is not UPPER_SNAKE_CASE", e.Slug)
		}
		return
	}
	if res.StructuredContent == nil {
		t.Errorf("success without structuredContent")
	}
	switch tool {
	case StageName:
		var out schema.StageResponse
		if err := json.Unmarshal([]byte(text.Text), &out); err != nil {
			t.Fatalf("success text is not a stage response: %v", err)
		}
		if !out.Success || out.S3Key == "" || out.Mimetype == "" {
			t.Errorf("incomplete stage response %+v", out)
		}
		fuzzCheckName(t, out.Name)
	case PresignName:
		var out schema.PresignResponse
		if err := json.Unmarshal([]byte(text.Text), &out); err != nil {
			t.Fatalf("success text is not a presign response: %v", err)
		}
		d := out.FileUploadable
		if out.Key == "" || out.NewPresignedURL == "" || d.S3Key != out.Key || !strings.Contains(d.Mimetype, "/") {
			t.Errorf("incomplete presign response %+v", out)
		}
		fuzzCheckName(t, d.Name)
	}
}

// fuzzCheckName: a name the tools answer with is a plain file name.
func fuzzCheckName(t *testing.T, name string) {
	t.Helper()
	bad := name == "" || strings.Trim(name, ". ") != name || !utf8.ValidString(name) || len(name) > source.MaxNameBytes ||
		strings.ContainsAny(name, "/\\\x00") || strings.IndexFunc(name, func(r rune) bool {
		return unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r)
	}) >= 0 || filepath.Base(name) != name
	if bad {
		t.Errorf("unsafe file name %q", name)
	}
}

const fuzzHexMD5 = "5d41402abc4b2a76b9719d911017c592" // md5("hello")

var fuzzStageSeeds = []string{
	`{"url":"data:text/plain;base64,aGVsbG8=","toolSlug":"GMAIL_SEND_EMAIL"}`,
	`{"url":"data:application/pdf;name=q3%20report.pdf;base64,JVBERi0=","toolSlug":"SLACK_UPLOAD_FILE","toolkitSlug":"Slack","filename":"../../etc/passwd"}`,
	`{"url":"data:,hello%2C%20world","toolSlug":"GMAIL_SEND_EMAIL","filename":"invoice\u202efdp.exe"}`,
	`{"url":"https://example.com/charts/q3","toolSlug":"GMAIL_SEND_EMAIL"}`,
	`{"url":"file:///etc/passwd","toolSlug":"GMAIL_SEND_EMAIL"}`,
	`{"url":"ftp://example.com/a","toolSlug":"GMAIL_SEND_EMAIL"}`,
	`{"url":"data:text/plain;base64,!!!","toolSlug":"GMAIL_SEND_EMAIL"}`,
	`{"url":"data:,` + strings.Repeat("x", 5000) + `","toolSlug":"GMAIL_SEND_EMAIL"}`,
	`{"url":5,"toolSlug":"GMAIL_SEND_EMAIL"}`,
	`{"url":"data:,a","toolSlug":"gmail_send_email","extra":true}`,
	`{"url":"data:,a","toolSlug":"GMAIL_SEND_EMAIL","url":"https://example.com/"}`,
	`{"URL":"data:,a","TOOLSLUG":"GMAIL_SEND_EMAIL"}`,
	`[1,2]`,
	`"a string"`,
	`null`,
	``,
	`{`,
	`{"url":"data:,a","toolSlug":"GMAIL_SEND_EMAIL"} trailing`,
	"{\"url\":\"\xff\xfe\",\"toolSlug\":\"\"}",
}

var fuzzPresignSeeds = []string{
	`{"toolkit_slug":"gmail","tool_slug":"GMAIL_SEND_EMAIL","filename":"a.pdf","mimetype":"application/pdf","md5":"` + fuzzHexMD5 + `","size":5}`,
	`{"toolkit_slug":"Slack","tool_slug":"SLACK_UPLOAD_FILE","filename":"notes/a.txt","mimetype":"text/plain; charset=utf-8","md5":"XUFAKrxLKna5cZ2REBfFkg=="}`,
	`{"toolkit_slug":"gmail","tool_slug":"GMAIL_SEND_EMAIL","filename":"a.pdf","mimetype":"application/pdf","md5":"XUFAKrxLKna5cZ2REBfFkg","size":0}`,
	`{"toolkit_slug":"gmail","tool_slug":"GMAIL_SEND_EMAIL","filename":"a.pdf","mimetype":"application/pdf","md5":"` + fuzzHexMD5 + `","size":-1}`,
	`{"toolkit_slug":"gmail","tool_slug":"GMAIL_SEND_EMAIL","filename":"a.pdf","mimetype":"application/pdf","md5":"` + fuzzHexMD5 + `","size":1.5}`,
	`{"toolkit_slug":"gmail","tool_slug":"GMAIL_SEND_EMAIL","filename":"a.pdf","mimetype":"application/pdf","md5":"` + fuzzHexMD5 + `","size":99999999999999999999999}`,
	`{"toolkit_slug":"gmail","tool_slug":"GMAIL_SEND_EMAIL","filename":"..","mimetype":"pdf","md5":"zz"}`,
	`{"toolkit_slug":"g mail!","tool_slug":"GMAIL","filename":"a.pdf","mimetype":"application/pdf","md5":"` + fuzzHexMD5 + `"}`,
	`{"toolkit_slug":"gmail","tool_slug":"GMAIL_SEND_EMAIL","filename":"a.pdf","mimetype":"application/pdf","md5":"` + fuzzHexMD5 + `","toolSlug":"X"}`,
	`{"md5":123}`,
	`{}`,
	`[]`,
	`true`,
	``,
	`{"toolkit_slug":`,
}

// FuzzStageArgs feeds arbitrary bytes as stage_connector_file's arguments.
func FuzzStageArgs(f *testing.F) {
	for _, s := range fuzzStageSeeds {
		f.Add([]byte(s))
	}
	s := newFuzzServers(f)
	f.Fuzz(func(t *testing.T, raw []byte) {
		fuzzCheckResult(t, StageName, s.call(t, StageName, raw))
	})
}

// FuzzPresignArgs feeds arbitrary bytes as request_presigned_upload's
// arguments.
func FuzzPresignArgs(f *testing.F) {
	for _, s := range fuzzPresignSeeds {
		f.Add([]byte(s))
	}
	s := newFuzzServers(f)
	f.Fuzz(func(t *testing.T, raw []byte) {
		fuzzCheckResult(t, PresignName, s.call(t, PresignName, raw))
	})
}

// FuzzParseMD5: parseMD5 accepts exactly 32 hex characters, in any case,
// or the base64 (padded or not) of 16 bytes, white space around either
// aside; what it accepts round-trips through hex.
func FuzzParseMD5(f *testing.F) {
	sum := md5.Sum([]byte("hello"))
	for _, s := range []string{
		fuzzHexMD5, strings.ToUpper(fuzzHexMD5), " " + fuzzHexMD5 + "\n",
		base64.StdEncoding.EncodeToString(sum[:]), base64.RawStdEncoding.EncodeToString(sum[:]),
		base64.URLEncoding.EncodeToString(sum[:]), "XUFAKrxLKna5cZ2REBfFkh==", "XUFAKrxLKna5cZ2R\nEBfFkg==",
		fuzzHexMD5[1:], fuzzHexMD5 + "0", "zz41402abc4b2a76b9719d911017c592", "XUFAKrxLKna5cZ2REBfF",
		"aaf4c61ddcc5e8a2dabede0f3b482cd9aea9434d", "", "====", "\u00a0" + fuzzHexMD5,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := parseMD5("md5", s)
		want, ok := fuzzMD5Oracle(s)
		switch {
		case ok && err != nil:
			t.Fatalf("parseMD5(%q) refused a valid MD5: %v", s, err)
		case !ok && err == nil:
			t.Fatalf("parseMD5(%q) = %x, want it refused", s, got)
		case ok && got != want:
			t.Fatalf("parseMD5(%q) = %x, want %x", s, got, want)
		case err != nil:
			if te := AsError(err); te.Slug != "INVALID_ARGUMENT" || !strings.HasPrefix(te.Message, "md5: ") || te.Fix == "" {
				t.Fatalf("error %+v", te)
			}
			return
		}
		for _, form := range []string{hex.EncodeToString(got[:]), strings.ToUpper(hex.EncodeToString(got[:])),
			base64.StdEncoding.EncodeToString(got[:]), base64.RawStdEncoding.EncodeToString(got[:])} {
			if again, err := parseMD5("md5", form); err != nil || again != got {
				t.Fatalf("%q (from %q) parses to %x, %v; want %x", form, s, again, err, got)
			}
		}
	})
}

// fuzzMD5Oracle says what parseMD5 should make of s, without sharing its code.
func fuzzMD5Oracle(s string) (sum [16]byte, ok bool) {
	s = strings.TrimSpace(s)
	if len(s) == 32 && strings.Trim(s, "0123456789abcdefABCDEF") == "" {
		for i := range sum {
			sum[i] = fuzzHexNibble(s[2*i])<<4 | fuzzHexNibble(s[2*i+1])
		}
		return sum, true
	}
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	body := s
	if len(s) == 24 && strings.HasSuffix(s, "==") {
		body = s[:22]
	}
	if len(body) != 22 || strings.Trim(body, alphabet) != "" {
		return sum, false
	}
	// 22 characters carry 132 bits: the last one's low 4 bits must be 0,
	// or the text is not the encoding of any 16 bytes.
	if strings.IndexByte(alphabet, body[21])&0xf != 0 {
		return sum, false
	}
	var acc uint32
	var bits, n int
	for i := range 22 {
		acc = acc<<6 | uint32(strings.IndexByte(alphabet, body[i]))
		if bits += 6; bits >= 8 && n < 16 {
			bits -= 8
			sum[n] = byte(acc >> bits)
			n++
		}
	}
	return sum, true
}

func fuzzHexNibble(c byte) byte {
	switch {
	case c >= '0' && c <= '9':
		return c - '0'
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}

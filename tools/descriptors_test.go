package tools

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"io"
	"mime"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/filestage/filestage/internal/testfile"
	"github.com/filestage/filestage/internal/testhttp"
	"github.com/filestage/filestage/providers"
	"github.com/filestage/filestage/providers/alloy"
	"github.com/filestage/filestage/providers/alloy/alloytest"
	"github.com/filestage/filestage/providers/composio"
	"github.com/filestage/filestage/providers/composio/composiotest"
	"github.com/filestage/filestage/providers/local"
	"github.com/filestage/filestage/providers/quant"
	"github.com/filestage/filestage/providers/quant/quanttest"
	"github.com/filestage/filestage/providers/recoup"
	"github.com/filestage/filestage/providers/recoup/recouptest"
	"github.com/filestage/filestage/providers/s3"
	"github.com/filestage/filestage/providers/s3/s3test"
	"github.com/filestage/filestage/schema"
)

// stored is what a storage holds under a key, as far as it tells.
type stored struct {
	data []byte
	// contentType is the type the storage recorded with the object.
	contentType string
	// name is the file name the storage recorded, "" when it keeps none.
	name string
}

// descriptorBackend is a provider under test and ways to look behind it.
type descriptorBackend struct {
	provider providers.Provider
	presign  bool // offers request_presigned_upload
	// object reads what the storage holds under key.
	object func(t *testing.T, key string) (stored, bool)
	// sent is the filename and MIME type the platform's API was last
	// asked to store; ok is false for a platform whose API takes none.
	sent func(t *testing.T) (filename, mimetype string, ok bool)
	// fileKey is the S3 key of a platform's own file handle, for the
	// platforms that have one (file_id); nil for the others.
	fileKey func(fileID string) (string, bool)
}

func settings(env map[string]string) providers.Settings {
	return providers.Settings{Getenv: func(k string) string { return env[k] }, HTTP: providers.NewClient("filestage-test"), MaxBytes: descriptorMaxBytes}
}

func openProvider(t *testing.T, open providers.Factory, s providers.Settings) providers.Provider {
	t.Helper()
	p, err := open(context.Background(), s)
	if err != nil {
		t.Fatal(err)
	}
	if c, ok := p.(io.Closer); ok {
		t.Cleanup(func() { c.Close() })
	}
	return p
}

// lastAPICall is the JSON body of the last POST a fake platform received.
func lastAPICall(t *testing.T, requests []composiotest.Request) map[string]any {
	t.Helper()
	for i := len(requests) - 1; i >= 0; i-- {
		if requests[i].Method == http.MethodPost {
			return requests[i].Body
		}
	}
	t.Fatal("the platform's API was never called")
	return nil
}

// sentFields reads the filename and MIME type a platform's API was sent,
// under the platform's own field names.
func sentFields(requests func() []composiotest.Request, nameField, typeField string) func(*testing.T) (string, string, bool) {
	return func(t *testing.T) (string, string, bool) {
		body := lastAPICall(t, requests())
		name, _ := body[nameField].(string)
		typ, _ := body[typeField].(string)
		return name, typ, true
	}
}

// fakeObject reads a fake platform's storage.
func fakeObject(object func(string) ([]byte, bool), contentType func(string) (string, bool)) func(*testing.T, string) (stored, bool) {
	return func(_ *testing.T, key string) (stored, bool) {
		data, ok := object(key)
		typ, _ := contentType(key)
		return stored{data: data, contentType: typ}, ok
	}
}

func notSent(*testing.T) (string, string, bool) { return "", "", false }

const descriptorMaxBytes = 16 << 20

// descriptorBackends starts every provider against its fake (or, for s3,
// a real S3 server: s3test skips without one, and fails in CI).
var descriptorBackends = []struct {
	name string
	// size is how many bytes are staged and uploaded: quant stores files
	// over quant.DirectMax through a presigned URL, smaller ones in one
	// request.
	size int
	open func(t *testing.T) descriptorBackend
}{
	{"local", 64 << 10, func(t *testing.T) descriptorBackend {
		// The store's signed URLs point at a listener that serves it, as
		// filestage's HTTP transport does.
		var h http.Handler = http.NotFoundHandler()
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h.ServeHTTP(w, r) }))
		t.Cleanup(srv.Close)
		s := settings(nil)
		s.DataDir, s.PublicURL = t.TempDir(), srv.URL
		p := openProvider(t, local.Open, s).(*local.Provider)
		mux := http.NewServeMux()
		mux.Handle(p.Pattern(), p)
		h = mux
		return descriptorBackend{provider: p, presign: true, sent: notSent,
			// The local store keeps the type and name in its index, and
			// serves them with the bytes at a download URL.
			object: func(t *testing.T, key string) (stored, bool) {
				url, _ := p.DownloadURL(key, "")
				resp, err := http.Get(url)
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				data, err := io.ReadAll(resp.Body)
				if err != nil || resp.StatusCode != http.StatusOK {
					return stored{}, false
				}
				_, params, _ := mime.ParseMediaType(resp.Header.Get("Content-Disposition"))
				return stored{data: data, contentType: resp.Header.Get("Content-Type"), name: params["filename"]}, true
			}}
	}},
	{"s3", 64 << 10, func(t *testing.T) descriptorBackend {
		env := s3test.Env(t)
		c := s3test.Client(env)
		return descriptorBackend{provider: openProvider(t, s3.Open, settings(env)), presign: true, sent: notSent,
			object: func(t *testing.T, key string) (stored, bool) {
				out, err := c.GetObject(context.Background(), &awss3.GetObjectInput{Bucket: aws.String(env["FILESTAGE_S3_BUCKET"]), Key: aws.String(key)})
				if err != nil {
					return stored{}, false
				}
				defer out.Body.Close()
				data, err := io.ReadAll(out.Body)
				return stored{data: data, contentType: aws.ToString(out.ContentType)}, err == nil
			}}
	}},
	{"composio", 64 << 10, func(t *testing.T) descriptorBackend {
		f := composiotest.New(t)
		return descriptorBackend{provider: openProvider(t, composio.Open, settings(f.Env())), presign: true,
			object: fakeObject(f.Object, f.ContentType), sent: sentFields(f.Requests, "filename", "mimetype")}
	}},
	{"composio/azure", 64 << 10, func(t *testing.T) descriptorBackend {
		f := composiotest.New(t)
		f.SetStorageBackend(composiotest.Azure)
		return descriptorBackend{provider: openProvider(t, composio.Open, settings(f.Env())), presign: true,
			object: fakeObject(f.Object, f.ContentType), sent: sentFields(f.Requests, "filename", "mimetype")}
	}},
	{"alloy", 64 << 10, func(t *testing.T) descriptorBackend {
		f := alloytest.New(t)
		return descriptorBackend{provider: openProvider(t, alloy.Open, settings(f.Env())), presign: true,
			object: fakeObject(f.Object, f.ContentType), sent: sentFields(f.Requests, "filename", "mimeType")}
	}},
	{"recoup", 64 << 10, func(t *testing.T) descriptorBackend {
		f := recouptest.New(t)
		// Recoup's request has no filename field: the descriptor's name is
		// filestage's to set.
		return descriptorBackend{provider: openProvider(t, recoup.Open, settings(f.Env())),
			object: fakeObject(f.Object, f.ContentType), sent: notSent}
	}},
	{"quant/direct", 64 << 10, func(t *testing.T) descriptorBackend {
		f := quanttest.New(t)
		return descriptorBackend{provider: openProvider(t, quant.Open, settings(f.Env())), presign: true,
			object: fakeObject(f.Object, f.ContentType), sent: sentFields(f.Requests, "filename", "contentType"), fileKey: f.FileKey}
	}},
	{"quant/presigned", quant.DirectMax + 1, func(t *testing.T) descriptorBackend {
		f := quanttest.New(t)
		return descriptorBackend{provider: openProvider(t, quant.Open, settings(f.Env())), presign: true,
			object: fakeObject(f.Object, f.ContentType), sent: sentFields(f.Requests, "filename", "contentType"), fileKey: f.FileKey}
	}},
}

// structured decodes a tool's structured answer into T.
func structured[T any](t *testing.T, res *mcp.CallToolResult) T {
	t.Helper()
	var out T
	if res.IsError {
		t.Fatalf("tool error: %v", res.Content)
	}
	b, err := json.Marshal(res.StructuredContent)
	if err == nil {
		err = json.Unmarshal(b, &out)
	}
	if err != nil {
		t.Fatalf("structured content %v: %v", res.StructuredContent, err)
	}
	return out
}

// checkStored checks a descriptor against what the storage holds under
// its s3key: the bytes, the type recorded with them, and the name where
// the storage records one; and that the platform was asked to store the
// file under that name and type.
func checkStored(t *testing.T, b descriptorBackend, d schema.Descriptor, data []byte) {
	t.Helper()
	got, ok := b.object(t, d.S3Key)
	switch {
	case !ok:
		t.Fatalf("s3key %q: the storage holds nothing under it", d.S3Key)
	case !bytes.Equal(got.data, data):
		t.Fatalf("s3key %q: the storage holds %d other bytes under it, want the %d staged", d.S3Key, len(got.data), len(data))
	}
	if got.contentType != d.Mimetype {
		t.Errorf("mimetype %q, but the storage recorded %q", d.Mimetype, got.contentType)
	}
	if got.name != "" && got.name != d.Name {
		t.Errorf("name %q, but the storage recorded %q", d.Name, got.name)
	}
	if name, typ, ok := b.sent(t); ok && (name != d.Name || typ != d.Mimetype) {
		t.Errorf("the platform was asked to store %q as %q, but the descriptor says %q as %q", name, typ, d.Name, d.Mimetype)
	}
}

// checkFileID checks that file_id is the platform's handle for the file
// under s3key, and absent where the platform has no handle of its own.
func checkFileID(t *testing.T, b descriptorBackend, fileID, s3key string) {
	t.Helper()
	if b.fileKey == nil {
		if fileID != "" {
			t.Errorf("file_id %q from a platform without file handles", fileID)
		}
		return
	}
	if key, ok := b.fileKey(fileID); !ok || key != s3key {
		t.Errorf("file_id %q names the key %q (known %v), want s3key %q", fileID, key, ok, s3key)
	}
}

// TestDescriptorsMatchStorage runs every provider through both tools and
// checks each descriptor field against what its storage holds: s3key is
// where the bytes are, name is the caller's filename, and mimetype is the
// type detected from the bytes (stage) or given (presign), the one the
// storage recorded.
func TestDescriptorsMatchStorage(t *testing.T) {
	// Not the source's own name, nor the one its Content-Disposition
	// offers: the caller's filename must win over both.
	const filename = "Q3 cover (final).png"
	for _, be := range descriptorBackends {
		t.Run(be.name+"/stage", func(t *testing.T) {
			b := be.open(t)
			f := newFixture(t, b.provider, descriptorMaxBytes)
			data := testfile.PNG(be.size - 33) // PNG adds a 33-byte header
			// A wrong Content-Type, so only detection gives image/png.
			src := serve(t, "/download", "application/octet-stream", `attachment; filename="server-name.bin"`, data)
			out := structured[schema.StageResponse](t, f.call(t, StageName, map[string]any{
				"url": src + "/download", "toolSlug": "GMAIL_SEND_EMAIL", "filename": filename,
			}))
			if !out.Success || out.Name != filename || out.Mimetype != "image/png" || out.S3Key == "" {
				t.Fatalf("descriptor {name %q, mimetype %q, s3key %q}, want {%q, image/png, the key}", out.Name, out.Mimetype, out.S3Key, filename)
			}
			checkStored(t, b, schema.Descriptor{Name: out.Name, Mimetype: out.Mimetype, S3Key: out.S3Key}, data)
			checkFileID(t, b, out.FileID, out.S3Key)
			f.spoolEmpty(t)
		})
		t.Run(be.name+"/presign", func(t *testing.T) {
			b := be.open(t)
			f := newFixture(t, b.provider, descriptorMaxBytes)
			data := testfile.PNG(be.size - 33)
			sum := md5.Sum(data)
			// Not the type the bytes would be detected as: the given one is
			// the caller's to choose, and must be kept.
			const given = "application/octet-stream"
			res := f.call(t, PresignName, map[string]any{"toolkit_slug": "gmail", "tool_slug": "GMAIL_SEND_EMAIL",
				"filename": filename, "mimetype": given, "md5": hex.EncodeToString(sum[:]), "size": len(data)})
			if !b.presign {
				if e := errorOf(t, res); e.Slug != "UNSUPPORTED_BY_PROVIDER" || e.Status != http.StatusNotImplemented {
					t.Errorf("got %s %d (%s), want UNSUPPORTED_BY_PROVIDER 501 saying what to use instead", e.Slug, e.Status, e.Message)
				}
				return
			}
			out := structured[schema.PresignResponse](t, res)
			want := schema.Descriptor{Name: filename, Mimetype: given, S3Key: out.Key}
			if out.FileUploadable != want || out.Key == "" || out.Type != "new" {
				t.Fatalf("file_uploadable %+v key %q type %q, want %+v new", out.FileUploadable, out.Key, out.Type, want)
			}
			put(t, out.Method, out.NewPresignedURL, out.Headers, data)
			checkStored(t, b, out.FileUploadable, data)
			checkFileID(t, b, out.FileID, out.Key)
		})
	}
}

// put uploads body as a client of request_presigned_upload does: exactly
// the returned method, URL and headers.
func put(t *testing.T, method, url string, headers map[string]string, body []byte) {
	t.Helper()
	if resp, b := testhttp.Do(t, method, url, headers, body); resp.StatusCode/100 != 2 {
		t.Fatalf("upload answered %d: %s", resp.StatusCode, b)
	}
}

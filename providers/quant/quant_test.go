package quant

import (
	"bytes"
	"context"
	"encoding/base64"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/filestage/filestage/internal/testfile"
	"github.com/filestage/filestage/internal/testhttp"
	"github.com/filestage/filestage/providers"
	"github.com/filestage/filestage/providers/internal/fakeplatform"
	"github.com/filestage/filestage/providers/quant/quanttest"
)

func open(t *testing.T, env map[string]string) *Provider { return fakeplatform.Open(t, New, env) }

func request(data []byte) (providers.UploadRequest, providers.Body) {
	return fakeplatform.Upload(providers.UploadRequest{ToolkitSlug: "quant", ToolSlug: "QUANT_AI_CHAT", Filename: "diagram.png", Mimetype: "image/png"}, data)
}

func requests(f *quanttest.Server) (api, puts []quanttest.Request) {
	return fakeplatform.Split(f.Requests())
}

func TestOpen(t *testing.T) {
	tests := []struct {
		name     string
		env      map[string]string
		wantErr  string
		endpoint string
	}{
		{"no token", map[string]string{"QUANT_ORGANIZATION": "o"}, "QUANT_API_TOKEN is not set", ""},
		{"no organization", map[string]string{"QUANT_API_TOKEN": "t"}, "QUANT_ORGANIZATION is not set", ""},
		{"defaults", map[string]string{"QUANT_API_TOKEN": "t", "QUANT_ORGANIZATION": "acme"}, "", DefaultBaseURL + "/api/v3/organizations/acme/ai/files"},
		{"organization is escaped", map[string]string{"QUANT_API_TOKEN": "t", "QUANT_ORGANIZATION": "a/b c", "QUANT_BASE_URL": "http://127.0.0.1:9/"}, "", "http://127.0.0.1:9/api/v3/organizations/a%2Fb%20c/ai/files"},
		{"bad base", map[string]string{"QUANT_API_TOKEN": "t", "QUANT_ORGANIZATION": "o", "QUANT_BASE_URL": "dashboard.quantcdn.io"}, "QUANT_BASE_URL", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := fakeplatform.TryOpen(t, Open, tt.env, tt.wantErr)
			if p == nil {
				return
			}
			if got := p.(*Provider); got.endpoint != tt.endpoint || got.http == nil || got.directMax != 7_000_000 {
				t.Errorf("provider %+v", got)
			}
		})
	}
}

func TestStoreDirect(t *testing.T) {
	f := quanttest.New(t)
	p := open(t, f.Env())
	data := testfile.PNG(100_000)
	req, body := request(data)
	slot, err := providers.Store(context.Background(), p, req, body)
	if err != nil {
		t.Fatal(err)
	}
	if slot.Type != providers.SlotNew || slot.StorageBackend != "s3" || slot.FileID == "" || slot.ID != slot.FileID || slot.URL != "" {
		t.Errorf("slot %+v", slot)
	}
	// The key is the s3Uri's, not the fileId.
	if key, _ := f.FileKey(slot.FileID); slot.Key != key || !strings.HasPrefix(slot.Key, "ai-files/"+f.Org+"/"+slot.FileID+"/") {
		t.Errorf("key %q, want the S3 key %q of fileId %s", slot.Key, key, slot.FileID)
	}
	if got, ok := f.Object(slot.Key); !ok || !bytes.Equal(got, data) {
		t.Fatal("the bytes were not stored under the slot's key")
	}
	api, puts := requests(f)
	if len(api) != 1 || len(puts) != 0 {
		t.Fatalf("%d API calls and %d uploads, want 1 and 0", len(api), len(puts))
	}
	call := api[0]
	if call.Path != "/api/v3/organizations/"+f.Org+"/ai/files" || call.Header.Get("Authorization") != "Bearer "+f.APIKey || call.Header.Get("Content-Type") != "application/json" {
		t.Errorf("sent %s %v", call.Path, call.Header)
	}
	if call.Chunked {
		t.Error("the body was sent chunked, without a Content-Length")
	}
	if len(call.Body) != 4 || call.Body["filename"] != "diagram.png" || call.Body["contentType"] != "image/png" || call.Body["size"] != float64(len(data)) {
		t.Errorf("fields %v", call.Body)
	}
	if c, _ := call.Body["content"].(string); c != base64.StdEncoding.EncodeToString(data) {
		t.Error("content is not the standard base64 of the bytes")
	}
}

// TestDirectLimit: 7 MB (decimal) goes directly, a byte more presigned.
func TestDirectLimit(t *testing.T) {
	if testing.Short() {
		t.Skip("uploads 14 MB")
	}
	for _, tt := range []struct {
		size    int
		presign bool
	}{{DirectMax, false}, {DirectMax + 1, true}} {
		f := quanttest.New(t)
		p := open(t, f.Env())
		data := testfile.Random(tt.size)
		req, body := request(data)
		slot, err := providers.Store(context.Background(), p, req, body)
		if err != nil {
			t.Fatalf("%d bytes: %v", tt.size, err)
		}
		if got, ok := f.Object(slot.Key); !ok || !bytes.Equal(got, data) {
			t.Fatalf("%d bytes: not stored", tt.size)
		}
		api, puts := requests(f)
		if presigned := api[0].Body["requestUploadUrl"] == true; presigned != tt.presign || len(api) != 1 || len(puts) != btoi(tt.presign) {
			t.Errorf("%d bytes: %d API calls (presigned %v), %d uploads", tt.size, len(api), presigned, len(puts))
		}
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

func TestPresigned(t *testing.T) {
	f := quanttest.New(t)
	p := open(t, f.Env())
	p.directMax = 1000
	data := testfile.PNG(50_000)
	req, body := request(data)
	slot, err := providers.Store(context.Background(), p, req, body)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(slot.Key, "ai-files/"+f.Org+"/"+slot.ID+"/") || slot.FileID == "" || slot.ID != slot.FileID ||
		slot.Method != http.MethodPut || slot.Type != providers.SlotNew || slot.StorageBackend != "s3" {
		t.Errorf("slot %+v", slot)
	}
	if key, _ := f.FileKey(slot.FileID); slot.Key != key {
		t.Errorf("key %q, want the s3Key %q", slot.Key, key)
	}
	want := map[string]string{"Content-Type": "image/png", "Content-MD5": providers.ContentMD5(req.MD5)}
	if !maps.Equal(slot.Headers, want) {
		t.Errorf("headers %v, want %v", slot.Headers, want)
	}
	if d := time.Until(slot.ExpiresAt); d < quanttest.URLTTL-time.Minute || d > quanttest.URLTTL {
		t.Errorf("expires in %v, want expiresIn", d)
	}
	if got, ok := f.Object(slot.Key); !ok || !bytes.Equal(got, data) {
		t.Fatal("not stored under the s3Key")
	}
	api, puts := requests(f)
	if len(api) != 1 || len(puts) != 1 {
		t.Fatalf("%d API calls, %d uploads", len(api), len(puts))
	}
	if got := puts[0].Header.Get("Content-MD5"); got != want["Content-MD5"] {
		t.Errorf("uploaded with Content-MD5 %q, want %q", got, want["Content-MD5"])
	}
	wantBody := map[string]any{"requestUploadUrl": true, "filename": "diagram.png", "contentType": "image/png", "size": float64(len(data))}
	if !maps.Equal(api[0].Body, wantBody) {
		t.Errorf("body %v, want %v", api[0].Body, wantBody)
	}

	// Through the presign tool's path the size may be unknown.
	req.Size = -1
	if _, err := p.RequestUpload(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	api, _ = requests(f)
	if _, sent := api[1].Body["size"]; sent {
		t.Errorf("an unknown size was sent: %v", api[1].Body)
	}
}

// TestFaults: every failure gives a retry or a clear error, and never a
// slot for bytes the storage does not hold.
func TestFaults(t *testing.T) {
	s3Denied := `<?xml version="1.0"?><Error><Code>AccessDenied</Code><Message>Request has expired</Message><RequestId>R1</RequestId></Error>`
	tests := []struct {
		name    string
		presign bool // store through a presigned URL
		env     map[string]string
		script  func(f *quanttest.Server)
		// wantStatus is the *providers.Error status, 0 for success and -1
		// for an error of another kind.
		wantStatus int
		wantText   string
		apiCalls   int
	}{
		{name: "429 with Retry-After, then success", script: func(f *quanttest.Server) {
			f.FailNext(429, http.Header{"Retry-After": {"1"}}, `{"error":"slow down"}`)
		}, apiCalls: 2},
		{name: "500, then success", script: func(f *quanttest.Server) { f.FailNext(500, nil, `{"error":"Failed to upload file"}`) }, apiCalls: 2},
		{name: "connection reset, then success", script: func(f *quanttest.Server) { f.FailNext(quanttest.Reset, nil, "") }, apiCalls: 2},
		{name: "401", script: func(f *quanttest.Server) { f.FailNext(401, nil, "") }, wantStatus: 401, wantText: "QUANT_API_TOKEN", apiCalls: 1},
		{name: "wrong token", env: map[string]string{"QUANT_API_TOKEN": "quant_wrong"}, wantStatus: 403, wantText: "Access denied", apiCalls: 1},
		{name: "wrong organization", env: map[string]string{"QUANT_ORGANIZATION": "someone-else"}, wantStatus: 403, wantText: "QUANT_ORGANIZATION", apiCalls: 1},
		{name: "400", script: func(f *quanttest.Server) { f.FailNext(400, nil, `{"error":"Unsupported content type"}`) }, wantStatus: 400, wantText: "Unsupported content type", apiCalls: 1},
		{name: "malformed JSON", script: func(f *quanttest.Server) { f.FailNext(201, nil, `{"fileId":`) }, wantStatus: -1, wantText: "malformed JSON", apiCalls: 1},
		{name: "no s3Uri", script: func(f *quanttest.Server) { f.FailNext(201, nil, `{"fileId":"f1"}`) }, wantStatus: -1, wantText: "without an s3Uri", apiCalls: 1},
		{name: "s3Uri not s3", script: func(f *quanttest.Server) {
			f.FailNext(201, nil, `{"fileId":"f1","s3Uri":"https://quant-ai-files.s3.amazonaws.com/k"}`)
		}, wantStatus: -1, wantText: "not s3://<bucket>/<key>", apiCalls: 1},
		{name: "s3Uri without a key", script: func(f *quanttest.Server) {
			f.FailNext(201, nil, `{"fileId":"f1","s3Uri":"s3://quant-ai-files/"}`)
		}, wantStatus: -1, wantText: "not s3://<bucket>/<key>", apiCalls: 1},
		{name: "s3Uri without a bucket", script: func(f *quanttest.Server) {
			f.FailNext(201, nil, `{"fileId":"f1","s3Uri":"s3:///k"}`)
		}, wantStatus: -1, wantText: "not s3://<bucket>/<key>", apiCalls: 1},
		{name: "direct 413 falls back to a presigned upload", script: func(f *quanttest.Server) {
			f.FailNext(413, nil, `{"error":"File too large (use requestUploadUrl for large files)"}`)
		}, apiCalls: 2},
		{name: "413 both ways", script: func(f *quanttest.Server) {
			f.FailNext(413, nil, `{"error":"File too large"}`)
			f.FailNext(413, nil, `{"error":"File too large"}`)
		}, wantStatus: 413, wantText: "smaller file", apiCalls: 2},
		{name: "presign 500, then success", presign: true, script: func(f *quanttest.Server) { f.FailNext(500, nil, "") }, apiCalls: 2},
		{name: "presign malformed JSON", presign: true, script: func(f *quanttest.Server) { f.FailNext(201, nil, `{"fileId"`) }, wantStatus: -1, wantText: "malformed JSON", apiCalls: 1},
		{name: "presign without uploadUrl", presign: true, script: func(f *quanttest.Server) { f.FailNext(201, nil, `{"fileId":"x","s3Key":"k"}`) }, wantStatus: -1, wantText: "usable uploadUrl", apiCalls: 1},
		{name: "presign without s3Key", presign: true, script: func(f *quanttest.Server) {
			f.FailNext(201, nil, `{"fileId":"x","uploadUrl":"`+f.URL+`/quant-ai-files/k"}`)
		}, wantStatus: -1, wantText: "without an s3Key", apiCalls: 1},
		{name: "upload 403", presign: true, script: func(f *quanttest.Server) { f.FailNextUpload(403, nil, s3Denied) }, wantStatus: 502, wantText: "AccessDenied", apiCalls: 1},
		{name: "upload 503, then success", presign: true, script: func(f *quanttest.Server) { f.FailNextUpload(503, nil, "") }, apiCalls: 1},
		{name: "upload connection reset, then success", presign: true, script: func(f *quanttest.Server) { f.FailNextUpload(quanttest.Reset, nil, "") }, apiCalls: 1},
		{name: "upload connection reset every time", presign: true, script: func(f *quanttest.Server) {
			for range 5 {
				f.FailNextUpload(quanttest.Reset, nil, "")
			}
		}, wantStatus: -1, wantText: "uploading to S3", apiCalls: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := quanttest.New(t)
			env := f.Env()
			for k, v := range tt.env {
				env[k] = v
			}
			p := open(t, env)
			if tt.presign {
				p.directMax = 1000
			}
			if tt.script != nil {
				tt.script(f)
			}
			data := testfile.PNG(100_000)
			req, body := request(data)
			slot, err := providers.Store(context.Background(), p, req, body)
			api, _ := requests(f)
			if len(api) != tt.apiCalls {
				t.Errorf("%d API calls, want %d", len(api), tt.apiCalls)
			}
			if tt.wantStatus == 0 {
				if err != nil {
					t.Fatal(err)
				}
				if got, ok := f.Object(slot.Key); !ok || !bytes.Equal(got, data) {
					t.Fatal("success without the bytes stored")
				}
				// A retried direct upload sent the whole body every time.
				for i, r := range api {
					if c, ok := r.Body["content"].(string); ok && r.Size > 0 && c != base64.StdEncoding.EncodeToString(data) {
						t.Errorf("attempt %d sent other content", i)
					}
				}
				return
			}
			if err == nil || slot.Key != "" {
				t.Fatalf("error %v, slot %+v", err, slot)
			}
			if n := f.Objects(); n != 0 && tt.wantStatus != -1 {
				t.Errorf("%d objects stored", n)
			}
			if s := err.Error(); strings.Contains(s, f.APIKey) || strings.Contains(s, "quant_wrong") || strings.Contains(s, "X-Amz-Signature") {
				t.Errorf("the error shows a secret: %v", err)
			}
			switch pe := fakeplatform.Refused(t, err, Name, tt.wantStatus, tt.wantText); {
			case tt.wantStatus == 413 && pe.Slug != "FILE_TOO_LARGE":
				t.Errorf("slug %q", pe.Slug)
			case tt.wantStatus == 502 && pe.RequestID != "R1":
				t.Errorf("request id %q", pe.RequestID)
			}
		})
	}
}

// TestPresignedRefusesOtherBytes: the slot's Content-MD5 is not signed,
// but the bucket checks it, so other bytes of the signed size are refused
// and nothing is stored, whoever sends them.
func TestPresignedRefusesOtherBytes(t *testing.T) {
	data := testfile.Random(50_000)
	other := bytes.Clone(data)
	other[len(other)/2] ^= 1
	tests := []struct {
		name string
		put  func(t *testing.T, p *Provider, slot providers.Slot) error
	}{
		{"a client with the slot's headers", func(t *testing.T, _ *Provider, slot providers.Slot) error {
			resp, b := testhttp.Do(t, slot.Method, slot.URL, slot.Headers, other)
			if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(b), "<Code>BadDigest</Code>") {
				t.Errorf("%d %s, want 400 BadDigest", resp.StatusCode, b)
			}
			return nil
		}},
		{"Upload of bytes that changed after hashing", func(t *testing.T, p *Provider, slot providers.Slot) error {
			_, body := request(data)
			body.Data = bytes.NewReader(other)
			err := p.Upload(context.Background(), slot, body)
			if err == nil {
				t.Fatal("the changed bytes were uploaded")
			}
			return err
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := quanttest.New(t)
			p := open(t, f.Env())
			req, _ := request(data)
			slot, err := p.RequestUpload(context.Background(), req)
			if err != nil {
				t.Fatal(err)
			}
			if err := tt.put(t, p, slot); err != nil {
				fakeplatform.Refused(t, err, Name, http.StatusBadGateway, "BadDigest")
			}
			if _, ok := f.Object(slot.Key); ok || f.Objects() != 0 {
				t.Error("other bytes were stored")
			}
		})
	}
}

// TestUploadIsNotStoredWhenCut: a presigned upload cut halfway leaves
// nothing behind, and the next attempt stores the whole file.
func TestUploadIsNotStoredWhenCut(t *testing.T) {
	f := quanttest.New(t)
	p := open(t, f.Env())
	data := testfile.Random(300_000)
	req, body := request(data)
	slot, err := p.RequestUpload(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	c := fakeplatform.Client()
	c.Retries = 0
	p.http = c
	f.FailNextUpload(quanttest.Reset, nil, "")
	if err := p.Upload(context.Background(), slot, body); err == nil {
		t.Fatal("a cut upload succeeded")
	}
	if _, ok := f.Object(slot.Key); ok {
		t.Fatal("half an upload was stored")
	}
	if err := p.Upload(context.Background(), slot, body); err != nil {
		t.Fatal(err)
	}
	if got, _ := f.Object(slot.Key); !bytes.Equal(got, data) {
		t.Fatal("not stored")
	}
}

func TestObjectKey(t *testing.T) {
	tests := []struct {
		uri, key string
		ok       bool
	}{
		{"s3://quant-ai-files/ai-files/org/id/diagram.png", "ai-files/org/id/diagram.png", true},
		{"s3://b/k", "k", true},
		// Keys are taken as written: S3 URIs do not escape them.
		{"s3://b/a b/50%25 #1?.png", "a b/50%25 #1?.png", true},
		{"s3://b/", "", false},
		{"s3://b", "", false},
		{"s3:///k", "", false},
		{"S3://b/k", "k", true},
		{"s3:/b/k", "", false},
		{"https://b.s3.amazonaws.com/k", "", false},
		{"", "", false},
	}
	for _, tt := range tests {
		if key, ok := objectKey(tt.uri); key != tt.key || ok != tt.ok {
			t.Errorf("objectKey(%q) = %q, %v, want %q, %v", tt.uri, key, ok, tt.key, tt.ok)
		}
	}
}

// TestWriteDirect: the streamed body is the JSON it claims to be, at the
// length announced.
func TestWriteDirect(t *testing.T) {
	for _, n := range []int{0, 1, 2, 3, 4, 100_000} {
		data := testfile.Random(n)
		var buf bytes.Buffer
		head, tail := []byte(`{"content":"`), []byte(`","filename":"a"}`)
		if err := writeDirect(&buf, head, io.NopCloser(bytes.NewReader(data)), tail); err != nil {
			t.Fatal(err)
		}
		if want := len(head) + len(tail) + base64.StdEncoding.EncodedLen(n); buf.Len() != want {
			t.Errorf("%d bytes: body of %d, want %d", n, buf.Len(), want)
		}
		if !strings.Contains(buf.String(), `"`+base64.StdEncoding.EncodeToString(data)+`"`) {
			t.Errorf("%d bytes: content is not their base64", n)
		}
	}
}

// TestDirectUploadStreams: sending a file directly allocates far less than
// the file, let alone its base64: the body is streamed, not built.
func TestDirectUploadStreams(t *testing.T) {
	sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusCreated)
		io.WriteString(w, `{"fileId":"f","s3Uri":"s3://b/k"}`)
	}))
	defer sink.Close()
	p := open(t, map[string]string{"QUANT_BASE_URL": sink.URL, "QUANT_API_TOKEN": "t", "QUANT_ORGANIZATION": "o"})
	const size = DirectMax
	body := providers.Body{Data: zeros{}, Size: size}
	req := providers.UploadRequest{Filename: "a.bin", Mimetype: "application/octet-stream", Size: size}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	if _, err := p.Store(context.Background(), req, body); err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&after)
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > size/4 {
		t.Errorf("storing %d bytes allocated %d", size, alloc)
	} else {
		t.Logf("storing %d bytes allocated %d", size, alloc)
	}
}

// zeros reads as endless zero bytes without holding any.
type zeros struct{}

func (zeros) ReadAt(b []byte, _ int64) (int, error) {
	clear(b)
	return len(b), nil
}

package alloy

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"maps"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/filestage/filestage/internal/testfile"
	"github.com/filestage/filestage/providers"
	"github.com/filestage/filestage/providers/alloy/alloytest"
	"github.com/filestage/filestage/providers/internal/fakeplatform"
)

func open(t *testing.T, env map[string]string) *Provider { return fakeplatform.Open(t, New, env) }

func request(data []byte) (providers.UploadRequest, providers.Body) {
	return fakeplatform.Upload(providers.UploadRequest{ToolkitSlug: "slack", ToolSlug: "SLACK_UPLOAD_FILE", Filename: "document.pdf", Mimetype: "application/pdf"}, data)
}

func requests(f *alloytest.Server) (api, puts []alloytest.Request) {
	return fakeplatform.Split(f.Requests())
}

func TestOpen(t *testing.T) {
	tests := []struct {
		name          string
		env           map[string]string
		wantErr       string
		base, version string
	}{
		{"no key", map[string]string{}, "ALLOY_API_KEY is not set", "", ""},
		{"defaults", map[string]string{"ALLOY_API_KEY": "k"}, "", DefaultBaseURL, "2025-09"},
		{"own base and version", map[string]string{"ALLOY_API_KEY": "k", "ALLOY_BASE_URL": "http://127.0.0.1:9/", "ALLOY_API_VERSION": "2026-01"}, "", "http://127.0.0.1:9", "2026-01"},
		{"bad base", map[string]string{"ALLOY_API_KEY": "k", "ALLOY_BASE_URL": "ftp://x"}, "ALLOY_BASE_URL", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := fakeplatform.TryOpen(t, Open, tt.env, tt.wantErr)
			if p == nil {
				return
			}
			if got := p.(*Provider); got.base != tt.base || got.version != tt.version || got.http == nil {
				t.Errorf("base %q version %q", got.base, got.version)
			}
		})
	}
}

func TestStoreNewThenExisting(t *testing.T) {
	f := alloytest.New(t)
	p := open(t, f.Env())
	data := testfile.Random(100_000)
	req, body := request(data)
	before := time.Now()
	slot, err := providers.Store(context.Background(), p, req, body)
	if err != nil {
		t.Fatal(err)
	}
	if slot.Type != providers.SlotNew || slot.StorageBackend != "s3" || slot.Method != http.MethodPut || !strings.HasSuffix(slot.Key, "_document.pdf") {
		t.Errorf("slot %+v", slot)
	}
	if got, ok := f.Object(slot.Key); !ok || !bytes.Equal(got, data) {
		t.Fatal("the bytes were not stored under the slot's key")
	}
	if lo, hi := before.Add(alloytest.URLTTL-time.Second), time.Now().Add(alloytest.URLTTL+time.Second); slot.ExpiresAt.Before(lo) || slot.ExpiresAt.After(hi) {
		t.Errorf("expires %v, want the URL's own X-Amz-Expires", slot.ExpiresAt)
	}

	api, puts := requests(f)
	if len(api) != 1 || len(puts) != 1 {
		t.Fatalf("%d API calls and %d uploads, want 1 and 1", len(api), len(puts))
	}
	call := api[0]
	if call.Method != http.MethodPost || call.Path != "/connectors/files/upload/request" {
		t.Errorf("called %s %s", call.Method, call.Path)
	}
	if call.Header.Get("Authorization") != "Bearer "+f.APIKey || call.Header.Get("x-api-version") != "2025-09" || call.Header.Get("Content-Type") != "application/json" {
		t.Errorf("headers %v", call.Header)
	}
	sum := md5.Sum(data)
	want := map[string]any{"filename": "document.pdf", "mimeType": "application/pdf", "md5": hex.EncodeToString(sum[:])}
	if !maps.Equal(call.Body, want) {
		t.Errorf("body %v, want %v", call.Body, want)
	}
	if h := puts[0].Header; h.Get("Content-MD5") != base64.StdEncoding.EncodeToString(sum[:]) || h.Get("Content-Type") != "application/pdf" {
		t.Errorf("upload headers %v", h)
	}

	// The same bytes again: existing, no second upload.
	again, err := providers.Store(context.Background(), p, req, body)
	if err != nil {
		t.Fatal(err)
	}
	if again.Type != providers.SlotExisting || again.Key != slot.Key {
		t.Errorf("second slot %+v, want existing %s", again, slot.Key)
	}
	if _, puts := requests(f); len(puts) != 1 {
		t.Errorf("%d uploads, want 1", len(puts))
	}
}

func TestSlotFrom(t *testing.T) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	req := providers.UploadRequest{Mimetype: "image/png", MD5: md5.Sum([]byte("x"))}
	mine := base64.StdEncoding.EncodeToString(req.MD5[:])
	answer := func(typ, key, u, sum string) (a uploadAnswer) {
		a.PresignedURL.Type, a.PresignedURL.S3Key, a.PresignedURL.PresignedURL, a.PresignedURL.MD5 = typ, key, u, sum
		return a
	}
	const plain = "https://alloy-user-files.s3.us-east-1.amazonaws.com/k"
	tests := []struct {
		name    string
		answer  uploadAnswer
		wantErr string
		check   func(t *testing.T, s providers.Slot)
	}{
		{"the documented example", answer("new", "k", plain, mine), "", func(t *testing.T, s providers.Slot) {
			if s.Key != "k" || s.URL != plain || !s.ExpiresAt.Equal(now.Add(DefaultURLTTL)) {
				t.Errorf("slot %+v", s)
			}
			if s.Headers["Content-MD5"] != mine || s.Headers["Content-Type"] != "image/png" || len(s.Headers) != 2 {
				t.Errorf("headers %v", s.Headers)
			}
		}},
		{"expiry from SigV4", answer("new", "k", plain+"?X-Amz-Date=20260501T120000Z&X-Amz-Expires=60", ""), "", func(t *testing.T, s providers.Slot) {
			if !s.ExpiresAt.Equal(now.Add(time.Minute)) {
				t.Errorf("expires %v", s.ExpiresAt)
			}
		}},
		{"existing without URL", answer("existing", "k", "", mine), "", func(t *testing.T, s providers.Slot) {
			if s.Type != providers.SlotExisting {
				t.Errorf("type %s", s.Type)
			}
		}},
		{"other MD5", answer("new", "k", plain, base64.StdEncoding.EncodeToString(make([]byte, 16))), "not for this file's", nil},
		{"unknown type", answer("update", "k", plain, mine), `unknown type "update"`, nil},
		{"no key", answer("new", "", plain, mine), "without an s3Key", nil},
		{"no URL", answer("new", "k", "", mine), "without a usable presigned URL", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := slotFrom(tt.answer, req, now)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, s)
		})
	}
}

// TestFaults: every failure gives a retry or a clear error, and never a
// slot for bytes the storage does not hold.
func TestFaults(t *testing.T) {
	tests := []struct {
		name   string
		script func(f *alloytest.Server)
		// wantStatus is the *providers.Error status, 0 for success and -1
		// for an error of another kind.
		wantStatus int
		wantText   string
		apiCalls   int
	}{
		{"429 with Retry-After, then success", func(f *alloytest.Server) { f.FailNext(429, http.Header{"Retry-After": {"1"}}, "") }, 0, "", 2},
		{"500, then success", func(f *alloytest.Server) { f.FailNext(500, nil, "") }, 0, "", 2},
		{"API connection reset, then success", func(f *alloytest.Server) { f.FailNext(alloytest.Reset, nil, "") }, 0, "", 2},
		{"401 without a body", func(f *alloytest.Server) { f.FailNext(401, nil, "") }, 401, "ALLOY_API_KEY", 1},
		{"400 without a body", func(f *alloytest.Server) { f.FailNext(400, nil, "") }, 400, "MD5", 1},
		{"400 with a message", func(f *alloytest.Server) { f.FailNext(400, nil, `{"message":"filename too long"}`) }, 400, "filename too long", 1},
		{"503 until the retries run out", func(f *alloytest.Server) {
			for range 5 {
				f.FailNext(503, nil, "")
			}
		}, 503, "Try again", 5},
		{"malformed JSON", func(f *alloytest.Server) { f.FailNext(200, nil, `{"presignedUrl":`) }, -1, "malformed JSON", 1},
		{"upload 403", func(f *alloytest.Server) {
			f.FailNextUpload(403, nil, `<?xml version="1.0"?><Error><Code>AccessDenied</Code><Message>Request has expired</Message><RequestId>R1</RequestId></Error>`)
		}, 502, "AccessDenied", 1},
		{"upload 500, then success", func(f *alloytest.Server) { f.FailNextUpload(500, nil, "") }, 0, "", 1},
		{"upload connection reset, then success", func(f *alloytest.Server) { f.FailNextUpload(alloytest.Reset, nil, "") }, 0, "", 1},
		{"upload connection reset every time", func(f *alloytest.Server) {
			for range 5 {
				f.FailNextUpload(alloytest.Reset, nil, "")
			}
		}, -1, "uploading to S3", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := alloytest.New(t)
			p := open(t, f.Env())
			tt.script(f)
			data := testfile.Random(200_000)
			req, body := request(data)
			slot, err := providers.Store(context.Background(), p, req, body)
			if api, _ := requests(f); len(api) != tt.apiCalls {
				t.Errorf("%d API calls, want %d", len(api), tt.apiCalls)
			}
			if tt.wantStatus == 0 {
				if err != nil {
					t.Fatal(err)
				}
				if got, ok := f.Object(slot.Key); !ok || !bytes.Equal(got, data) {
					t.Fatal("success without the bytes stored")
				}
				return
			}
			if err == nil || slot.Key != "" {
				t.Fatalf("error %v, slot %+v", err, slot)
			}
			for _, r := range uploadedKeys(f) {
				if _, ok := f.Object(r); ok {
					t.Errorf("%s was stored", r)
				}
			}
			if s := err.Error(); strings.Contains(s, f.APIKey) || strings.Contains(s, "X-Amz-Signature") {
				t.Errorf("the error shows a secret: %v", err)
			}
			if pe := fakeplatform.Refused(t, err, Name, tt.wantStatus, tt.wantText); tt.wantStatus == 502 && pe.RequestID != "R1" {
				t.Errorf("request id %q", pe.RequestID)
			}
		})
	}
}

// uploadedKeys lists the keys uploads were sent to.
func uploadedKeys(f *alloytest.Server) []string {
	var keys []string
	for _, r := range f.Requests() {
		if r.Method == http.MethodPut {
			keys = append(keys, strings.TrimPrefix(r.Path, "/alloy-user-files/"))
		}
	}
	return keys
}

func TestWrongKey(t *testing.T) {
	f := alloytest.New(t)
	env := f.Env()
	env["ALLOY_API_KEY"] = "not-the-key"
	p := open(t, env)
	req, _ := request([]byte("x"))
	_, err := p.RequestUpload(context.Background(), req)
	var pe *providers.Error
	if !errors.As(err, &pe) || pe.Status != 401 || !strings.Contains(pe.Fix, "ALLOY_API_KEY") || strings.Contains(err.Error(), "not-the-key") {
		t.Fatalf("error %v", err)
	}
}

func TestBytesThatDoNotMatchTheirMD5(t *testing.T) {
	f := alloytest.New(t)
	p := open(t, f.Env())
	req, _ := request([]byte("announced"))
	other := []byte("sent instead")
	slot, err := p.RequestUpload(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	err = p.Upload(context.Background(), slot, providers.Body{Data: bytes.NewReader(other), Size: int64(len(other)), MD5: req.MD5})
	var pe *providers.Error
	if !errors.As(err, &pe) || !strings.Contains(pe.Message, "BadDigest") {
		t.Fatalf("error %v, want BadDigest", err)
	}
	if _, ok := f.Object(slot.Key); ok {
		t.Error("stored")
	}
}

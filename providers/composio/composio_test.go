package composio

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"maps"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/filestage/filestage/internal/testfile"
	"github.com/filestage/filestage/providers"
	"github.com/filestage/filestage/providers/composio/composiotest"
	"github.com/filestage/filestage/providers/internal/fakeplatform"
)

func open(t *testing.T, env map[string]string) *Provider { return fakeplatform.Open(t, New, env) }

func request(data []byte) (providers.UploadRequest, providers.Body) {
	return fakeplatform.Upload(providers.UploadRequest{ToolkitSlug: "gmail", ToolSlug: "GMAIL_SEND_EMAIL", Filename: "report.pdf", Mimetype: "application/pdf"}, data)
}

// requests splits what the fake received into API calls and uploads.
func requests(f *composiotest.Server) (api, puts []composiotest.Request) {
	return fakeplatform.Split(f.Requests())
}

func TestOpen(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		wantErr string
		base    string
	}{
		{"no key", map[string]string{}, "COMPOSIO_API_KEY is not set", ""},
		{"default base", map[string]string{"COMPOSIO_API_KEY": "k"}, "", DefaultBaseURL},
		{"own base", map[string]string{"COMPOSIO_API_KEY": "k", "COMPOSIO_BASE_URL": "http://127.0.0.1:9/x/"}, "", "http://127.0.0.1:9/x"},
		{"relative base", map[string]string{"COMPOSIO_API_KEY": "k", "COMPOSIO_BASE_URL": "backend.composio.dev"}, "COMPOSIO_BASE_URL", ""},
		{"base with credentials in the query", map[string]string{"COMPOSIO_API_KEY": "k", "COMPOSIO_BASE_URL": "https://h/?token=sekrit"}, "COMPOSIO_BASE_URL", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := fakeplatform.TryOpen(t, Open, tt.env, tt.wantErr)
			if p == nil {
				return
			}
			if got := p.(*Provider); got.base != tt.base || got.http == nil {
				t.Errorf("base %q, client %v", got.base, got.http)
			}
		})
	}
}

func TestStoreNew(t *testing.T) {
	f := composiotest.New(t)
	p := open(t, f.Env())
	data := testfile.Random(100_000)
	req, body := request(data)
	before := time.Now()
	slot, err := providers.Store(context.Background(), p, req, body)
	if err != nil {
		t.Fatal(err)
	}
	if slot.Type != providers.SlotNew || slot.StorageBackend != "s3" || slot.Method != http.MethodPut || !strings.HasPrefix(slot.ID, "req_file_") {
		t.Errorf("slot %+v", slot)
	}
	if got, ok := f.Object(slot.Key); !ok || !bytes.Equal(got, data) {
		t.Fatal("the bytes were not stored under the slot's key")
	}
	// The fake signs with X-Amz-Date now and X-Amz-Expires 3600.
	if lo, hi := before.Add(time.Hour-time.Second), time.Now().Add(time.Hour+time.Second); slot.ExpiresAt.Before(lo) || slot.ExpiresAt.After(hi) {
		t.Errorf("expires %v, want about an hour from now", slot.ExpiresAt)
	}

	api, puts := requests(f)
	if len(api) != 1 || len(puts) != 1 {
		t.Fatalf("%d API calls and %d uploads, want 1 and 1", len(api), len(puts))
	}
	call := api[0]
	if call.Method != http.MethodPost || call.Path != "/api/v3/files/upload/request" {
		t.Errorf("called %s %s", call.Method, call.Path)
	}
	if call.Header.Get("x-api-key") != f.APIKey || call.Header.Get("Content-Type") != "application/json" {
		t.Errorf("headers %v", call.Header)
	}
	sum := md5.Sum(data)
	want := map[string]any{"toolkit_slug": "gmail", "tool_slug": "GMAIL_SEND_EMAIL", "filename": "report.pdf", "mimetype": "application/pdf", "md5": hex.EncodeToString(sum[:])}
	if !maps.Equal(call.Body, want) {
		t.Errorf("body %v, want %v", call.Body, want)
	}
	put := puts[0]
	if put.Header.Get("Content-MD5") != providers.ContentMD5(sum) || put.Header.Get("Content-Type") != "application/pdf" || put.Header.Get("x-ms-blob-type") != "" {
		t.Errorf("upload headers %v", put.Header)
	}
	if put.Size != int64(len(data)) {
		t.Errorf("uploaded %d bytes, want %d", put.Size, len(data))
	}
}

func TestExistingAndUpdate(t *testing.T) {
	f := composiotest.New(t)
	p := open(t, f.Env())
	first := testfile.Random(5000)
	req, body := request(first)
	s1, err := providers.Store(context.Background(), p, req, body)
	if err != nil {
		t.Fatal(err)
	}

	// The same bytes again, under another name: no upload.
	req.Filename = "copy.pdf"
	s2, err := providers.Store(context.Background(), p, req, body)
	if err != nil {
		t.Fatal(err)
	}
	if s2.Type != providers.SlotExisting || s2.Key != s1.Key {
		t.Errorf("second slot %+v, want existing under %s", s2, s1.Key)
	}
	if _, puts := requests(f); len(puts) != 1 {
		t.Errorf("%d uploads, want 1: existing bytes were uploaded again", len(puts))
	}

	// Other bytes under the first name replace the object.
	second := testfile.Random(6000)
	req, body = request(second)
	s3, err := providers.Store(context.Background(), p, req, body)
	if err != nil {
		t.Fatal(err)
	}
	if s3.Type != providers.SlotUpdate || s3.Key != s1.Key {
		t.Errorf("third slot %+v, want update of %s", s3, s1.Key)
	}
	if got, _ := f.Object(s1.Key); !bytes.Equal(got, second) {
		t.Error("the update did not replace the object")
	}
}

func TestAzure(t *testing.T) {
	f := composiotest.New(t)
	f.SetStorageBackend(composiotest.Azure)
	p := open(t, f.Env())
	data := testfile.Random(3000)
	req, body := request(data)
	slot, err := p.RequestUpload(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if slot.StorageBackend != "azure_blob_storage" || slot.Headers["x-ms-blob-type"] != "BlockBlob" {
		t.Fatalf("slot %+v", slot)
	}
	if d := time.Until(slot.ExpiresAt); d < 59*time.Minute || d > 61*time.Minute {
		t.Errorf("expires in %v, want the SAS's hour", d)
	}
	if err := p.Upload(context.Background(), slot, body); err != nil {
		t.Fatal(err)
	}
	if got, ok := f.Object(slot.Key); !ok || !bytes.Equal(got, data) {
		t.Fatal("not stored")
	}
	// Without the blob type Azure refuses the upload.
	delete(slot.Headers, "x-ms-blob-type")
	other := testfile.Random(10)
	req, body = request(other)
	slot2, err := p.RequestUpload(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	delete(slot2.Headers, "x-ms-blob-type")
	var pe *providers.Error
	if err := p.Upload(context.Background(), slot2, body); !errors.As(err, &pe) || !strings.Contains(pe.Message, "MissingRequiredHeader") {
		t.Errorf("error %v, want the storage's MissingRequiredHeader", err)
	}
}

// TestSlotFrom covers answer shapes the fake does not produce.
func TestSlotFrom(t *testing.T) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	req := providers.UploadRequest{Mimetype: "image/png", MD5: md5.Sum([]byte("x"))}
	const (
		s3URL    = "https://bucket.s3.amazonaws.com/k?X-Amz-Date=20260501T115000Z&X-Amz-Expires=900&X-Amz-Signature=s"
		plainURL = "https://storage.composio.dev/k"
		sasURL   = "https://acct.blob.core.windows.net/c/k?se=2026-05-01T13%3A30%3A00Z&sig=s"
	)
	tests := []struct {
		name    string
		answer  uploadAnswer
		wantErr string
		check   func(t *testing.T, s providers.Slot)
	}{
		{"update URL wins", uploadAnswer{Key: "k", Type: "update", UpdatePresignedURL: s3URL, NewPresignedURL: plainURL}, "", func(t *testing.T, s providers.Slot) {
			if s.URL != s3URL || s.Type != providers.SlotUpdate {
				t.Errorf("slot %+v", s)
			}
		}},
		{"update falls back to new_presigned_url", uploadAnswer{Key: "k", Type: "update", NewPresignedURL: plainURL, LegacyPresignedURL: s3URL}, "", func(t *testing.T, s providers.Slot) {
			if s.URL != plainURL {
				t.Errorf("URL %s", s.URL)
			}
		}},
		{"update falls back to newPresignedUrl", uploadAnswer{Key: "k", Type: "update", LegacyPresignedURL: plainURL}, "", func(t *testing.T, s providers.Slot) {
			if s.URL != plainURL {
				t.Errorf("URL %s", s.URL)
			}
		}},
		{"no type is new", uploadAnswer{Key: "k", NewPresignedURL: plainURL}, "", func(t *testing.T, s providers.Slot) {
			if s.Type != providers.SlotNew {
				t.Errorf("type %s", s.Type)
			}
		}},
		{"existing needs no URL", uploadAnswer{Key: "k", Type: "existing"}, "", func(t *testing.T, s providers.Slot) {
			if s.Type != providers.SlotExisting {
				t.Errorf("type %s", s.Type)
			}
		}},
		{"expiry from SigV4", uploadAnswer{Key: "k", Type: "new", NewPresignedURL: s3URL}, "", func(t *testing.T, s providers.Slot) {
			if want := time.Date(2026, 5, 1, 12, 5, 0, 0, time.UTC); !s.ExpiresAt.Equal(want) {
				t.Errorf("expires %v, want %v", s.ExpiresAt, want)
			}
		}},
		{"expiry from a SAS", uploadAnswer{Key: "k", Type: "new", NewPresignedURL: sasURL, Metadata: backend(azureBackend)}, "", func(t *testing.T, s providers.Slot) {
			if want := time.Date(2026, 5, 1, 13, 30, 0, 0, time.UTC); !s.ExpiresAt.Equal(want) {
				t.Errorf("expires %v, want %v", s.ExpiresAt, want)
			}
			if s.Headers["x-ms-blob-type"] != "BlockBlob" || s.Headers["Content-MD5"] != providers.ContentMD5(req.MD5) || s.Headers["Content-Type"] != "image/png" {
				t.Errorf("headers %v", s.Headers)
			}
		}},
		{"expiry assumed an hour", uploadAnswer{Key: "k", Type: "new", NewPresignedURL: plainURL}, "", func(t *testing.T, s providers.Slot) {
			if !s.ExpiresAt.Equal(now.Add(time.Hour)) {
				t.Errorf("expires %v", s.ExpiresAt)
			}
		}},
		{"unknown type", uploadAnswer{Key: "k", Type: "pending", NewPresignedURL: plainURL}, `unknown type "pending"`, nil},
		{"new without URL", uploadAnswer{Key: "k", Type: "new"}, "without a usable presigned URL", nil},
		{"relative URL", uploadAnswer{Key: "k", Type: "new", NewPresignedURL: "/k?X-Amz-Signature=secret"}, "without a usable presigned URL", nil},
		{"no key", uploadAnswer{Type: "new", NewPresignedURL: plainURL}, "without a key", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := slotFrom(tt.answer, req, now)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || strings.Contains(err.Error(), "secret") {
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

func backend(b string) (m struct {
	StorageBackend string `json:"storage_backend"`
}) {
	m.StorageBackend = b
	return m
}

// TestFaults: every failure gives a retry or a clear error, and never a
// slot for bytes the storage does not hold.
func TestFaults(t *testing.T) {
	envelope := func(status int, slug string) string {
		return `{"error":{"message":"scripted","code":` + strconv.Itoa(status) + `,"slug":"` + slug + `","status":` + strconv.Itoa(status) +
			`,"request_id":"req_42","suggested_fix":"do the thing","errors":["field: bad"]}}`
	}
	tests := []struct {
		name   string
		script func(f *composiotest.Server)
		// wantStatus is the *providers.Error status, 0 for success and -1
		// for an error of another kind.
		wantStatus int
		wantText   string
		apiCalls   int
	}{
		{"429 with Retry-After, then success", func(f *composiotest.Server) {
			f.FailNext(429, http.Header{"Retry-After": {"1"}}, envelope(429, "RATE_LIMITED"))
		}, 0, "", 2},
		{"500, then success", func(f *composiotest.Server) { f.FailNext(500, nil, envelope(500, "INTERNAL")) }, 0, "", 2},
		{"API connection reset, then success", func(f *composiotest.Server) { f.FailNext(composiotest.Reset, nil, "") }, 0, "", 2},
		{"429 until the retries run out", func(f *composiotest.Server) {
			for range 5 {
				f.FailNext(429, nil, envelope(429, "RATE_LIMITED"))
			}
		}, 429, "RATE_LIMITED", 5},
		{"401", func(f *composiotest.Server) { f.FailNext(401, nil, envelope(401, "UNAUTHORIZED")) }, 401, "UNAUTHORIZED", 1},
		{"400 with errors", func(f *composiotest.Server) { f.FailNext(400, nil, envelope(400, "BAD_REQUEST")) }, 400, "BAD_REQUEST", 1},
		{"403", func(f *composiotest.Server) { f.FailNext(403, nil, envelope(403, "FORBIDDEN")) }, 403, "FORBIDDEN", 1},
		{"404", func(f *composiotest.Server) { f.FailNext(404, nil, envelope(404, "NOT_FOUND")) }, 404, "NOT_FOUND", 1},
		{"410", func(f *composiotest.Server) { f.FailNext(410, nil, envelope(410, "GONE")) }, 410, "GONE", 1},
		{"501 is not retried", func(f *composiotest.Server) { f.FailNext(501, nil, envelope(501, "NOT_IMPLEMENTED")) }, 501, "NOT_IMPLEMENTED", 1},
		{"500 without an envelope", func(f *composiotest.Server) {
			for range 5 {
				f.FailNext(500, nil, "<html>oops</html>")
			}
		}, 500, "", 5},
		{"malformed JSON", func(f *composiotest.Server) { f.FailNext(200, nil, `{"id":"x","key":`) }, -1, "malformed JSON", 1},
		{"an answer without a URL", func(f *composiotest.Server) { f.FailNext(200, nil, `{"id":"x","key":"k","type":"new"}`) }, -1, "without a usable presigned URL", 1},
		{"upload 403", func(f *composiotest.Server) {
			f.FailNextUpload(403, nil, `<?xml version="1.0"?><Error><Code>AccessDenied</Code><Message>Request has expired</Message><RequestId>R1</RequestId></Error>`)
		}, 502, "AccessDenied", 1},
		{"upload 500, then success", func(f *composiotest.Server) { f.FailNextUpload(500, nil, "") }, 0, "", 1},
		{"upload connection reset, then success", func(f *composiotest.Server) { f.FailNextUpload(composiotest.Reset, nil, "") }, 0, "", 1},
		{"upload connection reset every time", func(f *composiotest.Server) {
			for range 5 {
				f.FailNextUpload(composiotest.Reset, nil, "")
			}
		}, -1, "uploading to S3", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := composiotest.New(t)
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
			if err == nil {
				t.Fatalf("no error; slot %+v", slot)
			}
			if slot.Key != "" || slot.URL != "" {
				t.Errorf("a slot came with the error: %+v", slot)
			}
			if _, stored := f.Object("projects/prj_fake/requests/gmail/GMAIL_SEND_EMAIL/report.pdf"); stored {
				t.Error("something was stored")
			}
			if s := err.Error(); strings.Contains(s, f.APIKey) || strings.Contains(s, "X-Amz-Signature") {
				t.Errorf("the error shows a secret: %v", err)
			}
			// Composio's wantText is the slug or, for the storage, the code;
			// they are checked below.
			text := ""
			if tt.wantStatus == -1 {
				text = tt.wantText
			}
			switch pe := fakeplatform.Refused(t, err, Name, tt.wantStatus, text); {
			case pe == nil:
			case tt.wantStatus < 500 && (pe.Slug != tt.wantText || pe.RequestID != "req_42" || pe.Fix != "do the thing"):
				t.Errorf("error %+v lost the envelope", pe)
			case tt.wantStatus == 400 && (len(pe.Errors) != 1 || pe.Errors[0] != "field: bad"):
				t.Errorf("errors %v", pe.Errors)
			case tt.wantStatus == 502 && (!strings.Contains(pe.Message, tt.wantText) || pe.RequestID != "R1"):
				t.Errorf("upload error %+v", pe)
			}
		})
	}
}

// TestWrongKey goes through the fake's own auth rather than a script.
func TestWrongKey(t *testing.T) {
	f := composiotest.New(t)
	env := f.Env()
	env["COMPOSIO_API_KEY"] = "ak_wrong_key"
	p := open(t, env)
	req, body := request([]byte("hello"))
	_, err := providers.Store(context.Background(), p, req, body)
	var pe *providers.Error
	if !errors.As(err, &pe) || pe.Status != 401 || pe.Slug == "" || pe.RequestID == "" || strings.Contains(err.Error(), "ak_wrong_key") {
		t.Fatalf("error %v", err)
	}
}

// TestBytesThatDoNotMatchTheirMD5 are refused by the storage, and no slot
// is returned for them.
func TestBytesThatDoNotMatchTheirMD5(t *testing.T) {
	f := composiotest.New(t)
	p := open(t, f.Env())
	req, _ := request([]byte("announced"))
	other := []byte("sent instead")
	body := providers.Body{Data: bytes.NewReader(other), Size: int64(len(other)), MD5: req.MD5}
	slot, err := providers.Store(context.Background(), p, req, body)
	var pe *providers.Error
	if !errors.As(err, &pe) || !strings.Contains(pe.Message, "BadDigest") {
		t.Fatalf("error %v, want BadDigest", err)
	}
	if _, ok := f.Object("projects/prj_fake/requests/gmail/GMAIL_SEND_EMAIL/report.pdf"); ok || slot.Key != "" {
		t.Error("stored")
	}
}

// TestCancelled: a cancelled upload is reported as such, so the tool says
// the call was cancelled rather than that storage failed.
func TestCancelled(t *testing.T) {
	f := composiotest.New(t)
	p := open(t, f.Env())
	req, body := request([]byte("hello"))
	slot, err := p.RequestUpload(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := p.Upload(ctx, slot, body); !errors.Is(err, context.Canceled) {
		t.Errorf("error %v, want context.Canceled", err)
	}
	if _, err := p.RequestUpload(ctx, req); !errors.Is(err, context.Canceled) {
		t.Errorf("error %v, want context.Canceled", err)
	}
}

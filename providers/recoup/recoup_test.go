package recoup

import (
	"bytes"
	"context"
	"crypto/md5"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/filestage/filestage/internal/testfile"
	"github.com/filestage/filestage/providers"
	"github.com/filestage/filestage/providers/internal/fakeplatform"
	"github.com/filestage/filestage/providers/recoup/recouptest"
)

func open(t *testing.T, env map[string]string) *Provider { return fakeplatform.Open(t, New, env) }

// source serves data at /images/cover.png, counting the fetches.
func source(t *testing.T, data []byte) (string, *atomic.Int32) {
	t.Helper()
	var fetches atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fetches.Add(1)
		if r.URL.Path != "/images/cover.png" {
			http.NotFound(w, r)
			return
		}
		w.Write(data)
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/images/cover.png", &fetches
}

func TestOpen(t *testing.T) {
	fakeplatform.TryOpen(t, Open, map[string]string{}, "RECOUP_API_KEY is not set")
	if _, err := Open(context.Background(), providers.Settings{}); err == nil || !strings.Contains(err.Error(), "RECOUP_API_KEY") {
		t.Errorf("without Getenv: error %v", err)
	}
	env := map[string]string{"RECOUP_API_KEY": "k", "RECOUP_BASE_URL": "api.recoupable.dev"}
	fakeplatform.TryOpen(t, Open, env, "RECOUP_BASE_URL")
	delete(env, "RECOUP_BASE_URL")
	if p := fakeplatform.TryOpen(t, Open, env, "").(*Provider); p.base != DefaultBaseURL || p.http == nil {
		t.Errorf("provider %+v", p)
	}
}

func TestStageURL(t *testing.T) {
	f := recouptest.New(t)
	p := open(t, f.Env())
	data := testfile.PNG(50_000)
	src, _ := source(t, data)
	d, err := p.StageURL(context.Background(), providers.StageURLRequest{URL: src, ToolkitSlug: "linkedin", ToolSlug: "LINKEDIN_CREATE_LINKED_IN_POST"})
	if err != nil {
		t.Fatal(err)
	}
	if d.Name != "cover.png" || d.Mimetype != "image/png" || !strings.HasPrefix(d.S3Key, "connector-files/linkedin/LINKEDIN_CREATE_LINKED_IN_POST/") {
		t.Errorf("descriptor %+v", d)
	}
	if got, ok := f.Object(d.S3Key); !ok || !bytes.Equal(got, data) {
		t.Fatal("the descriptor names bytes the fake does not hold")
	}
	reqs := f.Requests()
	if len(reqs) != 1 {
		t.Fatalf("%d requests, want 1", len(reqs))
	}
	r := reqs[0]
	if r.Method != http.MethodPost || r.Path != "/api/connectors/files" || r.Header.Get("x-api-key") != f.APIKey || r.Header.Get("Content-Type") != "application/json" {
		t.Errorf("sent %s %s %v", r.Method, r.Path, r.Header)
	}
	if len(r.Body) != 2 || r.Body["url"] != src || r.Body["toolSlug"] != "LINKEDIN_CREATE_LINKED_IN_POST" {
		t.Errorf("body %v", r.Body)
	}
}

// TestStageURLNamesTheFileAsAsked: the caller's filename is the
// descriptor's name (Recoup's own name only without one), with an
// extension for the type when it has none; it is never sent, as Recoup's
// request has no such field.
func TestStageURLNamesTheFileAsAsked(t *testing.T) {
	tests := []struct{ name, filename, want string }{
		{"no filename: Recoup's name", "", "cover.png"},
		{"filename with an extension", "Q3 cover.png", "Q3 cover.png"},
		{"filename with another extension", "cover.jpeg", "cover.jpeg"},
		{"filename without an extension", "cover-art", "cover-art.png"},
		{"filename that sanitises to nothing", "../..", "cover.png"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := recouptest.New(t)
			p := open(t, f.Env())
			data := testfile.PNG(2000)
			src, _ := source(t, data)
			d, err := p.StageURL(context.Background(), providers.StageURLRequest{URL: src, ToolkitSlug: "gmail", ToolSlug: "GMAIL_SEND_EMAIL", Filename: tt.filename})
			if err != nil {
				t.Fatal(err)
			}
			if d.Name != tt.want || d.Mimetype != "image/png" {
				t.Errorf("name %q mimetype %q, want %q image/png", d.Name, d.Mimetype, tt.want)
			}
			if got, ok := f.Object(d.S3Key); !ok || !bytes.Equal(got, data) {
				t.Fatal("the descriptor names bytes the fake does not hold")
			}
			if r := f.Requests(); len(r) != 1 || len(r[0].Body) != 2 {
				t.Errorf("sent %+v, want one request with url and toolSlug only", r)
			}
		})
	}
}

// TestNoUploads: the upload half of the interface says what to do instead.
func TestNoUploads(t *testing.T) {
	f := recouptest.New(t)
	p := open(t, f.Env())
	data := []byte("bytes")
	sum := md5.Sum(data)
	want := "recoup fetches URLs itself and has no presigned uploads: use stage_connector_file with an http(s) URL, or run filestage with --provider composio, alloy, quant, s3 or local"
	_, err := p.RequestUpload(context.Background(), providers.UploadRequest{ToolkitSlug: "gmail", ToolSlug: "GMAIL_SEND_EMAIL", Filename: "a", Mimetype: "text/plain", MD5: sum, Size: 5})
	if !errors.Is(err, providers.ErrUnsupported) || err.Error() != want {
		t.Errorf("RequestUpload: %v", err)
	}
	body := providers.Body{Data: bytes.NewReader(data), Size: 5, MD5: sum}
	if err := p.Upload(context.Background(), providers.Slot{Key: "k", URL: "http://x"}, body); !errors.Is(err, providers.ErrUnsupported) || err.Error() != want {
		t.Errorf("Upload: %v", err)
	}
	if _, err := providers.Store(context.Background(), p, providers.UploadRequest{MD5: sum, Size: 5}, body); !errors.Is(err, providers.ErrUnsupported) {
		t.Errorf("Store: %v", err)
	}
	if n := len(f.Requests()); n != 0 {
		t.Errorf("%d requests reached Recoup", n)
	}
}

// TestFaults: every failure gives a retry or a clear error, and never a
// descriptor for a file Recoup does not hold.
func TestFaults(t *testing.T) {
	body := func(status int, msg string) string {
		return `{"error":` + strconv.Itoa(status) + `,"message":"` + msg + `"}`
	}
	tests := []struct {
		name string
		// url and toolSlug default to a good source and tool.
		url, toolSlug, apiKey string
		script                func(f *recouptest.Server)
		// wantStatus is the *providers.Error status, 0 for success and -1
		// for an error of another kind.
		wantStatus int
		wantText   string
		calls      int
	}{
		{name: "429 with Retry-After, then success", script: func(f *recouptest.Server) {
			f.FailNext(429, http.Header{"Retry-After": {"1"}}, body(429, "slow down"))
		}, calls: 2},
		{name: "500, then success", script: func(f *recouptest.Server) { f.FailNext(500, nil, body(500, "oops")) }, calls: 2},
		{name: "connection reset, then success", script: func(f *recouptest.Server) { f.FailNext(recouptest.Reset, nil, "") }, calls: 2},
		{name: "401 scripted", script: func(f *recouptest.Server) { f.FailNext(401, nil, body(401, "Unauthorized")) }, wantStatus: 401, wantText: "RECOUP_API_KEY", calls: 1},
		{name: "wrong key", apiKey: "recoup_wrong", wantStatus: 401, wantText: "RECOUP_API_KEY", calls: 1},
		{name: "lower-case toolSlug", toolSlug: "linkedin_post", wantStatus: 400, wantText: "UPPERCASE_SNAKE_CASE", calls: 1},
		{name: "not an http URL", url: "ftp://example.com/a.png", wantStatus: 400, wantText: "http(s) URL", calls: 1},
		{name: "source 404 is a 502, retried", url: "/missing", wantStatus: 502, wantText: "answered 404", calls: 5},
		{name: "malformed JSON", script: func(f *recouptest.Server) { f.FailNext(200, nil, `{"success":true,`) }, wantStatus: -1, wantText: "malformed JSON", calls: 1},
		{name: "success false", script: func(f *recouptest.Server) {
			f.FailNext(200, nil, `{"success":false,"name":"a.png","mimetype":"image/png","s3key":"k"}`)
		}, wantStatus: -1, wantText: "lacks success", calls: 1},
		{name: "no s3key", script: func(f *recouptest.Server) {
			f.FailNext(200, nil, `{"success":true,"name":"a.png","mimetype":"image/png"}`)
		}, wantStatus: -1, wantText: "lacks success", calls: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := recouptest.New(t)
			env := f.Env()
			if tt.apiKey != "" {
				env["RECOUP_API_KEY"] = tt.apiKey
			}
			p := open(t, env)
			if tt.script != nil {
				tt.script(f)
			}
			data := testfile.PNG(1000)
			src, _ := source(t, data)
			switch {
			case tt.url == "":
				tt.url = src
			case strings.HasPrefix(tt.url, "/"):
				tt.url = strings.TrimSuffix(src, "/images/cover.png") + tt.url
			}
			if tt.toolSlug == "" {
				tt.toolSlug = "LINKEDIN_CREATE_LINKED_IN_POST"
			}
			d, err := p.StageURL(context.Background(), providers.StageURLRequest{URL: tt.url, ToolSlug: tt.toolSlug})
			if n := len(f.Requests()); n != tt.calls {
				t.Errorf("%d calls, want %d", n, tt.calls)
			}
			if tt.wantStatus == 0 {
				if err != nil {
					t.Fatal(err)
				}
				if got, ok := f.Object(d.S3Key); !ok || !bytes.Equal(got, data) {
					t.Fatal("a descriptor for bytes the fake does not hold")
				}
				return
			}
			if err == nil || d != (providers.Descriptor{}) {
				t.Fatalf("error %v, descriptor %+v", err, d)
			}
			if f.Objects() != 0 && tt.wantStatus != -1 {
				t.Error("the fake stored something")
			}
			if strings.Contains(err.Error(), f.APIKey) || strings.Contains(err.Error(), "recoup_wrong") {
				t.Errorf("the error shows the key: %v", err)
			}
			fakeplatform.Refused(t, err, Name, tt.wantStatus, tt.wantText)
		})
	}
}

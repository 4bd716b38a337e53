package s3

import (
	"bytes"
	"context"
	"crypto/md5"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/filestage/filestage/internal/testfile"
	"github.com/filestage/filestage/internal/testhttp"
	"github.com/filestage/filestage/providers"
	"github.com/filestage/filestage/providers/s3/s3test"
)

// These tests run against a real S3-compatible server that verifies SigV4
// (versitygw, started by .ci/run); see s3test.Env.

type fixture struct {
	p   *Provider
	c   *awss3.Client
	env map[string]string
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	env := s3test.Env(t)
	return &fixture{p: open(t, env), c: s3test.Client(env), env: env}
}

func open(t *testing.T, env map[string]string) *Provider {
	t.Helper()
	p, err := New(t.Context(), providers.Settings{Getenv: getenv(env), HTTP: providers.NewClient("filestage-test")})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func request(body []byte, size int64) providers.UploadRequest {
	return providers.UploadRequest{
		ToolkitSlug: "gmail", ToolSlug: "GMAIL_SEND_EMAIL", Filename: "Photo.PNG", Mimetype: "image/png", MD5: md5.Sum(body), Size: size,
	}
}

func body(b []byte) providers.Body {
	return providers.Body{Data: bytes.NewReader(b), Size: int64(len(b)), MD5: md5.Sum(b)}
}

// stored returns the object under key and its Content-Type, or ok false
// when there is none.
func (f *fixture) stored(t *testing.T, key string) (data []byte, contentType string, ok bool) {
	t.Helper()
	out, err := f.c.GetObject(t.Context(), &awss3.GetObjectInput{Bucket: aws.String(f.env["FILESTAGE_S3_BUCKET"]), Key: aws.String(key)})
	if statusOf(err) == http.StatusNotFound {
		return nil, "", false
	}
	if err != nil {
		t.Fatal(err)
	}
	defer out.Body.Close()
	data, err = io.ReadAll(out.Body)
	if err != nil {
		t.Fatal(err)
	}
	return data, aws.ToString(out.ContentType), true
}

// put sends a plain net/http request, as an MCP client would.
func put(t *testing.T, method, rawURL string, headers map[string]string, b []byte) (int, string) {
	t.Helper()
	resp, msg := testhttp.Do(t, method, rawURL, headers, b)
	return resp.StatusCode, string(msg[:min(len(msg), 4096)])
}

func TestPresignedPut(t *testing.T) {
	tests := []struct {
		name string
		body []byte
		size func(b []byte) int64
	}{
		{"known size", testfile.PNG(100_000), func(b []byte) int64 { return int64(len(b)) }},
		{"unknown size", testfile.PNG(100_000), func([]byte) int64 { return -1 }},
		{"empty file", []byte{}, func([]byte) int64 { return 0 }},
	}
	f := newFixture(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := f.p.RequestUpload(t.Context(), request(tt.body, tt.size(tt.body)))
			if err != nil {
				t.Fatal(err)
			}
			if s.Type != providers.SlotNew || s.Method != http.MethodPut || s.StorageBackend != "s3" {
				t.Fatalf("slot %+v", s)
			}
			if !strings.HasPrefix(s.Key, "gmail/GMAIL_SEND_EMAIL/") || !strings.HasSuffix(s.Key, ".png") {
				t.Errorf("key %q", s.Key)
			}
			if status, msg := put(t, s.Method, s.URL, s.Headers, tt.body); status != http.StatusOK {
				t.Fatalf("PUT: %d %s", status, msg)
			}
			got, ct, ok := f.stored(t, s.Key)
			if !ok || !bytes.Equal(got, tt.body) || ct != "image/png" {
				t.Fatalf("stored %v, %d bytes of %s; want the %d bytes sent as image/png", ok, len(got), ct, len(tt.body))
			}
			again, err := f.p.RequestUpload(t.Context(), request(tt.body, tt.size(tt.body)))
			if err != nil {
				t.Fatal(err)
			}
			if again.Type != providers.SlotExisting || again.Key != s.Key {
				t.Errorf("second request: %s %s, want existing %s", again.Type, again.Key, s.Key)
			}
			if again.URL != "" || again.Method != "" || again.Headers == nil || len(again.Headers) != 0 || !again.ExpiresAt.IsZero() {
				t.Errorf("an existing slot carries URL %q, method %q, headers %v, expiry %v", again.URL, again.Method, again.Headers, again.ExpiresAt)
			}
		})
	}
}

// TestPresignedPutIsSingleUse: the URL's signed If-None-Match: * makes S3
// refuse a replay after the upload, with the same or forged bytes, and all
// but one of uploads racing through it; the object stays the first bytes.
func TestPresignedPutIsSingleUse(t *testing.T) {
	// Small enough to be sent whole before a refusal: versitygw refuses
	// early and resets the connection of a body still being written.
	data := testfile.PNG(64 << 10)
	forged := testfile.PNG(len(data) - 33)
	tests := []struct {
		name string
		run  func(t *testing.T, s providers.Slot) []int // the statuses of the PUTs
	}{
		{"replayed with the same bytes", func(t *testing.T, s providers.Slot) []int {
			first, _ := put(t, s.Method, s.URL, s.Headers, data)
			again, msg := put(t, s.Method, s.URL, s.Headers, data)
			if !strings.Contains(msg, "<Code>PreconditionFailed</Code>") {
				t.Errorf("replay: %d %s, want PreconditionFailed", again, msg)
			}
			return []int{first, again}
		}},
		{"replayed with forged bytes", func(t *testing.T, s providers.Slot) []int {
			first, _ := put(t, s.Method, s.URL, s.Headers, data)
			again, _ := put(t, s.Method, s.URL, s.Headers, forged)
			return []int{first, again}
		}},
		{"8 at once", func(t *testing.T, s providers.Slot) []int {
			bodies := make([][]byte, 8)
			for i := range bodies {
				bodies[i] = data
			}
			return testfile.PutAtOnce(t, s.Method, s.URL, s.Headers, bodies)
		}},
	}
	f := newFixture(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := f.p.RequestUpload(t.Context(), request(data, int64(len(data))))
			if err != nil {
				t.Fatal(err)
			}
			defer f.c.DeleteObject(t.Context(), &awss3.DeleteObjectInput{Bucket: aws.String(f.env["FILESTAGE_S3_BUCKET"]), Key: aws.String(s.Key)})
			if s.Headers["If-None-Match"] != "*" {
				t.Fatalf("headers %v, want If-None-Match: *", s.Headers)
			}
			status := tt.run(t, s)
			won := 0
			for _, st := range status {
				switch {
				case st == http.StatusOK:
					won++
				case st < 400 || st > 499:
					t.Errorf("status %d, want 200 or a 4xx", st)
				}
			}
			if won != 1 {
				t.Errorf("statuses %v, want exactly one 200", status)
			}
			if got, _, ok := f.stored(t, s.Key); !ok || !bytes.Equal(got, data) {
				t.Error("the object is not the first bytes")
			}
		})
	}
}

// TestPresignedPutRefusals: every way a PUT can differ from what was
// signed is refused by the store itself, and nothing is stored.
func TestPresignedPutRefusals(t *testing.T) {
	type attempt struct {
		method, url string
		headers     map[string]string
		body        []byte
	}
	tests := []struct {
		name   string
		code   string // S3's error code
		ttl    time.Duration
		change func(r *attempt)
	}{
		{"tampered signature", "SignatureDoesNotMatch", URLTTL, func(r *attempt) {
			r.url = setQuery(r.url, "X-Amz-Signature", func(v string) string { return strings.Repeat("0", 8) + v[8:] })
		}},
		{"extended expiry", "SignatureDoesNotMatch", URLTTL, func(r *attempt) {
			r.url = setQuery(r.url, "X-Amz-Expires", func(string) string { return "604800" })
		}},
		{"other key", "SignatureDoesNotMatch", URLTTL, func(r *attempt) { r.url = strings.Replace(r.url, "GMAIL_SEND_EMAIL", "SLACK_UPLOAD_FILE", 1) }},
		{"expired", "AccessDenied", time.Second, func(*attempt) { time.Sleep(2500 * time.Millisecond) }},
		{"other Content-Type", "SignatureDoesNotMatch", URLTTL, func(r *attempt) { r.headers["Content-Type"] = "text/html" }},
		{"no Content-Type", "SignatureDoesNotMatch", URLTTL, func(r *attempt) { delete(r.headers, "Content-Type") }},
		{"no Content-MD5", "SignatureDoesNotMatch", URLTTL, func(r *attempt) { delete(r.headers, "Content-MD5") }},
		{"other bytes with the signed Content-MD5", "BadDigest", URLTTL, func(r *attempt) {
			r.body = testfile.PNG(len(r.body) - 33) // as long: PNG adds a 33-byte header
		}},
		{"one byte flipped", "BadDigest", URLTTL, func(r *attempt) {
			r.body = bytes.Clone(r.body)
			r.body[len(r.body)/2] ^= 1
		}},
		{"shorter than the signed size", "SignatureDoesNotMatch", URLTTL, func(r *attempt) { r.body = r.body[:len(r.body)-1] }},
		{"POST", "MethodNotAllowed", URLTTL, func(r *attempt) { r.method = http.MethodPost }},
	}
	f := newFixture(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f.p.ttl = tt.ttl
			data := testfile.PNG(50_000)
			s, err := f.p.RequestUpload(t.Context(), request(data, int64(len(data))))
			if err != nil {
				t.Fatal(err)
			}
			r := &attempt{method: s.Method, url: s.URL, headers: maps.Clone(s.Headers), body: data}
			tt.change(r)
			status, msg := put(t, r.method, r.url, r.headers, r.body)
			if status < 400 || status > 499 || !strings.Contains(msg, "<Code>"+tt.code+"</Code>") {
				t.Errorf("%d %s, want 4xx %s", status, msg, tt.code)
			}
			if _, _, ok := f.stored(t, s.Key); ok {
				t.Error("the object was stored")
			}
		})
	}
}

func setQuery(rawURL, name string, change func(string) string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		panic(err)
	}
	q := u.Query()
	q.Set(name, change(q.Get(name)))
	u.RawQuery = q.Encode()
	return u.String()
}

// TestStore is the staging path: the provider uploads the bytes itself.
func TestStore(t *testing.T) {
	f := newFixture(t)
	data := testfile.PNG(300_000)
	s, err := providers.Store(t.Context(), f.p, request(data, int64(len(data))), body(data))
	if err != nil {
		t.Fatal(err)
	}
	if s.Type != providers.SlotNew || s.StorageBackend != "s3" || s.URL != "" || s.Headers != nil {
		t.Errorf("slot %+v, want a new one without a presigned URL", s)
	}
	if got, ct, ok := f.stored(t, s.Key); !ok || !bytes.Equal(got, data) || ct != "image/png" {
		t.Fatalf("stored %v, %d bytes of %s", ok, len(got), ct)
	}
	again, err := providers.Store(t.Context(), f.p, request(data, int64(len(data))), body(data))
	if err != nil || again.Type != providers.SlotExisting || again.Key != s.Key {
		t.Errorf("second store: %+v, %v; want existing", again, err)
	}

	if again.URL != "" || len(again.Headers) != 0 {
		t.Errorf("second store: %+v, want no URL", again)
	}
}

// TestOtherBytesAreNeverReplaced: other bytes under a content key
// (written behind filestage's back) get no presigned PUT, and staging, in
// one request or in parts, does not replace them.
func TestOtherBytesAreNeverReplaced(t *testing.T) {
	// Small enough for the PUT to be sent whole before its refusal:
	// versitygw refuses early and resets the connection of a body still
	// being written. Over putMax, as large as three parts.
	small, large := testfile.Random(10_000), testfile.Random(12<<20)
	other := testfile.PNG(10)
	tests := []struct {
		name    string
		data    []byte
		putMax  int64
		replace func(t *testing.T, f *fixture, req providers.UploadRequest, data []byte) error
	}{
		{"presigned PUT", small, maxPut, func(t *testing.T, f *fixture, req providers.UploadRequest, data []byte) error {
			// No URL is issued: S3 would refuse its PUT (If-None-Match).
			s, err := f.p.RequestUpload(t.Context(), req)
			var pe *providers.Error
			if !errors.As(err, &pe) || pe.Slug != "S3_OBJECT_EXISTS" || pe.Status != http.StatusConflict {
				return fmt.Errorf("presign: %+v, %v; want S3_OBJECT_EXISTS 409", s, err)
			}
			return nil
		}},
		{"store", small, maxPut, func(t *testing.T, f *fixture, req providers.UploadRequest, data []byte) error {
			_, err := providers.Store(t.Context(), f.p, req, body(data))
			return err
		}},
		{"store, in one PUT", large, maxPut, func(t *testing.T, f *fixture, req providers.UploadRequest, data []byte) error {
			_, err := providers.Store(t.Context(), f.p, req, body(data))
			return err
		}},
		{"store in parts", large, 6 << 20, func(t *testing.T, f *fixture, req providers.UploadRequest, data []byte) error {
			_, err := providers.Store(t.Context(), f.p, req, body(data))
			return err
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			f.p.putMax, f.p.partSize = tt.putMax, 5<<20
			req := request(tt.data, int64(len(tt.data)))
			key := f.p.objectKey(req)
			if _, err := f.c.PutObject(t.Context(), &awss3.PutObjectInput{
				Bucket: aws.String(f.env["FILESTAGE_S3_BUCKET"]), Key: aws.String(key), Body: bytes.NewReader(other),
			}); err != nil {
				t.Fatal(err)
			}
			err := tt.replace(t, f, req, tt.data)
			var pe *providers.Error
			if tt.name != "presigned PUT" && (!errors.As(err, &pe) || pe.Slug != "S3_OBJECT_EXISTS" || pe.Status != http.StatusConflict || !strings.Contains(pe.Fix, key)) {
				t.Errorf("%v, want S3_OBJECT_EXISTS naming %s", err, key)
			} else if tt.name == "presigned PUT" && err != nil {
				t.Error(err)
			}
			if got, _, _ := f.stored(t, key); !bytes.Equal(got, other) {
				t.Error("the other bytes were replaced")
			}
			uploads, err := f.c.ListMultipartUploads(t.Context(), &awss3.ListMultipartUploadsInput{Bucket: aws.String(f.env["FILESTAGE_S3_BUCKET"])})
			if err != nil {
				t.Fatal(err)
			}
			if len(uploads.Uploads) != 0 {
				t.Errorf("%d multipart uploads left open", len(uploads.Uploads))
			}
		})
	}
}

// TestConcurrentStores: stores of the same bytes racing each other all
// succeed, as new or existing; the losers' uploads, refused for their
// If-None-Match, find the winner's bytes stored.
func TestConcurrentStores(t *testing.T) {
	f := newFixture(t)
	data := testfile.PNG(1 << 20)
	req := request(data, int64(len(data)))
	types := make([]providers.SlotType, 6)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range types {
		wg.Go(func() {
			<-start
			s, err := providers.Store(t.Context(), f.p, req, body(data))
			if err != nil {
				t.Errorf("store %d: %v", i, err)
			}
			types[i] = s.Type
		})
	}
	close(start)
	wg.Wait()
	t.Logf("types %v", types)
	if !slices.Contains(types, providers.SlotNew) || slices.ContainsFunc(types, func(t providers.SlotType) bool {
		return t != providers.SlotNew && t != providers.SlotExisting
	}) {
		t.Errorf("types %v, want new or existing, at least one new", types)
	}
	if got, _, ok := f.stored(t, f.p.objectKey(req)); !ok || !bytes.Equal(got, data) {
		t.Error("not stored as sent")
	}
}

func TestStoreWithPrefix(t *testing.T) {
	env := s3test.Env(t)
	env["FILESTAGE_S3_PREFIX"] = "staged"
	f := &fixture{p: open(t, env), c: s3test.Client(env), env: env}
	data := testfile.Random(1000)
	s, err := providers.Store(t.Context(), f.p, request(data, int64(len(data))), body(data))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(s.Key, "staged/gmail/GMAIL_SEND_EMAIL/") {
		t.Errorf("key %q", s.Key)
	}
	if got, _, ok := f.stored(t, s.Key); !ok || !bytes.Equal(got, data) {
		t.Error("not stored")
	}
}

// TestStoreMultipart shrinks the single-PUT limit so that a small file is
// over it: a presigned upload of it is refused, while staging stores it in
// parts.
func TestStoreMultipart(t *testing.T) {
	f := newFixture(t)
	f.p.putMax = 6 << 20
	f.p.partSize = 5 << 20
	data := testfile.Random(12 << 20)
	req := request(data, int64(len(data)))

	_, err := f.p.RequestUpload(t.Context(), req)
	var pe *providers.Error
	if !errors.As(err, &pe) || pe.Status != http.StatusRequestEntityTooLarge || pe.Slug != "FILE_TOO_LARGE" ||
		!strings.Contains(pe.Fix, "stage_connector_file") || !strings.Contains(pe.Fix, "in parts") {
		t.Fatalf("presigning %d bytes over the limit: %#v, want FILE_TOO_LARGE pointing to stage_connector_file", len(data), err)
	}

	s, err := providers.Store(t.Context(), f.p, req, body(data))
	if err != nil {
		t.Fatal(err)
	}
	if s.Type != providers.SlotNew || s.URL != "" || s.Key != f.p.objectKey(req) {
		t.Errorf("slot %+v", s)
	}
	if got, ct, ok := f.stored(t, s.Key); !ok || !bytes.Equal(got, data) || ct != "image/png" {
		t.Fatalf("stored %v, %d bytes of %s; want the %d sent as image/png", ok, len(got), ct, len(data))
	}
	head, err := f.c.HeadObject(t.Context(), &awss3.HeadObjectInput{Bucket: aws.String(f.env["FILESTAGE_S3_BUCKET"]), Key: aws.String(s.Key)})
	if err != nil {
		t.Fatal(err)
	}
	if etag := aws.ToString(head.ETag); !strings.HasSuffix(strings.Trim(etag, `"`), "-3") {
		t.Errorf("ETag %s, want one of 3 parts", etag)
	}
	if again, err := providers.Store(t.Context(), f.p, req, body(data)); err != nil || again.Type != providers.SlotExisting || again.Key != s.Key {
		t.Errorf("after a multipart upload: %+v, %v; want existing", again, err)
	}
}

// TestMultipartRefusesOtherBytes: bytes that changed since they were
// hashed fail the upload, which is aborted, and nothing is stored: changed
// between a part's hash and its upload (S3 checks the part's MD5), or
// before (a user's file changed after the caller hashed it all).
func TestMultipartRefusesOtherBytes(t *testing.T) {
	for _, after := range []int{2, 1} {
		f := newFixture(t)
		f.p.putMax = 6 << 20
		f.p.partSize = 5 << 20
		data := testfile.Random(12 << 20)
		b := body(data)
		b.Data = &flipAt{r: bytes.NewReader(data), at: 7 << 20, after: after}
		slot := providers.Slot{Key: "gmail/GMAIL_SEND_EMAIL/multipart.bin"}
		if err := f.p.Upload(t.Context(), slot, b); err == nil {
			t.Fatalf("changed from read %d on: the upload succeeded", after)
		}
		checkNothingStored(t, f, slot.Key)
	}
}

func checkNothingStored(t *testing.T, f *fixture, key string) {
	t.Helper()
	slot := providers.Slot{Key: key}
	if _, _, ok := f.stored(t, slot.Key); ok {
		t.Error("stored")
	}
	uploads, err := f.c.ListMultipartUploads(t.Context(), &awss3.ListMultipartUploadsInput{Bucket: aws.String(f.env["FILESTAGE_S3_BUCKET"])})
	if err != nil {
		t.Fatal(err)
	}
	if len(uploads.Uploads) != 0 {
		t.Errorf("%d multipart uploads left open", len(uploads.Uploads))
	}
}

// flipAt reads r, but from the after-th read covering offset at on, the
// byte there is flipped: the bytes change between hashing and sending.
type flipAt struct {
	r     io.ReaderAt
	at    int64
	after int
	reads int
}

func (f *flipAt) ReadAt(b []byte, off int64) (int, error) {
	n, err := f.r.ReadAt(b, off)
	if off <= f.at && f.at < off+int64(n) {
		if f.reads++; f.reads >= f.after {
			b[f.at-off] ^= 1
		}
	}
	return n, err
}

func TestMissingBucket(t *testing.T) {
	env := s3test.Env(t)
	env["FILESTAGE_S3_BUCKET"] = "filestage-no-such-bucket"
	data := testfile.PNG(1000)
	tests := []struct {
		name string
		do   func(p *Provider) error
	}{
		{"presign", func(p *Provider) error {
			_, err := p.RequestUpload(t.Context(), request(data, int64(len(data))))
			return err
		}},
		{"upload", func(p *Provider) error {
			return p.Upload(t.Context(), providers.Slot{Key: "gmail/GMAIL_SEND_EMAIL/x.png"}, body(data))
		}},
		{"multipart upload", func(p *Provider) error {
			p.putMax = 100
			return p.Upload(t.Context(), providers.Slot{Key: "gmail/GMAIL_SEND_EMAIL/x.png"}, body(data))
		}},
		{"store", func(p *Provider) error {
			_, err := providers.Store(t.Context(), p, request(data, int64(len(data))), body(data))
			return err
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.do(open(t, env))
			var pe *providers.Error
			if !errors.As(err, &pe) || pe.Slug != "S3_NO_SUCH_BUCKET" || !strings.Contains(pe.Fix, "FILESTAGE_S3_BUCKET") ||
				!strings.Contains(pe.Message, "filestage-no-such-bucket") {
				t.Fatalf("error %#v, want S3_NO_SUCH_BUCKET naming the bucket and FILESTAGE_S3_BUCKET", err)
			}
			t.Log(err)
		})
	}
}

func TestBadCredentials(t *testing.T) {
	env := s3test.Env(t)
	data := testfile.PNG(1000)
	const badSecret = "wrong-secret-5f4dcc3b5aa765d61d8327deb882cf99"
	creds := []struct {
		name   string
		change map[string]string
	}{
		{"wrong secret", map[string]string{"AWS_SECRET_ACCESS_KEY": badSecret}},
		{"unknown access key", map[string]string{"AWS_ACCESS_KEY_ID": "AKIDNOSUCHKEY", "AWS_SECRET_ACCESS_KEY": badSecret}},
	}
	ops := []struct {
		name string
		do   func(ctx context.Context, p *Provider) error
	}{
		{"presign", func(ctx context.Context, p *Provider) error {
			_, err := p.RequestUpload(ctx, request(data, int64(len(data))))
			return err
		}},
		{"upload", func(ctx context.Context, p *Provider) error {
			return p.Upload(ctx, providers.Slot{Key: "gmail/GMAIL_SEND_EMAIL/x.png"}, body(data))
		}},
		{"store", func(ctx context.Context, p *Provider) error {
			_, err := providers.Store(ctx, p, request(data, int64(len(data))), body(data))
			return err
		}},
	}
	for _, c := range creds {
		for _, op := range ops {
			t.Run(c.name+"/"+op.name, func(t *testing.T) {
				bad := maps.Clone(env)
				maps.Copy(bad, c.change)
				err := op.do(t.Context(), open(t, bad))
				var pe *providers.Error
				if !errors.As(err, &pe) || pe.Status != http.StatusForbidden || !strings.Contains(pe.Fix, "AWS_") {
					t.Fatalf("error %#v, want a 403 *providers.Error naming the variable to check", err)
				}
				if strings.Contains(err.Error(), badSecret) || strings.Contains(pe.Fix, badSecret) {
					t.Error("the error shows the secret")
				}
				t.Log(err)
			})
		}
	}
}

// TestNamespaces: each principal's objects live under its own prefix in
// the bucket, so the same bytes stored by one are new to another, whose
// presigned PUT stores its own copy.
func TestNamespaces(t *testing.T) {
	f := newFixture(t)
	data := testfile.PNG(50_000)
	alice, bob := request(data, int64(len(data))), request(data, int64(len(data)))
	alice.Namespace, bob.Namespace = "p-alice", "p-bob"
	s, err := providers.Store(t.Context(), f.p, alice, body(data))
	if err != nil || !strings.HasPrefix(s.Key, "p-alice/") {
		t.Fatalf("alice's store: %+v, %v", s, err)
	}
	slot, err := f.p.RequestUpload(t.Context(), bob)
	if err != nil || slot.Type != providers.SlotNew || !strings.HasPrefix(slot.Key, "p-bob/") || slot.URL == "" {
		t.Fatalf("bob's presign of the same bytes: %+v, %v", slot, err)
	}
	again, err := f.p.RequestUpload(t.Context(), alice)
	if err != nil || again.Type != providers.SlotExisting || again.Key != s.Key {
		t.Errorf("alice's presign of her bytes: %+v, %v", again, err)
	}
}

// TestPresignedGet: both paths answer a presigned GET that reads the
// object back, offered under the caller's file name, and only it.
func TestPresignedGet(t *testing.T) {
	f := newFixture(t)
	data := testfile.PNG(70_000)
	req := request(data, int64(len(data)))
	req.Filename = `Überblick "Q3".png`
	slot, err := f.p.RequestUpload(t.Context(), req)
	if err != nil || slot.DownloadURL == "" || time.Until(slot.DownloadExpiresAt) < 59*time.Minute {
		t.Fatalf("presign: %+v %v", slot, err)
	}
	get := func(rawURL string) (int, http.Header, []byte) {
		resp, err := http.Get(rawURL)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header, b
	}
	if status, _, _ := get(slot.DownloadURL); status != http.StatusNotFound {
		t.Errorf("GET before the upload: %d", status)
	}
	if status, msg := put(t, slot.Method, slot.URL, slot.Headers, data); status != http.StatusOK {
		t.Fatalf("PUT: %d %s", status, msg)
	}
	stored, err := providers.Store(t.Context(), f.p, req, body(data))
	if err != nil || stored.Type != providers.SlotExisting {
		t.Fatalf("store: %+v %v", stored, err)
	}
	for _, u := range []string{slot.DownloadURL, stored.DownloadURL} {
		status, h, got := get(u)
		if status != http.StatusOK || !bytes.Equal(got, data) {
			t.Errorf("GET: %d, %d bytes", status, len(got))
		}
		if cd := h.Get("Content-Disposition"); cd != providers.ContentDisposition(req.Filename) {
			t.Errorf("Content-Disposition %q", cd)
		}
	}
	other := setQuery(slot.DownloadURL, "response-content-disposition", func(string) string { return "inline" })
	if status, _, _ := get(other); status != http.StatusForbidden {
		t.Errorf("GET with another disposition than signed: %d", status)
	}
}

package local

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/md5"
	"crypto/sha256"
	"encoding/base64"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/filestage/filestage/providers"
)

// The fuzz targets sign with a fixed key at a fixed time, so that the seed
// corpus can hold validly signed URLs for the fuzzer to mutate.
var (
	fuzzKey = []byte("filestage fuzz signing key, 32+ bytes long")
	fuzzNow = time.Unix(1_800_000_000, 0)
)

const fuzzMax = 256

type fuzzStore struct {
	p   *Provider
	dir string
}

func newFuzzStore(f *testing.F) *fuzzStore {
	dir := f.TempDir()
	if err := os.WriteFile(filepath.Join(dir, secretFile), fuzzKey, 0o600); err != nil {
		f.Fatal(err)
	}
	p, err := New(providers.Settings{DataDir: dir, PublicURL: "http://127.0.0.1:8080", MaxBytes: fuzzMax})
	if err != nil {
		f.Fatal(err)
	}
	p.setClock(func() time.Time { return fuzzNow })
	return &fuzzStore{p: p, dir: dir}
}

// serve sends one request to the handler; chunked leaves its length
// unknown, as a client streaming the body does.
func (s *fuzzStore) serve(method string, u *url.URL, contentType, contentMD5 string, body []byte, chunked bool) *httptest.ResponseRecorder {
	r := &http.Request{
		Method: method, URL: u, RequestURI: u.RequestURI(), Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: http.Header{}, Body: io.NopCloser(bytes.NewReader(body)), ContentLength: int64(len(body)), Host: "127.0.0.1:8080",
	}
	if chunked {
		r.ContentLength, r.TransferEncoding = -1, []string{"chunked"}
	}
	r = r.WithContext(context.Background())
	if contentType != "" {
		r.Header.Set("Content-Type", contentType)
	}
	if contentMD5 != "" {
		r.Header.Set("Content-MD5", contentMD5)
	}
	w := httptest.NewRecorder()
	s.p.ServeHTTP(w, r)
	return w
}

// objects lists what the store holds, by key; temporary files left behind
// fail the test.
func (s *fuzzStore) objects(t testing.TB) map[string][]byte {
	t.Helper()
	got := map[string][]byte{}
	root := filepath.Join(s.dir, "objects")
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		rel, _ := filepath.Rel(root, p)
		got[filepath.ToSlash(rel)] = b
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if tmp, _ := os.ReadDir(filepath.Join(s.dir, "tmp")); len(tmp) > 0 {
		t.Errorf("temporary file left behind: %s", tmp[0].Name())
	}
	return got
}

// reset empties the store for the next input.
func (s *fuzzStore) reset(t testing.TB) {
	t.Helper()
	entries, _ := os.ReadDir(filepath.Join(s.dir, "objects"))
	for _, e := range entries {
		if err := os.RemoveAll(filepath.Join(s.dir, "objects", e.Name())); err != nil {
			t.Fatal(err)
		}
	}
}

// checkOutcome: stored exactly body under key with a 200 when want, else
// a 4xx and nothing stored.
func (s *fuzzStore) checkOutcome(t testing.TB, w *httptest.ResponseRecorder, want bool, key string, body []byte) {
	t.Helper()
	defer s.reset(t)
	objs := s.objects(t)
	if !want {
		if w.Code < 400 || w.Code > 499 {
			t.Errorf("status %d, want 4xx: %s", w.Code, w.Body)
		}
		for k := range objs {
			t.Errorf("stored %s", k)
		}
		return
	}
	if w.Code != http.StatusOK {
		t.Errorf("status %d, want 200: %s", w.Code, w.Body)
	}
	if got, ok := objs[key]; !ok || !bytes.Equal(got, body) || len(objs) != 1 {
		t.Errorf("stored %d objects, %s as sent: %v", len(objs), key, ok && bytes.Equal(got, body))
	}
}

// fuzzSign signs as an upload URL's issuer does, written out here rather
// than taken from sign.go so that the target checks the verifier against
// the documented format.
func fuzzSign(method, key, contentType, contentMD5 string, size, expires int64) string {
	m := hmac.New(sha256.New, fuzzKey)
	m.Write([]byte("filestage-local-v1\n" + method + "\n" + key + "\n" + contentType + "\n" + contentMD5 + "\n" +
		strconv.FormatInt(size, 10) + "\n" + strconv.FormatInt(expires, 10)))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// fuzzSignedTarget is the path and query of a URL signed for body.
func fuzzSignedTarget(key, contentType string, body []byte, size, expires int64) (target, contentMD5 string) {
	sum := md5.Sum(body)
	contentMD5 = base64.StdEncoding.EncodeToString(sum[:])
	q := url.Values{}
	q.Set("expires", strconv.FormatInt(expires, 10))
	if size >= 0 {
		q.Set("size", strconv.FormatInt(size, 10))
	}
	q.Set("signature", fuzzSign("PUT", key, contentType, contentMD5, size, expires))
	return "/files/" + key + "?" + q.Encode(), contentMD5
}

// FuzzSignedURL sends arbitrary PUTs and other requests to the upload
// handler. A request is stored only when it carries a valid signature for
// exactly its method, key, Content-Type, Content-MD5, size and expiry, is
// not expired, and its body is the signed size and hashes to the signed
// MD5; anything else gets a 4xx and stores nothing.
func FuzzSignedURL(f *testing.F) {
	s := newFuzzStore(f)
	const key = "gmail/GMAIL_SEND_EMAIL/5d41402abc4b2a76b9719d911017c592.pdf"
	hello := []byte("hello")
	exp := fuzzNow.Add(URLTTL).Unix()
	valid, helloMD5 := fuzzSignedTarget(key, "application/pdf", hello, 5, exp)
	anySize, _ := fuzzSignedTarget(key, "application/pdf", hello, -1, exp)
	expired, _ := fuzzSignedTarget(key, "application/pdf", hello, 5, fuzzNow.Unix()-1)
	big := bytes.Repeat([]byte("x"), fuzzMax+1)
	bigTarget, bigMD5 := fuzzSignedTarget("gmail/GMAIL_SEND_EMAIL/"+strings.Repeat("0", 32), "application/octet-stream", big, -1, exp)
	for _, in := range []struct {
		method, target, contentType, contentMD5 string
		body                                    []byte
		chunked                                 bool
	}{
		{"PUT", valid, "application/pdf", helloMD5, hello, false},
		{"PUT", valid, "application/pdf", helloMD5, hello, true},
		{"PUT", anySize, "application/pdf", helloMD5, hello, true},
		{"PUT", valid, "application/pdf", helloMD5, []byte("hellO"), false},
		{"PUT", valid, "application/pdf", helloMD5, []byte("hello!"), false},
		{"PUT", anySize, "application/pdf", helloMD5, []byte("hell"), true},
		{"PUT", valid, "application/octet-stream", helloMD5, hello, false},
		{"PUT", valid, "application/pdf", "", hello, false},
		{"POST", valid, "application/pdf", helloMD5, hello, false},
		{"put", valid, "application/pdf", helloMD5, hello, false},
		{"PUT", expired, "application/pdf", helloMD5, hello, false},
		{"PUT", bigTarget, "application/octet-stream", bigMD5, big, true},
		{"PUT", strings.Replace(valid, "size=5", "size=6", 1), "application/pdf", helloMD5, hello, false},
		{"PUT", strings.Replace(valid, "/files/gmail/", "/files/slack/", 1), "application/pdf", helloMD5, hello, false},
		{"PUT", strings.Replace(valid, "/files/", "/files/../", 1), "application/pdf", helloMD5, hello, false},
		{"PUT", valid + "&size=6&expires=1", "application/pdf", helloMD5, hello, false},
		{"PUT", "/files/" + key + "?expires=x&signature=y", "application/pdf", helloMD5, hello, false},
		{"PUT", "/files/" + key + "?expires=99999999999&size=-5&signature=" + strings.Repeat("A", 43), "", "", nil, false},
		{"PUT", "/files/../../secret?expires=99999999999&signature=AAAA", "", "", hello, false},
		{"GET", "/files/" + key, "", "", nil, false},
		{"PUT", "", "", "", nil, false},
	} {
		f.Add(in.method, in.target, in.contentType, in.contentMD5, in.body, in.chunked)
	}
	// The corpus holds validly signed URLs only if this one is accepted.
	path, rawQuery, _ := strings.Cut(valid, "?")
	s.checkOutcome(f, s.serve("PUT", &url.URL{Path: path, RawQuery: rawQuery}, "application/pdf", helloMD5, hello, false), true, key, hello)

	f.Fuzz(func(t *testing.T, method, target, contentType, contentMD5 string, body []byte, chunked bool) {
		path, rawQuery, _ := strings.Cut(target, "?")
		u := &url.URL{Path: path, RawQuery: rawQuery}
		w := s.serve(method, u, contentType, contentMD5, body, chunked)

		// What the verifier should make of it, worked out independently.
		q := u.Query()
		key := strings.TrimPrefix(path, "/files/")
		expires, expErr := strconv.ParseInt(q.Get("expires"), 10, 64)
		size, sizeErr := int64(-1), error(nil)
		if v := q.Get("size"); v != "" {
			size, sizeErr = strconv.ParseInt(v, 10, 64)
		}
		sig, sigErr := base64.RawURLEncoding.DecodeString(q.Get("signature"))
		signed := method == http.MethodPut && expErr == nil && sizeErr == nil && sigErr == nil && q.Get("signature") != "" &&
			hmac.Equal(sig, fuzzMustDecode(fuzzSign(method, key, contentType, contentMD5, size, expires)))
		sum := md5.Sum(body)
		want := signed && fuzzNow.Unix() <= expires && (size < 0 || int64(len(body)) == size) && len(body) <= fuzzMax &&
			contentMD5 == base64.StdEncoding.EncodeToString(sum[:])
		s.checkOutcome(t, w, want, key, body)
	})
}

func fuzzMustDecode(sig string) []byte {
	b, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil {
		panic(err)
	}
	return b
}

// FuzzSignedUpload PUTs arbitrary bodies to URLs that RequestUpload issued
// for other bytes and sizes: the object is stored exactly when the body
// hashes to the granted MD5 and has the granted size (if any), within the cap.
func FuzzSignedUpload(f *testing.F) {
	s := newFuzzStore(f)
	for _, in := range []struct {
		body, granted []byte
		size          int64
		chunked       bool
	}{
		{[]byte("hello"), []byte("hello"), 5, false},
		{[]byte("hello"), []byte("hello"), -1, true},
		{[]byte("hello"), []byte("hello"), 4, false},
		{[]byte("hello"), []byte("hello"), 6, true},
		{[]byte("hellO"), []byte("hello"), 5, false},
		{[]byte{}, []byte{}, 0, false},
		{bytes.Repeat([]byte{0}, fuzzMax), bytes.Repeat([]byte{0}, fuzzMax), fuzzMax, false},
		{bytes.Repeat([]byte{0}, fuzzMax+1), bytes.Repeat([]byte{0}, fuzzMax+1), -1, true},
		{bytes.Repeat([]byte{0}, fuzzMax+1), bytes.Repeat([]byte{0}, fuzzMax+1), fuzzMax + 1, false},
	} {
		f.Add(in.body, in.granted, in.size, in.chunked)
	}
	f.Fuzz(func(t *testing.T, body, granted []byte, size int64, chunked bool) {
		if size < 0 {
			size = -1
		}
		slot, err := s.p.RequestUpload(context.Background(), providers.UploadRequest{
			ToolkitSlug: "gmail", ToolSlug: "GMAIL_SEND_EMAIL", Filename: "a.bin", Mimetype: "application/octet-stream", MD5: md5.Sum(granted), Size: size,
		})
		if err != nil {
			t.Fatal(err)
		}
		u, err := url.Parse(slot.URL)
		if err != nil {
			t.Fatal(err)
		}
		if slot.Method != http.MethodPut || slot.Type != providers.SlotNew {
			t.Fatalf("slot %+v", slot)
		}
		w := s.serve(slot.Method, &url.URL{Path: u.Path, RawQuery: u.RawQuery}, slot.Headers["Content-Type"], slot.Headers["Content-MD5"], body, chunked)
		want := md5.Sum(body) == md5.Sum(granted) && (size < 0 || int64(len(body)) == size) && len(body) <= fuzzMax
		s.checkOutcome(t, w, want, slot.Key, body)
	})
}

package local

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/filestage/filestage/internal/testfile"
	"github.com/filestage/filestage/providers"
	"github.com/filestage/filestage/spool"
)

// object is what the store holds under key: its bytes and file.
type object struct {
	data []byte
	fi   os.FileInfo
}

func (h *harness) object(t *testing.T, key string) object {
	t.Helper()
	p := filepath.Join(h.dataDir, "objects", filepath.FromSlash(key))
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return object{data, fi}
}

// unchanged fails unless key still names the very file o was: same bytes,
// same inode, same modification time.
func (h *harness) unchanged(t *testing.T, key string, o object) {
	t.Helper()
	now := h.object(t, key)
	if !bytes.Equal(now.data, o.data) || !os.SameFile(now.fi, o.fi) || !now.fi.ModTime().Equal(o.fi.ModTime()) || now.fi.Size() != o.fi.Size() {
		t.Errorf("the object under %s changed", key)
	}
}

// countingBody is a request body that counts the bytes read from it.
type countingBody struct {
	r io.Reader
	n int
}

func (c *countingBody) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

func (c *countingBody) Close() error { return nil }

// serveDirect runs the handler on one PUT without a network in between,
// so that what the handler read of the body is known.
func (h *harness) serveDirect(s providers.Slot, body []byte) (*httptest.ResponseRecorder, int) {
	u, _ := url.Parse(s.URL)
	b := &countingBody{r: bytes.NewReader(body)}
	r := httptest.NewRequestWithContext(context.Background(), s.Method, u.RequestURI(), nil)
	r.Body, r.ContentLength = b, int64(len(body))
	for k, v := range s.Headers {
		r.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	h.p.ServeHTTP(w, r)
	return w, b.n
}

func errorCode(t *testing.T, body []byte) string {
	t.Helper()
	var e struct {
		Error struct{ Code, Message string }
	}
	if err := json.Unmarshal(body, &e); err != nil {
		t.Fatalf("error body %q: %v", body, err)
	}
	return e.Error.Code
}

// TestStoredObjectsAreNeverReplaced: once a key is stored, no PUT to it is
// accepted, whichever validly signed URL it comes through and whatever
// bytes it carries; it is refused before its body is read, and the object
// stays the very same file.
func TestStoredObjectsAreNeverReplaced(t *testing.T) {
	body := testfile.Random(100_000)
	// forged has the same length as body but other bytes, sent with
	// body's Content-MD5, as a client lying about its bytes would.
	forged := testfile.Random(len(body))
	tests := []struct {
		name string
		// url picks the URL of the second PUT: the one the object was
		// uploaded through, or another issued before that upload.
		url  func(used, issuedBefore, anySize providers.Slot) providers.Slot
		send []byte
	}{
		{"used URL replayed with the same bytes", func(used, _, _ providers.Slot) providers.Slot { return used }, body},
		{"used URL replayed with forged bytes", func(used, _, _ providers.Slot) providers.Slot { return used }, forged},
		{"unused URL issued before the upload, same bytes", func(_, before, _ providers.Slot) providers.Slot { return before }, body},
		{"unused URL issued before the upload, forged bytes", func(_, before, _ providers.Slot) providers.Slot { return before }, forged},
		{"unused URL for any size, longer forged bytes", func(_, _, any providers.Slot) providers.Slot { return any }, append(bytes.Clone(forged), 1, 2, 3)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, 1<<20)
			used, before, anySize := h.slot(t, body, int64(len(body))), h.slot(t, body, int64(len(body))), h.slot(t, body, -1)
			if before.URL == "" || anySize.URL == "" {
				t.Fatal("no URL issued before the upload")
			}
			if resp := put(t, used.Method, used.URL, used.Headers, body); resp.StatusCode != http.StatusOK {
				t.Fatalf("first PUT: %s", resp.Status)
			}
			stored := h.object(t, used.Key)

			w, read := h.serveDirect(tt.url(used, before, anySize), tt.send)
			if w.Code != http.StatusConflict || errorCode(t, w.Body.Bytes()) != "ObjectAlreadyExists" {
				t.Errorf("%d %s, want 409 ObjectAlreadyExists", w.Code, w.Body)
			}
			if read != 0 {
				t.Errorf("read %d bytes of a PUT to a stored key", read)
			}
			// And through a network, as a client sees it.
			s := tt.url(used, before, anySize)
			if resp := put(t, s.Method, s.URL, s.Headers, tt.send); resp.StatusCode != http.StatusConflict {
				t.Errorf("over HTTP: %s, want 409", resp.Status)
			}
			h.unchanged(t, used.Key, stored)
			h.tmpEmpty(t)
		})
	}
}

// TestConcurrentPutsOneWins: of PUTs racing to one fresh URL (a replay
// racing the first upload), exactly one is stored; the others are refused,
// and the object is the winner's bytes, never a mix.
func TestConcurrentPutsOneWins(t *testing.T) {
	body := testfile.Random(1 << 20)
	tests := []struct {
		name string
		// forged says which PUTs send other bytes under body's MD5.
		forged func(i int) bool
	}{
		{"same bytes", func(int) bool { return false }},
		{"some with forged bytes", func(i int) bool { return i%2 == 1 }},
	}
	const n = 8
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, 2<<20)
			s := h.slot(t, body, int64(len(body)))
			bodies := make([][]byte, n)
			for i := range bodies {
				bodies[i] = body
				if tt.forged(i) {
					bodies[i] = testfile.Random(len(body))
				}
			}
			status := testfile.PutAtOnce(t, s.Method, s.URL, s.Headers, bodies)
			won := 0
			for i, st := range status {
				switch {
				case st == http.StatusOK && !tt.forged(i):
					won++
				case st == http.StatusConflict:
				case st == http.StatusBadRequest && tt.forged(i):
				default:
					t.Errorf("PUT %d (forged %v): status %d", i, tt.forged(i), st)
				}
			}
			if won != 1 {
				t.Errorf("%d PUTs stored, want exactly 1 (statuses %v)", won, status)
			}
			if got, ok := h.stored(s.Key); !ok || !bytes.Equal(got, body) {
				t.Error("the object is not the bytes sent")
			}
			h.tmpEmpty(t)
		})
	}
}

// TestRequestUploadForStoredBytes: a slot for bytes the store holds is
// existing and carries no URL to upload to, however the bytes got there.
func TestRequestUploadForStoredBytes(t *testing.T) {
	body := testfile.Random(10_000)
	req := providers.UploadRequest{ToolkitSlug: "gmail", ToolSlug: "GMAIL_SEND_EMAIL", Filename: "Report.PDF", Mimetype: "application/pdf", MD5: md5.Sum(body), Size: int64(len(body))}
	tests := []struct {
		name  string
		store func(t *testing.T, h *harness)
	}{
		{"through the signed URL", func(t *testing.T, h *harness) {
			s := h.slot(t, body, int64(len(body)))
			if resp := put(t, s.Method, s.URL, s.Headers, body); resp.StatusCode != http.StatusOK {
				t.Fatalf("PUT: %s", resp.Status)
			}
		}},
		{"staged", func(t *testing.T, h *harness) {
			if _, err := h.p.Store(context.Background(), req, plainBody(body)); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, 1<<20)
			tt.store(t, h)
			for _, size := range []int64{int64(len(body)), -1} {
				req.Size = size
				s, err := h.p.RequestUpload(context.Background(), req)
				if err != nil {
					t.Fatal(err)
				}
				if s.Type != providers.SlotExisting || s.Key != providers.ContentKey(req) || s.ID == "" || s.StorageBackend != Name {
					t.Errorf("size %d: slot %+v, want existing", size, s)
				}
				if s.URL != "" || s.Method != "" || s.Headers == nil || len(s.Headers) != 0 || !s.ExpiresAt.IsZero() {
					t.Errorf("size %d: an existing slot carries URL %q, method %q, headers %v, expiry %v", size, s.URL, s.Method, s.Headers, s.ExpiresAt)
				}
			}
		})
	}
}

func plainBody(b []byte) providers.Body {
	return providers.Body{Data: bytes.NewReader(b), Size: int64(len(b)), MD5: md5.Sum(b)}
}

// racingTemp is a spooled body whose key gets stored by someone else just
// before it is kept.
type racingTemp struct {
	*spool.File
	before func()
}

func (r racingTemp) Keep(path string) error {
	r.before()
	return r.File.Keep(path)
}

// racingReader stores the key by someone else on its first read.
type racingReader struct {
	r      io.ReaderAt
	before func()
	once   sync.Once
}

func (r *racingReader) ReadAt(p []byte, off int64) (int, error) {
	r.once.Do(r.before)
	return r.r.ReadAt(p, off)
}

// TestStoreOfStoredBytes is the stage path for bytes the store holds,
// found before storing or only as the bytes are linked into place (another
// upload of them won the race): the slot is existing, the object is left as
// it was, and no temporary file remains.
func TestStoreOfStoredBytes(t *testing.T) {
	body := testfile.Random(300_000)
	req := providers.UploadRequest{ToolkitSlug: "gmail", ToolSlug: "GMAIL_SEND_EMAIL", Filename: "a.bin", Mimetype: "application/octet-stream", MD5: md5.Sum(body), Size: int64(len(body))}
	tests := []struct {
		name   string
		racing bool // stored during Store, rather than before it
		// body is what Store is given; closing it afterwards, as the
		// stage tool does with its spool file, may remove nothing else.
		body func(t *testing.T, spoolDir string, storeFirst func()) (providers.Body, io.Closer)
	}{
		{"spooled body", false, func(t *testing.T, dir string, _ func()) (providers.Body, io.Closer) {
			sp := spoolOf(t, body, dir)
			return providers.Body{Data: sp, Size: sp.Size, MD5: sp.MD5, Temp: sp}, sp
		}},
		{"plain body", false, func(_ *testing.T, _ string, _ func()) (providers.Body, io.Closer) {
			return plainBody(body), io.NopCloser(nil)
		}},
		{"spooled body, stored as it is kept", true, func(t *testing.T, dir string, storeFirst func()) (providers.Body, io.Closer) {
			sp := spoolOf(t, body, dir)
			return providers.Body{Data: sp, Size: sp.Size, MD5: sp.MD5, Temp: racingTemp{sp, storeFirst}}, sp
		}},
		{"plain body, stored as it is read", true, func(_ *testing.T, _ string, storeFirst func()) (providers.Body, io.Closer) {
			b := plainBody(body)
			b.Data = &racingReader{r: b.Data, before: storeFirst}
			return b, io.NopCloser(nil)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, 1<<20)
			var first object
			key := providers.ContentKey(req)
			storeFirst := func() {
				s, err := h.p.RequestUpload(context.Background(), req)
				if err != nil {
					t.Fatal(err)
				}
				if w, _ := h.serveDirect(s, body); w.Code != http.StatusOK {
					t.Fatalf("first PUT: %d %s", w.Code, w.Body)
				}
				first = h.object(t, key)
			}
			if !tt.racing {
				storeFirst()
			}
			spoolDir := t.TempDir()
			b, closer := tt.body(t, spoolDir, storeFirst)
			s, err := h.p.Store(context.Background(), req, b)
			if err != nil {
				t.Fatal(err)
			}
			if err := closer.Close(); err != nil {
				t.Error(err)
			}
			if first.fi == nil {
				t.Fatal("the race did not happen")
			}
			if s.Type != providers.SlotExisting || s.Key != key || s.URL != "" {
				t.Errorf("slot %+v, want existing without a URL", s)
			}
			h.unchanged(t, key, first)
			if left, _ := os.ReadDir(spoolDir); len(left) != 0 {
				t.Errorf("spool file left: %s", left[0].Name())
			}
			h.tmpEmpty(t)
		})
	}
}

func spoolOf(t *testing.T, b []byte, dir string) *spool.File {
	t.Helper()
	sp, err := spool.Write(bytes.NewReader(b), dir, int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	return sp
}

// TestStoreRefusesABodyOfOtherBytes: the key is the request's MD5, so a
// body hashed otherwise is not stored under it.
func TestStoreRefusesABodyOfOtherBytes(t *testing.T) {
	h := newHarness(t, 1<<20)
	body := testfile.Random(1000)
	req := providers.UploadRequest{ToolkitSlug: "gmail", ToolSlug: "GMAIL_SEND_EMAIL", Filename: "a.bin", MD5: md5.Sum(body), Size: 1000}
	if _, err := h.p.Store(context.Background(), req, plainBody(testfile.Random(1000))); err == nil {
		t.Fatal("stored")
	}
	if _, ok := h.stored(providers.ContentKey(req)); ok {
		t.Error("stored")
	}
	h.tmpEmpty(t)
}

package local

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/base64"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/filestage/filestage/internal/testfile"
	"github.com/filestage/filestage/internal/testhttp"
	"github.com/filestage/filestage/providers"
	"github.com/filestage/filestage/spool"
)

type harness struct {
	p       *Provider
	srv     *httptest.Server
	dataDir string
	clock   time.Time
	// served gets a value each time the handler returns.
	served chan struct{}
}

// newHarness serves a provider's upload handler on loopback, with a clock
// the test moves.
func newHarness(t *testing.T, maxBytes int64) *harness {
	t.Helper()
	h := &harness{dataDir: t.TempDir(), clock: time.Unix(1_800_000_000, 0), served: make(chan struct{}, 64)}
	mux := http.NewServeMux()
	h.srv = httptest.NewServer(mux)
	t.Cleanup(h.srv.Close)
	p, err := New(providers.Settings{DataDir: h.dataDir, PublicURL: h.srv.URL, MaxBytes: maxBytes})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	p.setClock(func() time.Time { return h.clock })
	mux.Handle(p.Pattern(), http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			select {
			case h.served <- struct{}{}:
			default:
			}
		}()
		p.ServeHTTP(w, r)
	}))
	h.p = p
	return h
}

func (h *harness) slot(t *testing.T, body []byte, size int64) providers.Slot {
	t.Helper()
	s, err := h.p.RequestUpload(context.Background(), providers.UploadRequest{
		ToolkitSlug: "gmail", ToolSlug: "GMAIL_SEND_EMAIL", Filename: "Report.PDF", Mimetype: "application/pdf", MD5: md5.Sum(body), Size: size,
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func put(t *testing.T, method, rawURL string, headers map[string]string, body []byte) *http.Response {
	t.Helper()
	resp, _ := testhttp.Do(t, method, rawURL, headers, body)
	return resp
}

func (h *harness) stored(key string) ([]byte, bool) {
	b, err := os.ReadFile(filepath.Join(h.dataDir, "objects", filepath.FromSlash(key)))
	return b, err == nil
}

func (h *harness) tmpEmpty(t *testing.T) {
	t.Helper()
	entries, _ := os.ReadDir(filepath.Join(h.dataDir, "tmp"))
	for _, e := range entries {
		t.Errorf("temp file left behind: %s", e.Name())
	}
}

func TestUploadThroughSignedURL(t *testing.T) {
	h := newHarness(t, 1<<20)
	body := testfile.Random(100_000)
	s := h.slot(t, body, int64(len(body)))
	if s.Type != providers.SlotNew || s.Method != http.MethodPut || s.StorageBackend != "local" {
		t.Fatalf("slot %+v", s)
	}
	if want := "gmail/GMAIL_SEND_EMAIL/"; !strings.HasPrefix(s.Key, want) || !strings.HasSuffix(s.Key, ".pdf") {
		t.Errorf("key %q", s.Key)
	}
	if !s.ExpiresAt.Equal(h.clock.Add(URLTTL)) {
		t.Errorf("expires %v", s.ExpiresAt)
	}
	if resp := put(t, s.Method, s.URL, s.Headers, body); resp.StatusCode != http.StatusOK {
		t.Fatalf("PUT: %s", resp.Status)
	}
	if got, ok := h.stored(s.Key); !ok || !bytes.Equal(got, body) {
		t.Fatal("object not stored as sent")
	}
	if again := h.slot(t, body, int64(len(body))); again.Type != providers.SlotExisting || again.Key != s.Key {
		t.Errorf("second request: %+v, want existing", again)
	}
	h.tmpEmpty(t)
}

// TestSignedURLRefusals: every way a PUT can differ from what was signed is
// refused, and nothing is stored.
func TestSignedURLRefusals(t *testing.T) {
	body := testfile.Random(50_000)
	other := testfile.Random(50_000)
	otherMD5 := md5.Sum(other)
	tests := []struct {
		name   string
		change func(h *harness, method, rawURL *string, headers map[string]string, body *[]byte)
		status int
	}{
		{"tampered signature", func(h *harness, _, u *string, _ map[string]string, _ *[]byte) {
			*u = setQuery(*u, "signature", "AAAA"+query(*u, "signature")[4:])
		}, http.StatusForbidden},
		{"missing signature", func(h *harness, _, u *string, _ map[string]string, _ *[]byte) { *u = setQuery(*u, "signature", "") }, http.StatusForbidden},
		{"extended expiry", func(h *harness, _, u *string, _ map[string]string, _ *[]byte) {
			*u = setQuery(*u, "expires", "9999999999")
		}, http.StatusForbidden},
		{"other key", func(h *harness, _, u *string, _ map[string]string, _ *[]byte) {
			*u = strings.Replace(*u, "GMAIL_SEND_EMAIL", "SLACK_UPLOAD_FILE", 1)
		}, http.StatusForbidden},
		{"expired", func(h *harness, _, _ *string, _ map[string]string, _ *[]byte) {
			h.clock = h.clock.Add(URLTTL + time.Second)
		}, http.StatusForbidden},
		{"other Content-Type", func(h *harness, _, _ *string, hd map[string]string, _ *[]byte) { hd["Content-Type"] = "text/html" }, http.StatusForbidden},
		{"no Content-Type", func(h *harness, _, _ *string, hd map[string]string, _ *[]byte) { delete(hd, "Content-Type") }, http.StatusForbidden},
		{"other Content-MD5", func(h *harness, _, _ *string, hd map[string]string, b *[]byte) {
			hd["Content-MD5"] = base64.StdEncoding.EncodeToString(otherMD5[:])
			*b = other
		}, http.StatusForbidden},
		{"no Content-MD5", func(h *harness, _, _ *string, hd map[string]string, _ *[]byte) { delete(hd, "Content-MD5") }, http.StatusForbidden},
		{"bytes that do not match the MD5", func(h *harness, _, _ *string, _ map[string]string, b *[]byte) { *b = other }, http.StatusBadRequest},
		{"one byte flipped", func(h *harness, _, _ *string, _ map[string]string, b *[]byte) {
			c := bytes.Clone(*b)
			c[len(c)/2] ^= 1
			*b = c
		}, http.StatusBadRequest},
		{"shorter than signed size", func(h *harness, _, _ *string, _ map[string]string, b *[]byte) { *b = (*b)[:len(*b)-1] }, http.StatusBadRequest},
		{"other size in URL", func(h *harness, _, u *string, _ map[string]string, _ *[]byte) { *u = setQuery(*u, "size", "1") }, http.StatusForbidden},
		{"key the store cannot hold", func(h *harness, _, u *string, _ map[string]string, _ *[]byte) {
			*u = strings.Replace(*u, "GMAIL_SEND_EMAIL", "GMAIL%0A..%2FSEND", 1)
		}, http.StatusForbidden},
		{"meta changed", func(h *harness, _, u *string, _ map[string]string, _ *[]byte) {
			m := []byte(query(*u, "meta"))
			m[len(m)/2] ^= 1
			*u = setQuery(*u, "meta", string(m))
		}, http.StatusForbidden},
		{"meta removed", func(h *harness, _, u *string, _ map[string]string, _ *[]byte) { *u = setQuery(*u, "meta", "") }, http.StatusForbidden},
		{"meta of another upload", func(h *harness, _, u *string, _ map[string]string, _ *[]byte) {
			*u = setQuery(*u, "meta", query(h.slot(t, other, int64(len(other))).URL, "meta"))
		}, http.StatusForbidden},
		{"meta signed but not sealed here", func(h *harness, _, u *string, hd map[string]string, _ *[]byte) {
			g := grant{Method: http.MethodPut, Key: strings.TrimPrefix(mustParse(t, *u).Path, "/files/"), ContentType: hd["Content-Type"],
				ContentMD5: hd["Content-MD5"], Size: int64(len(body)), Meta: "bm90LXNlYWxlZC1ieS10aGlzLWluc3RhbGw", Expires: h.clock.Add(time.Minute).Truncate(time.Second)}
			*u = setQuery(setQuery(setQuery(*u, "meta", g.Meta), "expires", strconv.FormatInt(g.Expires.Unix(), 10)), "signature", h.p.signer.sign(g))
		}, http.StatusForbidden},
		// An upload URL is no download URL.
		{"GET", func(h *harness, m, _ *string, _ map[string]string, _ *[]byte) { *m = http.MethodGet }, http.StatusForbidden},
		{"POST", func(h *harness, m, _ *string, _ map[string]string, _ *[]byte) { *m = http.MethodPost }, http.StatusMethodNotAllowed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, 1<<20)
			s := h.slot(t, body, int64(len(body)))
			method, u, send := s.Method, s.URL, body
			headers := map[string]string{}
			for k, v := range s.Headers {
				headers[k] = v
			}
			tt.change(h, &method, &u, headers, &send)
			if resp := put(t, method, u, headers, send); resp.StatusCode != tt.status {
				t.Errorf("status %d, want %d", resp.StatusCode, tt.status)
			}
			entries, _ := os.ReadDir(filepath.Join(h.dataDir, "objects"))
			if len(entries) != 0 {
				t.Error("something was stored")
			}
			h.tmpEmpty(t)
		})
	}
}

// TestUploadCarriesNameAndOwner: a presign writes nothing; its URL carries
// the name and owner, sealed (the owner never shows), and the PUT's entry
// has them.
func TestUploadCarriesNameAndOwner(t *testing.T) {
	h := newHarness(t, 1<<20)
	body := []byte("a file with a name")
	const name, owner = "Ünïcode « report ».pdf", "oauth:alice@example.com"
	s, err := h.p.RequestUpload(context.Background(), providers.UploadRequest{ToolkitSlug: "gmail", ToolSlug: "GMAIL_SEND_EMAIL",
		Filename: name, Mimetype: "application/pdf", MD5: md5.Sum(body), Size: int64(len(body)), Owner: owner, Namespace: "p-1"})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(s.URL, "alice") {
		t.Errorf("the upload URL shows the owner: %s", s.URL)
	}
	if _, _, found, err := h.p.store.index.lookup(context.Background(), s.Key); err != nil || found {
		t.Fatalf("the presign wrote an entry (%v, %v)", found, err)
	}
	if resp := put(t, s.Method, s.URL, s.Headers, body); resp.StatusCode != http.StatusOK {
		t.Fatalf("PUT: %s", resp.Status)
	}
	e, ok, err := h.p.Object(context.Background(), s.Key)
	if err != nil || !ok || e.Name != name || e.Owner != owner || e.Namespace != "p-1" || e.Mimetype != "application/pdf" {
		t.Errorf("entry %+v (%v, %v)", e, ok, err)
	}
	for _, tt := range []struct{ key, sealed string }{{s.Key + "x", query(s.URL, "meta")}, {s.Key, ""}, {s.Key, "@@"}, {s.Key, "AAAA"}} {
		if _, _, ok := h.p.signer.open(tt.key, tt.sealed); ok {
			t.Errorf("open(%q, %q) read it", tt.key, tt.sealed)
		}
	}
}

func TestUploadOverTheCapIsRefused(t *testing.T) {
	h := newHarness(t, 1000)
	body := testfile.Random(1001)
	s := h.slot(t, body, -1)
	if resp := put(t, s.Method, s.URL, s.Headers, body); resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("status %d, want 413", resp.StatusCode)
	}
	if _, ok := h.stored(s.Key); ok {
		t.Error("stored")
	}
	h.tmpEmpty(t)
}

// TestUploadOverTheSpoolBudget: uploads through signed URLs take their
// spool room from the server's budget; one that does not fit is refused
// with 503 SlowDown, storing and leaving nothing, and one that fits works.
func TestUploadOverTheSpoolBudget(t *testing.T) {
	h := newHarness(t, 64<<20)
	h.p.store.budget = spool.NewBudget(2 << 20)
	big := testfile.Random(3 << 20)
	s := h.slot(t, big, int64(len(big)))
	resp := put(t, s.Method, s.URL, s.Headers, big)
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Errorf("over the budget: status %d, want 503 with Retry-After", resp.StatusCode)
	}
	if _, ok := h.stored(s.Key); ok {
		t.Error("stored")
	}
	h.tmpEmpty(t)
	small := testfile.Random(1 << 20)
	s = h.slot(t, small, int64(len(small)))
	if resp := put(t, s.Method, s.URL, s.Headers, small); resp.StatusCode != http.StatusOK {
		t.Errorf("within the budget: status %d", resp.StatusCode)
	}
	if n := h.p.store.budget.InUse(); n != 0 {
		t.Errorf("%d bytes still reserved", n)
	}
}

// TestCutConnectionStoresNothing sends half the body and hangs up.
func TestCutConnectionStoresNothing(t *testing.T) {
	h := newHarness(t, 1<<20)
	body := testfile.Random(200_000)
	s := h.slot(t, body, int64(len(body)))
	pr, pw := io.Pipe()
	req, _ := http.NewRequest(s.Method, s.URL, pr)
	req.ContentLength = int64(len(body))
	for k, v := range s.Headers {
		req.Header.Set(k, v)
	}
	go func() {
		pw.Write(body[:len(body)/2])
		pw.CloseWithError(io.ErrUnexpectedEOF)
	}()
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Fatal("a cut upload was accepted")
		}
	}
	// The client may see the cut before the handler has even begun.
	select {
	case <-h.served:
	case <-time.After(10 * time.Second):
		t.Fatal("the handler did not return")
	}
	if _, ok := h.stored(s.Key); ok {
		t.Error("half an upload was stored under the key")
	}
	h.tmpEmpty(t)
}

func TestDirectUploadVerifiesTheBytes(t *testing.T) {
	h := newHarness(t, 1<<20)
	body := testfile.Random(10_000)
	s := h.slot(t, body, int64(len(body)))
	bad := providers.Body{Data: bytes.NewReader(testfile.Random(10_000)), Size: 10_000, MD5: md5.Sum(body)}
	if err := h.p.Upload(context.Background(), s, bad); err == nil {
		t.Fatal("bytes with another MD5 were accepted")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := h.p.Upload(ctx, s, providers.Body{Data: bytes.NewReader(body), Size: 10_000, MD5: md5.Sum(body)}); err == nil {
		t.Fatal("a cancelled upload succeeded")
	}
	if _, ok := h.stored(s.Key); ok {
		t.Fatal("stored")
	}
	if err := h.p.Upload(context.Background(), s, providers.Body{Data: bytes.NewReader(body), Size: 10_000, MD5: md5.Sum(body)}); err != nil {
		t.Fatal(err)
	}
	if got, ok := h.stored(s.Key); !ok || !bytes.Equal(got, body) {
		t.Fatal("not stored")
	}
	h.tmpEmpty(t)
}

// TestSigningKeyPersists: a URL issued before a restart still works after it,
// and the key file is private.
func TestSigningKeyPersists(t *testing.T) {
	h := newHarness(t, 1<<20)
	body := testfile.Random(1000)
	s := h.slot(t, body, -1)
	p2, err := New(providers.Settings{DataDir: h.dataDir, PublicURL: h.srv.URL, MaxBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	if g := (grant{Method: http.MethodPut, Key: "a/B_C/k", Size: -1, Expires: h.clock}); p2.signer.sign(g) != h.p.signer.sign(g) {
		t.Fatal("a second start made a new signing key")
	}
	fi, err := os.Stat(filepath.Join(h.dataDir, secretFile))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %v (err %v), want 0600", fi.Mode(), err)
	}
	if resp := put(t, s.Method, s.URL, s.Headers, body); resp.StatusCode != http.StatusOK {
		t.Errorf("PUT: %s", resp.Status)
	}
}

func TestKeysStayInTheStore(t *testing.T) {
	st, err := openStore(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"../x", "a/../../x", "/etc/passwd", "a//b", "", "a/.hidden", "a/b\x00c", "a\\..\\b", strings.Repeat("a/", 600) + "a"} {
		if _, err := st.path(key); err == nil {
			t.Errorf("key %q accepted", key)
		}
	}
	for _, key := range []string{"gmail/GMAIL_SEND_EMAIL/5d41402abc4b2a76b9719d911017c592.pdf", "a/b-c_d.e"} {
		if _, err := st.path(key); err != nil {
			t.Errorf("key %q refused: %v", key, err)
		}
	}
}

func TestObjectKey(t *testing.T) {
	sum := md5.Sum([]byte("x"))
	tests := map[string]string{"a.PNG": ".png", "noext": "", "x.tar.gz": ".gz", "weird.p@g": "", "long." + strings.Repeat("x", 17): ""}
	for name, ext := range tests {
		k := providers.ContentKey(providers.UploadRequest{ToolkitSlug: "t", ToolSlug: "T_X", Filename: name, MD5: sum})
		if want := "t/T_X/9dd4e461268c8034f5c8564e155c67a6" + ext; k != want {
			t.Errorf("%q: key %q, want %q", name, k, want)
		}
	}
}

func query(rawURL, k string) string {
	u, _ := url.Parse(rawURL)
	return u.Query().Get(k)
}

func setQuery(rawURL, k, v string) string {
	u, _ := url.Parse(rawURL)
	q := u.Query()
	q.Set(k, v)
	u.RawQuery = q.Encode()
	return u.String()
}

func mustParse(t *testing.T, rawURL string) *url.URL {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

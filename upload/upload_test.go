package upload

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/base64"
	"errors"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/filestage/filestage/internal/testfile"
	"github.com/filestage/filestage/spool"
)

type fixture struct {
	m      *Manager
	srv    *httptest.Server
	budget *spool.Budget
	mu     sync.Mutex
	staged []Finished
	data   [][]byte
}

func newFixture(t *testing.T, ttl time.Duration) *fixture {
	t.Helper()
	f := &fixture{budget: spool.NewBudget(64 << 20)}
	f.srv = httptest.NewUnstartedServer(nil)
	var err error
	f.m, err = New(Options{Dir: t.TempDir() + "/uploads", PublicURL: "http://" + f.srv.Listener.Addr().String(), TTL: ttl, MaxBytes: 8 << 20, Spool: f.budget,
		Stage: func(ctx context.Context, fin Finished) (any, error) {
			b, err := io.ReadAll(io.NewSectionReader(fin.File, 0, fin.File.Size))
			f.mu.Lock()
			f.staged, f.data = append(f.staged, fin), append(f.data, b)
			f.mu.Unlock()
			return map[string]any{"s3key": "k"}, err
		}})
	if err != nil {
		t.Fatal(err)
	}
	f.srv.Config.Handler = f.m.Handler()
	f.srv.Start()
	t.Cleanup(func() { f.srv.Close(); f.m.Close() })
	return f
}

func meta(kv ...string) string {
	var parts []string
	for i := 0; i < len(kv); i += 2 {
		parts = append(parts, kv[i]+" "+base64.StdEncoding.EncodeToString([]byte(kv[i+1])))
	}
	return strings.Join(parts, ",")
}

// tus sends one tus request.
func (f *fixture) tus(t *testing.T, method, path string, headers map[string]string, body io.Reader) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(method, f.srv.URL+path, body)
	req.Header.Set("Tus-Resumable", "1.0.0")
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	resp.Body.Close()
	return resp
}

func (f *fixture) create(t *testing.T, id string, size int) *http.Response {
	return f.tus(t, http.MethodPost, PathTus, map[string]string{"Upload-Length": strconv.Itoa(size), "Upload-Metadata": meta("link", id, "filename", "report.pdf")}, nil)
}

func (f *fixture) patch(t *testing.T, id string, offset int, body io.Reader) *http.Response {
	return f.tus(t, http.MethodPatch, PathTus+id, map[string]string{"Upload-Offset": strconv.Itoa(offset), "Content-Type": "application/offset+octet-stream"}, body)
}

// cutReader sends n bytes, then fails, as a dropped connection does.
type cutReader struct {
	r io.Reader
	n int
}

func (c *cutReader) Read(p []byte) (int, error) {
	if c.n <= 0 {
		return 0, errors.New("connection lost")
	}
	n, err := c.r.Read(p[:min(len(p), c.n)])
	c.n -= n
	return n, err
}

// TestResumedUpload: a file sent in two goes, the first cut off mid-way,
// arrives whole: staged once, with the MD5 of all of its bytes, hashed as
// they arrived; the spool room it took is given back.
func TestResumedUpload(t *testing.T) {
	f := newFixture(t, time.Minute)
	st, _ := f.m.Create(Request{Owner: "alice", ToolSlug: "GMAIL_SEND_EMAIL", Accept: "application/pdf"})
	body := append([]byte("%PDF-1.7\n"), testfile.Random(3<<20)...)
	if resp := f.create(t, st.ID, len(body)); resp.StatusCode != http.StatusCreated || !strings.HasSuffix(resp.Header.Get("Location"), PathTus+st.ID) {
		t.Fatalf("create: %d, Location %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	req, _ := http.NewRequest(http.MethodPatch, f.srv.URL+PathTus+st.ID, &cutReader{r: bytes.NewReader(body), n: 1 << 20})
	req.Header.Set("Tus-Resumable", "1.0.0")
	req.Header.Set("Upload-Offset", "0")
	req.Header.Set("Content-Type", "application/offset+octet-stream")
	req.ContentLength = int64(len(body))
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
	}
	var offset int
	for range 50 { // the server saves what arrived once it sees the cut
		head := f.tus(t, http.MethodHead, PathTus+st.ID, nil, nil)
		offset, _ = strconv.Atoi(head.Header.Get("Upload-Offset"))
		if offset > 0 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if offset <= 0 || offset > 1<<20 {
		t.Fatalf("offset after the cut: %d", offset)
	}
	if s, _ := f.m.Status("alice", st.ID); s.State != Receiving || s.Received != int64(offset) || s.Total != int64(len(body)) {
		t.Errorf("status mid-way: %+v", s)
	}
	if resp := f.patch(t, st.ID, offset, bytes.NewReader(body[offset:])); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("the rest: %d", resp.StatusCode)
	}
	s, _ := f.m.Status("alice", st.ID)
	if s.State != Staged || len(f.staged) != 1 {
		t.Fatalf("status %+v, staged %d times", s, len(f.staged))
	}
	got := f.staged[0]
	if got.File.MD5 != md5.Sum(body) || got.File.Size != int64(len(body)) || got.Type != "application/pdf" || got.Name != "report.pdf" || !bytes.Equal(f.data[0], body) {
		t.Errorf("staged %d bytes of %s named %q, md5 ok %v", got.File.Size, got.Type, got.Name, got.File.MD5 == md5.Sum(body))
	}
	if f.budget.InUse() != 0 {
		t.Errorf("%d bytes of spool room still held", f.budget.InUse())
	}
	// The last answer lost, the client asks again: all of it arrived.
	if head := f.tus(t, http.MethodHead, PathTus+st.ID, nil, nil); head.StatusCode != http.StatusOK || head.Header.Get("Upload-Offset") != strconv.Itoa(len(body)) {
		t.Errorf("HEAD of the stored upload: %d, offset %q", head.StatusCode, head.Header.Get("Upload-Offset"))
	}
	if resp := f.patch(t, st.ID, len(body), bytes.NewReader(nil)); resp.StatusCode != http.StatusNoContent {
		t.Errorf("the last PATCH again: %d", resp.StatusCode)
	}
	if resp := f.patch(t, st.ID, 0, bytes.NewReader(body)); resp.StatusCode != http.StatusConflict || len(f.staged) != 1 {
		t.Errorf("the whole file again: %d, staged %d times", resp.StatusCode, len(f.staged))
	}
	// Used: another go is refused, and the page says so.
	if resp := f.create(t, st.ID, 10); resp.StatusCode != http.StatusGone {
		t.Errorf("a second upload through a used link: %d", resp.StatusCode)
	}
	if resp := f.tus(t, http.MethodGet, PathPrefix+st.ID, nil, nil); resp.StatusCode != http.StatusGone {
		t.Errorf("the page of a used link: %d", resp.StatusCode)
	}
	if _, ok := f.m.Status("bob", st.ID); ok {
		t.Error("another principal read the upload's status")
	}
}

// TestRefusals: each way an upload is refused leaves nothing staged and no
// spool room held.
func TestRefusals(t *testing.T) {
	f := newFixture(t, time.Minute)
	png := testfile.PNG(64 << 10)
	tests := []struct {
		name   string
		req    Request
		size   int
		body   []byte
		create int
		patch  int
	}{
		{"too large for the link", Request{MaxBytes: 1000}, 2000, nil, http.StatusRequestEntityTooLarge, 0},
		{"too large for the server", Request{}, 9 << 20, nil, http.StatusRequestEntityTooLarge, 0},
		{"wrong type, judged from the bytes", Request{Accept: "application/pdf"}, len(png), png, http.StatusCreated, http.StatusUnsupportedMediaType},
		{"type family", Request{Accept: "image/*"}, len(png), png, http.StatusCreated, http.StatusNoContent},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.req.Owner = "alice"
			st, _ := f.m.Create(tt.req)
			if resp := f.create(t, st.ID, tt.size); resp.StatusCode != tt.create {
				t.Fatalf("create: %d, want %d", resp.StatusCode, tt.create)
			}
			if tt.body != nil {
				if resp := f.patch(t, st.ID, 0, bytes.NewReader(tt.body)); resp.StatusCode != tt.patch {
					t.Errorf("patch: %d, want %d", resp.StatusCode, tt.patch)
				}
			}
		})
	}
	if len(f.staged) != 1 || f.staged[0].Type != "image/png" {
		t.Errorf("staged: %+v", f.staged)
	}
	if resp := f.create(t, "no-such-link", 10); resp.StatusCode != http.StatusNotFound {
		t.Errorf("an unknown link: %d", resp.StatusCode)
	}
}

// TestExpiry: past its time a link refuses uploads, its page says so, what
// it received is removed, and a waiter hears it.
func TestExpiry(t *testing.T) {
	f := newFixture(t, time.Minute)
	st, _ := f.m.Create(Request{Owner: "alice"})
	f.create(t, st.ID, 1<<20)
	f.patch(t, st.ID, 0, bytes.NewReader(testfile.Random(1000)))
	done := make(chan Status, 1)
	go func() {
		s, _ := f.m.Wait(context.Background(), "alice", st.ID, time.Now().Add(10*time.Second), nil)
		done <- s
	}()
	f.m.expire(time.Now().Add(2 * time.Minute))
	if s := <-done; s.State != Expired {
		t.Errorf("the waiter heard %s", s.State)
	}
	if resp := f.tus(t, http.MethodGet, PathPrefix+st.ID, nil, nil); resp.StatusCode != http.StatusGone {
		t.Errorf("the page of an expired link: %d", resp.StatusCode)
	}
	if resp := f.create(t, st.ID, 10); resp.StatusCode != http.StatusGone {
		t.Errorf("an upload through an expired link: %d", resp.StatusCode)
	}
	if f.budget.InUse() != 0 {
		t.Errorf("%d bytes of spool room held by an expired link", f.budget.InUse())
	}
}

// TestPageHeaders: the page keeps to itself.
func TestPageHeaders(t *testing.T) {
	f := newFixture(t, time.Minute)
	st, _ := f.m.Create(Request{Owner: "alice", Message: "<script>alert(1)</script>"})
	resp, err := http.Get(st.URL)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(resp.Header.Get("Content-Security-Policy"), "frame-ancestors 'none'") ||
		resp.Header.Get("Referrer-Policy") != "no-referrer" || strings.Contains(string(b), "<script>alert") {
		t.Errorf("%d %v\n%s", resp.StatusCode, resp.Header, b)
	}
}

// TestTypeRefusalIsFinal: an upload refused for its type is gone: sending
// the same bytes again at the same offset is refused too (the head it
// was judged by is not kept), and the link waits for another file.
func TestTypeRefusalIsFinal(t *testing.T) {
	f := newFixture(t, time.Minute)
	st, _ := f.m.Create(Request{Owner: "alice", Accept: "application/pdf"})
	png := testfile.PNG(64 << 10)
	f.create(t, st.ID, len(png))
	if resp := f.patch(t, st.ID, 0, bytes.NewReader(png)); resp.StatusCode != http.StatusUnsupportedMediaType {
		t.Fatalf("first: %d", resp.StatusCode)
	}
	if resp := f.patch(t, st.ID, 0, bytes.NewReader(png)); resp.StatusCode/100 == 2 {
		t.Fatalf("the same bytes again: %d", resp.StatusCode)
	}
	if s, _ := f.m.Status("alice", st.ID); s.State != Waiting || len(f.staged) != 0 || f.budget.InUse() != 0 {
		t.Errorf("after the refusal: %s, %d staged, %d bytes held", s.State, len(f.staged), f.budget.InUse())
	}
	// Another file through the same link works.
	pdf := append([]byte("%PDF-1.7\n"), testfile.Random(10000)...)
	f.create(t, st.ID, len(pdf))
	if resp := f.patch(t, st.ID, 0, bytes.NewReader(pdf)); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("a PDF after the refusal: %d", resp.StatusCode)
	}
}

// TestActiveUploadOutlivesLink: a link's time does not cut an upload that
// is still arriving.
func TestActiveUploadOutlivesLink(t *testing.T) {
	f := newFixture(t, time.Minute)
	st, _ := f.m.Create(Request{Owner: "alice"})
	f.create(t, st.ID, 20000)
	f.patch(t, st.ID, 0, bytes.NewReader(testfile.Random(10000)))
	f.m.expire(time.Now().Add(61 * time.Second))
	if s, _ := f.m.Status("alice", st.ID); s.State != Receiving {
		t.Fatalf("an active upload after its link's time: %s", s.State)
	}
	f.m.expire(time.Now().Add(time.Minute + activeGrace + time.Second))
	if s, _ := f.m.Status("alice", st.ID); s.State != Expired {
		t.Errorf("an idle upload after its link's time: %s", s.State)
	}
}

// TestOnlyLiveLinksReachTheStore: no request names a file of the upload
// directory, or beyond it, but a live link's upload: IDs that are paths,
// .info names and made-up IDs are all unknown, and nothing is removed.
func TestOnlyLiveLinksReachTheStore(t *testing.T) {
	f := newFixture(t, time.Minute)
	victim := t.TempDir() + "/victim"
	os.WriteFile(victim, []byte("keep me"), 0o600)
	// A planted .info naming the victim, as a stored object could be.
	os.WriteFile(f.m.o.Dir+"/planted.info", []byte(`{"ID":"planted","Size":7,"Storage":{"Path":"`+victim+`"}}`), 0o600)
	st, _ := f.m.Create(Request{Owner: "alice"})
	for _, path := range []string{"planted", "..%2Fplanted", "%2E%2E%2Fuploads%2Fplanted", st.ID + ".info", "x", st.ID} {
		for _, method := range []string{http.MethodHead, http.MethodPatch, http.MethodDelete, http.MethodGet, http.MethodPost} {
			resp := f.tus(t, method, PathTus+path, map[string]string{"Upload-Offset": "0", "Content-Type": "application/offset+octet-stream"}, strings.NewReader("x"))
			if resp.StatusCode/100 == 2 {
				t.Errorf("%s %s: %d", method, path, resp.StatusCode)
			}
		}
	}
	if b, err := os.ReadFile(victim); err != nil || string(b) != "keep me" {
		t.Errorf("the victim file: %q, %v", b, err)
	}
	if resp := f.create(t, st.ID, 0); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("an empty upload: %d", resp.StatusCode)
	}
}

// TestLinkCaps: one principal holds at most MaxLinksPerOwner open links.
func TestLinkCaps(t *testing.T) {
	f := newFixture(t, time.Minute)
	for i := range MaxLinksPerOwner {
		if _, err := f.m.Create(Request{Owner: "alice"}); err != nil {
			t.Fatalf("link %d: %v", i, err)
		}
	}
	if _, err := f.m.Create(Request{Owner: "alice"}); !errors.Is(err, ErrTooManyLinks) {
		t.Errorf("one link too many: %v", err)
	}
	if _, err := f.m.Create(Request{Owner: "bob"}); err != nil {
		t.Errorf("another principal: %v", err)
	}
}

// TestExpiredPageFreesNothingTwice: viewing an expired link's page changes
// nothing; the sweeper still removes what it received and gives its room
// back.
func TestExpiredPageFreesNothingTwice(t *testing.T) {
	f := newFixture(t, time.Minute)
	st, _ := f.m.Create(Request{Owner: "alice"})
	f.create(t, st.ID, 1<<20)
	f.patch(t, st.ID, 0, bytes.NewReader(testfile.Random(2<<10)))
	f.m.mu.Lock()
	f.m.links[st.ID].expires = time.Now().Add(-time.Second)
	f.m.links[st.ID].active = time.Now().Add(-time.Hour)
	f.m.mu.Unlock()
	if resp := f.tus(t, http.MethodGet, PathPrefix+st.ID, nil, nil); resp.StatusCode != http.StatusOK {
		t.Logf("page of a receiving link past its time: %d", resp.StatusCode)
	}
	f.m.expire(time.Now())
	if f.budget.InUse() != 0 {
		t.Errorf("%d bytes still held", f.budget.InUse())
	}
	if _, err := os.Stat(f.m.path(st.ID)); !os.IsNotExist(err) {
		t.Errorf("the partial upload is still there: %v", err)
	}
}

// TestSharedUploadsFolder: processes sharing a data directory (replicas on
// one volume) keep their uploads apart: one starting or stopping leaves
// another's alone, and what a crash left long ago is removed.
func TestSharedUploadsFolder(t *testing.T) {
	root := filepath.Join(t.TempDir(), "uploads")
	open := func() *Manager {
		m, err := New(Options{Dir: root, PublicURL: "http://127.0.0.1:1", TTL: time.Minute, MaxBytes: 1 << 20, Spool: spool.NewBudget(1 << 20),
			Stage: func(context.Context, Finished) (any, error) { return nil, nil }})
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	crashed := filepath.Join(root, "run-crashed")
	if err := os.MkdirAll(crashed, 0o700); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(crashed, "abc"), []byte("half an upload"), 0o600)
	old := time.Now().Add(-25 * time.Hour)
	os.Chtimes(crashed, old, old)

	a := open()
	inProgress := filepath.Join(a.dir, "upload-of-a")
	if err := os.WriteFile(inProgress, []byte("bytes so far"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(crashed); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a folder untouched for 25 hours is still there: %v", err)
	}
	b := open()
	if a.dir == b.dir || filepath.Dir(a.dir) != root || filepath.Dir(b.dir) != root {
		t.Fatalf("folders %s and %s: want two of their own below %s", a.dir, b.dir, root)
	}
	if _, err := os.Stat(inProgress); err != nil {
		t.Errorf("another process starting removed an upload in progress: %v", err)
	}
	b.Close()
	if _, err := os.Stat(b.dir); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a closed manager's folder is still there: %v", err)
	}
	if _, err := os.Stat(inProgress); err != nil {
		t.Errorf("another process stopping removed an upload in progress: %v", err)
	}
	a.Close()
}

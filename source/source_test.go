package source

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestGuardRefusesPrivateAddresses(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	defer srv.Close()
	port := srv.URL[strings.LastIndex(srv.URL, ":")+1:]
	f := newOpener(t, Options{MaxBytes: 1 << 20})
	for _, u := range []string{
		srv.URL + "/a.png",
		"http://localhost:" + port + "/a.png",
		"http://169.254.169.254/latest/meta-data/",
		"http://10.0.0.1/",
		"http://0.0.0.0:" + port + "/",
		"http://[::ffff:127.0.0.1]:" + port + "/",
	} {
		_, err := f.Open(context.Background(), u)
		if !errors.Is(err, ErrRefused) {
			t.Errorf("%s: %v, want refused", u, err)
		}
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("the private server saw %d requests", n)
	}
	if _, err := f.Open(context.Background(), "http://10.1.2.3/"); err == nil || strings.Contains(err.Error(), "10.1.2.3") {
		t.Errorf("the refusal names the resolved address: %v", err)
	}
}

func TestSchemes(t *testing.T) {
	f := newOpener(t, Options{})
	for _, u := range []string{"ftp://example.com/a", "gopher://x/", "javascript:alert(1)", "http:///nohost"} {
		if _, err := f.Open(context.Background(), u); !errors.Is(err, ErrScheme) {
			t.Errorf("%s: %v, want ErrScheme", u, err)
		}
	}
}

func TestOpen(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/redirect":
			http.Redirect(w, r, "/files/final%20name.pdf?x=1", http.StatusFound)
		case "/files/final name.pdf":
			w.Header().Set("Content-Type", "application/pdf")
			io.WriteString(w, "%PDF-1.4 body")
		case "/cd":
			w.Header().Set("Content-Disposition", `attachment; filename="../../secret/..hidden.txt"`)
			io.WriteString(w, "text")
		case "/big":
			w.Header().Set("Content-Length", "2000")
			w.Write(make([]byte, 2000))
		case "/slow":
			w.WriteHeader(200)
			w.(http.Flusher).Flush()
			time.Sleep(3 * time.Second)
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	f := newOpener(t, Options{AllowPrivate: true, MaxBytes: 1000, Timeout: 500 * time.Millisecond})
	ctx := context.Background()

	src, err := f.Open(ctx, srv.URL+"/redirect")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(src.Body)
	src.Body.Close()
	if string(b) != "%PDF-1.4 body" || src.Name != "final name.pdf" || src.ContentType != "application/pdf" || src.Size != 13 {
		t.Errorf("got %q name %q type %q size %d", b, src.Name, src.ContentType, src.Size)
	}

	src, err = f.Open(ctx, srv.URL+"/cd")
	if err != nil {
		t.Fatal(err)
	}
	src.Body.Close()
	if src.Name != "hidden.txt" {
		t.Errorf("Content-Disposition name %q, want hidden.txt", src.Name)
	}

	if _, err := f.Open(ctx, srv.URL+"/big"); !errors.Is(err, ErrTooLarge) {
		t.Errorf("big: %v", err)
	}
	if _, err := f.Open(ctx, srv.URL+"/missing?X-Amz-Signature=secret"); !errors.Is(err, ErrStatus) || !strings.Contains(err.Error(), "404") || strings.Contains(err.Error(), "secret") {
		t.Errorf("missing: %v", err)
	}

	start := time.Now()
	src, err = f.Open(ctx, srv.URL+"/slow")
	if err != nil {
		t.Fatal(err)
	}
	_, err = io.ReadAll(src.Body)
	src.Body.Close()
	if err == nil || time.Since(start) > 2500*time.Millisecond {
		t.Errorf("slow body: err %v after %v; the fetch time limit must cover the body", err, time.Since(start))
	}
}

func newOpener(t *testing.T, o Options) *Opener {
	t.Helper()
	f, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// TestLookupFailureHidesTheResolver: a failed lookup says which name, not
// which DNS server (an address of the server's own network).
func TestLookupFailureHidesTheResolver(t *testing.T) {
	err := classify(&net.DNSError{Err: "no such host", Name: "nosuch.invalid", Server: "10.255.255.53:53", IsNotFound: true}, false)
	var dns *net.DNSError
	if !errors.Is(err, ErrUnreachable) || !errors.As(err, &dns) || strings.Contains(err.Error(), "10.255") || !strings.Contains(err.Error(), "nosuch.invalid: no such host") {
		t.Errorf("got %v", err)
	}
}

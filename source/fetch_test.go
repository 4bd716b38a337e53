package source

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestNoDecompression: what is read is exactly what the server sent, a
// Content-Encoding notwithstanding, and its announced length is checked
// against the cap before anything is read.
func TestNoDecompression(t *testing.T) {
	plain := make([]byte, 8<<20) // 8 MiB of zeros: a gzip bomb
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(plain)
	zw.Close()
	small := []byte("plain text, not encoded\n")

	var mu sync.Mutex
	var asked []string // Accept-Encoding of each request
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		asked = append(asked, r.Header.Get("Accept-Encoding"))
		mu.Unlock()
		body := gz.Bytes()
		switch r.URL.Path {
		case "/when-asked":
			// Encodes only for a client that says it takes gzip.
			if !strings.Contains(r.Header.Get("Accept-Encoding"), "gzip") {
				body = small
				break
			}
			w.Header().Set("Content-Encoding", "gzip")
		case "/regardless":
			w.Header().Set("Content-Encoding", "gzip")
		case "/regardless-big":
			// Announces more than the cap, sends a little, then waits: a
			// client that reads before checking would hang here.
			w.Header().Set("Content-Encoding", "gzip")
			w.Header().Set("Content-Length", strconv.Itoa(len(body)))
			w.Write(body[:100])
			w.(http.Flusher).Flush()
			<-release
			return
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.Write(body)
	}))
	defer srv.Close()
	defer close(release) // before Close, which waits for the handler

	tests := []struct {
		path     string
		maxBytes int64
		want     []byte // nil: ErrTooLarge at Open
	}{
		{"/regardless", 64 << 10, gz.Bytes()},
		{"/when-asked", 64 << 10, small},
		{"/regardless-big", int64(gz.Len()) - 1, nil},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			f := newOpener(t, Options{AllowPrivate: true, MaxBytes: tt.maxBytes, Timeout: 10 * time.Second})
			start := time.Now()
			src, err := f.Open(context.Background(), srv.URL+tt.path)
			if tt.want == nil {
				if !errors.Is(err, ErrTooLarge) {
					t.Fatalf("got %v, want ErrTooLarge", err)
				}
				if d := time.Since(start); d > 5*time.Second {
					t.Errorf("refused after %v: the body was read first", d)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer src.Body.Close()
			got, err := io.ReadAll(io.LimitReader(src.Body, tt.maxBytes+1))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, tt.want) {
				t.Errorf("read %d bytes, want the %d served", len(got), len(tt.want))
			}
			if src.Size != int64(len(tt.want)) {
				t.Errorf("Size %d, want the served Content-Length %d", src.Size, len(tt.want))
			}
		})
	}
	mu.Lock()
	defer mu.Unlock()
	for _, ae := range asked {
		if ae != "identity" {
			t.Errorf("Accept-Encoding %q, want identity", ae)
		}
	}
}

// TestRedirectHeaders: a redirect does not tell the next server where it
// came from (the URL may carry a signature), and one to a URL with
// credentials is refused before it is followed.
func TestRedirectHeaders(t *testing.T) {
	var mu sync.Mutex
	var seen []http.Header
	var hits atomic.Int64
	second := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		mu.Lock()
		seen = append(seen, r.Header.Clone())
		mu.Unlock()
		io.WriteString(w, "ok")
	}))
	defer second.Close()
	secondHost := strings.TrimPrefix(second.URL, "http://")
	first := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/plain":
			w.Header().Set("Location", second.URL+"/file.pdf")
		case "/hop":
			w.Header().Set("Location", "/plain?X-Amz-Signature=hop")
		case "/userinfo":
			w.Header().Set("Location", "http://user:secretpw@"+secondHost+"/file.pdf")
		case "/user":
			w.Header().Set("Location", "http://user@"+secondHost+"/file.pdf")
		}
		w.WriteHeader(http.StatusFound)
	}))
	defer first.Close()
	f := newOpener(t, Options{AllowPrivate: true, MaxBytes: 1 << 20, Timeout: 10 * time.Second})

	for _, p := range []string{"/plain?X-Amz-Signature=secret", "/hop?X-Amz-Signature=secret"} {
		src, err := f.Open(context.Background(), first.URL+p)
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		src.Body.Close()
	}
	mu.Lock()
	for _, h := range seen {
		if ref := h.Get("Referer"); ref != "" {
			t.Errorf("the redirect's target was sent Referer %q", ref)
		}
	}
	mu.Unlock()

	before := hits.Load()
	for _, p := range []string{"/userinfo", "/user"} {
		src, err := f.Open(context.Background(), first.URL+p)
		if src != nil {
			src.Body.Close()
		}
		if !errors.Is(err, ErrScheme) || !strings.Contains(err.Error(), "user name or password") {
			t.Errorf("%s: %v, want ErrScheme for the credentials", p, err)
		}
		if err != nil && strings.Contains(err.Error(), "secretpw") {
			t.Errorf("%s: the error repeats the password: %v", p, err)
		}
	}
	if n := hits.Load() - before; n != 0 {
		t.Errorf("the second server got %d requests from redirects with credentials", n)
	}
}

// resetServer answers one request per connection as told, then resets the
// connection (SO_LINGER 0, so the close sends RST); it records the ports
// of both ends.
type resetServer struct {
	ln    net.Listener
	mu    sync.Mutex
	ports []string
}

func newResetServer(t *testing.T, answer string) *resetServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &resetServer{ln: ln}
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	s.ports = append(s.ports, port)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_, peer, _ := net.SplitHostPort(c.RemoteAddr().String())
			s.mu.Lock()
			s.ports = append(s.ports, peer)
			s.mu.Unlock()
			http.ReadRequest(bufio.NewReader(c))
			io.WriteString(c, answer)
			time.Sleep(50 * time.Millisecond) // let the client read what was sent
			c.(*net.TCPConn).SetLinger(0)
			c.Close()
		}
	}()
	t.Cleanup(func() { ln.Close(); <-done })
	return s
}

// TestResetHidesAddresses: a connection reset, before the answer or in the
// middle of the body, is reported without either end's address or port.
func TestResetHidesAddresses(t *testing.T) {
	tests := []struct {
		name, answer string
		midBody      bool
	}{
		{"mid-body", "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: 100000\r\n\r\n" + strings.Repeat("x", 1000), true},
		{"before the answer", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newResetServer(t, tt.answer)
			f := newOpener(t, Options{AllowPrivate: true, MaxBytes: 1 << 20, Timeout: 10 * time.Second})
			src, err := f.Open(context.Background(), "http://"+s.ln.Addr().String()+"/file.bin")
			if tt.midBody {
				if err != nil {
					t.Fatal(err)
				}
				_, err = io.ReadAll(src.Body)
				src.Body.Close()
			}
			if err == nil {
				t.Fatal("no error")
			}
			var op *net.OpError
			if !errors.As(err, &op) {
				t.Fatalf("%v: not a network error, so this tests nothing", err)
			}
			if !errors.Is(err, ErrUnreachable) {
				t.Errorf("%v: not ErrUnreachable", err)
			}
			msg := err.Error()
			t.Log(msg)
			if !strings.Contains(msg, "connection reset by peer") {
				t.Errorf("%q does not say what happened", msg)
			}
			s.mu.Lock()
			defer s.mu.Unlock()
			for _, h := range append([]string{"127.0.0.1"}, s.ports...) {
				if strings.Contains(msg, h) {
					t.Errorf("%q names %s", msg, h)
				}
			}
		})
	}
}

package providers

import (
	"bytes"
	"context"
	"crypto/md5"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// scripted answers each request with the next status in its script and
// records the bodies it received.
type scripted struct {
	mu       sync.Mutex
	statuses []int
	headers  []map[string]string
	bodies   [][]byte
}

func (s *scripted) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	s.mu.Lock()
	i := len(s.bodies)
	s.bodies = append(s.bodies, b)
	s.mu.Unlock()
	if i < len(s.headers) {
		for k, v := range s.headers[i] {
			w.Header().Set(k, v)
		}
	}
	status := http.StatusOK
	if i < len(s.statuses) {
		status = s.statuses[i]
	}
	w.WriteHeader(status)
	io.WriteString(w, `{"ok":true}`)
}

func testClient(waits *[]time.Duration) *Client {
	c := NewClient("filestage-test")
	c.sleep = func(ctx context.Context, d time.Duration) error {
		*waits = append(*waits, d)
		return ctx.Err()
	}
	return c
}

func TestRetries(t *testing.T) {
	tests := []struct {
		name     string
		statuses []int
		headers  []map[string]string
		wantErr  int // status of the final HTTPError, 0 for success
		attempts int
		check    func(t *testing.T, waits []time.Duration)
	}{
		{"success", nil, nil, 0, 1, nil},
		{"500 then success", []int{500, 200}, nil, 0, 2, nil},
		{"503 storm then success", []int{503, 502, 504, 200}, nil, 0, 4, nil},
		{"429 honours Retry-After", []int{429, 200}, []map[string]string{{"Retry-After": "3"}}, 0, 2, func(t *testing.T, w []time.Duration) {
			if len(w) != 1 || w[0] != 3*time.Second {
				t.Errorf("waits %v, want [3s]", w)
			}
		}},
		{"Retry-After is capped", []int{429, 200}, []map[string]string{{"Retry-After": "3600"}}, 0, 2, func(t *testing.T, w []time.Duration) {
			if len(w) != 1 || w[0] != 10*time.Second {
				t.Errorf("waits %v, want [10s]", w)
			}
		}},
		{"gives up after the retries", []int{500, 500, 500, 500, 500, 500}, nil, 500, 5, func(t *testing.T, w []time.Duration) {
			for i, d := range w {
				if d < 0 || d > 250*time.Millisecond<<i {
					t.Errorf("wait %d is %v, beyond the backoff step", i, d)
				}
			}
		}},
		{"501 is not retried", []int{501}, nil, 501, 1, nil},
		{"401 is not retried", []int{401}, nil, 401, 1, nil},
		{"403 is not retried", []int{403}, nil, 403, 1, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &scripted{statuses: tt.statuses, headers: tt.headers}
			srv := httptest.NewServer(s)
			defer srv.Close()
			var waits []time.Duration
			c := testClient(&waits)
			body := bytes.Repeat([]byte("spooled bytes "), 1000)
			err := c.Upload(context.Background(), Slot{URL: srv.URL + "/obj?X-Amz-Signature=secret", Method: "PUT", Headers: map[string]string{"Content-Type": "text/plain"}},
				Body{Data: bytes.NewReader(body), Size: int64(len(body)), MD5: md5.Sum(body)})
			var herr *HTTPError
			switch {
			case tt.wantErr == 0 && err != nil:
				t.Fatalf("error %v", err)
			case tt.wantErr != 0 && (!errors.As(err, &herr) || herr.Status != tt.wantErr):
				t.Fatalf("error %v, want status %d", err, tt.wantErr)
			case err != nil && strings.Contains(err.Error(), "secret"):
				t.Errorf("the error shows the URL's signature: %v", err)
			}
			if len(s.bodies) != tt.attempts {
				t.Errorf("%d attempts, want %d", len(s.bodies), tt.attempts)
			}
			for i, b := range s.bodies {
				if !bytes.Equal(b, body) {
					t.Errorf("attempt %d sent %d bytes, not the whole body", i, len(b))
				}
			}
			if tt.check != nil {
				tt.check(t, waits)
			}
		})
	}
}

func TestConnectionErrorsAreRetried(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	conns := 0
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns++
			n := conns
			mu.Unlock()
			if n <= 2 {
				c.(*net.TCPConn).SetLinger(0)
				c.Close() // reset
				continue
			}
			go http.Serve(&oneConn{c: c}, &scripted{})
		}
	}()
	defer ln.Close()
	var waits []time.Duration
	c := testClient(&waits)
	var out struct{ OK bool }
	if err := c.JSON(context.Background(), "POST", "http://"+ln.Addr().String()+"/x", nil, map[string]string{"a": "b"}, &out); err != nil || !out.OK {
		t.Fatalf("err %v out %+v", err, out)
	}
	if len(waits) != 2 {
		t.Errorf("%d retries, want 2", len(waits))
	}
}

// TestConnectionErrorsHideTheURLQuery: a presigned URL's query is a
// credential, and a transport error must not carry it into a tool error.
func TestConnectionErrorsHideTheURLQuery(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.(*net.TCPConn).SetLinger(0)
			c.Close()
		}
	}()
	defer ln.Close()
	var waits []time.Duration
	body := []byte("x")
	err = testClient(&waits).Upload(context.Background(), Slot{URL: "http://" + ln.Addr().String() + "/o?X-Amz-Signature=secret"},
		Body{Data: bytes.NewReader(body), Size: 1, MD5: md5.Sum(body)})
	if err == nil || strings.Contains(err.Error(), "secret") {
		t.Errorf("error %v", err)
	}
}

func TestPermanentConnectionErrorsAreNotRetried(t *testing.T) {
	tlsSrv := httptest.NewTLSServer(&scripted{}) // a certificate no one trusts
	defer tlsSrv.Close()
	var waits []time.Duration
	if err := testClient(&waits).JSON(context.Background(), "GET", tlsSrv.URL+"/x", nil, nil, nil); err == nil || len(waits) != 0 {
		t.Errorf("err %v after %d retries, want an error and none", err, len(waits))
	}
}

func TestMalformedJSON(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "{not json") }))
	defer srv.Close()
	var waits []time.Duration
	var out map[string]any
	err := testClient(&waits).JSON(context.Background(), "GET", srv.URL, nil, nil, &out)
	if err == nil || !strings.Contains(err.Error(), "malformed JSON") {
		t.Errorf("error %v", err)
	}
}

func TestCancelStopsRetrying(t *testing.T) {
	srv := httptest.NewServer(&scripted{statuses: []int{503, 503, 503, 503, 503}})
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	c := NewClient("")
	c.BaseDelay = time.Hour
	go func() { time.Sleep(50 * time.Millisecond); cancel() }()
	start := time.Now()
	if err := c.JSON(ctx, "GET", srv.URL, nil, nil, nil); !errors.Is(err, context.Canceled) {
		t.Errorf("error %v, want context.Canceled", err)
	}
	if time.Since(start) > 5*time.Second {
		t.Error("cancel did not interrupt the backoff")
	}
}

// oneConn is a listener that yields one connection.
type oneConn struct {
	c    net.Conn
	once sync.Once
}

func (o *oneConn) Accept() (net.Conn, error) {
	var c net.Conn
	o.once.Do(func() { c = o.c })
	if c == nil {
		select {} // block forever; http.Serve keeps serving the one conn
	}
	return c, nil
}
func (o *oneConn) Close() error   { return nil }
func (o *oneConn) Addr() net.Addr { return o.c.LocalAddr() }

// TestUploadChecksWhatWasStored: a 2xx that does not show the bytes were
// stored (no ETag from S3, another MD5 from Azure) is not a success.
func TestUploadChecksWhatWasStored(t *testing.T) {
	body := []byte("the bytes")
	sum := md5.Sum(body)
	tests := []struct {
		name, backend string
		header        map[string]string
		ok            bool
	}{
		{"s3 with an ETag", "s3", map[string]string{"ETag": `"abc"`}, true},
		{"s3 without an ETag", "s3", nil, false},
		{"azure with its MD5", "azure_blob_storage", map[string]string{"Content-MD5": ContentMD5(sum)}, true},
		{"azure with another MD5", "azure_blob_storage", map[string]string{"Content-MD5": ContentMD5(md5.Sum(nil))}, false},
		{"unknown storage saying nothing", "", nil, true},
	}
	for _, tt := range tests {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.Copy(io.Discard, r.Body)
			for k, v := range tt.header {
				w.Header().Set(k, v)
			}
		}))
		err := NewClient("test").Upload(context.Background(), Slot{URL: srv.URL, StorageBackend: tt.backend},
			Body{Data: bytes.NewReader(body), Size: int64(len(body)), MD5: sum})
		srv.Close()
		if (err == nil) != tt.ok || (err != nil && !errors.Is(err, ErrNotStored)) {
			t.Errorf("%s: %v", tt.name, err)
		}
	}
}

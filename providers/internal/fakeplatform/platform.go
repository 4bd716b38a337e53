// Package fakeplatform is what the fake platforms (composiotest, alloytest,
// recouptest, quanttest) share: a test server that records every request
// and can answer from fault scripts before the platform's own handlers, the
// storage behind presigned URLs, and the small answers every fake gives.
// Each fake keeps only its platform's documented contract.
package fakeplatform

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
)

// Reset, given as a scripted status, cuts the connection (TCP RST) instead
// of answering; an upload is cut halfway through its body.
const Reset = -1

// MaxBody is the largest API request body a platform reads, unless it
// says otherwise.
const MaxBody = 1 << 20

// Request is one request a fake received, faulted ones included.
type Request struct {
	Method string
	Path   string
	Query  url.Values
	Header http.Header
	// Body is the decoded JSON body of an API call; nil for uploads or
	// bodies that are not JSON objects.
	Body map[string]any
	// Size is how many body bytes were read.
	Size int64
	// Chunked is whether the body came without a Content-Length.
	Chunked bool
}

// Platform is a running fake: its API is called with POST, its storage
// with PUT (and GET). Its methods are safe for concurrent use.
type Platform struct {
	// URL is the base URL of the API and of the storage.
	URL string

	next         http.Handler
	maxBody      int64
	mu           sync.Mutex
	requests     []Request
	apiFaults    []fault
	uploadFaults []fault
}

type fault struct {
	status int
	header http.Header
	body   string
}

// Start serves h until the test ends. An API request body is read (and
// recorded) before h sees it, up to maxBody bytes; a longer one reaches h
// unread, for it to refuse.
func Start(t testing.TB, h http.Handler, maxBody int64) *Platform {
	t.Helper()
	p := &Platform{next: h, maxBody: maxBody}
	srv := httptest.NewServer(http.HandlerFunc(p.serve))
	t.Cleanup(srv.Close)
	p.URL = srv.URL
	return p
}

// FailNext scripts the API's next answer: status (or Reset), headers and
// body. Calls queue up, one answer each.
func (p *Platform) FailNext(status int, header http.Header, body string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.apiFaults = append(p.apiFaults, fault{status, header, body})
}

// FailNextUpload scripts the storage's next answer, as FailNext.
func (p *Platform) FailNextUpload(status int, header http.Header, body string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.uploadFaults = append(p.uploadFaults, fault{status, header, body})
}

// Requests returns what the fake received so far, in order.
func (p *Platform) Requests() []Request {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]Request, len(p.requests))
	copy(out, p.requests)
	return out
}

// serve answers from the fault scripts before the platform's handlers see
// anything, and records every request before it is answered, so that a
// test sees it as soon as its client has the answer.
func (p *Platform) serve(w http.ResponseWriter, r *http.Request) {
	rec := Request{Method: r.Method, Path: r.URL.Path, Query: r.URL.Query(), Header: r.Header.Clone(), Chunked: r.ContentLength < 0}
	api := r.Method == http.MethodPost
	f, faulted := p.nextFault(api)
	switch {
	case api:
		if r.ContentLength > p.maxBody {
			break
		}
		body, _ := io.ReadAll(io.LimitReader(r.Body, p.maxBody+1))
		rec.Size = int64(len(body))
		_ = json.Unmarshal(body, &rec.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		// A body without a Content-Length is measured as read.
		r.ContentLength = rec.Size
	case !faulted:
		// The storage reads an upload as it streams in, so what it read is
		// known only once it has answered; its answer is complete only
		// after serve returns.
		body := &counter{ReadCloser: r.Body}
		r.Body = body
		p.next.ServeHTTP(w, r)
		rec.Size = body.n
		p.record(rec)
		return
	case f.status == Reset:
		rec.Size, _ = io.CopyN(io.Discard, r.Body, r.ContentLength/2)
	default:
		rec.Size, _ = io.Copy(io.Discard, r.Body)
	}
	p.record(rec)
	switch {
	case !faulted:
		p.next.ServeHTTP(w, r)
	case f.status == Reset:
		reset(w)
	default:
		for k, v := range f.header {
			w.Header()[k] = v
		}
		w.WriteHeader(f.status)
		io.WriteString(w, f.body)
	}
}

func (p *Platform) nextFault(api bool) (fault, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	queue := &p.uploadFaults
	if api {
		queue = &p.apiFaults
	}
	if len(*queue) == 0 {
		return fault{}, false
	}
	f := (*queue)[0]
	*queue = (*queue)[1:]
	return f, true
}

func (p *Platform) record(rec Request) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.requests = append(p.requests, rec)
}

type counter struct {
	io.ReadCloser
	n int64
}

func (c *counter) Read(b []byte) (int, error) {
	n, err := c.ReadCloser.Read(b)
	c.n += int64(n)
	return n, err
}

// reset closes the connection with an RST, as a crashed peer would.
func reset(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic("fakeplatform: cannot hijack the connection: " + err.Error())
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		tc.SetLinger(0)
	}
	conn.Close()
}

// JSON answers status with v as its JSON body.
func JSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// Bearer is the token of an Authorization: Bearer header, or "".
func Bearer(r *http.Request) string {
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		return ""
	}
	return token
}

// RandomHex is n random bytes in hex.
func RandomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

package transport

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sort"
	"strings"
	"sync"
	"time"
)

// Request bodies must keep arriving: after bodyGrace, at least
// MinBodyRate bytes a second on average. A body that trickles slower is
// cut, so that a client cannot hold a connection (and a file descriptor)
// by sending one byte now and then. 4 KiB/s is a 32 kbit/s link.
const (
	MinBodyRate = 4 << 10
	bodyGrace   = 10 * time.Second
)

// DefaultMaxConnections is the connection cap when none is set, before it is
// fitted to the process's file descriptor limit (see MaxConnectionsFor).
const DefaultMaxConnections = 4096

// MaxConnectionsFor is the default connection cap: DefaultMaxConnections,
// but never more than half the file descriptors the process may open, so
// that spools, the store and outgoing fetches always have room.
func MaxConnectionsFor() int {
	files := openFileLimit()
	if files == 0 {
		return DefaultMaxConnections
	}
	return max(16, min(DefaultMaxConnections, files/2))
}

// refusals counts refused connections and requests by reason and says so
// in the log at warn level, at most once per interval: under attack a line
// per refusal would be a second attack, on the log. Nothing secret is in a
// reason.
type refusals struct {
	log      *slog.Logger
	interval time.Duration
	// metrics, when set, count each refusal as it happens.
	metrics Metrics

	mu     sync.Mutex
	counts map[string]int64
	last   time.Time
}

func newRefusals(log *slog.Logger) *refusals {
	return &refusals{log: log, interval: 10 * time.Second, counts: map[string]int64{}}
}

func (r *refusals) note(reason string) {
	if r.metrics != nil {
		r.metrics.Refused(reason)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.counts[reason]++
	if time.Since(r.last) >= r.interval {
		r.flushLocked()
	}
}

// flush logs what was counted since the last line.
func (r *refusals) flush() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.flushLocked()
}

func (r *refusals) flushLocked() {
	r.last = time.Now()
	if len(r.counts) == 0 || r.log == nil {
		return
	}
	reasons := make([]string, 0, len(r.counts))
	for k := range r.counts {
		reasons = append(reasons, k)
	}
	sort.Strings(reasons)
	attrs := make([]any, 0, 2*len(reasons))
	for _, k := range reasons {
		attrs = append(attrs, k, r.counts[k])
	}
	clear(r.counts)
	r.log.Warn("refused connections and requests", attrs...)
}

// connLimit caps open connections. At the cap, a new connection takes the
// place of the one that has sat idle (between requests, or connected but
// silent) the longest; when every connection is busy, the new one is
// closed at once. So a flood of connections cannot exhaust the file
// descriptors, and an established client in the middle of a request keeps
// its connection.
type connLimit struct {
	net.Listener
	max     int
	refused *refusals

	mu    sync.Mutex
	conns map[net.Conn]connEntry
}

type connEntry struct {
	state http.ConnState
	since time.Time
}

// idleEvictAfter: a connection that has just been accepted is not yet
// idle; only one silent for this long may be replaced.
const idleEvictAfter = time.Second

func newConnLimit(ln net.Listener, max int, refused *refusals) *connLimit {
	return &connLimit{Listener: ln, max: max, refused: refused, conns: map[net.Conn]connEntry{}}
}

func (l *connLimit) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if l.admit(c) {
			return c, nil
		}
		if tc, ok := c.(*net.TCPConn); ok {
			tc.SetLinger(0) // a reset frees the port and the descriptor at once
		}
		c.Close()
		l.refused.note("max_connections")
	}
}

func (l *connLimit) admit(c net.Conn) bool {
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.conns) >= l.max {
		var victim net.Conn
		var oldest time.Time
		for vc, e := range l.conns {
			if (e.state == http.StateIdle || e.state == http.StateNew) && now.Sub(e.since) >= idleEvictAfter && (victim == nil || e.since.Before(oldest)) {
				victim, oldest = vc, e.since
			}
		}
		if victim == nil {
			return false
		}
		delete(l.conns, victim)
		victim.Close()
		l.refused.note("idle_connection_replaced")
	}
	l.conns[c] = connEntry{http.StateNew, now}
	return true
}

// track is the server's ConnState hook.
func (l *connLimit) track(c net.Conn, s http.ConnState) {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch s {
	case http.StateClosed, http.StateHijacked:
		delete(l.conns, c)
	default:
		if _, ok := l.conns[c]; ok {
			l.conns[c] = connEntry{s, time.Now()}
		}
	}
}

// ErrSlowBody is a request body cut for arriving slower than MinBodyRate.
var ErrSlowBody = fmt.Errorf("the request body arrived slower than %d bytes a second", MinBodyRate)

// bounded enforces the body rate and the write timeout on every request,
// and releases at once the connection of every request whose body it will
// not read. net/http reads up to 256 KiB of a body the handler left unread
// before it sends the answer, whatever the answer: a client trickling a
// body (or announcing one it never sends) would hold the connection. A
// read deadline of now ends that read, and the connection is closed after
// the answer.
func bounded(next http.Handler, rate bodyRate, refused *refusals) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		b := &rateBody{rc: rc, base: time.Now().Add(rate.grace), rate: rate, refused: refused}
		if r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 {
			b.done = true
		} else {
			// Armed now, for whatever reads the body first: the handler,
			// or net/http discarding what the handler left.
			rc.SetReadDeadline(b.base)
			b.body, r.Body = r.Body, b
		}
		next.ServeHTTP(&cutWriter{ResponseWriter: w, rc: rc, body: b, refused: refused, ctx: r.Context(), noStream: noStream(r)}, r)
		// net/http writes what is buffered once the handler returns.
		rc.SetWriteDeadline(time.Now().Add(writeTimeout))
	})
}

// writeTimeout bounds each write to a client: one that stops reading its
// answer or its stream is cut, and whatever waited on it (the calls of an
// SSE session whose events queue behind it, say) is released.
const writeTimeout = 30 * time.Second

// maxBodyCredit is how far ahead of the floor a body may get: bytes sent
// fast early do not buy a stall later.
const maxBodyCredit = 30 * time.Second

// bodyRate is the floor a request body's rate must stay above after a
// grace period, and the credit a fast start buys: MinBodyRate, bodyGrace
// and maxBodyCredit, but for tests.
type bodyRate struct {
	grace  time.Duration
	min    int64
	credit time.Duration
}

// rateBody is a request body that must keep arriving.
type rateBody struct {
	body io.ReadCloser
	rc   *http.ResponseController
	// base is when the body's bytes started to be due at the floor's rate.
	base    time.Time
	rate    bodyRate
	read    int64
	refused *refusals
	// done: the body was read to its end; no deadline is left on the
	// connection, whose next request may be read.
	done bool
	// cut: the body came too slowly, and the connection is to be closed.
	cut bool
}

func (b *rateBody) Read(p []byte) (int, error) {
	if b.done || b.cut {
		return b.body.Read(p)
	}
	// The next bytes are due when the average would fall below the floor;
	// credit beyond maxBodyCredit is forfeited.
	due := b.base.Add(time.Duration(b.read) * time.Second / time.Duration(b.rate.min))
	if limit := time.Now().Add(b.rate.credit); due.After(limit) {
		b.base = b.base.Add(-due.Sub(limit))
		due = limit
	}
	b.rc.SetReadDeadline(due)
	n, err := b.body.Read(p)
	b.read += int64(n)
	switch {
	case err == nil:
	case errors.Is(err, os.ErrDeadlineExceeded):
		// The deadline stays: whatever reads the connection next fails
		// at once, and the answer closes it (cutWriter).
		b.cut = true
		b.refused.note("slow_body")
		err = ErrSlowBody
	default:
		b.done = errors.Is(err, io.EOF)
		// A deadline left on the connection would end the server's
		// background read, and with it the request's context, while a
		// long call runs.
		b.rc.SetReadDeadline(time.Time{})
	}
	return n, err
}

func (b *rateBody) Close() error { return b.body.Close() }

// cutWriter closes the connection of a request whose body was not read to
// its end, without reading the rest, and bounds each write.
type cutWriter struct {
	http.ResponseWriter
	rc      *http.ResponseController
	body    *rateBody
	refused *refusals
	wrote   bool
	// ctx is the request's, which may name why it is refused.
	ctx context.Context
	// noStream: the request asks for a stream the server may not offer
	// (see noStream); its 405 is an answer, not a refusal.
	noStream bool
}

func (w *cutWriter) WriteHeader(code int) {
	if !w.wrote {
		w.wrote = true
		if !w.body.done || w.body.cut {
			w.rc.SetReadDeadline(time.Now())
			w.Header().Set("Connection", "close")
		}
		if code >= 400 && !(w.noStream && code == http.StatusMethodNotAllowed) {
			w.refused.note(refusalReason(w.ctx, code))
		}
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *cutWriter) Write(p []byte) (int, error) {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	w.rc.SetWriteDeadline(time.Now().Add(writeTimeout))
	return w.ResponseWriter.Write(p)
}

// Flush serves mcp-go's streams, which look for an http.Flusher.
func (w *cutWriter) Flush() {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	w.rc.SetWriteDeadline(time.Now().Add(writeTimeout))
	w.rc.Flush()
}

func (w *cutWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// noStream reports whether r is a GET on the streamable HTTP endpoint:
// clients open one after initialize for messages the server sends on its
// own, and a server without such a stream (--stateless) answers 405, as
// the transport's specification says it may. Every client's every session
// does it, so it is neither a warning nor a refusal.
func noStream(r *http.Request) bool {
	return r.Method == http.MethodGet && r.URL.Path == PathMCP
}

// reasonFor names a refusal for the log: the status, in words.
func reasonFor(code int) string {
	if t := http.StatusText(code); t != "" {
		return strings.ReplaceAll(strings.ToLower(t), " ", "_")
	}
	return fmt.Sprintf("status_%d", code)
}

// Package spool reads a stream once while hashing it: into a temporary
// file, so that bytes of any size are held in constant memory and can be
// replayed for an upload, or, for sources that can be read again, only
// through the hash.
package spool

import (
	"crypto/md5"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// HeadSize is how many leading bytes are kept in memory for content sniffing.
const HeadSize = 3072

// ErrTooLarge is returned when the stream is longer than the cap.
var ErrTooLarge = errors.New("larger than the byte cap")

// ErrExist is returned by Keep when a file is already at the path; it is
// also an fs.ErrExist.
var ErrExist = fmt.Errorf("spool: a file is already there: %w", fs.ErrExist)

const bufSize = 256 << 10

// bufs keeps copy buffers between calls so the hot loop allocates nothing.
var bufs = sync.Pool{New: func() any { b := make([]byte, bufSize); return &b }}

// Sum is what one pass over a stream learns.
type Sum struct {
	Size int64
	MD5  [16]byte
	// Head is the first HeadSize bytes (fewer if the stream was shorter).
	Head []byte
}

// File is a spooled stream. It removes itself on Close unless it was kept.
type File struct {
	f *os.File
	Sum
	// link is os.Link unless a test stands in for it: per file, so that
	// the cross-file-system path can be tested without global state.
	link func(oldname, newname string) error
}

// Adopt takes over the complete file at path, whose bytes sum was taken as
// they were written elsewhere (a resumable upload's): from then on it is
// kept or removed as any spool is.
func Adopt(path string, sum Sum) (*File, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	return &File{f: f, Sum: sum}, nil
}

// Hash reads r to its end, at most max bytes, and sums it.
func Hash(r io.Reader, max int64) (Sum, error) {
	return sum(io.Discard, r, max)
}

// sum copies r to w through the hash in pooled buffers: the loop
// allocates nothing per chunk.
func sum(w io.Writer, r io.Reader, max int64) (Sum, error) {
	h := md5.New()
	head := &headWriter{max: HeadSize}
	bp := bufs.Get().(*[]byte)
	defer bufs.Put(bp)
	g := newGated(io.MultiWriter(w, h, head))
	defer g.close()
	n, err := io.CopyBuffer(g, io.LimitReader(r, max+1), *bp)
	if err != nil {
		return Sum{}, fmt.Errorf("spool: reading after %d bytes: %w", n, err)
	}
	if n > max {
		return Sum{}, fmt.Errorf("spool: more than %d bytes: %w", max, ErrTooLarge)
	}
	s := Sum{Size: n, Head: head.b}
	h.Sum(s.MD5[:0])
	return s, nil
}

// Write copies r into a new temporary file in dir, at most max bytes. On
// any error nothing is left behind.
func Write(r io.Reader, dir string, max int64) (_ *File, err error) {
	f, err := os.CreateTemp(dir, ".spool-*")
	if err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	s, err := sum(f, r, max)
	if err != nil {
		return nil, err
	}
	return &File{f: f, Sum: s}, nil
}

// Sweep removes spool files in dir last written more than age ago: what a
// crash left behind. Files of calls still running are younger than that.
func Sweep(dir string, age time.Duration) (removed int, err error) {
	return SweepMatching(dir, ".spool-*", age)
}

// SweepMatching removes what in dir matches pattern and was last changed
// more than age ago, folders with all they hold.
func SweepMatching(dir, pattern string, age time.Duration) (removed int, err error) {
	old, err := filepath.Glob(filepath.Join(dir, pattern))
	if err != nil {
		return 0, err
	}
	for _, path := range old {
		if fi, err := os.Lstat(path); err == nil && time.Since(fi.ModTime()) > age && os.RemoveAll(path) == nil {
			removed++
		}
	}
	return removed, nil
}

// ReadAt reads the spooled bytes.
func (s *File) ReadAt(p []byte, off int64) (int, error) { return s.f.ReadAt(p, off) }

// Keep makes the spooled bytes durable at path unless a file is already
// there, which it never replaces: then it returns ErrExist. Either way the
// spool file is gone; on other errors it is left for Close.
//
// The bytes are hard-linked into place: a link, unlike a rename, fails
// when path exists, so of two Keeps racing for one path exactly one wins,
// and readers of path only ever see all of the winner's bytes.
func (s *File) Keep(path string) error {
	if s.f == nil {
		return errors.New("spool: the file was already kept or closed")
	}
	// Cheap, and spares the sync (or, across file systems, a whole copy)
	// when path is taken; the link below still decides a race.
	if _, err := os.Lstat(path); err == nil {
		return s.exists(path)
	}
	if err := s.f.Sync(); err != nil {
		return fmt.Errorf("spool: sync: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	link := s.link
	if link == nil {
		link = os.Link
	}
	switch err := link(s.f.Name(), path); {
	case err == nil:
		// The bytes are kept whatever Close says: a spool name it fails
		// to remove is Sweep's to clear.
		s.Close()
		return nil
	case errors.Is(err, fs.ErrExist):
		return s.exists(path)
	case errors.Is(err, syscall.EXDEV):
		// path is on another file system: copy, then link there.
		if err := s.copyTo(path); errors.Is(err, ErrExist) {
			return s.exists(path)
		} else if err != nil {
			return err
		}
		s.Close()
		return nil
	default:
		return fmt.Errorf("spool: %w", err)
	}
}

// exists discards the spool, whose bytes path did not take.
func (s *File) exists(path string) error {
	if err := s.Close(); err != nil {
		return err
	}
	return fmt.Errorf("spool: keeping %s: %w", path, ErrExist)
}

// copyTo spools the bytes again beside path, on its file system, and
// keeps that copy: the same write, sync and link as any spool, so the
// copy never replaces a file either.
func (s *File) copyTo(path string) error {
	c, err := Write(io.NewSectionReader(s.f, 0, s.Size), filepath.Dir(path), s.Size)
	if err != nil {
		return err
	}
	defer c.Close()
	if c.MD5 != s.MD5 {
		return fmt.Errorf("spool: the copy of %s differs from the bytes spooled", path)
	}
	return c.Keep(path)
}

// Close removes the spooled file unless it was kept. It is safe to call
// more than once.
func (s *File) Close() error {
	if s.f == nil {
		return nil
	}
	err := errors.Join(s.f.Close(), os.Remove(s.f.Name()))
	s.f = nil
	return err
}

// processors admits one chunk's hashing and writing at a time per
// processor but one, whatever the number of copies running. Each chunk is a fraction
// of a millisecond of work; a copy whose source is always ready
// (loopback, a fast link, a local file) never blocks otherwise, and with
// hundreds of them runnable at once, a light call (a presign, tools/list,
// a progress notification) waited behind all of them for a processor: a
// second and more under the load test. With one processor always free
// of copying, it waits for a chunk at most. A copy waiting for its turn
// holds its goroutine and its buffer, already read.
//
// The processors are the process's, so the turns are too, like bufs:
// every copy in the process takes its turn. Their number follows
// GOMAXPROCS, which the runtime may change while it runs (a container's
// CPU limit).
var processors = newTurns()

type turns struct {
	mu   sync.Mutex
	free sync.Cond
	busy int
}

func newTurns() *turns {
	t := &turns{}
	t.free.L = &t.mu
	return t
}

// limit is one turn fewer than the processors, which leaves the last to
// light calls, and at least one.
func (t *turns) limit() int { return max(1, runtime.GOMAXPROCS(0)-1) }

func (t *turns) take() {
	t.mu.Lock()
	for t.busy >= t.limit() {
		t.free.Wait()
	}
	t.busy++
	t.mu.Unlock()
}

func (t *turns) give() {
	t.mu.Lock()
	t.busy--
	t.mu.Unlock()
	t.free.Signal()
}

// maxTurn is the longest a chunk keeps its turn. A chunk's work is a
// fraction of a millisecond; a write the kernel holds up (a slow disk,
// writeback throttling, a hung mount) must stall its own copy, not every
// copy in the process, so past this its turn goes to the next.
const maxTurn = 100 * time.Millisecond

// gated writes each chunk to w (the spool file, the hash, the head) in
// its turn at processors, then lets other goroutines run.
type gated struct {
	w     io.Writer
	held  atomic.Bool
	timer *time.Timer // gives the turn back after maxTurn
}

func newGated(w io.Writer) *gated {
	g := &gated{w: w}
	g.timer = time.AfterFunc(time.Hour, g.giveBack)
	g.timer.Stop()
	return g
}

func (g *gated) Write(p []byte) (int, error) {
	processors.take()
	g.held.Store(true)
	g.timer.Reset(maxTurn)
	n, err := g.w.Write(p)
	g.timer.Stop()
	g.giveBack()
	runtime.Gosched()
	return n, err
}

// giveBack gives the turn back once, whether the chunk ended or its time
// did.
func (g *gated) giveBack() {
	if g.held.CompareAndSwap(true, false) {
		processors.give()
	}
}

func (g *gated) close() { g.timer.Stop() }

type headWriter struct {
	b   []byte
	max int
}

func (w *headWriter) Write(p []byte) (int, error) {
	if room := w.max - len(w.b); room > 0 {
		w.b = append(w.b, p[:min(room, len(p))]...)
	}
	return len(p), nil
}

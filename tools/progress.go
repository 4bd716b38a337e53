package tools

import (
	"context"
	"fmt"
	"io"
	"sync/atomic"
	"time"
)

// Progress learns how far a call has got: done of total (0 while the
// total is unknown) and a line saying what is happening. A stage makes two
// passes over the bytes, reading the source and uploading it, so its total
// is twice the file's size.
type Progress func(done, total int64, message string)

type progressKey struct{}

// WithProgress returns a context whose stage calls report to p, as
// net/http/httptrace hangs a trace on a request's context.
func WithProgress(ctx context.Context, p Progress) context.Context {
	return context.WithValue(ctx, progressKey{}, p)
}

// progressInterval spaces reports: a few a second is what a person or a
// client's progress bar can use.
const progressInterval = 250 * time.Millisecond

// meter counts a stage's bytes in its hot loops with atomic adds only, and
// reports them from a goroutine of its own at most every progressInterval.
type meter struct {
	report   Progress
	passes   int64
	size     atomic.Int64 // -1 until known
	read     atomic.Int64
	uploaded atomic.Int64 // the furthest offset storage has read to
	quit     chan struct{}
	exited   chan struct{}
	// last is the last done reported; only the reporting goroutine
	// writes it, and stop reads it once that has exited.
	last int64
}

// startMeter starts reporting to ctx's Progress, if it has one, on a
// call that reads size bytes (-1: not known yet) passes times.
func startMeter(ctx context.Context, size int64, passes int64) *meter {
	m := &meter{passes: passes, quit: make(chan struct{}), exited: make(chan struct{}), last: -1}
	m.size.Store(size)
	m.report, _ = ctx.Value(progressKey{}).(Progress)
	if m.report == nil {
		close(m.exited)
		return m
	}
	go func() {
		defer close(m.exited)
		t := time.NewTicker(progressInterval)
		defer t.Stop()
		for {
			select {
			case <-m.quit:
				return
			case <-t.C:
				if done, total, msg := m.state(); done != m.last {
					m.last = done
					m.report(done, total, msg)
				}
			}
		}
	}()
	return m
}

func (m *meter) state() (done, total int64, msg string) {
	size, read, up := m.size.Load(), m.read.Load(), m.uploaded.Load()
	done = read + up
	if size >= 0 {
		total = m.passes * size
	}
	switch {
	case up > 0:
		msg = "uploading " + ofSize(up, size)
	default:
		msg = "reading " + ofSize(read, size)
	}
	return done, total, msg
}

func ofSize(n, size int64) string {
	if size < 0 {
		return humanBytes(n)
	}
	return humanBytes(n) + " of " + humanBytes(size)
}

// humanBytes prints a byte count in binary units, as people read them.
func humanBytes(n int64) string {
	if n < 1<<10 {
		return fmt.Sprintf("%d B", n)
	}
	f, unit := float64(n)/(1<<10), "KiB"
	for _, u := range []string{"MiB", "GiB", "TiB"} {
		if f < 1<<10 {
			break
		}
		f, unit = f/(1<<10), u
	}
	return fmt.Sprintf("%.1f %s", f, unit)
}

// sized records the size once the source has been read.
func (m *meter) sized(n int64) { m.size.Store(n) }

// stop ends the reports; after a success the last one says all is done.
// No report follows stop: the call's answer may already be on its way.
func (m *meter) stop(ok bool) {
	select {
	case <-m.quit:
		return
	default:
		close(m.quit)
	}
	<-m.exited
	if total := m.passes * m.size.Load(); ok && m.report != nil && m.last != total {
		m.report(total, total, "done: "+humanBytes(m.size.Load()))
	}
}

// reading counts the source's bytes, and stops a read of a local file
// (which no context reaches) once ctx ends.
func (m *meter) reading(ctx context.Context, r io.Reader) io.Reader {
	return &countingReader{ctx: ctx, r: r, n: &m.read}
}

// uploading counts how far storage has read r.
func (m *meter) uploading(ctx context.Context, r io.ReaderAt) io.ReaderAt {
	return &countingReaderAt{ctx: ctx, r: r, hi: &m.uploaded}
}

type countingReader struct {
	ctx context.Context
	r   io.Reader
	n   *atomic.Int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

type countingReaderAt struct {
	ctx context.Context
	r   io.ReaderAt
	hi  *atomic.Int64
}

// ReadAt records the furthest byte read: a retried upload reads from the
// start again, and progress must not go backwards or count twice.
func (c *countingReaderAt) ReadAt(p []byte, off int64) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	n, err := c.r.ReadAt(p, off)
	for end := off + int64(n); ; {
		cur := c.hi.Load()
		if end <= cur || c.hi.CompareAndSwap(cur, end) {
			break
		}
	}
	return n, err
}

package tools

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"time"

	"github.com/filestage/filestage/spool"
)

// BusyWait is how long a stage call waits for a free slot, or for spool
// room, before it is refused with BUSY: long enough to ride out a burst,
// short enough that the caller hears why.
const BusyWait = 2 * time.Second

// DefaultConcurrentStages is the stage call cap for this machine: staging
// waits on the network and the disk far more than on the CPU, and a call
// holds little (a pooled 256 KiB buffer, a file, a connection: about
// 400 KiB); the spool budget bounds the disk. Too low a cap queues every
// caller behind a few slow sources.
func DefaultConcurrentStages() int { return 64 * runtime.NumCPU() }

// Slots bounds how many stage calls run at once.
type Slots chan struct{}

// NewSlots returns n slots.
func NewSlots(n int) Slots { return make(Slots, n) }

// serverStagesFull says the server-wide limit is reached; %d is the limit.
const serverStagesFull = "%d stage calls are already running, the limit (--max-concurrent-stages)"

// acquire takes a slot, waiting up to BusyWait; nil slots are unbounded.
// full says whose limit it is when none comes free, with %d for the limit.
func (s Slots) acquire(ctx context.Context, full string) (release func(), err error) {
	if s == nil {
		return func() {}, nil
	}
	select {
	case s <- struct{}{}:
		return func() { <-s }, nil
	default:
	}
	t := time.NewTimer(BusyWait)
	defer t.Stop()
	select {
	case s <- struct{}{}:
		return func() { <-s }, nil
	case <-t.C:
		return nil, busy(fmt.Sprintf(full, cap(s)))
	case <-ctx.Done():
		return nil, cancelled(ctx.Err())
	}
}

// busy is the tool error of a call refused for want of room.
func busy(why string) *Error {
	return &Error{Status: 503, Slug: "BUSY", Message: "filestage is busy: " + why + "; nothing was started or stored",
		Fix: "Call the tool again in a few seconds; if it keeps happening, stage fewer or smaller files at once."}
}

// spoolReader counts a source's bytes against the spool budget as they
// arrive. Nothing is reserved on a source's word: a source announcing a
// large size and then sending slowly would hold the room it named for
// nothing. One announcing more than the whole budget is refused at once.
func (s *Service) spoolReader(ctx context.Context, src io.Reader, size int64) (r io.Reader, release func(), err error) {
	if s.Spool == nil {
		return src, func() {}, nil
	}
	if size > s.Spool.Limit() {
		return nil, nil, fmt.Errorf("%w: the source announced %d bytes, more than the whole budget of %d", spool.ErrBusy, size, s.Spool.Limit())
	}
	res := s.Spool.Reader(ctx, src, BusyWait)
	return res, res.Release, nil
}

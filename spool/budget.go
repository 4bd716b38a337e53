package spool

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync/atomic"
	"time"

	"golang.org/x/sync/semaphore"
)

// ErrBusy is returned when the budget has no room within the wait.
var ErrBusy = errors.New("the spool budget is used up")

// Budget bounds the disk that spool files use at once. Callers reserve
// bytes before they write them and release them when the file is gone (or
// has become a stored object): a few calls with endless sources cannot
// fill the disk, they get ErrBusy instead. Waiters are served first come,
// first served (x/sync's weighted semaphore), so a call that waits for
// room is not starved by greedy ones that ask after it.
type Budget struct {
	limit int64
	sem   *semaphore.Weighted
	used  atomic.Int64
}

// NewBudget returns a budget of limit bytes.
func NewBudget(limit int64) *Budget {
	return &Budget{limit: limit, sem: semaphore.NewWeighted(limit)}
}

// DefaultBudget is half the space free to unprivileged users in dir's file
// system: room for spools, and as much again for everything else.
func DefaultBudget(dir string) (int64, error) {
	free, err := freeSpace(dir)
	if err != nil {
		return 0, fmt.Errorf("spool budget: %w", err)
	}
	return free / 2, nil
}

// Limit is the budget's size in bytes.
func (b *Budget) Limit() int64 { return b.limit }

// InUse is how many bytes are reserved.
func (b *Budget) InUse() int64 { return b.used.Load() }

// Reserve takes n bytes, waiting up to wait for others to release room.
// A reservation larger than the whole budget fails at once.
func (b *Budget) Reserve(ctx context.Context, n int64, wait time.Duration) error {
	if n > b.limit {
		return fmt.Errorf("%w: %d bytes is more than the whole budget of %d", ErrBusy, n, b.limit)
	}
	if !b.sem.TryAcquire(n) {
		if wait <= 0 {
			return fmt.Errorf("%w: %d of %d bytes are in use", ErrBusy, b.InUse(), b.limit)
		}
		wctx, cancel := context.WithTimeout(ctx, wait)
		err := b.sem.Acquire(wctx, n)
		cancel()
		if err != nil {
			if cerr := ctx.Err(); cerr != nil {
				return cerr
			}
			return fmt.Errorf("%w: %d of %d bytes are in use", ErrBusy, b.InUse(), b.limit)
		}
	}
	b.used.Add(n)
	return nil
}

// Release gives back n reserved bytes.
func (b *Budget) Release(n int64) {
	if n == 0 {
		return
	}
	b.used.Add(-n)
	b.sem.Release(n)
}

// Reader returns r counted against the budget: its bytes are reserved as
// they arrive, in steps, waiting up to wait in all. Release the
// Reservation when the spool is gone.
func (b *Budget) Reader(ctx context.Context, r io.Reader, wait time.Duration) *Reservation {
	return &Reservation{b: b, ctx: ctx, r: r, deadline: time.Now().Add(wait)}
}

// reserveStep is how much a Reservation reserves at a time.
const reserveStep = 1 << 20

// Reservation is a reader whose bytes are reserved in a Budget.
type Reservation struct {
	b        *Budget
	ctx      context.Context
	r        io.Reader
	held     int64
	read     int64
	deadline time.Time
}

func (v *Reservation) Read(p []byte) (int, error) {
	n, err := v.r.Read(p)
	// Reserved once read, before they are written: the budget is of disk.
	if need := v.read + int64(n) - v.held; need > 0 {
		step := max(reserveStep, need)
		if rerr := v.b.Reserve(v.ctx, step, time.Until(v.deadline)); rerr != nil {
			return 0, rerr
		}
		v.held += step
	}
	v.read += int64(n)
	return n, err
}

// Release gives back everything the reservation holds.
func (v *Reservation) Release() {
	v.b.Release(v.held)
	v.held = 0
}

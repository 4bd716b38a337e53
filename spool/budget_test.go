package spool

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"
	"time"
)

func TestBudget(t *testing.T) {
	ctx := context.Background()
	b := NewBudget(10)
	if err := b.Reserve(ctx, 11, time.Second); !errors.Is(err, ErrBusy) {
		t.Errorf("more than the whole budget: %v, want ErrBusy at once", err)
	}
	if err := b.Reserve(ctx, 8, 0); err != nil {
		t.Fatal(err)
	}
	if err := b.Reserve(ctx, 3, 0); !errors.Is(err, ErrBusy) {
		t.Errorf("over the budget without waiting: %v", err)
	}
	// A waiter gets room as soon as it is released.
	go func() { time.Sleep(50 * time.Millisecond); b.Release(8) }()
	if err := b.Reserve(ctx, 3, 5*time.Second); err != nil {
		t.Errorf("waiting for room: %v", err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := b.Reserve(cctx, 8, time.Second); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled wait: %v", err)
	}
	b.Release(3)
	if n := b.InUse(); n != 0 {
		t.Errorf("%d bytes in use, want 0", n)
	}
}

// TestReservation: a reader reserves what it reads, in steps, and fails
// with ErrBusy, handing over nothing more, when the budget is used up.
func TestReservation(t *testing.T) {
	ctx := context.Background()
	b := NewBudget(3 * reserveStep)
	r := b.Reader(ctx, bytes.NewReader(make([]byte, 2*reserveStep+1)), 0)
	if n, err := io.Copy(io.Discard, r); err != nil || n != 2*reserveStep+1 {
		t.Fatalf("within the budget: %d %v", n, err)
	}
	if held := b.InUse(); held != 3*reserveStep {
		t.Errorf("%d bytes held, want %d", held, 3*reserveStep)
	}
	over := b.Reader(ctx, bytes.NewReader(make([]byte, 10)), 0)
	if _, err := io.Copy(io.Discard, over); !errors.Is(err, ErrBusy) {
		t.Errorf("over the budget: %v, want ErrBusy", err)
	}
	r.Release()
	over.Release()
	if n := b.InUse(); n != 0 {
		t.Errorf("%d bytes in use after release, want 0", n)
	}
}

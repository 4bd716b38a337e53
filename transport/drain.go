package transport

import (
	"context"
	"sync"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/filestage/filestage/tools"
)

// Drain counts tool calls in flight so that a shutdown can let them finish
// before it closes the sessions their answers travel on.
type Drain struct {
	mu      sync.Mutex
	n       int
	closing bool
	idle    chan struct{}
}

// NewDrain returns an open Drain.
func NewDrain() *Drain { return &Drain{idle: make(chan struct{})} }

// Middleware tracks each tool call; once the drain has begun, new calls are
// refused with a tool error.
func (d *Drain) Middleware(next server.ToolHandlerFunc) server.ToolHandlerFunc {
	return func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		if !d.enter() {
			return tools.ErrorResult(&tools.Error{Status: 503, Slug: "SHUTTING_DOWN", Message: "filestage is shutting down",
				Fix: "Reconnect and call the tool again."}), nil
		}
		defer d.leave()
		return next(ctx, req)
	}
}

func (d *Drain) enter() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closing {
		return false
	}
	d.n++
	return true
}

func (d *Drain) leave() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.n--
	if d.closing && d.n == 0 {
		close(d.idle)
	}
}

// Wait refuses new calls and waits for the ones in flight, or for ctx.
func (d *Drain) Wait(ctx context.Context) error {
	d.mu.Lock()
	if !d.closing {
		d.closing = true
		if d.n == 0 {
			close(d.idle)
		}
	}
	d.mu.Unlock()
	select {
	case <-d.idle:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

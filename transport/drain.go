package transport

import (
	"context"
	"sync"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/filestage/filestage/tools"
)

// Drain counts tool calls in flight so that a shutdown can let them finish
// before it closes the sessions their answers travel on; and it cancels
// the calls of a session whose client has gone.
type Drain struct {
	mu      sync.Mutex
	n       int
	closing bool
	idle    chan struct{}
	// calls holds the in-flight calls' cancel functions by session.
	calls map[string]map[*call]struct{}
}

type call struct{ cancel context.CancelFunc }

// NewDrain returns an open Drain.
func NewDrain() *Drain {
	return &Drain{idle: make(chan struct{}), calls: map[string]map[*call]struct{}{}}
}

// Middleware tracks each tool call; once the drain has begun, new calls are
// refused with a tool error.
func (d *Drain) Middleware(next server.ToolHandlerFunc) server.ToolHandlerFunc {
	return func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		c, session := &call{cancel}, ""
		if s := server.ClientSessionFromContext(ctx); s != nil {
			session = s.SessionID()
		}
		if !d.enter(session, c) {
			return tools.ErrorResult(&tools.Error{Status: 503, Slug: "SHUTTING_DOWN", Message: "filestage is shutting down",
				Fix: "Reconnect and call the tool again."}), nil
		}
		defer d.leave(session, c)
		return next(ctx, req)
	}
}

// Hooks cancel the calls of an SSE session that ends while they run: an
// SSE client that drops its stream ends its session, but mcp-go runs the
// session's calls on contexts that outlive the stream. A streamable HTTP
// call ends with its own request instead; its session may be swept for
// idleness while a long call runs, and that must not cancel the call.
func (d *Drain) Hooks() *server.Hooks {
	h := &server.Hooks{}
	h.AddOnUnregisterSession(func(_ context.Context, s server.ClientSession) {
		if _, streamable := s.(server.SessionWithStreamableHTTPConfig); streamable {
			return
		}
		d.cancel(s.SessionID())
	})
	return h
}

// cancel cancels the calls of one session.
func (d *Drain) cancel(session string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for c := range d.calls[session] {
		c.cancel()
	}
}

// CancelAll cancels every call in flight: the shutdown deadline passed.
func (d *Drain) CancelAll() {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, calls := range d.calls {
		for c := range calls {
			c.cancel()
		}
	}
}

func (d *Drain) enter(session string, c *call) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closing {
		return false
	}
	d.n++
	if d.calls[session] == nil {
		d.calls[session] = map[*call]struct{}{}
	}
	d.calls[session][c] = struct{}{}
	return true
}

func (d *Drain) leave(session string, c *call) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.n--
	if delete(d.calls[session], c); len(d.calls[session]) == 0 {
		delete(d.calls, session)
	}
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

package transport

import (
	"cmp"
	"context"
	"io"
	"log/slog"
	"time"

	"github.com/mark3labs/mcp-go/server"
)

// ServeStdio serves MCP on in and out until in ends or ctx ends. On ctx's
// end, tool calls in flight finish first (up to drainTimeout; zero:
// DefaultDrainTimeout). Nothing but protocol is written to out.
func ServeStdio(ctx context.Context, s *server.MCPServer, in io.Reader, out io.Writer, drain *Drain, drainTimeout time.Duration, log *slog.Logger) error {
	lctx, stop := context.WithCancel(context.WithoutCancel(ctx))
	defer stop()
	go func() {
		select {
		case <-lctx.Done():
		case <-ctx.Done():
			wctx, cancel := context.WithTimeout(lctx, cmp.Or(drainTimeout, DefaultDrainTimeout))
			defer cancel()
			if drain.Wait(wctx) != nil {
				// As over HTTP: cancelled calls remove their temporary
				// files before the process ends under them.
				log.Warn("tool calls still running at shutdown deadline; cancelling them")
				drain.CancelAll()
				gctx, cancel := context.WithTimeout(lctx, cancelGrace)
				defer cancel()
				drain.Wait(gctx)
			}
			stop()
		}
	}()
	stdio := server.NewStdioServer(s)
	stdio.SetErrorLogger(slog.NewLogLogger(log.Handler(), slog.LevelError))
	err := stdio.Listen(lctx, in, out)
	if lctx.Err() != nil {
		return nil
	}
	return err
}

package transport

import (
	"context"
	"io"
	"log/slog"
	"time"

	"github.com/mark3labs/mcp-go/server"
)

// ServeStdio serves MCP on in and out until in ends or ctx ends. On ctx's
// end, tool calls in flight finish first (up to 30 s). Nothing but protocol
// is written to out.
func ServeStdio(ctx context.Context, s *server.MCPServer, in io.Reader, out io.Writer, drain *Drain, log *slog.Logger) error {
	lctx, stop := context.WithCancel(context.WithoutCancel(ctx))
	defer stop()
	go func() {
		select {
		case <-lctx.Done():
		case <-ctx.Done():
			wctx, cancel := context.WithTimeout(lctx, 30*time.Second)
			defer cancel()
			drain.Wait(wctx)
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

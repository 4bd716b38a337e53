package transport

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
	"golang.org/x/sync/semaphore"
)

// serveHTTP runs Serve with h on a loopback port until the test ends.
func serveHTTP(t *testing.T, h http.Handler, o ServeOptions) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, ln, h, o) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return ln.Addr().String()
}

// rawRequest opens a connection and sends a request's headers with a body
// that announces length bytes but sends only sent of them.
func rawRequest(t *testing.T, addr, method, path string, headers map[string]string, length, sent int) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nContent-Length: %d\r\n", method, path, addr, length)
	for k, v := range headers {
		fmt.Fprintf(&b, "%s: %s\r\n", k, v)
	}
	b.WriteString("\r\n" + strings.Repeat(" ", sent))
	if _, err := io.WriteString(c, b.String()); err != nil {
		t.Fatal(err)
	}
	return c
}

// answerThenClose reads a response and reports its status, and whether the
// server then closed the connection, both within d.
func answerThenClose(c net.Conn, d time.Duration) (status int, closed bool, err error) {
	c.SetReadDeadline(time.Now().Add(d))
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return 0, false, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	_, err = br.ReadByte()
	return resp.StatusCode, errors.Is(err, io.EOF) || isReset(err), nil
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func isReset(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && !op.Timeout()
}

// TestRefusalReleasesConnection: every refused request is answered at once
// and its connection closed, while its body is still trickling in: net/http
// would otherwise read up to 256 KiB of it first, holding the connection.
func TestRefusalReleasesConnection(t *testing.T) {
	const token = "tok-123"
	auth := map[string]string{"Authorization": "Bearer " + token}
	tests := []struct {
		name, method, path string
		headers            map[string]string
		stateless          bool
		status             int
	}{
		{"no token /mcp", "POST", PathMCP, nil, false, 401},
		{"no token /message", "POST", PathMessage + "?sessionId=x", nil, false, 401},
		{"no token, stateless", "POST", PathMCP, nil, true, 401},
		{"foreign origin", "POST", PathMCP, map[string]string{"Authorization": "Bearer " + token, "Origin": "https://evil.example"}, false, 403},
		{"SSE off in stateless mode", "POST", PathMessage + "?sessionId=x", auth, true, 404},
		{"unknown path", "POST", "/nowhere", nil, false, 404},
		{"wrong method on /healthz", "POST", PathHealth, nil, false, 405},
		{"over the body cap", "POST", PathMCP, auth, false, 413},
		// An answer that is no refusal releases an unread body too.
		{"a body /healthz never reads", "GET", PathHealth, nil, false, 200},
		{"a body a redirect never reads", "POST", "/a/../mcp", nil, false, 307},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := NewHTTP(server.NewMCPServer("t", "1"), HTTPOptions{AuthToken: token, Stateless: tt.stateless, MaxBodyBytes: 1 << 20, Logger: slog.New(slog.DiscardHandler)})
			t.Cleanup(func() { h.CloseSessions(context.Background()) })
			addr := serveHTTP(t, h, ServeOptions{})
			length := 512 << 10
			if tt.status == 413 {
				length = 2 << 20
			}
			c := rawRequest(t, addr, tt.method, tt.path, tt.headers, length, 100)
			status, closed, err := answerThenClose(c, 3*time.Second)
			if err != nil {
				t.Fatalf("no answer while the body trickles: %v", err)
			}
			if status != tt.status || !closed {
				t.Errorf("got %d, closed %v; want %d and the connection closed", status, closed, tt.status)
			}
		})
	}
}

// TestSlowBodyIsCut: a body that arrives slower than the floor is cut, and
// the floor is lifted once the body is in: a long call after it runs on.
func TestSlowBodyIsCut(t *testing.T) {
	s := server.NewMCPServer("t", "1")
	s.AddTool(mcp.NewTool("sleep"), func(ctx context.Context, _ mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		select {
		case <-time.After(time.Second):
			return mcp.NewToolResultText("slept"), nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	})
	h := NewHTTP(s, HTTPOptions{Logger: slog.New(slog.DiscardHandler)})
	t.Cleanup(func() { h.CloseSessions(context.Background()) })
	addr := serveHTTP(t, h, ServeOptions{rate: bodyRate{grace: 300 * time.Millisecond, min: 1000, credit: 500 * time.Millisecond}})

	t.Run("trickle", func(t *testing.T) {
		c := rawRequest(t, addr, "POST", PathMCP, nil, 10000, 10)
		start := time.Now()
		stop := make(chan struct{})
		defer close(stop)
		go func() {
			for {
				select {
				case <-stop:
					return
				case <-time.After(100 * time.Millisecond):
					if _, err := c.Write([]byte(" ")); err != nil {
						return
					}
				}
			}
		}()
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		io.Copy(io.Discard, c) // until the server closes it
		if took := time.Since(start); took > 3*time.Second {
			t.Errorf("a 10 B/s body held the connection %v", took)
		}
	})
	t.Run("fast start, then a stall", func(t *testing.T) {
		// 50 KB at once is 50 s of credit at 1000 B/s; only 500 ms of
		// it counts.
		c := rawRequest(t, addr, "POST", PathMCP, nil, 100000, 50000)
		start := time.Now()
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		io.Copy(io.Discard, c)
		if took := time.Since(start); took > 3*time.Second {
			t.Errorf("a stalled body held the connection %v on credit", took)
		}
	})
	t.Run("long call after the body", func(t *testing.T) {
		c := rpcClient{url: "http://" + addr + PathMCP, version: mcp.LATEST_LEGACY_PROTOCOL_VERSION}
		session := c.session(t)
		resp := c.post(t, session, "tools/call", "sleep", `"id":2,`, `"name":"sleep","arguments":{}`)
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if !strings.Contains(string(b), "slept") {
			t.Errorf("the call did not finish: %s %s", resp.Status, b)
		}
	})
}

// TestMaxConnections: at the cap, a new connection replaces the one idle
// longest; when every connection is busy, it is closed at once.
func TestMaxConnections(t *testing.T) {
	h := NewHTTP(server.NewMCPServer("t", "1"), HTTPOptions{Logger: slog.New(slog.DiscardHandler)})
	t.Cleanup(func() { h.CloseSessions(context.Background()) })
	addr := serveHTTP(t, h, ServeOptions{MaxConnections: 3})

	t.Run("busy", func(t *testing.T) {
		var busy []net.Conn
		for range 3 {
			busy = append(busy, rawRequest(t, addr, "POST", PathMCP, nil, 1<<20, 10))
		}
		time.Sleep(100 * time.Millisecond) // let the server read their headers
		// The kernel completes the handshake; the server then closes
		// the connection without reading from it.
		extra, err := net.Dial("tcp", addr)
		if err == nil {
			defer extra.Close()
			io.WriteString(extra, "GET "+PathHealth+" HTTP/1.1\r\nHost: x\r\n\r\n")
			if _, _, err = answerThenClose(extra, 3*time.Second); err == nil {
				t.Error("a connection over the cap was served while every other one was busy")
			}
		}
		if isTimeout(err) {
			t.Errorf("a connection over the cap was held, not closed: %v", err)
		}
		for _, c := range busy {
			c.Close()
		}
		time.Sleep(300 * time.Millisecond) // for the server to see them go
	})
	t.Run("idle replaced", func(t *testing.T) {
		var idle []net.Conn
		for range 3 {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			idle = append(idle, c)
		}
		time.Sleep(idleEvictAfter + 200*time.Millisecond)
		c := rawRequest(t, addr, "GET", PathHealth, nil, 0, 0)
		if status, _, err := answerThenClose(c, 3*time.Second); err != nil || status != http.StatusOK {
			t.Fatalf("a new connection was not served in place of an idle one: %d %v", status, err)
		}
		closed := 0
		for _, c := range idle {
			c.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
			if _, err := c.Read(make([]byte, 1)); errors.Is(err, io.EOF) || isReset(err) {
				closed++
			}
		}
		if closed != 1 {
			t.Errorf("%d idle connections closed, want 1", closed)
		}
	})
}

// TestBodyMemory: the MCP request bodies held at once have a memory budget,
// taken as their bytes arrive past a small allowance: a large body that
// does not fit waits briefly, then is refused with 503, while small
// messages pass, and a body announced but not sent holds nothing.
func TestBodyMemory(t *testing.T) {
	h := NewHTTP(server.NewMCPServer("t", "1"), HTTPOptions{MaxBodyBytes: 1 << 20, Logger: slog.New(slog.DiscardHandler)})
	t.Cleanup(func() { h.CloseSessions(context.Background()) })
	h.bodies = semaphore.NewWeighted(2 * freeBodyBytes)
	addr := serveHTTP(t, h, ServeOptions{})
	for range 3 {
		rawRequest(t, addr, "POST", PathMCP, nil, 1<<20, 0) // announced, not sent
	}
	held := rawRequest(t, addr, "POST", PathMCP, nil, 1<<20, 3*freeBodyBytes) // takes the budget
	time.Sleep(200 * time.Millisecond)
	if resp := do(t, http.MethodPost, "http://"+addr+PathMCP, nil); resp.StatusCode != http.StatusOK {
		t.Errorf("a small message while the budget is full: %s", resp.Status)
	}
	c := rawRequest(t, addr, "POST", PathMCP, nil, 1<<20, 3*freeBodyBytes)
	status, _, err := answerThenClose(c, 5*time.Second)
	if err != nil || status != http.StatusServiceUnavailable {
		t.Errorf("a large body over the memory budget: %d %v, want 503", status, err)
	}
	held.Close()
	time.Sleep(200 * time.Millisecond)
	c = rawRequest(t, addr, "POST", PathMCP, nil, 3*freeBodyBytes, 3*freeBodyBytes)
	if status, _, err := answerThenClose(c, 5*time.Second); err != nil || status == http.StatusServiceUnavailable {
		t.Errorf("a large body once the budget is free: %d %v", status, err)
	}
}

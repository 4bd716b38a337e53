package transport

import (
	"context"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
)

// TestSessionCap: at --max-sessions a new session takes the place of the
// oldest one that never made a request; when every session is in use it is
// refused with 503 and Retry-After, an SSE stream counts as a session, and a
// session that ends makes room.
func TestSessionCap(t *testing.T) {
	srv := newAccessServer(t, server.NewMCPServer("t", "1"), HTTPOptions{MaxSessions: 2})
	c := rpcClient{url: srv.URL + PathMCP, version: mcp.LATEST_LEGACY_PROTOCOL_VERSION}
	initialize := func() *http.Response {
		return c.post(t, "", "initialize", "", `"id":1,`, `"protocolVersion":"`+c.version+`","capabilities":{},"clientInfo":{"name":"t","version":"1"}`)
	}
	status := func(session string) int {
		resp := c.post(t, session, "tools/list", "", `"id":2,`, "")
		resp.Body.Close()
		return resp.StatusCode
	}
	squatter := c.session(t)
	time.Sleep(10 * time.Millisecond) // a creation time of its own
	unused := c.session(t)
	// An initialize that opens no session (2026-07-28 has none) takes no
	// place, and ends no session to make one.
	modern := rpcClient{url: c.url, version: mcp.LATEST_PROTOCOL_VERSION}
	modern.post(t, "", "initialize", "", `"id":1,`, `"protocolVersion":"`+modern.version+`","capabilities":{},"clientInfo":{"name":"t","version":"1"}`).Body.Close()
	if h := srv.Config.Handler.(*HTTP); !h.sessions.owns(squatter, "local") {
		t.Error("a 2026-07-28 initialize ended a session to make room it does not take")
	}
	newcomer := c.session(t) // replaces the squatter
	if got := status(squatter); got != http.StatusNotFound {
		t.Errorf("the oldest unused session after a newcomer took its place: %d, want 404", got)
	}
	if status(unused) != http.StatusOK || status(newcomer) != http.StatusOK {
		t.Fatal("the sessions in use were ended")
	}

	resp := initialize()
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" || !strings.Contains(string(b), "--max-sessions") {
		t.Errorf("a session over the cap with every session in use: %s %q, want 503 with Retry-After naming --max-sessions", resp.Status, b)
	}
	if resp := do(t, http.MethodGet, srv.URL+PathSSE, nil); resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("an SSE stream over the cap: %s", resp.Status)
	}

	req, _ := http.NewRequest(http.MethodDelete, srv.URL+PathMCP, nil)
	req.Header.Set(server.HeaderKeySessionID, unused)
	req.Header.Set("MCP-Protocol-Version", c.version)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("DELETE: %v %v", resp, err)
	}
	c.session(t) // fails the test unless there is room again
}

// TestInitializeCap: what a session keeps of its initialize is bounded, on
// both transports.
func TestInitializeCap(t *testing.T) {
	srv := newAccessServer(t, server.NewMCPServer("t", "1"), HTTPOptions{})
	c := rpcClient{url: srv.URL + PathMCP, version: mcp.LATEST_LEGACY_PROTOCOL_VERSION}
	big := `"protocolVersion":"` + c.version + `","capabilities":{},"clientInfo":{"name":"` + strings.Repeat("x", MaxInitializeBytes) + `","version":"1"}`
	resp := c.post(t, "", "initialize", "", `"id":1,`, big)
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge || resp.Header.Get(server.HeaderKeySessionID) != "" {
		t.Errorf("streamable: %s, session %q; want 413 and no session", resp.Status, resp.Header.Get(server.HeaderKeySessionID))
	}

	stream := openSSE(t, srv.URL+PathSSE, "")
	endpoint := stream.next(t, "endpoint")
	msg := `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{` + big + `}}`
	resp, err := http.Post(srv.URL+endpoint, "application/json", strings.NewReader(msg))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("SSE: %s, want 413", resp.Status)
	}
	// mcp-go's SSE transport reads the first JSON value and ignores the
	// rest: a small initialize followed by anything must not pass as one.
	small := `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"` + c.version + `","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`
	resp, err = http.Post(srv.URL+endpoint, "application/json", strings.NewReader(small+` {"pad":"`+strings.Repeat("x", 2*MaxInitializeBytes)+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("SSE initialize with a tail: %s, want 400", resp.Status)
	}
}

// TestMadeUpSessions: only session IDs filestage minted are served; mcp-go
// alone would run a request in any session a client names.
func TestMadeUpSessions(t *testing.T) {
	srv := newAccessServer(t, server.NewMCPServer("t", "1"), HTTPOptions{})
	c := rpcClient{url: srv.URL + PathMCP, version: mcp.LATEST_LEGACY_PROTOCOL_VERSION}
	real := c.session(t)
	for _, id := range []string{"made-up", real + "x", strings.ToUpper(real), real[1:]} {
		resp := c.post(t, id, "tools/list", "", `"id":2,`, "")
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound && resp.StatusCode != http.StatusBadRequest {
			t.Errorf("session %q: %s, want 404", id, resp.Status)
		}
	}
	resp := c.post(t, real, "tools/list", "", `"id":2,`, "")
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("the real session: %s", resp.Status)
	}
	// mcp-go alone serves a GET stream for any session, and mints one for
	// a GET that names none, past any cap.
	get := func(id string) *http.Response {
		req, _ := http.NewRequest(http.MethodGet, c.url, nil)
		req.Header.Set("Accept", "text/event-stream")
		req.Header.Set("MCP-Protocol-Version", c.version)
		if id != "" {
			req.Header.Set(server.HeaderKeySessionID, id)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	for id, want := range map[string]int{"made-up": http.StatusNotFound, "": http.StatusBadRequest} {
		resp := get(id)
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("GET with session %q: %s, want %d", id, resp.Status, want)
		}
	}
	if n := srv.Config.Handler.(*HTTP).sessions.count(); n != 1 {
		t.Errorf("%d sessions live, want 1", n)
	}
	stream := get(real)
	defer stream.Body.Close()
	if stream.StatusCode != http.StatusOK {
		t.Errorf("GET for the real session: %s", stream.Status)
	}
	if resp := get(real); resp.StatusCode != http.StatusConflict {
		t.Errorf("a second GET stream for one session: %s, want 409", resp.Status)
		resp.Body.Close()
	}
}

// TestUnusedSessionsEnd: a session that made no request since its
// initialize ends after FreshSessionTTL, and mcp-go lets go of it; one that
// made requests lives on.
func TestUnusedSessionsEnd(t *testing.T) {
	var mu sync.Mutex
	unregistered := map[string]bool{}
	hooks := &server.Hooks{}
	hooks.AddOnUnregisterSession(func(_ context.Context, s server.ClientSession) {
		mu.Lock()
		unregistered[s.SessionID()] = true
		mu.Unlock()
	})
	s := server.NewMCPServer("t", "1", server.WithHooks(hooks))
	o := HTTPOptions{}
	srv := newAccessServer(t, s, o)
	h := srv.Config.Handler.(*HTTP)
	c := rpcClient{url: srv.URL + PathMCP, version: mcp.LATEST_LEGACY_PROTOCOL_VERSION}
	idle, used := c.session(t), c.session(t)
	c.post(t, used, "tools/list", "", `"id":2,`, "").Body.Close()

	h.sessions.endFresh(time.Now().Add(time.Second))

	if n := h.sessions.count(); n != 1 {
		t.Errorf("%d sessions live, want 1", n)
	}
	mu.Lock()
	if !unregistered[idle] || unregistered[used] {
		t.Errorf("unregistered %v; want the idle session only", unregistered)
	}
	mu.Unlock()
	for id, want := range map[string]int{idle: http.StatusNotFound, used: http.StatusOK} {
		resp := c.post(t, id, "tools/list", "", `"id":3,`, "")
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("session %q after the sweep: %s, want %d", id, resp.Status, want)
		}
	}
}

// TestCancelShapes: a notifications/cancelled from another client, in any
// shape (every field of the message in every JSON type, keys in other
// cases), never cancels a victim's call, in either mode and protocol
// version. The method alone decides what the message is; anything not
// provably scoped to the caller's own session is dropped.
func TestCancelShapes(t *testing.T) {
	types := []string{`null`, `true`, `7`, `"7"`, `[]`, `{}`, `[7]`, `{"a":1}`, `"2026-07-28"`, `{"io.modelcontextprotocol/protocolVersion":7}`}
	fields := []func(v string) string{
		func(v string) string {
			return `"jsonrpc":` + v + `,"method":"notifications/cancelled","params":{"requestId":7}`
		},
		func(v string) string {
			return `"id":` + v + `,"method":"notifications/cancelled","params":{"requestId":7}`
		},
		func(v string) string { return `"method":"notifications/cancelled","params":` + v },
		func(v string) string { return `"method":"notifications/cancelled","params":{"requestId":` + v + `}` },
		func(v string) string {
			return `"method":"notifications/cancelled","params":{"requestId":7,"reason":` + v + `}`
		},
		func(v string) string {
			return `"method":"notifications/cancelled","params":{"requestId":7,"_meta":` + v + `}`
		},
		func(v string) string {
			return `"method":"notifications/cancelled","params":{"requestId":7,"_meta":{"io.modelcontextprotocol/protocolVersion":` + v + `}}`
		},
		func(v string) string {
			return `"method":"notifications/cancelled","params":{"requestId":7,"_meta":{"progressToken":` + v + `}}`
		},
		func(v string) string {
			return `"METHOD":"notifications/cancelled","PARAMS":{"REQUESTID":7,"_META":` + v + `}`
		},
		func(v string) string {
			return `"method":"notifications\/cancelled","paramſ":{"requestId":7,"x":` + v + `}`
		},
	}
	versions := []string{mcp.LATEST_LEGACY_PROTOCOL_VERSION, mcp.LATEST_PROTOCOL_VERSION}
	for _, stateless := range []bool{false, true} {
		// The victim's call and the attacker's cancel each in either
		// version: a sessionless (2026-07-28) call is what a cancel that
		// mcp-go reads as sessionless would reach, whatever session the
		// attacker's own legacy headers name.
		for _, pair := range [][2]string{{versions[0], versions[0]}, {versions[1], versions[1]}, {versions[1], versions[0]}, {versions[0], versions[1]}} {
			victimVersion, version := pair[0], pair[1]
			name := map[bool]string{false: "stateful", true: "stateless"}[stateless] + "/victim " + victimVersion + "/attacker " + version
			t.Run(name, func(t *testing.T) {
				s, calls, release := waitServer()
				srv := newAccessServer(t, s, HTTPOptions{Stateless: stateless})
				c := rpcClient{url: srv.URL + PathMCP, version: version}
				v := rpcClient{url: srv.URL + PathMCP, version: victimVersion}
				victim, attacker := v.session(t), c.session(t)
				answered := make(chan struct{})
				go func() {
					defer close(answered)
					v.post(t, victim, "tools/call", "wait", `"id":7,`, `"name":"wait","arguments":{}`).Body.Close()
				}()
				call := <-calls
				for _, field := range fields {
					for _, v := range types {
						body := `{"jsonrpc":"2.0",` + field(v) + `}`
						if strings.HasPrefix(field(v), `"jsonrpc"`) {
							body = `{` + field(v) + `}`
						}
						req, _ := http.NewRequest(http.MethodPost, c.url, strings.NewReader(body))
						req.Header.Set("Content-Type", "application/json")
						req.Header.Set("Accept", "application/json, text/event-stream")
						req.Header.Set("MCP-Protocol-Version", version)
						if attacker != "" {
							req.Header.Set(server.HeaderKeySessionID, attacker)
						}
						resp, err := http.DefaultClient.Do(req)
						if err != nil {
							t.Fatal(err)
						}
						resp.Body.Close()
						if call.Err() != nil {
							t.Fatalf("%s cancelled another client's call", body)
						}
					}
				}
				release <- struct{}{}
				<-answered
			})
		}
	}
}

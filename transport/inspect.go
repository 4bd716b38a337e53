package transport

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"strconv"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
	"golang.org/x/sync/semaphore"

	"github.com/filestage/filestage/auth"
)

// inspect reads each POST body once (mcp-go reads bodies whole anyway)
// and keeps from mcp-go what it must not see:
//   - a notifications/cancelled that is not provably scoped to the
//     caller's own session (see scopedCancel);
//   - an initialize over MaxInitializeBytes, or one that would open a
//     session over the cap when every session is in use.
//
// The method is read with the decoder and the struct shape mcp-go uses,
// so that no spelling (JSON escapes, key case) reads one way here and
// another there. streamable says the endpoint is /mcp, not SSE's /message.
func (h *HTTP) inspect(next http.Handler, streamable bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Method == http.MethodPost && r.URL.Path == PathMessage && r.URL.Query().Get("sessionId") != "" &&
			!h.sessions.ownsSSE(r.URL.Query().Get("sessionId"), auth.FromContext(r.Context()).ID):
			// Another principal's SSE session is one that does not exist:
			// mcp-go is asked for one no ID names, and answers as it does
			// for any unknown session, headers and bytes alike.
			q := r.URL.Query()
			q.Set("sessionId", noSession)
			r.URL.RawQuery = q.Encode()
			next.ServeHTTP(w, r)
			return
		case r.Method == http.MethodPost:
		case streamable && !h.stateless && (r.Method == http.MethodGet || r.Method == http.MethodDelete):
			h.sessionRequest(next, w, r)
			return
		default:
			next.ServeHTTP(w, r)
			return
		}
		// The body is held in memory until the call ends (mcp-go reads
		// bodies whole). Past a small allowance, room for its bytes is
		// taken from the budget as they arrive, so that many large bodies
		// at once cannot exhaust the memory, and a body announced but
		// never sent holds nothing.
		held := &heldBody{r: r.Body, sem: h.bodies, ctx: r.Context()}
		defer held.release()
		body, err := io.ReadAll(held)
		switch {
		case errors.Is(err, errBodyBudget):
			w.Header().Set("Retry-After", "5")
			http.Error(w, "busy: the request bodies being handled fill the server's memory budget for them; try again in a few seconds", http.StatusServiceUnavailable)
			return
		case err != nil:
			status := http.StatusBadRequest
			if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
				status = http.StatusRequestEntityTooLarge
			}
			http.Error(w, "reading the request body: "+err.Error(), status)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		p := auth.FromContext(r.Context())
		// A principal's tool calls need a scope it may lack: those of a
		// principal with every scope are not looked at.
		scoped := !h.allScopes(p)
		// Without a backslash, no JSON escape can spell a method: a body
		// holding none of the names is none of the messages, and is not
		// decoded.
		if bytes.IndexByte(body, '\\') < 0 && !bytes.Contains(body, []byte("initialize")) && !bytes.Contains(body, []byte("cancelled")) &&
			(!scoped || !bytes.Contains(body, []byte(mcp.MethodToolsCall))) {
			h.markUsed(r, streamable)
			next.ServeHTTP(w, r)
			return
		}
		var msg struct {
			ID     json.RawMessage `json:"id"`
			Method string          `json:"method"`
			Params struct {
				Name string `json:"name"`
			} `json:"params"`
		}
		if err := json.Unmarshal(body, &msg); err != nil {
			// The SSE transport would read the first JSON value and ignore
			// the rest: an initialize with a tail would pass this check
			// unread. Streamable HTTP refuses such bodies anyway.
			rpcError(w, http.StatusBadRequest, nil, mcp.PARSE_ERROR, "the body is not one JSON-RPC message: "+err.Error())
			return
		}
		switch msg.Method {
		case string(mcp.MethodInitialize):
			opensSession(r.Context())
			if len(body) > MaxInitializeBytes {
				rpcError(w, http.StatusRequestEntityTooLarge, msg.ID, mcp.INVALID_REQUEST,
					"initialize is "+strconv.Itoa(len(body))+" bytes; the limit is "+strconv.Itoa(MaxInitializeBytes)+": send a short clientInfo and only the capabilities the client has")
				return
			}
			if streamable && !h.stateless && mintsSession(r, body) {
				release, full := h.sessions.admit(p.ID)
				if full != "" {
					w.Header().Set("Retry-After", "30")
					rpcError(w, http.StatusServiceUnavailable, msg.ID, mcp.INTERNAL_ERROR, tooManySessions(full))
					return
				}
				defer release()
			}
		case string(mcp.MethodNotificationCancelled):
			if streamable && !h.scopedCancel(r, body) {
				w.WriteHeader(http.StatusAccepted)
				return
			}
		case string(mcp.MethodNotificationInitialized):
			// Part of opening a session, not a use of it.
		case string(mcp.MethodToolsCall):
			if scope, ok := h.toolScopes[msg.Params.Name]; ok && !p.Allows(scope) {
				h.insufficientScope(w, r, msg.ID, msg.Params.Name, scope)
				return
			}
			h.markUsed(r, streamable)
		default:
			h.markUsed(r, streamable)
		}
		next.ServeHTTP(w, r)
	})
}

// sessionRequest lets a GET stream or a DELETE through only for a live
// session. mcp-go serves a GET stream without asking whether it knows the
// session, and mints a session for one that names none, past any cap.
// Each session may hold one stream, and holding one is using it.
func (h *HTTP) sessionRequest(next http.Handler, w http.ResponseWriter, r *http.Request) {
	id := r.Header.Get(server.HeaderKeySessionID)
	if id == "" {
		http.Error(w, "Mcp-Session-Id is required: initialize a session first", http.StatusBadRequest)
		return
	}
	owner := auth.FromContext(r.Context()).ID
	if r.Method == http.MethodDelete {
		if !h.sessions.owns(id, owner) {
			http.Error(w, "Session not found", http.StatusNotFound)
			return
		}
		next.ServeHTTP(w, r)
		return
	}
	end, status := h.sessions.openStream(id, owner)
	if status != 0 {
		http.Error(w, map[int]string{http.StatusNotFound: "Session not found", http.StatusConflict: "this session already has a stream open (GET " + PathMCP + ")"}[status], status)
		return
	}
	defer end()
	next.ServeHTTP(w, r)
}

// mintsSession reports whether mcp-go will open a session for an
// initialize: a JSON body of the legacy protocol era, read as mcp-go reads
// it. Others must not take a place (or end a session to make one).
func mintsSession(r *http.Request, body []byte) bool {
	if t, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || t != "application/json" {
		return false
	}
	modern, _ := modernEra(r, body) // as mcp-go: a _meta it cannot read is no era
	return !modern
}

// modernEra reads a message's protocol era as mcp-go does: 2026-07-28 when
// its header or its _meta says so. read is false when the _meta could not
// be decoded, which mcp-go takes to mean no era at all.
func modernEra(r *http.Request, body []byte) (modern, read bool) {
	var era struct {
		Params struct {
			Meta *mcp.Meta `json:"_meta"`
		} `json:"params"`
	}
	// A failed decode may leave a _meta it read before the failure:
	// mcp-go takes none then, and neither may this.
	read = json.Unmarshal(body, &era) == nil
	return mcp.IsModernProtocol(r.Header.Get(mcp.HeaderProtocolVersion)) || (read && mcp.IsModernProtocol(era.Params.Meta.ProtocolVersion())), read
}

// noSession is an SSE session ID no session has: minted IDs are base64url.
const noSession = "!"

// errBodyBudget: the body memory budget had no room within bodyWait.
var errBodyBudget = errors.New("the request body memory budget is used up")

// freeBodyBytes is what a request body may hold without taking from the
// budget: JSON-RPC messages are small, and must not queue behind large
// ones. Connections are capped, and so is this.
const freeBodyBytes = 64 << 10

// heldBody reserves room in the body budget for the bytes it reads past
// freeBodyBytes, in steps, waiting up to bodyWait in all.
type heldBody struct {
	r        io.Reader
	sem      *semaphore.Weighted
	ctx      context.Context
	read     int64
	held     int64
	deadline time.Time
}

func (b *heldBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	b.read += int64(n)
	if need := b.read - freeBodyBytes - b.held; need > 0 {
		if b.deadline.IsZero() {
			b.deadline = time.Now().Add(bodyWait)
		}
		step := max(freeBodyBytes, need)
		ctx, cancel := context.WithDeadline(b.ctx, b.deadline)
		rerr := b.sem.Acquire(ctx, step)
		cancel()
		if rerr != nil {
			return 0, errBodyBudget
		}
		b.held += step
	}
	return n, err
}

func (b *heldBody) release() {
	if b.held > 0 {
		b.sem.Release(b.held)
	}
}

// scopedCancel reports whether mcp-go will look up the call a cancel names
// in the caller's own session. mcp-go finds the call by session ID and
// request ID, and every request without a session (every one in
// --stateless mode, every 2026-07-28 one whatever Mcp-Session-Id it
// carries) has the empty ID: client B's "cancel request 3" would cancel
// client A's request 3, and request IDs are small counters that collide
// all the time. So a cancel passes only from a live legacy session, read
// as mcp-go reads the protocol era; a body whose _meta cannot be read for
// certain is dropped. Such clients cancel a call by closing its request.
func (h *HTTP) scopedCancel(r *http.Request, body []byte) bool {
	id := r.Header.Get(server.HeaderKeySessionID)
	if h.stateless || id == "" || !h.sessions.owns(id, auth.FromContext(r.Context()).ID) {
		return false
	}
	modern, read := modernEra(r, body)
	return read && !modern
}

// markUsed keeps a streamable HTTP session that makes requests from being
// ended as one that never did.
func (h *HTTP) markUsed(r *http.Request, streamable bool) {
	if id := r.Header.Get(server.HeaderKeySessionID); streamable && id != "" && !h.stateless {
		h.sessions.use(id, auth.FromContext(r.Context()).ID)
	}
}

// limitSSE caps SSE streams with the streamable sessions: each stream is a
// session for as long as it is open.
func (h *HTTP) limitSSE(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet {
			next.ServeHTTP(w, r)
			return
		}
		release, full := h.sessions.openSSE(auth.FromContext(r.Context()).ID)
		if full != "" {
			w.Header().Set("Retry-After", "30")
			http.Error(w, tooManySessions(full), http.StatusServiceUnavailable)
			return
		}
		defer release()
		slot := &sseSlot{}
		defer func() { h.sessions.endSSE(slot.id) }()
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), sseSlotKey{}, slot)))
	})
}

// tooManySessions says which session cap left no room, and what to do.
func tooManySessions(full string) string {
	if full == fullClient {
		return "this client has as many sessions open as it may, all of them in use (--client-max-sessions): close one it no longer needs (DELETE " + PathMCP + "), or try again later"
	}
	return "too many sessions are open, all of them in use (--max-sessions): close one you no longer need (DELETE " + PathMCP + "), or try again later"
}

// bodyWait is how long a request waits for body memory before it is
// refused with 503.
const bodyWait = 2 * time.Second

// bodyMemory is the memory all MCP request bodies held at once may take:
// room for 16 of the largest, and never less than 64 MiB.
func bodyMemory(maxBody int64) int64 { return max(64<<20, 16*maxBody) }

// rpcError answers with a JSON-RPC error and an HTTP status.
func rpcError(w http.ResponseWriter, status int, id json.RawMessage, code int, message string) {
	var rid any
	if len(id) > 0 {
		rid = id
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{"jsonrpc": "2.0", "id": rid, "error": map[string]any{"code": code, "message": message}})
}

package transport

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/mark3labs/mcp-go/server"

	"github.com/filestage/filestage/auth"
)

// Session limits. A session costs what mcp-go keeps of its initialize
// (client info and capabilities) until it ends; a client that only
// initializes would otherwise hold that for the whole idle TTL.
const (
	// DefaultMaxSessions caps live sessions (streamable HTTP and SSE
	// together) when --max-sessions is not set.
	DefaultMaxSessions = 1000
	// MaxInitializeBytes caps an initialize message, and so what a session
	// keeps of it. Real clients send well under 2 KiB.
	MaxInitializeBytes = 16 << 10
	// FreshSessionTTL ends a session that has made no request since its
	// initialize, however long the idle TTL of one that has.
	FreshSessionTTL = time.Minute
	// SessionIdleTTL ends a streamable HTTP session that has been idle
	// this long: clients that never send DELETE (the TypeScript SDK's
	// close does not) would otherwise keep theirs until shutdown.
	SessionIdleTTL = time.Hour
)

var errUnknownSession = errors.New("unknown session")

// sessions is the streamable HTTP session ID manager (mcp-go's
// SessionIdManager), and counts SSE streams too: it mints unguessable IDs,
// knows which are live, caps how many are, and ends the ones that have
// never been used. mcp-go's default manager accepts any ID a client makes
// up, which would let a client run requests in sessions nobody opened.
type sessions struct {
	max int
	// perOwner caps one principal's sessions; zero means no cap.
	perOwner int
	// end unregisters a session from the MCP server, dropping what it
	// kept of the initialize.
	end func(id string)

	mu   sync.Mutex
	live map[string]*sessionState
	sse  int
	// sseOwners are the principals of the live SSE sessions, by ID.
	sseOwners map[string]string
	// pending counts initializes admitted but not yet answered, and
	// pendingBy and sseBy those and the SSE streams by owner.
	pending   int
	pendingBy map[string]int
	sseBy     map[string]int
	stop      chan struct{}
}

type sessionState struct {
	created   time.Time
	used      bool
	streaming bool
	// owner is the ID of the principal that opened the session: no other
	// may use it, or learn that it exists.
	owner string
	// unwatch stops ending the session when its owner is revoked.
	unwatch func() bool
}

func newSessions(max, perOwner int, end func(string)) *sessions {
	if max <= 0 {
		max = DefaultMaxSessions
	}
	s := &sessions{max: max, perOwner: perOwner, end: end, live: map[string]*sessionState{}, sseOwners: map[string]string{},
		pendingBy: map[string]int{}, sseBy: map[string]int{}, stop: make(chan struct{})}
	go s.sweep()
	return s
}

// Why a session was not admitted.
const (
	fullServer = "server"
	fullClient = "client"
)

// admit makes room for a session owner is initializing: at the cap, the
// oldest session that has made no request since its initialize is ended
// to make it, so that sessions opened only to hold a place cannot lock
// newcomers out; at the owner's own cap, the owner's oldest such session.
// The place is held until release, called once the initialize is answered
// (the session then counts itself). full says which cap left no room:
// every session there is in use.
func (s *sessions) admit(owner string) (release func(), full string) {
	s.mu.Lock()
	var ended []string
	if s.perOwner > 0 && s.ownedBy(owner) >= s.perOwner {
		oldest := s.oldestUnused(owner)
		if oldest == "" {
			s.mu.Unlock()
			return nil, fullClient
		}
		s.drop(oldest)
		ended = append(ended, oldest)
	}
	if len(s.live)+s.sse+s.pending >= s.max {
		oldest := s.oldestUnused("")
		if oldest == "" {
			s.mu.Unlock()
			for _, id := range ended {
				s.end(id)
			}
			return nil, fullServer
		}
		s.drop(oldest)
		ended = append(ended, oldest)
	}
	s.pending++
	s.pendingBy[owner]++
	s.mu.Unlock()
	for _, id := range ended {
		s.end(id)
	}
	return sync.OnceFunc(func() {
		s.mu.Lock()
		s.pending--
		if s.pendingBy[owner]--; s.pendingBy[owner] == 0 {
			delete(s.pendingBy, owner)
		}
		s.mu.Unlock()
	}), ""
}

// ownedBy counts owner's sessions, admitted ones included; s.mu is held.
func (s *sessions) ownedBy(owner string) int {
	n := s.pendingBy[owner] + s.sseBy[owner]
	for _, st := range s.live {
		if st.owner == owner {
			n++
		}
	}
	return n
}

// oldestUnused is the oldest session that has made no request since its
// initialize, of owner's or, with owner "", of anyone's; s.mu is held.
func (s *sessions) oldestUnused(owner string) string {
	var oldest string
	var at time.Time
	for id, st := range s.live {
		if !st.used && (owner == "" || st.owner == owner) && (oldest == "" || st.created.Before(at)) {
			oldest, at = id, st.created
		}
	}
	return oldest
}

// drop forgets a live session; s.mu is held.
func (s *sessions) drop(id string) {
	if st, ok := s.live[id]; ok {
		st.unwatch()
		delete(s.live, id)
	}
}

// openStream marks a session as holding its one GET stream, and as used;
// the status says why not (404: no such session of owner's, 409: it has
// one).
func (s *sessions) openStream(id, owner string) (end func(), status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, ok := s.live[id]
	switch {
	case !ok || st.owner != owner:
		return nil, http.StatusNotFound
	case st.streaming:
		return nil, http.StatusConflict
	}
	st.used, st.streaming = true, true
	return func() {
		s.mu.Lock()
		st.streaming = false
		s.mu.Unlock()
	}, 0
}

// ResolveSessionIdManager gives mcp-go the session manager of r's
// principal: the sessions it opens are its own, and it can use no other.
// Without a request (mcp-go's idle sweep, shutdown) only Terminate is
// called.
func (s *sessions) ResolveSessionIdManager(r *http.Request) server.SessionIdManager {
	if r == nil {
		return ownedSessions{s, auth.Local()}
	}
	return ownedSessions{s, auth.FromContext(r.Context())}
}

// ownedSessions is the session ID manager mcp-go uses for one principal's
// request.
type ownedSessions struct {
	s *sessions
	p *auth.Principal
}

// Generate mints the ID of a session being initialized, owned by the
// principal, and ends it when the principal is revoked.
func (o ownedSessions) Generate() string {
	id := newSessionID()
	st := &sessionState{created: time.Now(), owner: o.p.ID}
	st.unwatch = context.AfterFunc(o.p.Revoked(), func() { o.s.revoke(id) })
	o.s.mu.Lock()
	o.s.live[id] = st
	o.s.mu.Unlock()
	return id
}

// Validate accepts the principal's live sessions only: another's is
// refused exactly as one that does not exist.
func (o ownedSessions) Validate(id string) (bool, error) {
	if !o.s.owns(id, o.p.ID) {
		return false, errUnknownSession
	}
	return false, nil
}

// Terminate ends a session: a client's DELETE (let through only for the
// owner's), or mcp-go's idle sweep.
func (o ownedSessions) Terminate(id string) (bool, error) {
	o.s.mu.Lock()
	o.s.drop(id)
	o.s.mu.Unlock()
	return false, nil
}

func newSessionID() string {
	b := make([]byte, 24)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// revoke ends a session whose owner's credentials were withdrawn.
func (s *sessions) revoke(id string) {
	s.mu.Lock()
	_, ok := s.live[id]
	s.drop(id)
	s.mu.Unlock()
	if ok {
		s.end(id)
	}
}

// use marks owner's session as having made a request; it reports whether
// the session is live and owner's.
func (s *sessions) use(id, owner string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, ok := s.live[id]
	if ok && st.owner == owner {
		st.used = true
		return true
	}
	return false
}

// owns reports whether id is a live streamable HTTP session of owner's.
func (s *sessions) owns(id, owner string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, ok := s.live[id]
	return ok && st.owner == owner
}

// openSSE takes a place for owner's SSE stream, whose session lives as
// long as the stream; release gives it back. full says which cap left no
// room.
func (s *sessions) openSSE(owner string) (release func(), full string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.perOwner > 0 && s.ownedBy(owner) >= s.perOwner:
		return nil, fullClient
	case len(s.live)+s.sse+s.pending >= s.max:
		return nil, fullServer
	}
	s.sse++
	s.sseBy[owner]++
	return sync.OnceFunc(func() {
		s.mu.Lock()
		s.sse--
		if s.sseBy[owner]--; s.sseBy[owner] == 0 {
			delete(s.sseBy, owner)
		}
		s.mu.Unlock()
	}), ""
}

// sseSlot carries, in an SSE stream's request context, the ID mcp-go
// gives its session, so that it can be forgotten when the stream ends.
type sseSlot struct{ id string }

type sseSlotKey struct{}

// generateSSE mints an SSE session's ID, owned by the stream's principal
// (mcp-go's SessionIDGenFunc).
func (s *sessions) generateSSE(ctx context.Context, _ *http.Request) (string, error) {
	id := newSessionID()
	s.mu.Lock()
	s.sseOwners[id] = auth.FromContext(ctx).ID
	s.mu.Unlock()
	if slot, ok := ctx.Value(sseSlotKey{}).(*sseSlot); ok {
		slot.id = id
	}
	return id, nil
}

// ownsSSE reports whether id is a live SSE session of owner's.
func (s *sessions) ownsSSE(id, owner string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	o, ok := s.sseOwners[id]
	return ok && o == owner
}

func (s *sessions) endSSE(id string) {
	s.mu.Lock()
	delete(s.sseOwners, id)
	s.mu.Unlock()
}

// count is how many sessions are live.
func (s *sessions) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.live) + s.sse
}

// sweep ends sessions that were never used within FreshSessionTTL.
func (s *sessions) sweep() {
	t := time.NewTicker(FreshSessionTTL / 4)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			s.endFresh(time.Now().Add(-FreshSessionTTL))
		}
	}
}

// endFresh ends the sessions created before cutoff that made no request.
func (s *sessions) endFresh(cutoff time.Time) {
	var ended []string
	s.mu.Lock()
	for id, st := range s.live {
		if !st.used && st.created.Before(cutoff) {
			s.drop(id)
			ended = append(ended, id)
		}
	}
	s.mu.Unlock()
	for _, id := range ended {
		s.end(id)
	}
}

func (s *sessions) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	select {
	case <-s.stop:
	default:
		close(s.stop)
	}
}

// deleteSession ends a streamable HTTP session the way a client's DELETE
// does, which is the one way to make mcp-go drop all it keeps of it.
func deleteSession(h http.Handler, id string) {
	req, err := http.NewRequestWithContext(context.Background(), http.MethodDelete, PathMCP, http.NoBody)
	if err != nil {
		return
	}
	req.Header.Set(server.HeaderKeySessionID, id)
	h.ServeHTTP(discard{header: http.Header{}}, req)
}

// discard is a ResponseWriter for requests made from inside.
type discard struct{ header http.Header }

func (d discard) Header() http.Header         { return d.header }
func (d discard) Write(p []byte) (int, error) { return len(p), nil }
func (d discard) WriteHeader(int)             {}

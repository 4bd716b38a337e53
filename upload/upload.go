// Package upload lets a person hand filestage a file of their own, without
// it passing through the model: a single-use link to a page where the file
// is sent with the tus resumable upload protocol (tusd), hashed as it
// arrives, and staged once complete.
package upload

import (
	"context"
	"crypto/md5"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tus/tusd/v2/pkg/filestore"
	"github.com/tus/tusd/v2/pkg/handler"
	"github.com/tus/tusd/v2/pkg/memorylocker"
	expslog "golang.org/x/exp/slog"

	"github.com/filestage/filestage/source"
	"github.com/filestage/filestage/spool"
)

// Paths served.
const (
	// PathPrefix is where links' pages live: PathPrefix + ID.
	PathPrefix = "/u/"
	// PathTus is the tus endpoint; an upload's ID is its link's.
	PathTus = "/u/tus/"
	// PathAssets serves the page's scripts and styles.
	PathAssets = "/u/assets/"
)

// DefaultTTL is how long a link works when --upload-link-ttl is not set.
const DefaultTTL = 30 * time.Minute

// activeGrace is how recently bytes must have arrived for an upload to
// outlive its link's time.
const activeGrace = 2 * time.Minute

// Spool room is taken reserveStep at a time, and chunks are copied
// copyBuffer at a time.
const (
	reserveStep = 1 << 20
	copyBuffer  = 1 << 20
)

// headBytes are the first bytes the type is judged from.
const headBytes = 3072

// Request is what an upload link asks of the person.
type Request struct {
	// Owner is the principal that asked: only it may read the upload.
	Owner string
	// Namespace is the owner's part of the storage.
	Namespace   string
	ToolSlug    string
	ToolkitSlug string
	// Filename is a suggestion shown on the page.
	Filename string
	// Accept filters types: "application/pdf", "image/*", or "" for any.
	Accept string
	// MaxBytes caps the file; it is at most the server's cap.
	MaxBytes int64
	// Message is one line on the page: what is needed, and why.
	Message string
}

// State is where an upload stands.
type State string

const (
	Waiting State = "waiting_for_user"
	// staging: the file is complete and being stored; callers see
	// Receiving.
	staging   State = "staging"
	Receiving State = "receiving"
	Staged    State = "staged"
	Expired   State = "expired"
	Failed    State = "failed"
)

// Status is an upload's state, as the tools and the page see it.
type Status struct {
	ID       string
	URL      string
	State    State
	Received int64
	// Total is the size the browser announced; 0 before it started.
	Total   int64
	Expires time.Time
	// Result is what Stage returned, once Staged.
	Result any
	// Err says why, once Failed.
	Err error
	Request
}

// Finished is a complete upload, ready to stage: its bytes, summed once
// as they arrived, in a spool file that a store on this disk may keep.
type Finished struct {
	Request
	File *spool.File
	// Type is the MIME type judged from the first bytes.
	Type string
	// Name is the file's name, as the browser gave it.
	Name string
}

// Options configure the uploads.
type Options struct {
	// Dir holds uploads in progress: each process keeps its own in a
	// folder below it, so replicas may share it.
	Dir string
	// PublicURL is where people reach this server.
	PublicURL string
	TTL       time.Duration
	// MaxBytes is the server's cap on one file.
	MaxBytes int64
	// Spool bounds the disk uploads in progress take, with the stage
	// calls': bytes are counted as they arrive.
	Spool *spool.Budget
	// Stage stores a finished upload and returns its descriptor.
	Stage  func(ctx context.Context, f Finished) (any, error)
	Logger *slog.Logger
}

// Manager keeps the links and serves their pages and uploads.
type Manager struct {
	o Options
	// dir is this process's folder below o.Dir.
	dir   string
	store filestore.FileStore
	tus   *handler.UnroutedHandler

	mu    sync.Mutex
	links map[string]*link
	stop  chan struct{}
}

// link is one upload link and what has arrived through it.
type link struct {
	Request
	id       string
	expires  time.Time
	state    State
	received int64
	total    int64
	result   any
	err      error
	// changed is closed and replaced whenever the state or received
	// count changes, for those waiting on it.
	changed chan struct{}

	// What has arrived so far: the MD5 state survives a resumed upload,
	// since every byte is hashed once, in order.
	md5  hash.Hash
	head []byte
	typ  string
	// held is the spool room taken for the bytes so far.
	held int64
	// active is when bytes last arrived: an upload under way outlives
	// the link's time while it keeps going.
	active time.Time
	// gen counts the uploads begun through the link: a request of an
	// earlier one writes nothing into a later one's sums.
	gen int
}

// New opens a folder of this process's own below o.Dir for its uploads:
// links do not outlive the process, and Close removes it. Replicas may
// share o.Dir (the local store's data directory on a shared volume), so
// a process removes only what no process has touched for
// staleAfter(o.TTL), which a crash left behind.
func New(o Options) (*Manager, error) {
	if o.TTL <= 0 {
		o.TTL = DefaultTTL
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(o.Dir, 0o700); err != nil {
		return nil, err
	}
	if n, _ := spool.SweepMatching(o.Dir, "*", staleAfter(o.TTL)); n > 0 {
		o.Logger.Info("removed uploads a crash left behind", "count", n, "dir", o.Dir)
	}
	dir, err := os.MkdirTemp(o.Dir, "run-")
	if err != nil {
		return nil, err
	}
	m := &Manager{o: o, dir: dir, store: filestore.New(dir), links: map[string]*link{}, stop: make(chan struct{})}
	composer := handler.NewStoreComposer()
	(&hashingStore{m: m}).UseIn(composer)
	composer.UseLocker(patientLocker{memorylocker.New()})
	m.tus, err = handler.NewUnroutedHandler(handler.Config{
		StoreComposer: composer,
		// Relative: tusd finds upload IDs by cutting the request path at
		// it. The page uses the upload URLs from its own origin.
		BasePath:             PathTus,
		MaxSize:              o.MaxBytes,
		DisableDownload:      true,
		DisableConcatenation: true,
		// tusd logs every request, with its own slog (x/exp's).
		Logger:                    expslog.New(expslog.NewTextHandler(io.Discard, nil)),
		PreUploadCreateCallback:   m.preCreate,
		PreFinishResponseCallback: m.preFinish,
	})
	if err != nil {
		return nil, err
	}
	go m.sweep()
	return m, nil
}

// Link caps: a principal's live links, and all of them.
const (
	MaxLinksPerOwner = 16
	MaxLinks         = 4096
)

// ErrTooManyLinks: the caller, or the server, has as many live links as it
// may.
var ErrTooManyLinks = errors.New("too many upload links are open")

// Create makes a link for r.
func (m *Manager) Create(r Request) (Status, error) {
	if r.MaxBytes <= 0 || r.MaxBytes > m.o.MaxBytes {
		r.MaxBytes = m.o.MaxBytes
	}
	b := make([]byte, 24) // 192 bits: the link is the capability
	rand.Read(b)
	l := &link{Request: r, id: base64.RawURLEncoding.EncodeToString(b), expires: time.Now().Add(m.o.TTL), state: Waiting,
		changed: make(chan struct{}), md5: md5.New()}
	m.mu.Lock()
	defer m.mu.Unlock()
	owned, open := 0, 0
	for _, o := range m.links {
		if o.state == Waiting || o.state == Receiving || o.state == staging {
			open++
			if o.Owner == r.Owner {
				owned++
			}
		}
	}
	if owned >= MaxLinksPerOwner || open >= MaxLinks {
		return Status{}, ErrTooManyLinks
	}
	m.links[l.id] = l
	return m.statusOf(l), nil
}

// URL is the page of link id.
func (m *Manager) URL(id string) string {
	return strings.TrimSuffix(m.o.PublicURL, "/") + PathPrefix + id
}

func (m *Manager) statusOf(l *link) Status {
	state := l.state
	if state == staging {
		state = Receiving
	}
	return Status{ID: l.id, URL: m.URL(l.id), State: state, Received: l.received, Total: l.total, Expires: l.expires,
		Result: l.result, Err: l.err, Request: l.Request}
}

// Status is link id's status, for owner only: another principal's link is
// one that does not exist.
func (m *Manager) Status(owner, id string) (Status, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	l, ok := m.links[id]
	if !ok || l.Owner != owner {
		return Status{}, false
	}
	return m.statusOf(l), true
}

// Wait waits until link id is staged, expired or failed, ctx ends or until
// passes, calling progress at each change; it returns the status then.
func (m *Manager) Wait(ctx context.Context, owner, id string, until time.Time, progress func(Status)) (Status, bool) {
	t := time.NewTimer(time.Until(until))
	defer t.Stop()
	for {
		m.mu.Lock()
		l, ok := m.links[id]
		if !ok || l.Owner != owner {
			m.mu.Unlock()
			return Status{}, false
		}
		st, changed := m.statusOf(l), l.changed
		m.mu.Unlock()
		if st.State == Staged || st.State == Expired || st.State == Failed {
			return st, true
		}
		if progress != nil {
			progress(st)
		}
		select {
		case <-changed:
		case <-t.C:
			return st, true
		case <-ctx.Done():
			return st, true
		}
	}
}

// changed wakes those waiting on l; m.mu is held.
func (l *link) changedLocked() {
	close(l.changed)
	l.changed = make(chan struct{})
}

// Close stops the sweeper and removes every upload in progress.
func (m *Manager) Close() {
	close(m.stop)
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, l := range m.links {
		m.forget(l)
	}
	os.RemoveAll(m.dir)
}

// staleAfter is how long a folder of uploads sits untouched before it is
// taken for a crashed process's: a live process adds a file for every
// upload begun, and none outlives its link by much.
func staleAfter(ttl time.Duration) time.Duration { return max(24*time.Hour, 2*ttl) }

// sweep expires links past their time, removing what they received.
func (m *Manager) sweep() {
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		select {
		case <-m.stop:
			return
		case now := <-t.C:
			m.expire(now)
		}
	}
}

func (m *Manager) expire(now time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for id, l := range m.links {
		switch {
		case l.state == staging:
			// Being stored: its end decides.
		case l.state == Receiving && now.Sub(l.active) < activeGrace && now.Before(l.expires.Add(m.o.TTL)):
			// Still arriving: let it finish, within one more TTL.
		case l.state != Staged && l.state != Failed && l.state != Expired && now.After(l.expires):
			l.state = Expired
			m.forget(l)
			l.changedLocked()
		case now.After(l.expires.Add(2 * m.o.TTL)):
			// Kept a while past its end, so that its answer can be read.
			m.forget(l)
			delete(m.links, id)
		}
	}
}

// forget removes what l received and gives its spool room back; m.mu is
// held.
func (m *Manager) forget(l *link) {
	os.Remove(m.path(l.id))
	os.Remove(m.path(l.id) + ".info")
	if l.held > 0 && m.o.Spool != nil {
		m.o.Spool.Release(l.held)
	}
	l.held = 0
}

func (m *Manager) path(id string) string { return m.dir + "/" + id }

// live reports whether id is a link's ID (checked for its shape first, so
// that no path reaches the file store) with an upload under way.
func (m *Manager) live(id string) bool {
	if !idPattern.MatchString(id) {
		return false
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	l, ok := m.links[id]
	return ok && (l.state == Receiving || l.state == staging)
}

// answerStored answers a HEAD or PATCH of a stored upload of size bytes
// as tus does for a complete one; size 0 means there is none.
func (m *Manager) answerStored(w http.ResponseWriter, r *http.Request, size int64) {
	if size <= 0 {
		http.Error(w, "upload not found", http.StatusNotFound)
		return
	}
	n := strconv.FormatInt(size, 10)
	h := w.Header()
	h.Set("Tus-Resumable", "1.0.0")
	h.Set("Cache-Control", "no-store")
	h.Set("Upload-Offset", n)
	switch {
	case r.Method == http.MethodHead:
		h.Set("Upload-Length", n)
		w.WriteHeader(http.StatusOK)
	case r.Header.Get("Upload-Offset") == n:
		w.WriteHeader(http.StatusNoContent)
	default:
		http.Error(w, "the upload is complete", http.StatusConflict)
	}
}

// stagedSize is the size of link id's stored upload, or 0.
func (m *Manager) stagedSize(id string) int64 {
	if !idPattern.MatchString(id) {
		return 0
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if l, ok := m.links[id]; ok && l.state == Staged {
		return l.total
	}
	return 0
}

// idPattern is the shape of link IDs: 24 random bytes, base64url.
var idPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{32}$`)

// errorf is a tus error response with a message the page shows.
func errorf(status int, code, format string, a ...any) error {
	return handler.NewError(code, fmt.Sprintf(format, a...), status)
}

// preCreate admits an upload for a live, unused link: its ID becomes the
// upload's, so the tus URL is the link's capability too, and a second
// upload through the same link replaces an unfinished first one.
func (m *Manager) preCreate(ev handler.HookEvent) (handler.HTTPResponse, handler.FileInfoChanges, error) {
	id := ev.Upload.MetaData["link"]
	m.mu.Lock()
	defer m.mu.Unlock()
	l, ok := m.links[id]
	switch {
	case !ok:
		return handler.HTTPResponse{}, handler.FileInfoChanges{}, errorf(http.StatusNotFound, "ERR_LINK_UNKNOWN", "this upload link does not exist")
	case l.state == Staged || l.state == staging:
		return handler.HTTPResponse{}, handler.FileInfoChanges{}, errorf(http.StatusGone, "ERR_LINK_USED", "this upload link was used already: the file was received")
	case l.state == Expired || time.Now().After(l.expires):
		return handler.HTTPResponse{}, handler.FileInfoChanges{}, errorf(http.StatusGone, "ERR_LINK_EXPIRED", "this upload link has expired: ask your assistant for a new one")
	case ev.Upload.SizeIsDeferred:
		return handler.HTTPResponse{}, handler.FileInfoChanges{}, errorf(http.StatusBadRequest, "ERR_SIZE_UNKNOWN", "the file's size must be given")
	case ev.Upload.Size <= 0:
		return handler.HTTPResponse{}, handler.FileInfoChanges{}, errorf(http.StatusBadRequest, "ERR_EMPTY", "the file is empty")
	case ev.Upload.Size > l.MaxBytes:
		return handler.HTTPResponse{}, handler.FileInfoChanges{}, errorf(http.StatusRequestEntityTooLarge, "ERR_TOO_LARGE", "the file is %d bytes; this link takes at most %d", ev.Upload.Size, l.MaxBytes)
	}
	// A new start: what an earlier attempt sent goes.
	m.forget(l)
	l.gen++
	l.state, l.received, l.total, l.err, l.md5, l.head, l.typ = Receiving, 0, ev.Upload.Size, nil, md5.New(), nil, ""
	l.changedLocked()
	name := ev.Upload.MetaData["filename"]
	return handler.HTTPResponse{}, handler.FileInfoChanges{ID: id, MetaData: handler.MetaData{"link": id, "filename": name}}, nil
}

// preFinish stages a complete upload before its last PATCH is answered, so
// that the page says the file arrived only once it is stored.
func (m *Manager) preFinish(ev handler.HookEvent) (handler.HTTPResponse, error) {
	id := ev.Upload.ID
	m.mu.Lock()
	l, ok := m.links[id]
	switch {
	case !ok || l.state != Receiving:
		m.mu.Unlock()
		return handler.HTTPResponse{}, errorf(http.StatusGone, "ERR_LINK_EXPIRED", "this upload link has expired")
	case l.received != l.total || l.total != ev.Upload.Size || !accepts(l.Accept, l.typ):
		// Not the bytes this upload's hash and type were taken of.
		l.state, l.received, l.total = Waiting, 0, 0
		m.forget(l)
		l.changedLocked()
		m.mu.Unlock()
		return handler.HTTPResponse{}, errorf(http.StatusConflict, "ERR_UPLOAD_MIXED", "the upload did not arrive as one file; send it again")
	}
	// From here no upload through the link writes or replaces the file.
	l.state = staging
	sum := spool.Sum{Size: ev.Upload.Size, Head: l.head}
	copy(sum.MD5[:], l.md5.Sum(nil))
	f := Finished{Request: l.Request, Type: l.typ, Name: ev.Upload.MetaData["filename"]}
	m.mu.Unlock()
	file, err := spool.Adopt(m.path(id), sum)
	var result any
	if err == nil {
		f.File = file
		result, err = m.o.Stage(ev.Context, f)
		file.Close()
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.forget(l)
	if err != nil {
		m.o.Logger.Warn("user upload not stored", "upload", logID(id), "err", err)
		l.state, l.err = Failed, err
		l.changedLocked()
		return handler.HTTPResponse{}, errorf(http.StatusBadGateway, "ERR_STAGE_FAILED", "the file arrived but could not be stored; your assistant can ask for it again")
	}
	l.state, l.result = Staged, result
	l.changedLocked()
	return handler.HTTPResponse{}, nil
}

// logID is enough of a link's ID to tell links apart in a log, and too
// little to use one.
func logID(id string) string { return id[:min(len(id), 8)] }

// accepts reports whether typ matches the filter accept ("", a type, or
// a family such as image/*; comma-separated).
func accepts(accept, typ string) bool {
	if accept == "" {
		return true
	}
	typ, _, _ = mime.ParseMediaType(typ)
	for _, a := range strings.Split(accept, ",") {
		a = strings.TrimSpace(strings.ToLower(a))
		if a == typ || a == "*/*" || (strings.HasSuffix(a, "/*") && strings.HasPrefix(typ, strings.TrimSuffix(a, "*"))) {
			return true
		}
	}
	return false
}

// patientLocker serializes the requests of one upload, as tusd's memory
// locker does, but never asks the holder to let go: a request waits until
// the one before it ends (a dropped connection ends its request at once,
// a silent one within the body rate floor). tusd v2.9.1 answers such a
// request by reading the holder's body from another goroutine, unsynced
// (tus/tusd issue 1192), which the race detector rightly reports.
type patientLocker struct{ handler.Locker }

func (l patientLocker) NewLock(id string) (handler.Lock, error) {
	lock, err := l.Locker.NewLock(id)
	return patientLock{lock}, err
}

type patientLock struct{ lock handler.Lock }

func (l patientLock) Lock(ctx context.Context, _ func()) error { return l.lock.Lock(ctx, func() {}) }
func (l patientLock) Unlock() error                            { return l.lock.Unlock() }

// hashingStore is tusd's file store, hashing, judging and counting the
// bytes of each upload as they are written.
type hashingStore struct{ m *Manager }

func (s *hashingStore) UseIn(c *handler.StoreComposer) { c.UseCore(s) }

func (s *hashingStore) NewUpload(ctx context.Context, info handler.FileInfo) (handler.Upload, error) {
	u, err := s.m.store.NewUpload(ctx, info)
	if err != nil {
		return nil, err
	}
	return &hashingUpload{Upload: u, m: s.m, id: info.ID}, nil
}

func (s *hashingStore) GetUpload(ctx context.Context, id string) (handler.Upload, error) {
	// Only a live link's upload: the file store would read an .info file
	// of any name, and trust the path written in it.
	if !s.m.live(id) {
		return nil, handler.ErrNotFound
	}
	u, err := s.m.store.GetUpload(ctx, id)
	if err != nil {
		return nil, err
	}
	return &hashingUpload{Upload: u, m: s.m, id: id}, nil
}

type hashingUpload struct {
	handler.Upload
	m  *Manager
	id string
}

// WriteChunk hashes the bytes in the order they are written: tusd writes
// one chunk at a time per upload, at the offset where the last ended.
func (u *hashingUpload) WriteChunk(ctx context.Context, offset int64, src io.Reader) (int64, error) {
	u.m.mu.Lock()
	l, ok := u.m.links[u.id]
	if !ok || l.state != Receiving || offset != l.received {
		u.m.mu.Unlock()
		return 0, errorf(http.StatusGone, "ERR_LINK_EXPIRED", "this upload link has expired")
	}
	gen := l.gen
	u.m.mu.Unlock()
	n, err := u.Upload.WriteChunk(ctx, offset, &chunkReader{r: src, m: u.m, l: l, gen: gen, ctx: ctx})
	return n, err
}

// chunkReader passes a chunk's bytes to the file store, hashing them,
// judging the type from the first ones, and taking spool room for them.
type chunkReader struct {
	r   io.Reader
	m   *Manager
	l   *link
	gen int
	ctx context.Context
}

func (c *chunkReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if n == 0 {
		return n, err
	}
	m, l := c.m, c.l
	m.mu.Lock()
	if l.gen != c.gen || l.state != Receiving {
		m.mu.Unlock()
		return 0, errorf(http.StatusGone, "ERR_UPLOAD_REPLACED", "this upload was replaced by a newer one through the same link")
	}
	head := l.head
	if len(head) < headBytes {
		head = append(slices.Clip(head), p[:min(n, headBytes-len(head))]...)
		if len(head) == headBytes || l.received+int64(n) == l.total {
			if typ := source.DetectType(head, "", ""); !accepts(l.Accept, typ) {
				// The upload ends here, and what it sent goes: the link
				// waits for another file.
				l.state, l.received, l.total = Waiting, 0, 0
				m.forget(l)
				l.changedLocked()
				m.mu.Unlock()
				return 0, errorf(http.StatusUnsupportedMediaType, "ERR_WRONG_TYPE", "this file is %s; the link takes %s", typ, l.Accept)
			}
		}
	}
	// Spool room is taken ahead, a step at a time, not for each read.
	need := l.received + int64(n) - l.held
	sum := l.md5
	m.mu.Unlock()
	if need > 0 && m.o.Spool != nil {
		step := max(need, reserveStep)
		if rerr := m.o.Spool.Reserve(c.ctx, step, 2*time.Second); rerr != nil {
			return 0, errorf(http.StatusServiceUnavailable, "ERR_BUSY", "filestage has no room for more uploads now; try again in a minute")
		}
		m.mu.Lock()
		l.held += step
		m.mu.Unlock()
	}
	sum.Write(p[:n]) // tusd writes one chunk of an upload at a time
	m.mu.Lock()
	defer m.mu.Unlock()
	if l.gen != c.gen {
		return 0, errorf(http.StatusGone, "ERR_UPLOAD_REPLACED", "this upload was replaced by a newer one through the same link")
	}
	if len(l.head) < len(head) {
		l.head = head
		l.typ = source.DetectType(head, "", "")
	}
	before := l.received
	l.received += int64(n)
	l.active = time.Now()
	// Waiters hear of every step of progress, not of every read.
	if l.received/reserveStep != before/reserveStep || l.received == l.total {
		l.changedLocked()
	}
	return n, err
}

// WriteTo copies the chunk in large reads: tusd's file store copies with
// io.Copy, which otherwise reads 32 KiB at a time.
func (c *chunkReader) WriteTo(w io.Writer) (int64, error) {
	buf := make([]byte, copyBuffer)
	return io.CopyBuffer(w, struct{ io.Reader }{c}, buf)
}

// Handler serves the pages and the tus endpoint.
func (m *Manager) Handler() http.Handler {
	mux := http.NewServeMux()
	tus := m.tus.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// After StripPrefix the path is the upload's ID, decoded: only a
		// live link's goes on.
		id := r.URL.Path
		switch r.Method {
		case http.MethodPost:
			if id != "" {
				http.Error(w, "upload not found", http.StatusNotFound)
				return
			}
			m.tus.PostFile(w, r)
		case http.MethodHead, http.MethodPatch:
			live := m.live(id)
			switch {
			case live && r.Method == http.MethodHead:
				m.tus.HeadFile(w, r)
			case live:
				m.tus.PatchFile(w, r)
			default:
				// A stored upload whose last answer was lost: a client
				// that asks again learns that all of it arrived, instead
				// of a 404 for a file that is stored.
				m.answerStored(w, r, m.stagedSize(id))
			}
		default:
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		}
	}))
	// tusd takes the whole path as the upload ID.
	mux.Handle(PathTus, http.StripPrefix(PathTus, tus))
	mux.HandleFunc("GET "+PathPrefix+"{id}", m.page)
	mux.Handle("GET "+PathAssets, http.StripPrefix(PathAssets, assetHandler()))
	return mux
}

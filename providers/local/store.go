package local

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/filestage/filestage/spool"
)

// ErrDigestMismatch is returned when received bytes do not hash to the MD5
// they were announced with.
var ErrDigestMismatch = errors.New("content does not match its MD5")

// ErrObjectExists is returned when an object is already stored under the
// key: stored objects are never replaced. It is also a spool.ErrExist.
var ErrObjectExists = fmt.Errorf("an object is already stored under this key: %w", spool.ErrExist)

// store keeps objects content-addressed under dir/objects and their
// entries in dir/index.db. Bytes arrive in dir/tmp and are linked into
// place only once their MD5 is verified and only if the key is free, so a
// key never names a partial or wrong file, and once it names a file that
// file never changes until retention or `filestage rm` removes it.
type store struct {
	objects string
	tmp     string
	index   *index
	// budget, when set, bounds the disk of uploads being received.
	budget *spool.Budget
	// retention is how long an object is kept after it was last stored
	// or staged; zero keeps it for ever.
	retention time.Duration
	now       func() time.Time
	// crash, when set, is called at each named step of a write: the
	// crash tests end the process there.
	crash func(step string)
}

func openStore(dir string, budget *spool.Budget) (*store, error) {
	s := &store{objects: filepath.Join(dir, "objects"), tmp: filepath.Join(dir, "tmp"), budget: budget, now: time.Now}
	for _, d := range []string{s.objects, s.tmp} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, err
		}
	}
	idx, err := openIndex(filepath.Join(dir, "index.db"))
	if err != nil {
		return nil, err
	}
	s.index = idx
	return s, nil
}

func (s *store) Close() error { return s.index.Close() }

func (s *store) step(name string) {
	if s.crash != nil {
		s.crash(name)
	}
}

// validSegment reports whether seg may be one segment of a key: 1 to 255
// of A-Z a-z 0-9 . _ -, starting with a letter or digit, without "..".
// A loop rather than a regular expression: every call checks its key.
func validSegment(seg string) bool {
	if len(seg) == 0 || len(seg) > 255 || !isAlnum(seg[0]) || strings.Contains(seg, "..") {
		return false
	}
	for i := 1; i < len(seg); i++ {
		if c := seg[i]; !isAlnum(c) && c != '.' && c != '_' && c != '-' {
			return false
		}
	}
	return true
}

func isAlnum(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}

// path maps a key to its file, refusing anything that could leave the store.
func (s *store) path(key string) (string, error) {
	if len(key) > 1024 {
		return "", fmt.Errorf("key longer than 1024 bytes")
	}
	segs := strings.Split(key, "/")
	for _, seg := range segs {
		if !validSegment(seg) {
			return "", fmt.Errorf("invalid key %q", key)
		}
	}
	return filepath.Join(append([]string{s.objects}, segs...)...), nil
}

// expiry is when an object stored or staged now expires; zero: never.
func (s *store) expiry(now time.Time) time.Time {
	if s.retention <= 0 {
		return time.Time{}
	}
	return now.Add(s.retention).Truncate(time.Second)
}

// existing returns key's entry when its object is stored, after moving its
// expiry to a full retention from now: staging bytes again keeps them.
// New bytes, the common case, cost one lstat and no index statement; a
// stale entry whose file was removed by hand is rewritten when the bytes
// are stored again, and dropped by repair.
func (s *store) existing(ctx context.Context, key string) (Entry, bool, error) {
	path, err := s.path(key)
	if err != nil || !taken(path) {
		return Entry{}, false, err
	}
	return s.index.extend(ctx, key, s.expiry(s.now()))
}

// keep makes an object of e's key visible through link, which puts the
// bytes at the path it is given and fails with an fs.ErrExist error when
// something is there. The entry is written pending first and marked
// stored once the object is in place; exists reports that another write
// of the key won, and its object, of the same MD5, stays.
func (s *store) keep(ctx context.Context, e Entry, link func(path string) error) (_ Entry, exists bool, err error) {
	path, err := s.path(e.Key)
	if err != nil {
		return Entry{}, false, err
	}
	now := s.now()
	e.Created, e.Expires = now.Truncate(time.Second), s.expiry(now)
	if err := s.index.pending(ctx, e); err != nil {
		return Entry{}, false, fmt.Errorf("index: %w", err)
	}
	s.step("pending")
	// From here the object may become visible: whatever the caller does,
	// its entry must be completed.
	ctx = context.WithoutCancel(ctx)
	switch err := link(path); {
	case errors.Is(err, fs.ErrExist):
		e, err := s.adopt(ctx, e)
		return e, err == nil, err
	case err != nil:
		return Entry{}, false, errors.Join(err, s.index.abandon(ctx, e.Key))
	}
	s.step("linked")
	mark := s.index.linked
	if e.Name == "" {
		// An upload through a URL issued before URLs carried the name:
		// what a pending entry knows stays.
		mark = s.index.stored
	}
	if err := mark(ctx, e); err != nil {
		// The object is in place; the next repair completes its entry.
		return Entry{}, false, fmt.Errorf("index: %w", err)
	}
	s.step("stored")
	return e, false, nil
}

// adopt returns the entry of the object another write of e's key put in
// place. That writer marks its entry stored; this marks it too, in case it
// was a process that died before it could.
func (s *store) adopt(ctx context.Context, e Entry) (Entry, error) {
	if err := s.index.stored(ctx, e); err != nil {
		return Entry{}, fmt.Errorf("index: %w", err)
	}
	stored, ok, err := s.index.get(ctx, e.Key)
	if err == nil && !ok {
		err = errors.New("the object was removed while these bytes were being stored; nothing was stored: try again")
	}
	return stored, err
}

// budgetWait is how long an upload waits for spool room before it is
// refused with 503 SlowDown.
const budgetWait = 2 * time.Second

// put stores r under e.Key if it hashes to want, is at most max bytes and
// the key is free.
func (s *store) put(ctx context.Context, e Entry, r io.Reader, want [16]byte, max int64) (Entry, error) {
	dst, err := s.path(e.Key)
	if err != nil {
		return Entry{}, err
	}
	// Before reading r: a taken key is refused without taking the bytes.
	if taken(dst) {
		return Entry{}, ErrObjectExists
	}
	if s.budget != nil {
		res := s.budget.Reader(ctx, r, budgetWait)
		defer res.Release() // after the spool is gone: defers run in reverse
		r = res
	}
	sp, err := spool.Write(r, s.tmp, max)
	if err != nil {
		return Entry{}, err
	}
	defer sp.Close()
	if sp.MD5 != want {
		return Entry{}, ErrDigestMismatch
	}
	e.Size, e.MD5 = sp.Size, hex.EncodeToString(want[:])
	e, exists, err := s.keep(ctx, e, sp.Keep)
	if exists {
		// Another upload of the key won the race.
		return Entry{}, ErrObjectExists
	}
	return e, err
}

// taken reports whether anything is at path, object or not: Keep would
// refuse it.
func taken(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}

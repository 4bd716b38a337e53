package local

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
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

// store keeps objects content-addressed under dir/objects. Bytes arrive in
// dir/tmp and are linked into place only once their MD5 is verified and
// only if the key is free, so a key never names a partial or wrong file,
// and once it names a file that file never changes.
type store struct {
	objects string
	tmp     string
	// budget, when set, bounds the disk of uploads being received.
	budget *spool.Budget
}

func openStore(dir string, budget *spool.Budget) (*store, error) {
	s := &store{objects: filepath.Join(dir, "objects"), tmp: filepath.Join(dir, "tmp"), budget: budget}
	for _, d := range []string{s.objects, s.tmp} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, err
		}
	}
	return s, nil
}

var keySegment = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,254}$`)

// path maps a key to its file, refusing anything that could leave the store.
func (s *store) path(key string) (string, error) {
	if len(key) > 1024 {
		return "", fmt.Errorf("key longer than 1024 bytes")
	}
	segs := strings.Split(key, "/")
	for _, seg := range segs {
		if !keySegment.MatchString(seg) || strings.Contains(seg, "..") {
			return "", fmt.Errorf("invalid key %q", key)
		}
	}
	return filepath.Join(append([]string{s.objects}, segs...)...), nil
}

// has reports whether an object is stored under key.
func (s *store) has(key string) bool {
	p, err := s.path(key)
	if err != nil {
		return false
	}
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular()
}

// budgetWait is how long an upload waits for spool room before it is
// refused with 503 SlowDown.
const budgetWait = 2 * time.Second

// put stores r under key if it hashes to want, is at most max bytes and
// the key is free.
func (s *store) put(key string, r io.Reader, want [16]byte, max int64) (int64, error) {
	dst, err := s.path(key)
	if err != nil {
		return 0, err
	}
	// Before reading r: a taken key is refused without taking the bytes.
	if taken(dst) {
		return 0, ErrObjectExists
	}
	if s.budget != nil {
		res := s.budget.Reader(context.Background(), r, budgetWait)
		defer res.Release() // after the spool is gone: defers run in reverse
		r = res
	}
	sp, err := spool.Write(r, s.tmp, max)
	if err != nil {
		return 0, err
	}
	defer sp.Close()
	if sp.MD5 != want {
		return sp.Size, ErrDigestMismatch
	}
	if err := sp.Keep(dst); errors.Is(err, spool.ErrExist) {
		// Another upload of the key won the race.
		return sp.Size, ErrObjectExists
	} else if err != nil {
		return sp.Size, err
	}
	return sp.Size, nil
}

// taken reports whether anything is at path, object or not: Keep would
// refuse it.
func taken(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}

package local

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/filestage/filestage/spool"
)

// ErrDigestMismatch is returned when received bytes do not hash to the MD5
// they were announced with.
var ErrDigestMismatch = errors.New("content does not match its MD5")

// store keeps objects content-addressed under dir/objects. Bytes arrive in
// dir/tmp and are renamed into place only once their MD5 is verified, so a
// key never names a partial or wrong file.
type store struct {
	objects string
	tmp     string
}

func openStore(dir string) (*store, error) {
	s := &store{objects: filepath.Join(dir, "objects"), tmp: filepath.Join(dir, "tmp")}
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

// put stores r under key if it hashes to want and is at most max bytes.
func (s *store) put(key string, r io.Reader, want [16]byte, max int64) (int64, error) {
	dst, err := s.path(key)
	if err != nil {
		return 0, err
	}
	sp, err := spool.Write(r, s.tmp, max)
	if err != nil {
		return 0, err
	}
	defer sp.Close()
	if sp.MD5 != want {
		return sp.Size, ErrDigestMismatch
	}
	return sp.Size, sp.Keep(dst)
}

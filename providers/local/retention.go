package local

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/gabriel-vasile/mimetype"
)

// pendingTTL is how long a pending entry without its object is kept: past
// the life of the upload URL that may still complete it.
const pendingTTL = URLTTL + 10*time.Minute

// repair brings the index in line with the objects, as after a crash or
// with an index that is missing or older than the objects: an object
// without a stored entry gets one (its pending entry's, or one rebuilt
// from the object itself), and a stored entry without its object goes.
// It is safe beside other processes writing to the same store: their
// entries are pending before their objects appear.
func (s *store) repair(ctx context.Context) (fixed int, err error) {
	err = filepath.WalkDir(s.objects, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		rel, err := filepath.Rel(s.objects, p)
		if err != nil {
			return err
		}
		key := filepath.ToSlash(rel)
		if _, err := s.path(key); err != nil {
			return nil // not an object filestage wrote
		}
		e, stored, found, err := s.index.lookup(ctx, key)
		if err != nil || stored {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		if !found {
			if e, err = rebuild(p, key, fi); err != nil {
				return err
			}
		}
		e.Size, e.Created, e.Expires = fi.Size(), fi.ModTime().Truncate(time.Second), s.expiry(fi.ModTime())
		fixed++
		return s.index.stored(ctx, e)
	})
	if err != nil {
		return fixed, err
	}
	err = s.index.storedKeys(ctx, func(e Entry) error {
		p, err := s.path(e.Key)
		if err == nil && taken(p) {
			return nil
		}
		ok, err := s.index.remove(ctx, e.Key, time.Time{}, func() error { return nil })
		if ok {
			fixed++
		}
		return err
	})
	if err != nil {
		return fixed, err
	}
	n, err := s.dropStalePending(ctx)
	return fixed + n, err
}

// rebuild makes the entry of an object found without one. Its key says
// its MD5 and namespace; its name and owner are lost, and its type is
// read from its bytes.
func rebuild(p, key string, fi fs.FileInfo) (Entry, error) {
	base := path.Base(key)
	sum, _, _ := strings.Cut(base, ".")
	mt, err := mimetype.DetectFile(p)
	if err != nil {
		return Entry{}, err
	}
	return Entry{Key: key, Name: base, Mimetype: mt.String(), MD5: sum, Size: fi.Size()}, nil
}

// dropStalePending removes pending entries whose objects never arrived,
// and completes those whose writer died after the object was in place.
func (s *store) dropStalePending(ctx context.Context) (int, error) {
	stale, err := s.index.pendingBefore(ctx, s.now().Add(-pendingTTL))
	if err != nil {
		return 0, err
	}
	for _, e := range stale {
		p, err := s.path(e.Key)
		if err != nil {
			continue
		}
		if fi, err := os.Stat(p); err == nil {
			e.Size, e.Created, e.Expires = fi.Size(), fi.ModTime().Truncate(time.Second), s.expiry(fi.ModTime())
			err = s.index.stored(ctx, e)
		} else {
			err = s.index.abandon(ctx, e.Key)
		}
		if err != nil {
			return 0, err
		}
	}
	return len(stale), nil
}

// sweep removes every object whose retention ended, with its entry, and
// the pending entries no upload completed.
func (s *store) sweep(ctx context.Context) (removed int, err error) {
	now := s.now()
	const page = 200
	for {
		keys, err := s.index.expired(ctx, now, page)
		if err != nil {
			return removed, err
		}
		for _, k := range keys {
			ok, err := s.remove(ctx, k, now)
			if err != nil {
				return removed, err
			}
			if ok {
				removed++
			}
		}
		if len(keys) < page {
			break
		}
	}
	_, err = s.dropStalePending(ctx)
	return removed, err
}

// remove deletes key's object and entry; with expiredAt set, only if it
// expired by then. Empty directories are left: removing one could race a
// writer that has just made it.
func (s *store) remove(ctx context.Context, key string, expiredAt time.Time) (bool, error) {
	p, err := s.path(key)
	if err != nil {
		return false, err
	}
	return s.index.remove(ctx, key, expiredAt, func() error {
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("removing %s: %w", key, err)
		}
		return nil
	})
}

// sweepEvery is how often the server sweeps: often enough that an object
// outlives its expiry by a small part of its retention, at most an hour.
func sweepEvery(retention time.Duration) time.Duration {
	return min(max(retention/100, time.Minute), time.Hour)
}

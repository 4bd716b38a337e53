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

// pendingTTL is how long a pending entry without its object is kept. A
// write's entry is pending only between its spool and its link (presigns
// write none), so this is far past any write still under way.
const pendingTTL = URLTTL + 10*time.Minute

// repair brings the index in line with the objects, as after a crash or
// with an index that is missing or older than the objects: an object
// without a stored entry gets one (its pending entry's, or one rebuilt
// from the object itself), and a stored entry without its object goes.
// It is safe beside other processes using the store: their entries are
// pending before their objects appear, and a file they remove meanwhile
// is skipped.
func (s *store) repair(ctx context.Context) (fixed int, err error) {
	err = filepath.WalkDir(s.objects, func(p string, d fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) {
			return nil // removed since it was listed
		}
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		if err := ctx.Err(); err != nil {
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
		if !found && err == nil {
			e, err = rebuild(p, key, fi)
		}
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		e.Size, e.Created, e.Expires = fi.Size(), fi.ModTime().Truncate(time.Second), s.expiry(fi.ModTime())
		fixed++
		return s.index.stored(ctx, e)
	})
	if err != nil {
		return fixed, err
	}
	err = s.index.storedKeys(ctx, func(e Entry) error {
		ok, err := s.forgetIfGone(ctx, e.Key)
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

// forgetIfGone drops key's stored entry if its object is gone.
func (s *store) forgetIfGone(ctx context.Context, key string) (bool, error) {
	p, err := s.path(key)
	if err != nil {
		return false, err
	}
	return s.index.forget(ctx, key, func() bool { return !taken(p) })
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
	const page = 500
	done := 0
	for {
		stale, err := s.index.pendingBefore(ctx, s.now().Add(-pendingTTL), page)
		if err != nil {
			return done, err
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
				return done, err
			}
			done++
		}
		if len(stale) < page {
			return done, nil
		}
	}
}

// sweep removes every object whose retention ended, with its entry, and
// the pending entries no upload completed. A key that cannot be removed
// is passed over, and reported, so that it holds no other back.
func (s *store) sweep(ctx context.Context) (removed int, err error) {
	now := s.now()
	const page = 200
	failed := map[string]error{}
	for {
		// Failed keys come first again, as the oldest: ask past them.
		limit := page + len(failed)
		keys, err := s.index.expired(ctx, now, limit)
		if err != nil {
			return removed, err
		}
		progress := false
		for _, k := range keys {
			if _, ok := failed[k]; ok {
				continue
			}
			ok, err := s.remove(ctx, k, now)
			switch {
			case err != nil && ctx.Err() != nil:
				return removed, err
			case err != nil:
				failed[k] = err
			case ok:
				removed++
			}
			progress = true
		}
		if !progress || len(keys) < limit {
			break
		}
	}
	_, err = s.dropStalePending(ctx)
	errs := []error{err}
	for _, e := range failed {
		errs = append(errs, e)
	}
	return removed, errors.Join(errs...)
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
// outlives its expiry by a small part of its retention, at most an hour,
// which is also how often abandoned pending entries go without retention.
func sweepEvery(retention time.Duration) time.Duration {
	if retention <= 0 {
		return time.Hour
	}
	return min(max(retention/100, time.Minute), time.Hour)
}

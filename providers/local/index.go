package local

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"path"
	"path/filepath"
	"strings"
	"time"

	// SQLite rather than bbolt: bbolt holds an exclusive lock on its file
	// for as long as it is open, so `filestage ls` or `rm` could not run
	// beside a server on the same data directory. SQLite in WAL mode lets
	// processes share the file, one writer at a time, and this driver
	// needs no cgo.
	_ "modernc.org/sqlite"

	"github.com/filestage/filestage/providers"
)

// Entry is what the index knows of one object.
type Entry = providers.Object

// index keeps each object's entry in SQLite. An entry is written, pending,
// before its object is linked into place, and marked stored after: a crash
// at any point leaves either a pending entry, which repair completes or
// drops according to whether its object exists, or nothing at all.
type index struct {
	db *sql.DB
}

const schemaSQL = `
CREATE TABLE IF NOT EXISTS objects (
	key       TEXT PRIMARY KEY,
	name      TEXT NOT NULL,
	mimetype  TEXT NOT NULL,
	size      INTEGER NOT NULL,
	md5       TEXT NOT NULL,
	owner     TEXT NOT NULL,
	namespace TEXT NOT NULL,
	created   INTEGER NOT NULL,
	expires   INTEGER NOT NULL,
	stored    INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS objects_expires ON objects (expires) WHERE stored = 1 AND expires > 0;
CREATE INDEX IF NOT EXISTS objects_namespace ON objects (namespace, key) WHERE stored = 1;
`

func openIndex(path string) (*index, error) {
	q := url.Values{}
	// Writers queue for up to 10 s instead of failing at once: the
	// server, its sweeper and the commands share the file.
	q.Add("_pragma", "busy_timeout(10000)")
	q.Add("_pragma", "journal_mode(WAL)")
	// In WAL mode, NORMAL loses nothing to a crashed process; only a
	// power cut may drop the last transactions, which repair redoes.
	q.Add("_pragma", "synchronous(NORMAL)")
	// Take the write lock when a transaction starts, so two processes
	// never both read and then both fail to upgrade.
	q.Set("_txlock", "immediate")
	// The path as a URI's, escaped: a data directory may be named with
	// '#', '?' or '%'.
	dsn := url.URL{Scheme: "file", Path: filepath.ToSlash(path), RawQuery: q.Encode()}
	db, err := sql.Open("sqlite", dsn.String())
	if err != nil {
		return nil, err
	}
	// One connection: SQLite takes writes in turn anyway, each statement
	// here is short, and SQLite keeps the files of a closed connection
	// open while another holds locks on them, so a pool would leave a
	// burst's files open. Nothing here uses the index while it holds the
	// connection (rows are read whole first), so nothing waits on itself.
	db.SetMaxOpenConns(1)
	if _, err := db.Exec(schemaSQL); err != nil {
		db.Close()
		return nil, fmt.Errorf("index %s: %w", path, err)
	}
	return &index{db: db}, nil
}

func (x *index) Close() error { return x.db.Close() }

// namespaceOf is the namespace segment of a key, "" for keys outside any.
// Keys are [<namespace>/]<toolkit>/<TOOL>/<md5><ext>.
func namespaceOf(key string) string {
	if segs := strings.Split(key, "/"); len(segs) == 4 {
		return segs[0]
	}
	return ""
}

func unix(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.Unix()
}

func fromUnix(s int64) time.Time {
	if s == 0 {
		return time.Time{}
	}
	return time.Unix(s, 0).UTC()
}

// pending records e before its object is linked into place. A pending
// entry of another writer of the same key takes e's name and owner; a
// stored one is left alone. An e without a name (an upload through a URL
// issued before URLs carried it sealed) keeps a pending entry another
// writer wrote, or else is named after its key.
func (x *index) pending(ctx context.Context, e Entry) error {
	conflict := `DO UPDATE SET name = excluded.name, mimetype = excluded.mimetype, size = excluded.size,
	owner = excluded.owner, created = excluded.created, expires = excluded.expires
WHERE stored = 0`
	if e.Name == "" {
		e.Name, conflict = path.Base(e.Key), `DO NOTHING`
	}
	_, err := x.db.ExecContext(ctx, `
INSERT INTO objects (key, name, mimetype, size, md5, owner, namespace, created, expires, stored)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 0)
ON CONFLICT (key) `+conflict,
		e.Key, e.Name, e.Mimetype, e.Size, e.MD5, e.Owner, namespaceOf(e.Key), unix(e.Created), unix(e.Expires))
	return err
}

// stored marks the entry of a just-linked object stored, writing it whole
// if a failing writer of the same key dropped it meanwhile. A pending
// entry takes e's times; a stored one keeps its creation and the later
// expiry. Adopting another writer's object and repair use it.
func (x *index) stored(ctx context.Context, e Entry) error {
	return x.upsertStored(ctx, e, `size = excluded.size,
	created = CASE WHEN stored = 1 THEN created ELSE excluded.created END,
	expires = CASE WHEN stored = 0 THEN excluded.expires WHEN excluded.expires = 0 OR expires = 0 THEN 0 ELSE max(expires, excluded.expires) END,
	stored = 1`)
}

// linked writes the entry of the object this writer just linked into
// place, all of it: winning the link proves that whatever the index held
// for the key was not this object's (the entry of a file removed by hand,
// or the pending entry of a writer that then lost the race).
func (x *index) linked(ctx context.Context, e Entry) error {
	return x.upsertStored(ctx, e, `name = excluded.name, mimetype = excluded.mimetype, size = excluded.size,
	md5 = excluded.md5, owner = excluded.owner, created = excluded.created, expires = excluded.expires, stored = 1`)
}

func (x *index) upsertStored(ctx context.Context, e Entry, set string) error {
	_, err := x.db.ExecContext(ctx, `
INSERT INTO objects (key, name, mimetype, size, md5, owner, namespace, created, expires, stored)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 1)
ON CONFLICT (key) DO UPDATE SET `+set,
		e.Key, e.Name, e.Mimetype, e.Size, e.MD5, e.Owner, namespaceOf(e.Key), unix(e.Created), unix(e.Expires))
	return err
}

// abandon drops key's pending entry after its write failed.
func (x *index) abandon(ctx context.Context, key string) error {
	_, err := x.db.ExecContext(ctx, `DELETE FROM objects WHERE key = ? AND stored = 0`, key)
	return err
}

// extend moves a stored object's expiry to at least until (zero: never)
// and returns its entry; ok is false when no stored entry is there.
func (x *index) extend(ctx context.Context, key string, until time.Time) (Entry, bool, error) {
	return oneEntry(x.db.QueryRowContext(ctx, `
UPDATE objects SET expires = CASE WHEN ? = 0 OR expires = 0 THEN 0 ELSE max(expires, ?) END
WHERE key = ? AND stored = 1 RETURNING `+columns, unix(until), unix(until), key))
}

const columns = `key, name, mimetype, size, md5, owner, namespace, created, expires`

type scanner interface{ Scan(...any) error }

func scanEntry(r scanner) (Entry, error) {
	var e Entry
	var created, expires int64
	err := r.Scan(&e.Key, &e.Name, &e.Mimetype, &e.Size, &e.MD5, &e.Owner, &e.Namespace, &created, &expires)
	e.Created, e.Expires = fromUnix(created), fromUnix(expires)
	return e, err
}

// get returns key's stored entry; ok is false when there is none.
func (x *index) get(ctx context.Context, key string) (Entry, bool, error) {
	return oneEntry(x.db.QueryRowContext(ctx, `SELECT `+columns+` FROM objects WHERE key = ? AND stored = 1`, key))
}

// oneEntry reads the entry a query of one row found; ok is false when it
// found none.
func oneEntry(row *sql.Row) (_ Entry, ok bool, _ error) {
	e, err := scanEntry(row)
	if errors.Is(err, sql.ErrNoRows) {
		return Entry{}, false, nil
	}
	return e, err == nil, err
}

// list returns stored entries whose key starts with prefix, in key order,
// after the key after ("" for the first page), at most limit of them.
// When namespace is not nil, only entries in *namespace; when liveAt is
// not zero, only entries not expired then.
func (x *index) list(ctx context.Context, prefix string, namespace *string, liveAt time.Time, after string, limit int) ([]Entry, error) {
	query := `SELECT ` + columns + ` FROM objects WHERE stored = 1 AND key > ? AND substr(key, 1, ?) = ?`
	args := []any{after, len(prefix), prefix}
	if !liveAt.IsZero() {
		query += ` AND (expires = 0 OR expires > ?)`
		args = append(args, liveAt.Unix())
	}
	if namespace != nil {
		query += ` AND namespace = ?`
		args = append(args, *namespace)
	}
	query += ` ORDER BY key LIMIT ?`
	args = append(args, limit)
	return x.entries(ctx, query, args...)
}

// entries runs a query of entries' columns.
func (x *index) entries(ctx context.Context, query string, args ...any) ([]Entry, error) {
	rows, err := x.db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Entry
	for rows.Next() {
		e, err := scanEntry(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// remove deletes key's entry, stored or not, and then calls unlink inside
// the same transaction: a writer extending or re-storing the key waits for
// both, so it never answers "existing" for an object about to go. The
// entry stays when unlink fails. ok is false when there was no entry.
// When expiredAt is not zero, only an entry stored and expired at that
// time is removed: one extended since it was listed stays.
func (x *index) remove(ctx context.Context, key string, expiredAt time.Time, unlink func() error) (bool, error) {
	// Once the file may be unlinked, only a commit keeps entry and
	// object in step: a cancel must not roll the delete back.
	ctx = context.WithoutCancel(ctx)
	tx, err := x.db.BeginTx(ctx, nil)
	if err != nil {
		return false, err
	}
	defer tx.Rollback()
	query, args := `DELETE FROM objects WHERE key = ?`, []any{key}
	if !expiredAt.IsZero() {
		query += ` AND stored = 1 AND expires > 0 AND expires <= ?`
		args = append(args, expiredAt.Unix())
	}
	res, err := tx.ExecContext(ctx, query, args...)
	if err != nil {
		return false, err
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		return false, err
	}
	if err := unlink(); err != nil {
		return false, err
	}
	return true, tx.Commit()
}

// forget drops key's stored entry when its object is gone: gone still
// reports whether it is, asked with the write lock held, so that an object
// another process links meanwhile keeps its entry.
func (x *index) forget(ctx context.Context, key string, gone func() bool) (bool, error) {
	tx, err := x.db.BeginTx(context.WithoutCancel(ctx), nil)
	if err != nil {
		return false, err
	}
	defer tx.Rollback()
	if !gone() {
		return false, nil
	}
	res, err := tx.ExecContext(ctx, `DELETE FROM objects WHERE key = ? AND stored = 1`, key)
	if err != nil {
		return false, err
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		return false, err
	}
	return true, tx.Commit()
}

// expired returns up to limit keys whose objects expired by now.
func (x *index) expired(ctx context.Context, now time.Time, limit int) ([]string, error) {
	rows, err := x.db.QueryContext(ctx, `SELECT key FROM objects WHERE stored = 1 AND expires > 0 AND expires <= ? ORDER BY expires LIMIT ?`, now.Unix(), limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var keys []string
	for rows.Next() {
		var k string
		if err := rows.Scan(&k); err != nil {
			return nil, err
		}
		keys = append(keys, k)
	}
	return keys, rows.Err()
}

// pendingBefore returns up to limit entries still pending, created before
// before.
func (x *index) pendingBefore(ctx context.Context, before time.Time, limit int) ([]Entry, error) {
	return x.entries(ctx, `SELECT `+columns+` FROM objects WHERE stored = 0 AND created < ? LIMIT ?`, before.Unix(), limit)
}

// storedKeys calls fn with every stored key, in key order, a page at a
// time so that no read transaction is held while fn runs.
func (x *index) storedKeys(ctx context.Context, fn func(Entry) error) error {
	after := ""
	for {
		page, err := x.list(ctx, "", nil, time.Time{}, after, 500)
		if err != nil {
			return err
		}
		for _, e := range page {
			if err := fn(e); err != nil {
				return err
			}
		}
		if len(page) < 500 {
			return nil
		}
		after = page[len(page)-1].Key
	}
}

// lookup returns key's entry whether stored or pending.
func (x *index) lookup(ctx context.Context, key string) (e Entry, stored, found bool, err error) {
	var s int
	var created, expires int64
	err = x.db.QueryRowContext(ctx, `SELECT `+columns+`, stored FROM objects WHERE key = ?`, key).
		Scan(&e.Key, &e.Name, &e.Mimetype, &e.Size, &e.MD5, &e.Owner, &e.Namespace, &created, &expires, &s)
	if errors.Is(err, sql.ErrNoRows) {
		return Entry{}, false, false, nil
	}
	e.Created, e.Expires = fromUnix(created), fromUnix(expires)
	return e, s == 1, err == nil, err
}

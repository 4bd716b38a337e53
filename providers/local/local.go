// Package local is the embedded default provider: a content-addressed store
// in a data directory whose upload URLs filestage serves itself, signed and
// expiring, so it works with no set-up at all.
package local

import (
	"cmp"
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/filestage/filestage/providers"
)

// Name is the provider's registry name.
const Name = "local"

// URLTTL is how long an upload URL stays valid.
const URLTTL = time.Hour

// DefaultDownloadTTL is how long a download URL works unless configured.
const DefaultDownloadTTL = time.Hour

// Provider stores files on the local disk.
type Provider struct {
	store       *store
	signer      signer
	base        string
	max         int64
	downloadTTL time.Duration
	now         func() time.Time
	log         *slog.Logger
}

// Open is the provider's registry factory.
func Open(_ context.Context, s providers.Settings) (providers.Provider, error) {
	return providers.Opened(New(s))
}

// New opens the store in s.DataDir, creating it and its signing key on
// first use.
func New(s providers.Settings) (*Provider, error) {
	if s.DataDir == "" {
		return nil, errors.New("a data directory is required (--data-dir or FILESTAGE_DATA_DIR)")
	}
	if s.PublicURL == "" {
		return nil, errors.New("a public URL for upload links is required (--public-url or FILESTAGE_PUBLIC_URL)")
	}
	if err := os.MkdirAll(s.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("data directory: %w", err)
	}
	key, err := loadSecret(s.DataDir)
	if err != nil {
		return nil, fmt.Errorf("signing key: %w", err)
	}
	st, err := openStore(s.DataDir, s.Spool)
	if err != nil {
		return nil, fmt.Errorf("data directory: %w", err)
	}
	st.retention = s.Retention
	log := s.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Provider{
		store:       st,
		signer:      newSigner(key),
		base:        strings.TrimSuffix(s.PublicURL, "/"),
		max:         s.MaxBytes,
		downloadTTL: cmp.Or(s.DownloadTTL, DefaultDownloadTTL),
		now:         time.Now,
		log:         log,
	}, nil
}

// setClock replaces the clock of the URLs and of retention, for tests.
func (p *Provider) setClock(now func() time.Time) { p.now, p.store.now = now, now }

// Close closes the index.
func (p *Provider) Close() error { return p.store.Close() }

// Run repairs the index from the objects, then sweeps expired objects
// and abandoned pending entries until ctx ends. The server runs it; a
// command does not walk the whole store for one file.
func (p *Provider) Run(ctx context.Context) {
	if n, err := p.Repair(ctx); err != nil && ctx.Err() == nil {
		p.log.Warn("the index could not be repaired from the objects; files without an entry are not served or listed until the next start", "err", err)
	} else if n > 0 {
		p.log.Info("index repaired from the objects", "entries", n)
	}
	t := time.NewTicker(sweepEvery(p.store.retention))
	defer t.Stop()
	for {
		if n, err := p.Sweep(ctx); err != nil && ctx.Err() == nil {
			p.log.Warn("retention sweep failed; trying again later", "err", err)
		} else if n > 0 {
			p.log.Info("retention removed expired objects", "count", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Repair brings the index in line with the objects: after a crash, or
// with an index lost or older than the objects.
func (p *Provider) Repair(ctx context.Context) (int, error) { return p.store.repair(ctx) }

// Sweep removes the objects whose retention ended: what `filestage gc`
// runs once.
func (p *Provider) Sweep(ctx context.Context) (int, error) { return p.store.sweep(ctx) }

// Pattern is where the upload handler is mounted.
func (p *Provider) Pattern() string { return "/files/" }

// entry is the index entry a request describes, before it is stored.
func entry(req providers.UploadRequest, key string) Entry {
	return Entry{Key: key, Name: req.Filename, Mimetype: req.Mimetype, Size: req.Size,
		MD5: hex.EncodeToString(req.MD5[:]), Owner: req.Owner}
}

// RequestUpload issues a signed PUT URL bound to the key, type, MD5 and
// size, unless the store already holds the key: then the slot is existing
// and carries no URL, as a PUT to it would be refused. Only here are the
// caller and the name known: the URL carries them, sealed, to the PUT,
// which writes the entry. A presign of new bytes writes nothing.
func (p *Provider) RequestUpload(ctx context.Context, req providers.UploadRequest) (providers.Slot, error) {
	key := providers.ContentKey(req)
	e, ok, err := p.store.existing(ctx, key)
	if err != nil {
		return providers.Slot{}, err
	}
	if ok {
		return p.existing(req, e), nil
	}
	g := grant{
		Method:      "PUT",
		Key:         key,
		ContentType: req.Mimetype,
		ContentMD5:  base64.StdEncoding.EncodeToString(req.MD5[:]),
		Size:        req.Size,
		Meta:        p.signer.seal(key, req.Filename, req.Owner),
		Expires:     p.now().Add(URLTTL).Truncate(time.Second),
	}
	size := ""
	if g.Size >= 0 {
		size = strconv.FormatInt(g.Size, 10)
	}
	q := rawQuery("expires", strconv.FormatInt(g.Expires.Unix(), 10), "meta", g.Meta, "size", size, "signature", p.signer.sign(g))
	slot := p.slot(req, Entry{Key: key, Name: req.Filename, Expires: p.store.expiry(p.now())}, providers.SlotNew)
	slot.URL, slot.Method, slot.ExpiresAt = p.base+p.Pattern()+key+"?"+q, g.Method, g.Expires
	slot.Headers = map[string]string{
		"Content-Type": g.ContentType,
		"Content-MD5":  g.ContentMD5,
	}
	return slot, nil
}

func slotID(sum [16]byte) string { return "local_" + hex.EncodeToString(sum[:8]) }

// slot describes e, stored or about to be, with its download URL.
func (p *Provider) slot(req providers.UploadRequest, e Entry, typ providers.SlotType) providers.Slot {
	name := cmp.Or(req.Filename, e.Name)
	url, expires := p.DownloadURL(e.Key, name)
	return providers.Slot{
		ID:                slotID(req.MD5),
		Key:               e.Key,
		Headers:           map[string]string{},
		Type:              typ,
		StorageBackend:    Name,
		DownloadURL:       url,
		DownloadExpiresAt: expires,
		ObjectExpiresAt:   e.Expires,
	}
}

// existing is the slot of bytes the store holds. Its headers are empty
// rather than nil: a tool answer must carry an object there.
func (p *Provider) existing(req providers.UploadRequest, e Entry) providers.Slot {
	return p.slot(req, e, providers.SlotExisting)
}

// MovesTemp marks the local store as a providers.Mover.
func (p *Provider) MovesTemp() {}

// Store stores the body unless the store has it: a temporary file is
// linked into place (it was hashed as it was written), other bodies are
// copied and verified. Nothing is uploaded, so the slot has no upload URL.
func (p *Provider) Store(ctx context.Context, req providers.UploadRequest, body providers.Body) (providers.Slot, error) {
	if body.MD5 != req.MD5 {
		// The key is req's MD5 and only body's is checked: stored, they
		// could differ, and existing would be said of other bytes.
		return providers.Slot{}, fmt.Errorf("the body's MD5 %x is not the requested %x", body.MD5, req.MD5)
	}
	key := providers.ContentKey(req)
	e, ok, err := p.store.existing(ctx, key)
	if err != nil {
		return providers.Slot{}, err
	}
	if ok {
		return p.existing(req, e), nil
	}
	e = entry(req, key)
	e.Size = body.Size
	var exists bool
	if body.Temp != nil {
		e, exists, err = p.store.keep(ctx, e, body.Temp.Keep)
	} else {
		var stored Entry
		stored, err = p.store.put(ctx, e, ctxReader{ctx, body.Reader()}, body.MD5, p.max)
		if errors.Is(err, ErrObjectExists) {
			stored, err = p.store.adopt(ctx, e)
			exists = err == nil
		}
		e = stored
	}
	switch {
	case err != nil:
		return providers.Slot{}, err
	case exists:
		// Another store or upload of the key won the race. The object
		// under a content key has the key's MD5, so it holds these bytes.
		return p.existing(req, e), nil
	}
	return p.slot(req, e, providers.SlotNew), nil
}

// Upload stores the body directly; it takes the same verified path as an
// upload through the signed URL, with the name and owner the URL carries.
func (p *Provider) Upload(ctx context.Context, slot providers.Slot, body providers.Body) error {
	e := Entry{Key: slot.Key}
	if u, err := url.Parse(slot.URL); err == nil {
		e.Name, e.Owner, _ = p.signer.open(slot.Key, u.Query().Get("meta"))
	}
	_, err := p.store.put(ctx, e, ctxReader{ctx, body.Reader()}, body.MD5, p.max)
	return err
}

// ctxReader stops a long local copy when the caller gives up.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(b []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(b)
}

// Query selects stored entries for List.
type Query struct {
	// Prefix keeps keys that start with it.
	Prefix string
	// Namespace, when not nil, keeps one caller's entries: those whose
	// keys lie in *Namespace ("" for keys outside any namespace).
	Namespace *string
	// LiveAt, when not zero, keeps only objects not expired then.
	LiveAt time.Time
	// After is the last key of the previous page; "" starts at the first.
	After string
	// Limit caps the page; 0 means 1000.
	Limit int
}

// List returns a page of stored entries in key order.
func (p *Provider) List(ctx context.Context, q Query) ([]Entry, error) {
	if q.Limit <= 0 {
		q.Limit = 1000
	}
	return p.store.index.list(ctx, q.Prefix, q.Namespace, q.LiveAt, q.After, q.Limit)
}

// Objects returns a page of the stored objects in namespace.
func (p *Provider) Objects(ctx context.Context, namespace, after string, limit int) ([]Entry, error) {
	return p.List(ctx, Query{Namespace: &namespace, LiveAt: p.now(), After: after, Limit: limit})
}

// Object returns key's stored entry; ok is false when none is stored or
// its retention ended.
func (p *Provider) Object(ctx context.Context, key string) (Entry, bool, error) {
	e, ok, err := p.store.index.get(ctx, key)
	if ok && !e.Expires.IsZero() && !p.now().Before(e.Expires) {
		return Entry{}, false, nil
	}
	return e, ok, err
}

// OpenObject opens key's object for reading.
func (p *Provider) OpenObject(key string) (io.ReadCloser, error) {
	path, err := p.store.path(key)
	if err != nil {
		return nil, err
	}
	return os.Open(path)
}

// Remove deletes key's object and entry; ok is false when none was there.
func (p *Provider) Remove(ctx context.Context, key string) (bool, error) {
	return p.store.remove(ctx, key, time.Time{})
}

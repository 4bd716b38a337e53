// Package local is the embedded default provider: a content-addressed store
// in a data directory whose upload URLs filestage serves itself, signed and
// expiring, so it works with no set-up at all.
package local

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
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

// Provider stores files on the local disk.
type Provider struct {
	store  *store
	signer signer
	base   string
	max    int64
	now    func() time.Time
}

// Open is the provider's registry factory.
func Open(_ context.Context, s providers.Settings) (providers.Provider, error) {
	return providers.Opened(New(s))
}

// New opens the store in s.DataDir, creating it and its signing key on first use.
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
	return &Provider{
		store:  st,
		signer: signer{key: key},
		base:   strings.TrimSuffix(s.PublicURL, "/"),
		max:    s.MaxBytes,
		now:    time.Now,
	}, nil
}

// Pattern is where the upload handler is mounted.
func (p *Provider) Pattern() string { return "/files/" }

// RequestUpload issues a signed PUT URL bound to the key, type, MD5 and
// size, unless the store already holds the key: then the slot is existing
// and carries no URL, as a PUT to it would be refused.
func (p *Provider) RequestUpload(_ context.Context, req providers.UploadRequest) (providers.Slot, error) {
	key := providers.ContentKey(req)
	if _, err := p.store.path(key); err != nil {
		return providers.Slot{}, err
	}
	if p.store.has(key) {
		return existing(req, key), nil
	}
	g := grant{
		Method:      "PUT",
		Key:         key,
		ContentType: req.Mimetype,
		ContentMD5:  base64.StdEncoding.EncodeToString(req.MD5[:]),
		Size:        req.Size,
		Expires:     p.now().Add(URLTTL).Truncate(time.Second),
	}
	q := url.Values{}
	q.Set("expires", strconv.FormatInt(g.Expires.Unix(), 10))
	if g.Size >= 0 {
		q.Set("size", strconv.FormatInt(g.Size, 10))
	}
	q.Set("signature", p.signer.sign(g))
	return providers.Slot{
		ID:     slotID(req.MD5),
		Key:    key,
		URL:    p.base + p.Pattern() + key + "?" + q.Encode(),
		Method: g.Method,
		Headers: map[string]string{
			"Content-Type": g.ContentType,
			"Content-MD5":  g.ContentMD5,
		},
		ExpiresAt:      g.Expires,
		Type:           providers.SlotNew,
		StorageBackend: Name,
	}, nil
}

func slotID(sum [16]byte) string { return "local_" + hex.EncodeToString(sum[:8]) }

// existing is the slot of bytes the store holds under key. Its headers are
// empty rather than nil: a tool answer must carry an object there.
func existing(req providers.UploadRequest, key string) providers.Slot {
	return providers.Slot{
		ID:             slotID(req.MD5),
		Key:            key,
		Headers:        map[string]string{},
		Type:           providers.SlotExisting,
		StorageBackend: Name,
	}
}

// MovesTemp marks the local store as a providers.Mover.
func (p *Provider) MovesTemp() {}

// Store stores the body unless the store has it: a temporary file is
// linked into place (it was hashed as it was written), other bodies are
// copied and verified. Nothing is signed, so the slot has no URL.
func (p *Provider) Store(ctx context.Context, req providers.UploadRequest, body providers.Body) (providers.Slot, error) {
	if body.MD5 != req.MD5 {
		// The key is req's MD5 and only body's is checked: stored, they
		// could differ, and existing would be said of other bytes.
		return providers.Slot{}, fmt.Errorf("the body's MD5 %x is not the requested %x", body.MD5, req.MD5)
	}
	key := providers.ContentKey(req)
	path, err := p.store.path(key)
	if err != nil {
		return providers.Slot{}, err
	}
	if p.store.has(key) {
		return existing(req, key), nil
	}
	if body.Temp != nil {
		err = body.Temp.Keep(path)
	} else {
		_, err = p.store.put(key, ctxReader{ctx, body.Reader()}, body.MD5, p.max)
	}
	switch {
	case errors.Is(err, fs.ErrExist):
		// Another store or upload of the key won the race. The object
		// under a content key has the key's MD5, so it holds these bytes.
		return existing(req, key), nil
	case err != nil:
		return providers.Slot{}, err
	}
	return providers.Slot{ID: slotID(req.MD5), Key: key, Type: providers.SlotNew, StorageBackend: Name}, nil
}

// Upload stores the body directly; it takes the same verified path as an
// upload through the signed URL.
func (p *Provider) Upload(ctx context.Context, slot providers.Slot, body providers.Body) error {
	_, err := p.store.put(slot.Key, ctxReader{ctx, body.Reader()}, body.MD5, p.max)
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

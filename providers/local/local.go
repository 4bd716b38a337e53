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
	st, err := openStore(s.DataDir)
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

// RequestUpload issues a signed PUT URL bound to the key, type, MD5 and size.
func (p *Provider) RequestUpload(_ context.Context, req providers.UploadRequest) (providers.Slot, error) {
	key := providers.ContentKey(req)
	if _, err := p.store.path(key); err != nil {
		return providers.Slot{}, err
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
	typ := providers.SlotNew
	if p.store.has(key) {
		typ = providers.SlotExisting
	}
	return providers.Slot{
		ID:     "local_" + hex.EncodeToString(req.MD5[:8]),
		Key:    key,
		URL:    p.base + p.Pattern() + key + "?" + q.Encode(),
		Method: g.Method,
		Headers: map[string]string{
			"Content-Type": g.ContentType,
			"Content-MD5":  g.ContentMD5,
		},
		ExpiresAt:      g.Expires,
		Type:           typ,
		StorageBackend: Name,
	}, nil
}

// MovesTemp marks the local store as a providers.Mover.
func (p *Provider) MovesTemp() {}

// Store stores the body unless the store has it: a temporary file is
// moved into place (it was hashed as it was written), other bodies are
// copied and verified.
func (p *Provider) Store(ctx context.Context, req providers.UploadRequest, body providers.Body) (providers.Slot, error) {
	slot, err := p.RequestUpload(ctx, req)
	if err != nil || slot.Type == providers.SlotExisting {
		return slot, err
	}
	if body.Temp != nil {
		var path string
		if path, err = p.store.path(slot.Key); err == nil {
			err = body.Temp.Keep(path)
		}
	} else {
		err = p.Upload(ctx, slot, body)
	}
	if err != nil {
		return providers.Slot{}, err
	}
	return slot, nil
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

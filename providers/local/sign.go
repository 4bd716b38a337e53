package local

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// grant is everything an upload URL permits; the signature covers all of it,
// so a request that changes any part is refused.
type grant struct {
	Method      string
	Key         string
	ContentType string
	ContentMD5  string // base64 of the 16 digest bytes, as in the Content-MD5 header
	Size        int64  // -1: any length up to the cap
	// Name is the file name a download is offered under.
	Name string
	// Meta is an upload's sealed name and owner (see seal); signed when set.
	Meta    string
	Expires time.Time
}

func (g grant) canonical() []byte {
	fields := []string{
		"filestage-local-v1",
		g.Method,
		g.Key,
		g.ContentType,
		g.ContentMD5,
		strconv.FormatInt(g.Size, 10),
		strconv.FormatInt(g.Expires.Unix(), 10),
	}
	if g.Method == "GET" {
		// A download's name is its own; uploads are signed as they were.
		fields = append(fields, g.Name)
	}
	if g.Meta != "" {
		// URLs issued without it verify as before.
		fields = append(fields, g.Meta)
	}
	return []byte(strings.Join(fields, "\n"))
}

type signer struct {
	// macs keeps keyed HMACs between calls: keying one hashes the key
	// twice, as much as signing a URL.
	macs *sync.Pool
	// meta seals what an upload URL carries for its PUT to index.
	meta cipher.AEAD
}

func newSigner(key []byte) signer {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("filestage-local-meta-v1"))
	block, _ := aes.NewCipher(m.Sum(nil)) // 32 bytes: AES-256 cannot refuse it
	aead, _ := cipher.NewGCM(block)
	return signer{meta: aead, macs: &sync.Pool{New: func() any { return hmac.New(sha256.New, key) }}}
}

// seal carries an upload's file name and owner in its URL, for the PUT
// to write the index entry with: a presign then writes nothing, which
// keeps it cheap and lets the PUT land on any process that shares the
// data directory. Sealed, not merely signed, because the owner is a
// principal's ID, which a URL must not show to whoever sees it; bound
// to the key, so that it cannot be moved to another URL.
func (s signer) seal(key, name, owner string) string {
	nonce := make([]byte, s.meta.NonceSize(), s.meta.NonceSize()+binary.MaxVarintLen64+len(name)+len(owner)+s.meta.Overhead())
	rand.Read(nonce)
	plain := append(append(binary.AppendUvarint(nil, uint64(len(name))), name...), owner...)
	return base64.RawURLEncoding.EncodeToString(s.meta.Seal(nonce, nonce, plain, []byte(key)))
}

// open reads what seal put in a URL for key; ok is false when it is not
// seal's, for this key, with this install's secret.
func (s signer) open(key, sealed string) (name, owner string, ok bool) {
	b, err := base64.RawURLEncoding.DecodeString(sealed)
	if err != nil || len(b) < s.meta.NonceSize() {
		return "", "", false
	}
	plain, err := s.meta.Open(nil, b[:s.meta.NonceSize()], b[s.meta.NonceSize():], []byte(key))
	if err != nil {
		return "", "", false
	}
	n, w := binary.Uvarint(plain)
	if w <= 0 || n > uint64(len(plain)-w) {
		return "", "", false
	}
	return string(plain[w : w+int(n)]), string(plain[w+int(n):]), true
}

func (s signer) sign(g grant) string {
	return base64.RawURLEncoding.EncodeToString(s.mac(g))
}

func (s signer) valid(g grant, sig string) bool {
	got, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil {
		return false
	}
	return hmac.Equal(got, s.mac(g))
}

func (s signer) mac(g grant) []byte {
	m := s.macs.Get().(hash.Hash)
	defer s.macs.Put(m)
	m.Reset()
	m.Write(g.canonical())
	return m.Sum(nil)
}

const secretFile = "secret"

// loadSecret returns the per-install signing key kept in dir, creating it on
// first use. Creation is exclusive, so two processes starting together end
// up with the same key.
func loadSecret(dir string) ([]byte, error) {
	path := filepath.Join(dir, secretFile)
	for range 2 {
		b, err := os.ReadFile(path)
		if err == nil {
			if len(b) < 32 {
				return nil, fmt.Errorf("signing key %s is shorter than 32 bytes; remove it to make a new one", path)
			}
			return b, nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		key := make([]byte, 32)
		rand.Read(key)
		tmp, err := os.CreateTemp(dir, ".secret-*")
		if err != nil {
			return nil, err
		}
		_, werr := tmp.Write(key)
		if err := errors.Join(werr, tmp.Sync(), tmp.Close()); err != nil {
			os.Remove(tmp.Name())
			return nil, err
		}
		// Link fails if another process won the race; then read its key.
		err = os.Link(tmp.Name(), path)
		os.Remove(tmp.Name())
		if err == nil {
			return key, nil
		}
		if !errors.Is(err, fs.ErrExist) {
			return nil, err
		}
	}
	return nil, fmt.Errorf("could not create signing key %s", path)
}

package local

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
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
	Name    string
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
	return []byte(strings.Join(fields, "\n"))
}

type signer struct{ key []byte }

func (s signer) sign(g grant) string {
	m := hmac.New(sha256.New, s.key)
	m.Write(g.canonical())
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func (s signer) valid(g grant, sig string) bool {
	got, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil {
		return false
	}
	m := hmac.New(sha256.New, s.key)
	m.Write(g.canonical())
	return hmac.Equal(got, m.Sum(nil))
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

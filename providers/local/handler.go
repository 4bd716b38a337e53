package local

import (
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/filestage/filestage/spool"
)

// ServeHTTP accepts uploads to signed URLs. The URL's signature binds the
// method, key, Content-Type, Content-MD5, size and expiry; the bytes are
// stored only when they hash to the signed MD5 and nothing is stored
// under the key yet.
//
// That last rule is also what makes a URL single-use: replayed after its
// upload, or racing it, a URL finds its key taken and is refused. No table
// of used URLs is kept, so the handler stays stateless and replicas that
// share the data directory refuse each other's replays too; and a URL is
// only ever good for the one key and MD5 it was signed for, whose object,
// once stored, nothing can change.
//
// GET and HEAD read objects back through signed download URLs.
func (p *Provider) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodPut:
	case http.MethodGet, http.MethodHead:
		p.serveDownload(w, r)
		return
	default:
		w.Header().Set("Allow", "GET, HEAD, PUT")
		fail(w, http.StatusMethodNotAllowed, "MethodNotAllowed", "signed URLs accept PUT (uploads), GET and HEAD (downloads)")
		return
	}
	q := r.URL.Query()
	key := strings.TrimPrefix(r.URL.Path, p.Pattern())
	// Only keys the store could hold are signed: no field of the signed
	// text can then hold the separator.
	path, err := p.store.path(key)
	if err != nil {
		fail(w, http.StatusForbidden, "SignatureDoesNotMatch", "no upload URL names this key: request a new upload URL")
		return
	}
	g := grant{
		Method:      r.Method,
		Key:         key,
		ContentType: r.Header.Get("Content-Type"),
		ContentMD5:  r.Header.Get("Content-MD5"),
		Size:        -1,
		Meta:        q.Get("meta"),
	}
	exp, ok := parseExpires(q.Get("expires"))
	if !ok || q.Get("signature") == "" {
		fail(w, http.StatusForbidden, "AccessDenied", "the URL lacks its expires or signature parameter; request a new upload URL")
		return
	}
	g.Expires = exp
	if s := q.Get("size"); s != "" {
		if g.Size, err = strconv.ParseInt(s, 10, 64); err != nil {
			fail(w, http.StatusForbidden, "AccessDenied", "malformed size parameter")
			return
		}
	}
	if !p.signer.valid(g, q.Get("signature")) {
		fail(w, http.StatusForbidden, "SignatureDoesNotMatch",
			"the signature does not match this request: send exactly the headers returned with the URL (Content-Type, Content-MD5) to the exact URL")
		return
	}
	if p.now().After(g.Expires) {
		fail(w, http.StatusForbidden, "AccessDenied", "the upload URL has expired; request a new one")
		return
	}
	e := Entry{Key: g.Key, Mimetype: g.ContentType}
	if g.Meta != "" {
		var ok bool
		if e.Name, e.Owner, ok = p.signer.open(g.Key, g.Meta); !ok {
			// Signed by this install's secret, yet not sealed by it:
			// only a changed secret gets here.
			fail(w, http.StatusForbidden, "AccessDenied", "the URL's meta parameter cannot be read; request a new upload URL")
			return
		}
	}
	// After the signature check, so that only a URL's holder learns
	// whether its key is stored; before the body is read, so that a
	// replay costs no more than this.
	if taken(path) {
		failExists(w)
		return
	}
	if g.Size >= 0 && r.ContentLength >= 0 && r.ContentLength != g.Size {
		fail(w, http.StatusBadRequest, "IncompleteBody", "Content-Length differs from the size the URL was issued for")
		return
	}
	limit := p.max
	if g.Size >= 0 {
		limit = min(limit, g.Size)
	}
	if r.ContentLength > limit {
		fail(w, http.StatusRequestEntityTooLarge, "EntityTooLarge", "the body is larger than allowed")
		return
	}
	var want [16]byte
	if b, err := base64.StdEncoding.DecodeString(g.ContentMD5); err != nil || len(b) != len(want) {
		fail(w, http.StatusBadRequest, "InvalidDigest", "Content-MD5 must be the base64 of the 16-byte MD5 digest")
		return
	} else {
		copy(want[:], b)
	}
	body := io.Reader(r.Body)
	if g.Size >= 0 {
		// Without a Content-Length, a short body is only seen at its end.
		body = &sizedBody{r: body, left: g.Size}
	}
	_, err = p.store.put(r.Context(), e, body, want, limit)
	switch {
	case err == nil:
		w.Header().Set("ETag", `"`+hex.EncodeToString(want[:])+`"`)
		w.WriteHeader(http.StatusOK)
	case errors.Is(err, ErrObjectExists):
		failExists(w)
	case errors.Is(err, ErrDigestMismatch):
		fail(w, http.StatusBadRequest, "BadDigest", "the bytes received do not match Content-MD5; nothing was stored")
	case errors.Is(err, errShortBody):
		fail(w, http.StatusBadRequest, "IncompleteBody", "the body is shorter than the size the URL was issued for; nothing was stored")
	case errors.Is(err, spool.ErrTooLarge):
		fail(w, http.StatusRequestEntityTooLarge, "EntityTooLarge", "the body is larger than allowed; nothing was stored")
	case errors.Is(err, spool.ErrBusy):
		w.Header().Set("Retry-After", "5")
		fail(w, http.StatusServiceUnavailable, "SlowDown", "the uploads being received fill the server's spool budget; nothing was stored: try again in a few seconds")
	default:
		// A cut connection lands here too; the client will not read this.
		fail(w, http.StatusInternalServerError, "InternalError", "the upload was not stored")
	}
}

// errShortBody: the body ended before the size the URL was issued for.
var errShortBody = errors.New("body shorter than the signed size")

// sizedBody reads a body that must be left bytes long; longer ones are
// caught by the byte limit.
type sizedBody struct {
	r    io.Reader
	left int64
}

func (b *sizedBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	b.left -= int64(n)
	if err == io.EOF && b.left > 0 {
		err = errShortBody
	}
	return n, err
}

// failExists refuses a PUT to a stored key, which is never replaced: the
// object there already hashes to the URL's MD5.
func failExists(w http.ResponseWriter) {
	fail(w, http.StatusConflict, "ObjectAlreadyExists",
		"an object is already stored under this key and stored objects are never replaced; nothing was changed: use the descriptor as it is")
}

func fail(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{"code": code, "message": msg}})
}

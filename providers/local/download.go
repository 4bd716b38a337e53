package local

import (
	"cmp"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/filestage/filestage/providers"
)

// DownloadURL signs a GET of key, offered as name, for the download TTL.
// The name is signed too, so each descriptor's link keeps its own name
// while same bytes share one object.
func (p *Provider) DownloadURL(key, name string) (string, time.Time) {
	g := grant{Method: http.MethodGet, Key: key, Size: -1, Name: name,
		Expires: p.now().Add(p.downloadTTL).Truncate(time.Second)}
	q := rawQuery("expires", strconv.FormatInt(g.Expires.Unix(), 10), "name", name, "signature", p.signer.sign(g))
	return p.base + p.Pattern() + key + "?" + q, g.Expires
}

// rawQuery is a URL query of the key-value pairs kv whose values are not
// empty, in the order given, escaped as url.Values.Encode escapes them;
// built directly, since every call answers with two.
func rawQuery(kv ...string) string {
	var b strings.Builder
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == "" {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('&')
		}
		b.WriteString(kv[i])
		b.WriteByte('=')
		b.WriteString(url.QueryEscape(kv[i+1]))
	}
	return b.String()
}

// serveDownload answers GET and HEAD on a signed download URL with the
// object's bytes: ranges, ETag and conditional requests through
// http.ServeContent, the stored type, and the signed name as an
// attachment. Stored files are never rendered by the browser on this
// origin, whatever they hold: attachment, nosniff and a sandbox CSP.
func (p *Provider) serveDownload(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	g := grant{Method: http.MethodGet, Key: strings.TrimPrefix(r.URL.Path, p.Pattern()), Size: -1, Name: q.Get("name")}
	// Only keys the store could hold are signed: no field of the signed
	// text can then hold the separator.
	path, err := p.store.path(g.Key)
	if err != nil {
		fail(w, http.StatusNotFound, "NoSuchKey", "no such file")
		return
	}
	exp, ok := parseExpires(q.Get("expires"))
	if !ok || q.Get("signature") == "" {
		fail(w, http.StatusForbidden, "AccessDenied", "the URL lacks its expires or signature parameter: download URLs come from the tools' download_url")
		return
	}
	g.Expires = exp
	if !p.signer.valid(g, q.Get("signature")) {
		fail(w, http.StatusForbidden, "SignatureDoesNotMatch", "the signature does not match this URL: use download_url exactly as it was returned")
		return
	}
	if p.now().After(g.Expires) {
		fail(w, http.StatusForbidden, "AccessDenied", "the download URL has expired: stage the file again for a new one")
		return
	}
	e, ok, err := p.Object(r.Context(), g.Key)
	if err != nil {
		fail(w, http.StatusInternalServerError, "InternalError", "the index could not be read")
		return
	}
	if !ok {
		fail(w, http.StatusNotFound, "NoSuchKey", "the file is no longer stored: its retention ended or it was removed; stage it again")
		return
	}
	f, err := os.Open(path)
	if err != nil {
		fail(w, http.StatusNotFound, "NoSuchKey", "the file is no longer stored: stage it again")
		return
	}
	defer f.Close()
	h := w.Header()
	h.Set("Content-Type", e.Mimetype)
	h.Set("ETag", `"`+e.MD5+`"`)
	h.Set("Content-Disposition", providers.ContentDisposition(cmp.Or(g.Name, e.Name)))
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", "sandbox")
	h.Set("Cache-Control", "private, max-age=0")
	if !e.Expires.IsZero() {
		h.Set("Expires", e.Expires.UTC().Format(http.TimeFormat))
	}
	if strings.Contains(r.Header.Get("Range"), ",") {
		// One range at a time, as S3 serves them: many small ranges of
		// one file would cost more in part headers than the file.
		r.Header.Del("Range")
	}
	http.ServeContent(w, r, "", e.Created, f)
}

// parseExpires reads an expires parameter as it is signed: decimal digits
// only, so that one URL has one spelling.
func parseExpires(s string) (time.Time, bool) {
	if s == "" || len(s) > 12 || strings.TrimLeft(s, "0123456789") != "" {
		return time.Time{}, false
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return time.Unix(n, 0), err == nil
}

package source

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/url"
	"strings"
	"unicode/utf8"
)

// ErrInlineTooLarge: a data: URL holds more bytes than the inline cap.
var ErrInlineTooLarge = errors.New("inline data larger than the cap")

func isData(rawURL string) bool {
	return len(rawURL) >= 5 && strings.EqualFold(rawURL[:5], "data:")
}

// openData decodes an RFC 2397 URL, data:[<mediatype>][;base64],<data>,
// holding at most max decoded bytes. A name or filename parameter of the
// media type names the file. Errors never repeat the data.
func openData(rawURL string, max int64) (*Source, error) {
	meta, payload, ok := strings.Cut(rawURL[len("data:"):], ",")
	if !ok {
		return nil, fmt.Errorf("%w: a data: URL needs a comma before its data, as in data:text/plain;base64,aGk=", ErrScheme)
	}
	params := strings.Split(meta, ";")
	encoded := false
	if last := params[len(params)-1]; len(params) > 1 && strings.EqualFold(strings.TrimSpace(last), "base64") {
		encoded, params = true, params[:len(params)-1]
	}
	var contentType, name string
	if mt := strings.TrimSpace(params[0]); mt != "" {
		t, _, err := mime.ParseMediaType(mt)
		if err != nil || !strings.Contains(t, "/") {
			return nil, fmt.Errorf("%w: the data: URL's media type %q is not type/subtype", ErrScheme, truncate(mt, 48))
		}
		contentType = t
	} else if len(params) > 1 {
		contentType = "text/plain" // data:;charset=utf-8,... keeps the default type
	}
	// Parameters are read leniently: producers write names unquoted.
	for _, p := range params[1:] {
		k, v, _ := strings.Cut(p, "=")
		if k = strings.ToLower(strings.TrimSpace(k)); (k == "filename" || k == "name") && name == "" {
			if u, err := url.PathUnescape(strings.Trim(v, `"`)); err == nil {
				name = SanitizeName(u)
			}
		}
	}

	tooLarge := fmt.Errorf("%w: the data: URL holds more than %d bytes; stage larger files from an http(s) or file:// URL", ErrInlineTooLarge, max)
	// Refuse before decoding what cannot fit, however it is written: a
	// byte takes at least 4/3 base64 characters, at most 3 percent-encoded
	// ones, and base64 may be wrapped and percent-encoded too. The exact
	// check follows the decoding.
	if int64(len(payload)) > 4*max+4096 {
		return nil, tooLarge
	}
	data, err := url.PathUnescape(payload)
	if err != nil {
		return nil, fmt.Errorf("%w: the data: URL's data has a bad percent-escape; encode the bytes in base64 (data:<type>;base64,<data>)", ErrScheme)
	}
	b := []byte(data)
	if encoded {
		if b, err = decodeBase64(data); err != nil {
			return nil, err
		}
	}
	if int64(len(b)) > max {
		return nil, tooLarge
	}
	return &Source{
		Body:        io.NopCloser(bytes.NewReader(b)),
		Size:        int64(len(b)),
		ContentType: contentType,
		Name:        name,
		At:          bytes.NewReader(b),
	}, nil
}

// decodeBase64 accepts the standard and URL alphabets, with or without
// padding, and ignores white space (line-wrapped base64 is common).
func decodeBase64(s string) ([]byte, error) {
	s = strings.Map(func(r rune) rune {
		if r == ' ' || r == '\t' || r == '\r' || r == '\n' {
			return -1
		}
		return r
	}, s)
	s = strings.TrimRight(s, "=")
	enc := base64.RawStdEncoding
	if strings.ContainsAny(s, "-_") {
		enc = base64.RawURLEncoding
	}
	b, err := enc.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("%w: the data: URL's base64 is not valid", ErrScheme)
	}
	return b, nil
}

// truncate keeps at most n bytes of s, cut between runes. Quoted with %q,
// each kept byte takes at most 4 (\xff): callers size n for that.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for i := 1; i < utf8.UTFMax && n > 0 && !utf8.RuneStart(s[n]); i++ {
		n--
	}
	return s[:n] + "…"
}

package source

import (
	"crypto/md5"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

// fuzzCheckName holds for every name filestage stores a file under: one plain
// path element, printable, valid UTF-8, at most MaxNameBytes long, with no
// leading or trailing dot or space, nothing invisible and no run of blanks,
// that stays inside any directory it is joined to. Only SanitizeName and
// nameFrom may give "" (nothing left).
func fuzzCheckName(t *testing.T, name string, mayBeEmpty bool) {
	t.Helper()
	if name == "" {
		if !mayBeEmpty {
			t.Error("empty name")
		}
		return
	}
	switch {
	case !utf8.ValidString(name):
		t.Errorf("name %q is not valid UTF-8", name)
	case len(name) > MaxNameBytes:
		t.Errorf("name of %d bytes, over %d: %q", len(name), MaxNameBytes, name)
	case name == "." || name == "..":
		t.Errorf("name %q", name)
	case strings.ContainsAny(name, "/\\\x00"):
		t.Errorf("name %q holds a separator or NUL", name)
	case strings.IndexFunc(name, func(r rune) bool { return unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r) }) >= 0:
		t.Errorf("name %q holds a control character", name)
	case strings.HasPrefix(name, ".") || strings.HasPrefix(name, " ") || strings.HasSuffix(name, ".") || strings.HasSuffix(name, " "):
		t.Errorf("name %q starts or ends with a dot or space", name)
	case invisible(name) != "":
		t.Errorf("name %+q holds %s", name, invisible(name))
	}
	dir := filepath.Join(string(filepath.Separator), "store", "dir")
	if p := filepath.Join(dir, name); filepath.Dir(p) != dir || filepath.Base(p) != name {
		t.Errorf("%q joined to %s is %s", name, dir, p)
	}
}

// FuzzSanitizeName: SanitizeName and FileName give safe names for any
// input, and SanitizeName keeps a name it already gave.
func FuzzSanitizeName(f *testing.F) {
	for _, s := range [][2]string{
		{"q3 report.pdf", "application/pdf"},
		{"../../etc/passwd", "text/plain"},
		{`C:\Users\ana\evil.exe`, "application/octet-stream"},
		{"invoice\u202efdp.exe", "application/pdf"},
		{"..", "image/png"},
		{" . .hidden. . ", "text/csv"},
		{"a\x00b\x1fc\x7fd\u0085e.txt", "text/plain"},
		{"\xff\xfe.txt", ""},
		{strings.Repeat("é", 150) + ".pdf", "application/pdf"},
		{strings.Repeat("a", 300), "application/pdf"},
		{strings.Repeat("a", 199) + "." + strings.Repeat("b", 30), "image/png"},
		{"report", "application/vnd.openxmlformats-officedocument.wordprocessingml.document"},
		{"", "image/png"},
		{"<>:\"|?*", "not a type"},
	} {
		f.Add(s[0], s[1])
	}
	sum := md5.Sum([]byte("hello"))
	f.Fuzz(func(t *testing.T, name, mimeType string) {
		n := SanitizeName(name)
		fuzzCheckName(t, n, true)
		if again := SanitizeName(n); again != n {
			t.Errorf("SanitizeName(%q) = %q, then %q", name, n, again)
		}
		fuzzCheckName(t, FileName(name, mimeType, sum), false)
	})
}

// FuzzNameFrom: the name taken from a Content-Disposition header or the
// URL's last segment is safe whatever the server sends.
func FuzzNameFrom(f *testing.F) {
	for _, s := range [][2]string{
		{`attachment; filename="q3.pdf"`, "https://example.com/dl?id=1"},
		{`attachment; filename="../../etc/passwd"`, "https://example.com/a.txt"},
		{`attachment; filename*=UTF-8''%2E%2E%2F%2E%2E%2Fevil%E2%80%AE.exe`, "https://example.com/"},
		{`attachment; filename*=UTF-8''%00%0a%0d.txt`, "https://example.com/x"},
		{`inline; filename=".."`, "https://example.com/%2e%2e"},
		{`attachment; filename=" "`, "https://example.com/..%2f..%2fpasswd"},
		{`form-data; name="f"; filename="a\\b.txt"`, "https://example.com/dir/"},
		{"attachment; filename=\"\xff\"", "https://example.com/a%E2%80%8Fb.pdf"},
		{"", "https://example.com/files/report%20final.pdf"},
		{"garbage;;;=", "https://example.com/%00"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, disposition, rawURL string) {
		u, err := url.Parse(rawURL)
		if err != nil {
			u = &url.URL{Scheme: "https", Host: "example.com", Path: rawURL}
		}
		fuzzCheckName(t, nameFrom(disposition, u), true)
	})
}

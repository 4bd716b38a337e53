package source

import (
	"context"
	"crypto/md5"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

// lookalikes are characters that compatibility normalisation (NFKC, as
// macOS, some unzip tools and some platforms apply to names) turns into a
// dot or a separator, or that merely look like a slash. None may be left
// in a stored name, or a later normalisation could make it a path.
const lookalikes = "\u2024\u2025\u2026\uFE19\uFE30\uFE52\uFF0E" + // dots
	"\uFF0F\uFF3C\uFE68\u2100\u2101\u2105\u2106" + // NFKC slashes: ／ ＼ ﹨ ℀ ℁ ℅ ℆
	"\u2215\u2044\u2216\u29F5\u29F8\u29F9\u2571\u2572" // look like slashes only

// requireSafeName holds for every name filestage may store a file under:
// one plain path element, printable, valid UTF-8, at most MaxNameBytes,
// no leading or trailing dot, space or invisible character, no character
// a normalisation would make a dot or a separator, and it stays inside
// the directory it is joined to.
func requireSafeName(t *testing.T, in, name string) {
	t.Helper()
	if name == "" {
		return
	}
	first, _ := utf8.DecodeRuneInString(name)
	last, _ := utf8.DecodeLastRuneInString(name)
	switch {
	case !utf8.ValidString(name):
		t.Errorf("%q: %q is not valid UTF-8", in, name)
	case len(name) > MaxNameBytes:
		t.Errorf("%q: %q is %d bytes", in, name, len(name))
	case strings.ContainsAny(name, "/\\\x00"):
		t.Errorf("%q: %q holds a separator or NUL", in, name)
	case strings.ContainsAny(name, lookalikes):
		t.Errorf("%q: %q holds a character that normalises to a dot or slash, or looks like a slash", in, name)
	case strings.IndexFunc(name, func(r rune) bool { return unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r) }) >= 0:
		t.Errorf("%q: %q holds a control character", in, name)
	case trimmed(first) || trimmed(last):
		t.Errorf("%q: %q starts or ends with a dot, space or invisible character", in, name)
	}
	for _, dir := range []string{filepath.Join(t.TempDir(), "objects"), filepath.Join(string(filepath.Separator), "data", "objects")} {
		p := filepath.Join(dir, name)
		if rel, err := filepath.Rel(dir, p); err != nil || rel != name || filepath.Dir(p) != dir {
			t.Errorf("%q: %q joined to %s is %s", in, name, dir, p)
		}
	}
}

// hostileNames are names a server, a data: URL or a model may give,
// and what SanitizeName makes of them ("" when nothing is left).
var hostileNames = []struct{ in, want string }{
	{"../../etc/passwd", "passwd"},
	{`..\..\windows\win.ini`, "win.ini"},
	{"/etc/passwd", "passwd"},
	{`C:\Windows\System32\cmd.exe`, "cmd.exe"},
	{`\\server\share\x.txt`, "x.txt"},
	{"..", ""},
	{"../", ""},
	{"....//....//x", "x"},
	{". .", ""},
	{"a\x00b.txt", "ab.txt"},
	{"evil.sh\x00.pdf", "evil.sh.pdf"},
	{"\x1b[31mred.txt", "[31mred.txt"},
	{"line\r\nbreak.txt", "linebreak.txt"},
	{"\u0085next-line.txt", "next-line.txt"},
	{"tab\there.txt", "tabhere.txt"},
	{"\x7fdel.txt", "del.txt"},
	// Fullwidth full stops and solidus: NFKC makes this ../../etc/passwd.
	{"．．／．．／etc／passwd", "passwd"},
	{"．．", ""},
	{"．．＼boot.ini", "boot.ini"},
	{"﹒﹒﹨x.txt", "x.txt"},
	{"\u2024\u2024/x.txt", "x.txt"}, // ONE DOT LEADER
	{"\u2024\u2024", ""},
	{"\u2025", ""}, // TWO DOT LEADER: ".." under NFKC
	{"\u2025\uFF0Fsecret", "secret"},
	{"\uFE52\uFE52", ""}, // SMALL FULL STOP
	{"report\u2026", "report"},
	{"a\u2100b.txt", "cb.txt"}, // ACCOUNT OF: "a/c" under NFKC
	// Look like slashes without normalising to one: kept visible, but not
	// as something that reads as a path.
	{"..\u2215..\u2215etc\u2215passwd", "_.._etc_passwd"}, // DIVISION SLASH
	{"AC\u29F8DC.mp3", "AC_DC.mp3"},                       // BIG SOLIDUS, as yt-dlp writes /
	{"1\u20442.txt", "1_2.txt"},                           // FRACTION SLASH
	{"a\u2216b.txt", "a_b.txt"},                           // SET MINUS
	// Bidi controls and invisible characters.
	{"invoice\u202Efdp.exe", "invoicefdp.exe"},
	{"\u2067..\u2069", ""},
	{"\u200E..\u200F", ""},
	{"\u200B..\u200B", ""},
	{"\uFEFF.bashrc", "bashrc"},
	{"\u00A0..\u00A0", ""},
	{"\u3000report.pdf\u3000", "report.pdf"},
	// A joiner is invisible: it goes too (emoji show their parts, Persian
	// its letters' other forms). It was kept before this was stricter.
	{"x\u200Dy.txt", "xy.txt"},
	// Windows-reserved characters.
	{`what?<>:"|*.txt`, "what.txt"},
	// Percent-escapes are not decoded here: this is a literal name.
	{"%2e%2e%2fpasswd", "%2e%2e%2fpasswd"},
	{"\xff\xfe../x", "x"},
	{"résumé.pdf", "résumé.pdf"},
	{"日本語のファイル.pdf", "日本語のファイル.pdf"},
	// Long names: cut at MaxNameBytes on a rune boundary, extension kept.
	{strings.Repeat("a", 300), strings.Repeat("a", MaxNameBytes)},
	{strings.Repeat("a", 300) + ".pdf", strings.Repeat("a", MaxNameBytes-4) + ".pdf"},
	{strings.Repeat("日", 100) + ".pdf", strings.Repeat("日", 65) + ".pdf"},                         // 3-byte runes: 195 + 4
	{strings.Repeat("😀", 70) + ".png", strings.Repeat("😀", 49) + ".png"},                          // 4-byte runes: 196 + 4
	{"x" + strings.Repeat("é", 150) + ".pdf", "x" + strings.Repeat("é", 97) + ".pdf"},             // the cut falls inside an é
	{strings.Repeat("a", 250) + "." + strings.Repeat("b", 20), strings.Repeat("a", MaxNameBytes)}, // no 21-byte extensions
	{strings.Repeat("a", 199) + " " + strings.Repeat("b", 100), strings.Repeat("a", 199)},         // no space left at the cut
	{strings.Repeat("/", 1000) + "x", "x"},
	{strings.Repeat("../", 100) + "x", "x"},
}

func TestSanitizeHostileNames(t *testing.T) {
	for _, tt := range hostileNames {
		got := SanitizeName(tt.in)
		if got != tt.want {
			t.Errorf("SanitizeName(%q) = %q, want %q", tt.in, got, tt.want)
		}
		requireSafeName(t, tt.in, got)
		if again := SanitizeName(got); again != got {
			t.Errorf("SanitizeName(%q) = %q, then %q", tt.in, got, again)
		}
	}
}

// TestFileNameHostile: FileName, which names what is stored (from a
// source's name or the tool's filename argument), is never empty and
// always safe, extension included.
func TestFileNameHostile(t *testing.T) {
	sum := md5.Sum([]byte("x"))
	for _, tt := range hostileNames {
		for _, mt := range []string{"application/pdf", "application/vnd.openxmlformats-officedocument.wordprocessingml.document", "application/x-unknown"} {
			got := FileName(tt.in, mt, sum)
			if got == "" {
				t.Errorf("FileName(%q, %s) is empty", tt.in, mt)
			}
			requireSafeName(t, tt.in, got)
		}
	}
}

// TestNamesFromServers: the name a server gives, in Content-Disposition
// (RFC 6266, with RFC 5987 filename*) or in the URL path, fetched for real.
func TestNamesFromServers(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if cd := r.URL.Query().Get("cd"); cd != "" {
			w.Header().Set("Content-Disposition", cd)
		}
		io.WriteString(w, "x")
	}))
	defer srv.Close()
	f := newOpener(t, Options{AllowPrivate: true, MaxBytes: 1 << 20})
	tests := []struct {
		name, path, disposition, want string
	}{
		{"quoted traversal", "/dl", `attachment; filename="../../etc/passwd"`, "passwd"},
		{"RFC 5987 traversal", "/dl", `attachment; filename*=UTF-8''..%2F..%2Fetc%2Fpasswd`, "passwd"},
		{"RFC 5987 escaped dots", "/dl", `attachment; filename*=UTF-8''%2E%2E%2F%2E%2E%2Fetc%2Fpasswd`, "passwd"},
		{"RFC 5987 backslashes", "/dl", `attachment; filename*=UTF-8''..%5C..%5Cwin.ini`, "win.ini"},
		// mime.ParseMediaType decodes only UTF-8 and US-ASCII filename*.
		{"RFC 5987 Latin-1 is dropped", "/dl/fallback.txt", `attachment; filename*=ISO-8859-1''..%2F%E9t%E9.txt`, "fallback.txt"},
		{"RFC 5987 fullwidth", "/dl", `attachment; filename*=UTF-8''%EF%BC%8E%EF%BC%8E%EF%BC%8Fetc%EF%BC%8Fpasswd`, "passwd"},
		{"RFC 5987 two dot leader falls back to the path", "/dl/report.pdf", `attachment; filename*=UTF-8''%E2%80%A5`, "report.pdf"},
		{"RFC 5987 NUL", "/dl", `attachment; filename*=UTF-8''evil%00.txt`, "evil.txt"},
		{"RFC 5987 CR LF", "/dl", `attachment; filename*=UTF-8''%0D%0ASet-Cookie%3A%20x.txt`, "Set-Cookie x.txt"},
		{"RFC 5987 bidi", "/dl", `attachment; filename*=UTF-8''invoice%E2%80%AEfdp.exe`, "invoicefdp.exe"},
		{"RFC 5987 long", "/dl", `attachment; filename*=UTF-8''` + strings.Repeat("%E6%97%A5", 100) + ".pdf", strings.Repeat("日", 65) + ".pdf"},
		{"filename* wins over filename", "/dl", `attachment; filename="safe.txt"; filename*=UTF-8''..%2F..%2Fx.sh`, "x.sh"},
		{"absolute", "/dl", `attachment; filename="/etc/passwd"`, "passwd"},
		{"quoted backslash", "/dl", `attachment; filename="C:\\evil.exe"`, "evil.exe"},
		{"only dots falls back to the path", "/dl/q3.csv", `attachment; filename=".."`, "q3.csv"},
		{"malformed header falls back to the path", "/dl/q3.csv", `attachment; filename="../x`, "q3.csv"},
		{"path with an escaped slash", "/dl/..%2F..%2Fsecret.txt", "", "secret.txt"},
		{"path with escaped backslashes", "/dl/..%5C..%5Cwin.ini", "", "win.ini"},
		{"path of escaped dots", "/dl/%2E%2E", "", ""},
		{"path of fullwidth dots", "/dl/%EF%BC%8E%EF%BC%8E", "", ""},
		{"path with NUL", "/dl/a%00b.txt", "", "ab.txt"},
		{"path ending in a slash", "/dl/", "", "dl"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := srv.URL + tt.path
			if tt.disposition != "" {
				u += "?cd=" + url.QueryEscape(tt.disposition)
			}
			src, err := f.Open(context.Background(), u)
			if err != nil {
				t.Fatal(err)
			}
			src.Body.Close()
			if src.Name != tt.want {
				t.Errorf("name %q, want %q", src.Name, tt.want)
			}
			requireSafeName(t, tt.disposition+" "+tt.path, src.Name)
		})
	}
}

// TestNamesFromDataURLs: a data: URL's name or filename parameter.
func TestNamesFromDataURLs(t *testing.T) {
	f := newOpener(t, Options{})
	tests := []struct{ url, want string }{
		{"data:text/plain;name=..%2F..%2Fetc%2Fpasswd,hi", "passwd"},
		{"data:text/plain;name=%2Fetc%2Fpasswd,hi", "passwd"},
		{`data:text/plain;filename="..%5C..%5Cboot.ini",hi`, "boot.ini"},
		{"data:text/plain;filename=%EF%BC%8E%EF%BC%8E%EF%BC%8F..%2Fx.txt,hi", "x.txt"},
		{"data:text/plain;name=%E2%80%A5,hi", ""},
		{"data:text/plain;name=%00%0A.txt,hi", "txt"},
		{"data:text/plain;name=..,hi", ""},
		{"data:text/plain;name=a%E2%80%AEtxt.exe,hi", "atxt.exe"},
		{"data:text/plain;name=" + strings.Repeat("%F0%9F%98%80", 70) + ".png,hi", strings.Repeat("😀", 49) + ".png"},
		{"data:text/plain;name=%ZZ,hi", ""}, // a bad escape names nothing
	}
	for _, tt := range tests {
		src, err := f.Open(context.Background(), tt.url)
		if err != nil {
			t.Errorf("%s: %v", tt.url, err)
			continue
		}
		src.Body.Close()
		if src.Name != tt.want {
			t.Errorf("%s: name %q, want %q", tt.url, src.Name, tt.want)
		}
		requireSafeName(t, tt.url, src.Name)
	}
}

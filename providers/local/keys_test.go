package local

import (
	"bytes"
	"context"
	"crypto/md5"
	"io/fs"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/filestage/filestage/providers"
	"github.com/filestage/filestage/source"
)

// requireInside fails unless p names a file strictly below dir.
func requireInside(t *testing.T, what, dir, p string) {
	t.Helper()
	rel, err := filepath.Rel(dir, p)
	if err != nil || rel == "." || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) || filepath.IsAbs(rel) ||
		!strings.HasPrefix(p, dir+string(filepath.Separator)) {
		t.Errorf("%q: %s is not below %s", what, p, dir)
	}
}

// TestHostileKeys: store.path refuses every key that could name a file
// outside <data-dir>/objects (or that a file system could read as such),
// and maps the rest below it.
func TestHostileKeys(t *testing.T) {
	dir := t.TempDir()
	st, err := openStore(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	objects := filepath.Join(dir, "objects")
	tests := []struct {
		key string
		ok  bool
	}{
		{"gmail/GMAIL_SEND_EMAIL/5d41402abc4b2a76b9719d911017c592.pdf", true},
		{"a", true},
		{"a/b/c", true},
		{"A-1/b_2/c.3", true},
		{strings.Repeat("a", 255), true}, // the longest file name most file systems take
		{strings.Repeat("a", 256), false},
		{strings.Repeat("a/", 600) + "a", false}, // over 1024 bytes
		{"", false},
		{"/", false},
		{"/etc/passwd", false},
		{"//etc/passwd", false},
		{".", false},
		{"..", false},
		{"../x", false},
		{"a/../../x", false},
		{"a/..", false},
		{"a/../b", false},
		{"./a", false},
		{"a/./b", false},
		{"a//b", false},
		{"a/", false},
		{`a\..\b`, false},
		{`..\x`, false},
		{"a/b\x00c", false},
		{"a/b\n", false},
		{"C:/x", false},
		{"C:x", false},
		{"a/.hidden", false},
		{"a/...", false},
		{"a/b..c", false},
		{"%2e%2e/x", false},
		{"a%2F..%2F..%2Fx", false},
		{"\uFF0E\uFF0E/x", false}, // fullwidth ..
		{"a/\uFF0E\uFF0E", false},
		{"\u2025/x", false}, // TWO DOT LEADER
		{"a\uFF0Fb", false}, // FULLWIDTH SOLIDUS
		{"a\u2215b", false}, // DIVISION SLASH
		{"a/\u202Eb", false},
		{"a b/c", false},
		{"-rf/x", false},
		{"~/x", false},
		{"$HOME/x", false},
	}
	for _, tt := range tests {
		p, err := st.path(tt.key)
		if (err == nil) != tt.ok {
			t.Errorf("path(%q) = %q, %v; want ok %v", tt.key, p, err, tt.ok)
		}
		if err == nil {
			requireInside(t, tt.key, objects, p)
		}
	}
}

// hostileFilenames are names a server, a data: URL or a model's filename
// argument may carry.
var hostileFilenames = []string{
	"../../etc/passwd",
	`..\..\windows\win.ini`,
	"/etc/passwd",
	"..",
	"a\x00b.txt",
	"evil.sh\x00.pdf",
	"line\r\nbreak.txt",
	"\uFF0E\uFF0E\uFF0F\uFF0E\uFF0E\uFF0Fetc\uFF0Fpasswd",
	"\u2025",
	"\u2024\u2024/x.txt",
	"\uFE52\uFE52",
	"..\u2215..\u2215etc\u2215passwd",
	"invoice\u202Efdp.exe",
	"\u200B..\u200B",
	"x.PDF",
	"x.\u212A",  // KELVIN SIGN lower-cases to an ASCII k
	"x.t\u0130", // DOTTED CAPITAL I lower-cases to i and a combining dot
	"x./",
	"x.tar.gz/..",
	"archive." + strings.Repeat("z", 17),
	strings.Repeat("a", 300) + ".pdf",
	strings.Repeat("\u65E5", 100) + ".pdf",
	strings.Repeat("\U0001F600", 70) + ".png",
}

var contentKeyPattern = regexp.MustCompile(`^gmail/GMAIL_SEND_EMAIL/[0-9a-f]{32}(\.[a-z0-9]{1,16})?$`)

// TestHostileNamesMakeSafeKeys: whatever the file's name, raw or through
// source.FileName as the tools use it, its content key is the tool's
// namespace, the MD5 and at most a short lower-case extension, and the
// store maps it below objects.
func TestHostileNamesMakeSafeKeys(t *testing.T) {
	dir := t.TempDir()
	st, err := openStore(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	sum := md5.Sum([]byte("x"))
	for _, raw := range hostileFilenames {
		for _, name := range []string{raw, source.FileName(raw, "application/pdf", sum)} {
			key := providers.ContentKey(providers.UploadRequest{ToolkitSlug: "gmail", ToolSlug: "GMAIL_SEND_EMAIL", Filename: name, MD5: sum})
			if !contentKeyPattern.MatchString(key) {
				t.Errorf("%q: key %q", name, key)
				continue
			}
			p, err := st.path(key)
			if err != nil {
				t.Errorf("%q: key %q refused: %v", name, key, err)
				continue
			}
			requireInside(t, name, filepath.Join(dir, "objects"), p)
		}
	}
}

// TestHostileNamesStayInTheDataDir stores bytes under every hostile name,
// and hostile slugs (which the tools refuse before this, but the key
// itself must not rely on that), and then walks the data directory:
// every file is an object below objects/ or the signing key.
func TestHostileNamesStayInTheDataDir(t *testing.T) {
	h := newHarness(t, 1<<20)
	ctx := context.Background()
	store := func(toolkit, tool, name string, body []byte) (providers.Slot, error) {
		return h.p.Store(ctx, providers.UploadRequest{
			ToolkitSlug: toolkit, ToolSlug: tool, Filename: name, Mimetype: "application/octet-stream", MD5: md5.Sum(body), Size: int64(len(body)),
		}, providers.Body{Data: bytes.NewReader(body), Size: int64(len(body)), MD5: md5.Sum(body)})
	}
	for i, raw := range hostileFilenames {
		body := []byte(raw + string(rune('a'+i)))
		name := source.FileName(raw, "application/octet-stream", md5.Sum(body))
		slot, err := store("gmail", "GMAIL_SEND_EMAIL", name, body)
		if err != nil {
			t.Errorf("%q: %v", name, err)
			continue
		}
		if got, ok := h.stored(slot.Key); !ok || !bytes.Equal(got, body) {
			t.Errorf("%q: not stored under %s", name, slot.Key)
		}
	}
	for _, slugs := range [][2]string{
		{"../../..", "GMAIL_SEND_EMAIL"},
		{"gmail", "../../../tmp"},
		{"/etc", "X_Y"},
		{"..", ".."},
		{"gmail", ""},
		{"", "GMAIL_SEND_EMAIL"},
		{"a\\..\\..", "X_Y"},
		{"gmail", "X_Y/../../.."},
	} {
		if slot, err := store(slugs[0], slugs[1], "x.txt", []byte(slugs[0]+slugs[1])); err == nil {
			t.Errorf("slugs %q stored under %s", slugs, slot.Key)
		}
	}

	// The walk starts above the data directory: the test's own temporary
	// root, where a key one level out would have landed.
	objects := filepath.Join(h.dataDir, "objects")
	filepath.WalkDir(filepath.Dir(h.dataDir), func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			t.Error(err)
			return nil
		}
		if d.IsDir() {
			return nil
		}
		if !d.Type().IsRegular() {
			t.Errorf("%s is not a regular file", p)
		}
		if filepath.Dir(p) != h.dataDir || (d.Name() != secretFile && !strings.HasPrefix(d.Name(), "index.db")) {
			requireInside(t, d.Name(), objects, p)
		}
		return nil
	})
	h.tmpEmpty(t)
}

// FuzzValidSegment: the key segment check says what the regular
// expression it replaced said, for any string.
func FuzzValidSegment(f *testing.F) {
	re := regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,254}$`)
	for _, s := range []string{"", "a", "a.b", "..", "a..b", ".a", "-a", "a-", "A_Z.9", "é", "a/b", "a\x00", "a\n", strings.Repeat("a", 255), strings.Repeat("a", 256)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want := re.MatchString(s) && !strings.Contains(s, "..")
		if got := validSegment(s); got != want {
			t.Errorf("validSegment(%q) = %v, want %v", s, got, want)
		}
	})
}

//go:build unix

package source

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestDenyDirs: with a root above filestage's data directory, nothing in
// that directory can be staged, however the path gets there, and the
// answer is the same whether or not the file exists.
func TestDenyDirs(t *testing.T) {
	home := t.TempDir()
	data := filepath.Join(home, "data")
	elsewhere := t.TempDir()
	for _, d := range []string{filepath.Join(data, "objects", "k"), filepath.Join(home, "docs")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	write := func(p, body string) {
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join(data, "secret"), "signing key")
	write(filepath.Join(data, "objects", "k", "a.pdf"), "%PDF-1.4 staged")
	write(filepath.Join(home, "docs", "report.txt"), "report")
	write(filepath.Join(home, "data-notes.txt"), "beside the data directory")
	for link, target := range map[string]string{
		filepath.Join(home, "docs", "key"):  filepath.Join(data, "secret"),
		filepath.Join(home, "docs", "rel"):  "../data/secret",
		filepath.Join(home, "docs", "dir"):  data,
		filepath.Join(home, "docs", "gone"): filepath.Join(data, "missing"),
		filepath.Join(elsewhere, "alias"):   data,
	} {
		if err := os.Symlink(target, link); err != nil {
			t.Fatal(err)
		}
	}
	alias := filepath.Join(elsewhere, "alias")

	setups := []struct {
		name  string
		roots []string
		deny  []string
	}{
		{"root above the data directory", []string{home}, []string{data}},
		{"data directory named through a symlink", []string{home}, []string{alias}},
		{"data directory given relative", []string{home}, []string{relTo(t, data)}},
		{"data directory is itself a root", []string{home, data}, []string{data}},
		{"root inside the data directory", []string{home, filepath.Join(data, "objects")}, []string{data}},
	}
	refused := []string{
		filepath.Join(data, "secret"),
		filepath.Join(data, "objects", "k", "a.pdf"),
		filepath.Join(home, "docs", "key"),
		filepath.Join(home, "docs", "rel"),
		filepath.Join(home, "docs", "dir", "secret"),
		filepath.Join(alias, "secret"),
		filepath.Join(data, "secret") + "/",
		data,
	}
	// Each pair is refused alike: the one exists, the other does not.
	pairs := [][2]string{
		{filepath.Join(data, "secret"), filepath.Join(data, "missing")},
		{filepath.Join(data, "objects", "k", "a.pdf"), filepath.Join(data, "objects", "k", "b.pdf")},
		{filepath.Join(data, "objects", "k", "a.pdf"), filepath.Join(data, "nodir", "k", "b.pdf")},
		{filepath.Join(home, "docs", "dir", "secret"), filepath.Join(home, "docs", "dir", "missing")},
		{filepath.Join(home, "docs", "key"), filepath.Join(home, "docs", "gone")},
	}
	allowed := map[string]string{
		filepath.Join(home, "docs", "report.txt"): "report",
		filepath.Join(home, "data-notes.txt"):     "beside the data directory",
	}
	for _, s := range setups {
		t.Run(s.name, func(t *testing.T) {
			f := newOpener(t, Options{FileRoots: s.roots, DenyDirs: s.deny, MaxBytes: 1 << 20})
			for _, p := range refused {
				src, err := f.Open(context.Background(), "file://"+p)
				if src != nil {
					src.Body.Close()
				}
				if !errors.Is(err, ErrOutsideRoots) || !strings.Contains(err.Error(), "never a source") {
					t.Errorf("%s: %v, want it refused", p, err)
				}
			}
			for _, pair := range pairs {
				_, exists := f.Open(context.Background(), "file://"+pair[0])
				_, missing := f.Open(context.Background(), "file://"+pair[1])
				if exists == nil || missing == nil || strings.Replace(exists.Error(), pair[0], "P", 1) != strings.Replace(missing.Error(), pair[1], "P", 1) {
					t.Errorf("%q and %q tell an existing file from a missing one", exists, missing)
				}
			}
			for p, want := range allowed {
				src, err := f.Open(context.Background(), "file://"+p)
				if err != nil {
					t.Errorf("%s: %v", p, err)
					continue
				}
				b, _ := io.ReadAll(src.Body)
				src.Body.Close()
				if string(b) != want {
					t.Errorf("%s: read %q", p, b)
				}
			}
		})
	}

	// A data directory created after start-up is refused too.
	later := filepath.Join(home, "later")
	f := newOpener(t, Options{FileRoots: []string{home}, DenyDirs: []string{later}})
	if err := os.MkdirAll(later, 0o700); err != nil {
		t.Fatal(err)
	}
	write(filepath.Join(later, "secret"), "made after start-up")
	if _, err := f.Open(context.Background(), "file://"+filepath.Join(later, "secret")); !errors.Is(err, ErrOutsideRoots) {
		t.Errorf("a data directory made after start-up: %v", err)
	}
}

func relTo(t *testing.T, p string) string {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	rel, err := filepath.Rel(wd, p)
	if err != nil {
		t.Fatal(err)
	}
	return rel
}

// TestRootsContaining: start-up can tell which roots reach the data
// directory.
func TestRootsContaining(t *testing.T) {
	home := t.TempDir()
	data := filepath.Join(home, "data")
	other := t.TempDir()
	if err := os.MkdirAll(filepath.Join(data, "objects"), 0o755); err != nil {
		t.Fatal(err)
	}
	resolved := func(p string) string {
		r, err := filepath.EvalSymlinks(p)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	tests := []struct {
		roots []string
		dir   string
		want  []string
	}{
		{[]string{home, other}, data, []string{resolved(home)}},
		{[]string{other}, data, nil},
		{[]string{data}, data, []string{resolved(data)}},
		{[]string{filepath.Join(data, "objects")}, data, []string{resolved(filepath.Join(data, "objects"))}},
		{[]string{home}, filepath.Join(home, "not-yet"), []string{resolved(home)}},
	}
	for _, tt := range tests {
		f := newOpener(t, Options{FileRoots: tt.roots})
		if got := f.RootsContaining(tt.dir); !slices.Equal(got, tt.want) {
			t.Errorf("roots %v, dir %s: %v, want %v", tt.roots, tt.dir, got, tt.want)
		}
	}
}

// TestOpenedPath: where an open file is, as the kernel says, is what the
// opened file is judged by after the check.
func TestOpenedPath(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "target.txt")
	if err := os.WriteFile(target, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	file, err := os.Open(link)
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	p, ok := openedPath(file)
	if !ok {
		t.Skip("the kernel does not say where open files are")
	}
	if want, _ := filepath.EvalSymlinks(target); p != want {
		t.Errorf("openedPath = %s, want %s", p, want)
	}
}

//go:build unix

package source

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func TestFileURLs(t *testing.T) {
	dir := t.TempDir()
	root := filepath.Join(dir, "root")
	outside := filepath.Join(dir, "outside")
	for _, d := range []string{root, outside, filepath.Join(root, "sub")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	write := func(p, body string) {
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join(root, "report q3.pdf"), "%PDF-1.4 inside")
	write(filepath.Join(root, "sub", "a.txt"), "nested")
	write(filepath.Join(outside, "secret.txt"), "secret")
	write(filepath.Join(root, "big.bin"), strings.Repeat("x", 2000))
	unreadable := filepath.Join(root, "unreadable.txt")
	write(unreadable, "no")
	os.Chmod(unreadable, 0)
	links := map[string]string{
		"root/out-file":   filepath.Join(outside, "secret.txt"),
		"root/out-dir":    outside,
		"root/in-link":    filepath.Join(root, "sub", "a.txt"),
		"root/rel-escape": "../outside/secret.txt",
		"root/dev-zero":   "/dev/zero",
		"root/loop":       filepath.Join(root, "loop"),
		"into-root":       root, // a path outside the roots that resolves into one
		"root/dangling":   filepath.Join(outside, "nothing.txt"),
	}
	for name, target := range links {
		if err := os.Symlink(target, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	fifo := filepath.Join(root, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(root, "sock")
	if ln, err := net.Listen("unix", sock); err == nil {
		defer ln.Close()
	}

	// The root is given through a symlink too: it is resolved at start.
	f := newOpener(t, Options{FileRoots: []string{filepath.Join(dir, "into-root"), " "}, MaxBytes: 1000})
	ok := []struct{ url, name, body string }{
		{"file://" + filepath.Join(root, "report%20q3.pdf"), "report q3.pdf", "%PDF-1.4 inside"},
		{"file://localhost" + filepath.Join(root, "sub", "a.txt"), "a.txt", "nested"},
		{"file:" + filepath.Join(root, "sub", "a.txt"), "a.txt", "nested"},
		{"file://" + filepath.Join(root, "sub", "..", "sub", "a.txt"), "a.txt", "nested"},
		{"file://" + filepath.Join(root, "in-link"), "in-link", "nested"},
		{"file://" + filepath.Join(dir, "into-root", "sub", "a.txt"), "a.txt", "nested"},
	}
	for _, tt := range ok {
		src, err := f.Open(context.Background(), tt.url)
		if err != nil {
			t.Errorf("%s: %v", tt.url, err)
			continue
		}
		b, _ := io.ReadAll(src.Body)
		again := make([]byte, len(b))
		src.At.ReadAt(again, 0)
		src.Body.Close()
		if src.Name != tt.name || string(b) != tt.body || string(again) != tt.body || src.Size != int64(len(tt.body)) {
			t.Errorf("%s: name %q body %q size %d, want %q %q", tt.url, src.Name, b, src.Size, tt.name, tt.body)
		}
	}

	refused := []struct {
		url  string
		want error
		says string
	}{
		{"file://" + filepath.Join(root, "..", "outside", "secret.txt"), ErrOutsideRoots, "outside"},
		{"file://" + filepath.Join(root, "out-file"), ErrOutsideRoots, "outside"},
		{"file://" + filepath.Join(root, "out-dir", "secret.txt"), ErrOutsideRoots, "outside"},
		{"file://" + filepath.Join(root, "rel-escape"), ErrOutsideRoots, "outside"},
		{"file://" + filepath.Join(root, "dev-zero"), ErrOutsideRoots, "outside"},
		{"file:///dev/zero", ErrOutsideRoots, "outside"},
		{"file:///etc/passwd", ErrOutsideRoots, "outside"},
		{"file:///nonexistent/x", ErrOutsideRoots, "outside"}, // says nothing of existence
		{"file://" + root + "%2F..%2Foutside%2Fsecret.txt", ErrOutsideRoots, "outside"},
		{"file://" + root, ErrFile, "directory"},
		{"file://" + filepath.Join(root, "sub") + "/", ErrFile, "directory"},
		{"file://" + fifo, ErrFile, "not a regular file"},
		{"file://" + sock, ErrFile, "not a regular file"},
		{"file://" + filepath.Join(root, "missing.txt"), ErrFile, "does not exist"},
		{"file://" + filepath.Join(root, "loop"), ErrFile, ""},
		{"file://" + filepath.Join(root, "big.bin"), ErrTooLarge, "cap is 1000"},
		{"file://example.com" + filepath.Join(root, "sub", "a.txt"), ErrScheme, "names no host"},
		{"file:sub/a.txt", ErrScheme, "absolute path"},
	}
	if os.Getuid() != 0 { // root reads anything
		refused = append(refused, struct {
			url  string
			want error
			says string
		}{"file://" + unreadable, ErrFile, "not readable"})
	}
	for _, tt := range refused {
		src, err := f.Open(context.Background(), tt.url)
		if err == nil {
			src.Body.Close()
		}
		if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), tt.says) {
			t.Errorf("%s: %v, want %v saying %q", tt.url, err, tt.want, tt.says)
		}
		if err != nil && strings.Contains(err.Error(), outside) && !strings.Contains(tt.url, "outside") {
			t.Errorf("%s: the error names where a link leads: %v", tt.url, err)
		}
	}

	// Outside the roots, a file that exists and one that does not get the
	// same answer, however the path gets there.
	for _, pair := range [][2]string{
		{filepath.Join(outside, "secret.txt"), filepath.Join(outside, "nothing.txt")},
		{filepath.Join(root, "out-dir", "secret.txt"), filepath.Join(root, "out-dir", "nothing.txt")},
		{filepath.Join(root, "out-dir", "secret.txt"), filepath.Join(root, "out-dir", "no", "such", "dir.txt")},
		// A link to a missing file outside says no more than one to a file.
		{filepath.Join(root, "out-file"), filepath.Join(root, "dangling")},
	} {
		_, exists := f.Open(context.Background(), "file://"+pair[0])
		_, missing := f.Open(context.Background(), "file://"+pair[1])
		if exists == nil || missing == nil || strings.Replace(exists.Error(), pair[0], "P", 1) != strings.Replace(missing.Error(), pair[1], "P", 1) {
			t.Errorf("outside the roots, %q and %q tell existing from missing files", exists, missing)
		}
	}

	off := newOpener(t, Options{})
	if _, err := off.Open(context.Background(), "file://"+filepath.Join(root, "sub", "a.txt")); !errors.Is(err, ErrOutsideRoots) || !strings.Contains(err.Error(), "off") {
		t.Errorf("no roots: %v, want file:// refused", err)
	}
	if _, err := New(Options{FileRoots: []string{filepath.Join(root, "report q3.pdf")}}); err == nil {
		t.Error("a file was accepted as a root")
	}
	if _, err := New(Options{FileRoots: []string{filepath.Join(dir, "missing")}}); err == nil {
		t.Error("a missing root was accepted")
	}
}

func TestFileURL(t *testing.T) {
	got, err := FileURL("/tmp/a b/c#d.pdf")
	if err != nil || got != "file:///tmp/a%20b/c%23d.pdf" {
		t.Errorf("got %q %v", got, err)
	}
}

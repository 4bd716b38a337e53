package spool

import (
	"bytes"
	"crypto/md5"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/filestage/filestage/internal/testfile"
)

func TestWrite(t *testing.T) {
	for _, n := range []int{0, 1, HeadSize - 1, HeadSize, HeadSize + 1, bufSize + 7, 3*bufSize + 1} {
		dir := t.TempDir()
		b := testfile.Random(n)
		sp, err := Write(bytes.NewReader(b), dir, int64(n))
		if err != nil {
			t.Fatalf("%d bytes: %v", n, err)
		}
		if sp.Size != int64(n) || sp.MD5 != md5.Sum(b) || !bytes.Equal(sp.Head, b[:min(n, HeadSize)]) {
			t.Errorf("%d bytes: size %d, md5 or head differ", n, sp.Size)
		}
		got, err := io.ReadAll(io.NewSectionReader(sp, 0, sp.Size))
		if err != nil || !bytes.Equal(got, b) {
			t.Errorf("%d bytes: replay differs (%v)", n, err)
		}
		if err := sp.Close(); err != nil {
			t.Error(err)
		}
		sp.Close() // twice is fine
		if entries, _ := os.ReadDir(dir); len(entries) != 0 {
			t.Errorf("%d bytes: %d files left after Close", n, len(entries))
		}
	}
}

type failingReader struct{ n int }

func (f *failingReader) Read(p []byte) (int, error) {
	if f.n <= 0 {
		return 0, io.ErrUnexpectedEOF
	}
	k := min(len(p), f.n)
	f.n -= k
	return k, nil
}

func TestWriteLeavesNothingOnError(t *testing.T) {
	dir := t.TempDir()
	if _, err := Write(bytes.NewReader(make([]byte, 101)), dir, 100); !errors.Is(err, ErrTooLarge) {
		t.Errorf("over the cap: %v", err)
	}
	if _, err := Write(&failingReader{n: 5000}, dir, 1<<20); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("broken reader: %v", err)
	}
	if _, err := Write(bytes.NewReader(nil), filepath.Join(dir, "missing"), 10); err == nil {
		t.Error("missing dir accepted")
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("%d files left behind", len(entries))
	}
}

func TestSweep(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{".spool-old", ".spool-new", "kept"} {
		if err := os.WriteFile(filepath.Join(dir, name), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	past := time.Now().Add(-25 * time.Hour)
	for _, name := range []string{".spool-old", "kept"} {
		os.Chtimes(filepath.Join(dir, name), past, past)
	}
	if n, err := Sweep(dir, 24*time.Hour); n != 1 || err != nil {
		t.Errorf("removed %d (%v), want 1", n, err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 2 || entries[0].Name() != ".spool-new" || entries[1].Name() != "kept" {
		t.Errorf("left %v", entries)
	}
}

func TestKeep(t *testing.T) {
	dir := t.TempDir()
	sp, err := Write(bytes.NewReader([]byte("hello")), dir, 10)
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(dir, "objects", "a", "b.txt")
	if err := sp.Keep(dst); err != nil {
		t.Fatal(err)
	}
	if err := sp.Close(); err != nil {
		t.Errorf("Close after Keep: %v", err)
	}
	if got, err := os.ReadFile(dst); err != nil || string(got) != "hello" {
		t.Errorf("kept %q, %v", got, err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 || entries[0].Name() != "objects" {
		t.Errorf("left %v", entries)
	}
}

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

func TestHash(t *testing.T) {
	b := testfile.Random(3*bufSize + 5)
	s, err := Hash(bytes.NewReader(b), int64(len(b)))
	if err != nil || s.Size != int64(len(b)) || s.MD5 != md5.Sum(b) || !bytes.Equal(s.Head, b[:HeadSize]) {
		t.Errorf("got size %d, err %v", s.Size, err)
	}
	if _, err := Hash(bytes.NewReader(b), int64(len(b)-1)); !errors.Is(err, ErrTooLarge) {
		t.Errorf("over the cap: %v", err)
	}
}

// TestNoPerChunkAllocations: the copy loop allocates the same whether it
// runs for 4 chunks or 256.
func TestNoPerChunkAllocations(t *testing.T) {
	allocs := func(n int) float64 {
		r := &zeros{}
		return testing.AllocsPerRun(5, func() {
			r.n = n
			if _, err := Hash(r, int64(n)); err != nil {
				t.Fatal(err)
			}
		})
	}
	// Under -race sync.Pool drops some buffers on purpose, so a run may
	// allocate one anew: a slack of two; a per-chunk allocation would
	// show as 250 more.
	small, large := allocs(4*bufSize), allocs(256*bufSize)
	if large > small+2 {
		t.Errorf("%v allocations for 4 chunks, %v for 256", small, large)
	}
}

type zeros struct{ n int }

func (z *zeros) Read(p []byte) (int, error) {
	if z.n == 0 {
		return 0, io.EOF
	}
	k := min(len(p), z.n)
	clear(p[:k])
	z.n -= k
	return k, nil
}

func TestKeep(t *testing.T) {
	dir := t.TempDir()
	b := testfile.Random(bufSize + 3)
	for _, viaCopy := range []bool{false, true} {
		sp, err := Write(bytes.NewReader(b), dir, int64(len(b)))
		if err != nil {
			t.Fatal(err)
		}
		dst := filepath.Join(dir, "objects", "a", "b.bin")
		if viaCopy { // as when dst is on another file system
			os.MkdirAll(filepath.Dir(dst), 0o755)
			err = sp.copyTo(dst)
			sp.Close()
		} else {
			err = sp.Keep(dst)
		}
		if got, _ := os.ReadFile(dst); err != nil || !bytes.Equal(got, b) {
			t.Errorf("copy %v: %v, kept bytes differ", viaCopy, err)
		}
		spools, _ := filepath.Glob(filepath.Join(dir, "*", "*", ".spool-*"))
		if top, _ := filepath.Glob(filepath.Join(dir, ".spool-*")); len(top)+len(spools) != 0 {
			t.Errorf("copy %v: temporary files left: %v %v", viaCopy, top, spools)
		}
		if err := sp.Close(); err != nil {
			t.Errorf("Close after Keep: %v", err)
		}
	}
}

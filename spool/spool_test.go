package spool

import (
	"bytes"
	"crypto/md5"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
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

// TestKeepNeverReplaces: Keep links the bytes into place only where no
// file is, also when it has to copy them across file systems first and
// when another file arrives between its check and its link; the spool file
// is gone afterwards either way.
func TestKeepNeverReplaces(t *testing.T) {
	exdev := func(oldname, newname string) error {
		return &os.LinkError{Op: "link", Old: oldname, New: newname, Err: syscall.EXDEV}
	}
	// racing writes other bytes to newname just before linking, as a
	// second Keep of the same path that won would.
	racing := func(link func(string, string) error) func(string, string) error {
		return func(oldname, newname string) error {
			if err := os.WriteFile(newname, []byte("the winner"), 0o600); err != nil {
				return err
			}
			return link(oldname, newname)
		}
	}
	tests := []struct {
		name  string
		taken bool // a file is at the path before Keep
		link  func(oldname, newname string) error
		kept  bool
	}{
		{"free path", false, nil, true},
		{"free path on another file system", false, exdev, true},
		{"taken path", true, nil, false},
		{"taken path on another file system", true, exdev, false},
		{"path taken between the check and the link", false, racing(os.Link), false},
		{"path taken before the copy across file systems", false, racing(exdev), false},
	}
	b := testfile.Random(bufSize + 3)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			tmp := filepath.Join(dir, "tmp")
			dst := filepath.Join(dir, "objects", "a", "b.bin")
			for _, d := range []string{tmp, filepath.Dir(dst)} {
				if err := os.MkdirAll(d, 0o700); err != nil {
					t.Fatal(err)
				}
			}
			old := []byte("the bytes already stored")
			if tt.taken {
				if err := os.WriteFile(dst, old, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			before, _ := os.Stat(dst)
			sp, err := Write(bytes.NewReader(b), tmp, int64(len(b)))
			if err != nil {
				t.Fatal(err)
			}
			sp.link = tt.link
			err = sp.Keep(dst)
			got, _ := os.ReadFile(dst)
			switch {
			case tt.kept && (err != nil || !bytes.Equal(got, b)):
				t.Errorf("Keep: %v; kept bytes equal: %v", err, bytes.Equal(got, b))
			case !tt.kept && (!errors.Is(err, ErrExist) || !errors.Is(err, fs.ErrExist)):
				t.Errorf("Keep: %v, want ErrExist", err)
			case !tt.kept && bytes.Equal(got, b):
				t.Error("the file at the path was replaced")
			}
			if after, _ := os.Stat(dst); tt.taken && (!os.SameFile(before, after) || !bytes.Equal(got, old)) {
				t.Error("the file at the path was changed")
			}
			filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
				if err == nil && strings.HasPrefix(d.Name(), ".spool-") {
					t.Errorf("temporary file left: %s", p)
				}
				return err
			})
			if err := sp.Close(); err != nil {
				t.Errorf("Close after Keep: %v", err)
			}
			if err := sp.Keep(filepath.Join(dir, "other")); err == nil {
				t.Error("a second Keep succeeded")
			}
		})
	}
}

// TestCopiesTakeTurns: however many copies run at once, no more chunks
// are written and hashed at a time than there are turns at the
// processors; and a copy whose write is held up keeps its turn no longer
// than maxTurn.
func TestCopiesTakeTurns(t *testing.T) {
	var (
		mu        sync.Mutex
		now, peak int
	)
	probe := writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		now++
		peak = max(peak, now)
		mu.Unlock()
		time.Sleep(100 * time.Microsecond) // a chunk's work
		mu.Lock()
		now--
		mu.Unlock()
		return len(p), nil
	})
	stuck, release := make(chan struct{}), make(chan struct{})
	held := newGated(writerFunc(func(p []byte) (int, error) {
		close(stuck)
		<-release
		return len(p), nil
	}))
	go held.Write(make([]byte, bufSize))
	<-stuck
	chunk := make([]byte, bufSize)
	start := time.Now()
	var wg sync.WaitGroup
	for range 32 {
		wg.Go(func() {
			g := newGated(probe)
			defer g.close()
			for range 4 {
				if n, err := g.Write(chunk); n != len(chunk) || err != nil {
					t.Errorf("write: %d, %v", n, err)
				}
			}
		})
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("copies waited for the turn of a copy whose write was held up")
	}
	if waited := time.Since(start); waited < maxTurn/2 && runtime.GOMAXPROCS(0) <= 2 {
		// With one turn, the others could only start once it was given back.
		t.Errorf("the held-up copy's turn was free after %s, before maxTurn", waited)
	}
	close(release)
	if turns := max(1, runtime.GOMAXPROCS(0)-1); peak == 0 || peak > turns {
		t.Errorf("%d chunks written at once; %d turns with GOMAXPROCS %d", peak, turns, runtime.GOMAXPROCS(0))
	}
	data := testfile.Random(4 * bufSize)
	if s, err := sum(io.Discard, bytes.NewReader(data), int64(len(data))); err != nil || s.MD5 != md5.Sum(data) {
		t.Errorf("sum: %x, %v", s.MD5, err)
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

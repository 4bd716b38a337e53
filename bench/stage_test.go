// Package bench_test measures staging in-process: the tools' own code
// against a loopback source and the local store, without process start-up,
// curl or the S3 test server (bench/stage.sh compares those). Benchmarks
// only, so `go test ./...` compiles them and runs nothing heavy:
//
//	go test -run XXX -bench . -benchtime 2x ./bench/
package bench_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/filestage/filestage/providers"
	"github.com/filestage/filestage/providers/local"
	"github.com/filestage/filestage/schema"
	"github.com/filestage/filestage/source"
	"github.com/filestage/filestage/tools"
)

type size struct {
	name string
	n    int64
}

// benchSizes are the sizes staged: 16 MiB and 256 MiB, or those
// FILESTAGE_BENCH_SIZES names (1GiB too), e.g. to profile a 1 GiB stage:
//
//	FILESTAGE_BENCH_SIZES=1GiB go test -run '^$' -bench 'BenchmarkStage$' -benchtime 2x -cpuprofile stage.prof ./bench/
func benchSizes(b *testing.B) []size {
	known := []size{{"16MiB", 16 << 20}, {"256MiB", 256 << 20}, {"1GiB", 1 << 30}}
	v := os.Getenv("FILESTAGE_BENCH_SIZES")
	if v == "" {
		return known[:2]
	}
	var out []size
	for _, name := range strings.Split(v, ",") {
		i := slices.IndexFunc(known, func(s size) bool { return s.name == name })
		if i < 0 {
			b.Fatalf("FILESTAGE_BENCH_SIZES: %q is none of 16MiB, 256MiB, 1GiB", name)
		}
		out = append(out, known[i])
	}
	return out
}

// BenchmarkStage stages random bytes from a loopback HTTP server: fetch,
// spool, hash, and move into the local store.
func BenchmarkStage(b *testing.B) {
	for _, size := range benchSizes(b) {
		b.Run(size.name, func(b *testing.B) {
			data := make([]byte, size.n)
			rand.Read(data)
			modtime := time.Now()
			// ServeContent sends Content-Length, as a real file host does.
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				http.ServeContent(w, r, "f.bin", modtime, bytes.NewReader(data))
			}))
			defer srv.Close()
			svc, dir := service(b, source.Options{AllowPrivate: true, MaxBytes: size.n})
			stageLoop(b, svc, dir, srv.URL+"/f.bin", size.n, func(i int) { data[i%len(data)]++ })
		})
	}
}

// BenchmarkStageFile stages a local file through its file:// URL into the
// local store: copied once into a spool while it is hashed, then moved
// into place (stores elsewhere upload straight from the file).
func BenchmarkStageFile(b *testing.B) {
	for _, size := range benchSizes(b) {
		b.Run(size.name, func(b *testing.B) {
			srcDir := b.TempDir()
			path := filepath.Join(srcDir, "f.bin")
			f, err := os.Create(path)
			if err != nil {
				b.Fatal(err)
			}
			defer f.Close()
			buf := make([]byte, 1<<20)
			for off := int64(0); off < size.n; off += int64(len(buf)) {
				rand.Read(buf)
				if _, err := f.Write(buf[:min(int64(len(buf)), size.n-off)]); err != nil {
					b.Fatal(err)
				}
			}
			url, err := source.FileURL(path)
			if err != nil {
				b.Fatal(err)
			}
			svc, dir := service(b, source.Options{FileRoots: []string{srcDir}, MaxBytes: size.n})
			stageLoop(b, svc, dir, url, size.n, func(i int) {
				// One byte overwritten in place: new bytes, same size.
				if _, err := f.WriteAt([]byte{byte(i)}, int64(i)%size.n); err != nil {
					b.Fatal(err)
				}
			})
		})
	}
}

// service is a tools.Service over a local store in a fresh data directory,
// set up as main's serve sets it up.
func service(b *testing.B, o source.Options) (*tools.Service, string) {
	dir := b.TempDir()
	provider, err := local.New(providers.Settings{DataDir: dir, PublicURL: "http://127.0.0.1:1", MaxBytes: o.MaxBytes})
	if err != nil {
		b.Fatal(err)
	}
	src, err := source.New(o)
	if err != nil {
		b.Fatal(err)
	}
	spool := filepath.Join(dir, "tmp")
	if err := os.MkdirAll(spool, 0o700); err != nil {
		b.Fatal(err)
	}
	return &tools.Service{Provider: provider, Sources: src, SpoolDir: spool, MaxBytes: o.MaxBytes, Logger: slog.New(slog.DiscardHandler)}, dir
}

// stageLoop stages url once per iteration. Untimed between stages, change
// alters the source and the stored object is removed, so that every stage
// uploads new bytes (the store would skip bytes it holds) and the disk does
// not fill up.
func stageLoop(b *testing.B, svc *tools.Service, dir, url string, n int64, change func(i int)) {
	ctx := context.Background()
	b.SetBytes(n)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		b.StopTimer()
		change(i)
		i++
		b.StartTimer()
		out, err := svc.Stage(ctx, schema.StageRequest{URL: url, ToolSlug: "GMAIL_SEND_EMAIL"})
		b.StopTimer()
		if err != nil {
			b.Fatal(err)
		}
		if out.Type != "new" || out.Size == nil || *out.Size != n {
			b.Fatalf("stage answered type %q, size %v; want a new object of %d bytes", out.Type, out.Size, n)
		}
		// The local store's layout: <data dir>/objects/<key>.
		if err := os.Remove(filepath.Join(dir, "objects", filepath.FromSlash(out.S3Key))); err != nil {
			b.Fatalf("removing the staged object: %v", err)
		}
		b.StartTimer()
	}
}

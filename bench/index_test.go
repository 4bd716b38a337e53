package bench

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/filestage/filestage/providers"
	"github.com/filestage/filestage/providers/local"
	"github.com/filestage/filestage/spool"
)

// BenchmarkLocalStoreIndex is what the index adds to storing a file in
// the local store. "link only" is what a store did before it had an
// index: spool the bytes and link them into place; "new" does that through
// the provider, with the entry written pending before the link and stored
// after; "existing" is a stage of bytes already stored (the expiry is
// extended); "list" reads a page of 100 entries of one caller from 10 000.
// Bodies are 4 KiB so that the index, not the bytes, is what is measured.
func BenchmarkLocalStoreIndex(b *testing.B) {
	ctx := context.Background()
	open := func(b *testing.B) (*local.Provider, string) {
		dir := b.TempDir()
		p, err := local.New(providers.Settings{DataDir: dir, PublicURL: "http://127.0.0.1:1", MaxBytes: 1 << 20, Retention: 7 * 24 * 3600e9})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { p.Close() })
		return p, dir
	}
	body := make([]byte, 4096)
	rand.Read(body)
	// unique returns a body no other iteration has: a new key each time.
	unique := func(i int) []byte {
		binary.LittleEndian.PutUint64(body, uint64(i))
		return body
	}
	spoolOf := func(b *testing.B, dir string, data []byte) *spool.File {
		sp, err := spool.Write(bytes.NewReader(data), filepath.Join(dir, "tmp"), 1<<20)
		if err != nil {
			b.Fatal(err)
		}
		return sp
	}
	stage := func(b *testing.B, p *local.Provider, dir string, data []byte, namespace string) providers.Slot {
		sp := spoolOf(b, dir, data)
		defer sp.Close()
		slot, err := p.Store(ctx, providers.UploadRequest{ToolkitSlug: "gmail", ToolSlug: "GMAIL_SEND_EMAIL", Filename: "a.bin",
			Mimetype: "application/octet-stream", MD5: sp.MD5, Size: sp.Size, Namespace: namespace, Owner: "bench"},
			providers.Body{Data: sp, Size: sp.Size, MD5: sp.MD5, Temp: sp})
		if err != nil {
			b.Fatal(err)
		}
		return slot
	}

	b.Run("link only", func(b *testing.B) {
		_, dir := open(b)
		b.SetBytes(int64(len(body)))
		for i := 0; b.Loop(); i++ {
			sp := spoolOf(b, dir, unique(i))
			if err := sp.Keep(filepath.Join(dir, "objects", "bench", fmt.Sprintf("%x.bin", sp.MD5))); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("new", func(b *testing.B) {
		p, dir := open(b)
		b.SetBytes(int64(len(body)))
		for i := 0; b.Loop(); i++ {
			if s := stage(b, p, dir, unique(i), ""); s.Type != providers.SlotNew {
				b.Fatal(s.Type)
			}
		}
	})
	b.Run("existing", func(b *testing.B) {
		p, dir := open(b)
		stage(b, p, dir, body, "")
		b.SetBytes(int64(len(body)))
		for b.Loop() {
			if s := stage(b, p, dir, body, ""); s.Type != providers.SlotExisting {
				b.Fatal(s.Type)
			}
		}
	})
	b.Run("list", func(b *testing.B) {
		p, dir := open(b)
		small := make([]byte, 8)
		for i := range 10_000 {
			binary.LittleEndian.PutUint64(small, uint64(i))
			stage(b, p, dir, small, fmt.Sprintf("p-%d", i%10))
		}
		for b.Loop() {
			page, err := p.Objects(ctx, "p-3", "", 100)
			if err != nil || len(page) != 100 {
				b.Fatal(len(page), err)
			}
		}
	})
}

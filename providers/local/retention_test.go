package local

import (
	"context"
	"crypto/md5"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/filestage/filestage/providers"
)

// TestRetention moves the clock: an object lives its retention from when
// it was last staged, is swept after, and a stage of the same bytes
// extends it; retention 0 keeps objects for ever.
func TestRetention(t *testing.T) {
	ctx := context.Background()
	day := 24 * time.Hour
	h := newHarness(t, 1<<20)
	h.p.store.retention = 7 * day
	start := h.clock
	first := h.stageBytes(t, []byte("kept a week"), "a.txt", "text/plain")
	if want := start.Add(7 * day); !first.ObjectExpiresAt.Equal(want) {
		t.Fatalf("expires %v, want %v", first.ObjectExpiresAt, want)
	}
	other := h.stageBytes(t, []byte("staged once"), "b.txt", "text/plain")

	h.clock = start.Add(3 * day)
	again := h.stageBytes(t, []byte("kept a week"), "a.txt", "text/plain")
	if again.Type != providers.SlotExisting || !again.ObjectExpiresAt.Equal(start.Add(10*day)) {
		t.Fatalf("staged again: %s until %v, want existing until %v", again.Type, again.ObjectExpiresAt, start.Add(10*day))
	}
	// A presign of bytes already stored extends them too.
	h.clock = start.Add(4 * day)
	slot, err := h.p.RequestUpload(ctx, providers.UploadRequest{ToolkitSlug: "gmail", ToolSlug: "GMAIL_SEND_EMAIL", Filename: "a.txt",
		Mimetype: "text/plain", MD5: md5.Sum([]byte("kept a week")), Size: 11, Owner: "alice"})
	if err != nil || slot.Type != providers.SlotExisting || !slot.ObjectExpiresAt.Equal(start.Add(11*day)) {
		t.Fatalf("presign of stored bytes: %+v %v", slot, err)
	}

	sweepAt := func(d time.Duration) int {
		h.clock = start.Add(d)
		n, err := h.p.Sweep(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := sweepAt(7*day - time.Second); n != 0 {
		t.Errorf("swept %d before anything expired", n)
	}
	if n := sweepAt(7 * day); n != 1 {
		t.Errorf("swept %d at the end of b's week, want 1", n)
	}
	if _, ok := h.stored(other.Key); ok {
		t.Error("b's object outlived its retention")
	}
	if _, ok, _ := h.p.Object(ctx, other.Key); ok {
		t.Error("b's entry outlived its retention")
	}
	if _, ok := h.stored(first.Key); !ok {
		t.Error("a was swept though staged again")
	}
	if n := sweepAt(11 * day); n != 1 {
		t.Errorf("swept %d at the end of a's extended retention, want 1", n)
	}
	checkConsistent(t, h.p)

	// Staged again after the sweep, the bytes are new again.
	if s := h.stageBytes(t, []byte("kept a week"), "a.txt", "text/plain"); s.Type != providers.SlotNew {
		t.Errorf("staged after its sweep: %s", s.Type)
	}

	// Retention 0: nothing expires.
	h.p.store.retention = 0
	forever := h.stageBytes(t, []byte("kept for ever"), "c.txt", "text/plain")
	if !forever.ObjectExpiresAt.IsZero() {
		t.Errorf("expires %v with retention 0", forever.ObjectExpiresAt)
	}
	if sweepAt(1000 * day); !h.has(forever.Key) {
		t.Error("retention 0 swept an object")
	}
}

// TestPendingEntriesExpire: a presign leaves no entry; a write that died
// between its pending entry and its object leaves one, which the sweep
// drops.
func TestPendingEntriesExpire(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t, 1<<20)
	slot := h.slot(t, []byte("never sent"), 10)
	// A presign writes nothing: its URL carries what the PUT will write.
	if _, _, found, err := h.p.store.index.lookup(ctx, slot.Key); err != nil || found {
		t.Fatalf("after presign: an entry was written (%v, %v)", found, err)
	}
	// A write that died after writing its pending entry leaves one.
	e := Entry{Key: slot.Key, Name: "never.txt", Created: h.clock, Size: 10}
	if err := h.p.store.index.pending(ctx, e); err != nil {
		t.Fatal(err)
	}
	start := h.clock
	for _, tt := range []struct {
		after time.Duration
		found bool
	}{{URLTTL, true}, {pendingTTL + time.Second, false}} {
		h.clock = start.Add(tt.after)
		if _, err := h.p.Sweep(ctx); err != nil {
			t.Fatal(err)
		}
		if _, _, found, _ := h.p.store.index.lookup(ctx, slot.Key); found != tt.found {
			t.Errorf("%v after the write began: pending entry there %v, want %v", tt.after, found, tt.found)
		}
	}
}

func (h *harness) has(key string) bool {
	_, ok := h.stored(key)
	return ok
}

// TestPresignedUploadsExpire: bytes uploaded through a presigned URL get
// the retention the presign answer promised, and are swept after it.
func TestPresignedUploadsExpire(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t, 1<<20)
	h.p.store.retention = 7 * 24 * time.Hour
	start := h.clock
	body := []byte("uploaded by the client")
	slot := h.slot(t, body, int64(len(body)))
	if !slot.ObjectExpiresAt.Equal(start.Add(7 * 24 * time.Hour)) {
		t.Fatalf("presign says the file expires %v", slot.ObjectExpiresAt)
	}
	h.clock = start.Add(time.Minute)
	if resp := put(t, slot.Method, slot.URL, slot.Headers, body); resp.StatusCode != 200 {
		t.Fatalf("PUT: %d", resp.StatusCode)
	}
	e, ok, err := h.p.Object(ctx, slot.Key)
	if err != nil || !ok || e.Name != "Report.PDF" || !e.Expires.Equal(start.Add(time.Minute+7*24*time.Hour)) {
		t.Fatalf("after the PUT: %+v %v %v", e, ok, err)
	}
	h.clock = e.Expires
	if n, err := h.p.Sweep(ctx); n != 1 || err != nil || h.has(slot.Key) {
		t.Errorf("swept %d (%v); object still there: %v", n, err, h.has(slot.Key))
	}
}

// TestOddlyNamedDataDir: the index lives in the data directory whatever
// its name, '#', '?' and '%' included.
func TestOddlyNamedDataDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a#b?c%41d e")
	p, err := New(providers.Settings{DataDir: dir, PublicURL: "http://127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if _, err := os.Stat(filepath.Join(dir, "index.db")); err != nil {
		t.Fatal(err)
	}
	var timeout int
	if err := p.store.index.db.QueryRow("PRAGMA busy_timeout").Scan(&timeout); err != nil || timeout != 10000 {
		t.Errorf("busy_timeout %d, %v", timeout, err)
	}
}

// TestStoreReplacesWhatTheIndexHeld: the writer whose link wins writes
// its whole entry, whatever the index held for the key: the entry of a
// file removed by hand, or another writer's pending entry.
func TestStoreReplacesWhatTheIndexHeld(t *testing.T) {
	ctx := context.Background()
	body := []byte("the same bytes, twice")
	for _, tt := range []struct {
		name   string
		before func(t *testing.T, h *harness, key string)
	}{
		{"file removed by hand", func(t *testing.T, h *harness, key string) {
			h.stageBytes(t, body, "first.csv", "text/plain")
			if err := os.Remove(filepath.Join(h.dataDir, "objects", filepath.FromSlash(key))); err != nil {
				t.Fatal(err)
			}
		}},
		{"another writer's pending entry", func(t *testing.T, h *harness, key string) {
			if err := h.p.store.index.pending(ctx, Entry{Key: key, Name: "other.csv", Mimetype: "text/plain", Owner: "mallory", Created: h.clock}); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, 1<<20)
			key := providers.ContentKey(providers.UploadRequest{ToolkitSlug: "gmail", ToolSlug: "GMAIL_SEND_EMAIL", Filename: "second.csv", MD5: md5.Sum(body)})
			tt.before(t, h, key)
			h.clock = h.clock.Add(time.Hour)
			if slot := h.stageBytes(t, body, "second.csv", "text/csv"); slot.Type != providers.SlotNew || slot.Key != key {
				t.Fatalf("slot %+v, want a new one at %s", slot, key)
			}
			e, ok, err := h.p.Object(ctx, key)
			if err != nil || !ok || e.Name != "second.csv" || e.Mimetype != "text/csv" || e.Owner != "alice" || !e.Created.Equal(h.clock) {
				t.Errorf("entry %+v (%v, %v), want the second stage's", e, ok, err)
			}
		})
	}
}

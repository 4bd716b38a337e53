package tools

import (
	"errors"
	"slices"
	"sync"
	"testing"

	"github.com/filestage/filestage/internal/testfile"
	"github.com/filestage/filestage/providers"
)

// recordingMetrics records what the tools report.
type recordingMetrics struct {
	mu       sync.Mutex
	inFlight map[string]int
	ended    []string
	fetched  map[string]int64
	stored   int64
}

func (r *recordingMetrics) CallStarted(tool string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.inFlight[tool]++
}

func (r *recordingMetrics) CallEnded(tool, outcome string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.inFlight[tool]--
	r.ended = append(r.ended, tool+" "+outcome)
}

func (r *recordingMetrics) Fetched(kind string, n int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.fetched[kind] += n
}

func (r *recordingMetrics) Stored(n int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.stored += n
}

// TestMetricsSink: every call's outcome (ok or its slug), the bytes each
// stage read by source kind, and the bytes storage took, once each.
func TestMetricsSink(t *testing.T) {
	m := &recordingMetrics{inFlight: map[string]int{}, fetched: map[string]int64{}}
	p := &fakeProvider{}
	f := newFixtureWith(t, p, 1<<20, func(s *Service) { s.Metrics = m })
	img := testfile.PNG(4096)
	src := serve(t, "/a.png", "image/png", "", img)

	f.call(t, StageName, map[string]any{"url": src + "/a.png", "toolSlug": "GMAIL_SEND_EMAIL"})
	f.call(t, StageName, map[string]any{"url": "data:text/plain,hello", "toolSlug": "GMAIL_SEND_EMAIL"})
	f.call(t, StageName, map[string]any{"url": src + "/missing", "toolSlug": "GMAIL_SEND_EMAIL"})
	f.call(t, StageName, map[string]any{"url": src + "/a.png", "toolSlug": "not a slug"})
	f.call(t, PresignName, map[string]any{"toolkit_slug": "gmail", "tool_slug": "GMAIL_SEND_EMAIL", "filename": "a.txt", "mimetype": "text/plain", "md5": "5d41402abc4b2a76b9719d911017c592"})
	p.slotType = providers.SlotExisting
	f.call(t, StageName, map[string]any{"url": src + "/a.png", "toolSlug": "GMAIL_SEND_EMAIL"})
	p.slotType, p.uploadErr = "", errors.New("connection reset by peer")
	f.call(t, StageName, map[string]any{"url": "data:text/plain,again", "toolSlug": "GMAIL_SEND_EMAIL"})

	m.mu.Lock()
	defer m.mu.Unlock()
	want := []string{
		StageName + " ok", StageName + " ok", StageName + " SOURCE_HTTP_ERROR", StageName + " INVALID_ARGUMENT",
		PresignName + " ok", StageName + " ok", StageName + " STORAGE_ERROR",
	}
	if !slices.Equal(m.ended, want) {
		t.Errorf("outcomes %q, want %q", m.ended, want)
	}
	for tool, n := range m.inFlight {
		if n != 0 {
			t.Errorf("%s: %d calls still in flight", tool, n)
		}
	}
	// Each read counts, the one whose storage failed too; the bytes
	// storage already held and the failed upload are not stored.
	if m.fetched["http"] != int64(2*len(img)) || m.fetched["data"] != 10 {
		t.Errorf("fetched %v, want http %d, data 10", m.fetched, 2*len(img))
	}
	if m.stored != int64(len(img))+5 {
		t.Errorf("stored %d, want %d", m.stored, len(img)+5)
	}
}

package tools

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/filestage/filestage/source"
	"github.com/filestage/filestage/spool"
)

// TestStageSlots: past --max-concurrent-stages a call waits briefly, then
// is refused with BUSY without touching its source; a freed slot is used.
func TestStageSlots(t *testing.T) {
	entered, release := make(chan struct{}, 4), make(chan struct{})
	var hits sync.Map
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Store(r.URL.Path, true)
		if r.URL.Path == "/slow" {
			entered <- struct{}{}
			<-release
		}
		w.Write([]byte("hello"))
	}))
	defer srv.Close()
	f := newFixtureWith(t, &fakeProvider{}, 1<<20, func(s *Service) { s.Stages = NewSlots(1) })

	first := make(chan error, 1)
	go func() {
		res := f.call(t, StageName, map[string]any{"url": srv.URL + "/slow", "toolSlug": "GMAIL_SEND_EMAIL"})
		if res.IsError {
			first <- fmt.Errorf("first call: %v", res.Content)
			return
		}
		first <- nil
	}()
	<-entered
	start := time.Now()
	e := errorOf(t, f.call(t, StageName, map[string]any{"url": srv.URL + "/second", "toolSlug": "GMAIL_SEND_EMAIL"}))
	if e.Slug != "BUSY" || e.Status != 503 {
		t.Errorf("second call: %s %d (%s), want BUSY 503", e.Slug, e.Status, e.Message)
	}
	if waited := time.Since(start); waited < BusyWait/2 {
		t.Errorf("refused after %v, want a wait of about %v first", waited, BusyWait)
	}
	if _, ok := hits.Load("/second"); ok {
		t.Error("a refused call fetched its source")
	}
	close(release)
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	if res := f.call(t, StageName, map[string]any{"url": srv.URL + "/third", "toolSlug": "GMAIL_SEND_EMAIL"}); res.IsError {
		t.Errorf("third call after the slot was freed: %v", res.Content)
	}
}

// TestSpoolBudget: a source that would take more spool disk than the
// budget is refused with BUSY (before it is read when it says its size,
// as it arrives when it does not), leaving no file behind and nothing
// reserved.
func TestSpoolBudget(t *testing.T) {
	const budget = 1 << 20
	tests := []struct {
		name   string
		size   int
		length bool // sends Content-Length
		slug   string
	}{
		{"announced within", budget / 2, true, ""},
		{"streamed within", budget / 2, false, ""},
		{"announced over", 2 * budget, true, "BUSY"},
		{"streamed over", 3 * budget, false, "BUSY"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if tt.length {
					w.Header().Set("Content-Length", strconv.Itoa(tt.size))
				}
				chunk := make([]byte, 64<<10)
				for sent := 0; sent < tt.size; sent += len(chunk) {
					if _, err := w.Write(chunk[:min(len(chunk), tt.size-sent)]); err != nil {
						return
					}
					w.(http.Flusher).Flush()
				}
			}))
			defer srv.Close()
			b := spool.NewBudget(budget)
			f := newFixtureWith(t, &fakeProvider{}, 64<<20, func(s *Service) { s.Spool = b })
			res := f.call(t, StageName, map[string]any{"url": srv.URL + "/f.bin", "toolSlug": "GMAIL_SEND_EMAIL"})
			switch {
			case tt.slug == "" && res.IsError:
				t.Errorf("refused: %v", res.Content)
			case tt.slug != "":
				if e := errorOf(t, res); e.Slug != tt.slug || e.Status != 503 {
					t.Errorf("got %s %d (%s), want %s 503", e.Slug, e.Status, e.Message, tt.slug)
				}
			}
			if n := b.InUse(); n != 0 {
				t.Errorf("%d bytes still reserved after the call", n)
			}
			f.spoolEmpty(t)
		})
	}
}

// TestStalledSourceIsCut: a source that stops sending is cut after the
// stall limit, long before the fetch timeout, with nothing left behind.
func TestStalledSourceIsCut(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "100000")
		w.Write(make([]byte, 1000))
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	f := newFixtureWith(t, &fakeProvider{}, 1<<20, func(s *Service) {
		s.Sources = newOpener(t, source.Options{AllowPrivate: true, MaxBytes: 1 << 20, Timeout: time.Minute, Stall: 300 * time.Millisecond})
	})
	start := time.Now()
	e := errorOf(t, f.call(t, StageName, map[string]any{"url": srv.URL + "/f.bin", "toolSlug": "GMAIL_SEND_EMAIL"}))
	if e.Slug != "SOURCE_TIMEOUT" || !strings.Contains(e.Message, "sent nothing") {
		t.Errorf("got %s (%s), want SOURCE_TIMEOUT saying the source sent nothing", e.Slug, e.Message)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("cut after %v", took)
	}
	f.spoolEmpty(t)
}

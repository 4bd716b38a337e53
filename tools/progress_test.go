package tools

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/filestage/filestage/internal/testfile"
	"github.com/filestage/filestage/providers"
	"github.com/filestage/filestage/schema"
	"github.com/filestage/filestage/source"
)

type report struct {
	done, total int64
	message     string
}

type recorder struct {
	mu      sync.Mutex
	reports []report
}

func (r *recorder) progress(done, total int64, message string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.reports = append(r.reports, report{done, total, message})
}

func (r *recorder) all() []report {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]report(nil), r.reports...)
}

// slowStorage reads uploads a chunk at a time, as a slow network would,
// reading the body twice when asked to (a retried upload).
type slowStorage struct {
	reads   int
	pause   time.Duration
	started chan struct{}
	once    sync.Once
	err     error
}

func (s *slowStorage) RequestUpload(_ context.Context, req providers.UploadRequest) (providers.Slot, error) {
	return providers.Slot{Key: "k/" + req.Filename, Type: providers.SlotNew}, nil
}

func (s *slowStorage) Upload(ctx context.Context, _ providers.Slot, body providers.Body) error {
	buf := make([]byte, 64<<10)
	for range s.reads {
		r := body.Reader()
		for {
			_, err := r.Read(buf)
			s.once.Do(func() { close(s.started) })
			if err == io.EOF {
				break
			}
			if err != nil {
				s.err = err
				return err
			}
			time.Sleep(s.pause)
		}
	}
	return nil
}

func newService(t *testing.T, p providers.Provider, roots ...string) (*Service, string) {
	t.Helper()
	dir := t.TempDir()
	return &Service{
		Provider: p,
		Sources:  newOpener(t, source.Options{AllowPrivate: true, MaxBytes: 64 << 20, FileRoots: roots}),
		SpoolDir: dir,
		MaxBytes: 64 << 20,
		Logger:   slog.New(slog.DiscardHandler),
	}, dir
}

// TestProgressNeverGoesBack: a retried upload reads the bytes again, yet
// every report is further than the last, and the last says all is done.
func TestProgressNeverGoesBack(t *testing.T) {
	body := testfile.Random(1 << 20)
	store := &slowStorage{reads: 2, pause: 40 * time.Millisecond, started: make(chan struct{})}
	svc, _ := newService(t, store)
	rec := &recorder{}
	url := serve(t, "/f.bin", "application/octet-stream", "", body)
	if _, err := svc.Stage(WithProgress(context.Background(), rec.progress), schema.StageRequest{URL: url + "/f.bin", ToolSlug: "GMAIL_SEND_EMAIL"}); err != nil {
		t.Fatal(err)
	}
	reports := rec.all()
	if len(reports) < 3 {
		t.Fatalf("%d reports over a 1.3 s upload: %v", len(reports), reports)
	}
	last := int64(-1)
	for _, r := range reports {
		if r.done <= last || r.total != 2<<20 || r.done > r.total || r.message == "" {
			t.Errorf("report %+v after %d", r, last)
		}
		last = r.done
	}
	if final := reports[len(reports)-1]; final.done != final.total {
		t.Errorf("the last report is %+v", final)
	}
}

// TestCancelDuringUpload: cancelling while storage is reading stops the
// upload at its next read and removes the spool file.
func TestCancelDuringUpload(t *testing.T) {
	for _, kind := range []string{"spooled", "file"} {
		t.Run(kind, func(t *testing.T) {
			body := testfile.Random(1 << 20)
			store := &slowStorage{reads: 1, pause: 20 * time.Millisecond, started: make(chan struct{})}
			root := t.TempDir()
			svc, spoolDir := newService(t, store, root)
			url := serve(t, "/f.bin", "", "", body) + "/f.bin"
			if kind == "file" {
				os.WriteFile(root+"/f.bin", body, 0o644)
				url, _ = source.FileURL(root + "/f.bin")
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() {
				_, err := svc.Stage(ctx, schema.StageRequest{URL: url, ToolSlug: "GMAIL_SEND_EMAIL"})
				done <- err
			}()
			<-store.started
			cancel()
			select {
			case err := <-done:
				if te := AsError(err); te.Slug != "CANCELLED" || !errors.Is(store.err, context.Canceled) {
					t.Errorf("got %v (storage saw %v), want CANCELLED", err, store.err)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("the upload went on after the cancellation")
			}
			if entries, _ := os.ReadDir(spoolDir); len(entries) != 0 {
				t.Errorf("%d temporary files left", len(entries))
			}
			if got, _ := os.ReadFile(root + "/f.bin"); kind == "file" && !bytes.Equal(got, body) {
				t.Error("the source file was changed")
			}
		})
	}
}

// inspector records, at upload time, what the body was and what the spool
// directory held.
type inspector struct {
	spoolDir string
	temp     bool
	spooled  int
	got      []byte
}

func (i *inspector) RequestUpload(_ context.Context, req providers.UploadRequest) (providers.Slot, error) {
	return providers.Slot{Key: "k/" + req.Filename, Type: providers.SlotNew}, nil
}

func (i *inspector) Upload(_ context.Context, _ providers.Slot, body providers.Body) error {
	entries, _ := os.ReadDir(i.spoolDir)
	i.temp, i.spooled = body.Temp != nil, len(entries)
	var err error
	i.got, err = io.ReadAll(body.Reader())
	return err
}

type movingInspector struct{ *inspector }

func (movingInspector) MovesTemp() {}

// TestFileSourcesAreNotCopied: a file:// source is uploaded straight from
// the file, except into a store on this disk that would copy it anyway:
// that one gets a spool file to move.
func TestFileSourcesAreNotCopied(t *testing.T) {
	root := t.TempDir()
	body := testfile.Random(300 << 10)
	os.WriteFile(root+"/f.bin", body, 0o644)
	url, _ := source.FileURL(root + "/f.bin")
	for _, mover := range []bool{false, true} {
		in := &inspector{}
		var p providers.Provider = in
		if mover {
			p = movingInspector{in}
		}
		svc, spoolDir := newService(t, p, root)
		in.spoolDir = spoolDir
		if _, err := svc.Stage(context.Background(), schema.StageRequest{URL: url, ToolSlug: "GMAIL_SEND_EMAIL"}); err != nil {
			t.Fatal(err)
		}
		if in.temp != mover || (in.spooled == 1) != mover || !bytes.Equal(in.got, body) {
			t.Errorf("mover %v: body.Temp set %v, %d spool files at upload time", mover, in.temp, in.spooled)
		}
	}
}

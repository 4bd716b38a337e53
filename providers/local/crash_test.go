package local

import (
	"bytes"
	"context"
	"crypto/md5"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/filestage/filestage/providers"
	"github.com/filestage/filestage/spool"
)

// The crash tests run this package's test binary again as a writer that
// SIGKILLs itself at a named step of a write, then check what a restart
// finds.
const (
	crashStepEnv = "FILESTAGE_TEST_CRASH_STEP"
	crashDirEnv  = "FILESTAGE_TEST_CRASH_DIR"
	crashPathEnv = "FILESTAGE_TEST_CRASH_PATH"
)

func TestMain(m *testing.M) {
	if step := os.Getenv(crashStepEnv); step != "" {
		if err := crashingWrite(step, os.Getenv(crashDirEnv), os.Getenv(crashPathEnv)); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(3)
		}
		os.Exit(0) // the step was never reached
	}
	os.Exit(m.Run())
}

var crashBody = []byte("bytes that were being written when the process died")

func crashRequest() providers.UploadRequest {
	return providers.UploadRequest{ToolkitSlug: "gmail", ToolSlug: "GMAIL_SEND_EMAIL", Filename: "Report.pdf",
		Mimetype: "application/pdf", MD5: md5.Sum(crashBody), Size: int64(len(crashBody)), Owner: "alice", Namespace: "p-0123"}
}

// crashingWrite writes crashBody by one of the store's write paths and
// dies at step.
func crashingWrite(step, dir, path string) error {
	p, err := New(providers.Settings{DataDir: dir, PublicURL: "http://127.0.0.1:1", MaxBytes: 1 << 20})
	if err != nil {
		return err
	}
	p.store.crash = func(at string) {
		if at == step {
			syscall.Kill(os.Getpid(), syscall.SIGKILL)
			select {} // the signal is on its way
		}
	}
	ctx := context.Background()
	req := crashRequest()
	switch path {
	case "stage":
		sp, err := spool.Write(bytes.NewReader(crashBody), p.store.tmp, 1<<20)
		if err != nil {
			return err
		}
		_, err = p.Store(ctx, req, providers.Body{Data: sp, Size: sp.Size, MD5: sp.MD5, Temp: sp})
		return err
	case "presign+put":
		slot, err := p.RequestUpload(ctx, req)
		if err != nil {
			return err
		}
		// The client's PUT, through the handler: the entry is written
		// from what the URL carries.
		put := httptest.NewRequest(http.MethodPut, slot.URL, bytes.NewReader(crashBody))
		for k, v := range slot.Headers {
			put.Header.Set(k, v)
		}
		rec := httptest.NewRecorder()
		p.ServeHTTP(rec, put)
		if rec.Code != http.StatusOK {
			return fmt.Errorf("PUT: %d %s", rec.Code, rec.Body)
		}
		return nil
	}
	return fmt.Errorf("unknown write path %q", path)
}

// TestIndexSurvivesCrashes kills a writer at each step of each write path
// and checks that a restart finds object and entry together or neither,
// never one without the other, and that the name and owner survive.
func TestIndexSurvivesCrashes(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"stage", "presign+put"} {
		for _, step := range []string{"pending", "linked", "stored"} {
			t.Run(path+"/"+step, func(t *testing.T) {
				dir := t.TempDir()
				cmd := exec.Command(exe, "-test.run=^$")
				cmd.Env = append(os.Environ(), crashStepEnv+"="+step, crashDirEnv+"="+dir, crashPathEnv+"="+path)
				out, err := cmd.CombinedOutput()
				var exit *exec.ExitError
				if !errors.As(err, &exit) || exit.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
					t.Fatalf("the writer was not killed at %s: %v\n%s", step, err, out)
				}

				p, err := Open(context.Background(), providers.Settings{DataDir: dir, PublicURL: "http://127.0.0.1:1", MaxBytes: 1 << 20})
				if err != nil {
					t.Fatal(err)
				}
				store := p.(*Provider)
				defer store.Close()
				if _, err := store.Repair(context.Background()); err != nil {
					t.Fatal(err)
				}
				key := providers.ContentKey(crashRequest())
				checkConsistent(t, store)
				e, ok, err := store.Object(context.Background(), key)
				if err != nil {
					t.Fatal(err)
				}
				if step == "pending" {
					if ok {
						t.Fatalf("an object the writer never linked is described: %+v", e)
					}
					// The write can be done again, and completes.
					checkRestage(t, store)
					return
				}
				if !ok {
					t.Fatal("the object the writer linked has no entry after the restart")
				}
				if e.Name != "Report.pdf" || e.Owner != "alice" || e.Mimetype != "application/pdf" || e.Size != int64(len(crashBody)) || e.Namespace != "p-0123" {
					t.Errorf("entry %+v lost what the writer knew", e)
				}
				if got, _ := os.ReadFile(filepath.Join(dir, "objects", filepath.FromSlash(key))); !bytes.Equal(got, crashBody) {
					t.Errorf("object holds %q", got)
				}
			})
		}
	}
}

func checkRestage(t *testing.T, p *Provider) {
	t.Helper()
	sp, err := spool.Write(bytes.NewReader(crashBody), p.store.tmp, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	slot, err := p.Store(context.Background(), crashRequest(), providers.Body{Data: sp, Size: sp.Size, MD5: sp.MD5, Temp: sp})
	if err != nil || slot.Type != providers.SlotNew {
		t.Fatalf("staging again: %+v %v", slot, err)
	}
	if e, ok, _ := p.Object(context.Background(), slot.Key); !ok || e.Name != "Report.pdf" {
		t.Errorf("after staging again: %+v %v", e, ok)
	}
	checkConsistent(t, p)
}

// checkConsistent: every object has a stored entry and every stored entry
// its object.
func checkConsistent(t *testing.T, p *Provider) {
	t.Helper()
	files := map[string]bool{}
	filepath.WalkDir(p.store.objects, func(path string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			rel, _ := filepath.Rel(p.store.objects, path)
			files[filepath.ToSlash(rel)] = true
		}
		return nil
	})
	entries, err := p.List(context.Background(), Query{})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if !files[e.Key] {
			t.Errorf("entry %s has no object", e.Key)
		}
		delete(files, e.Key)
	}
	for k := range files {
		t.Errorf("object %s has no entry", k)
	}
}

// TestRepair: an index deleted, or behind the objects, is rebuilt from
// them; entries of objects removed by hand go.
func TestRepair(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t, 1<<20)
	h.p.store.retention = 24 * time.Hour
	kept := h.stageBytes(t, []byte("%PDF-1.4 kept"), "kept.pdf", "application/pdf")
	gone := h.stageBytes(t, []byte("removed by hand"), "gone.txt", "text/plain")
	h.p.Close()
	if err := os.Remove(filepath.Join(h.dataDir, "objects", filepath.FromSlash(gone.Key))); err != nil {
		t.Fatal(err)
	}
	reopen := func() *Provider {
		p, err := Open(ctx, providers.Settings{DataDir: h.dataDir, PublicURL: h.srv.URL, Retention: 24 * time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { p.(*Provider).Close() })
		if _, err := p.(*Provider).Repair(ctx); err != nil {
			t.Fatal(err)
		}
		return p.(*Provider)
	}
	p := reopen()
	checkConsistent(t, p)
	if e, ok, _ := p.Object(ctx, kept.Key); !ok || e.Name != "kept.pdf" || e.Owner != "alice" {
		t.Errorf("kept: %+v %v", e, ok)
	}
	p.Close()

	// No index at all: every object gets an entry from its key and bytes.
	for _, f := range []string{"index.db", "index.db-wal", "index.db-shm"} {
		os.Remove(filepath.Join(h.dataDir, f))
	}
	p = reopen()
	checkConsistent(t, p)
	e, ok, _ := p.Object(ctx, kept.Key)
	if !ok || e.Mimetype != "application/pdf" || e.MD5 != hexMD5([]byte("%PDF-1.4 kept")) || e.Size != 13 || e.Expires.IsZero() {
		t.Errorf("rebuilt: %+v %v", e, ok)
	}
}

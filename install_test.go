package main

import (
	"archive/zip"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

const modulePath = "github.com/filestage/filestage"

// TestGoInstall: `go install github.com/filestage/filestage@VERSION`, as
// the README tells, works on the module as it would be published: the
// committed files zipped as the module proxy serves a version, served from
// a file:// proxy ahead of the real one (for the dependencies). A replace
// directive, a main package away from the module's root, or a go.sum that
// misses a dependency would each fail it; the binary it installs must say
// the version it was installed at.
func TestGoInstall(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	goCmd := filepath.Join(runtime.GOROOT(), "bin", "go")
	files, err := exec.Command("git", "ls-files", "-z").Output()
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("git ls-files: %v", err)
		}
		t.Skip("not a git checkout: the module's files are the committed ones")
	}
	// A version of its own each run: the module cache never forgets what
	// it was once given for a version.
	version := fmt.Sprintf("v0.0.0-installtest.%d", time.Now().UnixNano())
	proxy := t.TempDir()
	dir := filepath.Join(proxy, filepath.FromSlash(modulePath), "@v")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	var zipped bytes.Buffer
	zw := zip.NewWriter(&zipped)
	for _, name := range strings.Split(strings.TrimRight(string(files), "\x00"), "\x00") {
		fi, err := os.Lstat(name)
		if err != nil {
			t.Fatal(err) // a committed file deleted in the work tree
		}
		if !fi.Mode().IsRegular() {
			continue // a module zip holds regular files only
		}
		body, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		w, err := zw.Create(modulePath + "@" + version + "/" + name)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(body)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	gomod, err := os.ReadFile("go.mod")
	if err != nil {
		t.Fatal(err)
	}
	for name, body := range map[string][]byte{
		"list":            []byte(version + "\n"),
		version + ".info": fmt.Appendf(nil, `{"Version":%q,"Time":%q}`, version, time.Now().UTC().Format(time.RFC3339)),
		version + ".mod":  gomod,
		version + ".zip":  zipped.Bytes(),
	} {
		if err := os.WriteFile(filepath.Join(dir, name), body, 0o644); err != nil {
			t.Fatal(err)
		}
	}

	upstream, err := exec.Command(goCmd, "env", "GOPROXY").Output()
	if err != nil {
		t.Fatal(err)
	}
	modcache, err := exec.Command(goCmd, "env", "GOMODCACHE").Output()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// Only this test's version; -modcacherw left it removable.
		cache := strings.TrimSpace(string(modcache))
		os.RemoveAll(filepath.Join(cache, filepath.FromSlash(modulePath)+"@"+version))
		versions := filepath.Join(cache, "cache", "download", filepath.FromSlash(modulePath), "@v")
		matches, _ := filepath.Glob(filepath.Join(versions, version+".*"))
		for _, m := range matches {
			os.Remove(m)
		}
		// The version list the go command keeps beside them names it too.
		if list, err := os.ReadFile(filepath.Join(versions, "list")); err == nil {
			kept := strings.ReplaceAll(string(list), version+"\n", "")
			if kept == "" {
				os.Remove(filepath.Join(versions, "list"))
			} else {
				os.WriteFile(filepath.Join(versions, "list"), []byte(kept), 0o644)
			}
		}
	})
	gobin := t.TempDir()
	cmd := exec.Command(goCmd, "install", modulePath+"@"+version)
	cmd.Dir = t.TempDir() // outside this module, as a user would be
	cmd.Env = append(os.Environ(),
		"GOPROXY=file://"+filepath.ToSlash(proxy)+","+strings.TrimSpace(string(upstream)),
		"GONOSUMDB="+modulePath, // this version exists nowhere else
		"GOFLAGS=-modcacherw", "GOWORK=off", "GOBIN="+gobin, "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go install %s@%s: %v\n%s", modulePath, version, err, out)
	}
	out, err := exec.Command(filepath.Join(gobin, "filestage"), "version").CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "filestage "+version) {
		t.Errorf("the installed filestage says %q (%v), want its version %s", out, err, version)
	}
}

package main

import (
	"archive/tar"
	"archive/zip"
	"bufio"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// releaseTargets are the platforms a release has an archive for, as
// .goreleaser.yaml builds them and the README's install lines link them.
var releaseTargets = []string{"linux/amd64", "linux/arm64", "darwin/amd64", "darwin/arm64", "windows/amd64", "windows/arm64"}

// TestReleaseArchives checks the archives of the GoReleaser snapshot CI
// builds (FILESTAGE_TEST_DIST, its dist directory): one per platform under
// the name the README's install lines download, each holding the binary
// for its platform, the README and the LICENSE; checksums.txt has the
// SHA-256 of each; and Linux's binary runs and says its version.
func TestReleaseArchives(t *testing.T) {
	dist := releaseArtefact(t, "FILESTAGE_TEST_DIST", "the dist directory of goreleaser release --snapshot --clean --skip=docker")
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	sums := map[string]string{}
	f, err := os.Open(filepath.Join(dist, "checksums.txt"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for sc := bufio.NewScanner(f); sc.Scan(); {
		if sum, name, ok := strings.Cut(sc.Text(), "  "); ok {
			sums[name] = sum
		}
	}

	// Every file the README downloads from the latest release is one the
	// release makes, and it downloads one for each system.
	linked := regexp.MustCompile(`/releases/latest/download/([^\s\x60|)]+)`).FindAllStringSubmatch(string(readme), -1)
	for _, goos := range []string{"linux", "darwin", "windows"} {
		if !slices.ContainsFunc(linked, func(m []string) bool { return strings.HasPrefix(m[1], "filestage_"+goos+"_") }) {
			t.Errorf("the README's install lines download nothing for %s", goos)
		}
	}
	for _, m := range linked {
		if _, err := os.Stat(filepath.Join(dist, m[1])); err != nil {
			t.Errorf("the README downloads %s, which the release does not make: %v", m[1], err)
		}
	}

	for _, target := range releaseTargets {
		goos, goarch, _ := strings.Cut(target, "/")
		name, bin := "filestage_"+goos+"_"+goarch+".tar.gz", "filestage"
		if goos == "windows" {
			name, bin = "filestage_"+goos+"_"+goarch+".zip", "filestage.exe"
		}
		t.Run(target, func(t *testing.T) {
			path := filepath.Join(dist, name)
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("no archive: %v", err)
			}
			if sum := sha256.Sum256(data); sums[name] != hex.EncodeToString(sum[:]) {
				t.Errorf("checksums.txt says %q, the archive's SHA-256 is %x", sums[name], sum)
			}
			dir := t.TempDir()
			got := extract(t, path, dir)
			if want := []string{"LICENSE", "README.md", bin}; !slices.Equal(got, want) {
				t.Errorf("holds %q, want %q", got, want)
			}
			checkBinary(t, filepath.Join(dir, bin), target)
			if target == "linux/amd64" {
				out, err := exec.Command(filepath.Join(dir, bin), "version").CombinedOutput()
				if err != nil || !stamped.Match(out) {
					t.Errorf("filestage version: %q (%v), want a release's version and commit", out, err)
				}
			}
		})
	}
}

// releaseArtefact is the release artefact the variable name names, which
// .ci/run makes before the tests and names there: the test is skipped
// without it, but in CI, where it fails.
func releaseArtefact(t *testing.T, name, what string) string {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is unset: .ci/run makes %s and names it there", name, what)
		}
		t.Skipf("set %s to %s", name, what)
	}
	return v
}

// extract unpacks a .tar.gz or .zip archive into dir, with the modes it
// records, and returns the names it held, sorted.
func extract(t *testing.T, archive, dir string) []string {
	t.Helper()
	var names []string
	write := func(name string, mode os.FileMode, r io.Reader) {
		if name != filepath.Base(name) {
			t.Fatalf("%s holds %s, not at its top", archive, name)
		}
		names = append(names, name)
		f, err := os.OpenFile(filepath.Join(dir, name), os.O_CREATE|os.O_WRONLY|os.O_EXCL, mode.Perm())
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if _, err := io.Copy(f, r); err != nil {
			t.Fatal(err)
		}
	}
	if strings.HasSuffix(archive, ".zip") {
		zr, err := zip.OpenReader(archive)
		if err != nil {
			t.Fatal(err)
		}
		defer zr.Close()
		for _, zf := range zr.File {
			rc, err := zf.Open()
			if err != nil {
				t.Fatal(err)
			}
			write(zf.Name, zf.Mode(), rc)
			rc.Close()
		}
	} else {
		f, err := os.Open(archive)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		gz, err := gzip.NewReader(f)
		if err != nil {
			t.Fatal(err)
		}
		tr := tar.NewReader(gz)
		for {
			h, err := tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			write(h.Name, h.FileInfo().Mode(), tr)
		}
	}
	slices.Sort(names)
	return names
}

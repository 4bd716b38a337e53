package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"slices"
	"strings"
	"testing"
)

// TestVersionString: what filestage version prints after "filestage",
// from the build info go build records.
func TestVersionString(t *testing.T) {
	vcs := []debug.BuildSetting{
		{Key: "-buildmode", Value: "exe"},
		{Key: "vcs", Value: "git"},
		{Key: "vcs.revision", Value: "6b319c8d0a1e2f3b4c5d6e7f8091a2b3c4d5e6f7"},
		{Key: "vcs.time", Value: "2026-03-04T05:06:07Z"},
		{Key: "vcs.modified", Value: "false"},
	}
	modified := slices.Concat(vcs[:len(vcs)-1], []debug.BuildSetting{{Key: "vcs.modified", Value: "true"}})
	tests := []struct {
		name     string
		bi       *debug.BuildInfo
		override string
		want     string
	}{
		{"release", &debug.BuildInfo{Main: debug.Module{Version: "v1.4.0"}, Settings: vcs}, "", "v1.4.0 (6b319c8d0a1e, 2026-03-04T05:06:07Z)"},
		{"modified tree", &debug.BuildInfo{Main: debug.Module{Version: "v1.4.1-0.20260304050607-6b319c8d0a1e+dirty"}, Settings: modified}, "",
			"v1.4.1-0.20260304050607-6b319c8d0a1e+dirty (6b319c8d0a1e, 2026-03-04T05:06:07Z, modified)"},
		{"no VCS (-buildvcs=false)", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}}, "", "(devel)"},
		{"no module version", &debug.BuildInfo{Settings: vcs}, "", "(devel) (6b319c8d0a1e, 2026-03-04T05:06:07Z)"},
		{"no build info", nil, "", "(devel)"},
		{"-ldflags -X main.version wins", &debug.BuildInfo{Main: debug.Module{Version: "v1.4.0"}, Settings: vcs}, "1.4.0-deb1", "1.4.0-deb1 (6b319c8d0a1e, 2026-03-04T05:06:07Z)"},
		{"-ldflags -X main.version without VCS", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}}, "1.4.0", "1.4.0"},
		{"short revision", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "abc123"}}}, "", "(devel) (abc123)"},
	}
	for _, tt := range tests {
		if got := readVersion(tt.bi, tt.override).String(); got != tt.want {
			t.Errorf("%s: %q, want %q", tt.name, got, tt.want)
		}
	}
}

// TestVersionFromVCS builds the binary with VCS stamping (this machine's
// go env says -buildvcs=false) and checks that version and --version
// agree and name this checkout's commit, and that -ldflags -X main.version
// replaces the module version only.
func TestVersionFromVCS(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	git, err := exec.LookPath("git")
	if err != nil {
		t.Skip("git is not installed")
	}
	head, err := exec.Command(git, "rev-parse", "HEAD").Output()
	if err != nil {
		t.Skipf("not a git checkout: %v", err)
	}
	commit := exec.Command(git, "show", "-s", "--format=%cd", "--date=format-local:%Y-%m-%dT%H:%M:%SZ", "HEAD")
	commit.Env = append(os.Environ(), "TZ=UTC")
	when, err := commit.Output()
	if err != nil {
		t.Fatal(err)
	}
	rev, at := string(head[:12]), strings.TrimSpace(string(when))
	line := regexp.MustCompile(`^filestage (\S+) \(([0-9a-f]{12}), (\S+?)(, modified)?\)\n$`)

	dir := t.TempDir()
	for _, b := range []struct {
		name, ldflags, version string
	}{
		{"plain", "", ""},
		{"override", "-X main.version=9.8.7-test", "9.8.7-test"},
	} {
		bin := filepath.Join(dir, b.name)
		if out, err := exec.Command("go", "build", "-buildvcs=true", "-ldflags="+b.ldflags, "-o", bin, ".").CombinedOutput(); err != nil {
			t.Fatalf("go build -buildvcs=true: %v\n%s", err, out)
		}
		command, err := exec.Command(bin, "version").Output()
		if err != nil {
			t.Fatalf("%s version: %v", b.name, err)
		}
		flag, err := exec.Command(bin, "--version").Output()
		if err != nil {
			t.Fatalf("%s --version: %v", b.name, err)
		}
		if string(command) != string(flag) {
			t.Errorf("%s: version says %q, --version %q", b.name, command, flag)
		}
		m := line.FindStringSubmatch(string(command))
		if m == nil {
			t.Fatalf("%s: %q is not filestage VERSION (REVISION, TIME[, modified])", b.name, command)
		}
		if m[2] != rev || m[3] != at {
			t.Errorf("%s: %q names %s at %s, want HEAD, %s at %s", b.name, command, m[2], m[3], rev, at)
		}
		if b.version != "" && m[1] != b.version {
			t.Errorf("%s: version %s, want %s (-ldflags -X main.version)", b.name, m[1], b.version)
		}
		t.Logf("%s: %s", b.name, strings.TrimSpace(string(command)))
	}
}

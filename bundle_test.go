package main

// deploy/mcpb/manifest.json describes filestage's Claude Desktop bundle
// (MCPB, manifest 0.3); deploy/mcpb/pack.sh packs it with GoReleaser's
// binaries. TestBundleManifest holds the manifest to config.Variables()
// and the tool snapshots; TestLauncherPicksArch runs its Linux launcher;
// TestBundleUnconfigured starts the server with what the manifest passes
// when the person fills in nothing; and
// TestPackedBundle, given a packed bundle in FILESTAGE_TEST_BUNDLE (CI sets
// it after packing), runs it the way Claude Desktop does: the command line
// comes from the mcpb package's own getMcpConfigForManifest, the code
// Claude Desktop uses.

import (
	"archive/zip"
	"bytes"
	"cmp"
	"context"
	"debug/elf"
	"debug/macho"
	"debug/pe"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	mcptransport "github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/filestage/filestage/config"
	"github.com/filestage/filestage/schema"
)

const mcpbManifestPath = "deploy/mcpb/manifest.json"

// mcpbBinaries are the bundle's binaries by GOOS/GOARCH, as pack.sh names
// them. The manifest chooses among them by OS: macOS runs a universal
// binary (GoReleaser's darwin/all), Linux a launcher that picks one by
// `uname -m`, and Windows the amd64 one (Windows 11 on Arm runs it).
var mcpbBinaries = map[string]string{
	"darwin/all":    "server/filestage-darwin",
	"linux/amd64":   "server/filestage-linux-amd64",
	"linux/arm64":   "server/filestage-linux-arm64",
	"windows/amd64": "server/filestage-windows-amd64.exe",
}

// mcpbBinaryFor is the bundle's binary that runs on goos/goarch.
func mcpbBinaryFor(goos, goarch string) (string, bool) {
	if goos == "darwin" && (goarch == "amd64" || goarch == "arm64") {
		goarch = "all"
	}
	bin, ok := mcpbBinaries[goos+"/"+goarch]
	return bin, ok
}

type mcpbServerConfig struct {
	Command string            `json:"command"`
	Args    []string          `json:"args"`
	Env     map[string]string `json:"env"`
}

type mcpbManifest struct {
	ManifestVersion string `json:"manifest_version"`
	Name            string `json:"name"`
	Version         string `json:"version"`
	Server          struct {
		Type       string `json:"type"`
		EntryPoint string `json:"entry_point"`
		MCPConfig  struct {
			mcpbServerConfig
			PlatformOverrides map[string]mcpbServerConfig `json:"platform_overrides"`
		} `json:"mcp_config"`
	} `json:"server"`
	Tools []struct {
		Name        string `json:"name"`
		Description string `json:"description"`
	} `json:"tools"`
	Compatibility struct {
		Platforms []string `json:"platforms"`
	} `json:"compatibility"`
	UserConfig map[string]struct {
		Type      string `json:"type"`
		Title     string `json:"title"`
		Required  bool   `json:"required"`
		Multiple  bool   `json:"multiple"`
		Sensitive bool   `json:"sensitive"`
		Default   any    `json:"default"`
	} `json:"user_config"`
}

func readMCPBManifest(t *testing.T, path string) (mcpbManifest, []byte) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var m mcpbManifest
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return m, data
}

// platformConfig is mcp_config as a host on platform (Node's
// process.platform) sees it: an override replaces command, args and env
// one by one.
func (m mcpbManifest) platformConfig(platform string) mcpbServerConfig {
	c := m.Server.MCPConfig.mcpbServerConfig
	if o, ok := m.Server.MCPConfig.PlatformOverrides[platform]; ok {
		c.Command = cmp.Or(o.Command, c.Command)
		if o.Args != nil {
			c.Args = o.Args
		}
		if o.Env != nil {
			c.Env = o.Env
		}
	}
	return c
}

var userConfigRef = regexp.MustCompile(`\$\{user_config\.([^}]*)\}`)

// toolSnapshots are the tools' names and descriptions, from the snapshots
// the tools package checks its tools against.
func toolSnapshots(t *testing.T) map[string]string {
	t.Helper()
	files, err := filepath.Glob("tools/__toolsnaps__/*.snap")
	if err != nil || len(files) == 0 {
		t.Fatalf("no tool snapshots: %v", err)
	}
	tools := map[string]string{}
	for _, f := range files {
		var snap struct{ Name, Description string }
		data, err := os.ReadFile(f)
		if err == nil {
			err = json.Unmarshal(data, &snap)
		}
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		tools[snap.Name] = snap.Description
	}
	return tools
}

func TestBundleManifest(t *testing.T) {
	m, _ := readMCPBManifest(t, mcpbManifestPath)
	if m.ManifestVersion != "0.3" {
		t.Errorf("manifest_version %q, want 0.3", m.ManifestVersion)
	}
	if m.Server.Type != "binary" {
		t.Errorf("server.type %q, want binary", m.Server.Type)
	}
	if !slices.Contains(slices.Collect(maps.Values(mcpbBinaries)), m.Server.EntryPoint) {
		t.Errorf("entry_point %q is none of the bundle's binaries", m.Server.EntryPoint)
	}
	if want := []string{"darwin", "linux", "win32"}; !slices.Equal(slices.Sorted(slices.Values(m.Compatibility.Platforms)), want) {
		t.Errorf("compatibility.platforms %v, want %v", m.Compatibility.Platforms, want)
	}

	vars := map[string]config.Variable{}
	for _, v := range config.Variables() {
		vars[v.Name] = v
	}
	// Every platform passes the same variables, each from one setting.
	exposed := map[string]string{} // user_config key -> variable
	for _, platform := range m.Compatibility.Platforms {
		c := m.platformConfig(platform)
		for name, value := range c.Env {
			v, ok := vars[name]
			if !ok {
				t.Errorf("%s: env %s is not a variable filestage reads (config.Variables)", platform, name)
				continue
			}
			refs := userConfigRef.FindAllStringSubmatch(value, -1)
			if len(refs) != 1 || refs[0][0] != value {
				t.Errorf("%s: env %s=%q: want exactly ${user_config.KEY}", platform, name, value)
				continue
			}
			key := refs[0][1]
			opt, ok := m.UserConfig[key]
			if !ok {
				t.Errorf("%s: env %s names user_config.%s, which is not declared", platform, name, key)
				continue
			}
			if prev, ok := exposed[key]; ok && prev != name {
				t.Errorf("user_config.%s feeds both %s and %s", key, prev, name)
			}
			exposed[key] = name
			if opt.Sensitive != v.Secret {
				t.Errorf("user_config.%s (%s): sensitive is %v, but config.Variables says secret is %v", key, name, opt.Sensitive, v.Secret)
			}
			if opt.Multiple {
				// mcpb leaves an array in a string unsubstituted.
				t.Errorf("user_config.%s is multiple: an env value cannot take a list", key)
			}
		}
		// The folder list is the one setting in args, where a list
		// expands to one argument per folder, after serve. Any other goes
		// in env, where an unset one is empty.
		n := len(c.Args)
		if n < 2 || c.Args[n-2] != "serve" || c.Args[n-1] != "${user_config.file_roots}" {
			t.Errorf("%s: args %q do not end in serve ${user_config.file_roots}", platform, c.Args)
			continue
		}
		exposed["file_roots"] = "serve FOLDER..."
		for _, a := range append([]string{c.Command}, c.Args[:n-1]...) {
			if userConfigRef.MatchString(a) {
				t.Errorf("%s: %q: settings go in env, where an unset one is empty, not in args", platform, a)
			}
		}
	}
	for key, opt := range m.UserConfig {
		if _, ok := exposed[key]; !ok {
			t.Errorf("user_config.%s is passed to no variable", key)
		}
		// The local provider needs nothing, so nothing is required.
		if opt.Required {
			t.Errorf("user_config.%s is required", key)
		}
		// Without a default, mcpb passes an unset setting as the literal
		// "${user_config.KEY}"; an empty default passes it as empty, which
		// filestage reads as unset.
		if opt.Default == nil {
			t.Errorf("user_config.%s has no default: when left empty, the server would get the literal ${user_config.%s}", key, key)
		}
		if opt.Sensitive && opt.Default != "" {
			t.Errorf("user_config.%s is sensitive and has the default %v", key, opt.Default)
		}
	}
	if exposed["provider"] != "FILESTAGE_PROVIDER" {
		t.Errorf("provider feeds %q, want FILESTAGE_PROVIDER", exposed["provider"])
	}
	if opt := m.UserConfig["file_roots"]; opt.Type != "directory" || !opt.Multiple || fmt.Sprint(opt.Default) != "[]" {
		t.Errorf("user_config.file_roots: %s, multiple %v, default %v; want a list of directories, empty by default", opt.Type, opt.Multiple, opt.Default)
	}

	snaps := toolSnapshots(t)
	var names []string
	for _, tool := range m.Tools {
		names = append(names, tool.Name)
		if d, ok := snaps[tool.Name]; ok && (tool.Description == "" || !strings.HasPrefix(d, tool.Description)) {
			t.Errorf("tool %s: description %q does not begin the snapshot's %q", tool.Name, tool.Description, d)
		}
	}
	if want := slices.Sorted(maps.Keys(snaps)); !slices.Equal(slices.Sorted(slices.Values(names)), want) {
		t.Errorf("tools %v, want the snapshots' %v", names, want)
	}

	// The binaries the launch commands name are the ones pack.sh puts in.
	for platform, bin := range map[string]string{"darwin": mcpbBinaries["darwin/all"], "win32": mcpbBinaries["windows/amd64"]} {
		if c := m.platformConfig(platform); c.Command != "${__dirname}/"+bin || len(c.Args) != 2 {
			t.Errorf("%s runs %q %q, want ${__dirname}/%s serve FOLDER...", platform, c.Command, c.Args, bin)
		}
	}
	if c := m.platformConfig("linux"); len(c.Args) < 3 || c.Args[len(c.Args)-3] != "${__dirname}/server/filestage-linux" {
		t.Errorf("linux: args %q do not pass the launcher's base name ${__dirname}/server/filestage-linux", c.Args)
	}
}

// TestLauncherPicksArch runs the manifest's Linux command with stand-ins
// for the binaries: it must exec the one for this machine's GOARCH. Its
// shell script is POSIX, so it runs on macOS too.
func TestLauncherPicksArch(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("the launcher is a POSIX shell script")
	}
	if _, ok := mcpbBinaries["linux/"+runtime.GOARCH]; !ok {
		t.Skipf("the bundle has no binary for linux/%s", runtime.GOARCH)
	}
	m, _ := readMCPBManifest(t, mcpbManifestPath)
	dir := filepath.Join(t.TempDir(), "Claude Extensions", "filestage")
	os.MkdirAll(filepath.Join(dir, "server"), 0o755)
	for target, bin := range mcpbBinaries {
		script := fmt.Sprintf("#!/bin/sh\necho %s \"$@\"\n", target)
		if err := os.WriteFile(filepath.Join(dir, bin), []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	c := m.platformConfig("linux")
	out, err := exec.Command(c.Command, hostArgs(c.Args, dir, []string{"/a b", "/c"})...).CombinedOutput()
	if got, want := strings.TrimSpace(string(out)), "linux/"+runtime.GOARCH+" serve /a b /c"; err != nil || got != want {
		t.Errorf("launcher ran %q (%v), want %s", got, err, want)
	}
}

// hostArgs are args as getMcpConfigForManifest substitutes them: the
// bundle in dir, and the folders chosen, one argument each.
func hostArgs(args []string, dir string, folders []string) []string {
	var out []string
	for _, a := range args {
		if a == "${user_config.file_roots}" {
			out = append(out, folders...)
			continue
		}
		out = append(out, strings.ReplaceAll(a, "${__dirname}", dir))
	}
	return out
}

// unconfiguredEnv is the environment the manifest gives the server on
// platform when the person sets nothing: every setting's default, as
// getMcpConfigForManifest substitutes it.
func unconfiguredEnv(t *testing.T, m mcpbManifest, platform string) map[string]string {
	t.Helper()
	env := map[string]string{}
	for name, value := range m.platformConfig(platform).Env {
		env[name] = userConfigRef.ReplaceAllStringFunc(value, func(ref string) string {
			key := userConfigRef.FindStringSubmatch(ref)[1]
			switch d := m.UserConfig[key].Default.(type) {
			case string:
				return d
			case bool, float64:
				return fmt.Sprint(d)
			}
			t.Fatalf("user_config.%s: no default to substitute", key)
			return ""
		})
	}
	return env
}

// TestBundleUnconfigured starts filestage with what the bundle passes when
// the person fills in nothing, every key empty: the local provider, no
// roots, every tool.
func TestBundleUnconfigured(t *testing.T) {
	m, _ := readMCPBManifest(t, mcpbManifestPath)
	env := unconfiguredEnv(t, m, "darwin")
	args := hostArgs(m.platformConfig("darwin").Args, "", nil)
	home := t.TempDir()
	cfg, err := config.Parse(args, func(k string) string { return cmp.Or(env[k], map[string]string{"HOME": home}[k]) })
	if err != nil {
		t.Fatalf("config: %v (env %v)", err, env)
	}
	if cfg.Provider != "local" || len(cfg.FileRoots) != 0 {
		t.Errorf("provider %q, roots %q: want local and none", cfg.Provider, cfg.FileRoots)
	}
	s := start(t, env, args...)
	c := transports[0].connect(t, s, mcp.LATEST_PROTOCOL_VERSION)
	var want []string
	for _, tool := range m.Tools {
		want = append(want, tool.Name)
	}
	if got := listTools(t, c); !slices.Equal(slices.Sorted(slices.Values(got)), slices.Sorted(slices.Values(want))) {
		t.Errorf("tools/list %v, want the manifest's %v", got, want)
	}
}

// TestPackedBundle checks the bundle pack.sh wrote and runs this machine's
// binary from it as Claude Desktop would.
func TestPackedBundle(t *testing.T) {
	bundle := releaseArtefact(t, "FILESTAGE_TEST_BUNDLE", "a bundle deploy/mcpb/pack.sh packed")
	dir := filepath.Join(t.TempDir(), "Claude Extensions", "local.mcpb.filestage")
	unzipBundle(t, bundle, dir)

	// The checked-in manifest, with the release's version.
	packed, packedData := readMCPBManifest(t, filepath.Join(dir, "manifest.json"))
	checkedIn, _ := readMCPBManifest(t, mcpbManifestPath)
	if packed.Version == "" || packed.Version == checkedIn.Version {
		t.Errorf("packed version %q: pack.sh sets the release's", packed.Version)
	}
	var a, b map[string]any
	json.Unmarshal(packedData, &a)
	checkedInData, _ := os.ReadFile(mcpbManifestPath)
	json.Unmarshal(checkedInData, &b)
	delete(a, "version")
	delete(b, "version")
	if ja, jb := mustJSON(a), mustJSON(b); ja != jb {
		t.Errorf("the packed manifest is not %s:\n%s\nwant\n%s", mcpbManifestPath, ja, jb)
	}
	if _, err := os.Stat(filepath.Join(dir, "LICENSE")); err != nil {
		t.Errorf("no LICENSE: %v", err)
	}
	for target, bin := range mcpbBinaries {
		checkBinary(t, filepath.Join(dir, filepath.FromSlash(bin)), target)
	}

	bin, ok := mcpbBinaryFor(runtime.GOOS, runtime.GOARCH)
	if !ok {
		t.Skipf("the bundle has no binary for %s/%s to run", runtime.GOOS, runtime.GOARCH)
	}
	root, root2, outside, home := t.TempDir(), t.TempDir(), t.TempDir(), t.TempDir()
	body := []byte("Q3 figures, for Ana\n")
	os.WriteFile(filepath.Join(root, "q3 notes.txt"), body, 0o644)
	os.WriteFile(filepath.Join(root2, "q4 notes.txt"), []byte("Q4 figures\n"), 0o644)
	os.WriteFile(filepath.Join(outside, "secret.txt"), []byte("not yours"), 0o644)
	run := mcpbHostConfig(t, dir, home, map[string]any{"file_roots": []string{root, root2}})
	// Linux's launcher is named after the binaries it chooses among.
	if base := strings.TrimSuffix(dir+"/"+bin, "-"+runtime.GOARCH); run.Command != base && !slices.Contains(run.Args, base) {
		t.Errorf("the host runs %q %q, not %s", run.Command, run.Args, base)
	}
	for k, v := range run.Env {
		if strings.Contains(v, "${") {
			t.Errorf("env %s=%q left unsubstituted", k, v)
		}
	}

	// The host's environment, then the bundle's; the data directory in
	// XDG_DATA_HOME, never the person's own store.
	dataHome := t.TempDir()
	env := []string{"HOME=" + home, "XDG_DATA_HOME=" + dataHome, "FILESTAGE_DATA_DIR="}
	for _, k := range slices.Sorted(maps.Keys(run.Env)) {
		env = append(env, k+"="+run.Env[k])
	}
	logs := &syncBuffer{}
	c, err := client.NewStdioMCPClientWithOptions(run.Command, env, run.Args, mcptransport.WithCommandStderrWriter(logs))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c.Close()
		if t.Failed() {
			t.Logf("filestage's log:\n%s", logs)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	init := mcp.InitializeRequest{}
	init.Params.ProtocolVersion = mcp.LATEST_PROTOCOL_VERSION
	init.Params.ClientInfo = mcp.Implementation{Name: "claude-ai", Version: "1"}
	if _, err := c.Initialize(ctx, init); err != nil {
		t.Fatalf("initialize: %v", err)
	}
	var want []string
	for _, tool := range packed.Tools {
		want = append(want, tool.Name)
	}
	if got := listTools(t, c); !slices.Equal(slices.Sorted(slices.Values(got)), slices.Sorted(slices.Values(want))) {
		t.Errorf("tools/list %v, want the manifest's %v", got, want)
	}

	out := decode[schema.StageResponse](t, call(t, c, "stage_connector_file", map[string]any{
		"url": "file://" + filepath.ToSlash(filepath.Join(root, "q3%20notes.txt")), "toolSlug": "GMAIL_SEND_EMAIL"}))
	if out.Name != "q3 notes.txt" || out.Mimetype != "text/plain" || out.MD5 != md5hex(body) {
		t.Errorf("got %+v", out)
	}
	stored, err := os.ReadFile(filepath.Join(dataHome, "filestage", "objects", filepath.FromSlash(out.S3Key)))
	if err != nil || !bytes.Equal(stored, body) {
		t.Errorf("the local store holds %q (%v), want the file's bytes", stored, err)
	}
	if out.DownloadURL != "" {
		resp, err := http.Get(out.DownloadURL)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !bytes.Equal(got, body) {
			t.Errorf("download_url: %s %q", resp.Status, got)
		}
	}
	// The second folder chosen is readable too.
	if out := decode[schema.StageResponse](t, call(t, c, "stage_connector_file", map[string]any{
		"url": "file://" + filepath.ToSlash(filepath.Join(root2, "q4%20notes.txt")), "toolSlug": "GMAIL_SEND_EMAIL"})); out.MD5 != md5hex([]byte("Q4 figures\n")) {
		t.Errorf("the second folder's file: %+v", out)
	}
	res := call(t, c, "stage_connector_file", map[string]any{
		"url": "file://" + filepath.ToSlash(filepath.Join(outside, "secret.txt")), "toolSlug": "GMAIL_SEND_EMAIL"})
	if e := toolError(t, res); e.Slug != "SOURCE_REFUSED" {
		t.Errorf("a file outside the chosen folder: %s (%s), want SOURCE_REFUSED", e.Slug, e.Message)
	}
}

func mustJSON(v any) string {
	b, _ := json.MarshalIndent(v, "", "  ")
	return string(b)
}

// unzipBundle extracts the bundle into dir with the modes it records, as
// Claude Desktop does.
func unzipBundle(t *testing.T, bundle, dir string) {
	t.Helper()
	r, err := zip.OpenReader(bundle)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for _, f := range r.File {
		if f.FileInfo().IsDir() {
			continue
		}
		if !filepath.IsLocal(f.Name) {
			t.Fatalf("bundle entry %q escapes the bundle", f.Name)
		}
		dest := filepath.Join(dir, filepath.FromSlash(f.Name))
		if err := os.MkdirAll(filepath.Dir(dest), 0o755); err != nil {
			t.Fatal(err)
		}
		src, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		w, err := os.OpenFile(dest, os.O_CREATE|os.O_WRONLY|os.O_EXCL, f.Mode().Perm()|0o600)
		if err == nil {
			_, err = io.Copy(w, src)
			if cerr := w.Close(); err == nil {
				err = cerr
			}
		}
		src.Close()
		if err != nil {
			t.Fatal(err)
		}
	}
}

// checkBinary: the file is an executable for target, and executable on
// the systems that have the bit.
func checkBinary(t *testing.T, path, target string) {
	t.Helper()
	goos, goarch, _ := strings.Cut(target, "/")
	info, err := os.Stat(path)
	if err != nil {
		t.Errorf("%s: missing: %v", target, err)
		return
	}
	if goos != "windows" && info.Mode()&0o111 == 0 {
		t.Errorf("%s: mode %v, not executable", path, info.Mode())
	}
	var got string
	switch goos {
	case "linux":
		f, err := elf.Open(path)
		if err != nil {
			t.Errorf("%s: %v", path, err)
			return
		}
		defer f.Close()
		got = map[elf.Machine]string{elf.EM_X86_64: "amd64", elf.EM_AARCH64: "arm64"}[f.Machine]
	case "darwin":
		if f, err := macho.Open(path); err == nil {
			defer f.Close()
			got = map[macho.Cpu]string{macho.CpuAmd64: "amd64", macho.CpuArm64: "arm64"}[f.Cpu]
			break
		}
		f, err := macho.OpenFat(path)
		if err != nil {
			t.Errorf("%s: not a Mach-O binary: %v", path, err)
			return
		}
		defer f.Close()
		var cpus []string
		for _, a := range f.Arches {
			cpus = append(cpus, map[macho.Cpu]string{macho.CpuAmd64: "amd64", macho.CpuArm64: "arm64"}[a.Cpu])
		}
		slices.Sort(cpus)
		if slices.Equal(cpus, []string{"amd64", "arm64"}) {
			got = "all"
		} else {
			got = strings.Join(cpus, "+")
		}
	case "windows":
		f, err := pe.Open(path)
		if err != nil {
			t.Errorf("%s: %v", path, err)
			return
		}
		defer f.Close()
		got = map[uint16]string{pe.IMAGE_FILE_MACHINE_AMD64: "amd64", pe.IMAGE_FILE_MACHINE_ARM64: "arm64"}[f.Machine]
	}
	if got != goarch {
		t.Errorf("%s: built for %q, want %s", path, got, target)
	}
}

// mcpbHostConfig is the command line, arguments and environment that the
// mcpb package's getMcpConfigForManifest, which Claude Desktop uses, makes
// of the bundle extracted in dir with the person's settings.
func mcpbHostConfig(t *testing.T, dir, home string, settings map[string]any) mcpbServerConfig {
	t.Helper()
	pkg := filepath.Join("deploy", "mcpb")
	if _, err := os.Stat(filepath.Join(pkg, "node_modules", "@anthropic-ai", "mcpb")); err != nil {
		t.Fatalf("the mcpb package is not installed: npm ci --prefix deploy/mcpb (%v)", err)
	}
	manifest, err := os.ReadFile(filepath.Join(dir, "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	in, _ := json.Marshal(map[string]any{"manifest": json.RawMessage(manifest), "extensionPath": dir,
		"systemDirs": map[string]string{"HOME": home}, "userConfig": settings, "pathSeparator": string(filepath.Separator)})
	cmd := exec.Command("node", "--input-type=module", "-e", `
import { getMcpConfigForManifest } from "@anthropic-ai/mcpb";
let input = "";
for await (const chunk of process.stdin) input += chunk;
process.stdout.write(JSON.stringify(await getMcpConfigForManifest(JSON.parse(input)) ?? null));
`)
	cmd.Dir = pkg
	cmd.Stdin = bytes.NewReader(in)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("getMcpConfigForManifest: %v\n%s", err, stderr.String())
	}
	if stderr.Len() > 0 {
		// It warns, and substitutes nothing, where it cannot substitute.
		t.Errorf("getMcpConfigForManifest warned:\n%s", stderr.String())
	}
	var c *mcpbServerConfig
	if err := json.Unmarshal(out, &c); err != nil || c == nil {
		t.Fatalf("getMcpConfigForManifest gave %s (%v): a required setting missing?", out, err)
	}
	return *c
}

package main

// server.json is filestage's entry in the MCP Registry. Its version lives
// there alone: "version", and the OCI identifier's tag, which
// TestServerJSON holds equal to it. A release sets both to X.Y.Z in the
// commit it then tags vX.Y.Z; GoReleaser stamps the binary and tags the
// image from that git tag, without the v, so the identifier names the very
// image the release pushes, and on the tagged commit this test also holds
// the version to the tag. Publish (mcp-publisher publish) only once the
// image is pushed: the registry reads its io.modelcontextprotocol.server.name
// label to believe the image is ours.
//
// Checked here rather than with `mcp-publisher validate`, which posts the
// file to the registry and so needs the network: the schema is the
// registry's own, read from its Go module in the module cache (CI's go is
// online, so the cache is filled), and the checks repeat the rules its
// validators (internal/validators) apply beyond the schema, plus filestage's
// own. TestServerJSONChecksFail proves each check can fail.

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/filestage/filestage/config"
	"github.com/santhosh-tekuri/jsonschema/v6"
)

const (
	// registryModule's schemas and validators are what the registry runs;
	// bump it when the registry publishes a newer schema.
	registryModule = "github.com/modelcontextprotocol/registry@v1.8.9"
	serverName     = "io.github.filestage/filestage"
	imageRepo      = "ghcr.io/filestage/filestage"
	nameLabel      = "io.modelcontextprotocol.server.name"
	// dataMount is where the image keeps the local store; a container run
	// with --rm loses whatever is not on a volume.
	dataMount = "dst=/data"
)

// containerNotes add to a variable's help what differs inside the image.
var containerNotes = map[string]string{
	"FILESTAGE_DATA_DIR":   " (in the image: /data, the volume mounted at start)",
	"FILESTAGE_FILE_ROOTS": " (in the container, paths inside it: bind-mount the host folders there first, e.g. docker run -v \"$HOME/Documents:/files:ro\" and /files)",
}

// envDescription is how server.json describes v: its --help text, and for
// a provider's variable, which provider reads it.
func envDescription(v config.Variable) string {
	d := v.Help
	if v.Provider != "" {
		p := "FILESTAGE_PROVIDER=" + v.Provider
		if v.Required {
			p += " (required)"
		}
		d = p + ": " + d
	}
	return d + containerNotes[v.Name]
}

// The types mirror the registry's schema field for field, so that decoding
// with DisallowUnknownFields catches a misspelt field: the schema allows
// any, and the registry's own structs silently drop it (an "isSecert"
// would publish a token as not secret).
type serverJSON struct {
	Schema      string         `json:"$schema"`
	Name        string         `json:"name"`
	Title       string         `json:"title,omitempty"`
	Description string         `json:"description"`
	Version     string         `json:"version"`
	WebsiteURL  string         `json:"websiteUrl,omitempty"`
	Repository  *sjRepository  `json:"repository,omitempty"`
	Icons       []sjIcon       `json:"icons,omitempty"`
	Packages    []sjPackage    `json:"packages,omitempty"`
	Remotes     []sjTransport  `json:"remotes,omitempty"`
	Meta        map[string]any `json:"_meta,omitempty"`
}

type sjRepository struct {
	URL       string `json:"url"`
	Source    string `json:"source"`
	ID        string `json:"id,omitempty"`
	Subfolder string `json:"subfolder,omitempty"`
}

type sjIcon struct {
	Src      string   `json:"src"`
	MimeType string   `json:"mimeType,omitempty"`
	Sizes    []string `json:"sizes,omitempty"`
	Theme    string   `json:"theme,omitempty"`
}

type sjPackage struct {
	RegistryType         string       `json:"registryType"`
	RegistryBaseURL      string       `json:"registryBaseUrl,omitempty"`
	Identifier           string       `json:"identifier"`
	Version              string       `json:"version,omitempty"`
	FileSHA256           string       `json:"fileSha256,omitempty"`
	RuntimeHint          string       `json:"runtimeHint,omitempty"`
	Transport            sjTransport  `json:"transport"`
	RuntimeArguments     []sjArgument `json:"runtimeArguments,omitempty"`
	PackageArguments     []sjArgument `json:"packageArguments,omitempty"`
	EnvironmentVariables []sjKeyValue `json:"environmentVariables,omitempty"`
}

type sjTransport struct {
	Type      string             `json:"type"`
	URL       string             `json:"url,omitempty"`
	Headers   []sjKeyValue       `json:"headers,omitempty"`
	Variables map[string]sjInput `json:"variables,omitempty"`
}

// sjInput's booleans are pointers so that an explicit false survives
// UPDATE_GOLDEN's rewrite, and so that a check can tell it from a missing one.
type sjInput struct {
	Description string             `json:"description,omitempty"`
	Format      string             `json:"format,omitempty"`
	IsRequired  *bool              `json:"isRequired,omitempty"`
	IsSecret    *bool              `json:"isSecret,omitempty"`
	Value       string             `json:"value,omitempty"`
	Default     string             `json:"default,omitempty"`
	Placeholder string             `json:"placeholder,omitempty"`
	Choices     []string           `json:"choices,omitempty"`
	Variables   map[string]sjInput `json:"variables,omitempty"`
}

type sjKeyValue struct {
	Name string `json:"name"`
	sjInput
}

type sjArgument struct {
	Type       string `json:"type"`
	Name       string `json:"name,omitempty"`
	ValueHint  string `json:"valueHint,omitempty"`
	IsRepeated *bool  `json:"isRepeated,omitempty"`
	sjInput
}

func isTrue(b *bool) bool { return b != nil && *b }

// registrySchemas are the registry module's dated schemas, by $id, and the
// $id of the newest.
type registrySchemas struct {
	files  map[string]string
	newest string
}

// loadRegistrySchemas finds the registry module in the module cache
// (downloading it if need be) and lists its schemas.
func loadRegistrySchemas(t *testing.T) registrySchemas {
	t.Helper()
	// go test puts its own GOROOT/bin first in PATH: this is the go that
	// runs the test, and its module cache.
	cmd := exec.Command("go", "mod", "download", "-json", registryModule)
	// Outside this module, so that go.mod and go.sum are neither read nor
	// written: the registry is no dependency of filestage.
	cmd.Dir = t.TempDir()
	out, err := cmd.Output()
	var mod struct{ Dir, Error string }
	if jerr := json.Unmarshal(out, &mod); err != nil || jerr != nil || mod.Dir == "" {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		if os.Getenv("CI") != "true" {
			// The README's test command passes on a machine that is
			// offline and has never fetched the registry's module.
			t.Skipf("go mod download %s: %v %s %s\nit needs the module proxy once, to fill the module cache", registryModule, err, mod.Error, stderr)
		}
		t.Fatalf("go mod download %s: %v %s %s", registryModule, err, mod.Error, stderr)
	}
	dir := filepath.Join(mod.Dir, "internal", "validators", "schemas")
	names, err := filepath.Glob(filepath.Join(dir, "[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9].json"))
	if err != nil || len(names) == 0 {
		t.Fatalf("no dated schemas in %s (%v): has the registry moved them?", dir, err)
	}
	slices.Sort(names) // dated names sort by date
	s := registrySchemas{files: map[string]string{}}
	for _, name := range names {
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		var doc struct {
			ID string `json:"$id"`
		}
		if err := json.Unmarshal(b, &doc); err != nil || doc.ID == "" {
			t.Fatalf("%s: no $id (%v)", name, err)
		}
		s.files[doc.ID], s.newest = name, doc.ID
	}
	return s
}

// compile compiles the schema whose $id is id.
func (s registrySchemas) compile(t *testing.T, id string) *jsonschema.Schema {
	t.Helper()
	file, ok := s.files[id]
	if !ok {
		t.Fatalf("$schema %q is none of the registry's schemas (%s has %v)", id, registryModule, slices.Sorted(maps.Keys(s.files)))
	}
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	doc, err := jsonschema.UnmarshalJSON(f)
	if err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource(id, doc); err != nil {
		t.Fatal(err)
	}
	sch, err := c.Compile(id)
	if err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	return sch
}

func schemaOf(t *testing.T, data []byte) string {
	t.Helper()
	var doc struct {
		Schema string `json:"$schema"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatalf("server.json: %v", err)
	}
	return doc.Schema
}

// TestServerJSON: server.json passes the registry's schema and rules, lists
// every variable config.Variables() names as it describes it (UPDATE_GOLDEN=true
// rewrites environmentVariables from it, keeping each entry's format and
// choices), and names the image the release builds.
func TestServerJSON(t *testing.T) {
	schemas := loadRegistrySchemas(t)
	data, err := os.ReadFile("server.json")
	if err != nil {
		t.Fatal(err)
	}
	s, err := decodeServerJSON(data)
	if err != nil {
		t.Fatalf("server.json: %v", err)
	}
	golden := encodeServerJSON(withEnvironment(s))
	if os.Getenv("UPDATE_GOLDEN") == "true" && !bytes.Equal(golden, data) {
		if err := os.WriteFile("server.json", golden, 0o644); err != nil {
			t.Fatal(err)
		}
		data = golden
	}
	if !bytes.Equal(golden, data) {
		t.Errorf("server.json is not as UPDATE_GOLDEN=true go test -run TestServerJSON . writes it (environmentVariables from config.Variables(), two-space indent); first difference:\n%s", firstDifference(data, golden))
	}
	if s.Name != serverName {
		t.Errorf("name %q: want %q; the registry would list a new server under it, apart from the published versions", s.Name, serverName)
	}
	sch := schemas.compile(t, schemaOf(t, data))
	for _, err := range checkServerJSON(data, sch, schemas.newest) {
		t.Error(err)
	}

	t.Run("release tag", func(t *testing.T) {
		out, err := exec.Command("git", "tag", "--points-at", "HEAD").Output()
		if err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("git tag --points-at HEAD: %v", err)
			}
			t.Skipf("not a git checkout: %v", err)
		}
		for _, tag := range strings.Fields(string(out)) {
			if semverRE.MatchString(strings.TrimPrefix(tag, "v")) && strings.TrimPrefix(tag, "v") != s.Version {
				t.Errorf("HEAD is tagged %s but server.json's version is %q: the release would publish the wrong version", tag, s.Version)
			}
		}
	})

	t.Run("Containerfile label", func(t *testing.T) {
		cf, err := os.ReadFile("Containerfile")
		if err != nil {
			t.Fatal(err)
		}
		if err := checkContainerfile(string(cf), s.Name); err != nil {
			t.Error(err)
		}
	})
}

// TestServerJSONChecksFail: each check fails on a server.json broken the
// way it guards against, so that a check that can never fail is noticed.
func TestServerJSONChecksFail(t *testing.T) {
	schemas := loadRegistrySchemas(t)
	good, err := os.ReadFile("server.json")
	if err != nil {
		t.Fatal(err)
	}
	sch := schemas.compile(t, schemas.newest)
	if errs := checkServerJSON(good, sch, schemas.newest); len(errs) > 0 {
		t.Fatalf("server.json itself fails (TestServerJSON says why): %v", errs)
	}
	set := func(path string, v any) func(map[string]any) {
		return func(m map[string]any) { setPath(m, path, v) }
	}
	del := func(path string) func(map[string]any) {
		return func(m map[string]any) { deletePath(m, path) }
	}
	for _, tt := range []struct {
		name   string
		mutate func(map[string]any)
		want   string
	}{
		{"secret not marked secret", set("packages.0.environmentVariables.AWS_SECRET_ACCESS_KEY.isSecret", false), "AWS_SECRET_ACCESS_KEY: isSecret"},
		{"secret without isSecret", del("packages.0.environmentVariables.COMPOSIO_API_KEY.isSecret"), "COMPOSIO_API_KEY: isSecret"},
		{"not a secret marked secret", set("packages.0.environmentVariables.FILESTAGE_LISTEN.isSecret", true), "FILESTAGE_LISTEN: isSecret"},
		{"secret with a default", set("packages.0.environmentVariables.FILESTAGE_AUTH_TOKEN.default", "changeme"), "FILESTAGE_AUTH_TOKEN: a secret"},
		{"misspelt field", func(m map[string]any) {
			e := envEntry(m, "QUANT_API_TOKEN")
			e["isSecert"] = e["isSecret"]
			delete(e, "isSecret")
		}, `unknown field "isSecert"`},
		{"name without a namespace", set("name", "filestage"), "does not match pattern"},
		{"name with two slashes", set("name", "io.github.filestage/filestage/mcp"), "does not match pattern"},
		{"name outside the GitHub namespace", set("name", "com.example/filestage"), "io.github.filestage/"},
		{"name ending in a dot", set("name", "io.github.filestage/filestage."), "registry's name format"},
		{"unknown package transport", set("packages.0.transport.type", "websocket"), `transport "websocket"`},
		{"stdio with a URL", set("packages.0.transport.url", "https://example.com/mcp"), "stdio takes no url"},
		{"unknown remote transport", set("remotes.0.type", "websocket"), `remote transport "websocket"`},
		{"missing variable", func(m map[string]any) {
			pkg := getPath(m, "packages.0").(map[string]any)
			envs := pkg["environmentVariables"].([]any)
			pkg["environmentVariables"] = slices.DeleteFunc(envs, func(e any) bool { return e.(map[string]any)["name"] == "FILESTAGE_FILE_ROOTS" })
		}, "missing FILESTAGE_FILE_ROOTS"},
		{"unknown variable", func(m map[string]any) {
			pkg := getPath(m, "packages.0").(map[string]any)
			pkg["environmentVariables"] = append(pkg["environmentVariables"].([]any), map[string]any{"name": "FILESTAGE_NOPE", "description": "x", "isRequired": false, "isSecret": false})
		}, "FILESTAGE_NOPE, which filestage does not read"},
		{"description not the help", set("packages.0.environmentVariables.FILESTAGE_MAX_BYTES.description", "size"), "FILESTAGE_MAX_BYTES: description"},
		{"optional variable required", set("packages.0.environmentVariables.FILESTAGE_S3_BUCKET.isRequired", true), "FILESTAGE_S3_BUCKET: isRequired"},
		{"provider choices drifted", set("packages.0.environmentVariables.FILESTAGE_PROVIDER.choices", []any{"local", "s3"}), "FILESTAGE_PROVIDER: choices"},
		{"version on the OCI package", set("packages.0.version", "0.1.0"), "must not have version"},
		{"tag is not the version", set("version", "0.2.0"), "identifier"},
		{"version range", set("version", "^0.1.0"), "semantic version"},
		{"version latest", set("version", "latest"), "semantic version"},
		{"image elsewhere", set("packages.0.identifier", "docker.io/filestage/filestage:0.1.0"), imageRepo},
		{"no data volume", del("packages.0.runtimeArguments"), "dst=/data"},
		{"argument variable undefined", set("packages.0.runtimeArguments.0.value", "type=volume,src={vol},dst=/data"), "{vol}"},
		{"remote over http", set("remotes.0.url", "http://{host}/mcp"), "https"},
		{"remote on localhost", set("remotes.0.url", "https://localhost/mcp"), "localhost"},
		{"remote URL variable undefined", set("remotes.0.url", "https://{hostname}/mcp"), "{hostname}"},
		{"remote not at /mcp", set("remotes.0.url", "https://{host}/sse"), "/mcp"},
		{"bearer token not secret", set("remotes.0.headers.Authorization.variables.token.isSecret", false), "token: isSecret"},
		{"Authorization header not secret", set("remotes.0.headers.Authorization.isSecret", false), "Authorization: isSecret"},
		{"old schema", set("$schema", "https://static.modelcontextprotocol.io/schemas/2025-10-17/server.schema.json"), "newest"},
		{"description too long", set("description", strings.Repeat("x", 101)), "maxLength"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var m map[string]any
			if err := json.Unmarshal(good, &m); err != nil {
				t.Fatal(err)
			}
			tt.mutate(m)
			bad, err := json.Marshal(m)
			if err != nil {
				t.Fatal(err)
			}
			errs := checkServerJSON(bad, sch, schemas.newest)
			if len(errs) == 0 {
				t.Fatal("passed the checks")
			}
			all := errors.Join(errs...).Error()
			if !strings.Contains(all, tt.want) {
				t.Errorf("failed, but no error says %q:\n%s", tt.want, all)
			}
			t.Log(all)
		})
	}

	for _, tt := range []struct{ name, containerfile, want string }{
		{"no label", "FROM scratch\nENV FILESTAGE_DATA_DIR=/data\n", "no LABEL " + nameLabel},
		{"another name", "FROM scratch\nENV FILESTAGE_DATA_DIR=/data\nLABEL " + nameLabel + "=\"io.github.someone/else\"\n", "io.github.someone/else"},
		{"data elsewhere", "FROM scratch\nENV FILESTAGE_DATA_DIR=/var/lib/filestage\nVOLUME /data\nLABEL " + nameLabel + "=" + serverName + "\n", "FILESTAGE_DATA_DIR=/data"},
	} {
		t.Run("Containerfile "+tt.name, func(t *testing.T) {
			err := checkContainerfile(tt.containerfile, serverName)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want an error saying %q", err, tt.want)
			}
		})
	}
	if err := checkContainerfile("FROM scratch\nENV FILESTAGE_DATA_DIR=/data\nLABEL org.opencontainers.image.title=filestage \\\n  "+nameLabel+"=\""+serverName+"\"\n", serverName); err != nil {
		t.Errorf("a correct Containerfile: %v", err)
	}
}

func decodeServerJSON(data []byte) (serverJSON, error) {
	var s serverJSON
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		return s, fmt.Errorf("%w: the registry drops fields its schema does not name, so a misspelt one is lost without a word", err)
	}
	return s, nil
}

func encodeServerJSON(s serverJSON) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(s); err != nil {
		panic(err) // only plain types: cannot fail
	}
	return b.Bytes()
}

// withEnvironment is s with its OCI packages' environmentVariables made from
// config.Variables(), in its order; each entry keeps what the list cannot say
// (format, choices).
func withEnvironment(s serverJSON) serverJSON {
	s.Packages = slices.Clone(s.Packages)
	for i, p := range s.Packages {
		if p.RegistryType != "oci" {
			continue
		}
		old := map[string]sjKeyValue{}
		for _, e := range p.EnvironmentVariables {
			old[e.Name] = e
		}
		var envs []sjKeyValue
		for _, v := range config.Variables() {
			e := old[v.Name]
			e.Name, e.Description = v.Name, envDescription(v)
			e.IsRequired, e.IsSecret = new(false), new(v.Secret)
			envs = append(envs, e)
		}
		s.Packages[i].EnvironmentVariables = envs
	}
	return s
}

func firstDifference(a, b []byte) string {
	as, bs := bufio.NewScanner(bytes.NewReader(a)), bufio.NewScanner(bytes.NewReader(b))
	for n := 1; ; n++ {
		okA, okB := as.Scan(), bs.Scan()
		if !okA && !okB {
			return "(none by line)"
		}
		if as.Text() != bs.Text() || okA != okB {
			return fmt.Sprintf("line %d: have %q, want %q", n, as.Text(), bs.Text())
		}
	}
}

var (
	// The registry's server name format (validators.go), stricter than the
	// schema's pattern: each part starts and ends alphanumeric.
	registryNameRE = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9.-]*[a-zA-Z0-9]/[a-zA-Z0-9][a-zA-Z0-9._-]*[a-zA-Z0-9]$`)
	// Semantic versioning 2.0.0, without a v: what GoReleaser's .Version is,
	// and what the registry orders versions by (others "may not sort
	// predictably"), so no range and no "latest" either.
	semverRE     = regexp.MustCompile(`^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$`)
	githubRepoRE = regexp.MustCompile(`^https://github\.com/([\w.-]+)/([\w.-]+)$`)
	templateRE   = regexp.MustCompile(`\{([^}]+)\}`)
)

// checkServerJSON checks data against the registry's schema sch, the rules
// its validators add, and filestage's own; newest is the newest schema's $id.
func checkServerJSON(data []byte, sch *jsonschema.Schema, newest string) []error {
	var errs []error
	fail := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if !utf8.Valid(data) {
		fail("server.json: not UTF-8, which the registry refuses")
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		return append(errs, fmt.Errorf("server.json: %w", err))
	}
	if err := sch.Validate(inst); err != nil {
		fail("the registry's schema: %v", err)
	}
	s, err := decodeServerJSON(data)
	if err != nil {
		return append(errs, err)
	}
	if s.Schema != newest {
		fail("$schema %s: want the newest schema %s can check, %s (the registry warns about any other)", s.Schema, registryModule, newest)
	}

	if !registryNameRE.MatchString(s.Name) {
		fail("name %q: not in the registry's name format, namespace/name, each starting and ending with a letter or digit", s.Name)
	}
	if s.Repository == nil || s.Repository.Source != "github" || !githubRepoRE.MatchString(s.Repository.URL) {
		fail("repository: want {\"url\": \"https://github.com/OWNER/REPO\", \"source\": \"github\"}")
	} else if owner := githubRepoRE.FindStringSubmatch(s.Repository.URL)[1]; !strings.HasPrefix(s.Name, "io.github."+owner+"/") {
		fail("name %q: signing in with GitHub as %s lets one publish io.github.%s/* only", s.Name, owner, owner)
	}
	if !semverRE.MatchString(s.Version) {
		fail("version %q: want a semantic version without a v (GoReleaser's .Version), not a range or latest", s.Version)
	}

	if len(s.Packages) != 1 {
		fail("packages: want one, the OCI image; got %d", len(s.Packages))
	}
	for i, p := range s.Packages {
		errs = append(errs, checkOCIPackage(fmt.Sprintf("packages[%d]", i), p, s.Version)...)
	}
	if len(s.Remotes) != 1 {
		fail("remotes: want one, streamable HTTP; got %d", len(s.Remotes))
	}
	for i, r := range s.Remotes {
		errs = append(errs, checkRemote(fmt.Sprintf("remotes[%d]", i), r)...)
	}
	return errs
}

func checkOCIPackage(where string, p sjPackage, version string) []error {
	var errs []error
	fail := func(format string, a ...any) { errs = append(errs, fmt.Errorf(where+": "+format, a...)) }
	if p.RegistryType != "oci" {
		fail("registryType %q: want oci", p.RegistryType)
	}
	// The registry's publish step refuses these for OCI (registries/oci.go):
	// the reference in identifier says it all.
	for _, f := range [][2]string{{"version", p.Version}, {"registryBaseUrl", p.RegistryBaseURL}, {"fileSha256", p.FileSHA256}} {
		if f[1] != "" {
			fail("an OCI package must not have %s: the registry refuses it; the tag goes in identifier", f[0])
		}
	}
	if want := imageRepo + ":" + version; p.Identifier != want {
		fail("identifier %q: want %q, the image the release of version %s pushes", p.Identifier, want, version)
	}
	switch p.Transport.Type {
	case "stdio":
		if p.Transport.URL != "" || len(p.Transport.Headers) > 0 {
			fail("transport: stdio takes no url or headers")
		}
	default:
		fail("transport %q: want stdio, what the image's default command serves", p.Transport.Type)
	}
	if len(p.RuntimeArguments) > 0 && p.RuntimeHint != "docker" {
		fail("runtimeHint %q: want docker, which runtimeArguments are for", p.RuntimeHint)
	}
	mounted := false
	for i, a := range append(slices.Clone(p.RuntimeArguments), p.PackageArguments...) {
		errs = append(errs, checkArgument(fmt.Sprintf("%s argument %d", where, i), a)...)
		mounted = mounted || (a.Name == "--mount" && strings.Contains(a.Value, dataMount))
	}
	if !mounted {
		fail("runtimeArguments: want a --mount with %s: the local store lives there, and docker run --rm drops it otherwise", dataMount)
	}
	return append(errs, checkEnvironment(where, p.EnvironmentVariables)...)
}

func checkArgument(where string, a sjArgument) []error {
	var errs []error
	fail := func(format string, a ...any) { errs = append(errs, fmt.Errorf(where+": "+format, a...)) }
	switch a.Type {
	case "named":
		// The registry's rules (validateArgument): a flag, not a usage line.
		if a.Name == "" || strings.ContainsAny(a.Name, "<>$ ") {
			fail("name %q: want a flag such as --mount", a.Name)
		}
		if (a.Value != "" && strings.HasPrefix(a.Value, a.Name)) || (a.Default != "" && strings.HasPrefix(a.Default, a.Name)) {
			fail("value or default starts with the flag %s", a.Name)
		}
	case "positional":
		if a.Value == "" && a.ValueHint == "" {
			fail("a positional argument needs a value or a valueHint")
		}
	default:
		fail("type %q: want named or positional", a.Type)
	}
	// A client leaves a {name} it cannot resolve as it is, in the command line.
	errs = append(errs, checkTemplate(where+" value", a.Value, a.Variables)...)
	return errs
}

// checkTemplate: every {name} in s is one of vars, and each of vars is used
// and described.
func checkTemplate(where, s string, vars map[string]sjInput) []error {
	var errs []error
	used := map[string]bool{}
	for _, m := range templateRE.FindAllStringSubmatch(s, -1) {
		used[m[1]] = true
		if _, ok := vars[m[1]]; !ok {
			errs = append(errs, fmt.Errorf("%s: {%s} is not among its variables, so clients leave it as it is", where, m[1]))
		}
	}
	for name, v := range vars {
		if !used[name] {
			errs = append(errs, fmt.Errorf("%s: variable %s is not used", where, name))
		}
		if v.Description == "" || v.IsRequired == nil {
			errs = append(errs, fmt.Errorf("%s: variable %s: want a description and isRequired", where, name))
		}
	}
	return errs
}

// checkEnvironment: the variables are config.Variables(), described by
// envDescription; secrets, and only they, are marked secret and have no
// default; none is required, since filestage starts with none set (the
// local provider is the default).
func checkEnvironment(where string, envs []sjKeyValue) []error {
	var errs []error
	fail := func(format string, a ...any) {
		errs = append(errs, fmt.Errorf(where+" environmentVariables: "+format, a...))
	}
	want := config.Variables()
	have := map[string]sjKeyValue{}
	var haveNames []string
	for _, e := range envs {
		if _, dup := have[e.Name]; dup {
			fail("%s twice", e.Name)
		}
		have[e.Name] = e
		haveNames = append(haveNames, e.Name)
	}
	var wantNames []string
	for _, v := range want {
		wantNames = append(wantNames, v.Name)
		e, ok := have[v.Name]
		if !ok {
			fail("missing %s (UPDATE_GOLDEN=true go test -run TestServerJSON . adds it)", v.Name)
			continue
		}
		if d := envDescription(v); e.Description != d {
			fail("%s: description %q, want %q", v.Name, e.Description, d)
		}
		if e.IsSecret == nil || *e.IsSecret != v.Secret {
			fail("%s: isSecret %s, want %t", v.Name, boolString(e.IsSecret), v.Secret)
		}
		if e.IsRequired == nil || *e.IsRequired {
			fail("%s: isRequired %s, want false: filestage starts without it", v.Name, boolString(e.IsRequired))
		}
		if v.Secret && (e.Default != "" || e.Placeholder != "") {
			fail("%s: a secret has no default or placeholder: it would be everyone's", v.Name)
		}
		if e.Value != "" {
			fail("%s: value fixes the variable for every user; leave it to them", v.Name)
		}
		if v.Name == "FILESTAGE_PROVIDER" && !slices.Equal(e.Choices, newRegistry().Names()) {
			fail("%s: choices %v, want the providers %v", v.Name, e.Choices, newRegistry().Names())
		}
		errs = append(errs, checkTemplate(where+" "+v.Name, e.Value, e.Variables)...)
	}
	for _, n := range haveNames {
		if !slices.Contains(wantNames, n) {
			fail("%s, which filestage does not read", n)
		}
	}
	if len(errs) == 0 && !slices.Equal(haveNames, wantNames) {
		fail("not in config.Variables()'s order (UPDATE_GOLDEN=true go test -run TestServerJSON . sorts them)")
	}
	return errs
}

func boolString(b *bool) string {
	if b == nil {
		return "missing"
	}
	return fmt.Sprint(*b)
}

// checkRemote: a self-hosted deployment's streamable HTTP endpoint, its host
// a variable, with the bearer token as a secret header.
func checkRemote(where string, r sjTransport) []error {
	var errs []error
	fail := func(format string, a ...any) { errs = append(errs, fmt.Errorf(where+": "+format, a...)) }
	if r.Type != "streamable-http" {
		fail("remote transport %q: want streamable-http (/sse is off in stateless deployments, and deprecated)", r.Type)
	}
	errs = append(errs, checkTemplate(where+" url", r.URL, r.Variables)...)
	// As the registry checks it (IsValidRemoteURL): with placeholders for
	// the variables, an https URL not on this machine.
	u, err := url.Parse(templateRE.ReplaceAllString(r.URL, "example.com"))
	switch {
	case err != nil:
		fail("url %q: %v", r.URL, err)
	case u.Scheme != "https":
		fail("url %q: the registry takes https remotes only", r.URL)
	case u.Hostname() == "localhost" || u.Hostname() == "127.0.0.1" || strings.HasSuffix(u.Hostname(), ".localhost"):
		fail("url %q: the registry refuses localhost remotes", r.URL)
	case u.Path != "/mcp":
		fail("url %q: filestage serves streamable HTTP at /mcp", r.URL)
	}
	bearer := false
	for _, h := range r.Headers {
		errs = append(errs, checkTemplate(where+" header "+h.Name, h.Value, h.Variables)...)
		if !strings.EqualFold(h.Name, "Authorization") {
			continue
		}
		bearer = true
		if !isTrue(h.IsSecret) {
			fail("header Authorization: isSecret %s, want true: it carries the token", boolString(h.IsSecret))
		}
		if isTrue(h.IsRequired) {
			fail("header Authorization: isRequired, but OAuth 2.1 clients need none")
		}
		for name, v := range h.Variables {
			if !isTrue(v.IsSecret) {
				fail("header Authorization variable %s: isSecret %s, want true", name, boolString(v.IsSecret))
			}
		}
		if !strings.HasPrefix(h.Value, "Bearer {") {
			fail("header Authorization: value %q, want Bearer {token}", h.Value)
		}
	}
	if !bearer {
		fail("want an Authorization header for bearer tokens")
	}
	return errs
}

var labelRE = regexp.MustCompile(regexp.QuoteMeta(nameLabel) + `\s*=\s*(?:"([^"]*)"|'([^']*)'|(\S+))`)

var dataDirRE = regexp.MustCompile(`(?m)^ENV\b.*\bFILESTAGE_DATA_DIR[= ]"?/data"?(\s|$)`)

// checkContainerfile: the image carries the label the registry checks the
// OCI package's ownership by, naming server.json's server, and keeps its
// local store in /data, where server.json mounts the volume.
func checkContainerfile(cf, name string) error {
	ms := labelRE.FindAllStringSubmatch(cf, -1)
	if len(ms) == 0 {
		return fmt.Errorf("Containerfile: no LABEL %s=%q: the registry refuses the OCI package without it", nameLabel, name)
	}
	for _, m := range ms {
		if got := m[1] + m[2] + m[3]; got != name {
			return fmt.Errorf("Containerfile: LABEL %s=%q, but server.json's name is %q: the registry refuses the OCI package", nameLabel, got, name)
		}
	}
	if !dataDirRE.MatchString(cf) {
		return fmt.Errorf("Containerfile: no ENV FILESTAGE_DATA_DIR=/data, where server.json mounts the local store's volume")
	}
	return nil
}

// Paths for the mutations: dot-separated keys and indexes; in
// environmentVariables and headers, an entry's name stands for its index.
func getPath(m map[string]any, path string) any {
	var cur any = m
	for _, k := range strings.Split(path, ".") {
		cur = step(cur, k)
	}
	return cur
}

func step(cur any, k string) any {
	switch c := cur.(type) {
	case map[string]any:
		return c[k]
	case []any:
		for i, e := range c {
			if fmt.Sprint(i) == k {
				return e
			}
			if em, ok := e.(map[string]any); ok && em["name"] == k {
				return e
			}
		}
	}
	panic("no " + k)
}

func setPath(m map[string]any, path string, v any) {
	parent, last := splitPath(path)
	target := m
	if parent != "" {
		target = getPath(m, parent).(map[string]any)
	}
	target[last] = v
}

func deletePath(m map[string]any, path string) {
	parent, last := splitPath(path)
	target := m
	if parent != "" {
		target = getPath(m, parent).(map[string]any)
	}
	delete(target, last)
}

func splitPath(path string) (string, string) {
	i := strings.LastIndex(path, ".")
	if i < 0 {
		return "", path
	}
	return path[:i], path[i+1:]
}

func envEntry(m map[string]any, name string) map[string]any {
	return getPath(m, "packages.0.environmentVariables."+name).(map[string]any)
}

package deploy

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/filestage/filestage/auth"
	"github.com/filestage/filestage/internal/benchproc"
)

// noTokenHere says, for the golden cases whose pod accepts no token this
// test can hold, why the authenticated MCP call is skipped. A case not
// named here must yield one (from the chart's Secret or a made-up one).
var noTokenHere = map[string]string{
	"oauth-ingress-hpa": "an OAuth access token is only good once the issuer's keys or introspection endpoint " +
		"vouch for it, and auth.example.com is not reachable here (filestage starts without it: it fetches " +
		"nothing from an issuer until a token arrives)",
}

// clientTokens are the tokens whose hashes a golden case's own tokens
// file holds.
var clientTokens = map[string][]string{
	"local-shared": {"fst_podTestAcme0123456789abcdefABCDEF0123456789"},
}

// madeUpClientToken is the one client of a tokens file made up for a
// Secret the chart does not render: the file holds its hash, as
// 'filestage token new' would write it.
const madeUpClientToken = "fst_madeUpClientToken0123456789abcdefABCDEF0123"

const mcpInitialize = `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"pod_test","version":"1"}}}`

// TestChartPodRuns runs the container of each golden case's Deployment as
// the kubelet would, without Kubernetes: the real filestage binary with
// exactly the rendered args, the rendered environment (secretKeyRefs read
// from the rendered Secret), each volume mount a directory of its own, and
// the probes, the Service's ports and SIGTERM against it. The golden files
// show what the chart renders; this shows that filestage accepts it.
func TestChartPodRuns(t *testing.T) {
	helmBin := helmBinary(t)
	cases, err := filepath.Glob(filepath.Join("helm", "testdata", "*.values.yaml"))
	if err != nil || len(cases) == 0 {
		t.Fatalf("no golden cases: %v", err)
	}
	for name := range noTokenHere {
		if !slices.Contains(cases, filepath.Join("helm", "testdata", name+".values.yaml")) {
			t.Errorf("noTokenHere names %s, which is no golden case", name)
		}
	}
	bin, err := benchproc.Binary(t.Context(), "", t.TempDir(), testLog{t})
	if err != nil {
		t.Fatal(err)
	}
	for _, values := range cases {
		name := strings.TrimSuffix(filepath.Base(values), ".values.yaml")
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			out, err := helm(t, helmBin, "", "template", "filestage", chart, "--kube-version", kubeVersion, "-f", values)
			if err != nil {
				t.Fatalf("helm template: %v", err)
			}
			runPod(t, bin, decodeAll(t, out), clientTokens[name], noTokenHere[name])
		})
	}
}

// runPod starts the Deployment's container from objs and checks it serves
// as its probes, ports and Services expect, then stops it as the kubelet
// does.
func runPod(t *testing.T, bin string, objs []object, known []string, whyNoToken string) {
	secrets := map[string]map[string]string{}
	var deployments []object
	for _, o := range objs {
		switch o.Kind {
		case "Secret":
			secrets[o.Metadata.Name] = secretData(t, o)
		case "Deployment":
			deployments = append(deployments, o)
		}
	}
	if len(deployments) != 1 || len(deployments[0].Spec.Template.Spec.Containers) != 1 {
		t.Fatalf("want one Deployment with one container, got %d Deployments", len(deployments))
	}
	pod := deployments[0].Spec.Template.Spec
	c := pod.Containers[0]

	literal := map[string]string{}
	for _, e := range c.Env {
		if e.Value != nil {
			literal[e.Name] = *e.Value
		}
	}
	madeUp := func(secret, key, purpose string) string {
		t.Helper()
		v := madeUpSecret(t, purpose, literal["FILESTAGE_TOKENS_FILE"])
		t.Logf("Secret %s is not the chart's (an existing Secret): made up its key %s for %s", secret, key, purpose)
		return v
	}

	mounts := mountVolumes(t, pod, c, secrets, madeUp)

	var env []string
	var tokens []string
	// The image's own environment comes first: the pod's overrides it.
	for _, kv := range imageEnv(t) {
		env = append(env, mounts.rewrite(kv))
	}
	for _, e := range c.Env {
		var v string
		switch {
		case e.Value != nil:
			v = *e.Value
		case e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil:
			ref := e.ValueFrom.SecretKeyRef
			data, ok := secrets[ref.Name]
			if !ok {
				v = madeUp(ref.Name, ref.Key, e.Name)
				break
			}
			if v, ok = data[ref.Key]; !ok {
				t.Fatalf("%s refers to key %s, which the chart's Secret %s lacks", e.Name, ref.Key, ref.Name)
			}
		default:
			t.Fatalf("env %s: only value and valueFrom.secretKeyRef are emulated here", e.Name)
		}
		if e.Name == "FILESTAGE_AUTH_TOKEN" {
			tokens = append(tokens, v)
		}
		env = append(env, mounts.rewrite(e.Name+"="+v))
	}
	if literal["FILESTAGE_TOKENS_FILE"] != "" {
		if mounts.madeUpTokensFile {
			tokens = append(tokens, madeUpClientToken)
		} else {
			tokens = append(tokens, known...)
		}
	}

	// The Service and the probes reach filestage through the container's
	// ports: each must be one filestage listens on.
	listens := map[int]string{} // container port → variable
	for _, v := range []string{"FILESTAGE_LISTEN", "FILESTAGE_METRICS_LISTEN"} {
		if a, ok := literal[v]; ok {
			_, port, err := net.SplitHostPort(a)
			n, err2 := strconv.Atoi(port)
			if err != nil || err2 != nil {
				t.Fatalf("%s=%q is no host:port", v, a)
			}
			listens[n] = v
		}
	}
	ports := map[string]int{}
	for _, p := range c.Ports {
		if _, ok := listens[p.ContainerPort]; !ok {
			t.Errorf("container port %s (%d) is no port filestage listens on (%v)", p.Name, p.ContainerPort, listens)
		}
		if p.Name != "" {
			ports[p.Name] = p.ContainerPort
		}
	}
	probes := map[string]*probe{"readiness": c.ReadinessProbe, "liveness": c.LivenessProbe}
	probeVar := map[string]string{}
	for kind, p := range probes {
		if p == nil || p.HTTPGet == nil {
			t.Fatalf("no %s httpGet probe", kind)
		}
		if s := p.HTTPGet.Scheme; s != "" && s != "HTTP" {
			t.Errorf("%s probe scheme %s: filestage's listener is plain HTTP", kind, s)
		}
		var n int // 0: a name no container port has
		switch port := p.HTTPGet.Port.(type) {
		case string:
			n = ports[port]
		case int:
			n = port
		}
		var ok bool
		if probeVar[kind], ok = listens[n]; !ok {
			t.Fatalf("%s probe port %v resolves to %d, which filestage does not listen on (%v)", kind, p.HTTPGet.Port, n, listens)
		}
	}
	// Loopback and a port of the kernel's: the cases run side by side.
	for _, v := range listens {
		env = append(env, v+"=127.0.0.1:0")
	}

	jsonLog := literal["FILESTAGE_LOG_FORMAT"] == "json"
	started := benchproc.Started
	if jsonLog {
		started = logAddr("filestage started", true)
	}
	// The runtime's defaults, which the image's and the pod's env
	// override. /tmp is where Go puts temporary files: TMPDIR says where
	// that is here.
	uid := c.SecurityContext.RunAsUser
	if uid == nil {
		uid = pod.SecurityContext.RunAsUser
	}
	base := []string{"HOME=" + mounts.home(t, uid)}
	if tmp, ok := mounts.local("/tmp"); ok {
		base = append(base, "TMPDIR="+tmp)
	}
	// The image's entrypoint is the binary; nothing of this process's
	// environment reaches it.
	cmd := exec.Command(bin, c.Args...)
	cmd.Env = append(base, env...)
	p, err := benchproc.Start(t.Context(), cmd, filepath.Join(t.TempDir(), "filestage.log"), started)
	if err != nil {
		t.Fatalf("the pod's container does not start: %v", err)
	}
	t.Cleanup(func() {
		p.Kill()
		if t.Failed() {
			t.Logf("filestage's log:\n%s", p.Log())
		}
	})
	addrs := map[string]string{"FILESTAGE_LISTEN": p.Addr}
	if _, ok := literal["FILESTAGE_METRICS_LISTEN"]; ok {
		// Logged before the start-up line, so already there.
		m := logAddr("serving metrics", jsonLog).FindStringSubmatch(p.Log())
		if m == nil {
			t.Fatal(`FILESTAGE_METRICS_LISTEN is set, and the log has no "serving metrics" line`)
		}
		addrs["FILESTAGE_METRICS_LISTEN"] = m[1]
	}
	client := &http.Client{Timeout: 10 * time.Second}
	defer client.CloseIdleConnections()

	t.Run("probes", func(t *testing.T) {
		for kind, pr := range probes {
			req, _ := http.NewRequest(http.MethodGet, "http://"+addrs[probeVar[kind]]+pr.HTTPGet.Path, nil)
			for _, h := range pr.HTTPGet.HTTPHeaders {
				req.Header.Set(h.Name, h.Value)
			}
			if status, body := do(t, client, req); status != http.StatusOK {
				t.Errorf("%s probe GET %s on %s: %d %s", kind, pr.HTTPGet.Path, probeVar[kind], status, body)
			}
		}
	})
	if a, ok := addrs["FILESTAGE_METRICS_LISTEN"]; ok {
		t.Run("metrics", func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodGet, "http://"+a+"/metrics", nil)
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") || !strings.Contains(string(body), "# TYPE ") {
				t.Errorf("GET /metrics on the metrics port: %d %s, want Prometheus text:\n%.500s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
			}
		})
	}
	mcp := func(t *testing.T, token string) (int, string) {
		req, _ := http.NewRequest(http.MethodPost, "http://"+p.Addr+"/mcp", strings.NewReader(mcpInitialize))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		return do(t, client, req)
	}
	t.Run("mcp without a token", func(t *testing.T) {
		if status, body := mcp(t, ""); status != http.StatusUnauthorized {
			t.Errorf("initialize without a token: %d %s, want 401", status, body)
		}
	})
	// A case without a token this test can hold (noTokenHere) has its
	// authenticated calls tested elsewhere (oauth_test.go against Hydra).
	switch {
	case len(tokens) > 0 && whyNoToken != "":
		t.Errorf("the pod accepts a token this test holds, yet noTokenHere says: %s", whyNoToken)
	case len(tokens) == 0 && whyNoToken == "":
		t.Error("the pod accepts no token this test holds: say why in noTokenHere, or make one up")
	}
	for _, tok := range tokens {
		t.Run("mcp with the token", func(t *testing.T) {
			if status, body := mcp(t, tok); status != http.StatusOK || !strings.Contains(body, `"serverInfo"`) {
				t.Errorf("initialize with the configured token: %d %s, want 200 with serverInfo", status, body)
			}
		})
	}
	if issuers, ok := literal["FILESTAGE_OAUTH_ISSUER"]; ok {
		// What an MCP client reads first, and filestage serves without
		// the issuer: the chart's issuers and audience reached it.
		t.Run("oauth resource metadata", func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodGet, "http://"+p.Addr+"/.well-known/oauth-protected-resource/mcp", nil)
			status, body := do(t, client, req)
			var md struct {
				Resource             string   `json:"resource"`
				AuthorizationServers []string `json:"authorization_servers"`
			}
			json.Unmarshal([]byte(body), &md)
			want := strings.Split(issuers, ",")
			if status != http.StatusOK || !slices.Equal(md.AuthorizationServers, want) ||
				(literal["FILESTAGE_OAUTH_AUDIENCE"] != "" && md.Resource != literal["FILESTAGE_OAUTH_AUDIENCE"]) {
				t.Errorf("resource metadata: %d %s, want the issuers %v and the audience %q", status, body, want, literal["FILESTAGE_OAUTH_AUDIENCE"])
			}
		})
	}

	// The kubelet runs the preStop hook inside the grace period and sends
	// SIGTERM after it: what is left is filestage's to exit in.
	grace := 30 // Kubernetes' default
	if g := pod.TerminationGracePeriodSeconds; g != nil {
		grace = *g
	}
	preStop := 0
	if s := c.Lifecycle.PreStop.Sleep; s != nil {
		preStop = s.Seconds
	}
	client.CloseIdleConnections()
	t0 := time.Now()
	if !p.Stop(syscall.SIGTERM, time.Duration(grace-preStop)*time.Second) {
		t.Fatalf("still running %d s after SIGTERM (terminationGracePeriodSeconds %d − preStop sleep %d): the kubelet would SIGKILL it", grace-preStop, grace, preStop)
	}
	if code := p.Cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("exit code %d after SIGTERM, want 0", code)
	}
	t.Logf("exited %v after SIGTERM", time.Since(t0).Round(time.Millisecond))
	if m := regexp.MustCompile(`(?m)^.*(level=ERROR|"level":"ERROR").*$`).FindAllString(p.Log(), -1); m != nil {
		t.Errorf("errors in the log:\n%s", strings.Join(m, "\n"))
	}
	mounts.checkRootUntouched(t)
}

// mounted maps the container's volume mounts to directories here.
type mounted struct {
	mounts []podMount // longest mountPath first
	// root stands for the container's read-only root filesystem, where
	// HOME would be if no volume held it.
	root             string
	madeUpTokensFile bool
}

type podMount struct{ path, dir string }

// mountVolumes gives each volume mount a directory: an empty one for an
// emptyDir or a claim (a new pod's view of an empty volume), the keys as
// files for a Secret, read-only where the mount is.
func mountVolumes(t *testing.T, pod podSpec, c container, secrets map[string]map[string]string, madeUp func(secret, key, purpose string) string) *mounted {
	m := &mounted{root: t.TempDir()}
	for _, vm := range c.VolumeMounts {
		if vm.SubPath != "" {
			t.Fatalf("volume mount %s uses subPath, which this test does not emulate", vm.Name)
		}
		i := slices.IndexFunc(pod.Volumes, func(v volume) bool { return v.Name == vm.Name })
		if i < 0 {
			t.Fatalf("volume mount %s names no volume", vm.Name)
		}
		v := pod.Volumes[i]
		dir := t.TempDir()
		switch {
		case v.EmptyDir != nil, v.PersistentVolumeClaim != nil:
		case v.Secret != nil:
			data, ours := secrets[v.Secret.SecretName]
			items := v.Secret.Items
			if items == nil {
				if !ours {
					t.Fatalf("volume %s: Secret %s is not the chart's and names no items: which keys it holds is unknown", v.Name, v.Secret.SecretName)
				}
				for k := range data {
					items = append(items, keyPath{Key: k, Path: k})
				}
			}
			mode := os.FileMode(0o644) // the API's default
			if v.Secret.DefaultMode != nil {
				mode = os.FileMode(*v.Secret.DefaultMode)
			}
			for _, it := range items {
				podPath := path.Join(vm.MountPath, it.Path)
				val, ok := data[it.Key]
				if !ours {
					val, ok = madeUp(v.Secret.SecretName, it.Key, podPath), true
					m.madeUpTokensFile = true
				}
				if !ok {
					t.Fatalf("volume %s: the chart's Secret %s has no key %s", v.Name, v.Secret.SecretName, it.Key)
				}
				f := filepath.Join(dir, filepath.FromSlash(it.Path))
				if err := os.MkdirAll(filepath.Dir(f), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(f, []byte(val), mode); err != nil {
					t.Fatal(err)
				}
			}
		default:
			t.Fatalf("volume %s: only emptyDir, persistentVolumeClaim and secret are emulated here", v.Name)
		}
		if vm.ReadOnly {
			if err := os.Chmod(dir, 0o555); err != nil {
				t.Fatal(err)
			}
			// Before t.TempDir's removal, which needs to write in it.
			t.Cleanup(func() { os.Chmod(dir, 0o755) })
		}
		m.mounts = append(m.mounts, podMount{path: path.Clean(vm.MountPath), dir: dir})
	}
	slices.SortFunc(m.mounts, func(a, b podMount) int { return len(b.path) - len(a.path) })
	return m
}

// local is where the container's path p is here, and whether a volume
// holds it.
func (m *mounted) local(p string) (string, bool) {
	for _, mt := range m.mounts {
		if rel, ok := strings.CutPrefix(p, mt.path); ok && (rel == "" || strings.HasPrefix(rel, "/") || mt.path == "/") {
			return filepath.Join(mt.dir, filepath.FromSlash(rel)), true
		}
	}
	return "", false
}

// rewrite points a NAME=VALUE whose value is a path (or a comma-separated
// list of paths) under a mount at its directory here.
func (m *mounted) rewrite(kv string) string {
	name, value, _ := strings.Cut(kv, "=")
	parts := strings.Split(value, ",")
	for i, p := range parts {
		if !strings.HasPrefix(p, "/") {
			return kv
		}
		if l, ok := m.local(p); ok {
			parts[i] = l
		}
	}
	return name + "=" + strings.Join(parts, ",")
}

// home is the HOME the container gets: the container runtime sets it
// from the image's /etc/passwd entry for the pod's user when the image
// and pod set none; under a volume when the entry puts it there, else on
// the read-only root (here, a directory that must stay empty).
func (m *mounted) home(t *testing.T, uid *int) string {
	h := "/"
	if uid != nil {
		b, err := os.ReadFile(filepath.Join("container", "passwd"))
		if err != nil {
			t.Fatal(err)
		}
		for line := range strings.Lines(string(b)) {
			if f := strings.Split(strings.TrimSpace(line), ":"); len(f) >= 6 && f[2] == strconv.Itoa(*uid) {
				h = f[5]
			}
		}
	}
	if l, ok := m.local(h); ok {
		return l
	}
	return m.root
}

// checkRootUntouched fails when filestage wrote in the HOME that stands
// for the read-only root filesystem: in the pod that write would fail.
func (m *mounted) checkRootUntouched(t *testing.T) {
	t.Helper()
	if ents, _ := os.ReadDir(m.root); len(ents) > 0 {
		t.Errorf("filestage wrote %v in HOME, which is on the pod's read-only root filesystem", ents)
	}
}

// madeUpSecret makes up the value of a key of a Secret the chart leaves to
// the operator (auth.existingSecret, provider.existingSecret), of the
// shape the variable or file it becomes wants: purpose is the variable's
// name or the file's path in the container.
func madeUpSecret(t *testing.T, purpose, tokensFile string) string {
	t.Helper()
	switch purpose {
	case tokensFile:
		return "# made up by pod_test.go\nmade-up-client " + auth.HashToken(madeUpClientToken) + " scopes=files:stage,files:presign\n"
	case "FILESTAGE_AUTH_TOKEN":
		return "made-up-bearer-token-0123456789abcdef"
	case "AWS_ACCESS_KEY_ID":
		return "AKIAIOSFODNN7EXAMPLE" // AWS's documented example key pair
	case "AWS_SECRET_ACCESS_KEY":
		return "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
	}
	if strings.HasPrefix(purpose, "/") {
		t.Fatalf("no made-up content for %s: add one to madeUpSecret", purpose)
	}
	// API keys and tokens: an opaque string, which no provider checks
	// before its first request.
	return "made-up-" + strings.ToLower(strings.ReplaceAll(purpose, "_", "-")) + "-0123456789abcdef"
}

// imageEnv is the container image's ENV (../Containerfile), which the pod's
// env overrides.
func imageEnv(t *testing.T) []string {
	b, err := os.ReadFile(filepath.Join("..", "Containerfile"))
	if err != nil {
		t.Fatal(err)
	}
	var env []string
	for line := range strings.Lines(string(b)) {
		if rest, ok := strings.CutPrefix(line, "ENV "); ok {
			for _, kv := range strings.Fields(rest) {
				if !strings.Contains(kv, "=") {
					t.Fatalf("Containerfile: %q: only ENV NAME=VALUE is read here", line)
				}
				env = append(env, kv)
			}
		}
	}
	return env
}

// logAddr matches a log line with message msg, text or JSON, and captures
// its addr attribute.
func logAddr(msg string, json bool) *regexp.Regexp {
	q := regexp.QuoteMeta(strconv.Quote(msg))
	if json {
		return regexp.MustCompile(`"msg":` + q + `.*"addr":"([^"]+)"`)
	}
	return regexp.MustCompile(`msg=` + q + `.* addr=(\S+)`)
}

func do(t *testing.T, c *http.Client, req *http.Request) (int, string) {
	t.Helper()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func secretData(t *testing.T, o object) map[string]string {
	d := map[string]string{}
	for k, v := range o.Data {
		b, err := base64.StdEncoding.DecodeString(v)
		if err != nil {
			t.Fatalf("Secret %s: data.%s is not base64: %v", o.Metadata.Name, k, err)
		}
		d[k] = string(b)
	}
	// As the API server does: stringData wins over data.
	for k, v := range o.StringData {
		d[k] = v
	}
	return d
}

type testLog struct{ t *testing.T }

func (w testLog) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// Package deploy tests the Helm chart in helm/filestage: helm lint and
// helm template against golden files, values the chart must refuse, and
// the properties of the rendered objects that keep a deployment safe.
package deploy

import (
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"go.yaml.in/yaml/v4"
)

const chart = "helm/filestage"

// kubeVersion is the chart's lowest: golden files do not move with the
// Kubernetes version a helm release assumes by default.
const kubeVersion = "v1.30.0"

const howTo = "no helm: source .ci/helm.sh installs it (go install helm.sh/helm/v3/cmd/helm@v3.22.0)"

// helmBinary finds helm on PATH or where go install puts it; without it
// the test is skipped, or fails when CI=true, so that CI never silently
// skips the chart.
func helmBinary(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("helm"); err == nil {
		return p
	}
	for _, v := range []string{"GOBIN", "GOPATH"} {
		out, err := exec.Command("go", "env", v).Output()
		dir := strings.TrimSpace(string(out))
		if err != nil || dir == "" {
			continue
		}
		if v == "GOPATH" {
			dir = filepath.Join(filepath.SplitList(dir)[0], "bin")
		}
		if p := filepath.Join(dir, "helm"); isExecutable(p) {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal(howTo)
	}
	t.Skip(howTo)
	return ""
}

func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

// helm runs helm with a home of its own, so that no user's repositories or
// plugins change what it renders, and stdin (for -f -); it returns stdout,
// and stderr on failure.
func helm(t *testing.T, bin, stdin string, args ...string) (string, error) {
	t.Helper()
	home := t.TempDir()
	cmd := exec.Command(bin, args...)
	cmd.Stdin = strings.NewReader(stdin)
	cmd.Env = append(os.Environ(), "HELM_CONFIG_HOME="+home, "HELM_CACHE_HOME="+home, "HELM_DATA_HOME="+home)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), errors.New(err.Error() + ": " + stderr.String() + stdout.String())
	}
	return stdout.String(), nil
}

func TestChartGolden(t *testing.T) {
	bin := helmBinary(t)
	cases := []struct {
		name  string
		kinds []string // what it renders, sorted
	}{
		{"s3-token", []string{"Deployment", "PodDisruptionBudget", "Secret", "Service", "ServiceAccount"}},
		{"local-shared", []string{"Deployment", "PersistentVolumeClaim", "PodDisruptionBudget", "Secret", "Service", "ServiceAccount"}},
		{"oauth-ingress-hpa", []string{"Deployment", "HorizontalPodAutoscaler", "Ingress", "PodDisruptionBudget", "Secret", "Service", "ServiceAccount"}},
		{"metrics", []string{"Deployment", "PodDisruptionBudget", "Secret", "Service", "ServiceAccount", "ServiceMonitor"}},
		{"existing-secret", []string{"Deployment", "PodDisruptionBudget", "Service", "ServiceAccount"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			values := filepath.Join("helm", "testdata", c.name+".values.yaml")
			if out, err := helm(t, bin, "", "lint", "--strict", "--kube-version", kubeVersion, chart, "-f", values); err != nil {
				t.Fatalf("helm lint: %v\n%s", err, out)
			}
			out, err := helm(t, bin, "", "template", "filestage", chart, "--kube-version", kubeVersion, "-f", values)
			if err != nil {
				t.Fatalf("helm template: %v", err)
			}
			golden := filepath.Join("helm", "testdata", c.name+".golden.yaml")
			if os.Getenv("UPDATE_GOLDEN") == "true" {
				if err := os.WriteFile(golden, []byte(out), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (UPDATE_GOLDEN=true go test ./deploy writes it)", err)
			}
			if out != string(want) {
				t.Errorf("helm template differs from %s (UPDATE_GOLDEN=true go test ./deploy rewrites it; review the diff):\n%s", golden, lineDiff(string(want), out))
			}

			objs := decodeAll(t, out)
			var kinds []string
			for _, o := range objs {
				kinds = append(kinds, o.Kind)
			}
			slices.Sort(kinds)
			if !slices.Equal(kinds, c.kinds) {
				t.Errorf("rendered %v, want %v", kinds, c.kinds)
			}
			checkSafe(t, objs, out, secretValues(t, values))
		})
	}
}

func TestChartRefuses(t *testing.T) {
	bin := helmBinary(t)
	const s3 = "provider: {name: s3, s3: {bucket: b}}\n"
	const token = "auth: {token: t0ken}\n"
	cases := []struct {
		name, values, want string
	}{
		{"no auth", s3,
			"filestage needs authentication on a Kubernetes listener"},
		{"existingSecret without keys", s3 + "auth: {existingSecret: mine}\n",
			"filestage needs authentication"},
		{"local, 2 replicas, no ReadWriteMany claim", token + "replicaCount: 2\nprovider: {name: local}\ndataVolume: {type: pvc, pvc: {accessModes: [ReadWriteOnce]}}\n",
			"provider local with up to 2 replicas needs them all on one volume"},
		{"local, autoscaled, existing claim not said to be ReadWriteMany", token + "replicaCount: 1\nautoscaling: {enabled: true, minReplicas: 1, maxReplicas: 4}\nprovider: {name: local}\ndataVolume: {type: pvc, pvc: {existingClaim: data, accessModes: [ReadWriteOnce]}}\n",
			"provider local with up to 4 replicas needs them all on one volume"},
		{"local on an emptyDir", token + "replicaCount: 1\nprovider: {name: local}\n",
			"set dataVolume.type=pvc (an emptyDir loses them with the pod)"},
		{"grace period too short", s3 + token + "terminationGracePeriodSeconds: 40\n",
			"terminationGracePeriodSeconds (40) must be longer than preStopSleepSeconds (5) + 35 s"},
		{"grace period equal to preStop + drain", s3 + token + "preStopSleepSeconds: 10\nterminationGracePeriodSeconds: 45\n",
			"set it to at least 46"},
		{"s3 without a bucket", token,
			"provider.name is s3: set provider.s3.bucket"},
		{"spool budget below the largest file", s3 + token + "limits: {maxBytesMiB: 4096, spoolBudgetMiB: 1024}\n",
			"limits.spoolBudgetMiB (1024) is less than limits.maxBytesMiB (4096)"},
		{"introspection client without its secret", s3 + "auth: {oauth: {issuers: [https://auth.example.com], introspectionClientID: fs}}\n",
			"auth.oauth.introspectionClientID and its secret"},
		{"an unknown provider (schema)", token + "provider: {name: dropbox}\n",
			"at '/provider/name': value must be one of"},
		{"a misspelt value (schema)", s3 + token + "replicas: 3\n",
			"additional properties 'replicas' not allowed"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out, err := helm(t, bin, c.values, "template", "filestage", chart, "--kube-version", kubeVersion, "-f", "-")
			if err == nil {
				t.Fatalf("rendered; want a refusal saying %q:\n%s", c.want, out)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("refused with\n%v\nwant it to say %q", err, c.want)
			}
		})
	}
}

// object is the part of a rendered manifest the checks read.
type object struct {
	Kind     string `yaml:"kind"`
	Metadata struct {
		Name string `yaml:"name"`
	} `yaml:"metadata"`
	Data map[string]string `yaml:"data"`
	Spec struct {
		Template struct {
			Spec podSpec `yaml:"spec"`
		} `yaml:"template"`
	} `yaml:"spec"`
}

type podSpec struct {
	TerminationGracePeriodSeconds *int `yaml:"terminationGracePeriodSeconds"`
	SecurityContext               struct {
		RunAsNonRoot *bool `yaml:"runAsNonRoot"`
		RunAsUser    *int  `yaml:"runAsUser"`
		FSGroup      *int  `yaml:"fsGroup"`
	} `yaml:"securityContext"`
	Containers []container `yaml:"containers"`
	Volumes    []struct {
		Name     string `yaml:"name"`
		EmptyDir *struct {
			SizeLimit string `yaml:"sizeLimit"`
		} `yaml:"emptyDir"`
		Secret *struct {
			SecretName string `yaml:"secretName"`
		} `yaml:"secret"`
	} `yaml:"volumes"`
}

type container struct {
	Name  string   `yaml:"name"`
	Image string   `yaml:"image"`
	Args  []string `yaml:"args"`
	Env   []struct {
		Name      string  `yaml:"name"`
		Value     *string `yaml:"value"`
		ValueFrom *struct {
			SecretKeyRef *keyRef `yaml:"secretKeyRef"`
		} `yaml:"valueFrom"`
	} `yaml:"env"`
	Ports []struct {
		Name          string `yaml:"name"`
		ContainerPort int    `yaml:"containerPort"`
	} `yaml:"ports"`
	ReadinessProbe *probe `yaml:"readinessProbe"`
	LivenessProbe  *probe `yaml:"livenessProbe"`
	Lifecycle      struct {
		PreStop struct {
			Sleep *struct {
				Seconds int `yaml:"seconds"`
			} `yaml:"sleep"`
		} `yaml:"preStop"`
	} `yaml:"lifecycle"`
	SecurityContext struct {
		RunAsNonRoot             *bool `yaml:"runAsNonRoot"`
		RunAsUser                *int  `yaml:"runAsUser"`
		ReadOnlyRootFilesystem   *bool `yaml:"readOnlyRootFilesystem"`
		AllowPrivilegeEscalation *bool `yaml:"allowPrivilegeEscalation"`
		Capabilities             struct {
			Drop []string `yaml:"drop"`
		} `yaml:"capabilities"`
	} `yaml:"securityContext"`
}

type keyRef struct {
	Name string `yaml:"name"`
	Key  string `yaml:"key"`
}

type probe struct {
	Exec    any `yaml:"exec"`
	HTTPGet *struct {
		Path string `yaml:"path"`
		Port any    `yaml:"port"`
	} `yaml:"httpGet"`
}

func decodeAll(t *testing.T, manifests string) []object {
	t.Helper()
	dec := yaml.NewDecoder(strings.NewReader(manifests))
	var objs []object
	for {
		var o object
		err := dec.Decode(&o)
		if errors.Is(err, io.EOF) {
			return objs
		}
		if err != nil {
			t.Fatalf("rendered YAML: %v", err)
		}
		if o.Kind != "" {
			objs = append(objs, o)
		}
	}
}

// secretVariables are the variables whose values are secrets: each must
// come from a Secret, never from a value in the manifest.
var secretVariables = []string{
	"FILESTAGE_AUTH_TOKEN", "FILESTAGE_OAUTH_INTROSPECTION_CLIENT_SECRET",
	"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
	"COMPOSIO_API_KEY", "ALLOY_API_KEY", "RECOUP_API_KEY", "QUANT_API_TOKEN",
}

// checkSafe asserts what the golden files could hide in a diff nobody
// reads closely: the shutdown arithmetic, probes, secrets by reference,
// and a locked-down container running stateless.
func checkSafe(t *testing.T, objs []object, rendered string, secrets []string) {
	t.Helper()
	for _, s := range secrets {
		if strings.Contains(rendered, s) {
			t.Errorf("the secret value %q appears in the rendered manifests in clear", s)
		}
	}
	chartSecrets := map[string]map[string]string{}
	var deployments []object
	for _, o := range objs {
		switch o.Kind {
		case "Secret":
			chartSecrets[o.Metadata.Name] = o.Data
		case "Deployment":
			deployments = append(deployments, o)
		}
	}
	if len(deployments) != 1 {
		t.Fatalf("%d Deployments, want 1", len(deployments))
	}
	pod := deployments[0].Spec.Template.Spec
	if len(pod.Containers) != 1 {
		t.Fatalf("%d containers, want 1", len(pod.Containers))
	}
	c := pod.Containers[0]

	if !slices.Equal(c.Args, []string{"serve"}) {
		t.Errorf("args %q, want [serve]", c.Args)
	}
	preStop := 0
	if s := c.Lifecycle.PreStop.Sleep; s != nil {
		preStop = s.Seconds
	}
	if g := pod.TerminationGracePeriodSeconds; g == nil || *g <= preStop+35 {
		t.Errorf("terminationGracePeriodSeconds %v is not longer than the preStop sleep (%d s) + filestage's drain (35 s)", deref(g), preStop)
	}

	httpPort := false
	for _, p := range c.Ports {
		httpPort = httpPort || p.Name == "http" && p.ContainerPort == 8080
	}
	if !httpPort {
		t.Errorf("no container port http = 8080: %+v", c.Ports)
	}
	for name, p := range map[string]*probe{"readiness": c.ReadinessProbe, "liveness": c.LivenessProbe} {
		switch {
		case p == nil:
			t.Errorf("no %s probe", name)
		case p.Exec != nil:
			t.Errorf("%s probe is exec: the image has no shell", name)
		case p.HTTPGet == nil || p.HTTPGet.Path != "/healthz" || p.HTTPGet.Port != "http":
			t.Errorf("%s probe %+v, want GET /healthz on port http", name, p.HTTPGet)
		}
	}

	env := map[string]string{}
	for _, e := range c.Env {
		if e.Value != nil {
			env[e.Name] = *e.Value
		}
		if !slices.Contains(secretVariables, e.Name) {
			continue
		}
		var ref *keyRef
		if e.ValueFrom != nil {
			ref = e.ValueFrom.SecretKeyRef
		}
		if e.Value != nil || ref == nil {
			t.Errorf("%s is not taken from a Secret by secretKeyRef", e.Name)
			continue
		}
		if data, ok := chartSecrets[ref.Name]; ok {
			if _, ok := data[ref.Key]; !ok {
				t.Errorf("%s refers to key %q, which Secret %s does not have", e.Name, ref.Key, ref.Name)
			}
		}
	}
	for name, want := range map[string]string{"FILESTAGE_TRANSPORT": "http", "FILESTAGE_LISTEN": ":8080", "FILESTAGE_STATELESS": "true", "FILESTAGE_DATA_DIR": "/data"} {
		if env[name] != want {
			t.Errorf("%s=%q, want %q", name, env[name], want)
		}
	}
	if u := env["FILESTAGE_PUBLIC_URL"]; !strings.HasPrefix(u, "http://") && !strings.HasPrefix(u, "https://") {
		t.Errorf("FILESTAGE_PUBLIC_URL=%q, want an http(s) URL", u)
	}
	for _, v := range pod.Volumes {
		if v.Name == "data" && v.EmptyDir != nil {
			budget, limit := mib(t, env["FILESTAGE_SPOOL_BUDGET"], "MiB"), mib(t, v.EmptyDir.SizeLimit, "Mi")
			if limit <= budget {
				t.Errorf("the data emptyDir's sizeLimit (%s) is not above FILESTAGE_SPOOL_BUDGET (%s): the kubelet would evict before filestage refuses", v.EmptyDir.SizeLimit, env["FILESTAGE_SPOOL_BUDGET"])
			}
		}
	}

	sc, psc := c.SecurityContext, pod.SecurityContext
	if !isTrue(sc.RunAsNonRoot) || !isTrue(psc.RunAsNonRoot) || deref(sc.RunAsUser) != 65532 || deref(psc.FSGroup) != 65532 {
		t.Errorf("not running as the image's non-root user 65532: pod %+v, container %+v", psc, sc)
	}
	if !isTrue(sc.ReadOnlyRootFilesystem) || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation || !slices.Equal(sc.Capabilities.Drop, []string{"ALL"}) {
		t.Errorf("container not locked down (read-only root, no privilege escalation, no capabilities): %+v", sc)
	}
}

func isTrue(b *bool) bool { return b != nil && *b }

func deref(p *int) int {
	if p == nil {
		return -1
	}
	return *p
}

func mib(t *testing.T, s, unit string) int {
	t.Helper()
	n, err := strconv.Atoi(strings.TrimSuffix(s, unit))
	if err != nil || !strings.HasSuffix(s, unit) {
		t.Fatalf("%q is not a count of %s", s, unit)
	}
	return n
}

// secretValues lists the secrets a values file holds, for checking that
// none is rendered in clear (the Secret holds them base64-encoded).
func secretValues(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var v struct {
		Auth struct {
			Token      string `yaml:"token"`
			TokensFile string `yaml:"tokensFile"`
			OAuth      struct {
				IntrospectionClientSecret string `yaml:"introspectionClientSecret"`
			} `yaml:"oauth"`
		} `yaml:"auth"`
		Provider struct {
			SecretEnv map[string]string `yaml:"secretEnv"`
		} `yaml:"provider"`
	}
	if err := yaml.Unmarshal(b, &v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	var s []string
	for _, x := range []string{v.Auth.Token, v.Auth.OAuth.IntrospectionClientSecret} {
		if x != "" {
			s = append(s, x)
		}
	}
	// A tokens file holds hashes, not tokens, but is kept in the Secret all
	// the same: its lines should not show either.
	for _, line := range strings.Split(v.Auth.TokensFile, "\n") {
		if f := strings.Fields(line); len(f) > 1 {
			s = append(s, f[1])
		}
	}
	for _, x := range v.Provider.SecretEnv {
		s = append(s, x)
	}
	return s
}

// lineDiff shows the first lines where got departs from want, enough to
// see what changed without a diff tool.
func lineDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	i := 0
	for i < len(w) && i < len(g) && w[i] == g[i] {
		i++
	}
	var b strings.Builder
	b.WriteString("first difference at line " + strconv.Itoa(i+1) + "\n")
	for j := i; j < i+8 && j < max(len(w), len(g)); j++ {
		if j < len(w) {
			b.WriteString("- " + w[j] + "\n")
		}
		if j < len(g) {
			b.WriteString("+ " + g[j] + "\n")
		}
	}
	return b.String()
}

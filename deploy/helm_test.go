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
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v4"

	"github.com/filestage/filestage/config"
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
		{"metrics", []string{"Deployment", "PodDisruptionBudget", "Secret", "Service", "Service", "ServiceAccount", "ServiceMonitor"}},
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
			"terminationGracePeriodSeconds (40) must be longer than preStopSleepSeconds (5) + drainTimeoutSeconds (30) + 5 s"},
		{"grace period shorter than a longer drain", s3 + token + "drainTimeoutSeconds: 600\n",
			"set it to at least 611"},
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
		{"a secret in provider.env", token + "provider: {name: s3, s3: {bucket: b}, env: {AWS_SECRET_ACCESS_KEY: hunter2}}\n",
			"provider.env.AWS_SECRET_ACCESS_KEY is a secret, and provider.env is rendered in clear in the Deployment: set it in provider.secretEnv"},
		{"filestage's token in provider.env", "auth: {oauth: {issuers: [https://auth.example.com]}}\nprovider: {name: s3, s3: {bucket: b}, env: {FILESTAGE_AUTH_TOKEN: hunter2}}\n",
			"filestage's token goes in auth.token or auth.existingSecret"},
		{"a secret as an extraEnv value", s3 + token + "extraEnv: [{name: QUANT_API_TOKEN, value: hunter2}]\n",
			"extraEnv sets QUANT_API_TOKEN, a secret, other than from a Secret: set it in provider.secretEnv or provider.existingSecret"},
		{"a secret in extraEnv from a ConfigMap", s3 + token + "extraEnv: [{name: AWS_SESSION_TOKEN, valueFrom: {configMapKeyRef: {name: c, key: k}}}]\n",
			"extraEnv sets AWS_SESSION_TOKEN, a secret, other than from a Secret"},
		{"a memory limit GOMEMLIMIT cannot follow", s3 + token + "resources: {limits: {memory: 1G}}\n",
			"resources.limits.memory (1G): give it in Mi or Gi (e.g. 512Mi), from which the chart sets GOMEMLIMIT to goMemLimitPercent (90%) of it"},
		{"the metrics annotations' old name (schema)", s3 + token + "metrics: {enabled: true, podAnnotations: true}\n",
			"additional properties 'podAnnotations' not allowed"},
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
// object is what the tests read of a rendered object (TestChartPodRuns
// reads the most: the volumes and their mounts, a Secret's stringData).
type object struct {
	Kind       string            `yaml:"kind"`
	Metadata   metadata          `yaml:"metadata"`
	Data       map[string]string `yaml:"data"`
	StringData map[string]string `yaml:"stringData"`
	Spec       struct {
		Template struct {
			Metadata metadata `yaml:"metadata"`
			Spec     podSpec  `yaml:"spec"`
		} `yaml:"template"`
		// A Service's.
		Type  string `yaml:"type"`
		Ports []struct {
			Name       string `yaml:"name"`
			Port       int    `yaml:"port"`
			TargetPort any    `yaml:"targetPort"`
		} `yaml:"ports"`
		// A ServiceMonitor's.
		Selector struct {
			MatchLabels map[string]string `yaml:"matchLabels"`
		} `yaml:"selector"`
		Endpoints []struct {
			Port string `yaml:"port"`
		} `yaml:"endpoints"`
	} `yaml:"spec"`
}

type metadata struct {
	Name        string            `yaml:"name"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
}

type podSpec struct {
	TerminationGracePeriodSeconds *int `yaml:"terminationGracePeriodSeconds"`
	SecurityContext               struct {
		RunAsNonRoot *bool `yaml:"runAsNonRoot"`
		RunAsUser    *int  `yaml:"runAsUser"`
		FSGroup      *int  `yaml:"fsGroup"`
	} `yaml:"securityContext"`
	Containers []container `yaml:"containers"`
	Volumes    []volume    `yaml:"volumes"`
}

type volume struct {
	Name     string `yaml:"name"`
	EmptyDir *struct {
		SizeLimit string `yaml:"sizeLimit"`
	} `yaml:"emptyDir"`
	PersistentVolumeClaim any `yaml:"persistentVolumeClaim"`
	Secret                *struct {
		SecretName  string    `yaml:"secretName"`
		DefaultMode *int      `yaml:"defaultMode"`
		Items       []keyPath `yaml:"items"`
	} `yaml:"secret"`
}

type keyPath struct {
	Key  string `yaml:"key"`
	Path string `yaml:"path"`
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
	Resources struct {
		Limits map[string]string `yaml:"limits"`
	} `yaml:"resources"`
	ReadinessProbe *probe `yaml:"readinessProbe"`
	LivenessProbe  *probe `yaml:"livenessProbe"`
	Lifecycle      struct {
		PreStop struct {
			Sleep *struct {
				Seconds int `yaml:"seconds"`
			} `yaml:"sleep"`
		} `yaml:"preStop"`
	} `yaml:"lifecycle"`
	VolumeMounts []struct {
		Name      string `yaml:"name"`
		MountPath string `yaml:"mountPath"`
		SubPath   string `yaml:"subPath"`
		ReadOnly  bool   `yaml:"readOnly"`
	} `yaml:"volumeMounts"`
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
		Path        string `yaml:"path"`
		Port        any    `yaml:"port"`
		Scheme      string `yaml:"scheme"`
		HTTPHeaders []struct {
			Name  string `yaml:"name"`
			Value string `yaml:"value"`
		} `yaml:"httpHeaders"`
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
// come from a Secret, never from a value in the manifest. They are the
// Secret ones of config.Variables(), so that a credential filestage learns
// to read is held to this without anyone editing the list, and
// AWS_ACCESS_KEY_ID: not secret to filestage, but the chart keeps it in the
// Secret with its secret key (it names the IAM user, and the two rotate
// together).
var secretVariables = func() []string {
	s := []string{"AWS_ACCESS_KEY_ID"}
	for _, v := range config.Variables() {
		if v.Secret {
			s = append(s, v.Name)
		}
	}
	slices.Sort(s)
	return slices.Compact(s)
}()

// checkSafe asserts what the golden files could hide in a diff nobody
// reads closely: the shutdown arithmetic, probes, secrets by reference,
// metrics kept off any public Service, GOMEMLIMIT below the memory limit,
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
	checkMetricsPrivate(t, objs)
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
	drain := 0
	for _, e := range c.Env {
		if e.Name == "FILESTAGE_DRAIN_TIMEOUT" && e.Value != nil {
			d, err := time.ParseDuration(*e.Value)
			if err != nil {
				t.Errorf("FILESTAGE_DRAIN_TIMEOUT=%q: %v", *e.Value, err)
			}
			drain = int(d.Seconds())
		}
	}
	if drain == 0 {
		t.Error("no FILESTAGE_DRAIN_TIMEOUT: the grace period cannot be held to filestage's drain")
	}
	if g := pod.TerminationGracePeriodSeconds; g == nil || *g <= preStop+drain+5 {
		t.Errorf("terminationGracePeriodSeconds %v is not longer than the preStop sleep (%d s) + filestage's drain (%d s) + 5 s for cancelled calls", deref(g), preStop, drain)
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
	checkGoMemLimit(t, c, env)
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

// checkMetricsPrivate asserts that the unauthenticated metrics port is only
// on a ClusterIP Service of its own, which the ServiceMonitor and the
// prometheus.io annotations point at: any other Service follows
// service.type, which may publish it to the internet.
func checkMetricsPrivate(t *testing.T, objs []object) {
	t.Helper()
	isMetrics := func(o object) bool { return o.Metadata.Labels["app.kubernetes.io/component"] == "metrics" }
	for _, o := range objs {
		switch o.Kind {
		case "Service":
			for _, p := range o.Spec.Ports {
				if !isMetrics(o) && (p.Name == "metrics" || p.TargetPort == "metrics") {
					t.Errorf("Service %s (type %s) carries the unauthenticated metrics port", o.Metadata.Name, o.Spec.Type)
				}
			}
			if !isMetrics(o) {
				if a := prometheusAnnotations(o.Metadata); len(a) > 0 {
					t.Errorf("Service %s has %v: they belong on the metrics Service", o.Metadata.Name, a)
				}
				continue
			}
			if o.Spec.Type != "ClusterIP" {
				t.Errorf("metrics Service %s is %s, want ClusterIP", o.Metadata.Name, o.Spec.Type)
			}
			if !strings.HasSuffix(o.Metadata.Name, "-metrics") || len(o.Spec.Ports) != 1 || o.Spec.Ports[0].TargetPort != "metrics" {
				t.Errorf("metrics Service %s: want <fullname>-metrics with the metrics port alone: %+v", o.Metadata.Name, o.Spec.Ports)
			}
			if a := o.Metadata.Annotations; len(prometheusAnnotations(o.Metadata)) > 0 && a["prometheus.io/port"] != strconv.Itoa(o.Spec.Ports[0].Port) {
				t.Errorf("metrics Service %s: prometheus.io/port %q, its port %d", o.Metadata.Name, a["prometheus.io/port"], o.Spec.Ports[0].Port)
			}
		case "Deployment":
			if a := prometheusAnnotations(o.Spec.Template.Metadata); len(a) > 0 {
				t.Errorf("pods have %v: they belong on the metrics Service", a)
			}
		case "ServiceMonitor":
			var selected []string
			for _, s := range objs {
				if s.Kind != "Service" {
					continue
				}
				matches := true
				for k, v := range o.Spec.Selector.MatchLabels {
					matches = matches && s.Metadata.Labels[k] == v
				}
				if matches {
					if !isMetrics(s) {
						t.Errorf("ServiceMonitor %s selects Service %s, not the metrics Service", o.Metadata.Name, s.Metadata.Name)
					}
					selected = append(selected, s.Metadata.Name)
				}
			}
			if len(selected) != 1 || len(o.Spec.Endpoints) != 1 || o.Spec.Endpoints[0].Port != "metrics" {
				t.Errorf("ServiceMonitor %s selects %v on %+v, want the metrics Service on port metrics", o.Metadata.Name, selected, o.Spec.Endpoints)
			}
		}
	}
}

func prometheusAnnotations(m metadata) []string {
	var a []string
	for k := range m.Annotations {
		if strings.HasPrefix(k, "prometheus.io/") {
			a = append(a, k)
		}
	}
	return a
}

// checkGoMemLimit asserts that GOMEMLIMIT leaves the container headroom
// under its memory limit, for the memory the Go runtime does not count.
func checkGoMemLimit(t *testing.T, c container, env map[string]string) {
	t.Helper()
	limit, ok := c.Resources.Limits["memory"]
	got, set := env["GOMEMLIMIT"]
	switch {
	case !ok && set:
		t.Errorf("GOMEMLIMIT=%s without a memory limit", got)
	case !ok:
	case !set:
		t.Errorf("no GOMEMLIMIT (as a value) under the memory limit %s", limit)
	default:
		l := 0
		if strings.HasSuffix(limit, "Gi") {
			l = 1024 * mib(t, limit, "Gi")
		} else {
			l = mib(t, limit, "Mi")
		}
		if g := mib(t, got, "MiB"); g > l*95/100 || g < l/2 {
			t.Errorf("GOMEMLIMIT=%s under a memory limit of %s: want about 90%%, headroom for what the Go runtime does not count", got, limit)
		}
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

// render runs helm template on values (YAML) and extra arguments.
func render(t *testing.T, bin, values string, args ...string) (string, error) {
	t.Helper()
	return helm(t, bin, values, append([]string{"template", "filestage", chart, "--kube-version", kubeVersion, "-f", "-"}, args...)...)
}

// TestChartSecretVariables holds the chart's list of variables it refuses
// in clear to secretVariables, and renders each secret variable where it
// would be in clear: the chart must refuse every one, pointing at a Secret.
func TestChartSecretVariables(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(chart, "templates", "_helpers.tpl"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?s)define "filestage.secretVariables" -\}\}\n(.*?)\n\{\{- end`).FindSubmatch(b)
	if m == nil {
		t.Fatal(`_helpers.tpl defines no "filestage.secretVariables"`)
	}
	listed := strings.Fields(string(m[1]))
	slices.Sort(listed)
	if !slices.Equal(listed, secretVariables) {
		t.Errorf("_helpers.tpl's filestage.secretVariables is\n%v\nwant the Secret ones of config.Variables() and AWS_ACCESS_KEY_ID:\n%v", listed, secretVariables)
	}

	bin := helmBinary(t)
	const (
		auth = "auth: {oauth: {issuers: [https://auth.example.com]}}\n"
		s3   = "provider: {name: s3, s3: {bucket: b}"
	)
	for _, name := range secretVariables {
		t.Run(name, func(t *testing.T) {
			for where, values := range map[string]string{
				"provider.env": s3 + ", env: {" + name + ": hunter2}}\n",
				"extraEnv":     s3 + "}\nextraEnv: [{name: " + name + ", value: hunter2}]\n",
			} {
				out, err := render(t, bin, auth+values)
				if err == nil {
					t.Errorf("%s in %s rendered:\n%s", name, where, out)
				} else if !strings.Contains(err.Error(), name) || !strings.Contains(err.Error(), "provider.secretEnv") || !strings.Contains(err.Error(), "provider.existingSecret") {
					t.Errorf("%s in %s refused with\n%v\nwant it to name the variable, provider.secretEnv and provider.existingSecret", name, where, err)
				}
			}
		})
	}

	// By reference the chart takes them, and a variable not secret in clear.
	out, err := render(t, bin, auth+s3+", env: {AWS_REGION: eu-west-1}}\nextraEnv: [{name: AWS_SESSION_TOKEN, valueFrom: {secretKeyRef: {name: mine, key: session}}}]\n")
	if err != nil {
		t.Fatal(err)
	}
	checkSafe(t, decodeAll(t, out), out, nil)
}

// TestChartMetricsPrivate: a public main Service (LoadBalancer, NodePort)
// never carries the unauthenticated metrics port; the metrics Service stays
// ClusterIP.
func TestChartMetricsPrivate(t *testing.T) {
	bin := helmBinary(t)
	for _, typ := range []string{"LoadBalancer", "NodePort", "ClusterIP"} {
		t.Run(typ, func(t *testing.T) {
			out, err := render(t, bin, "provider: {name: s3, s3: {bucket: b}}\nauth: {token: t0ken}\nservice: {type: "+typ+"}\nmetrics: {enabled: true, serviceMonitor: {enabled: true}}\n")
			if err != nil {
				t.Fatal(err)
			}
			objs := decodeAll(t, out)
			checkSafe(t, objs, out, nil)
			services := map[string]object{}
			for _, o := range objs {
				if o.Kind == "Service" {
					services[o.Metadata.Name] = o
				}
			}
			main, ok := services["filestage"]
			if !ok || main.Spec.Type != typ || len(main.Spec.Ports) != 1 || main.Spec.Ports[0].Name != "http" {
				t.Errorf("main Service %+v, want type %s with port http alone", main.Spec, typ)
			}
			m, ok := services["filestage-metrics"]
			if !ok || m.Spec.Type != "ClusterIP" {
				t.Errorf("metrics Service %+v, want filestage-metrics of type ClusterIP", m.Spec)
			}
			if m.Metadata.Annotations["prometheus.io/scrape"] != "true" {
				t.Errorf("metrics Service annotations %v, want prometheus.io/scrape", m.Metadata.Annotations)
			}
		})
	}
}

func TestChartGoMemLimit(t *testing.T) {
	bin := helmBinary(t)
	const base = "provider: {name: s3, s3: {bucket: b}}\nauth: {token: t0ken}\n"
	for _, c := range []struct{ values, want string }{
		{"", "460MiB"}, // the default limit, 512Mi
		{"resources: {limits: {memory: 1Gi}}\n", "921MiB"},
		{"resources: {limits: {memory: 2000Mi}}\ngoMemLimitPercent: 80\n", "1600MiB"},
		{"resources: {limits: {memory: null}}\n", ""},
	} {
		out, err := render(t, bin, base+c.values)
		if err != nil {
			t.Fatalf("%s: %v", c.values, err)
		}
		objs := decodeAll(t, out)
		checkSafe(t, objs, out, nil)
		got := ""
		for _, o := range objs {
			if o.Kind != "Deployment" {
				continue
			}
			for _, e := range o.Spec.Template.Spec.Containers[0].Env {
				if e.Name == "GOMEMLIMIT" && e.Value != nil {
					got = *e.Value
				}
			}
		}
		if got != c.want {
			t.Errorf("%q: GOMEMLIMIT=%q, want %q", c.values, got, c.want)
		}
	}
}

// notes renders NOTES.txt, which helm template leaves out (and helm install
// --dry-run wants a cluster for): a copy of the chart carries it in a
// ConfigMap.
func notes(t *testing.T, bin, values string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "filestage")
	if err := os.CopyFS(dir, os.DirFS(chart)); err != nil {
		t.Fatal(err)
	}
	text, err := os.ReadFile(filepath.Join(chart, "templates", "NOTES.txt"))
	if err != nil {
		t.Fatal(err)
	}
	wrapper := `{{- define "notes-under-test" }}` + string(text) + "{{- end }}\n" +
		"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: notes\ndata:\n  notes: {{ include \"notes-under-test\" . | toJson }}\n"
	if err := os.WriteFile(filepath.Join(dir, "templates", "notes-under-test.yaml"), []byte(wrapper), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := helm(t, bin, values, "template", "filestage", dir, "--kube-version", kubeVersion, "-f", "-", "-s", "templates/notes-under-test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	objs := decodeAll(t, out)
	if len(objs) != 1 {
		t.Fatalf("%d objects, want the notes' ConfigMap", len(objs))
	}
	return objs[0].Data["notes"]
}

func TestChartNotes(t *testing.T) {
	bin := helmBinary(t)
	const s3 = "provider: {name: s3, s3: {bucket: b}}\n"
	const ingress = "ingress: {enabled: true, hosts: [{host: a.example.com, paths: [{path: /, pathType: Prefix}]}, {host: b.example.com, paths: [{path: /, pathType: Prefix}]}]"
	cases := []struct {
		name, values string
		want, not    []string
	}{
		{"ingress without TLS", s3 + "auth: {token: t0ken}\n" + ingress + ", tls: [{hosts: [a.example.com]}]}\n",
			[]string{"WARNING: ingress host b.example.com has no TLS", "in clear"},
			[]string{"host a.example.com has no TLS"}},
		{"ingress with TLS", s3 + "auth: {token: t0ken}\n" + ingress + ", tls: [{hosts: [a.example.com, b.example.com]}]}\n",
			nil, []string{"WARNING"}},
		{"LoadBalancer", s3 + "auth: {token: t0ken}\nservice: {type: LoadBalancer}\n",
			[]string{"WARNING: service.type LoadBalancer serves plain HTTP"}, nil},
		{"token from an existing Secret", s3 + "auth: {existingSecret: mine, existingSecretKeys: {token: t}}\n",
			[]string{"Secrets you manage (mine)", "rollout restart deployment/filestage"}, []string{"WARNING"}},
		{"provider key from an existing Secret", "provider: {name: quant, env: {QUANT_ORGANIZATION: o}, existingSecret: keys, existingSecretEnv: {QUANT_API_TOKEN: q}}\nauth: {token: t0ken}\n",
			[]string{"Secrets you manage (keys)", "rollout restart"}, nil},
		{"the chart's own Secret", s3 + "auth: {token: t0ken}\n",
			[]string{"get secret filestage"}, []string{"rollout restart"}},
		{"metrics", s3 + "auth: {token: t0ken}\nmetrics: {enabled: true}\n",
			[]string{"http://filestage-metrics.default.svc:9090/metrics"}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			n := notes(t, bin, c.values)
			for _, w := range c.want {
				if !strings.Contains(n, w) {
					t.Errorf("notes do not say %q:\n%s", w, n)
				}
			}
			for _, w := range c.not {
				if strings.Contains(n, w) {
					t.Errorf("notes say %q:\n%s", w, n)
				}
			}
		})
	}
}

// TestChartDocumentedCommands runs the helm commands the READMEs show as
// written (helm install as helm template, with the version a cluster would
// give), and holds every helm template the docs mention to
// --kube-version: without it helm assumes Kubernetes 1.20, which the
// chart's kubeVersion refuses.
func TestChartDocumentedCommands(t *testing.T) {
	bin := helmBinary(t)
	shell := regexp.MustCompile(`\$\([^)]*\)`)
	for _, doc := range []string{filepath.Join(chart, "README.md"), filepath.Join(chart, "values.yaml"), filepath.Join(chart, "templates", "NOTES.txt"), filepath.Join("..", "README.md")} {
		b, err := os.ReadFile(doc)
		if err != nil {
			t.Fatal(err)
		}
		text := strings.ReplaceAll(string(b), "\\\n", " ")
		for _, m := range regexp.MustCompile("helm template [^`\n]*").FindAllString(text, -1) {
			if !strings.Contains(m, "--kube-version") {
				t.Errorf("%s: %q lacks --kube-version (helm assumes 1.20 without a cluster)", doc, m)
			}
		}
		if !strings.HasSuffix(doc, ".md") {
			continue
		}
		fenced := false
		for _, line := range strings.Split(text, "\n") {
			if strings.HasPrefix(line, "```") {
				fenced = !fenced
				continue
			}
			args := strings.Fields(shell.ReplaceAllString(line, "0123456789abcdef"))
			if !fenced || len(args) < 2 || args[0] != "helm" || !slices.Contains([]string{"install", "upgrade", "template"}, args[1]) {
				continue
			}
			t.Run(doc+": "+strings.Join(args[:2], " "), func(t *testing.T) {
				run := []string{"template"}
				for _, a := range args[2:] {
					switch a {
					case "--install":
					case "deploy/helm/filestage":
						run = append(run, chart)
					default:
						run = append(run, strings.Trim(a, `'"`))
					}
				}
				if args[1] != "template" {
					run = append(run, "--kube-version", kubeVersion)
				}
				out, err := helm(t, bin, "", run...)
				if err != nil {
					t.Fatalf("%s, as written: %v", line, err)
				}
				checkSafe(t, decodeAll(t, out), out, nil)
			})
		}
	}
}

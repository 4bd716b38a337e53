package main

import (
	"bufio"
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/filestage/filestage/internal/benchproc"
	"github.com/filestage/filestage/internal/testfile"
	"github.com/filestage/filestage/providers/s3/s3test"
	"github.com/filestage/filestage/schema"
)

// scaleSources are what the workers stage: {seed} is each call's own, so
// nearly every stage uploads bytes storage has not seen, while "shared"
// names the same bytes every time, so replicas race to store one key. The
// slow one takes about 1.5 s, so that the replica the test stops has calls
// in flight. Sizes go from 64 KiB to 4 MiB.
var scaleSources = []struct{ path, mimetype string }{
	{"/src/fast/{seed}/65536/chart.png", "image/png"},
	{"/src/slow/{seed}/262144/photo.png", "image/png"},
	{"/src/fast/{seed}/1048576/report.pdf", "application/pdf"},
	{"/src/fast/shared/524288/logo.png", "image/png"},
	{"/src/fast/{seed}/4194304/archive.bin", "application/octet-stream"},
}

// scalePresignSizes are the sizes of the bytes the workers presign and PUT.
var scalePresignSizes = []int{32 << 10, 256 << 10, 1 << 20}

const (
	scaleWorkers = 6
	// scaleVictim is the replica stopped and restarted.
	scaleVictim = 0
	// scaleAfterRestart is how many MCP requests the restarted replica
	// must serve before the run ends.
	scaleAfterRestart = 12
)

// scaleGen is scaleout.mjs's gen: SHA-256 of "<seed>:<i>", end to end,
// cut to size. Both sides make the same bytes from a seed, so the test
// knows what storage should hold without node sending it anything.
func scaleGen(seed string, size int) []byte {
	out := make([]byte, 0, size+sha256.Size)
	for i := 0; len(out) < size; i++ {
		s := sha256.Sum256(fmt.Appendf(nil, "%s:%d", seed, i))
		out = append(out, s[:]...)
	}
	return out[:size]
}

// scaleSourceBody is what /src/<mode>/<seed>/<size>/<name> serves: a
// header that makes the bytes sniff as the name's type, then scaleGen.
func scaleSourceBody(seed string, size int, name string) []byte {
	head := map[string][]byte{
		".png": testfile.PNG(0),
		".pdf": []byte("%PDF-1.7\n%\xe2\xe3\xcf\xd3\n"),
	}[path.Ext(name)]
	return append(head[:len(head):len(head)], scaleGen(seed, size-len(head))...)
}

// parseScaleSource reads a source URL's path back into what it serves.
func parseScaleSource(p string) (mode, seed string, size int, name string, ok bool) {
	parts := strings.Split(strings.TrimPrefix(p, "/"), "/")
	if len(parts) != 5 || parts[0] != "src" {
		return "", "", 0, "", false
	}
	size, err := strconv.Atoi(parts[3])
	if err != nil || size <= 0 || size > 8<<20 {
		return "", "", 0, "", false
	}
	return parts[1], parts[2], size, parts[4], true
}

// newScaleSource serves the sources. A replica fetches them with a plain
// Content-Type, so that the type it reports is the one it detected.
func newScaleSource(t *testing.T) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mode, seed, size, name, ok := parseScaleSource(r.URL.Path)
		if !ok {
			http.NotFound(w, r)
			return
		}
		body := scaleSourceBody(seed, size, name)
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		if mode != "slow" {
			w.Write(body)
			return
		}
		writeSlowly(w, r, body, 10, 150*time.Millisecond)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// needHAProxy returns haproxy's path, or skips the test (fails it when
// CI=true) when it is not installed. Debian puts it in /usr/sbin, which a
// non-root PATH may lack.
func needHAProxy(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("haproxy")
	if err != nil {
		if _, serr := os.Stat("/usr/sbin/haproxy"); serr == nil {
			return "/usr/sbin/haproxy"
		}
		msg := "needs HAProxy: apt-get install haproxy (" + err.Error() + ")"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return p
}

// scaleReplica is one filestage process behind HAProxy.
type scaleReplica struct {
	*benchproc.Process
	name, addr, logPath string
}

// scaleReplicaEnv is the environment of every replica: the s3 provider on
// the test's bucket, and none of the developer's own settings.
func scaleReplicaEnv(t *testing.T, s3env map[string]string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "FILESTAGE_") && !strings.HasPrefix(kv, "AWS_") && !strings.HasPrefix(kv, "OTEL_") {
			env = append(env, kv)
		}
	}
	for k, v := range s3env {
		env = append(env, k+"="+v)
	}
	return append(env, "FILESTAGE_PROVIDER=s3", "FILESTAGE_DATA_DIR="+t.TempDir())
}

// startScaleReplica starts bin on listen. A restart asks for the address
// the replica had, which HAProxy's static configuration names; the port is
// free once the old process has exited, but an outgoing connection may
// borrow it for a moment, so a port in use is tried again.
func startScaleReplica(t *testing.T, bin string, env []string, name, listen, publicURL, logPath string) *scaleReplica {
	t.Helper()
	var err error
	for try := 0; try < 50; try++ {
		cmd := exec.Command(bin, "serve", "--transport", "http", "--listen", listen, "--stateless",
			"--allow-private-urls", "--public-url", publicURL, "--log-level", "debug")
		cmd.Env = env
		var p *benchproc.Process
		p, err = benchproc.Start(context.Background(), cmd, logPath, benchproc.Started)
		if err == nil {
			r := &scaleReplica{Process: p, name: name, addr: p.Addr, logPath: logPath}
			t.Cleanup(func() {
				if !r.Stop(syscall.SIGTERM, 35*time.Second) {
					t.Errorf("%s did not exit within 35 s of SIGTERM", r.name)
				}
			})
			return r
		}
		if !strings.Contains(err.Error(), "address already in use") {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("starting %s on %s: %v", name, listen, err)
	return nil
}

var (
	scaleMCPPost  = regexp.MustCompile(`(?m)^.* msg=http .*method=POST path=/mcp status=200 `)
	scaleStaged   = regexp.MustCompile(`(?m)^.* msg=staged `)
	scalePanic    = regexp.MustCompile(`(?m)panic|^goroutine \d+ \[`)
	scaleInFlight = regexp.MustCompile(`(?m)^filestage_tool_calls_in_flight\{tool="stage_connector_file"\} (\d+)`)
)

// scaleHAProxyConfig is HAProxy in front of the replicas, on the listener
// the test hands it as fd 3 (so its port, which the replicas' --public-url
// names, is never free for someone else to take).
//
// Retries: a request is sent again, to another replica (redispatch 1: on
// every retry), only when filestage sent nothing back. conn-failure: the
// connection was refused, as it is from the moment a stopping replica
// closes its listener until the health check notices; the request never
// left HAProxy. empty-response: the connection closed before a byte of
// answer came. In a graceful stop that is a replica closing an idle
// keep-alive connection just as HAProxy sends the next request on it (Go
// closes only connections with no request in progress, so that request was
// never read); but it is also a replica that crashed mid-call, whose call
// then runs again elsewhere, which is safe only because both tools are
// idempotent (a key is the bytes' MD5; a presign mints another URL for the
// same key): with tools that are not, leave it out. Not retried:
// response-timeout, junk-response and 5xx, where filestage may be running
// the call or has answered it; the client sees those as they are. L7
// retries need the request buffered: MCP requests are far below
// tune.bufsize.
func scaleHAProxyConfig(replicas []*scaleReplica) string {
	var b strings.Builder
	b.WriteString(`global
    log stdout format raw local0

defaults
    mode http
    log global
    log-format "request server=%b/%s status=%ST retries=%rc time_ms=%Ta %{+Q}r"
    option redispatch 1
    retries 3
    retry-on conn-failure empty-response
    timeout connect 2s
    timeout queue 5s
    timeout http-request 10s
    timeout client 60s
    timeout server 60s
    timeout check 1s

frontend mcp
    bind fd@3
    default_backend filestage

backend filestage
    balance roundrobin
    # fall 1: one refused check takes a stopping replica out (its listener
    # closes first thing on SIGTERM); rise 1: one answer brings it back.
    option httpchk GET /healthz
    http-check expect status 200
    default-server check inter 200ms fall 1 rise 1
`)
	for _, r := range replicas {
		fmt.Fprintf(&b, "    server %s %s\n", r.name, r.addr)
	}
	return b.String()
}

// startHAProxy runs HAProxy in the foreground on ln until the test ends.
func startHAProxy(t *testing.T, haproxy string, ln *net.TCPListener, config string) (logPath string) {
	t.Helper()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "haproxy.cfg")
	if err := os.WriteFile(cfg, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	lnFile, err := ln.File()
	if err != nil {
		t.Fatal(err)
	}
	defer lnFile.Close()
	// HAProxy checks the file before it runs it: a mistake here says so.
	check := exec.Command(haproxy, "-c", "-f", cfg)
	check.ExtraFiles = []*os.File{lnFile}
	if out, err := check.CombinedOutput(); err != nil {
		t.Fatalf("haproxy -c: %v\n%s\n%s", err, out, config)
	}
	logPath = filepath.Join(dir, "haproxy.log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	cmd := exec.Command(haproxy, "-f", cfg, "-db")
	cmd.Stdout, cmd.Stderr, cmd.ExtraFiles = logf, logf, []*os.File{lnFile}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			t.Logf("haproxy log:\n%s", b)
		}
	})
	// The listener queues connections until HAProxy accepts them, so the
	// first answer means it runs.
	url := "http://" + ln.Addr().String() + "/healthz"
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return logPath
			}
		}
		select {
		case <-exited:
			b, _ := os.ReadFile(logPath)
			t.Fatalf("haproxy exited at start:\n%s", b)
		default:
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(logPath)
			t.Fatalf("GET %s through haproxy: %v (status %v)\n%s", url, err, resp, b)
		}
	}
}

// scaleCall is one line of scaleout.mjs's output: one tool call.
type scaleCall struct {
	Worker   int             `json:"worker"`
	Seq      int             `json:"seq"`
	Tool     string          `json:"tool"`
	Seed     string          `json:"seed"`
	Args     json.RawMessage `json:"args"`
	At       int64           `json:"at"` // start, in Unix milliseconds
	Ms       int64           `json:"ms"`
	Attempts int             `json:"attempts"`
	Retries  []string        `json:"retries"`
	Outcome  string          `json:"outcome"`
	Error    string          `json:"error"`
	Result   json.RawMessage `json:"result"`
	Put      *struct {
		Status int    `json:"status"`
		Body   string `json:"body"`
	} `json:"put"`
	raw string
}

// scaleRun collects scaleout.mjs's lines as they come.
type scaleRun struct {
	mu    sync.Mutex
	calls []scaleCall
	bad   []string
}

func (r *scaleRun) read(stdout io.Reader) {
	lines := bufio.NewScanner(stdout)
	lines.Buffer(nil, 1<<20)
	for lines.Scan() {
		var c scaleCall
		err := json.Unmarshal(lines.Bytes(), &c)
		r.mu.Lock()
		if err != nil {
			r.bad = append(r.bad, lines.Text())
		} else {
			c.raw = lines.Text()
			r.calls = append(r.calls, c)
		}
		r.mu.Unlock()
	}
}

func (r *scaleRun) count() int { r.mu.Lock(); defer r.mu.Unlock(); return len(r.calls) }

// scaleStagesInFlight reads filestage_tool_calls_in_flight for stage calls from
// a replica's own /metrics (no token: the replicas run on loopback without
// authentication).
func scaleStagesInFlight(addr string) int {
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	m := scaleInFlight.FindSubmatch(b)
	if m == nil {
		return 0
	}
	n, _ := strconv.Atoi(string(m[1]))
	return n
}

// TestScaleOut runs three replicas of the real binary (--stateless, the
// s3 provider on versitygw) behind a real HAProxy (round robin, health
// checks on /healthz), and drives both tools through it from the official
// TypeScript SDK (interop/ts/scaleout.mjs), several clients at once. While
// they run, one replica gets SIGTERM with stage calls in flight, drains,
// exits, and is started again on its port. Every call must answer
// correctly — a descriptor whose key holds the source's bytes, a presigned
// upload that lands — or fail with a clear transport error, and rarely;
// every replica, the restarted one included, must have served calls.
func TestScaleOut(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the binary three times, HAProxy and node")
	}
	node := needNode(t)
	haproxy := needHAProxy(t)
	s3env := s3test.Env(t)
	bin := binary(t)
	began := time.Now()
	src := newScaleSource(t)

	// HAProxy's listener is opened here and handed over, so the replicas
	// can name it in --public-url before HAProxy starts.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	lbAddr := ln.Addr().String()
	env := scaleReplicaEnv(t, s3env)
	logDir := t.TempDir()
	replicas := make([]*scaleReplica, 3)
	for i := range replicas {
		name := fmt.Sprintf("r%d", i)
		replicas[i] = startScaleReplica(t, bin, env, name, "127.0.0.1:0", "http://"+lbAddr, filepath.Join(logDir, name+".log"))
	}
	haproxyLog := startHAProxy(t, haproxy, ln.(*net.TCPListener), scaleHAProxyConfig(replicas))
	// Every process's log, restarted ones too, when the test fails.
	logged := slices.Clone(replicas)
	t.Cleanup(func() {
		if t.Failed() {
			for _, r := range logged {
				t.Logf("%s log (%s):\n%s", r.name, r.addr, r.Log())
			}
		}
	})

	var sources []string
	for _, s := range scaleSources {
		sources = append(sources, src.URL+s.path)
	}
	plan, _ := json.Marshal(map[string]any{
		"workers": scaleWorkers, "sources": sources, "presignSizes": scalePresignSizes,
		"maxAttempts": 4, "retryDelayMs": 200, "callTimeoutMs": 30000, "maxSeconds": 180, // a backstop: the test ends the run by closing stdin
	})
	ctx, cancel := context.WithTimeout(context.Background(), 240*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, filepath.Join("interop", "ts", "scaleout.mjs"), "http://"+lbAddr+"/mcp", string(plan))
	cmd.WaitDelay = 5 * time.Second
	nodeStderr := &syncBuffer{}
	cmd.Stderr = nodeStderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	run := &scaleRun{}
	readDone := make(chan struct{})
	go func() { run.read(stdout); close(readDone) }()
	var nodeErr error
	nodeDone := make(chan struct{})
	go func() { <-readDone; nodeErr = cmd.Wait(); close(nodeDone) }()
	stopNode := sync.OnceFunc(func() { stdin.Close() })
	t.Cleanup(func() {
		stopNode()
		select {
		case <-nodeDone:
		case <-time.After(30 * time.Second):
			cancel()
			<-nodeDone
		}
	})

	// Stop the victim once calls have been answered and it has stage calls
	// in flight, so that the drain has work to do.
	victim := replicas[scaleVictim]
	inFlight := 0
	waitUntil(t, "calls before the stop, and stage calls in flight on "+victim.name, 30*time.Second, func() bool {
		if run.count() < 2*scaleWorkers {
			return false
		}
		inFlight = scaleStagesInFlight(victim.addr)
		return inFlight > 0
	})
	stoppedAt := time.Now()
	if !victim.Stop(syscall.SIGTERM, 35*time.Second) {
		t.Fatalf("%s did not exit within 35 s of SIGTERM", victim.name)
	}
	exitedAt := time.Now()
	if code := victim.Cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("%s exited with %d after SIGTERM, want 0", victim.name, code)
	}
	oldLog := victim.Log()

	restarted := startScaleReplica(t, bin, env, victim.name, victim.addr, "http://"+lbAddr, filepath.Join(logDir, victim.name+"-restarted.log"))
	restartedAt := time.Now()
	replicas[scaleVictim] = restarted
	logged = append(logged, restarted)
	waitUntil(t, fmt.Sprintf("%d MCP requests on the restarted %s", scaleAfterRestart, victim.name), 30*time.Second, func() bool {
		return len(scaleMCPPost.FindAllString(restarted.Log(), -1)) >= scaleAfterRestart
	})
	stopNode()
	select {
	case <-nodeDone:
		if nodeErr != nil {
			t.Fatalf("node scaleout.mjs: %v\n%s", nodeErr, nodeStderr)
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("node scaleout.mjs did not finish within 60 s of being told to\n%s", nodeStderr)
	}
	loadEnded := time.Now()
	if len(run.bad) > 0 {
		t.Errorf("scaleout.mjs wrote lines that are not JSON: %q\n%s", run.bad, nodeStderr)
	}

	// Every call, judged; what storage must hold, by key.
	want := map[string]string{} // key → MD5 hex
	var (
		counts                = map[string]int{}
		before, during, after int
		// Calls that needed the client's own retries, or failed for want
		// of an answer even so.
		helped []string
	)
	for _, c := range run.calls {
		counts[c.Tool+" "+c.Outcome]++
		if c.Attempts > 1 || c.Outcome == "transport" {
			helped = append(helped, c.raw)
		}
		switch end := time.UnixMilli(c.At + c.Ms); {
		case time.UnixMilli(c.At).Before(stoppedAt) && end.Before(stoppedAt):
			before++
		case time.UnixMilli(c.At).After(restartedAt):
			after++
		default:
			during++
		}
		switch c.Outcome {
		case "ok":
		case "transport":
			// The one failure a load-balanced client may see: no answer
			// after its own retries. It must say what happened.
			if c.Error == "" {
				t.Errorf("a transport failure without a message: %s", c.raw)
			}
			continue
		default:
			t.Errorf("%s ended %s: %s\n%s", c.Tool, c.Outcome, c.Error, c.raw)
			continue
		}
		switch c.Tool {
		case "stage_connector_file":
			checkScaleStage(t, c, want)
		case "request_presigned_upload":
			checkScalePresign(t, c, want)
		case "initialize":
		default:
			t.Errorf("unknown tool in %s", c.raw)
		}
	}
	t.Logf("%d calls in %v (%v): %v; %d before the stop, %d around it, %d after the restart; %s had %d stage calls in flight at SIGTERM, and exited %v later",
		len(run.calls), loadEnded.Sub(began).Round(time.Millisecond), time.Since(began).Round(time.Millisecond), counts,
		before, during, after, victim.name, inFlight, exitedAt.Sub(stoppedAt).Round(time.Millisecond))
	if before == 0 || during == 0 || after == 0 {
		t.Errorf("calls before the stop, around it and after the restart: %d, %d, %d; want some of each", before, during, after)
	}
	// HAProxy redispatches what never reached a replica and a stopping
	// replica finishes what did, so no call should need the client's
	// retries, let alone fail for want of an answer: a call that does means
	// one of them let it down. One is let pass (and logged), for a machine
	// so loaded that a connection breaks for reasons of its own; two are a
	// pattern.
	if n := len(helped); n > 1 {
		t.Errorf("%d of %d calls were retried by the client or failed at the transport level:\n%s", n, len(run.calls), strings.Join(helped, "\n"))
	} else {
		for _, c := range helped {
			t.Logf("retried by the client or failed at the transport level: %s", c)
		}
	}

	checkScaleStorage(t, s3env, want)

	// Every replica served calls, the restarted one after its restart;
	// the stopped one finished the stages it had in flight.
	logs := []struct{ name, log string }{{victim.name + " before the stop", oldLog}}
	for _, r := range replicas {
		logs = append(logs, struct{ name, log string }{r.name, r.Log()})
	}
	logs[1+scaleVictim].name += " after the restart"
	for _, l := range logs {
		n := len(scaleMCPPost.FindAllString(l.log, -1))
		t.Logf("%s served %d MCP requests", l.name, n)
		if n == 0 {
			t.Errorf("%s served no MCP request", l.name)
		}
		if m := scalePanic.FindString(l.log); m != "" {
			t.Errorf("%s logged %q:\n%s", l.name, m, l.log)
		}
	}
	_, drained, ok := strings.Cut(oldLog, `msg="shutting down"`)
	switch {
	case !ok:
		t.Errorf("%s did not log its shutdown:\n%s", victim.name, oldLog)
	case !scaleStaged.MatchString(drained):
		t.Errorf("%s staged nothing after SIGTERM, though it had stage calls in flight:\n%s", victim.name, drained)
	case strings.Contains(drained, "cancelling them"):
		t.Errorf("%s cancelled calls at shutdown instead of finishing them:\n%s", victim.name, drained)
	}

	// HAProxy's own account: the health check took the victim out and put
	// it back, and what it retried.
	hb, _ := os.ReadFile(haproxyLog)
	hlog := string(hb)
	for _, want := range []string{"Server filestage/" + victim.name + " is DOWN", "Server filestage/" + victim.name + " is UP"} {
		if !strings.Contains(hlog, want) {
			t.Errorf("haproxy did not log %q", want)
		}
	}
	hRetries := regexp.MustCompile(`(?m)^request .* retries=\+?[1-9].*$`).FindAllString(hlog, -1)
	t.Logf("haproxy retried %d requests", len(hRetries))
	for _, l := range hRetries {
		t.Logf("haproxy retried: %s", l)
	}
	// A 5xx from HAProxy reached the client, which retried it (counted
	// above); here it says which replica and why.
	for _, l := range regexp.MustCompile(`(?m)^request .* status=5\d\d .*$`).FindAllString(hlog, -1) {
		t.Logf("haproxy answered a 5xx: %s", l)
	}
}

// decode reads the call's arguments into args and its answer into
// result, or says why not.
func (c scaleCall) decode(t *testing.T, args, result any) bool {
	t.Helper()
	if err := json.Unmarshal(c.Args, args); err != nil {
		t.Errorf("args of %s: %v", c.raw, err)
		return false
	}
	if err := json.Unmarshal(c.Result, result); err != nil {
		t.Errorf("result of %s: %v", c.raw, err)
		return false
	}
	return true
}

// checkScaleStage checks a stage answer against the source it named, and
// notes the object storage must hold.
func checkScaleStage(t *testing.T, c scaleCall, want map[string]string) {
	t.Helper()
	var args struct {
		URL      string `json:"url"`
		ToolSlug string `json:"toolSlug"`
	}
	var got schema.StageResponse
	if !c.decode(t, &args, &got) {
		return
	}
	i := strings.Index(args.URL, "/src/")
	_, seed, size, name, ok := parseScaleSource(args.URL[max(i, 0):])
	if i < 0 || !ok {
		t.Errorf("stage of a URL the test does not serve: %s", c.raw)
		return
	}
	body := scaleSourceBody(seed, size, name)
	sum := md5hex(body)
	var mimetype string
	for _, s := range scaleSources {
		if path.Base(s.path) == name {
			mimetype = s.mimetype
		}
	}
	wantKey := "gmail/" + args.ToolSlug + "/" + sum + path.Ext(name)
	// A seed is used once, so its bytes are new to storage, unless an
	// earlier attempt of this very call stored them; the shared bytes are
	// new only to whichever call stored them first.
	types := []string{"new", "existing"}
	if seed != "shared" && c.Attempts == 1 {
		types = types[:1]
	}
	if !got.Success || got.Name != name || got.Mimetype != mimetype || got.S3Key != wantKey || got.MD5 != sum ||
		got.Size == nil || *got.Size != int64(len(body)) || !slices.Contains(types, got.Type) {
		t.Errorf("stage of %s: got %s, want name %s, mimetype %s, s3key %s, size %d, type %s",
			args.URL, c.Result, name, mimetype, wantKey, len(body), strings.Join(types, " or "))
		return
	}
	want[got.S3Key] = sum
}

// checkScalePresign checks a presign answer against what was asked, and
// that the PUT to its URL was taken.
func checkScalePresign(t *testing.T, c scaleCall, want map[string]string) {
	t.Helper()
	var args struct {
		Filename string `json:"filename"`
		Mimetype string `json:"mimetype"`
		MD5      string `json:"md5"`
		Size     int    `json:"size"`
	}
	var got schema.PresignResponse
	if !c.decode(t, &args, &got) {
		return
	}
	// The bytes node sent are the seed's: the MD5 it asked for must be
	// theirs, or storage could hold what node claimed instead of them.
	sum := md5hex(scaleGen(c.Seed, args.Size))
	if args.MD5 != sum {
		t.Errorf("scaleout.mjs asked for md5 %s for seed %s, whose bytes' MD5 is %s", args.MD5, c.Seed, sum)
		return
	}
	raw, _ := hex.DecodeString(sum)
	wantKey := "slack/SLACK_UPLOAD_FILE/" + sum + path.Ext(args.Filename)
	wantDesc := schema.Descriptor{Name: args.Filename, Mimetype: args.Mimetype, S3Key: wantKey}
	if got.Key != wantKey || got.FileUploadable != wantDesc || got.Type != "new" || got.Method != http.MethodPut ||
		got.NewPresignedURL == "" || got.Headers["Content-MD5"] != base64.StdEncoding.EncodeToString(raw) {
		t.Errorf("presign of %s: got %s, want a new PUT slot for %s with descriptor %+v", c.Seed, c.Result, wantKey, wantDesc)
		return
	}
	if c.Put == nil || c.Put.Status/100 != 2 {
		t.Errorf("PUT of %s to its presigned URL: %+v", c.Seed, c.Put)
		return
	}
	want[got.Key] = sum
}

// checkScaleStorage reads back every object a call said is stored.
func checkScaleStorage(t *testing.T, s3env map[string]string, want map[string]string) {
	t.Helper()
	c := s3test.Client(s3env)
	bucket := aws.String(s3env["FILESTAGE_S3_BUCKET"])
	keys := make(chan string)
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for key := range keys {
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				var got string
				out, err := c.GetObject(ctx, &awss3.GetObjectInput{Bucket: bucket, Key: aws.String(key)})
				if err == nil {
					h := md5.New()
					_, err = io.Copy(h, out.Body)
					out.Body.Close()
					got = hex.EncodeToString(h.Sum(nil))
				}
				cancel()
				mu.Lock()
				if err != nil {
					t.Errorf("object %s, which a call said is stored: %v", key, err)
				} else if got != want[key] {
					t.Errorf("object %s holds bytes whose MD5 is %s, want %s", key, got, want[key])
				}
				mu.Unlock()
			}
		})
	}
	for key := range want {
		keys <- key
	}
	close(keys)
	wg.Wait()
	t.Logf("%d objects in storage, each with the right bytes", len(want))
}

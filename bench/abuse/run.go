package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/filestage/filestage/internal/benchproc"
)

const token = "abuse-bench-token"

// Report is what a run measured.
type Report struct {
	Config Config
	// The good client.
	Presigns, Stages   []time.Duration
	GoodErrors         int
	FirstErrors        []string
	HealthFailures     int
	HealthChecks       int
	HealthErrors       []string
	Health             []time.Duration
	PeakRSS, PeakFDs   int64
	PeakSpool          int64
	BaseFDs, AfterFDs  int64
	AfterTemp          int
	BaseGoroutines     int
	AfterGoroutines    int
	Outcomes           map[string]map[string]int
	TrickleConnections int64
	BombBytesStored    int64
	// CPU time the server and the benchmark's own clients used during
	// the storm: on a small machine they share the processors.
	ServerCPU, ClientCPU time.Duration
}

func pct(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return s[min(len(s)-1, int(float64(len(s))*p))]
}

// Missed lists the targets the run did not meet; latency is judged only
// when asked (a small run on a busy machine says little about it).
func (r Report) Missed(latency bool) []string {
	var m []string
	if r.GoodErrors > 0 {
		m = append(m, fmt.Sprintf("the good client got %d errors: %v", r.GoodErrors, r.FirstErrors))
	}
	if len(r.Presigns) == 0 || len(r.Stages) == 0 {
		m = append(m, fmt.Sprintf("the good client made %d presigns and %d stages", len(r.Presigns), len(r.Stages)))
	}
	if p := pct(r.Presigns, 0.99); latency && p > r.Config.PresignP99 {
		m = append(m, fmt.Sprintf("presign p99 %v > %v", p, r.Config.PresignP99))
	}
	if r.PeakRSS > r.Config.MaxRSS {
		m = append(m, fmt.Sprintf("peak RSS %d MiB > %d MiB", r.PeakRSS>>20, r.Config.MaxRSS>>20))
	}
	if r.PeakSpool > r.Config.SpoolBudget {
		m = append(m, fmt.Sprintf("spool use %d > budget %d", r.PeakSpool, r.Config.SpoolBudget))
	}
	if r.HealthFailures > 0 {
		m = append(m, fmt.Sprintf("/healthz failed %d of %d times: %v", r.HealthFailures, r.HealthChecks, r.HealthErrors))
	}
	if r.AfterFDs > r.BaseFDs {
		m = append(m, fmt.Sprintf("open fds %d after the storm, %d before", r.AfterFDs, r.BaseFDs))
	}
	if r.AfterTemp > 0 {
		m = append(m, fmt.Sprintf("%d temporary files left", r.AfterTemp))
	}
	if r.AfterGoroutines > r.BaseGoroutines {
		m = append(m, fmt.Sprintf("%d goroutines after the storm, %d in a fresh server", r.AfterGoroutines, r.BaseGoroutines))
	}
	if r.BombBytesStored > 0 && r.BombBytesStored >= r.Config.BombBytes {
		m = append(m, "a gzip bomb was stored inflated")
	}
	return m
}

func (r Report) String() string {
	var b strings.Builder
	c := r.Config
	fmt.Fprintf(&b, "abuse: %v; %d tricklers, %d idle sessions, %d endless stagers, %d gzip bombers; --spool-budget %d MiB, --max-bytes %d MiB\n",
		c.Duration, c.Tricklers, c.Idlers, c.Endless, c.Bombs, c.SpoolBudget>>20, c.MaxBytes>>20)
	fmt.Fprintf(&b, "good client: %d presigns p50 %v p99 %v; %d stages of 1 MiB p50 %v p99 %v; %d errors\n",
		len(r.Presigns), pct(r.Presigns, 0.5).Round(time.Millisecond/10), pct(r.Presigns, 0.99).Round(time.Millisecond/10),
		len(r.Stages), pct(r.Stages, 0.5).Round(time.Millisecond), pct(r.Stages, 0.99).Round(time.Millisecond), r.GoodErrors)
	fmt.Fprintf(&b, "server: peak RSS %.1f MiB, peak fds %d, peak spool %.1f MiB; /healthz %d/%d answered within 5 s, p50 %v p99 %v max %v\n",
		float64(r.PeakRSS)/(1<<20), r.PeakFDs, float64(r.PeakSpool)/(1<<20), r.HealthChecks-r.HealthFailures, r.HealthChecks,
		pct(r.Health, 0.5).Round(time.Millisecond/10), pct(r.Health, 0.99).Round(time.Millisecond/10), pct(r.Health, 1).Round(time.Millisecond))
	fmt.Fprintf(&b, "after: fds %d (before %d), temporary files %d, goroutines %d (fresh server %d)\n",
		r.AfterFDs, r.BaseFDs, r.AfterTemp, r.AfterGoroutines, r.BaseGoroutines)
	fmt.Fprintf(&b, "CPU during the storm: server %v, benchmark clients and sources %v\n", r.ServerCPU.Round(time.Second/10), r.ClientCPU.Round(time.Second/10))
	fmt.Fprintf(&b, "trickling connections made: %d; a gzip bomb stored as %d bytes\n", r.TrickleConnections, r.BombBytesStored)
	for _, kind := range []string{"endless", "bomb", "idle"} {
		if o := r.Outcomes[kind]; len(o) > 0 {
			keys := make([]string, 0, len(o))
			for k := range o {
				keys = append(keys, k)
			}
			slices.Sort(keys)
			fmt.Fprintf(&b, "%s outcomes:", kind)
			for _, k := range keys {
				fmt.Fprintf(&b, " %s=%d", k, o[k])
			}
			b.WriteString("\n")
		}
	}
	return b.String()
}

// run builds or takes the binary, measures a fresh server's goroutines,
// then runs the storm against a second one.
func run(ctx context.Context, cfg Config, logw io.Writer) (Report, error) {
	rep := Report{Config: cfg, Outcomes: map[string]map[string]int{}}
	work, err := os.MkdirTemp("", "filestage-abuse-")
	if err != nil {
		return rep, err
	}
	defer os.RemoveAll(work)
	if cfg.Bin, err = benchproc.Binary(ctx, cfg.Bin, work, logw); err != nil {
		return rep, err
	}

	fresh, err := startServer(ctx, cfg, filepath.Join(work, "fresh"))
	if err != nil {
		return rep, err
	}
	time.Sleep(time.Second)
	if rep.BaseGoroutines, err = fresh.goroutines(); err != nil {
		return rep, err
	}

	src := newSources(0)
	defer src.Close()
	s, err := startServer(ctx, cfg, filepath.Join(work, "storm"))
	if err != nil {
		return rep, err
	}
	defer s.Kill()
	time.Sleep(500 * time.Millisecond)
	rep.BaseFDs = s.fds()

	// The good client is an established one: its session is open before
	// the storm (a newcomer competes with the storm for --max-sessions).
	goodClient, err := newClient(ctx, s.base())
	if err != nil {
		return rep, err
	}
	storm, stop := context.WithTimeout(ctx, cfg.Duration)
	defer stop()
	serverCPU := s.CPU()
	// The attackers run in a process of their own: sharing one with the
	// good client, their always-ready goroutines would delay its calls in
	// the benchmark's scheduler, not the server's.
	attackers, err := startStorm(storm, cfg, s.Addr)
	if err != nil {
		return rep, err
	}

	var sampler sync.WaitGroup
	hc := &http.Client{Timeout: 5 * time.Second}
	sampler.Go(func() {
		t := time.NewTicker(cfg.Poll)
		defer t.Stop()
		for {
			select {
			case <-storm.Done():
				return
			case <-t.C:
			}
			rep.PeakRSS = max(rep.PeakRSS, s.rss())
			rep.PeakFDs = max(rep.PeakFDs, s.fds())
			used, _ := s.spool()
			rep.PeakSpool = max(rep.PeakSpool, used)
			rep.HealthChecks++
			hstart := time.Now()
			resp, err := hc.Get(s.base() + "/healthz")
			rep.Health = append(rep.Health, time.Since(hstart))
			if err != nil || resp.StatusCode != http.StatusOK {
				rep.HealthFailures++
				if len(rep.HealthErrors) < 3 {
					what := fmt.Sprint(err)
					if err == nil {
						what = resp.Status
					}
					rep.HealthErrors = append(rep.HealthErrors, what)
				}
			}
			if resp != nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		}
	})
	// The good client starts once the storm is up.
	time.Sleep(min(2*time.Second, cfg.Duration/5))
	good(storm, goodClient, src.URL, &rep)
	sampler.Wait()
	out, err := attackers.wait()
	if err != nil {
		return rep, err
	}
	rep.ServerCPU, rep.ClientCPU = s.CPU()-serverCPU, out.CPU
	rep.Outcomes, rep.TrickleConnections = out.Outcomes, out.Trickles
	// What keeps connections open by design goes: the clients' idle
	// keep-alives went with the attackers' process; filestage pools its
	// idle connections to the sources, closed with their servers.
	hc.CloseIdleConnections()
	src.Close()
	rep.BombBytesStored = s.bombSize()
	rep.PeakRSS = max(rep.PeakRSS, s.peakRSS())

	// Settle: descriptors and temporary files back to where they were.
	deadline := time.Now().Add(cfg.Settle)
	for {
		_, files := s.spool()
		rep.AfterFDs, rep.AfterTemp = s.fds(), files
		if (rep.AfterFDs <= rep.BaseFDs && files == 0) || time.Now().After(deadline) {
			break
		}
		time.Sleep(cfg.Poll)
	}
	if rep.AfterGoroutines, err = s.goroutines(); err != nil {
		return rep, err
	}
	return rep, nil
}

// server is a running filestage.
type server struct {
	*benchproc.Process
	dataDir string
}

func startServer(ctx context.Context, cfg Config, dataDir string) (*server, error) {
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, cfg.Bin, "serve", "--transport", "http", "--listen", "127.0.0.1:0",
		"--data-dir", dataDir, "--allow-private-urls",
		"--max-bytes", strconv.FormatInt(cfg.MaxBytes, 10), "--spool-budget", strconv.FormatInt(cfg.SpoolBudget, 10))
	cmd.Env = append(os.Environ(), "FILESTAGE_AUTH_TOKEN="+token, "GOTRACEBACK=all")
	p, err := benchproc.Start(ctx, cmd, dataDir+".log", benchproc.Started)
	if err != nil {
		return nil, err
	}
	return &server{Process: p, dataDir: dataDir}, nil
}

func (s *server) base() string { return "http://" + s.Addr }

// goroutines ends the server with SIGQUIT and counts the goroutines its
// dump lists.
func (s *server) goroutines() (int, error) {
	if !s.Stop(syscall.SIGQUIT, 30*time.Second) {
		return 0, errors.New("no goroutine dump after SIGQUIT")
	}
	_, dump, ok := strings.Cut(s.Log(), "SIGQUIT: quit")
	if !ok {
		return 0, errors.New("no goroutine dump after SIGQUIT")
	}
	n := 0
	for _, header := range regexp.MustCompile(`(?m)^goroutine \d+ .*$`).FindAllString(dump, -1) {
		if !runtimeGoroutine.MatchString(header) {
			n++
		}
	}
	return n, nil
}

// runtimeGoroutine matches the dump header of a goroutine of the Go
// runtime's own, which it starts when it first needs one (the GC's
// workers at the first collection, the finalizer and cleanup queues at
// the first of each): how many there are says what the process has done,
// not what it leaked.
var runtimeGoroutine = regexp.MustCompile(`^goroutine 0 |\[(GC worker|force gc|GC sweep wait|GC scavenge wait|GOMAXPROCS updater|finalizer wait|cleanup wait)`)

func (s *server) rss() int64     { return s.Status("VmRSS") }
func (s *server) peakRSS() int64 { return s.Status("VmHWM") }

func (s *server) fds() int64 {
	e, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", s.Cmd.Process.Pid))
	return int64(len(e))
}

// spool is the bytes and count of the temporary files in the data dir.
func (s *server) spool() (bytes int64, files int) {
	filepath.WalkDir(filepath.Join(s.dataDir, "tmp"), func(_ string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if fi, err := d.Info(); err == nil {
				bytes += fi.Size()
				files++
			}
		}
		return nil
	})
	return bytes, files
}

// bombSize is the size of the largest object the bombers stored.
func (s *server) bombSize() int64 {
	var n int64
	filepath.WalkDir(filepath.Join(s.dataDir, "objects", "bench", "BENCH_ABUSE"), func(_ string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if fi, err := d.Info(); err == nil {
				n = max(n, fi.Size())
			}
		}
		return nil
	})
	return n
}

// newSources serves what the stagers fetch: endless bodies, gzip bombs of
// bombBytes, and the good client's 1 MiB files.
func newSources(bombBytes int64) *httptest.Server {
	// A gzip file may hold many members, which decompress one after the
	// other: one member of 1 MiB of zeros, repeated, is a bomb of any size
	// made in no time.
	var member, bomb bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&member, gzip.BestCompression)
	zw.Write(make([]byte, 1<<20))
	zw.Close()
	for range bombBytes >> 20 {
		bomb.Write(member.Bytes())
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/endless/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/octet-stream")
		buf := make([]byte, 64<<10)
		for r.Context().Err() == nil {
			if _, err := w.Write(buf); err != nil {
				return
			}
		}
	})
	mux.HandleFunc("/bomb/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Content-Encoding", "gzip")
		w.Write(bomb.Bytes())
	})
	mux.HandleFunc("/good/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Write(goodContent(r.URL.Path))
	})
	return httptest.NewServer(mux)
}

// goodContent is 1 MiB distinct per path, so that every stage stores new
// bytes.
func goodContent(path string) []byte {
	b := make([]byte, 1<<20)
	seed := md5.Sum([]byte(path))
	for off := 0; off < len(b); off += md5.Size {
		seed = md5.Sum(append(seed[:], byte(off), byte(off>>8), byte(off>>16)))
		copy(b[off:], seed[:])
	}
	return b
}

// trickle holds a connection sending a body without a token, a byte at a
// time, reconnecting when the server closes it.
func trickle(ctx context.Context, addr string, cfg Config, made *atomic.Int64, stagger time.Duration) {
	sleep(ctx, stagger)
	for ctx.Err() == nil {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			made.Add(1)
			closed := make(chan struct{})
			go func() { io.Copy(io.Discard, c); close(closed) }()
			fmt.Fprintf(c, "POST /mcp HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: 1048576\r\n\r\n{", addr)
		send:
			for {
				select {
				case <-ctx.Done():
					break send
				case <-closed:
					break send
				case <-time.After(cfg.TrickleEvery):
					if _, err := c.Write([]byte(" ")); err != nil {
						break send
					}
				}
			}
			c.Close()
			<-closed
		}
		sleep(ctx, cfg.ReconnectAfter)
	}
}

// idle initializes a session and idles, holding its connection; refused,
// it tries again.
func idle(ctx context.Context, base string, tr *http.Transport, outcome func(kind, what string), stagger time.Duration) {
	sleep(ctx, stagger)
	hc := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	for ctx.Err() == nil {
		body := `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"idler","version":"1"}}}`
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, base+"/mcp", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := hc.Do(req)
		if err != nil {
			if ctx.Err() == nil {
				outcome("idle", "error")
			}
			sleep(ctx, time.Second)
			continue
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		outcome("idle", strconv.Itoa(resp.StatusCode))
		if resp.StatusCode == http.StatusOK {
			<-ctx.Done() // idle, the connection kept alive
			return
		}
		sleep(ctx, time.Second)
	}
}

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

func newClient(ctx context.Context, base string) (*client.Client, error) {
	c, err := client.NewStreamableHttpClient(base+"/mcp", transport.WithHTTPHeaders(map[string]string{"Authorization": "Bearer " + token}))
	if err != nil {
		return nil, err
	}
	if err := c.Start(ctx); err != nil {
		return nil, err
	}
	init := mcp.InitializeRequest{}
	init.Params.ProtocolVersion = mcp.LATEST_LEGACY_PROTOCOL_VERSION
	init.Params.ClientInfo = mcp.Implementation{Name: "abuse", Version: "1"}
	if _, err := c.Initialize(ctx, init); err != nil {
		c.Close()
		return nil, err
	}
	// As clients do: a session that makes no request is one filestage
	// may end to make room for a newcomer.
	if _, err := c.ListTools(ctx, mcp.ListToolsRequest{}); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

func call(ctx context.Context, c *client.Client, tool string, args map[string]any) (*mcp.CallToolResult, error) {
	req := mcp.CallToolRequest{}
	req.Params.Name, req.Params.Arguments = tool, args
	return c.CallTool(ctx, req)
}

// slugOf is a tool result's outcome: "ok" or its error slug.
func slugOf(res *mcp.CallToolResult) string {
	if !res.IsError {
		return "ok"
	}
	var env struct {
		Error struct {
			Slug string `json:"slug"`
		} `json:"error"`
	}
	if len(res.Content) > 0 {
		if t, ok := res.Content[0].(mcp.TextContent); ok {
			json.Unmarshal([]byte(t.Text), &env)
		}
	}
	return env.Error.Slug
}

// stager stages url over and over in a session of its own.
func stager(ctx context.Context, base, url, kind string, outcome func(kind, what string)) {
	var c *client.Client
	for ctx.Err() == nil {
		if c == nil {
			var err error
			if c, err = newClient(ctx, base); err != nil {
				outcome(kind, "connect_error")
				sleep(ctx, time.Second)
				continue
			}
		}
		res, err := call(ctx, c, "stage_connector_file", map[string]any{"url": url, "toolSlug": "BENCH_ABUSE"})
		switch {
		case err != nil && ctx.Err() == nil:
			outcome(kind, "protocol_error")
			c.Close()
			c = nil
		case err == nil:
			outcome(kind, slugOf(res))
		}
	}
	if c != nil {
		c.Close()
	}
}

// good is the well-behaved client, in its session c: a presign, and every fourth time a
// 1 MiB stage, until ctx ends; every answer is checked.
func good(ctx context.Context, c *client.Client, src string, rep *Report) {
	fail := func(format string, args ...any) {
		rep.GoodErrors++
		if len(rep.FirstErrors) < 5 {
			rep.FirstErrors = append(rep.FirstErrors, fmt.Sprintf(format, args...))
		}
	}
	defer c.Close()
	// Calls that start before the storm ends finish after it.
	cctx := context.WithoutCancel(ctx)
	for i := 0; ctx.Err() == nil; i++ {
		sum := md5.Sum([]byte("good-" + strconv.Itoa(i)))
		start := time.Now()
		res, err := call(cctx, c, "request_presigned_upload", map[string]any{
			"toolkit_slug": "bench", "tool_slug": "BENCH_GOOD", "filename": "g.bin", "mimetype": "application/octet-stream", "md5": hex.EncodeToString(sum[:]),
		})
		switch {
		case err != nil:
			fail("presign: %v", err)
		case res.IsError:
			fail("presign: %s", slugOf(res))
		default:
			rep.Presigns = append(rep.Presigns, time.Since(start))
		}
		if i%4 != 0 {
			continue
		}
		path := "/good/" + strconv.Itoa(i)
		want := md5.Sum(goodContent(path))
		start = time.Now()
		res, err = call(cctx, c, "stage_connector_file", map[string]any{"url": src + path, "toolSlug": "BENCH_GOOD"})
		switch {
		case err != nil:
			fail("stage: %v", err)
		case res.IsError:
			fail("stage: %s", slugOf(res))
		default:
			b, _ := json.Marshal(res.StructuredContent)
			var out struct {
				MD5 string `json:"md5"`
			}
			json.Unmarshal(b, &out)
			if out.MD5 != hex.EncodeToString(want[:]) {
				fail("stage: stored md5 %s, want %x", out.MD5, want)
				break
			}
			rep.Stages = append(rep.Stages, time.Since(start))
		}
	}
}

// stormOutput is what the attackers' process reports.
type stormOutput struct {
	Outcomes map[string]map[string]int
	Trickles int64
	CPU      time.Duration
}

// The attackers' process is this program (or test binary) again, told so
// by these variables.
const (
	roleEnv   = "FILESTAGE_ABUSE_ROLE"
	configEnv = "FILESTAGE_ABUSE_CONFIG"
	addrEnv   = "FILESTAGE_ABUSE_ADDR"
)

type stormProcess struct {
	cmd *exec.Cmd
	out bytes.Buffer
}

func startStorm(ctx context.Context, cfg Config, addr string) (*stormProcess, error) {
	b, err := json.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	p := &stormProcess{cmd: exec.Command(os.Args[0])}
	p.cmd.Env = append(os.Environ(), roleEnv+"=storm", configEnv+"="+string(b), addrEnv+"="+addr)
	p.cmd.Stdout, p.cmd.Stderr = &p.out, os.Stderr
	if err := p.cmd.Start(); err != nil {
		return nil, err
	}
	go func() {
		// Past its own end by a margin: stop it.
		<-ctx.Done()
		time.Sleep(30 * time.Second)
		p.cmd.Process.Kill()
	}()
	return p, nil
}

func (p *stormProcess) wait() (stormOutput, error) {
	var out stormOutput
	if err := p.cmd.Wait(); err != nil {
		return out, fmt.Errorf("the attackers' process: %v", err)
	}
	return out, json.Unmarshal(p.out.Bytes(), &out)
}

// stormMain is the attackers' process: it runs the storm for the
// configured time and prints what it saw as JSON.
func stormMain() int {
	var cfg Config
	if err := json.Unmarshal([]byte(os.Getenv(configEnv)), &cfg); err != nil {
		fmt.Fprintln(os.Stderr, "abuse storm:", err)
		return 2
	}
	addr := os.Getenv(addrEnv)
	src := newSources(cfg.BombBytes)
	defer src.Close()
	ctx, stop := context.WithTimeout(context.Background(), cfg.Duration)
	defer stop()
	base := "http://" + addr
	out := stormOutput{Outcomes: map[string]map[string]int{}}
	var mu sync.Mutex
	outcome := func(kind, what string) {
		mu.Lock()
		defer mu.Unlock()
		if out.Outcomes[kind] == nil {
			out.Outcomes[kind] = map[string]int{}
		}
		out.Outcomes[kind][what]++
	}
	var wg sync.WaitGroup
	var trickles atomic.Int64
	for i := range cfg.Tricklers {
		wg.Go(func() { trickle(ctx, addr, cfg, &trickles, time.Duration(i)*time.Millisecond) })
	}
	idlers := make([]*http.Transport, cfg.Idlers)
	for i := range idlers {
		idlers[i] = &http.Transport{MaxIdleConnsPerHost: 1}
		wg.Go(func() { idle(ctx, base, idlers[i], outcome, time.Duration(i)*time.Millisecond) })
	}
	for i := range cfg.Endless {
		wg.Go(func() { stager(ctx, base, src.URL+"/endless/"+strconv.Itoa(i), "endless", outcome) })
	}
	for i := range cfg.Bombs {
		wg.Go(func() { stager(ctx, base, src.URL+"/bomb/"+strconv.Itoa(i), "bomb", outcome) })
	}
	wg.Wait()
	for _, tr := range idlers {
		tr.CloseIdleConnections()
	}
	out.Trickles, out.CPU = trickles.Load(), benchproc.SelfCPU()
	json.NewEncoder(os.Stdout).Encode(out)
	return 0
}

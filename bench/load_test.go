package bench_test

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/filestage/filestage/internal/benchproc"
	"github.com/filestage/filestage/schema"
	"github.com/filestage/filestage/tools"
	"github.com/filestage/filestage/transport"
)

// loadSize is how much load TestLoad makes. FILESTAGE_LOAD sets it as
// "streamable,sse,presigns,stages" (bench/load.sh: 200,100,50,5); the
// default is small enough for CI under -race.
type loadSize struct{ streamable, sse, presigns, stages int }

func loadSizeFromEnv(t *testing.T) loadSize {
	s := loadSize{10, 5, 10, 2}
	if v := os.Getenv("FILESTAGE_LOAD"); v != "" {
		var n []int
		for _, f := range strings.Split(v, ",") {
			i, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || i < 0 {
				t.Fatalf("FILESTAGE_LOAD=%q: want streamable,sse,presigns,stages", v)
			}
			n = append(n, i)
		}
		if len(n) != 4 {
			t.Fatalf("FILESTAGE_LOAD=%q: want four counts", v)
		}
		s = loadSize{n[0], n[1], n[2], n[3]}
	}
	return s
}

const stageBytes = 1 << 20

// presignDuringStages names the presigns made while a stage call was in
// flight, in the report; presignServerSide the time from a streamable
// HTTP presign's request to its answer as the server's handler saw it,
// which leaves out the wait of the clients (in the same process) for a
// processor to read their answers.
const (
	presignDuringStages = "  while stages ran"
	presignServerSide   = "  server side (streamable)"
)

// serverSide times each streamable HTTP presign request in the server.
func serverSide(next http.Handler, record func(time.Duration)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != transport.PathMCP {
			next.ServeHTTP(w, r)
			return
		}
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		start := time.Now()
		next.ServeHTTP(w, r)
		if bytes.Contains(body, []byte(tools.PresignName)) {
			record(time.Since(start))
		}
	})
}

// content is the 1 MiB a source path serves: one random MiB, the same
// for every path, with the path's digest over the first bytes of each
// 4 KiB, so that every stage stores new bytes. It costs a copy: the
// source and the clients share the processors with the server, and must
// take little from it.
func content(path string) []byte {
	b := bytes.Clone(randomMiB)
	fillContent(b, path)
	return b
}

// fillContent makes b (a copy of randomMiB) path's content.
func fillContent(b []byte, path string) {
	tag := sha256.Sum256([]byte(path))
	for off := 0; off < len(b); off += 4 << 10 {
		copy(b[off:], tag[:])
	}
}

// contentBufs keep the source's answers between requests: a MiB allocated
// per stage would have the collector run for the test's source rather
// than for the server.
var contentBufs = sync.Pool{New: func() any { b := bytes.Clone(randomMiB); return &b }}

var randomMiB = func() []byte {
	b := make([]byte, stageBytes)
	rand.NewChaCha8([32]byte{}).Read(b)
	return b
}()

// interleaved is the default order of a session's calls: each stage is
// followed by its share of the presigns, so that presigns run while
// stages do, as they would when many clients share a server. "batched"
// (FILESTAGE_LOAD_ORDER) is issue 5's order: all presigns, then all
// stages; at its start, every session presigns at once, and a presign's
// latency is then mostly the other sessions' presigns ahead of it (with
// n sessions calling back to back at x calls/s, n/x on average), not
// the stages.
func interleaved() bool { return os.Getenv("FILESTAGE_LOAD_ORDER") != "batched" }

// think is how long a session waits on average after each presign before
// its next call (FILESTAGE_LOAD_THINK, a duration; none by default): an
// assistant writes between its tool calls. Each wait is drawn from an
// exponential distribution of that mean, and the first call of each
// session from one too, so that sessions do not call in step, as
// independent clients do not. Without it every session calls back to
// back, and n sessions presigning at x calls/s wait n/x on average
// whatever the server does (Little's law): the latency measured is then
// the load test's own queue.
func think(t *testing.T) time.Duration {
	v := os.Getenv("FILESTAGE_LOAD_THINK")
	if v == "" || v == "0" {
		return 0
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		t.Fatalf("FILESTAGE_LOAD_THINK=%q: want a duration such as 50ms", v)
	}
	return d
}

// TestLoad holds many MCP sessions at once over streamable HTTP and SSE on
// one filestage HTTP server (the local store, as main wires it), each
// making presign and stage calls: every call must be answered correctly.
// It reports latencies, the process's peak RSS and goroutines, and checks
// that goroutines return to their baseline once the sessions close.
func TestLoad(t *testing.T) {
	size := loadSizeFromEnv(t)
	pause := think(t)
	baseline := runtime.NumGoroutine()

	src := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/octet-stream")
		b := contentBufs.Get().(*[]byte)
		defer contentBufs.Put(b)
		fillContent(*b, r.URL.Path)
		w.Write(*b)
	}))
	defer src.Close()

	var (
		mu        sync.Mutex
		latencies = map[string][]time.Duration{}
		errs      []string
		calls     atomic.Int64
		peakG     atomic.Int64
	)
	var srv loadServer
	if bin := os.Getenv("FILESTAGE_LOAD_BIN"); bin != "" {
		srv = startBinary(t, bin)
	} else {
		srv = startInProcess(t, func(d time.Duration) {
			mu.Lock()
			latencies[presignServerSide] = append(latencies[presignServerSide], d)
			mu.Unlock()
		})
	}
	base := srv.base()
	// What the server runs with no session: the baseline to return to.
	time.Sleep(100 * time.Millisecond)
	serving := srv.goroutines()

	fail := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		if len(errs) < 20 { // the first few say enough
			errs = append(errs, fmt.Sprintf(format, args...))
		}
	}
	var failures atomic.Int64
	var staging atomic.Int64 // stage calls in flight
	record := func(tool string, d time.Duration, duringStages bool) {
		mu.Lock()
		latencies[tool] = append(latencies[tool], d)
		if tool == tools.PresignName && duringStages {
			latencies[presignDuringStages] = append(latencies[presignDuringStages], d)
		}
		mu.Unlock()
		calls.Add(1)
	}
	sampling := make(chan struct{})
	go func() {
		for {
			select {
			case <-sampling:
				return
			case <-time.After(srv.sampleEvery()):
				if g := int64(srv.goroutines()); g > peakG.Load() {
					peakG.Store(g)
				}
			}
		}
	}()

	// The MD5 of every source, which the stage answers must carry, is
	// known before the sessions start: hashing a MiB per stage would be
	// the clients' work, on the processors the server uses.
	wantMD5 := map[string]string{}
	for kind, n := range map[string]int{"streamable": size.streamable, "sse": size.sse} {
		for i := range n {
			for j := range size.stages {
				path := fmt.Sprintf("/%s/%d/%d.bin", kind, i, j)
				sum := md5.Sum(content(path))
				wantMD5[path] = hex.EncodeToString(sum[:])
			}
		}
	}

	session := func(kind string, n int) {
		var c *client.Client
		var err error
		if kind == "sse" {
			c, err = client.NewSSEMCPClient(base + transport.PathSSE)
		} else {
			c, err = client.NewStreamableHttpClient(base + transport.PathMCP)
		}
		if err == nil {
			err = c.Start(context.Background())
		}
		if err == nil {
			init := mcp.InitializeRequest{}
			init.Params.ProtocolVersion = mcp.LATEST_LEGACY_PROTOCOL_VERSION
			init.Params.ClientInfo = mcp.Implementation{Name: "load", Version: "1"}
			ictx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			_, err = c.Initialize(ictx, init)
			cancel()
		}
		if err != nil {
			failures.Add(1)
			fail("%s session %d: connect: %v", kind, n, err)
			return
		}
		defer c.Close()
		do := func(tool string, args map[string]any, check func(string) error) {
			req := mcp.CallToolRequest{}
			req.Params.Name, req.Params.Arguments = tool, args
			cctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
			defer cancel()
			if tool == tools.StageName {
				staging.Add(1)
				defer staging.Add(-1)
			}
			during := staging.Load() > 0
			start := time.Now()
			res, err := c.CallTool(cctx, req)
			d := time.Since(start)
			during = during || staging.Load() > 0
			switch {
			case err != nil:
				err = fmt.Errorf("protocol error: %w", err)
			case res.IsError:
				err = fmt.Errorf("tool error: %s", text(res))
			default:
				err = check(text(res))
			}
			if err != nil {
				failures.Add(1)
				fail("%s session %d %s: %v", kind, n, tool, err)
				return
			}
			record(tool, d, during)
		}
		presign := func(i int) {
			sum := md5.Sum([]byte(fmt.Sprintf("%s-%d-%d", kind, n, i)))
			want := hex.EncodeToString(sum[:])
			do(tools.PresignName, map[string]any{"toolkit_slug": "gmail", "tool_slug": "GMAIL_SEND_EMAIL", "filename": "a.pdf", "mimetype": "application/pdf", "md5": want},
				func(s string) error {
					var out schema.PresignResponse
					if err := json.Unmarshal([]byte(s), &out); err != nil {
						return err
					}
					if out.Key != "gmail/GMAIL_SEND_EMAIL/"+want+".pdf" || !strings.Contains(out.NewPresignedURL, "signature=") || out.Type != "new" {
						return fmt.Errorf("unexpected answer %s", s)
					}
					return nil
				})
		}
		stage := func(i int) {
			path := fmt.Sprintf("/%s/%d/%d.bin", kind, n, i)
			want := wantMD5[path]
			do(tools.StageName, map[string]any{"url": src.URL + path, "toolSlug": "SLACK_UPLOAD_FILE"},
				func(s string) error {
					var out schema.StageResponse
					if err := json.Unmarshal([]byte(s), &out); err != nil {
						return err
					}
					if out.MD5 != want || out.Size == nil || *out.Size != stageBytes {
						return fmt.Errorf("unexpected answer %s", s)
					}
					return nil
				})
		}
		wait := func() time.Duration { return time.Duration(rand.ExpFloat64() * float64(pause)) }
		time.Sleep(wait())
		if !interleaved() || size.stages == 0 {
			for i := range size.presigns {
				presign(i)
				time.Sleep(wait())
			}
			for i := range size.stages {
				stage(i)
			}
			return
		}
		next := 0
		for i := range size.stages {
			stage(i)
			for ; next < size.presigns*(i+1)/size.stages; next++ {
				presign(next)
				time.Sleep(wait())
			}
		}
	}

	start := time.Now()
	var wg sync.WaitGroup
	for kind, n := range map[string]int{"streamable": size.streamable, "sse": size.sse} {
		for i := range n {
			wg.Add(1)
			go func() { defer wg.Done(); session(kind, i) }()
		}
	}
	wg.Wait()
	wall := time.Since(start)
	close(sampling)

	want := int64((size.streamable + size.sse) * (size.presigns + size.stages))
	if f := failures.Load(); f != 0 || calls.Load() != want {
		t.Errorf("%d of %d calls answered correctly, %d failures; first: %v", calls.Load(), want, f, errs)
	}

	// Sessions are closed: the server's goroutines for them must go, once
	// idle keep-alive connections (the clients' to the server, the
	// server's to the source) are closed too.
	http.DefaultClient.CloseIdleConnections()
	src.CloseClientConnections()
	settled := settle(srv.goroutines, serving)
	if settled > serving+2 {
		t.Errorf("goroutines: %d serving before the sessions, %d after they closed\n%s", serving, settled, srv.stacks())
	}
	srv.stop(t)
	src.Close()
	http.DefaultClient.CloseIdleConnections()
	if after := settle(runtime.NumGoroutine, baseline); after > baseline+2 {
		buf := make([]byte, 1<<20)
		t.Errorf("goroutines: %d before, %d after the sessions and the server ended\n%s", baseline, after, buf[:runtime.Stack(buf, true)])
	}

	var b strings.Builder
	order := "interleaved"
	if !interleaved() {
		order = "batched"
	}
	if pause > 0 {
		order += fmt.Sprintf(", on average %s after each presign", pause)
	}
	fmt.Fprintf(&b, "%d streamable + %d SSE sessions, %d presigns and %d stages of 1 MiB each (%s): %d calls in %s (%.0f calls/s), %d failures\n",
		size.streamable, size.sse, size.presigns, size.stages, order, calls.Load(), wall.Round(time.Millisecond), float64(calls.Load())/wall.Seconds(), failures.Load())
	for _, tool := range []string{tools.PresignName, presignDuringStages, presignServerSide, tools.StageName} {
		d := latencies[tool]
		slices.Sort(d)
		if len(d) > 0 {
			fmt.Fprintf(&b, "  %-26s p50 %8s  p99 %8s  max %8s  (%d calls)\n", tool, pct(d, 50), pct(d, 99), d[len(d)-1].Round(time.Millisecond), len(d))
		}
	}
	fmt.Fprintf(&b, "  goroutines: %d serving before the sessions, peak %d, %d after they closed\n", serving, peakG.Load(), settled)
	srv.report(&b)
	t.Log("\n" + b.String())
	if out := os.Getenv("FILESTAGE_LOAD_REPORT"); out != "" {
		os.WriteFile(out, []byte(b.String()), 0o644)
	}
}

// settle waits up to 15 s for count to fall to want (+2) and returns it.
func settle(count func() int, want int) int {
	deadline := time.Now().Add(15 * time.Second)
	for count() > want+2 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	return count()
}

func pct(sorted []time.Duration, p int) time.Duration {
	return sorted[min(len(sorted)-1, len(sorted)*p/100)].Round(100 * time.Microsecond)
}

func text(res *mcp.CallToolResult) string {
	for _, c := range res.Content {
		if tc, ok := c.(mcp.TextContent); ok {
			return tc.Text
		}
	}
	return ""
}

// peakRSS is this process's VmHWM.
func peakRSS() string {
	if hwm := benchproc.SelfStatus("VmHWM"); hwm > 0 {
		return fmt.Sprintf("%.1f MiB", float64(hwm)/(1<<20))
	}
	return "unknown (no /proc)"
}

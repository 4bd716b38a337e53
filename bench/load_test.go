package bench_test

import (
	"context"
	"crypto/md5"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
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
	"github.com/mark3labs/mcp-go/server"

	"github.com/filestage/filestage/providers"
	"github.com/filestage/filestage/providers/local"
	"github.com/filestage/filestage/schema"
	"github.com/filestage/filestage/source"
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

// content is the 1 MiB a source path serves: distinct per path, so that
// every stage stores new bytes.
func content(path string) []byte {
	b := make([]byte, stageBytes)
	seed := md5.Sum([]byte(path))
	for off := 0; off < len(b); off += md5.Size {
		binary.BigEndian.PutUint64(seed[:8], uint64(off))
		seed = md5.Sum(seed[:])
		copy(b[off:], seed[:])
	}
	return b
}

// TestLoad holds many MCP sessions at once over streamable HTTP and SSE on
// one filestage HTTP server (the local store, as main wires it), each
// making presign and stage calls: every call must be answered correctly.
// It reports latencies, the process's peak RSS and goroutines, and checks
// that goroutines return to their baseline once the sessions close.
func TestLoad(t *testing.T) {
	size := loadSizeFromEnv(t)
	baseline := runtime.NumGoroutine()

	src := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Write(content(r.URL.Path))
	}))
	defer src.Close()

	dir := t.TempDir()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	provider, err := local.New(providers.Settings{DataDir: dir, PublicURL: "http://" + ln.Addr().String(), MaxBytes: 64 << 20})
	if err != nil {
		t.Fatal(err)
	}
	sources, err := source.New(source.Options{AllowPrivate: true, MaxBytes: 64 << 20})
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	drain := transport.NewDrain()
	mcpServer := tools.NewServer("load", &tools.Service{Provider: provider, Sources: sources, SpoolDir: filepath.Join(dir, "tmp"), MaxBytes: 64 << 20, Logger: log},
		server.WithToolHandlerMiddleware(drain.Middleware), server.WithHooks(drain.Hooks()))
	h := transport.NewHTTP(mcpServer, transport.HTTPOptions{Routes: map[string]http.Handler{provider.Pattern(): provider}, Logger: log})
	ctx, stop := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() {
		served <- transport.Serve(ctx, ln, h, transport.ServeOptions{Drain: drain, CloseSessions: h.CloseSessions, Logger: log})
	}()
	base := "http://" + ln.Addr().String()
	// What the server runs with no session: the baseline to return to.
	time.Sleep(100 * time.Millisecond)
	serving := runtime.NumGoroutine()

	var (
		mu        sync.Mutex
		latencies = map[string][]time.Duration{}
		errs      []string
		calls     atomic.Int64
		peakG     atomic.Int64
	)
	fail := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		if len(errs) < 20 { // the first few say enough
			errs = append(errs, fmt.Sprintf(format, args...))
		}
	}
	var failures atomic.Int64
	record := func(tool string, d time.Duration) {
		mu.Lock()
		latencies[tool] = append(latencies[tool], d)
		mu.Unlock()
		calls.Add(1)
	}
	sampling := make(chan struct{})
	go func() {
		for {
			select {
			case <-sampling:
				return
			case <-time.After(50 * time.Millisecond):
				if g := int64(runtime.NumGoroutine()); g > peakG.Load() {
					peakG.Store(g)
				}
			}
		}
	}()

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
			start := time.Now()
			res, err := c.CallTool(cctx, req)
			d := time.Since(start)
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
			record(tool, d)
		}
		for i := range size.presigns {
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
		for i := range size.stages {
			path := fmt.Sprintf("/%s/%d/%d.bin", kind, n, i)
			sum := md5.Sum(content(path))
			want := hex.EncodeToString(sum[:])
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
	settled := settle(serving)
	if settled > serving+2 {
		buf := make([]byte, 1<<20)
		t.Errorf("goroutines: %d serving before the sessions, %d after they closed\n%s", serving, settled, buf[:runtime.Stack(buf, true)])
	}
	stop()
	if err := <-served; err != nil {
		t.Errorf("serve: %v", err)
	}
	src.Close()
	http.DefaultClient.CloseIdleConnections()
	if after := settle(baseline); after > baseline+2 {
		buf := make([]byte, 1<<20)
		t.Errorf("goroutines: %d before, %d after the sessions and the server ended\n%s", baseline, after, buf[:runtime.Stack(buf, true)])
	}

	var b strings.Builder
	fmt.Fprintf(&b, "%d streamable + %d SSE sessions, %d presigns and %d stages of 1 MiB each: %d calls in %s (%.0f calls/s), %d failures\n",
		size.streamable, size.sse, size.presigns, size.stages, calls.Load(), wall.Round(time.Millisecond), float64(calls.Load())/wall.Seconds(), failures.Load())
	for _, tool := range []string{tools.PresignName, tools.StageName} {
		d := latencies[tool]
		slices.Sort(d)
		if len(d) > 0 {
			fmt.Fprintf(&b, "  %-26s p50 %8s  p99 %8s  max %8s  (%d calls)\n", tool, pct(d, 50), pct(d, 99), d[len(d)-1].Round(time.Millisecond), len(d))
		}
	}
	fmt.Fprintf(&b, "  goroutines: %d serving before the sessions, peak %d, %d after they closed\n", serving, peakG.Load(), settled)
	fmt.Fprintf(&b, "  peak RSS of the process (server and clients): %s\n", peakRSS())
	t.Log("\n" + b.String())
	if out := os.Getenv("FILESTAGE_LOAD_REPORT"); out != "" {
		os.WriteFile(out, []byte(b.String()), 0o644)
	}
}

// settle waits up to 15 s for the goroutine count to fall to want (+2)
// and returns the count.
func settle(want int) int {
	deadline := time.Now().Add(15 * time.Second)
	for runtime.NumGoroutine() > want+2 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	return runtime.NumGoroutine()
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

// peakRSS reads VmHWM from /proc (Linux); elsewhere it says so.
func peakRSS() string {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return "unknown (no /proc)"
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			return fmt.Sprintf("%.1f MiB", float64(kb)/1024)
		}
	}
	return "unknown"
}

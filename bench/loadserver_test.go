package bench_test

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/server"

	"github.com/filestage/filestage/internal/benchproc"
	"github.com/filestage/filestage/providers"
	"github.com/filestage/filestage/providers/local"
	"github.com/filestage/filestage/source"
	"github.com/filestage/filestage/tools"
	"github.com/filestage/filestage/transport"
)

// loadServer is the filestage TestLoad drives: in the test's process, as
// main wires it (CI), or the real binary in a process of its own
// (FILESTAGE_LOAD_BIN, bench/load.sh), whose scheduler then serves the
// server alone rather than the server and three hundred clients.
type loadServer interface {
	base() string
	// goroutines counts the server's goroutines (in process: the
	// process's, clients included).
	goroutines() int
	sampleEvery() time.Duration
	stacks() string
	stop(t *testing.T)
	report(b *strings.Builder)
}

type inProcess struct {
	addr   string
	cancel context.CancelFunc
	served chan error
}

// startInProcess serves filestage on loopback from this process;
// presignTime gets each streamable HTTP presign's time in the server.
func startInProcess(t *testing.T, presignTime func(time.Duration)) *inProcess {
	dir := t.TempDir()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	provider, err := local.New(providers.Settings{DataDir: dir, PublicURL: "http://" + ln.Addr().String(), MaxBytes: 64 << 20})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { provider.Close() })
	sources, err := source.New(source.Options{AllowPrivate: true, MaxBytes: 64 << 20})
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	drain := transport.NewDrain()
	mcpServer := tools.NewServer("load", &tools.Service{Provider: provider, Sources: sources, SpoolDir: filepath.Join(dir, "tmp"), MaxBytes: 64 << 20, Logger: log},
		server.WithToolHandlerMiddleware(drain.Middleware), server.WithHooks(drain.Hooks()))
	h := transport.NewHTTP(mcpServer, transport.HTTPOptions{Routes: map[string]http.Handler{provider.Pattern(): provider}, Logger: log})
	ctx, cancel := context.WithCancel(context.Background())
	s := &inProcess{addr: ln.Addr().String(), cancel: cancel, served: make(chan error, 1)}
	go func() {
		s.served <- transport.Serve(ctx, ln, serverSide(h, presignTime), transport.ServeOptions{Drain: drain, CloseSessions: h.CloseSessions, Logger: log})
	}()
	return s
}

func (s *inProcess) base() string               { return "http://" + s.addr }
func (s *inProcess) goroutines() int            { return runtime.NumGoroutine() }
func (s *inProcess) sampleEvery() time.Duration { return 50 * time.Millisecond }

func (s *inProcess) stacks() string {
	buf := make([]byte, 1<<20)
	return string(buf[:runtime.Stack(buf, true)])
}

func (s *inProcess) stop(t *testing.T) {
	s.cancel()
	if err := <-s.served; err != nil {
		t.Errorf("serve: %v", err)
	}
}

func (s *inProcess) report(b *strings.Builder) {
	fmt.Fprintf(b, "  peak RSS of the process (server and clients): %s\n", peakRSS())
}

// binary is the real filestage binary, serving on loopback.
type binary struct {
	*benchproc.Process
	cpu0 time.Duration
	// What report says, read before the process ends.
	peakRSS int64
	used    time.Duration
}

// startBinary builds the binary at bin unless it is there, and serves
// with the local store, limits raised to admit the load test's sessions
// and stages (they are what is measured, not refused).
func startBinary(t *testing.T, bin string) *binary {
	ctx := context.Background()
	if _, err := os.Stat(bin); err != nil {
		if err := benchproc.Build(ctx, bin); err != nil {
			t.Fatal(err)
		}
	}
	dir := t.TempDir()
	args := []string{"serve", "--transport", "http", "--listen", "127.0.0.1:0", "--data-dir", filepath.Join(dir, "data"),
		"--allow-private-urls", "--max-bytes", "64MiB", "--max-concurrent-stages", "1000", "--max-sessions", "1000"}
	// More flags, e.g. --metrics-listen 127.0.0.1:9090 --pprof to profile it.
	args = append(args, strings.Fields(os.Getenv("FILESTAGE_LOAD_BIN_ARGS"))...)
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "GOTRACEBACK=all")
	p, err := benchproc.Start(ctx, cmd, filepath.Join(dir, "filestage.log"), benchproc.Started)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Kill)
	return &binary{Process: p, cpu0: p.CPU()}
}

func (s *binary) base() string               { return "http://" + s.Addr }
func (s *binary) sampleEvery() time.Duration { return 500 * time.Millisecond }

// goroutines reads go_goroutines from the server's /metrics.
func (s *binary) goroutines() int {
	resp, err := http.Get(s.base() + transport.PathMetrics)
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "go_goroutines "); ok {
			n, _ := strconv.ParseFloat(v, 64)
			return int(n)
		}
	}
	return -1
}

func (s *binary) stacks() string {
	return "(the server's log holds its goroutines when it is sent SIGQUIT)"
}

func (s *binary) stop(t *testing.T) {
	s.peakRSS, s.used = s.Status("VmHWM"), s.CPU()-s.cpu0
	if !s.Stop(os.Interrupt, 30*time.Second) {
		t.Error("filestage did not stop within 30 s of SIGINT")
	}
}

func (s *binary) report(b *strings.Builder) {
	fmt.Fprintf(b, "  the real binary in a process of its own: peak RSS %.1f MiB, CPU %s; the clients' and sources' process: peak RSS %s\n",
		float64(s.peakRSS)/(1<<20), s.used.Round(10*time.Millisecond), peakRSS())
}

// TestLoadBinary runs TestLoad small against the real binary, the way
// bench/load.sh runs it at full size.
func TestLoadBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	if os.Getenv("FILESTAGE_LOAD_BIN") == "" {
		t.Setenv("FILESTAGE_LOAD_BIN", filepath.Join(t.TempDir(), "filestage"))
	}
	t.Setenv("FILESTAGE_LOAD_THINK", "5ms")
	TestLoad(t)
}

package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/filestage/filestage/internal/benchproc"
)

// roleEnv re-runs this program as the echo server.
const roleEnv = "FILESTAGE_CALLCOST_ROLE"

const (
	presignTool = "request_presigned_upload"
	echoTool    = "echo"
	// answerTool answers what filestage answered (answerEnv names the
	// file), with the caller's md5 added: the framework's floor for an
	// answer of filestage's size.
	answerTool = "answer"
	answerEnv  = "FILESTAGE_CALLCOST_ANSWER"
)

// Phase is one measured stretch against one server.
type Phase struct {
	Server    string
	Calls     int64
	Wall      time.Duration
	ServerCPU time.Duration
	ClientCPU time.Duration
	// AnswerBytes is the size of one answer, the JSON-RPC message as sent.
	AnswerBytes int
}

func (p Phase) rate() float64 { return float64(p.Calls) / p.Wall.Seconds() }

// Report is what a run measured.
type Report struct {
	Config      Config
	Phases      []Phase
	Errors      int64
	FirstErrors []string
}

// totals sums the phases against one server.
func (r Report) totals(server string) Phase {
	t := Phase{Server: server}
	for _, p := range r.Phases {
		if p.Server == server {
			t.Calls += p.Calls
			t.Wall += p.Wall
			t.ServerCPU += p.ServerCPU
			t.ClientCPU += p.ClientCPU
			t.AnswerBytes = p.AnswerBytes
		}
	}
	return t
}

// ratio is filestage's throughput over floor's ("echo" or "sized").
func (r Report) ratio(floor string) float64 {
	e, f := r.totals(floor), r.totals("filestage")
	if e.Calls == 0 || f.Calls == 0 {
		return 0
	}
	return f.rate() / e.rate()
}

// Ratio is filestage's throughput over the echo server's.
func (r Report) Ratio() float64 { return r.ratio("echo") }

func (t Phase) cpuPerCall() float64 {
	if t.Calls == 0 {
		return 0
	}
	return float64(t.ServerCPU) / float64(t.Calls)
}

func perCall(d time.Duration, n int64) time.Duration {
	if n == 0 {
		return 0
	}
	return (d / time.Duration(n)).Round(time.Microsecond)
}

func (r Report) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d sessions over streamable HTTP, %d rounds of %s phases in the order %s (after %s of warm-up each)\n",
		r.Config.Sessions, r.Config.Rounds, r.Config.Phase, strings.Join(order, ", "), r.Config.Warmup)
	for _, p := range r.Phases {
		fmt.Fprintf(&b, "  %-9s %6d calls  %7.0f calls/s  server CPU %6s/call  client CPU %6s/call\n",
			p.Server, p.Calls, p.rate(), perCall(p.ServerCPU, p.Calls), perCall(p.ClientCPU, p.Calls))
	}
	f := r.totals("filestage")
	for _, name := range []string{"echo", "sized", "filestage"} {
		t := r.totals(name)
		fmt.Fprintf(&b, "%-10s %7.0f calls/s, server CPU %s/call, answer %d bytes\n", name+":", t.rate(), perCall(t.ServerCPU, t.Calls), t.AnswerBytes)
	}
	for _, floor := range []string{"echo", "sized"} {
		e := r.totals(floor)
		cpu := 0.0
		if e.cpuPerCall() > 0 {
			cpu = f.cpuPerCall() / e.cpuPerCall()
		}
		fmt.Fprintf(&b, "filestage/%s: throughput ratio %.2f, server CPU per call ratio %.2f\n", floor, r.ratio(floor), cpu)
	}
	fmt.Fprintf(&b, "errors: %d\n", r.Errors)
	for _, e := range r.FirstErrors {
		fmt.Fprintf(&b, "  %s\n", e)
	}
	return b.String()
}

// order is one round: each server measured twice, in an order that is
// the same read forwards and backwards, so that a machine getting
// steadily faster or slower favours none.
var order = []string{"echo", "filestage", "sized", "sized", "filestage", "echo"}

func run(ctx context.Context, cfg Config, logw io.Writer) (Report, error) {
	rep := Report{Config: cfg}
	work, err := os.MkdirTemp("", "filestage-callcost-")
	if err != nil {
		return rep, err
	}
	defer os.RemoveAll(work)
	if cfg.Bin, err = benchproc.Binary(ctx, cfg.Bin, work, logw); err != nil {
		return rep, err
	}
	self, err := os.Executable()
	if err != nil {
		return rep, err
	}
	args := []string{"serve", "--transport", "http", "--listen", "127.0.0.1:0", "--data-dir", filepath.Join(work, "data")}
	if cfg.CPUProfile != "" {
		args = append(args, "--metrics-listen", "127.0.0.1:0", "--pprof")
	}
	fs, err := benchproc.Start(ctx, exec.Command(cfg.Bin, args...), filepath.Join(work, "filestage.log"), benchproc.Started)
	if err != nil {
		return rep, fmt.Errorf("filestage: %w", err)
	}
	defer fs.Stop(syscall.SIGTERM, 10*time.Second)
	var errs errorList
	drivers := map[string]*driver{}
	if drivers["filestage"], err = connect(ctx, fs, presignTool, cfg.Sessions, &errs); err != nil {
		return rep, fmt.Errorf("filestage: %w", err)
	}
	defer drivers["filestage"].close()
	// The sized floor answers what filestage answers: one of its answers,
	// kept, is the echo server's answer tool's.
	answer, err := drivers["filestage"].sample(ctx)
	if err != nil {
		return rep, fmt.Errorf("filestage: %w", err)
	}
	answerPath := filepath.Join(work, "answer.json")
	if err := os.WriteFile(answerPath, answer, 0o600); err != nil {
		return rep, err
	}
	echoCmd := exec.Command(self)
	echoCmd.Env = append(os.Environ(), roleEnv+"=echo", answerEnv+"="+answerPath)
	echo, err := benchproc.Start(ctx, echoCmd, filepath.Join(work, "echo.log"), echoRE)
	if err != nil {
		return rep, fmt.Errorf("echo server: %w", err)
	}
	defer echo.Stop(syscall.SIGTERM, 10*time.Second)
	for name, tool := range map[string]string{"echo": echoTool, "sized": answerTool} {
		if drivers[name], err = connect(ctx, echo, tool, cfg.Sessions, &errs); err != nil {
			return rep, fmt.Errorf("%s: %w", name, err)
		}
		defer drivers[name].close()
	}
	profiled := make(chan error, 1)
	profiled <- nil
	for round := range cfg.Rounds {
		for _, name := range order {
			fmt.Fprintf(logw, "round %d: %s\n", round+1, name)
			if name == "filestage" && round == 0 && cfg.CPUProfile != "" && len(rep.Phases) == 1 { // the first filestage phase
				<-profiled
				go func() {
					profiled <- profile(fs.Log(), cfg.CPUProfile, cfg.Warmup, cfg.Phase)
				}()
			}
			p, err := drivers[name].phase(ctx, cfg.Warmup, cfg.Phase)
			if err != nil {
				return rep, err
			}
			p.Server = name
			rep.Phases = append(rep.Phases, p)
		}
	}
	if err := <-profiled; err != nil {
		return rep, fmt.Errorf("profile: %w", err)
	}
	rep.Errors, rep.FirstErrors = errs.n.Load(), errs.first()
	return rep, nil
}

var pprofRE = regexp.MustCompile(`msg="serving Go profiles" addr=(\S+)`)

// profile writes filestage's CPU profile of the stretch that starts after
// wait and lasts d to path; log is its log, which says where it serves
// its profiles.
func profile(log, path string, wait, d time.Duration) error {
	m := pprofRE.FindStringSubmatch(log)
	if m == nil {
		return fmt.Errorf("filestage serves no profiles:\n%s", log)
	}
	time.Sleep(wait)
	resp, err := http.Get(fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", m[1], int(d.Seconds())))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("%s: %s", resp.Status, msg)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// errorList counts failed calls and keeps the first few.
type errorList struct {
	n  atomic.Int64
	mu sync.Mutex
	l  []string
}

func (e *errorList) add(format string, args ...any) {
	if e.n.Add(1) <= 5 {
		e.mu.Lock()
		e.l = append(e.l, fmt.Sprintf(format, args...))
		e.mu.Unlock()
	}
}

func (e *errorList) first() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string(nil), e.l...)
}

var echoRE = regexp.MustCompile(`echo listening on (\S+)`)

// driver holds one server's sessions. The load client speaks JSON-RPC
// over net/http itself and reads only the fields it checks, so that its
// own work is small and the same per call for both servers: a client
// that decodes whole answers into maps spends more on filestage's longer
// answers than either server does, and would measure itself.
type driver struct {
	srv      *benchproc.Process
	tool     string
	http     *http.Client
	sessions []*session
	errs     *errorList
	answer   atomic.Int64
}

type session struct {
	id   string
	next int64
}

const protocolVersion = "2025-06-18"

func connect(ctx context.Context, srv *benchproc.Process, tool string, n int, errs *errorList) (*driver, error) {
	d := &driver{srv: srv, tool: tool, errs: errs,
		http: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: n, DisableCompression: true}}}
	for range n {
		s := &session{}
		init := map[string]any{"protocolVersion": protocolVersion, "capabilities": map[string]any{}, "clientInfo": map[string]any{"name": "callcost", "version": "1"}}
		if _, err := d.post(ctx, s, "initialize", init, true); err != nil {
			return nil, fmt.Errorf("initialize: %w", err)
		}
		if _, err := d.post(ctx, s, "notifications/initialized", nil, false); err != nil {
			return nil, fmt.Errorf("initialized: %w", err)
		}
		// As clients do: a session that makes no request is one
		// filestage may end to make room for a newcomer.
		if _, err := d.post(ctx, s, "tools/list", map[string]any{}, true); err != nil {
			return nil, fmt.Errorf("tools/list: %w", err)
		}
		d.sessions = append(d.sessions, s)
	}
	return d, nil
}

func (d *driver) close() {
	for _, s := range d.sessions {
		req, _ := http.NewRequest(http.MethodDelete, "http://"+d.srv.Addr+"/mcp", nil)
		req.Header.Set("Mcp-Session-Id", s.id)
		if resp, err := d.http.Do(req); err == nil {
			resp.Body.Close()
		}
	}
	d.http.CloseIdleConnections()
}

// post sends one JSON-RPC message in s (a request when id is set, else a
// notification) and returns the answer's JSON (an event stream's data).
func (d *driver) post(ctx context.Context, s *session, method string, params any, id bool) ([]byte, error) {
	msg := map[string]any{"jsonrpc": "2.0", "method": method}
	if params != nil {
		msg["params"] = params
	}
	if id {
		s.next++
		msg["id"] = s.next
	}
	body, err := json.Marshal(msg)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+d.srv.Addr+"/mcp", bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	if s.id != "" {
		req.Header.Set("Mcp-Session-Id", s.id)
		req.Header.Set("Mcp-Protocol-Version", protocolVersion)
	}
	resp, err := d.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode/100 != 2 {
		return nil, fmt.Errorf("%s: %.300s", resp.Status, b)
	}
	if sid := resp.Header.Get("Mcp-Session-Id"); sid != "" {
		s.id = sid
	}
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		// The answer is the last event's data.
		i := bytes.LastIndex(b, []byte("data: "))
		if i < 0 {
			return nil, fmt.Errorf("an event stream without data: %.300s", b)
		}
		b = bytes.TrimSpace(b[i+len("data: "):])
	}
	return b, nil
}

// sample makes one call and returns its structured content.
func (d *driver) sample(ctx context.Context) (json.RawMessage, error) {
	args := map[string]any{"toolkit_slug": "gmail", "tool_slug": "GMAIL_SEND_EMAIL", "filename": "report.pdf", "mimetype": "application/pdf", "md5": strings.Repeat("ab", 16)}
	b, err := d.post(ctx, d.sessions[0], "tools/call", map[string]any{"name": d.tool, "arguments": args}, true)
	if err != nil {
		return nil, err
	}
	var answer struct {
		Result struct {
			StructuredContent json.RawMessage `json:"structuredContent"`
		}
	}
	if err := json.Unmarshal(b, &answer); err != nil || len(answer.Result.StructuredContent) == 0 {
		return nil, fmt.Errorf("no structured content in %.300s (%v)", b, err)
	}
	return answer.Result.StructuredContent, nil
}

// phase has every session call in a loop for warmup+measure, and counts
// the calls that end within the measured stretch.
func (d *driver) phase(ctx context.Context, warmup, measure time.Duration) (Phase, error) {
	t0 := time.Now().Add(warmup)
	t1 := t0.Add(measure)
	var calls atomic.Int64
	var wg sync.WaitGroup
	for _, s := range d.sessions {
		wg.Go(func() {
			for time.Now().Before(t1) && ctx.Err() == nil {
				d.call(ctx, s)
				if now := time.Now(); now.After(t0) && now.Before(t1) {
					calls.Add(1)
				}
			}
		})
	}
	time.Sleep(time.Until(t0))
	srv0, self0 := d.srv.CPU(), benchproc.SelfCPU()
	time.Sleep(time.Until(t1))
	srv1, self1 := d.srv.CPU(), benchproc.SelfCPU()
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return Phase{}, err
	}
	return Phase{Calls: calls.Load(), Wall: measure, ServerCPU: srv1 - srv0, ClientCPU: self1 - self0, AnswerBytes: int(d.answer.Swap(0))}, nil
}

// call makes one call with new arguments (a new MD5, so that every
// presign is of new bytes) and checks its answer.
func (d *driver) call(ctx context.Context, s *session) {
	var sum [16]byte
	rand.Read(sum[:])
	md5 := hex.EncodeToString(sum[:])
	args := map[string]any{"toolkit_slug": "gmail", "tool_slug": "GMAIL_SEND_EMAIL", "filename": "report.pdf", "mimetype": "application/pdf", "md5": md5}
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	b, err := d.post(cctx, s, "tools/call", map[string]any{"name": d.tool, "arguments": args}, true)
	if err != nil {
		if ctx.Err() == nil {
			d.errs.add("%s: %v", d.tool, err)
		}
		return
	}
	d.answer.CompareAndSwap(0, int64(len(b)))
	var answer struct {
		Error  *struct{ Message string }
		Result struct {
			IsError           bool `json:"isError"`
			StructuredContent struct {
				MD5  string `json:"md5"`
				Key  string `json:"key"`
				Type string `json:"type"`
				URL  string `json:"new_presigned_url"`
			} `json:"structuredContent"`
		}
	}
	if err := json.Unmarshal(b, &answer); err != nil || answer.Error != nil || answer.Result.IsError {
		d.errs.add("%s: %v %.300s", d.tool, err, b)
		return
	}
	out := answer.Result.StructuredContent
	switch {
	case (d.tool == echoTool || d.tool == answerTool) && out.MD5 != md5:
		d.errs.add("echo answered %s", b)
	case d.tool == presignTool && (out.Key != "gmail/GMAIL_SEND_EMAIL/"+md5+".pdf" || out.Type != "new" || !strings.Contains(out.URL, "signature=")):
		d.errs.add("presign answered %s", b)
	}
}

// echoMain is the echo role: the smallest mcp-go server over streamable
// HTTP, one tool that returns its arguments as structured content (with
// the same JSON as text, as mcp-go's structured results carry).
func echoMain() int {
	s := server.NewMCPServer("echo", "1", server.WithToolCapabilities(false))
	s.AddTool(mcp.NewTool(echoTool, mcp.WithDescription("Returns its arguments.")),
		func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			args := req.GetArguments()
			b, err := json.Marshal(args)
			if err != nil {
				return nil, err
			}
			return mcp.NewToolResultStructured(args, string(b)), nil
		})
	if path := os.Getenv(answerEnv); path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		s.AddTool(mcp.NewTool(answerTool, mcp.WithDescription("Answers what filestage answered.")),
			func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
				// Decoded per call, as a handler builds its answer anew.
				var out map[string]any
				if err := json.Unmarshal(b, &out); err != nil {
					return nil, err
				}
				out["md5"] = req.GetArguments()["md5"]
				text, err := json.Marshal(out)
				if err != nil {
					return nil, err
				}
				res := mcp.NewToolResultStructured(out, string(text))
				link, _ := out["download_url"].(string)
				res.Content = append(res.Content, mcp.NewResourceLink(link, "report.pdf", "The file, read back from storage once uploaded.", "application/pdf"))
				return res, nil
			})
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	mux := http.NewServeMux()
	mux.Handle("/mcp", server.NewStreamableHTTPServer(s))
	w := bufio.NewWriter(os.Stdout)
	fmt.Fprintf(w, "echo listening on %s\n", ln.Addr())
	w.Flush()
	srv := &http.Server{Handler: mux}
	go func() {
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, syscall.SIGTERM, os.Interrupt)
		<-sig
		srv.Close()
	}()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

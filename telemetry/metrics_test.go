package telemetry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/filestage/filestage/providers"
	"github.com/filestage/filestage/tools"
	"github.com/filestage/filestage/transport"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// metricsServer is an MCP server with a tool that succeeds, one that answers
// with a tool error and one that waits for release, instrumented by m.
func metricsServer(t *testing.T, m *Metrics, release <-chan struct{}, started chan<- struct{}) *server.MCPServer {
	t.Helper()
	// Hooks already there stay: a hook of the caller's own runs too.
	var before int
	var mu sync.Mutex
	hooks := &server.Hooks{}
	hooks.AddBeforeAny(func(context.Context, any, mcp.MCPMethod, any) { mu.Lock(); before++; mu.Unlock() })
	srv := server.NewMCPServer("t", "1", server.WithToolCapabilities(false), server.WithRecovery(), server.WithHooks(hooks))
	srv.AddTool(mcp.NewTool("ok"), func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		return mcp.NewToolResultText("fine"), nil
	})
	srv.AddTool(mcp.NewTool("fails"), func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		return mcp.NewToolResultError("no"), nil
	})
	srv.AddTool(mcp.NewTool("waits"), func(ctx context.Context, _ mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		started <- struct{}{}
		<-release
		return mcp.NewToolResultText("done"), nil
	})
	m.Instrument(srv)
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		if before == 0 {
			t.Error("the hooks the server had were replaced")
		}
	})
	return srv
}

func sendMessage(t *testing.T, srv *server.MCPServer, ctx context.Context, msg string) mcp.JSONRPCMessage {
	t.Helper()
	return srv.HandleMessage(ctx, []byte(msg))
}

func toolCallMessage(id int, name string) string {
	return fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":%q,"arguments":{}}}`, id, name)
}

// histogramCount is how many observations the operation histogram has
// with these labels.
func histogramCount(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) uint64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metrics:
		for _, m := range mf.GetMetric() {
			got := map[string]string{}
			for _, lp := range m.GetLabel() {
				got[lp.GetName()] = lp.GetValue()
			}
			for k, v := range labels {
				if got[k] != v {
					continue metrics
				}
			}
			if len(got) != len(labels) {
				continue
			}
			return m.GetHistogram().GetSampleCount()
		}
	}
	return 0
}

func opLabels(method, tool, errType string) map[string]string {
	return map[string]string{"mcp_method_name": method, "gen_ai_tool_name": tool, "error_type": errType}
}

func TestOperationDuration(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg, MetricsOptions{Provider: "local", NoRuntime: true})
	release, started := make(chan struct{}), make(chan struct{}, 2)
	srv := metricsServer(t, m, release, started)
	ctx := context.Background()

	sendMessage(t, srv, ctx, `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`)
	sendMessage(t, srv, ctx, `{"jsonrpc":"2.0","id":2,"method":"tools/list"}`)
	sendMessage(t, srv, ctx, toolCallMessage(3, "ok"))
	sendMessage(t, srv, ctx, toolCallMessage(4, "ok"))
	sendMessage(t, srv, ctx, toolCallMessage(5, "fails"))
	// A name no tool has: a JSON-RPC error, and no label from the client.
	if resp, ok := sendMessage(t, srv, ctx, toolCallMessage(6, "made-up-by-a-client")).(mcp.JSONRPCError); !ok {
		t.Fatalf("unknown tool answered %#v", resp)
	}
	// Two calls in flight with the same id, as two clients may send:
	// each is timed on its own.
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() { defer wg.Done(); sendMessage(t, srv, ctx, toolCallMessage(7, "waits")) }()
	}
	<-started
	<-started
	close(release)
	wg.Wait()

	for _, tt := range []struct {
		labels map[string]string
		want   uint64
	}{
		{opLabels("initialize", "", ""), 1},
		{opLabels("tools/list", "", ""), 1},
		{opLabels("tools/call", "ok", ""), 2},
		{opLabels("tools/call", "fails", ToolError), 1},
		{opLabels("tools/call", ErrorOther, "-32602"), 1},
		{opLabels("tools/call", "waits", ""), 2},
	} {
		if got := histogramCount(t, reg, "mcp_server_operation_duration_seconds", tt.labels); got != tt.want {
			t.Errorf("%v: %d observations, want %d", tt.labels, got, tt.want)
		}
	}
	if n := testutil.CollectAndCount(m.operations); n != 6 {
		t.Errorf("%d operation series, want 6", n)
	}
	// Nothing is left behind for requests that ended.
	m.started.Range(func(k, _ any) bool { t.Errorf("request %v still in flight", k); return true })
}

type fakeSession struct{ id string }

func (s fakeSession) Initialize()       {}
func (s fakeSession) Initialized() bool { return true }
func (s fakeSession) NotificationChannel() chan<- mcp.JSONRPCNotification {
	return make(chan mcp.JSONRPCNotification, 1)
}
func (s fakeSession) SessionID() string { return s.id }

func TestSessionDuration(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg, MetricsOptions{NoRuntime: true})
	srv := server.NewMCPServer("t", "1")
	m.Instrument(srv) // a server without hooks gets some
	ctx := context.Background()
	for _, id := range []string{"a", "b"} {
		if err := srv.RegisterSession(ctx, fakeSession{id}); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(20 * time.Millisecond)
	srv.UnregisterSession(ctx, "a")
	srv.UnregisterSession(ctx, "never-registered")
	var h dto.Metric
	if err := m.sessions.Write(&h); err != nil {
		t.Fatal(err)
	}
	if n, sum := h.GetHistogram().GetSampleCount(), h.GetHistogram().GetSampleSum(); n != 1 || sum < 0.02 {
		t.Errorf("%d sessions observed, %g s in all; want 1, at least 0.02 s", n, sum)
	}
}

func TestCounters(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg, MetricsOptions{Provider: "composio", NoRuntime: true})
	m.Tools("stage_connector_file", "request_presigned_upload")
	m.CallStarted("stage_connector_file")
	m.CallStarted("stage_connector_file")
	if g := testutil.ToFloat64(m.inFlight.WithLabelValues("stage_connector_file")); g != 2 {
		t.Errorf("in flight %g, want 2", g)
	}
	m.CallEnded("stage_connector_file", "ok")
	m.CallEnded("stage_connector_file", "SOURCE_REFUSED")
	m.CallStarted("request_presigned_upload")
	m.CallEnded("request_presigned_upload", "ok")
	m.Fetched(tools.SourceHTTP, 1000)
	m.Fetched(tools.SourceHTTP, 24)
	m.Fetched(tools.SourceData, 5)
	m.Fetched(tools.SourceFile, 0)
	m.Stored(1024)
	m.ProviderAttempt(providers.OpUpload, providers.AttemptRetry)
	m.ProviderAttempt(providers.OpUpload, providers.AttemptOK)
	m.ProviderAttempt(providers.OpAPI, providers.AttemptOK)
	m.Refused("max_connections")
	m.Refused("unauthorized")
	m.AuthFailed("missing_token")
	var inUse int64 = 4096
	m.WatchSpool(func() int64 { return inUse }, func() int64 { return 1 << 20 })
	m.WatchSessions(func() int { return 3 })

	want := `
# HELP filestage_tool_calls_total Tool calls by tool and outcome: ok, or the tool error's slug (BUSY, SOURCE_REFUSED, ...).
# TYPE filestage_tool_calls_total counter
filestage_tool_calls_total{outcome="SOURCE_REFUSED",tool="stage_connector_file"} 1
filestage_tool_calls_total{outcome="ok",tool="request_presigned_upload"} 1
filestage_tool_calls_total{outcome="ok",tool="stage_connector_file"} 1
# HELP filestage_tool_calls_in_flight Tool calls running now, by tool.
# TYPE filestage_tool_calls_in_flight gauge
filestage_tool_calls_in_flight{tool="request_presigned_upload"} 0
filestage_tool_calls_in_flight{tool="stage_connector_file"} 0
# HELP filestage_source_fetched_bytes_total Bytes read from sources by stage calls, by source kind (http, file, data); a failed call counts what it read.
# TYPE filestage_source_fetched_bytes_total counter
filestage_source_fetched_bytes_total{kind="data"} 5
filestage_source_fetched_bytes_total{kind="file"} 0
filestage_source_fetched_bytes_total{kind="http"} 1024
# HELP filestage_provider_stored_bytes_total Bytes stage calls and user uploads stored with the provider (none for bytes it already held).
# TYPE filestage_provider_stored_bytes_total counter
filestage_provider_stored_bytes_total{provider="composio"} 1024
# HELP filestage_provider_attempts_total HTTP attempts of the provider client, by provider, op (api or upload) and outcome: ok, retry (failed and made again) or error (failed, given up).
# TYPE filestage_provider_attempts_total counter
filestage_provider_attempts_total{op="api",outcome="error",provider="composio"} 0
filestage_provider_attempts_total{op="api",outcome="ok",provider="composio"} 1
filestage_provider_attempts_total{op="api",outcome="retry",provider="composio"} 0
filestage_provider_attempts_total{op="upload",outcome="error",provider="composio"} 0
filestage_provider_attempts_total{op="upload",outcome="ok",provider="composio"} 1
filestage_provider_attempts_total{op="upload",outcome="retry",provider="composio"} 1
# HELP filestage_http_refusals_total Connections and requests the HTTP listener refused, by reason (max_connections, slow_body, or the answer's status such as unauthorized or too_many_requests): the counts of the 'refused connections and requests' log line.
# TYPE filestage_http_refusals_total counter
filestage_http_refusals_total{reason="max_connections"} 1
filestage_http_refusals_total{reason="unauthorized"} 1
# HELP filestage_auth_failures_total Requests refused by authentication, by reason: missing_token and invalid_token (401), insufficient_scope (403), unavailable (the token could not be checked: 503).
# TYPE filestage_auth_failures_total counter
filestage_auth_failures_total{reason="insufficient_scope"} 0
filestage_auth_failures_total{reason="invalid_token"} 0
filestage_auth_failures_total{reason="missing_token"} 1
filestage_auth_failures_total{reason="unavailable"} 0
# HELP filestage_spool_bytes_in_use Disk reserved by the temporary files of stage calls and received uploads (--spool-budget).
# TYPE filestage_spool_bytes_in_use gauge
filestage_spool_bytes_in_use 4096
# HELP filestage_spool_budget_bytes The spool budget: the most disk temporary files may use at once.
# TYPE filestage_spool_budget_bytes gauge
filestage_spool_budget_bytes 1.048576e+06
# HELP filestage_sessions_open Live MCP sessions over HTTP, streamable HTTP and SSE together (--max-sessions).
# TYPE filestage_sessions_open gauge
filestage_sessions_open 3
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want),
		"filestage_tool_calls_total", "filestage_tool_calls_in_flight", "filestage_source_fetched_bytes_total",
		"filestage_provider_stored_bytes_total", "filestage_provider_attempts_total", "filestage_http_refusals_total",
		"filestage_auth_failures_total", "filestage_spool_bytes_in_use", "filestage_spool_budget_bytes", "filestage_sessions_open"); err != nil {
		t.Error(err)
	}
	// A gauge function is read at each scrape.
	inUse = 0
	if err := testutil.GatherAndCompare(reg, strings.NewReader("# HELP filestage_spool_bytes_in_use Disk reserved by the temporary files of stage calls and received uploads (--spool-budget).\n# TYPE filestage_spool_bytes_in_use gauge\nfilestage_spool_bytes_in_use 0\n"), "filestage_spool_bytes_in_use"); err != nil {
		t.Error(err)
	}
}

// TestLint checks the whole exposition, the Go runtime and process
// collectors included, as promtool check metrics does, and parses the
// text the handler serves strictly.
func TestLint(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg, MetricsOptions{Provider: "local"})
	srv := server.NewMCPServer("t", "1", server.WithToolCapabilities(false))
	srv.AddTool(mcp.NewTool("ok"), func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		return mcp.NewToolResultText("fine"), nil
	})
	m.Instrument(srv)
	srv.HandleMessage(context.Background(), []byte(toolCallMessage(1, "ok")))
	m.WatchSpool(func() int64 { return 1 }, func() int64 { return 2 })
	m.WatchSessions(func() int { return 0 })
	m.Fetched(tools.SourceFile, 10)
	m.Refused("slow_body")
	m.AuthFailed("invalid_token")
	problems, err := testutil.GatherAndLint(reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}

	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", transport.PathMetrics, nil))
	if rec.Code != 200 {
		t.Fatalf("status %d", rec.Code)
	}
	p := expfmt.NewTextParser(model.LegacyValidation)
	families, err := p.TextToMetricFamilies(rec.Body)
	if err != nil {
		t.Fatalf("exposition does not parse: %v", err)
	}
	for _, name := range []string{"go_goroutines", "process_cpu_seconds_total", "mcp_server_operation_duration_seconds",
		"mcp_server_session_duration_seconds", "filestage_tool_calls_total", "promhttp_metric_handler_requests_total"} {
		if families[name] == nil {
			t.Errorf("no %s in the exposition", name)
		}
	}
	if mf := families["filestage_tool_calls_total"]; mf != nil && len(mf.GetMetric()) != 1 {
		t.Errorf("tool calls: %v, want the one tool's ok series", mf.GetMetric())
	}
}

func TestServe(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg, MetricsOptions{NoRuntime: true})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ServeMetrics(ctx, ln, DebugMux(m.Handler(), false), slog.New(slog.DiscardHandler)) }()
	base := "http://" + ln.Addr().String()
	for path, want := range map[string]int{transport.PathMetrics: 200, "/": 404, "/mcp": 404, "/metrics/x": 404} {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("GET %s: %d, want %d", path, resp.StatusCode, want)
		}
		if path == transport.PathMetrics && !strings.Contains(string(body), "mcp_server_session_duration_seconds") {
			t.Errorf("GET %s: %s", path, body)
		}
	}
	if resp, err := http.Post(base+transport.PathMetrics, "text/plain", nil); err != nil || resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST %s: %v %v", transport.PathMetrics, resp, err)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Serve: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not stop")
	}
	if _, err := http.Get(base + transport.PathMetrics); err == nil {
		t.Error("the listener is still open")
	}
}

func TestErrorType(t *testing.T) {
	if got := errorType(errors.New("plain")); got != ErrorOther {
		t.Errorf("plain error: %q", got)
	}
	if requestKey(context.Background(), 1, nil) != requestKey(context.Background(), 1, nil) {
		t.Error("a request without a message has no stable key")
	}
	_ = requestKey(context.Background(), []int{1}, nil) // an id that cannot key a map does not panic
}

// TestDebugMuxProfiles: Go's profiles are served only when asked for.
func TestDebugMuxProfiles(t *testing.T) {
	m := NewMetrics(prometheus.NewRegistry(), MetricsOptions{NoRuntime: true})
	for _, profiles := range []bool{false, true} {
		srv := httptest.NewServer(DebugMux(m.Handler(), profiles))
		for _, path := range []string{"/debug/pprof/", "/debug/pprof/goroutine?debug=1", "/debug/pprof/profile?seconds=1", "/debug/pprof/heap"} {
			resp, err := http.Get(srv.URL + path)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if want := map[bool]int{false: 404, true: 200}[profiles]; resp.StatusCode != want {
				t.Errorf("profiles %v: GET %s: %d, want %d", profiles, path, resp.StatusCode, want)
			}
		}
		// The command line may hold a token given as a flag.
		if resp, err := http.Get(srv.URL + "/debug/pprof/cmdline"); err != nil || resp.StatusCode == 200 {
			t.Errorf("profiles %v: /debug/pprof/cmdline: %v %v", profiles, resp, err)
		} else {
			resp.Body.Close()
		}
		if resp, err := http.Get(srv.URL + transport.PathMetrics); err != nil || resp.StatusCode != 200 {
			t.Errorf("profiles %v: /metrics: %v %v", profiles, resp, err)
		} else {
			resp.Body.Close()
		}
		srv.Close()
	}
}

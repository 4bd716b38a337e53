package main

import (
	"bytes"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	mcptransport "github.com/mark3labs/mcp-go/client/transport"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/filestage/filestage/auth"
	"github.com/filestage/filestage/internal/testfile"
	"github.com/filestage/filestage/providers/composio/composiotest"
	"github.com/filestage/filestage/schema"
)

// exposition is one scrape of /metrics, parsed.
type exposition map[string]*dto.MetricFamily

// scrape GETs url with token (none when empty), checks the answer as
// promtool check metrics does (promlint, which parses it strictly too),
// and parses it with the text format's own parser.
func scrape(t *testing.T, url, token string) exposition {
	t.Helper()
	resp, raw := getWith(t, url, token)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %s\n%s", url, resp.Status, raw)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain; version=0.0.4") {
		t.Errorf("Content-Type %q, want the text format", ct)
	}
	problems, err := promlint.New(bytes.NewReader(raw)).Lint()
	if err != nil {
		t.Fatalf("lint: %v", err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
	p := expfmt.NewTextParser(model.LegacyValidation)
	families, err := p.TextToMetricFamilies(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	return families
}

// value is the series' value (a histogram's count), and whether the
// exposition has it; labels must match the series' labels exactly.
func (e exposition) value(name string, labels map[string]string) (float64, bool) {
	mf := e[name]
	if mf == nil {
		return 0, false
	}
series:
	for _, m := range mf.GetMetric() {
		if len(m.GetLabel()) != len(labels) {
			continue
		}
		for _, lp := range m.GetLabel() {
			if v, ok := labels[lp.GetName()]; !ok || v != lp.GetValue() {
				continue series
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue(), true
		case m.Gauge != nil:
			return m.Gauge.GetValue(), true
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount()), true
		case m.Untyped != nil:
			return m.Untyped.GetValue(), true
		}
	}
	return 0, false
}

// want checks series against their expected values.
func (e exposition) want(t *testing.T, series []wantSeries) {
	t.Helper()
	for _, s := range series {
		got, ok := e.value(s.name, s.labels)
		switch {
		case !ok:
			t.Errorf("no series %s%v", s.name, s.labels)
		case got != s.value:
			t.Errorf("%s%v = %g, want %g", s.name, s.labels, got, s.value)
		}
	}
}

type wantSeries struct {
	name   string
	labels map[string]string
	value  float64
}

func l(kv ...string) map[string]string {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return m
}

func operation(method, tool, errType string) map[string]string {
	return l("mcp_method_name", method, "gen_ai_tool_name", tool, "error_type", errType)
}

// get is the status of a GET of url with token (none when empty).
func get(t *testing.T, url, token string) int {
	t.Helper()
	resp, _ := getWith(t, url, token)
	return resp.StatusCode
}

// TestMetrics makes calls of each kind over streamable HTTP with a token,
// then scrapes /metrics on the main listener with the token: every series
// says what happened, and the exposition passes the linter.
func TestMetrics(t *testing.T) {
	const token = "metrics-test-token"
	s := start(t, map[string]string{"FILESTAGE_AUTH_TOKEN": token}, "serve", "--transport", "http", "--listen", "127.0.0.1:0")
	base := "http://" + s.addr

	// Without the token, /metrics is refused as /mcp is.
	if code := get(t, base+"/metrics", ""); code != http.StatusUnauthorized {
		t.Errorf("/metrics without a token: %d, want 401", code)
	}
	if code := get(t, base+"/metrics", "wrong"); code != http.StatusUnauthorized {
		t.Errorf("/metrics with a wrong token: %d, want 401", code)
	}
	resp, err := http.Post(base+"/mcp", "application/json", strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"ping"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("/mcp without a token: %d, want 401", resp.StatusCode)
	}

	// A browser page of another origin, and a rebound DNS name: refused
	// before authentication, each under its own reason.
	for _, r := range []struct{ origin, host string }{{"http://evil.example", ""}, {"", "evil.example"}} {
		req, _ := http.NewRequest(http.MethodPost, base+"/mcp", strings.NewReader(`{}`))
		if r.origin != "" {
			req.Header.Set("Origin", r.origin)
		}
		if r.host != "" {
			req.Host = r.host
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("origin %q host %q: %d, want 403", r.origin, r.host, resp.StatusCode)
		}
	}

	c, err := client.NewStreamableHttpClient(base+"/mcp", mcptransport.WithHTTPHeaders(map[string]string{"Authorization": "Bearer " + token}))
	if err != nil {
		t.Fatal(err)
	}
	connect(t, c)
	img := testfile.PNG(64 << 10)
	src := sourceServer(t, map[string][]byte{"/chart": img}, "image/png")
	decode[schema.StageResponse](t, call(t, c, "stage_connector_file", map[string]any{"url": src.URL + "/chart", "toolSlug": "GMAIL_SEND_EMAIL"}))
	// The same bytes again: nothing more is stored.
	decode[schema.StageResponse](t, call(t, c, "stage_connector_file", map[string]any{"url": src.URL + "/chart", "toolSlug": "GMAIL_SEND_EMAIL"}))
	if e := toolError(t, call(t, c, "stage_connector_file", map[string]any{"url": src.URL + "/missing", "toolSlug": "GMAIL_SEND_EMAIL"})); e.Slug != "SOURCE_HTTP_ERROR" {
		t.Errorf("failing stage: %+v", e)
	}
	if e := toolError(t, call(t, c, "stage_connector_file", map[string]any{"url": "data:text/plain,hello", "toolSlug": "gmail_send_email"})); e.Slug != "INVALID_ARGUMENT" {
		t.Errorf("bad argument: %+v", e)
	}
	decode[schema.PresignResponse](t, call(t, c, "request_presigned_upload", map[string]any{
		"toolkit_slug": "slack", "tool_slug": "SLACK_UPLOAD_FILE", "filename": "notes.txt", "mimetype": "text/plain", "md5": md5hex([]byte("hello")),
	}))

	m := scrape(t, base+"/metrics", token)
	m.want(t, []wantSeries{
		{"filestage_tool_calls_total", l("tool", "stage_connector_file", "outcome", "ok"), 2},
		{"filestage_tool_calls_total", l("tool", "stage_connector_file", "outcome", "SOURCE_HTTP_ERROR"), 1},
		{"filestage_tool_calls_total", l("tool", "stage_connector_file", "outcome", "INVALID_ARGUMENT"), 1},
		{"filestage_tool_calls_total", l("tool", "request_presigned_upload", "outcome", "ok"), 1},
		{"filestage_tool_calls_total", l("tool", "stage_connector_files", "outcome", "ok"), 0},
		{"filestage_tool_calls_in_flight", l("tool", "stage_connector_file"), 0},
		{"filestage_source_fetched_bytes_total", l("kind", "http"), float64(2 * len(img))},
		{"filestage_source_fetched_bytes_total", l("kind", "data"), 0},
		{"filestage_provider_stored_bytes_total", l("provider", "local"), float64(len(img))},
		{"filestage_provider_attempts_total", l("provider", "local", "op", "upload", "outcome", "ok"), 0},
		{"filestage_spool_bytes_in_use", l(), 0},
		{"filestage_sessions_open", l(), 1},
		{"filestage_auth_failures_total", l("reason", "missing_token"), 2},
		{"filestage_auth_failures_total", l("reason", "invalid_token"), 1},
		{"filestage_http_refusals_total", l("reason", "unauthorized"), 3},
		{"filestage_http_refusals_total", l("reason", "origin"), 1},
		{"filestage_http_refusals_total", l("reason", "host"), 1},
		{"mcp_server_operation_duration_seconds", operation("initialize", "", ""), 1},
		{"mcp_server_operation_duration_seconds", operation("tools/call", "stage_connector_file", ""), 2},
		{"mcp_server_operation_duration_seconds", operation("tools/call", "stage_connector_file", "tool_error"), 2},
		{"mcp_server_operation_duration_seconds", operation("tools/call", "request_presigned_upload", ""), 1},
		{"mcp_server_session_duration_seconds", l(), 0},
	})
	if v, ok := m.value("filestage_spool_budget_bytes", l()); !ok || v <= 0 {
		t.Errorf("spool budget %g", v)
	}
	for _, name := range []string{"go_goroutines", "go_memstats_heap_alloc_bytes", "process_cpu_seconds_total", "process_open_fds", "promhttp_metric_handler_requests_total"} {
		if m[name] == nil {
			t.Errorf("no %s: the Go runtime and process collectors are on", name)
		}
	}

	// A session that ends is timed. (The client's own DELETE carries
	// no token.)
	del, _ := http.NewRequest("DELETE", base+"/mcp", nil)
	del.Header.Set("Authorization", "Bearer "+token)
	del.Header.Set("Mcp-Session-Id", c.GetTransport().(*mcptransport.StreamableHTTP).GetSessionId())
	if resp, err := http.DefaultClient.Do(del); err != nil || resp.StatusCode != 200 {
		t.Fatalf("DELETE /mcp: %v %v", resp, err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		m = scrape(t, base+"/metrics", token)
		if n, _ := m.value("mcp_server_session_duration_seconds", l()); n == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the closed session was not timed")
		}
		time.Sleep(50 * time.Millisecond)
	}
	m.want(t, []wantSeries{{"filestage_sessions_open", l(), 0}, {"filestage_auth_failures_total", l("reason", "insufficient_scope"), 0}})
	if strings.Contains(s.logs.String(), token) {
		t.Error("the token appears in the log")
	}
}

// TestMetricsProviderAttempts: a platform's failure that the client
// retries is counted as a retry, then an ok.
func TestMetricsProviderAttempts(t *testing.T) {
	f := composiotest.New(t)
	env := f.Env()
	env["FILESTAGE_PROVIDER"] = "composio"
	s := start(t, env, "serve", "--transport", "http", "--listen", "127.0.0.1:0")
	c, err := client.NewStreamableHttpClient("http://" + s.addr + "/mcp")
	if err != nil {
		t.Fatal(err)
	}
	connect(t, c)
	f.FailNextUpload(503, nil, "busy")
	body := "bytes-for-composio"
	decode[schema.StageResponse](t, call(t, c, "stage_connector_file", map[string]any{"url": "data:text/plain," + body, "toolSlug": "GMAIL_SEND_EMAIL"}))
	scrape(t, "http://"+s.addr+"/metrics", "").want(t, []wantSeries{
		{"filestage_provider_attempts_total", l("provider", "composio", "op", "api", "outcome", "ok"), 1},
		{"filestage_provider_attempts_total", l("provider", "composio", "op", "upload", "outcome", "retry"), 1},
		{"filestage_provider_attempts_total", l("provider", "composio", "op", "upload", "outcome", "ok"), 1},
		{"filestage_provider_attempts_total", l("provider", "composio", "op", "upload", "outcome", "error"), 0},
		{"filestage_provider_stored_bytes_total", l("provider", "composio"), float64(len(body))},
		{"filestage_source_fetched_bytes_total", l("kind", "data"), float64(len(body))},
		{"filestage_tool_calls_total", l("tool", "stage_connector_file", "outcome", "ok"), 1},
	})
}

var metricsAddr = regexp.MustCompile(`msg="serving metrics" addr=(\S+)`)

// metricsListener is where the server s serves --metrics-listen, as its
// log says.
func metricsListener(t *testing.T, s *instance) string {
	t.Helper()
	m := metricsAddr.FindStringSubmatch(s.logs.String())
	if m == nil {
		t.Fatalf("no metrics listener in the log:\n%s", s.logs)
	}
	return "http://" + m[1]
}

// TestMetricsListen: with --metrics-listen the metrics are served there,
// without the token, and no longer on the main listener.
func TestMetricsListen(t *testing.T) {
	const token = "metrics-listen-token"
	s := start(t, map[string]string{"FILESTAGE_AUTH_TOKEN": token, "FILESTAGE_METRICS_LISTEN": "127.0.0.1:0"},
		"serve", "--transport", "http", "--listen", "127.0.0.1:0")
	metrics := metricsListener(t, s)
	if code := get(t, "http://"+s.addr+"/metrics", token); code != http.StatusNotFound {
		t.Errorf("/metrics on the main listener: %d, want 404", code)
	}
	if code := get(t, metrics+"/mcp", ""); code != http.StatusNotFound {
		t.Errorf("/mcp on the metrics listener: %d, want 404", code)
	}
	// A rebound DNS name pointing at the loopback port reads nothing.
	req, _ := http.NewRequest(http.MethodGet, metrics+"/metrics", nil)
	req.Host = "rebound.example"
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusForbidden {
		t.Errorf("/metrics with a foreign Host: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
	c, err := client.NewStreamableHttpClient("http://"+s.addr+"/mcp", mcptransport.WithHTTPHeaders(map[string]string{"Authorization": "Bearer " + token}))
	if err != nil {
		t.Fatal(err)
	}
	connect(t, c)
	decode[schema.StageResponse](t, call(t, c, "stage_connector_file", map[string]any{"url": "data:text/plain,hello", "toolSlug": "GMAIL_SEND_EMAIL"}))
	scrape(t, metrics+"/metrics", "").want(t, []wantSeries{
		{"filestage_tool_calls_total", l("tool", "stage_connector_file", "outcome", "ok"), 1},
		{"filestage_source_fetched_bytes_total", l("kind", "data"), 5},
		{"filestage_sessions_open", l(), 1},
		{"filestage_auth_failures_total", l("reason", "missing_token"), 0},
	})
}

// TestMetricsStdio: over stdio only --metrics-listen serves metrics; the
// upload listener does not.
func TestMetricsStdio(t *testing.T) {
	s := start(t, map[string]string{"FILESTAGE_METRICS_LISTEN": "127.0.0.1:0"})
	metrics := metricsListener(t, s)
	if code := get(t, "http://"+s.addr+"/metrics", ""); code != http.StatusNotFound {
		t.Errorf("/metrics on the upload listener: %d, want 404", code)
	}
	c := connect(t, client.NewClient(mcptransport.NewIO(s.stdin, s.stdout, io.NopCloser(strings.NewReader("")))))
	decode[schema.StageResponse](t, call(t, c, "stage_connector_file", map[string]any{"url": "data:text/plain,hello", "toolSlug": "GMAIL_SEND_EMAIL"}))
	scrape(t, metrics+"/metrics", "").want(t, []wantSeries{
		{"filestage_tool_calls_total", l("tool", "stage_connector_file", "outcome", "ok"), 1},
		{"filestage_source_fetched_bytes_total", l("kind", "data"), 5},
		{"filestage_provider_stored_bytes_total", l("provider", "local"), 5},
		{"mcp_server_operation_duration_seconds", operation("tools/call", "stage_connector_file", ""), 1},
	})
	if _, ok := scrape(t, metrics+"/metrics", "")["filestage_sessions_open"]; ok {
		t.Error("stdio reports HTTP sessions")
	}
}

// TestMetricsNeedTheirScope: the metrics are every client's, so on the
// main listener only a token granted metrics:read reads them.
func TestMetricsNeedTheirScope(t *testing.T) {
	app, appLine, _ := auth.NewToken("app", []string{"files:stage"})
	ops, opsLine, _ := auth.NewToken("ops", []string{"metrics:read"})
	s := start(t, map[string]string{"FILESTAGE_TOKENS_FILE": tokensFile(t, appLine, opsLine)}, "serve", "--transport", "http", "--listen", "127.0.0.1:0")
	for token, want := range map[string]int{app: http.StatusForbidden, ops: http.StatusOK, "": http.StatusUnauthorized} {
		if code := get(t, "http://"+s.addr+"/metrics", token); code != want {
			t.Errorf("token %.8s…: %d, want %d", token, code, want)
		}
	}
}

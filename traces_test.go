package main

import (
	"encoding/base64"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"

	"github.com/mark3labs/mcp-go/mcp"
	collector "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/filestage/filestage/tools"
)

// TestTracesExportedByOTLP: with OTEL_EXPORTER_OTLP_ENDPOINT set, the
// server sends its spans by OTLP/HTTP, a stage's server span carrying the
// parent its caller sent in _meta and the service's name.
func TestTracesExportedByOTLP(t *testing.T) {
	var mu sync.Mutex
	var spans []*tracepb.Span
	var services []string
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var req collector.ExportTraceServiceRequest
		if r.URL.Path != "/v1/traces" || proto.Unmarshal(body, &req) != nil {
			http.Error(w, "not an OTLP trace export", http.StatusBadRequest)
			return
		}
		mu.Lock()
		defer mu.Unlock()
		for _, rs := range req.ResourceSpans {
			for _, a := range rs.GetResource().GetAttributes() {
				if a.Key == "service.name" {
					services = append(services, a.GetValue().GetStringValue())
				}
			}
			for _, ss := range rs.ScopeSpans {
				spans = append(spans, ss.Spans...)
			}
		}
		w.Header().Set("Content-Type", "application/x-protobuf")
		b, _ := proto.Marshal(&collector.ExportTraceServiceResponse{})
		w.Write(b)
	}))
	defer receiver.Close()

	s := start(t, map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.URL}, "serve", "--transport", "http", "--listen", "127.0.0.1:0")
	c := transports[1].connect(t, s, mcp.LATEST_LEGACY_PROTOCOL_VERSION)
	req := mcp.CallToolRequest{}
	req.Params.Name = tools.StageName
	req.Params.Arguments = map[string]any{"url": "data:text/plain;base64," + base64.StdEncoding.EncodeToString([]byte("exported")), "toolSlug": "GMAIL_SEND_EMAIL"}
	req.Params.Meta = &mcp.Meta{AdditionalFields: map[string]any{"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}}
	if res, err := c.CallTool(t.Context(), req); err != nil || res.IsError {
		t.Fatalf("stage: %v %v", res, err)
	}
	c.Close()
	s.stop(t) // flushes the spans

	mu.Lock()
	defer mu.Unlock()
	var found bool
	for _, sp := range spans {
		if sp.Name == "tools/call "+tools.StageName {
			found = hex.EncodeToString(sp.TraceId) == "4bf92f3577b34da6a3ce929d0e0e4736" && hex.EncodeToString(sp.ParentSpanId) == "00f067aa0ba902b7" &&
				sp.Kind == tracepb.Span_SPAN_KIND_SERVER && slices.ContainsFunc(sp.Attributes, func(a *commonpb.KeyValue) bool {
				// The id the request's access line and log lines carry.
				return a.Key == "filestage.request_id" && len(a.GetValue().GetStringValue()) == 16
			})
		}
	}
	if !found || len(services) == 0 || services[0] != "filestage" {
		var names []string
		for _, sp := range spans {
			names = append(names, sp.Name)
		}
		t.Errorf("exported spans %v from services %v: want the stage's server span under the caller's trace", names, services)
	}
}

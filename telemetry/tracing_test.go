package telemetry_test

import (
	"context"
	"encoding/base64"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	mcptransport "github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/filestage/filestage/providers"
	"github.com/filestage/filestage/providers/local"
	"github.com/filestage/filestage/source"
	"github.com/filestage/filestage/telemetry"
	"github.com/filestage/filestage/tools"
)

const (
	parentTrace = "4bf92f3577b34da6a3ce929d0e0e4736"
	parentSpan  = "00f067aa0ba902b7"
	traceparent = "00-" + parentTrace + "-" + parentSpan + "-01"
)

// TestTraces: over streamable HTTP, a tools/call is a server span named
// as the MCP semantic conventions name it, child of the trace the client
// sent in _meta (SEP-414) or in its headers, with a span for each step of
// the stage under it; a tool error marks the span.
func TestTraces(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	dir := t.TempDir()
	store, err := local.New(providers.Settings{DataDir: dir, PublicURL: "http://127.0.0.1:1", MaxBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	sources, err := source.New(source.Options{MaxBytes: 1 << 20, Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	svc := &tools.Service{Provider: store, Sources: sources, SpoolDir: filepath.Join(dir, "tmp"), MaxBytes: 1 << 20, Logger: slog.New(slog.DiscardHandler)}
	srv := httptest.NewServer(server.NewStreamableHTTPServer(tools.NewServer("test", svc, telemetry.ServerOptions(tp)...)))
	defer srv.Close()

	for _, tt := range []struct {
		name   string
		header bool
	}{{"meta", false}, {"header", true}} {
		t.Run(tt.name, func(t *testing.T) {
			rec.Reset()
			var opts []mcptransport.StreamableHTTPCOption
			if tt.header {
				opts = append(opts, mcptransport.WithHTTPHeaders(map[string]string{"traceparent": traceparent}))
			}
			c, err := client.NewStreamableHttpClient(srv.URL, opts...)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			ctx := context.Background()
			if err := c.Start(ctx); err != nil {
				t.Fatal(err)
			}
			init := mcp.InitializeRequest{}
			init.Params.ProtocolVersion = mcp.LATEST_LEGACY_PROTOCOL_VERSION
			if _, err := c.Initialize(ctx, init); err != nil {
				t.Fatal(err)
			}
			call := func(args map[string]any) *mcp.CallToolResult {
				req := mcp.CallToolRequest{}
				req.Params.Name, req.Params.Arguments = tools.StageName, args
				if !tt.header {
					req.Params.Meta = &mcp.Meta{AdditionalFields: map[string]any{"traceparent": traceparent}}
				}
				res, err := c.CallTool(ctx, req)
				if err != nil {
					t.Fatal(err)
				}
				return res
			}
			if res := call(map[string]any{"url": "data:text/plain;base64," + base64.StdEncoding.EncodeToString([]byte("traced")), "toolSlug": "GMAIL_SEND_EMAIL"}); res.IsError {
				t.Fatalf("stage: %v", res.Content)
			}
			if res := call(map[string]any{"url": "ftp://example.com/a", "toolSlug": "GMAIL_SEND_EMAIL"}); !res.IsError {
				t.Fatal("a bad URL was staged")
			}

			spans := rec.Ended()
			byName := map[string][]sdktrace.ReadOnlySpan{}
			for _, s := range spans {
				byName[s.Name()] = append(byName[s.Name()], s)
			}
			calls := byName["tools/call "+tools.StageName]
			if len(calls) != 2 {
				t.Fatalf("spans %v: want two named tools/call %s", names(spans), tools.StageName)
			}
			for i, s := range calls {
				attrs := attrMap(s.Attributes())
				if s.SpanKind() != trace.SpanKindServer || s.Parent().TraceID().String() != parentTrace || s.Parent().SpanID().String() != parentSpan ||
					attrs["mcp.method.name"] != "tools/call" || attrs["gen_ai.tool.name"] != tools.StageName {
					t.Errorf("server span %d: kind %v parent %v attrs %v", i, s.SpanKind(), s.Parent(), attrs)
				}
			}
			failed := calls[1]
			if failed.Status().Code != codes.Error || attrMap(failed.Attributes())["error.type"] != "tool_error" {
				t.Errorf("the failed call's span: %v %v", failed.Status(), failed.Attributes())
			}
			// The stage's steps hang under the tool span, which hangs
			// under the server span.
			exec := byName["execute_tool "+tools.StageName]
			if len(exec) != 2 || exec[0].Parent().SpanID() != calls[0].SpanContext().SpanID() {
				t.Fatalf("execute_tool spans %v", names(spans))
			}
			for _, step := range []string{"fetch", "read and hash", "store"} {
				got := byName[step]
				if len(got) != 1 || got[0].Parent().SpanID() != exec[0].SpanContext().SpanID() || got[0].SpanContext().TraceID().String() != parentTrace {
					t.Errorf("%s spans: %v (all: %v)", step, got, names(spans))
				}
			}
			// Every request is a span, not only tool calls.
			if !slices.ContainsFunc(spans, func(s sdktrace.ReadOnlySpan) bool { return s.Name() == "initialize" }) {
				t.Errorf("no initialize span: %v", names(spans))
			}
		})
	}
}

func names(spans []sdktrace.ReadOnlySpan) []string {
	var out []string
	for _, s := range spans {
		out = append(out, s.Name())
	}
	return out
}

func attrMap(kv []attribute.KeyValue) map[string]string {
	m := map[string]string{}
	for _, a := range kv {
		m[string(a.Key)] = a.Value.Emit()
	}
	return m
}

// TestTracesNameNothingAClientMadeUp: an unknown method, an unknown tool
// and a session id never reach a span's name, status or attributes.
func TestTracesNameNothingAClientMadeUp(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	srv := server.NewMCPServer("test", "1", telemetry.ServerOptions(tp)...)
	srv.AddTool(mcp.NewTool("known"), func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		return mcp.NewToolResultText("ok"), nil
	})
	h := httptest.NewServer(server.NewStreamableHTTPServer(srv, server.WithStateLess(true)))
	defer h.Close()
	const secret = "client-made-up-zzz"
	for _, body := range []string{
		`{"jsonrpc":"2.0","id":1,"method":"` + secret + strings.Repeat("A", 4096) + `\nfake=line","params":{}}`,
		`{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"` + secret + `","arguments":{}}}`,
	} {
		req, _ := http.NewRequest(http.MethodPost, h.URL, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	spans := rec.Ended()
	if len(spans) != 2 {
		t.Fatalf("spans %v", names(spans))
	}
	for _, s := range spans {
		all := s.Name() + " " + s.Status().Description
		for _, a := range s.Attributes() {
			all += " " + string(a.Key) + "=" + a.Value.Emit()
		}
		if strings.Contains(all, secret) || len(all) > 1024 {
			t.Errorf("a span holds what the client sent: %.300s", all)
		}
	}
	if spans[0].Name() != "_OTHER" || spans[1].Name() != "tools/call" {
		t.Errorf("span names %v, want _OTHER and tools/call", names(spans))
	}
}

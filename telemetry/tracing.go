package telemetry

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
	"github.com/mark3labs/mcp-go/tracing"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/filestage/filestage/transport"
)

// TracesFromEnv returns the tracer provider the standard OTEL_* variables
// ask for: OTLP over HTTP when OTEL_EXPORTER_OTLP_ENDPOINT or
// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is set, unless OTEL_SDK_DISABLED is
// true or OTEL_TRACES_EXPORTER is none; else nil: no tracing at all, so
// that a client's trace context is neither read nor passed on. shutdown
// flushes the spans still buffered.
func TracesFromEnv(ctx context.Context, getenv func(string) string, version string) (_ trace.TracerProvider, shutdown func(context.Context) error, _ error) {
	none := func(context.Context) error { return nil }
	if strings.EqualFold(getenv("OTEL_SDK_DISABLED"), "true") || getenv("OTEL_TRACES_EXPORTER") == "none" ||
		getenv("OTEL_EXPORTER_OTLP_ENDPOINT")+getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") == "" {
		return nil, none, nil
	}
	if e := getenv("OTEL_TRACES_EXPORTER"); e != "" && e != "otlp" {
		return nil, none, fmt.Errorf("OTEL_TRACES_EXPORTER=%q: filestage exports traces by otlp (or none)", e)
	}
	for _, v := range []string{"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"} {
		if p := getenv(v); p != "" && p != "http/protobuf" {
			return nil, none, fmt.Errorf("%s=%q: filestage sends OTLP over HTTP only: set http/protobuf, and the collector's HTTP port (4318)", v, p)
		}
	}
	// The endpoint as getenv says; the exporter reads the rest of
	// OTEL_EXPORTER_OTLP_* (headers, timeout, certificates) itself.
	var opts []otlptracehttp.Option
	if u := getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"); u != "" {
		opts = append(opts, otlptracehttp.WithEndpointURL(u))
	} else {
		opts = append(opts, otlptracehttp.WithEndpointURL(strings.TrimSuffix(getenv("OTEL_EXPORTER_OTLP_ENDPOINT"), "/")+"/v1/traces"))
	}
	exp, err := otlptracehttp.New(ctx, opts...)
	if err != nil {
		return nil, none, fmt.Errorf("OTLP trace exporter: %w", err)
	}
	res, err := resource.New(ctx,
		resource.WithAttributes(attribute.String("service.name", "filestage"), attribute.String("service.version", version)),
		// OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES win.
		resource.WithFromEnv())
	if err != nil && !errors.Is(err, resource.ErrPartialResource) {
		exp.Shutdown(ctx)
		return nil, none, fmt.Errorf("OTEL_RESOURCE_ATTRIBUTES: %w", err)
	}
	// Bounded: a span holds at most a few KiB, whatever a client sends.
	limits := sdktrace.NewSpanLimits()
	limits.AttributeValueLengthLimit = 256
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res), sdktrace.WithRawSpanLimits(limits))
	return tp, tp.Shutdown, nil
}

// propagator reads W3C trace context; a client's baggage is not taken.
var propagator = propagation.TraceContext{}

// knownMethod reports whether a span may be named after m: any other
// method a client sends is _OTHER, so that no name or attribute is the
// client's.
func knownMethod(m string) bool {
	switch mcp.MCPMethod(m) {
	case mcp.MethodInitialize, mcp.MethodPing, mcp.MethodResourcesList, mcp.MethodResourcesTemplatesList,
		mcp.MethodResourcesRead, mcp.MethodResourcesSubscribe, mcp.MethodResourcesUnsubscribe, mcp.MethodPromptsList, mcp.MethodPromptsGet,
		mcp.MethodToolsList, mcp.MethodToolsCall, mcp.MethodSetLogLevel, mcp.MethodListRoots, mcp.MethodTasksGet, mcp.MethodTasksList,
		mcp.MethodTasksResult, mcp.MethodTasksCancel,
		"notifications/initialized", "notifications/cancelled", "notifications/progress", "notifications/roots/list_changed", "completion/complete":
		return true
	}
	return false
}

// ServerOptions trace every MCP request through tp: a server span per
// request, its parent taken from the request's _meta (SEP-414, on every
// transport) or its HTTP headers.
func ServerOptions(tp trace.TracerProvider) []server.ServerOption {
	return []server.ServerOption{
		server.WithTracer(mcpTracer{tp.Tracer("github.com/filestage/filestage")}),
		server.WithPropagator(headerPropagator{}),
		server.WithMetaPropagator(metaPropagator{}),
	}
}

// mcpTracer adapts OpenTelemetry to mcp-go's tracing interfaces, naming
// spans and attributes as the MCP semantic conventions do: mcp-go names
// its server spans "mcp.<method>" and its tool spans "tool.<name>", the
// conventions "{mcp.method.name} {target}" and "execute_tool {name}".
type mcpTracer struct{ t trace.Tracer }

func (m mcpTracer) Start(ctx context.Context, name string, kind tracing.SpanKind, attrs ...tracing.Attribute) (context.Context, tracing.Span) {
	s := &mcpSpan{}
	opts := []trace.SpanStartOption{trace.WithSpanKind(spanKind(kind))}
	switch {
	case strings.HasPrefix(name, "mcp."):
		s.method = strings.TrimPrefix(name, "mcp.")
		if !knownMethod(s.method) {
			s.method = ErrorOther
		}
		name = s.method
		opts = append(opts, trace.WithAttributes(attribute.String("mcp.method.name", s.method)))
	case strings.HasPrefix(name, "tool."):
		name = "execute_tool " + strings.TrimPrefix(name, "tool.")
		opts = append(opts, trace.WithAttributes(attribute.String("gen_ai.operation.name", "execute_tool")))
	}
	if id := transport.RequestID(ctx); id != "" {
		// The id of the HTTP request's access line and log lines.
		opts = append(opts, trace.WithAttributes(attribute.String("filestage.request_id", id)))
	}
	ctx, s.s = m.t.Start(ctx, name, opts...)
	s.SetAttributes(attrs...)
	return tracing.ContextWithSpan(ctx, s), s
}

func spanKind(k tracing.SpanKind) trace.SpanKind {
	switch k {
	case tracing.SpanKindServer:
		return trace.SpanKindServer
	case tracing.SpanKindClient:
		return trace.SpanKindClient
	}
	return trace.SpanKindInternal
}

type mcpSpan struct {
	s      trace.Span
	method string
}

// semconv maps mcp-go's attribute names to the conventions'.
var semconv = map[string]string{
	"mcp.method":    "mcp.method.name",
	"mcp.tool.name": "gen_ai.tool.name",
}

func (s *mcpSpan) SetAttributes(attrs ...tracing.Attribute) {
	for _, a := range attrs {
		key, value := a.Key, a.Value
		if k, ok := semconv[key]; ok {
			key = k
		}
		switch key {
		case "mcp.method.name":
			if !knownMethod(value) {
				value = ErrorOther
			}
		case "mcp.session.id":
			// A session id reaches a session: the trace backend gets a
			// digest that still ties the session's spans together.
			sum := sha256.Sum256([]byte(value))
			value = hex.EncodeToString(sum[:8])
		}
		s.s.SetAttributes(attribute.String(key, value))
		if key == "gen_ai.tool.name" && s.method != "" {
			s.s.SetName(s.method + " " + a.Value)
		}
	}
}

func (s *mcpSpan) RecordError(err error) { s.s.RecordError(err) }

func (s *mcpSpan) SetStatus(code tracing.StatusCode, description string) {
	switch code {
	case tracing.StatusError:
		// mcp-go's description may quote what the client sent (an
		// unknown method, a tool name): only its kind is kept.
		errType := ErrorOther
		if description == "tool returned error result" {
			errType = ToolError
		}
		s.s.SetStatus(codes.Error, errType)
		s.s.SetAttributes(attribute.String("error.type", errType))
	case tracing.StatusOK:
		s.s.SetStatus(codes.Ok, description)
	}
}

func (s *mcpSpan) End() { s.s.End() }

type headerPropagator struct{}

func (headerPropagator) Inject(ctx context.Context, h http.Header) {
	propagator.Inject(ctx, propagation.HeaderCarrier(h))
}

func (headerPropagator) Extract(ctx context.Context, h http.Header) context.Context {
	if h == nil {
		return ctx
	}
	return propagator.Extract(ctx, propagation.HeaderCarrier(h))
}

// metaPropagator reads and writes traceparent, tracestate and baggage in
// a request's _meta (SEP-414).
type metaPropagator struct{}

func (metaPropagator) InjectMeta(ctx context.Context, meta *mcp.Meta) *mcp.Meta {
	c := propagation.MapCarrier{}
	propagator.Inject(ctx, c)
	if len(c) == 0 {
		return meta
	}
	if meta == nil {
		meta = &mcp.Meta{}
	}
	if meta.AdditionalFields == nil {
		meta.AdditionalFields = map[string]any{}
	}
	for k, v := range c {
		meta.AdditionalFields[k] = v
	}
	return meta
}

func (metaPropagator) ExtractMeta(ctx context.Context, meta *mcp.Meta) context.Context {
	if meta == nil {
		return ctx
	}
	c := propagation.MapCarrier{}
	for _, k := range propagator.Fields() {
		if v, ok := meta.AdditionalFields[k].(string); ok {
			c[k] = v
		}
	}
	if len(c) == 0 {
		return ctx
	}
	return propagator.Extract(ctx, c)
}

package providers

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// TestTraceContextSent: a platform continues filestage's own span, and
// gets nothing of a trace context filestage did not record (a client's,
// passed through with tracing off), nor any tracestate.
func TestTraceContextSent(t *testing.T) {
	var got http.Header
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got = r.Header.Clone() }))
	defer srv.Close()
	c := NewClient("filestage-test")
	send := func(ctx context.Context) {
		resp, err := c.Do(ctx, func(ctx context.Context) (*http.Request, error) {
			return http.NewRequestWithContext(ctx, http.MethodGet, srv.URL, nil)
		})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	remote, _ := trace.TraceState{}.Insert("client", "private")
	clientSC := trace.NewSpanContext(trace.SpanContextConfig{TraceID: trace.TraceID{1}, SpanID: trace.SpanID{2}, TraceFlags: trace.FlagsSampled,
		TraceState: remote, Remote: true})
	ctx := trace.ContextWithRemoteSpanContext(context.Background(), clientSC)

	send(ctx)
	if got.Get("Traceparent") != "" || got.Get("Tracestate") != "" {
		t.Errorf("a client's trace context was passed on: %v", got)
	}

	tp := sdktrace.NewTracerProvider()
	ctx, span := tp.Tracer("test").Start(ctx, "stage")
	defer span.End()
	send(ctx)
	want := "00-" + span.SpanContext().TraceID().String() + "-" + span.SpanContext().SpanID().String() + "-01"
	if got.Get("Traceparent") != want || got.Get("Tracestate") != "" {
		t.Errorf("traceparent %q tracestate %q, want %q and none", got.Get("Traceparent"), got.Get("Tracestate"), want)
	}
}

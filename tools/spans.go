package tools

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// startSpan starts a child of the call's span for one step of a stage:
// from the tracer provider of the call's own span, so that an untraced
// call (no span, or a no-op one) costs nothing and no tracer is global.
func startSpan(ctx context.Context, name string, attrs ...attribute.KeyValue) (context.Context, trace.Span) {
	return trace.SpanFromContext(ctx).TracerProvider().Tracer("github.com/filestage/filestage/tools").
		Start(ctx, name, trace.WithAttributes(attrs...))
}

// endSpan ends a step's span, marking it failed when err is set: by the
// error's slug only, as its message may name a path or a host, and a
// trace backend is often another party's.
func endSpan(s trace.Span, err error) {
	if err != nil {
		s.SetStatus(codes.Error, AsError(err).Slug)
	}
	s.End()
}

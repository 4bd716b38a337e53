package transport

// Metrics learn what the HTTP transport refuses, for an operator's
// dashboards (the telemetry package implements them with Prometheus).
// Reasons are fixed words, never anything a client sent.
type Metrics interface {
	// Refused counts a refused connection or request, by the reason the
	// "refused connections and requests" log line counts it under.
	Refused(reason string)
	// AuthFailed counts a request authentication refused: missing_token,
	// invalid_token, insufficient_scope, or unavailable (the token could
	// not be checked).
	AuthFailed(reason string)
}

// Reasons of AuthFailed.
const (
	AuthMissingToken      = "missing_token"
	AuthInvalidToken      = "invalid_token"
	AuthInsufficientScope = "insufficient_scope"
	AuthUnavailable       = "unavailable"
)

// Sessions is how many MCP sessions are live, streamable HTTP and SSE
// together.
func (h *HTTP) Sessions() int { return h.sessions.count() }

func (h *HTTP) authFailed(reason string) {
	if h.metrics != nil {
		h.metrics.AuthFailed(reason)
	}
}

package tools

import "net/url"

// Metrics learn what the tools do, for an operator's dashboards (the
// telemetry package implements them with Prometheus). Each method is called
// once per call or per file, never per byte read.
type Metrics interface {
	// CallStarted and CallEnded bracket a tool call; outcome is "ok" or
	// the tool error's slug.
	CallStarted(tool string)
	CallEnded(tool, outcome string)
	// Fetched counts n bytes read from a source of kind http, file or data.
	Fetched(kind string, n int64)
	// Stored counts n bytes the provider stored: not bytes it already held.
	Stored(n int64)
}

// OutcomeOK is CallEnded's outcome of a call that succeeded.
const OutcomeOK = "ok"

// Source kinds of Fetched.
const (
	SourceHTTP = "http"
	SourceFile = "file"
	SourceData = "data"
)

// noMetrics counts nothing.
type noMetrics struct{}

func (noMetrics) CallStarted(string)       {}
func (noMetrics) CallEnded(string, string) {}
func (noMetrics) Fetched(string, int64)    {}
func (noMetrics) Stored(int64)             {}

// metrics is s.Metrics, or one that counts nothing.
func (s *Service) metrics() Metrics {
	if s == nil || s.Metrics == nil {
		return noMetrics{}
	}
	return s.Metrics
}

// sourceKind is the kind of source u is, for Fetched: http for http(s).
func sourceKind(u *url.URL) string {
	switch u.Scheme {
	case "http", "https":
		return SourceHTTP
	case "file":
		return SourceFile
	case "data":
		return SourceData
	}
	return "other"
}

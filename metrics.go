package main

import (
	"context"
	"log/slog"
	"net"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/filestage/filestage/config"
	"github.com/filestage/filestage/providers"
	"github.com/filestage/filestage/spool"
	"github.com/filestage/filestage/telemetry"
	"github.com/filestage/filestage/transport"
)

// newMetrics are one server's metrics, in a registry of their own.
func newMetrics(cfg config.Config, budget *spool.Budget) *telemetry.Metrics {
	m := telemetry.NewMetrics(prometheus.NewRegistry(), telemetry.MetricsOptions{Provider: cfg.Provider})
	m.WatchSpool(budget.InUse, budget.Limit)
	return m
}

// mainMetrics is the /metrics handler the main listener serves behind its
// authentication: none in stdio mode, or with --metrics-listen.
func mainMetrics(cfg config.Config, m *telemetry.Metrics) http.Handler {
	if cfg.MetricsListen != "" || cfg.Transport != config.TransportHTTP {
		return nil
	}
	return m.Handler()
}

// serveMetrics serves /metrics on --metrics-listen, when it is set, until
// ctx ends or stop is called; stop returns once the listener is closed.
func serveMetrics(ctx context.Context, cfg config.Config, m *telemetry.Metrics, log *slog.Logger) (stop func(), err error) {
	if cfg.MetricsListen == "" || cfg.Command != config.CmdServe {
		return func() {}, nil
	}
	ln, err := net.Listen("tcp", cfg.MetricsListen)
	if err != nil {
		return nil, listenError("metrics-listen", "FILESTAGE_METRICS_LISTEN", cfg.MetricsListen, err)
	}
	log.Info("serving metrics", "addr", ln.Addr().String(), "path", transport.PathMetrics)
	var h http.Handler = telemetry.DebugMux(m.Handler(), cfg.Pprof)
	if cfg.Pprof {
		log.Info("serving Go profiles", "addr", ln.Addr().String(), "path", "/debug/pprof/")
	}
	if config.IsLoopback(ln.Addr().String()) {
		h = loopbackHostOnly(h)
	} else {
		log.Warn("metrics are served without authentication on a non-loopback address: every client's activity (and, with --pprof, the server's profiles) is in them; keep --metrics-listen on a private network, or read them on the main listener with a token", "addr", ln.Addr().String())
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := telemetry.ServeMetrics(ctx, ln, h, log); err != nil {
			log.Error("metrics listener stopped", "addr", ln.Addr().String(), "err", err)
		}
	}()
	return func() { cancel(); <-done }, nil
}

// countAttempts has the provider client count its attempts in m.
func countAttempts(c *providers.Client, m *telemetry.Metrics) *providers.Client {
	c.Attempted = m.ProviderAttempt
	return c
}

// loopbackHostOnly refuses requests naming another host than loopback: a
// web page whose name was made to point at 127.0.0.1 (DNS rebinding)
// does not read a loopback metrics port.
func loopbackHostOnly(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !config.IsLoopback(r.Host) {
			http.Error(w, "forbidden: Host "+r.Host+" is not loopback", http.StatusForbidden)
			return
		}
		next.ServeHTTP(w, r)
	})
}

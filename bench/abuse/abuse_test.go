package main

import (
	"context"
	"os"
	"testing"
	"time"
)

// TestMain lets the test binary be the attackers' process too.
func TestMain(m *testing.M) {
	if os.Getenv(roleEnv) == "storm" {
		os.Exit(stormMain())
	}
	os.Exit(m.Run())
}

// TestAbuseSmall runs the abuse benchmark at a size CI can afford, against
// the real binary: every target but latency must hold (bench/abuse.sh runs
// the full size and judges latency too).
func TestAbuseSmall(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary for a minute; bench/abuse.sh runs it at full size")
	}
	cfg := defaultConfig()
	cfg.Duration, cfg.Tricklers, cfg.Idlers, cfg.Endless, cfg.Bombs = 6*time.Second, 100, 100, 6, 3
	cfg.SpoolBudget, cfg.BombBytes = 48<<20, 64<<20
	rep, err := run(context.Background(), cfg, testWriter{t})
	if err != nil {
		t.Fatal(err)
	}
	t.Log("\n" + rep.String())
	for _, m := range rep.Missed(false) {
		t.Error(m)
	}
	if rep.Outcomes["endless"]["SOURCE_TOO_LARGE"]+rep.Outcomes["endless"]["BUSY"] == 0 {
		t.Error("no endless stage was cut")
	}
	if rep.BombBytesStored == 0 {
		t.Error("no gzip bomb was stored as served")
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) { w.t.Log(string(p)); return len(p), nil }

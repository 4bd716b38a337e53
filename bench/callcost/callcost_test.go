package main

import (
	"context"
	"os"
	"testing"
	"time"
)

// TestMain lets the test binary be the echo server too.
func TestMain(m *testing.M) {
	if os.Getenv(roleEnv) == "echo" {
		os.Exit(echoMain())
	}
	os.Exit(m.Run())
}

// TestCallCostSmall runs the benchmark briefly against the real binary:
// both servers must answer every call correctly (bench/callcost.sh runs
// it at full size and reports the ratio, which a shared CI machine cannot
// judge).
func TestCallCostSmall(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary; bench/callcost.sh runs it at full size")
	}
	cfg := defaultConfig()
	cfg.Sessions, cfg.Rounds, cfg.Phase, cfg.Warmup = 4, 1, time.Second, 200*time.Millisecond
	rep, err := run(context.Background(), cfg, testWriter{t})
	if err != nil {
		t.Fatal(err)
	}
	t.Log("\n" + rep.String())
	if rep.Errors != 0 {
		t.Errorf("%d calls failed: %v", rep.Errors, rep.FirstErrors)
	}
	if len(rep.Phases) != len(order) {
		t.Fatalf("%d phases, want %d", len(rep.Phases), len(order))
	}
	for _, p := range rep.Phases {
		if p.Calls == 0 || p.ServerCPU <= 0 {
			t.Errorf("%s: %d calls, %s of server CPU", p.Server, p.Calls, p.ServerCPU)
		}
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) { w.t.Log(string(p)); return len(p), nil }

// Command callcost is issue 14's per-call cost benchmark. It runs two MCP
// servers over streamable HTTP on loopback, each as a process of its own:
// a minimal mcp-go server (this program, re-run as the "echo" role) whose
// echo tool returns its arguments as structured content, and the real
// filestage binary with the local store. One Go load client drives each
// in turn with the same number of sessions, in ABBA order (echo,
// filestage, filestage, echo per round), and reports calls per second and
// server CPU per call of each, and their ratio. Every answer is checked.
//
//	bash bench/callcost.sh                   # 50 sessions, 2 rounds of 5 s phases
//	go run ./bench/callcost -help
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"time"
)

func main() {
	if os.Getenv(roleEnv) == "echo" {
		os.Exit(echoMain())
	}
	cfg := defaultConfig()
	flag.StringVar(&cfg.Bin, "bin", "", "filestage binary to run (default: build it from this module)")
	flag.IntVar(&cfg.Sessions, "sessions", cfg.Sessions, "concurrent MCP sessions, each calling in a loop")
	flag.DurationVar(&cfg.Phase, "phase", cfg.Phase, "how long each measured phase lasts")
	flag.DurationVar(&cfg.Warmup, "warmup", cfg.Warmup, "unmeasured calls before each phase")
	flag.IntVar(&cfg.Rounds, "rounds", cfg.Rounds, "ABBA rounds")
	flag.StringVar(&cfg.CPUProfile, "cpuprofile", "", "write a CPU profile of filestage during its first phase to this file (go tool pprof FILE)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	rep, err := run(ctx, cfg, os.Stderr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "callcost:", err)
		os.Exit(1)
	}
	fmt.Print(rep.String())
	if rep.Errors > 0 {
		os.Exit(1)
	}
}

// Config sizes a run.
type Config struct {
	Bin      string
	Sessions int
	Phase    time.Duration
	Warmup   time.Duration
	Rounds   int
	// CPUProfile, when set, is where filestage's CPU profile of its first
	// measured phase goes (from --pprof on its metrics listener).
	CPUProfile string
}

func defaultConfig() Config {
	return Config{Sessions: 50, Phase: 5 * time.Second, Warmup: time.Second, Rounds: 2}
}

// Command abuse is issue 9's abuse benchmark. It starts the real filestage
// binary as an HTTP server with the local store on loopback, and for a
// fixed time puts it under all of these at once: connections trickling
// request bodies without a token, sessions that initialize and idle,
// clients repeatedly staging a source that never ends, and clients
// staging gzip bombs; meanwhile one well-behaved client makes presign and
// 1 MiB stage calls. It reports the good client's latencies and errors,
// the server's peak RSS, open file descriptors and spool disk use, and
// whether /healthz stayed up; then that file descriptors, temporary files
// and goroutines return to their baseline once the storm ends. It exits
// non-zero when a target is missed.
//
// Loopback only, bounded in count and time; it stops by itself.
//
//	bash bench/abuse.sh                  # full size, 60 s
//	go run ./bench/abuse -duration 10s   # any size: see -help
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
	if os.Getenv(roleEnv) == "storm" {
		os.Exit(stormMain())
	}
	cfg := defaultConfig()
	flag.StringVar(&cfg.Bin, "bin", "", "filestage binary to run (default: build it from this module)")
	flag.DurationVar(&cfg.Duration, "duration", cfg.Duration, "how long the storm lasts")
	flag.IntVar(&cfg.Tricklers, "tricklers", cfg.Tricklers, "connections trickling request bodies without a token")
	flag.IntVar(&cfg.Idlers, "idlers", cfg.Idlers, "sessions that initialize and idle")
	flag.IntVar(&cfg.Endless, "endless", cfg.Endless, "clients staging a source that never ends")
	flag.IntVar(&cfg.Bombs, "bombs", cfg.Bombs, "clients staging gzip bombs")
	flag.Int64Var(&cfg.SpoolBudget, "spool-budget", cfg.SpoolBudget, "the server's --spool-budget, in bytes")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	rep, err := run(ctx, cfg, os.Stderr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "abuse:", err)
		os.Exit(1)
	}
	fmt.Print(rep.String())
	if missed := rep.Missed(true); len(missed) > 0 {
		fmt.Fprintln(os.Stderr, "targets missed:")
		for _, m := range missed {
			fmt.Fprintln(os.Stderr, "  -", m)
		}
		os.Exit(1)
	}
}

// Config sizes a run.
type Config struct {
	Bin                               string
	Duration                          time.Duration
	Tricklers, Idlers, Endless, Bombs int
	// SpoolBudget and MaxBytes are the server's --spool-budget and
	// --max-bytes; BombBytes is what a bomb inflates to.
	SpoolBudget, MaxBytes, BombBytes int64
	// Settle is how long the server gets to return to its baseline.
	Settle time.Duration
	// Targets.
	PresignP99 time.Duration
	MaxRSS     int64
	// TrickleEvery paces a trickler's bytes; ReconnectAfter its
	// reconnections; Poll the sampling.
	TrickleEvery, ReconnectAfter, Poll time.Duration
}

// defaultConfig is the full size.
func defaultConfig() Config {
	return Config{
		Duration:  60 * time.Second,
		Tricklers: 2000, Idlers: 2000, Endless: 50, Bombs: 20,
		SpoolBudget:    512 << 20,
		MaxBytes:       16 << 20,
		BombBytes:      200 << 20,
		Settle:         30 * time.Second,
		PresignP99:     250 * time.Millisecond,
		MaxRSS:         256 << 20,
		TrickleEvery:   time.Second,
		ReconnectAfter: time.Second,
		Poll:           200 * time.Millisecond,
	}
}

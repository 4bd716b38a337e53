package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// runnableBlock is a shell block of the README marked <!-- runnable -->:
// what a newcomer copies, run as written.
var runnableBlock = regexp.MustCompile("(?s)<!-- runnable -->\\n```sh\\n(.*?)```")

// TestREADMEBlocks runs every runnable block of the README in bash, with
// the real binary on PATH as `filestage`, a fresh HOME and nothing of
// filestage's in the environment, so the README cannot rot.
func TestREADMEBlocks(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := runnableBlock.FindAllSubmatch(readme, -1)
	if len(blocks) == 0 {
		t.Fatal("the README has no runnable block")
	}
	bin := filepath.Dir(binary(t))
	for i, b := range blocks {
		t.Run(strings.SplitN(string(b[1]), "\n", 2)[0], func(t *testing.T) {
			home := t.TempDir()
			env := []string{"HOME=" + home, "PATH=" + bin + string(os.PathListSeparator) + os.Getenv("PATH"), "TMPDIR=" + t.TempDir()}
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, "bash", "--norc", "--noprofile", "-c", "set -euo pipefail\n"+string(b[1]))
			cmd.Env, cmd.Dir = env, home
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("block %d failed: %v\n%s\n--- block:\n%s", i, err, out, b[1])
			}
			t.Logf("%s", out)
		})
	}
}

// Package browsertest gives tests a real browser: Debian's chromium,
// headless, driven over the DevTools protocol with chromedp.
package browsertest

import (
	"context"
	"os"
	"os/exec"
	"testing"

	"github.com/chromedp/chromedp"
)

// EnvChromium names the browser binary when it is not chromium on PATH.
const EnvChromium = "FILESTAGE_TEST_CHROMIUM"

const howTo = "no chromium: .ci/run installs Debian's (apt-get install chromium); set " + EnvChromium + " to another Chromium binary"

// Start opens a headless browser for the test and returns a context of
// its first tab; the browser closes when the test ends. Without chromium
// the test is skipped, or fails when CI=true, so that CI can never
// silently not run it.
func Start(t testing.TB) context.Context {
	t.Helper()
	bin := os.Getenv(EnvChromium)
	if bin == "" {
		bin, _ = exec.LookPath("chromium")
	}
	if bin == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal(howTo)
		}
		t.Skip(howTo)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(bin),
		chromedp.Headless,
		chromedp.NoSandbox, // CI runs as root
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(900, 760),
		// The machine's network is closed: no background fetches.
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	// Starts the browser now, so that a failure to start says so. (The
	// browser lives as long as the context of this first action: not a
	// shorter one.)
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
		cancel()
		cancelAlloc()
		t.Fatalf("starting %s: %v", bin, err)
	}
	t.Cleanup(func() { cancel(); cancelAlloc() })
	return ctx
}

package bench_test

import (
	"context"
	"crypto/md5"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/filestage/filestage/internal/browsertest"
	"github.com/filestage/filestage/schema"
)

// BenchmarkUserUpload sends a file through the upload page, in headless
// Chromium, to the real binary serving on loopback, against curl -T of the
// same file to the local store's own presigned URL, in one run. It
// reports the ratio (target ≤ 2) and filestage's peak RSS (target ≤ 64
// MiB). Sizes come from BENCH_UPLOAD_SIZES (default 16MiB, so that CI
// runs it quickly); bench/upload.sh runs 256MiB and 1GiB.
func BenchmarkUserUpload(b *testing.B) {
	sizes := os.Getenv("BENCH_UPLOAD_SIZES")
	if sizes == "" {
		sizes = "16MiB"
	}
	curl, err := exec.LookPath("curl")
	if err != nil {
		b.Skip("needs curl for the baseline")
	}
	browser := browsertest.Start(b)
	bin := filepath.Join(b.TempDir(), "filestage")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/filestage/filestage").CombinedOutput(); err != nil {
		b.Fatalf("go build: %v\n%s", err, out)
	}
	for _, size := range strings.Split(sizes, ",") {
		n, err := parseSize(size)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(size, func(b *testing.B) {
			path := filepath.Join(b.TempDir(), "f.bin")
			sum := randomFile(b, path, n)
			for range b.N {
				page, baseline, rss := uploadOnce(b, browser, bin, curl, path, n, sum)
				b.ReportMetric(page.Seconds(), "page-s")
				b.ReportMetric(baseline.Seconds(), "curl-s")
				b.ReportMetric(page.Seconds()/baseline.Seconds(), "x-curl")
				b.ReportMetric(float64(rss)/(1<<20), "peak-RSS-MiB")
			}
		})
	}
}

func parseSize(s string) (int64, error) {
	for suffix, mult := range map[string]int64{"GiB": 1 << 30, "MiB": 1 << 20} {
		if v, ok := strings.CutSuffix(s, suffix); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			return n * mult, err
		}
	}
	return 0, fmt.Errorf("size %q: want e.g. 256MiB or 1GiB", s)
}

func randomFile(b *testing.B, path string, n int64) string {
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	h := md5.New()
	if _, err := io.CopyN(io.MultiWriter(f, h), rand.Reader, n); err != nil {
		b.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// uploadOnce starts filestage, sends the file through the page and then
// with curl to a presigned URL, and returns both times and the server's
// peak RSS.
func uploadOnce(b *testing.B, browser context.Context, bin, curl, path string, n int64, sum string) (page, baseline time.Duration, rss int64) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	cmd := exec.Command(bin, "serve", "--transport", "http", "--listen", addr, "--data-dir", b.TempDir(), "--max-bytes", strconv.FormatInt(2*n, 10))
	var logs strings.Builder
	cmd.Stderr = &logs
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() {
		cmd.Process.Kill()
		cmd.Wait()
		if b.Failed() {
			b.Log(logs.String())
		}
	}()
	for i := 0; ; i++ {
		if resp, err := http.Get("http://" + addr + "/healthz"); err == nil {
			resp.Body.Close()
			break
		}
		if i == 100 {
			b.Fatal("filestage did not start")
		}
		time.Sleep(50 * time.Millisecond)
	}
	c, err := client.NewStreamableHttpClient("http://" + addr + "/mcp")
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	c.Start(ctx)
	init := mcp.InitializeRequest{}
	init.Params.ProtocolVersion = mcp.LATEST_LEGACY_PROTOCOL_VERSION
	init.Params.ClientInfo = mcp.Implementation{Name: "bench", Version: "1"}
	if _, err := c.Initialize(ctx, init); err != nil {
		b.Fatal(err)
	}
	var asked schema.UserUploadResponse
	callTool(b, ctx, c, "request_user_upload", map[string]any{"toolSlug": "GMAIL_SEND_EMAIL"}, &asked)

	tab, closeTab := chromedp.NewContext(browser)
	defer closeTab()
	tctx, tcancel := context.WithTimeout(tab, 10*time.Minute)
	defer tcancel()
	if err := chromedp.Do(tctx, chromedp.Navigate(asked.UploadURL), chromedp.WaitVisible(chromedp.ID("file"))); err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	if err := chromedp.Do(tctx, chromedp.SetUploadFiles(chromedp.ID("file"), []string{path})); err != nil {
		b.Fatal(err)
	}
	// Polled from here: the page's CSP forbids chromedp's in-page poller.
	var phase string
	for phase != "done" && phase != "error" && err == nil {
		time.Sleep(10 * time.Millisecond)
		phase, err = chromedp.Run(tctx, chromedp.Evaluate[string](`document.getElementById('app').dataset.phase || ''`))
	}
	page = time.Since(start)
	if err != nil || phase != "done" {
		b.Fatalf("the page ended in %q: %v", phase, err)
	}
	var got schema.UserUploadResponse
	callTool(b, ctx, c, "get_user_upload", map[string]any{"upload_id": asked.UploadID}, &got)
	if got.Status != "staged" || got.MD5 != sum {
		b.Fatalf("get_user_upload: %+v", got)
	}

	// The baseline: the same bytes for another action, PUT by curl.
	var slot schema.PresignResponse
	callTool(b, ctx, c, "request_presigned_upload", map[string]any{"toolkit_slug": "slack", "tool_slug": "SLACK_UPLOAD_FILE",
		"filename": "f.bin", "mimetype": "application/octet-stream", "md5": sum, "size": n}, &slot)
	args := []string{"-sS", "--fail", "-o", "/dev/null", "-T", path, "-X", slot.Method}
	for k, v := range slot.Headers {
		args = append(args, "-H", k+": "+v)
	}
	start = time.Now()
	if out, err := exec.Command(curl, append(args, slot.NewPresignedURL)...).CombinedOutput(); err != nil {
		b.Fatalf("curl: %v\n%s", err, out)
	}
	baseline = time.Since(start)
	return page, baseline, processRSS(b, cmd.Process.Pid)
}

func callTool(b *testing.B, ctx context.Context, c *client.Client, name string, args map[string]any, out any) {
	req := mcp.CallToolRequest{}
	req.Params.Name, req.Params.Arguments = name, args
	res, err := c.CallTool(ctx, req)
	if err != nil || res.IsError {
		b.Fatalf("%s: %v %+v", name, err, res)
	}
	raw, _ := json.Marshal(res.StructuredContent)
	if err := json.Unmarshal(raw, out); err != nil {
		b.Fatal(err)
	}
}

// processRSS is a process's high-water resident set, from /proc.
func processRSS(b *testing.B, pid int) int64 {
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	b.Fatal("no VmHWM")
	return 0
}

// Command rss stages files of several sizes from a loopback HTTP server into
// the local store through the real filestage binary over stdio, and prints
// the wall time and the filestage process's peak RSS (VmHWM) for each.
//
//	go build -o /tmp/filestage . && go run ./bench/rss -bin /tmp/filestage -sizes 16MiB,256MiB,1GiB
package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
)

func main() {
	bin := flag.String("bin", "filestage", "filestage binary")
	sizes := flag.String("sizes", "16MiB,256MiB,1GiB", "comma-separated file sizes")
	work := flag.String("dir", "", "scratch directory (default: a new temp dir, removed afterwards)")
	flag.Parse()

	dir := *work
	if dir == "" {
		d, err := os.MkdirTemp("", "filestage-rss-")
		check(err)
		defer os.RemoveAll(d)
		dir = d
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	check(err)
	go http.Serve(ln, http.FileServer(http.Dir(dir)))

	fmt.Printf("%-8s %10s %12s %14s\n", "size", "wall", "MiB/s", "peak RSS MiB")
	for _, s := range strings.Split(*sizes, ",") {
		n := parseSize(s)
		name := fmt.Sprintf("src-%d.bin", n)
		makeFile(filepath.Join(dir, name), n)
		wall, hwm := stage(*bin, dir, "http://"+ln.Addr().String()+"/"+name)
		fmt.Printf("%-8s %9.2fs %12.0f %14.1f\n", s, wall.Seconds(), float64(n)/(1<<20)/wall.Seconds(), float64(hwm)/1024)
		os.Remove(filepath.Join(dir, name))
	}
}

// stage starts a fresh filestage, stages url once and returns the call's
// wall time and the process's peak RSS in KiB.
func stage(bin, dir, url string) (time.Duration, int64) {
	data, err := os.MkdirTemp(dir, "data-")
	check(err)
	defer os.RemoveAll(data)
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), "FILESTAGE_DATA_DIR="+data, "FILESTAGE_ALLOW_PRIVATE_URLS=true", "FILESTAGE_MAX_BYTES=2GiB", "FILESTAGE_LOG_LEVEL=warn")
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	check(err)
	stdout, err := cmd.StdoutPipe()
	check(err)
	check(cmd.Start())
	defer cmd.Wait()
	defer stdin.Close()

	c := client.NewClient(transport.NewIO(stdout, stdin, io.NopCloser(strings.NewReader(""))))
	ctx := context.Background()
	check(c.Start(ctx))
	init := mcp.InitializeRequest{}
	init.Params.ProtocolVersion = mcp.LATEST_LEGACY_PROTOCOL_VERSION
	_, err = c.Initialize(ctx, init)
	check(err)

	req := mcp.CallToolRequest{}
	req.Params.Name = "stage_connector_file"
	req.Params.Arguments = map[string]any{"url": url, "toolSlug": "GMAIL_SEND_EMAIL"}
	start := time.Now()
	res, err := c.CallTool(ctx, req)
	wall := time.Since(start)
	check(err)
	if res.IsError {
		b, _ := json.Marshal(res.Content)
		log.Fatalf("stage failed: %s", b)
	}
	return wall, peakRSS(cmd.Process.Pid)
}

// peakRSS reads VmHWM, the resident-set high-water mark, in KiB.
func peakRSS(pid int) int64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	check(err)
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kib, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			check(err)
			return kib
		}
	}
	log.Fatal("no VmHWM in /proc status")
	return 0
}

func makeFile(path string, n int64) {
	f, err := os.Create(path)
	check(err)
	_, err = io.CopyN(f, rand.Reader, n)
	check(err)
	check(f.Close())
}

func parseSize(s string) int64 {
	for suffix, mult := range map[string]int64{"KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30} {
		if v, ok := strings.CutSuffix(s, suffix); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			check(err)
			return n * mult
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	check(err)
	return n
}

func check(err error) {
	if err != nil {
		log.Fatal(err)
	}
}

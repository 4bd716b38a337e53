//go:build linux

// Command stage compares filestage's staging with what a client would do by
// hand, on one machine in one run (issue 4): for each size and target it
// alternates the baseline and the real filestage binary for a few rounds
// and prints the median wall times, their ratio, and filestage's peak RSS.
//
// Targets (-targets, comma-separated):
//
//	local  loopback HTTP source into the local store
//	       baseline: curl URL | tee out | md5sum, then curl -T out to a
//	       presigned URL of a `filestage serve` on its own data directory
//	s3     loopback HTTP source into the S3 test server (versitygw)
//	       baseline: the same, curl -T to an S3 presigned URL
//	file   file:// source into the local store and into the S3 test server
//	       baseline: md5sum file, then curl -T file to the presigned URL
//
// Every run is checked (filestage's MD5, size and type "new"; the
// baseline's MD5 and 2xx upload; the stored object's size), so a broken run
// cannot produce a number.
//
// Linux only: it reads the children's rusage as Linux fills it in, and
// /proc for the machine's description.
//
//	go build -o /tmp/filestage . && go run ./bench/stage -bin /tmp/filestage -sizes 16MiB,256MiB,1GiB -targets local,s3,file
package main

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/rand"
	"debug/buildinfo"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/filestage/filestage/schema"
)

const (
	mib = 1 << 20
	// Targets of issue 4.
	maxRatioHTTP = 1.15 // a stage from HTTP vs curl + md5sum + curl -T
	maxRatioFile = 1.05 // a stage of a local file vs md5sum + curl -T
	ratioFrom    = 256 * mib
	maxRSS       = 64 * mib
	rssGrowth    = 1.10 // peak RSS at any size vs at the smallest
	// The S3 test server's credentials: a throw-away server on loopback.
	s3Access = "test-access"
	s3Secret = "test-secret-key-123"
	s3Region = "us-east-1"
	s3Bucket = "filestage-bench"
)

func main() {
	var o options
	var sizes, targets string
	flag.StringVar(&o.bin, "bin", "filestage", "filestage binary")
	flag.StringVar(&sizes, "sizes", "16MiB,256MiB,1GiB", "comma-separated file sizes (KiB, MiB, GiB or bytes)")
	flag.StringVar(&targets, "targets", "local,s3,file", "comma-separated targets: local, s3, file")
	flag.IntVar(&o.rounds, "rounds", 3, "rounds per size and target; the median is reported")
	flag.StringVar(&o.dir, "dir", "", "parent of the scratch directory: put it on the disk to measure, not tmpfs (default $TMPDIR)")
	flag.StringVar(&o.versitygw, "versitygw", "", "versitygw binary for the s3 targets (default: from PATH, else $(go env GOPATH)/bin)")
	flag.Parse()

	// SIGPIPE too: a reader that went away (| head) ends the run with the
	// clean-up, instead of killing this process and orphaning its servers.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGPIPE)
	err := o.parse(sizes, targets)
	if err == nil {
		err = run(ctx, o)
	}
	if ctx.Err() != nil {
		// A child killed on the way out says "signal: killed": not the news.
		err = errors.New("interrupted; scratch files removed, servers stopped")
	}
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench/stage:", err)
		os.Exit(1)
	}
}

type options struct {
	bin, dir, versitygw string
	rounds              int
	sizes               []size
	targets             []target
}

type size struct {
	label string
	n     int64
}

// target is where the bytes come from and where they go.
type target struct {
	file bool // the file's path (a file:// source) instead of loopback HTTP
	s3   bool // the S3 test server instead of the local store
}

func (t target) String() string {
	src, store := "http", "local"
	if t.file {
		src = "file"
	}
	if t.s3 {
		store = "s3"
	}
	return store + " (" + src + ")"
}

// slug is the target in a tool slug, which keeps stored keys apart.
func (t target) slug() string {
	return strings.ToUpper(strings.NewReplacer(" ", "", "(", "", ")", "").Replace(t.String()))
}

func (o *options) parse(sizes, targets string) error {
	if o.rounds < 1 {
		return errors.New("-rounds must be at least 1")
	}
	for _, s := range strings.Split(sizes, ",") {
		s = strings.TrimSpace(s)
		n, err := parseSize(s)
		if err != nil {
			return err
		}
		o.sizes = append(o.sizes, size{s, n})
	}
	// Smallest first: it is the reference for the RSS growth check.
	slices.SortFunc(o.sizes, func(a, b size) int { return int(a.n - b.n) })
	for _, t := range strings.Split(targets, ",") {
		switch strings.TrimSpace(t) {
		case "local":
			o.targets = append(o.targets, target{})
		case "s3":
			o.targets = append(o.targets, target{s3: true})
		case "file":
			o.targets = append(o.targets, target{file: true}, target{file: true, s3: true})
		default:
			return fmt.Errorf("-targets: unknown target %q (want local, s3, file)", t)
		}
	}
	return nil
}

func parseSize(s string) (int64, error) {
	mult := int64(1)
	for suffix, m := range map[string]int64{"KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30} {
		if v, ok := strings.CutSuffix(s, suffix); ok {
			s, mult = v, m
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("-sizes: %q is not a size such as 16MiB", s)
	}
	return n * mult, nil
}

// bench is what the runs share.
type bench struct {
	bin  string
	work string // scratch: sources, data directories, downloads
	// srcURL is the loopback HTTP server of the source files (ends in /).
	srcURL string
	local  *server // the baseline's local store
	s3     *s3Server
}

// source is one file to stage.
type source struct {
	path, url, md5 string
	size           int64
}

// result is one size and target.
type result struct {
	size        size
	target      target
	base, stage time.Duration // medians
	rss         int64         // filestage's peak RSS in bytes, max over the rounds
	written     int64         // bytes filestage wrote to disk, max over the rounds
}

func run(ctx context.Context, o options) error {
	bin, err := exec.LookPath(o.bin)
	if err != nil {
		return fmt.Errorf("-bin: %w", err)
	}
	if bin, err = filepath.Abs(bin); err != nil {
		return err
	}
	for _, tool := range []string{"curl", "md5sum", "bash", "tee"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("the baseline needs %s: %w", tool, err)
		}
	}
	work, err := os.MkdirTemp(o.dir, "filestage-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	if err := checkDisk(work, o.sizes[len(o.sizes)-1].n); err != nil {
		return err
	}
	b := &bench{bin: bin, work: work}

	srcDir := filepath.Join(work, "src")
	if err := os.Mkdir(srcDir, 0o700); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	// http.FileServer answers with Content-Length, as a real file host does.
	srv := &http.Server{Handler: http.FileServer(http.Dir(srcDir))}
	go srv.Serve(ln)
	defer srv.Close()
	b.srcURL = "http://" + ln.Addr().String() + "/"

	if b.local, err = startLocal(ctx, bin, work); err != nil {
		return err
	}
	defer b.local.stop()
	if slices.ContainsFunc(o.targets, func(t target) bool { return t.s3 }) {
		switch b.s3, err = startS3(ctx, o.versitygw, work); {
		case errors.Is(err, errNoVersitygw):
			fmt.Fprintf(os.Stderr, "skipping the s3 targets: %v\n", err)
			o.targets = slices.DeleteFunc(o.targets, func(t target) bool { return t.s3 })
		case err != nil:
			return err
		default:
			defer b.s3.stop()
		}
	}

	var results []result
	for _, sz := range o.sizes {
		src, err := b.makeSource(srcDir, sz)
		if err != nil {
			return err
		}
		for _, t := range o.targets {
			r, err := b.measure(ctx, t, sz, src, o.rounds)
			if err != nil {
				return fmt.Errorf("%s %s: %w", sz.label, t, err)
			}
			results = append(results, r)
		}
		// Only one size's source takes disk space at a time.
		if err := os.Remove(src.path); err != nil {
			return err
		}
	}
	printReport(os.Stdout, o, bin, work, results)
	return nil
}

// makeSource writes a random file, then reads it once: that hashes it for
// the checks and leaves it in the page cache, warm for every run alike.
func (b *bench) makeSource(dir string, sz size) (source, error) {
	name := "src-" + sz.label + ".bin"
	path := filepath.Join(dir, name)
	f, err := os.Create(path)
	if err != nil {
		return source{}, err
	}
	_, err = io.CopyN(f, rand.Reader, sz.n)
	if err = errors.Join(err, f.Close()); err != nil {
		return source{}, fmt.Errorf("writing %s: %w", path, err)
	}
	sum, err := md5File(path)
	if err != nil {
		return source{}, err
	}
	return source{path: path, url: b.srcURL + name, md5: sum, size: sz.n}, nil
}

func md5File(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := md5.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("reading %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// measure runs the baseline and filestage rounds times each, alternating
// which goes first so that neither always follows the other.
func (b *bench) measure(ctx context.Context, t target, sz size, src source, rounds int) (result, error) {
	r := result{size: sz, target: t}
	var base, stage []time.Duration
	for i := 1; i <= rounds; i++ {
		slug := func(side string) string {
			return fmt.Sprintf("BENCH_%s_%s_%s_R%d", side, t.slug(), strings.ToUpper(alnum(sz.label)), i)
		}
		var bw time.Duration
		var fs proc
		runBase := func() (err error) { bw, err = b.baseline(ctx, t, src, slug("BL")); return err }
		runStage := func() (err error) { fs, err = b.stage(ctx, t, src, slug("FS")); return err }
		first, second := runBase, runStage
		if i%2 == 0 {
			first, second = runStage, runBase
		}
		if err := first(); err != nil {
			return r, err
		}
		if err := second(); err != nil {
			return r, err
		}
		base, stage = append(base, bw), append(stage, fs.wall)
		r.rss, r.written = max(r.rss, fs.rss), max(r.written, fs.written)
		fmt.Fprintf(os.Stderr, "%-7s %-12s round %d/%d: baseline %7.2fs  filestage %7.2fs  peak RSS %5.1f MiB  wrote %6.1f MiB\n",
			sz.label, t, i, rounds, bw.Seconds(), fs.wall.Seconds(), float64(fs.rss)/mib, float64(fs.written)/mib)
	}
	r.base, r.stage = median(base), median(stage)
	return r, nil
}

func alnum(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' {
			return r
		}
		return -1
	}, s)
}

func median(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// stage runs `filestage stage` once, with a data directory of its own, and
// checks its answer and what it stored.
func (b *bench) stage(ctx context.Context, t target, src source, slug string) (proc, error) {
	data, err := os.MkdirTemp(b.work, "stage-data-")
	if err != nil {
		return proc{}, err
	}
	defer os.RemoveAll(data)
	arg := src.url
	if t.file {
		arg = src.path
	}
	args := []string{"stage", arg, "--tool-slug", slug, "--data-dir", data, "--max-bytes", "2GiB", "--allow-private-urls"}
	env := os.Environ()
	if t.s3 {
		args = append(args, "--provider", "s3")
		env = append(env, b.s3.env...)
	} else {
		args = append(args, "--provider", "local")
	}
	// No run pays for writing back what an earlier one left dirty.
	syscall.Sync()
	p, err := execute(ctx, env, b.bin, args...)
	if err != nil {
		return p, err
	}
	var out schema.StageResponse
	if err := json.Unmarshal(p.stdout, &out); err != nil {
		return p, fmt.Errorf("filestage stage printed %q: %w", p.stdout, err)
	}
	switch {
	case !out.Success || out.MD5 != src.md5 || out.Size == nil || *out.Size != src.size:
		return p, fmt.Errorf("filestage stage answered %s; want md5 %s, size %d", p.stdout, src.md5, src.size)
	case out.Type != "new":
		return p, fmt.Errorf("filestage stage stored nothing (type %q): the timing would not be an upload", out.Type)
	}
	return p, b.checkStored(ctx, t, data, out.S3Key, src)
}

// baseline does by hand what a stage does and returns its wall time: the
// download hashed on the way to a file (or the file hashed), then a PUT of
// the file to a presigned URL. The upload slot is asked for beforehand,
// untimed: a client that knows the MD5 would have it.
func (b *bench) baseline(ctx context.Context, t target, src source, slug string) (time.Duration, error) {
	args := []string{"presign", src.path, "--toolkit-slug", "bench", "--tool-slug", slug, "--max-bytes", "2GiB"}
	env := os.Environ()
	data := b.local.data
	if t.s3 {
		data = filepath.Join(b.work, "presign-data")
		args = append(args, "--provider", "s3", "--data-dir", data)
		env = append(env, b.s3.env...)
	} else {
		args = append(args, "--provider", "local", "--data-dir", data, "--public-url", b.local.url)
	}
	p, err := execute(ctx, env, b.bin, args...)
	if err != nil {
		return 0, err
	}
	var slot schema.PresignResponse
	if err := json.Unmarshal(p.stdout, &slot); err != nil {
		return 0, fmt.Errorf("filestage presign printed %q: %w", p.stdout, err)
	}
	if slot.Type != "new" || slot.Method != "PUT" {
		return 0, fmt.Errorf("filestage presign gave a %q slot by %s; want a new one by PUT", slot.Type, slot.Method)
	}

	syscall.Sync()
	var wall time.Duration
	file := src.path
	if t.file {
		p, err = execute(ctx, nil, "md5sum", file)
	} else {
		file = filepath.Join(b.work, "download.bin")
		defer os.Remove(file)
		p, err = execute(ctx, nil, "bash", "-c", `set -o pipefail; curl -sS -f "$1" | tee "$2" | md5sum`, "baseline", src.url, file)
	}
	if err != nil {
		return 0, err
	}
	if got, _, _ := strings.Cut(string(p.stdout), " "); got != src.md5 {
		return 0, fmt.Errorf("baseline md5sum printed %q; want %s", p.stdout, src.md5)
	}
	wall += p.wall

	curl := []string{"-sS", "-o", "-", "-w", `\n%{http_code}`, "-T", file}
	for _, k := range slices.Sorted(maps.Keys(slot.Headers)) {
		curl = append(curl, "-H", k+": "+slot.Headers[k])
	}
	if p, err = execute(ctx, nil, "curl", append(curl, slot.NewPresignedURL)...); err != nil {
		return 0, err
	}
	// -w put the status after the body, on a line of its own.
	i := bytes.LastIndexByte(p.stdout, '\n')
	body, code := p.stdout[:max(i, 0)], p.stdout[i+1:]
	if len(code) != 3 || code[0] != '2' {
		return 0, fmt.Errorf("baseline upload got HTTP %s: %s", code, body)
	}
	wall += p.wall
	return wall, b.checkStored(ctx, t, data, slot.Key, src)
}

// checkStored checks that the store holds the object with the source's
// size (and, on S3, its MD5 as ETag), then deletes it: rounds must not
// fill the disk, and the next round must upload again.
func (b *bench) checkStored(ctx context.Context, t target, dataDir, key string, src source) error {
	if !t.s3 {
		// The local store's layout: <data dir>/objects/<key>.
		path := filepath.Join(dataDir, "objects", filepath.FromSlash(key))
		fi, err := os.Stat(path)
		if err != nil {
			return fmt.Errorf("the local store lacks %s: %w", key, err)
		}
		if fi.Size() != src.size {
			return fmt.Errorf("the local store holds %d bytes under %s; want %d", fi.Size(), key, src.size)
		}
		return os.Remove(path)
	}
	head, err := b.s3.client.HeadObject(ctx, &awss3.HeadObjectInput{Bucket: aws.String(s3Bucket), Key: aws.String(key)})
	if err != nil {
		return fmt.Errorf("the S3 test server lacks %s: %w", key, err)
	}
	if size, etag := aws.ToInt64(head.ContentLength), strings.Trim(aws.ToString(head.ETag), `"`); size != src.size || (!strings.Contains(etag, "-") && etag != src.md5) {
		return fmt.Errorf("the S3 test server holds %d bytes with ETag %s under %s; want %d, %s", size, etag, key, src.size, src.md5)
	}
	_, err = b.s3.client.DeleteObject(ctx, &awss3.DeleteObjectInput{Bucket: aws.String(s3Bucket), Key: aws.String(key)})
	return err
}

// proc is what one finished child process cost.
type proc struct {
	wall    time.Duration
	rss     int64 // peak resident set, bytes
	written int64 // bytes it dirtied in files (rusage ru_oublock)
	stdout  []byte
}

// execute runs a command to its end; env nil means this process's.
func execute(ctx context.Context, env []string, name string, args ...string) (proc, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = env
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	wall := time.Since(start)
	if err != nil {
		return proc{}, fmt.Errorf("%s %s: %w\n%s", filepath.Base(name), strings.Join(args, " "), err, bytes.TrimSpace(stderr.Bytes()))
	}
	ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	// Linux counts Maxrss in KiB and Oublock in 512-byte blocks.
	return proc{wall: wall, rss: int64(ru.Maxrss) << 10, written: int64(ru.Oublock) * 512, stdout: stdout.Bytes()}, nil
}

// server is a long-running child process.
type server struct {
	cmd  *exec.Cmd
	done chan struct{} // closed once the process has exited
	url  string
	data string // the local store's data directory
	log  string
}

// startLocal starts `filestage serve` on a data directory of its own: it
// receives the baseline's uploads to the local store's presigned URLs.
func startLocal(ctx context.Context, bin, work string) (*server, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	data := filepath.Join(work, "serve-data")
	s, err := start(ctx, filepath.Join(work, "serve.log"), bin,
		"serve", "--transport", "http", "--listen", addr, "--provider", "local", "--data-dir", data, "--max-bytes", "2GiB", "--log-level", "warn")
	if err != nil {
		return nil, err
	}
	s.url, s.data = "http://"+addr, data
	if err := s.wait(ctx, s.url+"/healthz"); err != nil {
		s.stop()
		return nil, err
	}
	return s, nil
}

type s3Server struct {
	*server
	client *awss3.Client
	env    []string // the s3 provider's settings
}

var errNoVersitygw = errors.New("versitygw is not installed (go install github.com/versity/versitygw/cmd/versitygw@v1.8.0)")

// startS3 starts versitygw on a posix directory of its own and creates the
// bucket.
func startS3(ctx context.Context, path, work string) (*s3Server, error) {
	if path == "" {
		path = findVersitygw()
	}
	if path == "" {
		return nil, errNoVersitygw
	}
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(work, "s3")
	if err := os.Mkdir(dir, 0o700); err != nil {
		return nil, err
	}
	s, err := start(ctx, filepath.Join(work, "versitygw.log"), path,
		"--port", addr, "--access", s3Access, "--secret", s3Secret, "--region", s3Region, "--quiet", "posix", dir)
	if err != nil {
		return nil, err
	}
	s.url = "http://" + addr
	// Any HTTP answer means it is up: an unsigned request gets 403.
	if err := s.wait(ctx, s.url+"/"); err != nil {
		s.stop()
		return nil, err
	}
	client := awss3.New(awss3.Options{
		Region:       s3Region,
		BaseEndpoint: aws.String(s.url),
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider(s3Access, s3Secret, ""),
	})
	if _, err := client.CreateBucket(ctx, &awss3.CreateBucketInput{Bucket: aws.String(s3Bucket)}); err != nil {
		s.stop()
		return nil, fmt.Errorf("creating the bucket on versitygw: %w", err)
	}
	return &s3Server{server: s, client: client, env: []string{
		"FILESTAGE_S3_BUCKET=" + s3Bucket,
		"AWS_ENDPOINT_URL_S3=" + s.url,
		"AWS_ACCESS_KEY_ID=" + s3Access,
		"AWS_SECRET_ACCESS_KEY=" + s3Secret,
		"AWS_REGION=" + s3Region,
		"FILESTAGE_S3_PATH_STYLE=true",
	}}, nil
}

func findVersitygw() string {
	if p, err := exec.LookPath("versitygw"); err == nil {
		return p
	}
	out, err := exec.Command("go", "env", "GOBIN", "GOPATH").Output()
	if err != nil {
		return ""
	}
	lines := strings.Split(string(out), "\n")
	dirs := []string{lines[0]}
	if len(lines) > 1 {
		for _, p := range filepath.SplitList(lines[1]) {
			dirs = append(dirs, filepath.Join(p, "bin"))
		}
	}
	for _, d := range dirs {
		p := filepath.Join(d, "versitygw")
		if fi, err := os.Stat(p); d != "" && err == nil && fi.Mode().IsRegular() {
			return p
		}
	}
	return ""
}

// freeAddr is a loopback address nothing listens on, for a child to take.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// start starts a server process whose output goes to logPath.
func start(ctx context.Context, logPath string, name string, args ...string) (*server, error) {
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer logFile.Close() // the child has its own descriptor
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// On interrupt, SIGTERM first: filestage serve drains, versitygw exits.
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 5 * time.Second
	// Should this process die without cleaning up, so do its servers.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	s := &server{cmd: cmd, done: make(chan struct{}), log: logPath}
	go func() { cmd.Wait(); close(s.done) }()
	return s, nil
}

// wait polls url until the server answers at all.
func (s *server) wait(ctx context.Context, url string) error {
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); {
		if resp, err := http.Get(url); err == nil {
			resp.Body.Close()
			return nil
		}
		select {
		case <-s.done:
			log, _ := os.ReadFile(s.log)
			return fmt.Errorf("%s exited at start:\n%s", filepath.Base(s.cmd.Path), log)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return fmt.Errorf("%s did not answer at %s in 15s", filepath.Base(s.cmd.Path), url)
}

// stop ends the server: SIGTERM, then SIGKILL after WaitDelay.
func (s *server) stop() {
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(5 * time.Second):
		s.cmd.Process.Kill()
		<-s.done
	}
}

// checkDisk refuses to start when the scratch directory cannot hold a
// run of the largest size (the source, a download and two stored copies),
// and warns when it is in memory, where disk costs would not show.
func checkDisk(dir string, largest int64) error {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return err
	}
	if need, free := 4*largest+256*mib, int64(st.Bavail)*int64(st.Bsize); free < need {
		return fmt.Errorf("%s has %d MiB free; the run needs about %d MiB", dir, free/mib, need/mib)
	}
	const tmpfsMagic = 0x01021994
	if st.Type == tmpfsMagic {
		fmt.Fprintf(os.Stderr, "warning: %s is on tmpfs: disk writes cost nothing here; use -dir on a real disk\n", dir)
	}
	return nil
}

func printReport(w io.Writer, o options, bin, work string, results []result) {
	fmt.Fprintf(w, "\n| size | target | baseline median | filestage median | ratio | filestage peak RSS | filestage wrote | target met? |\n")
	fmt.Fprintf(w, "|---|---|---|---|---|---|---|---|\n")
	for _, r := range results {
		ratio := r.stage.Seconds() / r.base.Seconds()
		fmt.Fprintf(w, "| %s | %s | %.3f s | %.3f s | %.2f | %.1f MiB | %.0f MiB | %s |\n",
			r.size.label, r.target, r.base.Seconds(), r.stage.Seconds(), ratio, float64(r.rss)/mib, float64(r.written)/mib, verdict(r, ratio, results))
	}
	fmt.Fprintf(w, "\nMedians of %d rounds, baseline and filestage alternating. Baselines: http sources `curl URL | tee out | md5sum` then `curl -T out` to a presigned URL;"+
		" file sources `md5sum file` then `curl -T file`. Presigning is untimed. \"wrote\" is the filestage process's file writes (rusage ru_oublock), max over rounds.\n", o.rounds)
	fmt.Fprintf(w, "Targets: ratio ≤ %.2f (http) or ≤ %.2f (file) from %d MiB; peak RSS ≤ %d MiB and ≤ %.0f%% above the smallest size's; a file:// source into s3 writes no spool copy, anything else at most one copy.\n\n",
		maxRatioHTTP, maxRatioFile, ratioFrom/mib, maxRSS/mib, (rssGrowth-1)*100)
	for _, line := range machine(bin, work) {
		fmt.Fprintln(w, line)
	}
}

// verdict checks one result against issue 4's targets.
func verdict(r result, ratio float64, all []result) string {
	var miss []string
	limit := maxRatioHTTP
	if r.target.file {
		limit = maxRatioFile
	}
	if r.size.n >= ratioFrom && ratio > limit {
		miss = append(miss, fmt.Sprintf("ratio %.2f > %.2f", ratio, limit))
	}
	if r.rss > maxRSS {
		miss = append(miss, fmt.Sprintf("RSS > %d MiB", maxRSS/mib))
	}
	// all is ordered smallest size first.
	if i := slices.IndexFunc(all, func(a result) bool { return a.target == r.target }); i >= 0 && all[i].size.n < r.size.n {
		if ref := all[i].rss; float64(r.rss) > rssGrowth*float64(ref) {
			miss = append(miss, fmt.Sprintf("RSS %.0f%% above %s's", (float64(r.rss)/float64(ref)-1)*100, all[i].size.label))
		}
	}
	copies := int64(1)
	if r.target.file && r.target.s3 {
		copies = 0 // read in place: hashed, then sent
	}
	if slack := mib + r.size.n/100; r.written > copies*r.size.n+slack {
		miss = append(miss, fmt.Sprintf("wrote %.1f× the file", float64(r.written)/float64(r.size.n)))
	}
	if len(miss) > 0 {
		return "no: " + strings.Join(miss, "; ")
	}
	return "yes"
}

// machine describes where the numbers come from.
func machine(bin, work string) []string {
	cpu := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				cpu = strings.TrimSpace(v)
				break
			}
		}
	}
	ram := "?"
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		if f := strings.Fields(string(b)); len(f) > 1 && f[0] == "MemTotal:" {
			if kib, err := strconv.ParseInt(f[1], 10, 64); err == nil {
				ram = fmt.Sprintf("%.1f GiB", float64(kib)/(1<<20))
			}
		}
	}
	kernel, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	goVersion := runtime.Version()
	if info, err := buildinfo.ReadFile(bin); err == nil {
		goVersion = info.GoVersion
	}
	disk := "?"
	var st syscall.Statfs_t
	if syscall.Statfs(work, &st) == nil {
		disk = fmt.Sprintf("%.0f GiB free", float64(int64(st.Bavail)*int64(st.Bsize))/(1<<30))
	}
	curl, _ := exec.Command("curl", "--version").Output()
	curlLine, _, _ := strings.Cut(string(curl), "\n")
	curlVersion := strings.Join(strings.Fields(curlLine)[:min(2, len(strings.Fields(curlLine)))], " ")
	return []string{
		fmt.Sprintf("Machine: %s, %d cores, %s RAM, Linux %s, filestage built with %s, %s, scratch on %s (%s), %s.",
			cpu, runtime.NumCPU(), ram, strings.TrimSpace(string(kernel)), goVersion, curlVersion, filepath.Dir(work), disk, time.Now().Format("2006-01-02")),
	}
}

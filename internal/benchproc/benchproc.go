// Package benchproc runs the processes the benchmarks measure: the
// filestage binary, built from this module, and servers that announce
// their address in their log. It reads their CPU time and memory from
// /proc (Linux).
package benchproc

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Build builds the filestage binary at dst.
func Build(ctx context.Context, dst string) error {
	if out, err := exec.CommandContext(ctx, "go", "build", "-o", dst, "github.com/filestage/filestage").CombinedOutput(); err != nil {
		return fmt.Errorf("go build: %v\n%s", err, out)
	}
	return nil
}

// Binary is bin, or, when it is "", the binary built into dir (which
// says so on logw).
func Binary(ctx context.Context, bin, dir string, logw io.Writer) (string, error) {
	if bin != "" {
		return bin, nil
	}
	bin = filepath.Join(dir, "filestage")
	fmt.Fprintln(logw, "building filestage")
	return bin, Build(ctx, bin)
}

// Started matches filestage's start-up line; its group is the address
// the server listens on.
var Started = regexp.MustCompile(`msg="filestage started".* addr=(\S+)`)

// Process is a started server. Its output goes to a file: a pipe the
// benchmark were slow to read would block the server's writes, and with
// them its calls.
type Process struct {
	Cmd *exec.Cmd
	// Addr is what the address pattern matched.
	Addr   string
	log    string
	exited chan struct{}
}

// Start runs cmd with its output in logPath until a line matches addr,
// whose first group is the address it serves, for up to 30 s.
func Start(ctx context.Context, cmd *exec.Cmd, logPath string, addr *regexp.Regexp) (*Process, error) {
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &Process{Cmd: cmd, log: logPath, exited: make(chan struct{})}
	go func() { cmd.Wait(); close(p.exited) }()
	deadline := time.After(30 * time.Second)
	for {
		if m := addr.FindStringSubmatch(p.Log()); m != nil {
			p.Addr = m[1]
			return p, nil
		}
		select {
		case <-p.exited:
			return nil, fmt.Errorf("%s exited at start:\n%s", cmd.Path, p.Log())
		case <-deadline:
			p.Kill()
			return nil, fmt.Errorf("%s did not start in 30 s:\n%s", cmd.Path, p.Log())
		case <-ctx.Done():
			p.Kill()
			return nil, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Log is what the process has written so far.
func (p *Process) Log() string {
	b, _ := os.ReadFile(p.log)
	return string(b)
}

// Exited is closed once the process has ended.
func (p *Process) Exited() <-chan struct{} { return p.exited }

// Stop sends sig and waits for the process to end, killing it after wait.
// It reports whether it ended by itself.
func (p *Process) Stop(sig os.Signal, wait time.Duration) bool {
	p.Cmd.Process.Signal(sig)
	select {
	case <-p.exited:
		return true
	case <-time.After(wait):
		p.Kill()
		return false
	}
}

// Kill ends the process at once and waits for it.
func (p *Process) Kill() {
	p.Cmd.Process.Kill()
	<-p.exited
}

// CPU is the CPU time the process has used.
func (p *Process) CPU() time.Duration {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.Cmd.Process.Pid))
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * 10 * time.Millisecond // USER_HZ is 100 on Linux
}

// Status is a kB field of the process's /proc status (VmRSS, VmHWM …),
// in bytes; 0 when it cannot be read.
func (p *Process) Status(field string) int64 { return status(strconv.Itoa(p.Cmd.Process.Pid), field) }

// SelfCPU is the CPU time this process has used.
func SelfCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// SelfStatus is Status of this process.
func SelfStatus(field string) int64 { return status("self", field) }

func status(pid, field string) int64 {
	b, _ := os.ReadFile("/proc/" + pid + "/status")
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

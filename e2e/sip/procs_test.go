//go:build drills

package sip

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// proc is a process the drill started, its output in a log file.
type proc struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
	err  error
}

// start runs bin with args and env (added to the drill's own environment
// without HOLDOVER_ and SIPNODE_ variables), its stdout and stderr into
// logPath. The test's cleanup kills what is still running.
func start(t *testing.T, name, logPath string, env []string, bin string, args ...string) *proc {
	t.Helper()
	f, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "HOLDOVER_") && !strings.HasPrefix(kv, "SIPNODE_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, env...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		f.Close()
		t.Fatalf("start %s: %v", name, err)
	}
	p := &proc{name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		f.Close()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-p.done
		}
	})
	return p
}

func (p *proc) signal(s syscall.Signal) error { return p.cmd.Process.Signal(s) }

// wait waits up to d for the process to exit and returns its exit code (-1
// when killed by a signal).
func (p *proc) wait(d time.Duration) (int, error) {
	select {
	case <-p.done:
		return p.cmd.ProcessState.ExitCode(), nil
	case <-time.After(d):
		return 0, fmt.Errorf("%s still running after %s", p.name, d)
	}
}

func (p *proc) running() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// waitFor polls cond every 100 ms until it holds or d passes.
func waitFor(ctx context.Context, d time.Duration, cond func() bool) bool {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	for {
		if cond() {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// buildNode builds examples/sipnode into dir.
func buildNode(t *testing.T, dir string) string {
	t.Helper()
	goTool, err := exec.LookPath("go") // go test puts its own GOROOT/bin first on PATH
	if err != nil {
		t.Fatalf("go build examples/sipnode: %v", err)
	}
	bin := filepath.Join(dir, "sipnode")
	cmd := exec.Command(goTool, "build", "-o", bin, "../../examples/sipnode")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build examples/sipnode: %v\n%s", err, out)
	}
	return bin
}

// tool finds a program the drill needs, failing with the package to install.
func tool(t *testing.T, name, pkg string) string {
	t.Helper()
	for _, dir := range []string{"", "/usr/sbin/", "/usr/bin/"} {
		if p, err := exec.LookPath(dir + name); err == nil {
			return p
		}
	}
	t.Fatalf("%s not found: install the Debian package %s (make drill-sip does so as root)", name, pkg)
	return ""
}

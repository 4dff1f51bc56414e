package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// nodeProc is a holdover-node running as a child process.
type nodeProc struct {
	name string
	cmd  *exec.Cmd
	log  *tailLog
	done chan struct{} // closed when the process exited
	err  error         // Wait's result, set before done closes
}

// startNode starts bin with env added to this process's environment. Its
// output is kept (the last lines) and, when echo is not nil, copied there
// prefixed with the node's name. The child gets SIGKILL if this process dies.
func startNode(name, bin string, env []string, echo io.Writer) (*nodeProc, error) {
	return startNodeIn(name, bin, env, echo, -1)
}

// startNodeIn is startNode with the child started in the cgroup (v2) whose
// directory cgroupFD is open on (-1: this process's own), so that every
// socket it ever opens belongs to that cgroup (a partition matches them).
func startNodeIn(name, bin string, env []string, echo io.Writer, cgroupFD int) (*nodeProc, error) {
	p := &nodeProc{name: name, log: &tailLog{prefix: "[" + name + "] ", echo: echo, max: 200}, done: make(chan struct{})}
	p.cmd = exec.Command(bin)
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
	p.cmd.SysProcAttr = procAttr()
	if cgroupFD >= 0 {
		if err := intoCgroup(p.cmd.SysProcAttr, cgroupFD); err != nil {
			return nil, fmt.Errorf("start node %s: %w", name, err)
		}
	}
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start node %s (%s): %w", name, bin, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// alive returns nil while the process runs, else how it ended.
func (p *nodeProc) alive() error {
	select {
	case <-p.done:
		return fmt.Errorf("node %s exited (%v)", p.name, p.exitDesc())
	default:
		return nil
	}
}

func (p *nodeProc) exitDesc() string {
	if p.err == nil {
		return "exit status 0"
	}
	return p.err.Error()
}

// signal sends sig and waits up to timeout for the exit; it reports whether
// the process exited in time.
func (p *nodeProc) signal(sig syscall.Signal, timeout time.Duration) bool {
	if p.alive() != nil {
		return true
	}
	_ = p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
		return true
	case <-time.After(timeout):
		return false
	}
}

// kill ends the process, if it still runs, and waits for it.
func (p *nodeProc) kill() {
	if p.alive() == nil {
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// tail returns the last n lines of the node's output.
func (p *nodeProc) tail(n int) string { return p.log.tail(n) }

// tailLog keeps the last max lines written to it.
type tailLog struct {
	prefix string
	echo   io.Writer
	max    int

	mu      sync.Mutex
	partial []byte
	lines   []string
	fenced  int    // lines reporting a self-fence
	onFence func() // called (under mu) for each of those lines
	// leaseLines are the last maxLeaseLines lines about the node's lease
	// (renewals failed, fences, recoveries): what a false fence is read
	// from when the nodes' logs were not copied (-v).
	leaseLines []string
}

// leaseLine marks the lines a node logs about its lease: "holdover: lease
// renewal failed", "holdover: lease lapsed, node self-fenced", "holdover:
// lease renewed, node unfenced", and the like.
const leaseLine = "holdover: lease "

// maxLeaseLines bounds tailLog.leaseLines.
const maxLeaseLines = 20

// setOnFence has f called as each self-fence line arrives.
func (t *tailLog) setOnFence(f func()) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.onFence = f
}

// fenceLine is how a node logs that it fenced itself.
const fenceLine = "node self-fenced"

// fences returns how many self-fences the node has logged so far.
func (t *tailLog) fences() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.fenced
}

func (t *tailLog) Write(b []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.partial = append(t.partial, b...)
	for {
		i := bytes.IndexByte(t.partial, '\n')
		if i < 0 {
			break
		}
		line := string(t.partial[:i])
		t.partial = t.partial[i+1:]
		t.lines = append(t.lines, line)
		if strings.Contains(line, leaseLine) {
			t.leaseLines = append(t.leaseLines, line)
			if len(t.leaseLines) > maxLeaseLines {
				t.leaseLines = t.leaseLines[1:]
			}
		}
		if strings.Contains(line, fenceLine) {
			t.fenced++
			if t.onFence != nil {
				t.onFence()
			}
		}
		if len(t.lines) > t.max {
			t.lines = t.lines[len(t.lines)-t.max:]
		}
		if t.echo != nil {
			fmt.Fprintf(t.echo, "%s%s\n", t.prefix, line)
		}
	}
	return len(b), nil
}

// leaseLog returns the last lines the node logged about its lease, one per
// line, indented.
func (t *tailLog) leaseLog() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	var b strings.Builder
	for _, l := range t.leaseLines {
		b.WriteString("  " + t.prefix + l + "\n")
	}
	return b.String()
}

func (t *tailLog) tail(n int) string {
	t.mu.Lock()
	defer t.mu.Unlock()
	lines := t.lines[max(0, len(t.lines)-n):]
	if len(t.partial) > 0 {
		lines = append(append([]string(nil), lines...), string(t.partial))
	}
	var b strings.Builder
	for _, l := range lines {
		b.WriteString("  " + t.prefix + l + "\n")
	}
	return b.String()
}

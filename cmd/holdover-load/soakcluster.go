package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/holdover/holdover/internal/testbench/loadgen"
	"github.com/holdover/holdover/internal/testbench/soak"
)

// cassandraStatusRE matches a line of "cassandra.sh status".
var cassandraStatusRE = regexp.MustCompile(`(\S+) running \(pid (\d+)\) at ([0-9.]+):(\d+)`)

// findCassandra asks the script which of the nodes it started listens at
// host:port (port default 9042).
func findCassandra(script, host, port string) (int, error) {
	if port == "" {
		port = "9042"
	}
	out, err := exec.Command("bash", script, "status").CombinedOutput()
	if err != nil {
		return 0, fmt.Errorf("%s status: %v\n%s", script, err, out)
	}
	for _, m := range cassandraStatusRE.FindAllStringSubmatch(string(out), -1) {
		if m[3] == host && m[4] == port {
			return strconv.Atoi(m[2])
		}
	}
	return 0, fmt.Errorf("%s status names no running node at %s:%s:\n%s", script, host, port, out)
}

// isCassandra checks that pid is a Cassandra JVM.
func isCassandra(pid int) error {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return fmt.Errorf("cassandra pid %d: %v", pid, err)
	}
	if !strings.Contains(string(b), "CassandraDaemon") {
		return fmt.Errorf("pid %d is not a Cassandra JVM (no CassandraDaemon in its command line)", pid)
	}
	return nil
}

// soakCluster is soak.Cluster over child processes of holdover-node and the
// Cassandra JVM.
type soakCluster struct {
	bin    string
	ready  time.Duration
	logDir string
	echo   io.Writer
	env    map[string][]string // without the listen address
	logf   func(string, ...any)

	mu       sync.Mutex
	addr     map[string]string    // node's current listen address
	alt      map[string]string    // its other one, for a replacement
	procs    map[string]*nodeProc // by node name, and name+soak.ZombieSuffix for a replaced process
	logs     map[string]*os.File
	starts   map[string]int
	cassPID  int
	watchdog *exec.Cmd
	stalled  bool
	part     *partitioner // nil: no partitions planned
	onFence  func(node string, at time.Time)
}

// OnSelfFence implements soak.FenceReporter: the nodes' logs are read as
// they are written, and each self-fence line is reported under the name its
// process has then (the old process of a replaced node carries
// soak.ZombieSuffix).
func (c *soakCluster) OnSelfFence(f func(node string, at time.Time)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.onFence = f
}

// fenced reports a self-fence line of process p.
func (c *soakCluster) fenced(p *nodeProc, at time.Time) {
	c.mu.Lock()
	f := c.onFence
	name := ""
	for k, q := range c.procs {
		if q == p {
			name = k
		}
	}
	c.mu.Unlock()
	if f != nil && name != "" {
		f(name, at)
	}
}

func (c *soakCluster) proc(node string) (*nodeProc, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	p := c.procs[node]
	if p == nil {
		return nil, fmt.Errorf("node %s has no process", node)
	}
	return p, nil
}

// Start starts node (again) with its environment and waits until it is ready.
func (c *soakCluster) Start(ctx context.Context, node string) error {
	c.mu.Lock()
	addr := c.addr[node]
	c.mu.Unlock()
	p, err := c.spawn(node, addr)
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.procs[node] = p
	c.mu.Unlock()
	return c.waitReady(ctx, node, addr, p)
}

// Replace starts node again on its other address while its old process,
// stopped, keeps the current one; the old process becomes node+ZombieSuffix.
func (c *soakCluster) Replace(ctx context.Context, node string) (string, error) {
	c.mu.Lock()
	addr, old := c.alt[node], c.procs[node]
	c.mu.Unlock()
	if addr == "" || old == nil {
		return "", fmt.Errorf("node %s cannot be replaced (no other address or no process)", node)
	}
	if err := portFree(addr); err != nil {
		return "", err
	}
	p, err := c.spawn(node, addr)
	if err != nil {
		return "", err
	}
	c.mu.Lock()
	c.procs[node+soak.ZombieSuffix], c.procs[node] = old, p
	c.alt[node], c.addr[node] = c.addr[node], addr
	c.mu.Unlock()
	return "http://" + addr, c.waitReady(ctx, node, addr, p)
}

// spawn starts a process of node listening on addr; its log goes to the
// node's file, each process's lines marked with its start number.
func (c *soakCluster) spawn(node, addr string) (*nodeProc, error) {
	c.mu.Lock()
	f := c.logs[node]
	if f == nil {
		var err error
		if f, err = os.OpenFile(filepath.Join(c.logDir, node+".log"), os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644); err != nil {
			c.mu.Unlock()
			return nil, err
		}
		c.logs[node] = f
	}
	if c.starts == nil {
		c.starts = map[string]int{}
	}
	c.starts[node]++
	n := c.starts[node]
	fmt.Fprintf(f, "=== %s: start %d of %s on %s\n", time.Now().Format(time.RFC3339Nano), n, node, addr)
	var echo io.Writer = f
	if c.echo != nil {
		echo = io.MultiWriter(f, c.echo)
	}
	c.mu.Unlock()
	env := append(slices.Clone(c.env[node]), "HOLDOVER_NODE_LISTEN="+addr)
	fd := -1
	if c.part != nil {
		var err error
		if fd, err = c.part.cgroupFD(node); err != nil {
			return nil, err
		}
	}
	p, err := startNodeIn(fmt.Sprintf("%s#%d", node, n), c.bin, env, echo, fd)
	if err == nil {
		p.log.setOnFence(func() { at := time.Now(); go c.fenced(p, at) })
	}
	return p, err
}

func (c *soakCluster) waitReady(ctx context.Context, node, addr string, p *nodeProc) error {
	if err := loadgen.WaitReady(ctx, "http://"+addr, c.ready, p.alive); err != nil {
		return fmt.Errorf("node %s did not become ready: %v\nlast lines of its log:\n%s", node, err, p.tail(30))
	}
	return nil
}

func (c *soakCluster) Kill(node string) error {
	p, err := c.proc(node)
	if err != nil {
		return err
	}
	if !p.signal(syscall.SIGKILL, 10*time.Second) {
		return fmt.Errorf("node %s still runs 10s after SIGKILL", node)
	}
	return nil
}

func (c *soakCluster) send(node string, sig syscall.Signal) error {
	p, err := c.proc(node)
	if err != nil {
		return err
	}
	if p.alive() != nil {
		return fmt.Errorf("signal %v: %v", sig, p.alive())
	}
	return p.cmd.Process.Signal(sig)
}

func (c *soakCluster) Term(node string) error { return c.send(node, syscall.SIGTERM) }
func (c *soakCluster) Stop(node string) error { return c.send(node, sigStop) }
func (c *soakCluster) Cont(node string) error { return c.send(node, sigCont) }

func (c *soakCluster) Wait(node string, timeout time.Duration) (bool, string) {
	p, err := c.proc(node)
	if err != nil {
		return true, err.Error()
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-p.done:
		return true, p.exitDesc()
	case <-t.C:
		return false, ""
	}
}

// StallCassandra stops the Cassandra JVM. A detached watchdog (sh -c
// 'sleep; kill -CONT') continues it 10s after the planned end even if this
// process is killed meanwhile.
func (c *soakCluster) StallCassandra(hold time.Duration) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cassPID <= 0 {
		return errors.New("no Cassandra pid")
	}
	if err := isCassandra(c.cassPID); err != nil {
		return err
	}
	wd := exec.Command("sh", "-c", fmt.Sprintf("sleep %.3f; kill -CONT %d", (hold+10*time.Second).Seconds(), c.cassPID))
	wd.SysProcAttr = detachedAttr()
	if err := wd.Start(); err != nil {
		return fmt.Errorf("start the watchdog: %w", err)
	}
	c.watchdog = wd
	c.stalled = true
	if err := signalPID(c.cassPID, sigStop); err != nil {
		c.resumeLocked()
		return err
	}
	return nil
}

func (c *soakCluster) ResumeCassandra() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.resumeLocked()
}

func (c *soakCluster) resumeLocked() error {
	if !c.stalled {
		return nil
	}
	err := signalPID(c.cassPID, sigCont)
	if err == nil {
		c.stalled = false
	}
	if c.watchdog != nil && c.watchdog.Process != nil {
		_ = signalPID(-c.watchdog.Process.Pid, syscall.SIGKILL) // its own process group (setsid)
		_ = c.watchdog.Wait()
		c.watchdog = nil
	}
	return err
}

// Partition cuts node (all its processes) off from Cassandra.
func (c *soakCluster) Partition(node string) error {
	if c.part == nil {
		return errors.New("partitions were not set up (fault kind not in -faults)")
	}
	return c.part.Partition(node)
}

// Heal reconnects node to Cassandra.
func (c *soakCluster) Heal(node string) error {
	if c.part == nil {
		return nil
	}
	return c.part.Heal(node)
}

// killAll kills every node still running.
func (c *soakCluster) killAll() {
	c.mu.Lock()
	procs := make([]*nodeProc, 0, len(c.procs))
	for _, p := range c.procs {
		procs = append(procs, p)
	}
	c.mu.Unlock()
	for _, p := range procs {
		p.kill() // SIGKILL ends a stopped process too
	}
}

// close continues Cassandra if it is stopped, kills the nodes and closes
// the logs.
func (c *soakCluster) close() {
	c.mu.Lock()
	if c.stalled {
		if err := c.resumeLocked(); err != nil {
			c.logf("could not continue Cassandra (pid %d): %v", c.cassPID, err)
		} else {
			c.logf("continued Cassandra (pid %d)", c.cassPID)
		}
	}
	c.mu.Unlock()
	c.killAll()
	if c.part != nil {
		if err := c.part.close(); err != nil {
			c.logf("could not heal every partition: %v", err)
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, f := range c.logs {
		_ = f.Close()
	}
}

package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
)

// partitioner cuts nodes off from Cassandra, one at a time or several, for
// the soak's partition fault. Each node's processes start in a cgroup (v2)
// of their own; a partition is an iptables rule dropping every packet that
// sockets of that cgroup send to Cassandra's port. The node keeps running
// and serving its clients, its connections to Cassandra stay open and
// unanswered, as across a broken network; deleting the rule heals it. Rules
// carry the comment "holdover-soak", and a new partitioner deletes any left
// by a soak that died before it could.
type partitioner struct {
	root  string // the cgroup2 mount
	group string // this soak's cgroup, relative to root
	port  string // Cassandra's native port
	mu    sync.Mutex
	cut   map[string]bool
	fds   map[string]*os.File
}

const partitionComment = "holdover-soak"

// newPartitioner checks that partitions can be made here (root, iptables, a
// cgroup2 mount) and clears rules a dead soak left behind.
func newPartitioner(port string) (*partitioner, error) {
	if os.Geteuid() != 0 {
		return nil, errors.New("a partition needs root (iptables rules and cgroups)")
	}
	if _, err := exec.LookPath("iptables"); err != nil {
		return nil, fmt.Errorf("a partition needs iptables: %w", err)
	}
	root, err := cgroup2Mount()
	if err != nil {
		return nil, err
	}
	p := &partitioner{root: root, group: fmt.Sprintf("holdover-soak-%d", os.Getpid()), port: port,
		cut: map[string]bool{}, fds: map[string]*os.File{}}
	if err := os.Mkdir(filepath.Join(root, p.group), 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		return nil, fmt.Errorf("create cgroup %s: %w", p.group, err)
	}
	if err := clearPartitionRules(); err != nil {
		return nil, err
	}
	return p, nil
}

// cgroup2Mount finds where the cgroup2 file system is mounted
// (/sys/fs/cgroup, or /sys/fs/cgroup/unified on a hybrid system).
func cgroup2Mount() (string, error) {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return "", err
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		// ... mount-point ... - fstype source options
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		f, g := strings.Fields(pre), strings.Fields(post)
		if ok && len(f) >= 5 && len(g) >= 1 && g[0] == "cgroup2" {
			return f[4], nil
		}
	}
	return "", errors.New("a partition needs a cgroup2 file system mounted (none in /proc/self/mountinfo)")
}

// cgroupFD opens (creating it) node's cgroup, to start its processes in.
func (p *partitioner) cgroupFD(node string) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if f := p.fds[node]; f != nil {
		return int(f.Fd()), nil
	}
	dir := filepath.Join(p.root, p.group, node)
	if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		return -1, fmt.Errorf("create cgroup of node %s: %w", node, err)
	}
	f, err := os.OpenFile(dir, os.O_RDONLY|syscall.O_DIRECTORY, 0)
	if err != nil {
		return -1, fmt.Errorf("open cgroup of node %s: %w", node, err)
	}
	p.fds[node] = f
	return int(f.Fd()), nil
}

func (p *partitioner) rule(node string) []string {
	return []string{"OUTPUT", "-p", "tcp", "--dport", p.port, "-m", "cgroup", "--path", p.group + "/" + node,
		"-m", "comment", "--comment", partitionComment, "-j", "DROP"}
}

// Partition drops node's packets to Cassandra.
func (p *partitioner) Partition(node string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.fds[node] == nil {
		return fmt.Errorf("node %s was not started in a cgroup of its own", node)
	}
	if p.cut[node] {
		return nil
	}
	if err := iptables(append([]string{"-I"}, p.rule(node)...)...); err != nil {
		return err
	}
	p.cut[node] = true
	return nil
}

// Heal deletes node's rule.
func (p *partitioner) Heal(node string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.healLocked(node)
}

func (p *partitioner) healLocked(node string) error {
	if !p.cut[node] {
		return nil
	}
	if err := iptables(append([]string{"-D"}, p.rule(node)...)...); err != nil {
		return err
	}
	delete(p.cut, node)
	return nil
}

// close heals every partition and removes the cgroups (once the nodes are
// gone: a cgroup with processes cannot be removed).
func (p *partitioner) close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	var errs []error
	for node := range p.cut {
		errs = append(errs, p.healLocked(node))
	}
	for node, f := range p.fds {
		_ = f.Close()
		_ = os.Remove(filepath.Join(p.root, p.group, node))
	}
	_ = os.Remove(filepath.Join(p.root, p.group))
	return errors.Join(errs...)
}

// clearPartitionRules deletes every rule carrying partitionComment.
func clearPartitionRules() error {
	out, err := exec.Command("iptables", "-S", "OUTPUT").CombinedOutput()
	if err != nil {
		return fmt.Errorf("iptables -S OUTPUT: %v: %s", err, bytes.TrimSpace(out))
	}
	for _, line := range strings.Split(string(out), "\n") {
		if !strings.HasPrefix(line, "-A OUTPUT ") || !strings.Contains(line, "--comment "+partitionComment) {
			continue
		}
		if err := iptables(append([]string{"-D"}, strings.Fields(strings.TrimPrefix(line, "-A "))...)...); err != nil {
			return err
		}
	}
	return nil
}

func iptables(args ...string) error {
	out, err := exec.Command("iptables", append([]string{"-w"}, args...)...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("iptables %s: %v: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}

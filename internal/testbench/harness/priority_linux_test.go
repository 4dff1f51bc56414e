//go:build linux

package harness

import (
	"errors"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// niceOf reads the nice of every thread of pid from /proc (field 19 of stat).
func niceOf(t *testing.T, pid int) []int {
	t.Helper()
	tasks, err := os.ReadDir("/proc/" + strconv.Itoa(pid) + "/task")
	if err != nil {
		t.Fatal(err)
	}
	var nices []int
	for _, task := range tasks {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/task/" + task.Name() + "/stat")
		if err != nil {
			continue
		}
		f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
		n, err := strconv.Atoi(f[16]) // nice is field 19; f starts at field 3
		if err != nil {
			t.Fatal(err)
		}
		nices = append(nices, n)
	}
	return nices
}

func TestYieldLowersEveryThreadAndRestores(t *testing.T) {
	// A child in its own session, as the Cassandra nodes are.
	cmd := exec.Command("sleep", "30")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true} // its own autogroup
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	pid := cmd.Process.Pid
	before := niceOf(t, pid)
	restore, how, err := Yield([]int{pid}, 10)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(how, "nice 10 on 1 threads of 1 processes") {
		t.Errorf("how = %q", how)
	}
	for _, n := range niceOf(t, pid) {
		if n != 10 {
			t.Fatalf("thread nice %d after Yield, want 10", n)
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/sched_autogroup_enabled"); err == nil && strings.TrimSpace(string(b)) == "1" {
		ag, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/autogroup")
		if err == nil && !strings.HasSuffix(strings.TrimSpace(string(ag)), "nice 10") {
			t.Errorf("autogroup %q after Yield, want nice 10", ag)
		}
		if !strings.Contains(how, "autogroups") {
			t.Errorf("how = %q does not name the autogroup", how)
		}
	}
	err = restore()
	if err != nil {
		if os.Geteuid() == 0 || !(errors.Is(err, syscall.EACCES) || errors.Is(err, syscall.EPERM)) {
			t.Fatalf("restore: %v", err)
		}
		return // lowering a nice back needs privilege
	}
	after := niceOf(t, pid)
	if len(after) != len(before) || after[0] != before[0] {
		t.Errorf("nice %v after restore, want %v", after, before)
	}
}

func TestYieldOfAMissingProcessFails(t *testing.T) {
	restore, _, err := Yield([]int{1 << 30}, 10)
	if err == nil {
		t.Fatal("Yield of a missing process succeeded")
	}
	if err := restore(); err != nil {
		t.Errorf("restore after a failed Yield: %v", err)
	}
}

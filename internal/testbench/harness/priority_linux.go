//go:build linux

package harness

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// Yield lowers the CPU priority of the processes pids (the Cassandra nodes
// this machine shares its cores with) to nice, so that this process is
// scheduled ahead of them as a host on its own cores would be. It sets the
// nice of every thread (threads started later inherit their creator's) and,
// where the kernel groups processes by session for scheduling (autogroup),
// the nice of each process's group, which is what weighs between sessions.
// Raising a nice needs no privilege; lowering it back does, so restore may
// fail for a user other than root. It returns how the priority was lowered.
func Yield(pids []int, nice int) (restore func() error, how string, err error) {
	type saved struct {
		path string // autogroup file, or "" for a thread
		id   int    // thread id
		nice int
	}
	var undo []saved
	restore = func() error {
		var errs []error
		for _, s := range undo {
			if s.path != "" {
				errs = append(errs, os.WriteFile(s.path, []byte(strconv.Itoa(s.nice)), 0))
			} else if err := syscall.Setpriority(syscall.PRIO_PROCESS, s.id, s.nice); err != nil && !errors.Is(err, syscall.ESRCH) {
				errs = append(errs, fmt.Errorf("thread %d: nice %d: %w", s.id, s.nice, err))
			}
		}
		return errors.Join(errs...)
	}
	autogroup := false
	if b, err := os.ReadFile("/proc/sys/kernel/sched_autogroup_enabled"); err == nil && strings.TrimSpace(string(b)) == "1" {
		autogroup = true
	}
	threads, groups := 0, 0
	for _, pid := range pids {
		if autogroup {
			path := fmt.Sprintf("/proc/%d/autogroup", pid)
			if b, err := os.ReadFile(path); err == nil {
				// "/autogroup-5 nice 0"
				f := strings.Fields(string(b))
				old, perr := strconv.Atoi(f[len(f)-1])
				if perr == nil && old < nice {
					if err := os.WriteFile(path, []byte(strconv.Itoa(nice)), 0); err != nil {
						return restore, "", fmt.Errorf("process %d: autogroup nice %d: %w", pid, nice, err)
					}
					undo = append(undo, saved{path: path, nice: old})
					groups++
				}
			}
		}
		tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
		if err != nil {
			return restore, "", fmt.Errorf("process %d: %w", pid, err)
		}
		for _, t := range tasks {
			tid, err := strconv.Atoi(t.Name())
			if err != nil {
				continue
			}
			prio, err := syscall.Getpriority(syscall.PRIO_PROCESS, tid)
			if err != nil {
				continue // the thread ended
			}
			old := 20 - prio // the raw system call returns 20 - nice
			if old >= nice {
				continue
			}
			if err := syscall.Setpriority(syscall.PRIO_PROCESS, tid, nice); err != nil {
				if errors.Is(err, syscall.ESRCH) {
					continue
				}
				return restore, "", fmt.Errorf("process %d thread %d: nice %d: %w", pid, tid, nice, err)
			}
			undo = append(undo, saved{id: tid, nice: old})
			threads++
		}
	}
	how = fmt.Sprintf("nice %d on %d threads of %d processes", nice, threads, len(pids))
	if groups > 0 {
		how += fmt.Sprintf(" and on their %d scheduling autogroups", groups)
	}
	return restore, how, nil
}

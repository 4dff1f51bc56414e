//go:build !linux

package main

import (
	"errors"
	"syscall"
)

// procAttr: without Pdeathsig, the demo's deferred cleanup alone stops the
// nodes.
func procAttr() *syscall.SysProcAttr { return nil }

// intoCgroup: cgroups are Linux's.
func intoCgroup(*syscall.SysProcAttr, int) error {
	return errors.New("starting a process in a cgroup needs Linux")
}

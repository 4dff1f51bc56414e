package main

import "syscall"

// procAttr makes the kernel SIGKILL a node when this process dies, whatever
// the way, so a demo never leaves nodes behind.
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}

// intoCgroup starts the child directly in the cgroup cgroupFD is open on.
func intoCgroup(a *syscall.SysProcAttr, cgroupFD int) error {
	a.UseCgroupFD, a.CgroupFD = true, cgroupFD
	return nil
}

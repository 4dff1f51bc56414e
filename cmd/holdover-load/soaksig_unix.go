//go:build unix

package main

import "syscall"

// Signals the soak sends to nodes and to Cassandra.
const (
	sigStop = syscall.SIGSTOP
	sigCont = syscall.SIGCONT
)

// signalPID sends sig to process pid (Cassandra's JVM, which this program
// did not start), or to process group -pid.
func signalPID(pid int, sig syscall.Signal) error { return syscall.Kill(pid, sig) }

// detachedAttr starts a process in a session of its own, without
// Pdeathsig: it outlives this process (the soak's watchdog that continues a
// stopped Cassandra).
func detachedAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setsid: true} }

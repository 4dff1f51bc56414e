//go:build !unix

package main

import (
	"errors"
	"syscall"
)

// Without SIGSTOP and SIGCONT the soak cannot pause processes; these stand
// in so that the other commands build.
const (
	sigStop = syscall.Signal(0x13)
	sigCont = syscall.Signal(0x12)
)

func signalPID(int, syscall.Signal) error {
	return errors.New("holdover-load soak: signals need a Unix system")
}

func detachedAttr() *syscall.SysProcAttr { return nil }

//go:build !linux

package main

import "syscall"

// procAttr: without Pdeathsig, the demo's deferred cleanup alone stops the
// nodes.
func procAttr() *syscall.SysProcAttr { return nil }

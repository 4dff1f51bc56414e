//go:build !linux

package harness

import "errors"

// Yield lowers the CPU priority of the processes pids; only Linux is
// supported.
func Yield(pids []int, nice int) (restore func() error, how string, err error) {
	return func() error { return nil }, "", errors.New("lowering another process's priority is supported on Linux only")
}

//go:build !linux

package bench

import (
	"errors"
	"runtime"
	"syscall"
)

// pinTo leaves the goroutine where the system puts it: only Linux pins.
func pinTo(int) error { return errors.ErrUnsupported }

// lastCPU is the machine's last CPU.
func lastCPU() int { return runtime.NumCPU() - 1 }

// childAttr is nothing special: only Linux ends a child with its parent.
func childAttr() *syscall.SysProcAttr { return nil }

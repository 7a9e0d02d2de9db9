//go:build !linux

package bench

import "syscall"

// pinTo leaves the goroutine where the system puts it: only Linux pins.
func pinTo(int) {}

// childAttr is nothing special: only Linux ends a child with its parent.
func childAttr() *syscall.SysProcAttr { return nil }

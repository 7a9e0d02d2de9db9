//go:build linux

package bench

import (
	"runtime"
	"syscall"

	"golang.org/x/sys/unix"
)

// pinTo keeps the calling goroutine, and its thread, on CPU cpu.
func pinTo(cpu int) {
	// The affinity is the thread's: the goroutine keeps to the thread.
	runtime.LockOSThread()
	var set unix.CPUSet
	set.Set(cpu)
	_ = unix.SchedSetaffinity(0, &set)
}

// childAttr makes a helper process die with the bench.
func childAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} }

//go:build linux

package bench

import (
	"runtime"
	"syscall"

	"golang.org/x/sys/unix"
)

// pinTo keeps the calling goroutine, and its thread, on CPU cpu.
func pinTo(cpu int) error {
	// The affinity is the thread's: the goroutine keeps to the thread.
	runtime.LockOSThread()
	var set unix.CPUSet
	set.Set(cpu)
	return unix.SchedSetaffinity(0, &set)
}

// lastCPU is the highest-numbered CPU this process may run on (under
// taskset or a container's cpuset, not the machine's last).
func lastCPU() int {
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err == nil {
		for cpu := 1023; cpu >= 0; cpu-- {
			if set.IsSet(cpu) {
				return cpu
			}
		}
	}
	return runtime.NumCPU() - 1
}

// childAttr makes a helper process die with the bench.
func childAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} }

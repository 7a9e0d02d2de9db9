package bench

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"time"
)

// tick is the unit of /proc's CPU times (USER_HZ, 100 a second on Linux).
const tick = 10 * time.Millisecond

// cpuMeter reads how much CPU the machine spent working, less what the CPU
// hog spent, from /proc: Caddy, the upstream, the load generator and any
// peer (oauth2-proxy), and the kernel's network work for all of them.
// Time the hypervisor gave to other guests (steal) is not counted, so a
// run's CPU per request drifts less than its throughput.
type cpuMeter struct {
	hog int // the hog's pid, 0 without one
}

// read returns the CPU worked so far, and false where /proc cannot tell.
func (m cpuMeter) read() (time.Duration, bool) {
	stat, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, false
	}
	// cpu  user nice system idle iowait irq softirq steal guest guest_nice
	line, _, _ := bytes.Cut(stat, []byte("\n"))
	f := bytes.Fields(line)
	if len(f) < 8 || string(f[0]) != "cpu" {
		return 0, false
	}
	var busy int64
	for _, i := range []int{1, 2, 3, 6, 7} {
		n, err := strconv.ParseInt(string(f[i]), 10, 64)
		if err != nil {
			return 0, false
		}
		busy += n
	}
	if m.hog != 0 {
		hog, ok := processTicks(m.hog)
		if !ok {
			return 0, false
		}
		busy -= hog
	}
	return time.Duration(busy) * tick, true
}

// processTicks is the user and system CPU of process pid, in ticks.
func processTicks(pid int) (int64, bool) {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, false
	}
	// pid (comm) state ppid ... utime stime: fields 14 and 15, counted
	// after the command name, which may hold spaces.
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, false
	}
	f := bytes.Fields(stat[i+1:])
	if len(f) < 13 {
		return 0, false
	}
	utime, err1 := strconv.ParseInt(string(f[11]), 10, 64)
	stime, err2 := strconv.ParseInt(string(f[12]), 10, 64)
	return utime + stime, err1 == nil && err2 == nil
}

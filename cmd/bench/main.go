// Command bench measures Portalgate side by side with the alternatives, on
// loopback, and prints a table and ratios (see BENCHMARKS.md).
//
//	go run ./cmd/bench [-duration 5s] [-connections 64] [-scenarios 1,2,3] [-sessions 1000,100000,1000000] [-rounds 5] [-hog] [-cpuprofile cpu.out]
//
// The defaults make the full run of BENCHMARKS.md (about 10 minutes).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"

	"github.com/portalgate/portalgate/caddymodule/bench"
)

func main() {
	bench.Child() // returns at once, unless this process is one of the bench's helpers
	os.Exit(run())
}

func run() int {
	duration := flag.Duration("duration", 5*time.Second, "length of each load run")
	conns := flag.Int("connections", 64, "concurrent keep-alive connections per run")
	scenarios := flag.String("scenarios", "", "comma-separated scenario numbers 1-16 (default: all)")
	sessions := flag.String("sessions", "1000,100000,1000000", "live session counts for scenario 8")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the whole run to this file")
	rounds := flag.Int("rounds", 5, "run the throughput comparisons (scenarios 2, 9, 3, 5, 10), the session counts of 8 and the runs of 11 and 12 this many times, interleaved, and report medians")
	hog := flag.Bool("hog", false, "keep the machine's last CPU busy with a spinning process for the whole run")
	flag.Parse()
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			return 1
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			return 1
		}
		defer pprof.StopCPUProfile()
	}

	o := bench.Options{Duration: *duration, Connections: *conns, Scenarios: map[int]bool{}, Rounds: *rounds, Hog: *hog, Out: os.Stdout}
	for _, s := range strings.Split(*scenarios, ",") {
		if s = strings.TrimSpace(s); s != "" {
			n, err := strconv.Atoi(s)
			if err != nil || n < 1 || n > 16 {
				fmt.Fprintf(os.Stderr, "bench: %q is not a scenario number 1-16\n", s)
				return 2
			}
			o.Scenarios[n] = true
		}
	}
	for _, s := range strings.Split(*sessions, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			fmt.Fprintf(os.Stderr, "bench: %q is not a session count\n", s)
			return 2
		}
		o.SessionCounts = append(o.SessionCounts, n)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := bench.Run(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 1
	}
	return 0
}

// Package freeport finds free loopback addresses for tests and benchmarks.
package freeport

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
)

// lowest is the lowest port handed out: well clear of the well-known ones.
const lowest = 10000

// Addrs returns n distinct free addresses on 127.0.0.1. Every listener stays
// open until all are chosen, so no port is handed out twice. The ports lie
// below the kernel's ephemeral range: between the choice and the caller's own
// bind, no outgoing connection (another test's client, a browser, Redis) can
// be given one of them, as it can a port the kernel picked.
func Addrs(n int) ([]string, error) {
	addrs := make([]string, 0, n)
	held := make([]net.Listener, 0, n)
	defer func() {
		for _, l := range held {
			_ = l.Close()
		}
	}()
	top := ephemeralLow()
	for tries := 0; len(addrs) < n; tries++ {
		addr := "127.0.0.1:0"
		if top > lowest {
			addr = fmt.Sprintf("127.0.0.1:%d", lowest+rand.IntN(top-lowest)) //nolint:gosec // a port, not a secret
		}
		l, err := net.Listen("tcp", addr)
		if err != nil {
			if tries < 1000 {
				continue // taken: try another
			}
			return nil, err
		}
		held = append(held, l)
		addrs = append(addrs, l.Addr().String())
	}
	return addrs, nil
}

// ephemeralLow is the first port of the kernel's ephemeral range (Linux),
// or 0 when it cannot be read.
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 0
	}
	var lo, hi int
	if _, err := fmt.Sscan(string(b), &lo, &hi); err != nil {
		return 0
	}
	return lo
}

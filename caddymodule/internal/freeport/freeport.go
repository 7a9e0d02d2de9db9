// Package freeport finds free loopback addresses for tests and benchmarks.
package freeport

import "net"

// Addrs returns n distinct free addresses on 127.0.0.1. Every listener stays
// open until all are chosen, so the kernel cannot hand out one port twice.
func Addrs(n int) ([]string, error) {
	addrs := make([]string, n)
	held := make([]net.Listener, 0, n)
	defer func() {
		for _, l := range held {
			_ = l.Close()
		}
	}()
	for i := range addrs {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		held = append(held, l)
		addrs[i] = l.Addr().String()
	}
	return addrs, nil
}

package freeport

import (
	"net"
	"strconv"
	"testing"
)

func TestAddrs_AreDistinctFreeAndOutsideTheEphemeralRange(t *testing.T) {
	addrs, err := Addrs(50)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	top := ephemeralLow()
	for _, a := range addrs {
		if seen[a] {
			t.Fatalf("%s handed out twice", a)
		}
		seen[a] = true
		_, p, _ := net.SplitHostPort(a)
		if port, _ := strconv.Atoi(p); top > lowest && (port < lowest || port >= top) {
			t.Fatalf("port %d is outside [%d, %d)", port, lowest, top)
		}
		l, err := net.Listen("tcp", a)
		if err != nil {
			t.Fatalf("%s is not free: %v", a, err)
		}
		l.Close()
	}
}

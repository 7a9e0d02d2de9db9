package ratelimit_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/portalgate/portalgate/caddymodule/internal/ratelimit"
	"github.com/portalgate/portalgate/caddymodule/internal/testkit/clock"
)

func TestLimiter_BruteForceIsBlockedThenRecovers(t *testing.T) {
	clk := clock.NewFake()
	l, err := ratelimit.New(3, time.Minute, 100, clk.Now)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if _, blocked := l.Blocked("a"); blocked {
			t.Fatalf("blocked after %d failures of 3", i)
		}
		if _, blocked := l.Spend("a"); blocked {
			t.Fatalf("failure %d of 3 was not spent", i+1)
		}
	}
	wait, blocked := l.Blocked("a")
	if !blocked || wait < 19*time.Second || wait > 21*time.Second {
		t.Fatalf("after 3 failures: blocked %v, wait %v (want about 20s: 3 per minute)", blocked, wait)
	}
	if wait, blocked := l.Spend("a"); !blocked || wait < 19*time.Second {
		t.Fatalf("a fourth failure: blocked %v, wait %v", blocked, wait)
	}
	if _, blocked := l.Blocked("b"); blocked {
		t.Fatal("another key is blocked")
	}
	clk.Advance(20 * time.Second)
	if _, blocked := l.Blocked("a"); blocked {
		t.Fatal("still blocked after the wait")
	}
}

func TestLimiter_MemoryIsBounded(t *testing.T) {
	l, _ := ratelimit.New(3, time.Minute, 10, clock.NewFake().Now)
	for i := range 1000 {
		l.Spend(fmt.Sprintf("10.0.%d.%d", i/256, i%256))
	}
	if l.Len() != 10 {
		t.Fatalf("tracks %d keys, want 10", l.Len())
	}
}

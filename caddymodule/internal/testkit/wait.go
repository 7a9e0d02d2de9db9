package testkit

import (
	"testing"
	"time"
)

// Eventually checks cond every few milliseconds until it holds, and fails the
// test when it still does not after within. It waits for a state, never for
// a time: within is a bound for a loaded machine, not an expectation.
func Eventually(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited %v for %s", within, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

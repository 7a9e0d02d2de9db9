// Package clock provides a fake clock, so expiry is tested without sleeping.
package clock

import (
	"sync"
	"time"
)

// Fake is a clock that moves only when told to.
type Fake struct {
	mu sync.Mutex
	t  time.Time
}

// NewFake returns a fake clock set to a fixed instant.
func NewFake() *Fake {
	return NewFakeAt(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
}

// NewFakeAt returns a fake clock set to t: time.Now() for a test that talks
// to a server with a clock of its own.
func NewFakeAt(t time.Time) *Fake { return &Fake{t: t} }

// Now returns the clock's time.
func (f *Fake) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.t
}

// Advance moves the clock forward by d.
func (f *Fake) Advance(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.t = f.t.Add(d)
}

package caddymodule

import (
	"sync"
	"sync/atomic"
	"time"
)

// drainLimit bounds how long a replaced config keeps what its requests use
// (the store, the session cache) once Caddy has cleaned it up: a proxied
// WebSocket may stay in flight for hours.
const drainLimit = time.Minute

// inFlight counts the requests a config is serving. Caddy cleans a config
// up as soon as its servers stop taking connections, while their last
// requests still run: those requests must find the store they began with
// open, so what they use is released only after them.
type inFlight struct {
	n       atomic.Int64
	closing atomic.Bool
	once    sync.Once
	done    chan struct{}
}

func newInFlight() *inFlight { return &inFlight{done: make(chan struct{})} }

// enter counts a request in; leave counts it out.
func (f *inFlight) enter() { f.n.Add(1) }

func (f *inFlight) leave() {
	if f.n.Add(-1) == 0 && f.closing.Load() {
		f.drained()
	}
}

func (f *inFlight) drained() { f.once.Do(func() { close(f.done) }) }

// after runs release once the requests in flight now are done (at most
// drainLimit from now): at once when there are none, else without blocking
// the caller. No request enters after it is called: Caddy's servers have
// stopped accepting them.
func (f *inFlight) after(release func()) {
	f.closing.Store(true)
	if f.n.Load() == 0 {
		f.drained()
		release()
		return
	}
	go func() {
		t := time.NewTimer(drainLimit)
		defer t.Stop()
		select {
		case <-f.done:
		case <-t.C:
		}
		release()
	}()
}

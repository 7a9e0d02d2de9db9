// Package backlog runs work behind the requests that ask for it: a bounded
// queue of jobs and a fixed number of workers, which a reload closes within
// a bound. The mail queue and the sign-in requests run on it.
package backlog

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
)

// The refusals of Add.
var (
	ErrFull   = errors.New("the backlog is full")
	ErrClosed = errors.New("the backlog is closed")
)

// Backlog holds jobs for its workers.
type Backlog[T any] struct {
	jobs chan T
	// stop ends the work in hand once Close has waited long enough; every
	// job gets it as its context.
	stop context.Context
	halt context.CancelFunc
	// mu guards closed: no job is added once the channel closes.
	mu      sync.RWMutex
	closed  bool
	workers sync.WaitGroup
	// busy counts the jobs the workers hold.
	busy atomic.Int32
}

// New starts workers that each run work on one job at a time, with room
// for size jobs waiting.
func New[T any](size, workers int, work func(ctx context.Context, job T)) *Backlog[T] {
	stop, halt := context.WithCancel(context.Background()) //nolint:gosec // halt is kept, and Close calls it
	b := &Backlog[T]{jobs: make(chan T, size), stop: stop, halt: halt}
	for range workers {
		b.workers.Go(func() {
			for job := range b.jobs {
				b.busy.Add(1)
				work(b.stop, job)
				b.busy.Add(-1)
			}
		})
	}
	return b
}

// Add queues job, or answers ErrClosed or ErrFull at once. accepted, when
// set, runs after the closed check and before any worker can see job (so a
// report of it as queued comes before one of it as done); a full backlog
// still refuses it then.
func (b *Backlog[T]) Add(job T, accepted func()) error {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.closed {
		return ErrClosed
	}
	if accepted != nil {
		accepted()
	}
	select {
	case b.jobs <- job:
		return nil
	default:
		return ErrFull
	}
}

// Len is how many jobs wait for a worker; Cap how many may.
func (b *Backlog[T]) Len() int { return len(b.jobs) }

// Cap is how many jobs may wait for a worker.
func (b *Backlog[T]) Cap() int { return cap(b.jobs) }

// Idle reports whether no job waits or is in hand.
func (b *Backlog[T]) Idle() bool { return len(b.jobs) == 0 && b.busy.Load() == 0 }

// Close takes no more jobs and lets the workers work on those waiting until
// ctx ends; then their context ends, and what is left runs with it ended
// (to say it was not done).
func (b *Backlog[T]) Close(ctx context.Context) {
	b.mu.Lock()
	if !b.closed {
		b.closed = true
		close(b.jobs)
	}
	b.mu.Unlock()
	done := make(chan struct{})
	go func() { b.workers.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		b.halt()
		<-done
	}
	b.halt()
}

package mail

import (
	"cmp"
	"context"
	"errors"
	"time"

	"github.com/cenkalti/backoff/v5"

	"github.com/portalgate/portalgate/caddymodule/internal/backlog"
)

// Status is what became of a message.
type Status string

// The statuses a queue reports, in the order a message may pass them.
const (
	// Queued: accepted, waiting for a worker or for its next try.
	Queued Status = "queued"
	// Sent: the mail server (or the outbox) took it.
	Sent Status = "sent"
	// Failed: the queue gave up on it: the server refused it for good,
	// every try failed, the queue was full, or it closed first.
	Failed Status = "failed"
)

// ErrQueueFull is Enqueue's answer when the queue holds as many messages as
// it may: the message is not sent, and the queue reports it Failed.
var ErrQueueFull = errors.New("the mail queue is full")

// ErrExpired is the failure of a message whose Expires came before it
// could be delivered.
var ErrExpired = errors.New("what the message carries expired before it could be delivered")

// ErrClosed is Enqueue's answer after Close.
var ErrClosed = errors.New("the mail queue is closed")

// QueueConfig tunes a Queue. Zero values take the defaults.
type QueueConfig struct {
	// Size bounds the messages waiting. Default: 1000.
	Size int
	// Workers send at once. Default: 4.
	Workers int
	// Tries bounds the attempts at one message. Default: 5.
	Tries int
	// FirstRetry is the wait before the second try; it doubles (with
	// jitter of ±50%) up to LastRetry. Defaults: 2s and 1m.
	FirstRetry, LastRetry time.Duration
	// Timeout bounds one try. Default: 30s.
	Timeout time.Duration
	// Report is told every status of every message, in order, with the try
	// it came from (0 for Queued, and for Failed when it was never tried)
	// and the error of a try that failed. It runs on the goroutine that
	// enqueued (Queued, and Failed for a full queue) or on a worker: it
	// must be quick.
	Report func(m *Message, s Status, try int, err error)
	// Wait waits d, or until ctx ends (its error then). Default: a timer;
	// tests pass one that returns at once.
	Wait func(ctx context.Context, d time.Duration) error
	// Now is the clock messages' Expires are read by. Default: time.Now.
	Now func() time.Time
}

// Queue sends messages behind the requests that asked for them: Enqueue
// never waits for a mail server.
type Queue struct {
	sender  Sender
	cfg     QueueConfig
	backlog *backlog.Backlog[*Message]
}

// NewQueue starts a queue in front of sender.
func NewQueue(sender Sender, cfg QueueConfig) *Queue {
	cfg.Size = cmp.Or(cfg.Size, 1000)
	cfg.Workers = cmp.Or(cfg.Workers, 4)
	cfg.Tries = cmp.Or(cfg.Tries, 5)
	cfg.FirstRetry = cmp.Or(cfg.FirstRetry, 2*time.Second)
	cfg.LastRetry = cmp.Or(cfg.LastRetry, time.Minute)
	cfg.Timeout = cmp.Or(cfg.Timeout, 30*time.Second)
	if cfg.Report == nil {
		cfg.Report = func(*Message, Status, int, error) {}
	}
	if cfg.Wait == nil {
		cfg.Wait = wait
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	q := &Queue{sender: sender, cfg: cfg}
	q.backlog = backlog.New(cfg.Size, cfg.Workers, q.deliver)
	return q
}

func wait(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Enqueue accepts m for sending, or answers ErrQueueFull or ErrClosed
// (reported Failed) at once.
func (q *Queue) Enqueue(m Message) error {
	// Queued is told first: once in the backlog, a worker may report the
	// message sent before this goroutine runs again.
	err := q.backlog.Add(&m, func() { q.cfg.Report(&m, Queued, 0, nil) })
	switch {
	case errors.Is(err, backlog.ErrClosed):
		err = ErrClosed
	case errors.Is(err, backlog.ErrFull):
		err = ErrQueueFull
	}
	if err != nil {
		q.cfg.Report(&m, Failed, 0, err)
	}
	return err
}

// Len is how many messages wait for a worker.
func (q *Queue) Len() int { return q.backlog.Len() }

// Cap is how many messages may wait for a worker.
func (q *Queue) Cap() int { return q.backlog.Cap() }

// Idle reports whether no message waits or is being sent.
func (q *Queue) Idle() bool { return q.backlog.Idle() }

// Close stops taking messages and sends those waiting until ctx ends; then
// it stops the tries in progress, and reports every message left Failed.
func (q *Queue) Close(ctx context.Context) { q.backlog.Close(ctx) }

// deliver tries m until it is sent, refused for good, out of tries, or the
// queue halts.
func (q *Queue) deliver(stop context.Context, m *Message) {
	if stop.Err() != nil {
		q.cfg.Report(m, Failed, 0, ErrClosed)
		return
	}
	delays := &backoff.ExponentialBackOff{
		InitialInterval:     q.cfg.FirstRetry,
		RandomizationFactor: backoff.DefaultRandomizationFactor,
		Multiplier:          2,
		MaxInterval:         q.cfg.LastRetry,
	}
	delays.Reset()
	for try := 1; ; try++ {
		if !m.Expires.IsZero() && !q.cfg.Now().Before(m.Expires) {
			q.cfg.Report(m, Failed, try-1, ErrExpired)
			return
		}
		ctx, cancel := context.WithTimeout(stop, q.cfg.Timeout)
		err := q.sender.Send(ctx, *m)
		cancel()
		if err == nil {
			q.cfg.Report(m, Sent, try, nil)
			return
		}
		if IsPermanent(err) || try == q.cfg.Tries || stop.Err() != nil {
			q.cfg.Report(m, Failed, try, err)
			return
		}
		if werr := q.cfg.Wait(stop, delays.NextBackOff()); werr != nil {
			q.cfg.Report(m, Failed, try, err)
			return
		}
	}
}

package mail

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"
)

// recorder keeps what a queue reports, in order.
type recorder struct {
	mu  sync.Mutex
	got []report
	// changed is signalled on every report.
	changed chan struct{}
}

type report struct {
	id     string
	status Status
	try    int
	err    error
}

func newRecorder() *recorder { return &recorder{changed: make(chan struct{}, 1000)} }

func (r *recorder) report(m *Message, s Status, try int, err error) {
	r.mu.Lock()
	r.got = append(r.got, report{m.ID, s, try, err})
	r.mu.Unlock()
	r.changed <- struct{}{}
}

// final waits until message id has a final status (Sent or Failed), and
// returns that report.
func (r *recorder) final(t *testing.T, id string) report {
	t.Helper()
	for {
		r.mu.Lock()
		for _, g := range r.got {
			if g.id == id && g.status != Queued {
				r.mu.Unlock()
				return g
			}
		}
		r.mu.Unlock()
		select {
		case <-r.changed:
		case <-time.After(30 * time.Second):
			t.Fatalf("no final status for %s", id)
		}
	}
}

// senderFunc is a Sender of a function.
type senderFunc func(ctx context.Context, m Message) error

func (f senderFunc) Send(ctx context.Context, m Message) error { return f(ctx, m) }

// noWait records the waits asked of it and returns at once.
type noWait struct {
	mu    sync.Mutex
	waits []time.Duration
}

func (w *noWait) wait(ctx context.Context, d time.Duration) error {
	w.mu.Lock()
	w.waits = append(w.waits, d)
	w.mu.Unlock()
	return ctx.Err()
}

func TestQueue_EnqueueDoesNotWaitForTheMailServer(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	rec := newRecorder()
	q := NewQueue(senderFunc(func(context.Context, Message) error {
		<-release
		return nil
	}), QueueConfig{Workers: 1, Report: rec.report})
	defer q.Close(context.Background())
	// The server has not answered; every enqueue has already returned.
	for _, id := range []string{"a", "b", "c"} {
		if err := q.Enqueue(Message{ID: id}); err != nil {
			t.Fatal(err)
		}
	}
	close(release)
	for _, id := range []string{"a", "b", "c"} {
		if got := rec.final(t, id); got.status != Sent || got.try != 1 {
			t.Fatalf("%s: %+v", id, got)
		}
	}
}

func TestQueue_FullQueueRefusesAtOnceAndReportsIt(t *testing.T) {
	t.Parallel()
	started, release := make(chan struct{}), make(chan struct{})
	rec := newRecorder()
	q := NewQueue(senderFunc(func(context.Context, Message) error {
		started <- struct{}{}
		<-release
		return nil
	}), QueueConfig{Size: 1, Workers: 1, Report: rec.report})
	defer q.Close(context.Background())
	if err := q.Enqueue(Message{ID: "sending"}); err != nil {
		t.Fatal(err)
	}
	<-started
	if err := q.Enqueue(Message{ID: "waiting"}); err != nil {
		t.Fatal(err)
	}
	if err := q.Enqueue(Message{ID: "over"}); !errors.Is(err, ErrQueueFull) {
		t.Fatalf("a third message in a queue of one: %v", err)
	}
	if got := rec.final(t, "over"); got.status != Failed || !errors.Is(got.err, ErrQueueFull) {
		t.Fatalf("the refused message was reported %+v", got)
	}
	close(release)
	<-started
	if got := rec.final(t, "waiting"); got.status != Sent {
		t.Fatalf("the waiting message: %+v", got)
	}
}

func TestQueue_ServerDownIsRetriedWithGrowingWaitsThenGivenUp(t *testing.T) {
	t.Parallel()
	down := errors.New("connection refused")
	var tries int
	w := &noWait{}
	rec := newRecorder()
	q := NewQueue(senderFunc(func(context.Context, Message) error { tries++; return down }),
		QueueConfig{Workers: 1, Tries: 5, FirstRetry: time.Second, LastRetry: 4 * time.Second, Wait: w.wait, Report: rec.report})
	defer q.Close(context.Background())
	if err := q.Enqueue(Message{ID: "m"}); err != nil {
		t.Fatal(err)
	}
	got := rec.final(t, "m")
	if got.status != Failed || got.try != 5 || !errors.Is(got.err, down) || tries != 5 {
		t.Fatalf("after 5 failed tries: %+v (%d tries)", got, tries)
	}
	// Four waits, each about double the last up to the last retry's, with
	// jitter of ±50%.
	if len(w.waits) != 4 {
		t.Fatalf("waits %v", w.waits)
	}
	for i, d := range w.waits {
		base := min(time.Second<<i, 4*time.Second)
		if d < base/2 || d > base*3/2 {
			t.Fatalf("wait %d is %v, want about %v: %v", i+1, d, base, w.waits)
		}
	}
}

func TestQueue_PermanentRefusalIsNotRetried(t *testing.T) {
	t.Parallel()
	var tries int
	rec := newRecorder()
	q := NewQueue(senderFunc(func(context.Context, Message) error {
		tries++
		return Permanent(errors.New("550 no such user"))
	}), QueueConfig{Workers: 1, Wait: (&noWait{}).wait, Report: rec.report})
	defer q.Close(context.Background())
	_ = q.Enqueue(Message{ID: "m"})
	if got := rec.final(t, "m"); got.status != Failed || got.try != 1 || tries != 1 {
		t.Fatalf("%+v after %d tries", got, tries)
	}
}

func TestQueue_CloseSendsWhatWaitsAndFailsWhatItCannot(t *testing.T) {
	t.Parallel()
	rec := newRecorder()
	var mu sync.Mutex
	var sent []string
	q := NewQueue(senderFunc(func(ctx context.Context, m Message) error {
		if m.ID == "hangs" {
			<-ctx.Done()
			return ctx.Err()
		}
		mu.Lock()
		sent = append(sent, m.ID)
		mu.Unlock()
		return nil
	}), QueueConfig{Workers: 1, Report: rec.report})
	for _, id := range []string{"a", "b", "hangs", "after"} {
		if err := q.Enqueue(Message{ID: id}); err != nil {
			t.Fatal(err)
		}
	}
	// Close waits for what it can; the message that hangs holds it until
	// its context ends, and the one after it is failed, not lost silently.
	ctx, cancel := context.WithCancel(context.Background())
	go func() { rec.final(t, "b"); cancel() }()
	q.Close(ctx)
	if !slices.Equal(sent, []string{"a", "b"}) {
		t.Fatalf("sent %v", sent)
	}
	for _, id := range []string{"hangs", "after"} {
		if got := rec.final(t, id); got.status != Failed {
			t.Fatalf("%s after close: %+v", id, got)
		}
	}
	if err := q.Enqueue(Message{ID: "late"}); !errors.Is(err, ErrClosed) || rec.final(t, "late").status != Failed {
		t.Fatalf("enqueue after close: %v", err)
	}
}

func TestParseEmail_HeaderInjectionAndLookalikesAreRefused(t *testing.T) {
	t.Parallel()
	for _, ok := range []string{"ada@example.com", "  Ada.Lovelace+portal@Example.COM ", "a@localhost"} {
		if _, err := ParseEmail(ok); err != nil {
			t.Errorf("ParseEmail(%q): %v", ok, err)
		}
	}
	for _, bad := range []string{
		"", "ada", "@example.com", "ada@", "ada@example",
		"ada@example.com\r\nBcc: eve@example.com",
		"ada@example.com\nBcc: eve@example.com",
		"Ada <ada@example.com>",
		"ada@example.com, eve@example.com",
		"ada@example.com;eve@example.com",
		"\"ada\"@example.com",
		"ada(comment)@example.com",
		"ada@example.com\x00",
		"ada@[127.0.0.1]",
		"ada @example.com",
		string(make([]byte, 300)),
	} {
		if got, err := ParseEmail(bad); err == nil {
			t.Errorf("ParseEmail(%q) = %q, want an error", bad, got)
		}
	}
}

func TestQueue_MessageWhoseLinkExpiredIsNotDeliveredLate(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	var tries int
	rec := newRecorder()
	w := &noWait{}
	q := NewQueue(senderFunc(func(context.Context, Message) error {
		tries++
		now = now.Add(10 * time.Minute) // each try takes the server ten minutes
		return errors.New("421 try again later")
	}), QueueConfig{Workers: 1, Wait: w.wait, Report: rec.report, Now: func() time.Time { return now }})
	defer q.Close(context.Background())
	_ = q.Enqueue(Message{ID: "signin", Expires: now.Add(15 * time.Minute)})
	got := rec.final(t, "signin")
	if got.status != Failed || !errors.Is(got.err, ErrExpired) || tries != 2 {
		t.Fatalf("a sign-in e-mail past its link's end: %+v after %d tries", got, tries)
	}
}

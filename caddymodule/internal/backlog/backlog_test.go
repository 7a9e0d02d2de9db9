package backlog

import (
	"context"
	"errors"
	"testing"
)

func TestBacklog_FullAndClosedAreRefusedAtOnce(t *testing.T) {
	t.Parallel()
	started, release := make(chan int), make(chan struct{})
	b := New(1, 1, func(_ context.Context, job int) {
		started <- job
		<-release
	})
	if err := b.Add(1, nil); err != nil {
		t.Fatal(err)
	}
	<-started // the worker holds 1
	if err := b.Add(2, nil); err != nil {
		t.Fatal(err)
	}
	if b.Idle() {
		t.Fatal("idle with a job in hand and one waiting")
	}
	if err := b.Add(3, nil); !errors.Is(err, ErrFull) {
		t.Fatalf("a third job in a backlog of one: %v", err)
	}
	close(release)
	<-started
	b.Close(context.Background())
	if err := b.Add(4, nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("after Close: %v", err)
	}
	if !b.Idle() {
		t.Fatal("not idle after Close")
	}
}

func TestBacklog_AcceptedRunsBeforeAWorkerSeesTheJob(t *testing.T) {
	t.Parallel()
	var order []string
	done := make(chan struct{})
	b := New(1, 1, func(_ context.Context, job string) {
		order = append(order, "worked "+job)
		close(done)
	})
	defer b.Close(context.Background())
	if err := b.Add("a", func() { order = append(order, "accepted a") }); err != nil {
		t.Fatal(err)
	}
	<-done
	if len(order) != 2 || order[0] != "accepted a" {
		t.Fatalf("order %v", order)
	}
}

func TestBacklog_CloseEndsTheWorkInHandWhenItsContextEnds(t *testing.T) {
	t.Parallel()
	var ended []bool
	started := make(chan struct{})
	b := New(2, 1, func(ctx context.Context, job int) {
		if job == 1 {
			close(started)
			<-ctx.Done() // hangs until Close gives up on it
		}
		ended = append(ended, ctx.Err() != nil)
	})
	_ = b.Add(1, nil)
	<-started
	_ = b.Add(2, nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	b.Close(ctx)
	if len(ended) != 2 || !ended[0] || !ended[1] {
		t.Fatalf("jobs ran with their context ended: %v", ended)
	}
}

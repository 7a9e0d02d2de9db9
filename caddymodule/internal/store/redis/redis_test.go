package redis_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/portalgate/portalgate/caddymodule/internal/store"
	"github.com/portalgate/portalgate/caddymodule/internal/store/redis"
	"github.com/portalgate/portalgate/caddymodule/internal/store/storetest"
	"github.com/portalgate/portalgate/caddymodule/internal/testkit/redistest"
)

func TestConformance(t *testing.T) {
	srv := redistest.Start(t)
	var n atomic.Int32
	storetest.Run(t, func(_ *testing.T, now func() time.Time) store.Store {
		rdb := goredis.NewClient(&goredis.Options{Addr: srv.Addr})
		// A prefix per test keeps the tests apart in one server.
		return redis.New(rdb, fmt.Sprintf("t%d:", n.Add(1)), time.Second, now)
	})
}

// TestConformance_ClusterPath runs the suite on the two-round-trip
// redemption that Redis Cluster uses.
func TestConformance_ClusterPath(t *testing.T) {
	srv := redistest.Start(t)
	var n atomic.Int32
	storetest.Run(t, func(_ *testing.T, now func() time.Time) store.Store {
		rdb := goredis.NewClient(&goredis.Options{Addr: srv.Addr})
		return redis.TwoStep(redis.New(rdb, fmt.Sprintf("c%d:", n.Add(1)), time.Second, now))
	})
}

func TestWatch_SessionsEndedElsewhereAreReported(t *testing.T) {
	srv := redistest.Start(t)
	a := redis.New(goredis.NewClient(&goredis.Options{Addr: srv.Addr}), "w:", 200*time.Millisecond, time.Now)
	b := redis.New(goredis.NewClient(&goredis.Options{Addr: srv.Addr}), "w:", 200*time.Millisecond, time.Now)
	defer a.Close()
	defer b.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	forgotten := make(chan []string, 10)
	synced := make(chan bool, 10)
	go b.Watch(ctx, func(ids ...string) { forgotten <- ids }, func(ok bool) { synced <- ok })
	if ok := <-synced; !ok {
		t.Fatal("watch did not sync")
	}
	// Ending a session is announced even when this store no longer had it
	// (another instance may have it cached).
	if err := a.DeleteSession(ctx, "gone"); err != nil {
		t.Fatal(err)
	}
	sess := &store.Session{ID: "s1", App: "courses", ExpiresAt: time.Now().Add(time.Hour), IdleAt: time.Now().Add(time.Hour)}
	sess.User.ID = "u1"
	if err := a.CreateSession(ctx, sess); err != nil {
		t.Fatal(err)
	}
	if err := a.DeleteSession(ctx, "s1"); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"gone", "s1"} {
		select {
		case ids := <-forgotten:
			if len(ids) != 1 || ids[0] != want {
				t.Fatalf("forgot %v, want [%s]", ids, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("no report of ended session %s", want)
		}
	}

	// Redis goes away: the watcher says so; it comes back: synced again.
	srv.Stop()
	select {
	case ok := <-synced:
		if ok {
			t.Fatal("synced while Redis is down")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a dead subscription went unnoticed")
	}
	srv.Start()
	select {
	case ok := <-synced:
		if !ok {
			t.Fatal("not synced after Redis came back")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the watcher did not recover")
	}
}

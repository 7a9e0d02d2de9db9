package redis_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/portalgate/portalgate/caddymodule/internal/identity"
	"github.com/portalgate/portalgate/caddymodule/internal/session"
	"github.com/portalgate/portalgate/caddymodule/internal/store/redis"
	"github.com/portalgate/portalgate/caddymodule/internal/testkit"
	"github.com/portalgate/portalgate/caddymodule/internal/testkit/redistest"
)

func TestWatch_LogoutHoldsWhileTheSubscriptionIsSilent(t *testing.T) {
	srv := redistest.Start(t)
	f := newFreezer(t, srv.Addr)
	check := 200 * time.Millisecond
	cfg := session.Config{TTL: time.Hour, Idle: time.Hour, CacheMaxBytes: 1 << 20, Now: time.Now}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sa := redis.New(goredis.NewClient(&goredis.Options{Addr: srv.Addr}), "m:", check, time.Now)
	sb := redis.New(goredis.NewClient(&goredis.Options{Addr: f.ln.Addr().String()}), "m:", check, time.Now)
	a, _ := session.NewManager(sa, cfg)
	b, _ := session.NewManager(sb, cfg)
	a.Watch(ctx)
	b.Watch(ctx)
	s, err := a.Create(ctx, identity.User{ID: "u"}, "", "courses", nil, "l")
	if err != nil {
		t.Fatal(err)
	}
	// B trusts its L1 only once its subscription is live; until then every
	// lookup reads Redis. Wait until B serves the session from L1, so that
	// what follows tests the cache, not the store.
	testkit.Eventually(t, 10*time.Second, "instance B to serve the session from its L1", func() bool {
		if _, err := b.Lookup(ctx, s.ID, "", "courses"); err != nil {
			t.Fatal(err)
		}
		b.Wait()
		hits, _ := b.Stats()
		return hits > 0
	})
	f.set(true) // B's path to Redis goes silent (NAT/LB drop, no RST)
	if err := a.End(ctx, s.ID); err != nil {
		t.Fatal(err)
	}
	// No invalidation reaches B; its unanswered pings must make it drop L1
	// within a few pubsub_check intervals. The deadline is far beyond that.
	// B's next lookup then reads Redis over the dark link, and fails only
	// when the client gives up on it (read timeout and retries: seconds).
	testkit.Eventually(t, 50*check, fmt.Sprintf("instance B to stop serving the logged-out session (pubsub_check %v)", check), func() bool {
		_, err := b.Lookup(ctx, s.ID, "", "courses")
		return err != nil
	})
}

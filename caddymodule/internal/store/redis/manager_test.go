package redis_test

import (
	"context"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/portalgate/portalgate/caddymodule/internal/identity"
	"github.com/portalgate/portalgate/caddymodule/internal/session"
	"github.com/portalgate/portalgate/caddymodule/internal/store/redis"
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
	time.Sleep(300 * time.Millisecond)
	s, err := a.Create(ctx, identity.User{ID: "u"}, "courses", nil, "l")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Lookup(ctx, s.ID, "courses"); err != nil {
		t.Fatal(err)
	}
	b.Wait()
	f.set(true) // B's path to Redis goes silent (NAT/LB drop, no RST)
	if err := a.End(ctx, s.ID); err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * check)
	if _, err := b.Lookup(ctx, s.ID, "courses"); err == nil {
		t.Fatalf("instance B still serves a logged-out session %v after logout (pubsub_check %v)", 20*check, check)
	}
}

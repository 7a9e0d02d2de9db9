package redis_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/portalgate/portalgate/caddymodule/internal/identity"
	"github.com/portalgate/portalgate/caddymodule/internal/store"
	"github.com/portalgate/portalgate/caddymodule/internal/store/redis"
	"github.com/portalgate/portalgate/caddymodule/internal/testkit/redistest"
)

// A Sentinel failover promotes the replica while clients still write to the
// old master for a moment; the old master's writes are dropped when it
// follows the new one. A redemption answered with a session must survive,
// and a link spent before the failover must never redeem after it.
func TestFailover_NoAnsweredRedemptionIsLostAndNoSpentLinkRedeemsAgain(t *testing.T) {
	master := redistest.Start(t)
	redistest.StartReplica(t, master)
	sentinels := redistest.StartSentinels(t, master, 3)
	sentinels.Ready(1)
	rdb := goredis.NewFailoverClient(&goredis.FailoverOptions{
		MasterName: redistest.MasterName, SentinelAddrs: sentinels.Addrs,
		DialTimeout: time.Second, ReadTimeout: time.Second, WriteTimeout: time.Second, MaxRetries: -1,
	})
	s := redis.New(rdb, "failover:", time.Second, time.Now).Replicated(1, 500*time.Millisecond)
	t.Cleanup(func() { _ = s.Close() })
	ctx := context.Background()

	type redeemed struct {
		link    store.Spend
		session string
	}
	var (
		mu       sync.Mutex
		answered []redeemed
		refused  atomic.Int64
		seq      atomic.Int64
		stop     atomic.Bool
		wg       sync.WaitGroup
	)
	redeemOne := func() {
		n := seq.Add(1)
		now := time.Now()
		g := store.Grant{ID: fmt.Sprintf("l%d", n), App: "courses", User: identity.User{ID: "u1"}, Path: "/", Uses: 1,
			IssuedAt: now, Expires: now.Add(time.Hour)}
		if err := s.PutLink(ctx, g); err != nil {
			refused.Add(1)
			return
		}
		l := store.Spend{ID: g.ID, UserID: "u1", Expires: g.Expires}
		sess := &store.Session{ID: fmt.Sprintf("s%d", n), User: identity.User{ID: "u1"}, App: "courses",
			CreatedAt: now, ExpiresAt: now.Add(time.Hour), IdleAt: now.Add(time.Hour)}
		if _, err := s.Redeem(ctx, l, sess); err != nil {
			refused.Add(1)
			return
		}
		mu.Lock()
		answered = append(answered, redeemed{l, sess.ID})
		mu.Unlock()
	}
	for range 8 {
		wg.Go(func() {
			for !stop.Load() {
				redeemOne()
			}
		})
	}
	for seq.Load() < 200 {
		redeemOne()
	}
	from, to := sentinels.Failover()
	// Keep redeeming until the client has followed the new master.
	_, toPort, _ := net.SplitHostPort(to)
	for deadline := time.Now().Add(30 * time.Second); ; {
		if port, err := rdb.ConfigGet(ctx, "port").Result(); err == nil && port["port"] == toPort {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the client did not follow the failover from %s to %s", from, to)
		}
		redeemOne()
	}
	stop.Store(true)
	wg.Wait()

	t.Logf("%d redemptions answered, %d refused, failover %s -> %s", len(answered), refused.Load(), from, to)
	// Read back through a store that does not wait for replicas: the new
	// master has none until the old one follows it.
	check := redis.New(rdb, "failover:", time.Second, time.Now)
	lost, replayed := 0, 0
	for _, r := range answered {
		if _, err := check.GetSession(ctx, r.session); errors.Is(err, store.ErrNotFound) {
			lost++
		} else if err != nil {
			t.Fatalf("reading session %s: %v", r.session, err)
		}
		now := time.Now()
		again := &store.Session{ID: r.session + "-again", User: identity.User{ID: "u1"}, App: "courses",
			CreatedAt: now, ExpiresAt: now.Add(time.Hour), IdleAt: now.Add(time.Hour)}
		switch _, err := check.Redeem(ctx, r.link, again); {
		case err == nil:
			replayed++
		case !errors.Is(err, store.ErrLinkUsed):
			t.Fatalf("redeeming link %s again: %v, want ErrLinkUsed", r.link.ID, err)
		}
	}
	if lost > 0 || replayed > 0 {
		t.Fatalf("after the failover, of %d answered redemptions %d sessions were lost and %d links redeemed again", len(answered), lost, replayed)
	}
}

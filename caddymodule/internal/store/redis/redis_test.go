package redis_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/portalgate/portalgate/caddymodule/internal/identity"
	"github.com/portalgate/portalgate/caddymodule/internal/store"
	"github.com/portalgate/portalgate/caddymodule/internal/store/redis"
	"github.com/portalgate/portalgate/caddymodule/internal/store/storetest"
	"github.com/portalgate/portalgate/caddymodule/internal/testkit"
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

// A spend is judged by the instance's clock reading, taken before the script
// is sent, and Redis forgets a used link's record by its own clock. A script
// that runs long after the reading (a stalled request, or an instance whose
// clock is behind Redis's) could find the record already forgotten and spend
// the link again: it is refused instead, spending nothing, for the caller to
// try again.
func TestRedeem_StaleClockReadingCannotReplayAForgottenLink(t *testing.T) {
	srv := redistest.Start(t)
	for name, path := range map[string]func(*redis.Store) *redis.Store{
		"one script": func(s *redis.Store) *redis.Store { return s },
		"two steps":  redis.TwoStep,
	} {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			behind := func() time.Time { return time.Now().Add(-time.Minute) }
			open := func(now func() time.Time) *redis.Store {
				return path(redis.New(goredis.NewClient(&goredis.Options{Addr: srv.Addr}), "stale-"+name+":", time.Second, now))
			}
			stale, good := open(behind), open(time.Now)
			l := storetest.PutLink(t, good, "l1", identity.User{ID: "u1"}, 1, behind(), time.Now().Add(time.Hour))
			sess := func(id string) *store.Session {
				now := time.Now()
				return &store.Session{ID: id, App: "courses", CreatedAt: now, ExpiresAt: now.Add(time.Hour), IdleAt: now.Add(time.Hour)}
			}
			_, err := stale.Redeem(ctx, l, sess("s-stale"))
			if err == nil || errors.Is(err, store.ErrLinkUsed) || !strings.Contains(err.Error(), "try again") {
				t.Fatalf("a spend a minute behind Redis's clock = %v, want a refusal to try again", err)
			}
			if _, err := good.GetSession(ctx, "s-stale"); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("the refused spend stored its session: %v", err)
			}
			if _, err := good.Redeem(ctx, l, sess("s-good")); err != nil {
				t.Fatalf("the link after the refusal: %v (the refusal spent it)", err)
			}
		})
	}
}

// A Redis restarted without persistence has forgotten every link it
// granted: it must refuse the links minted before it came back, not spend
// them again.
func TestRedeem_RedisRestartedEmptyDoesNotReviveSpentLinks(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	s := redis.New(goredis.NewClient(&goredis.Options{Addr: srv.Addr}), "empty:", time.Second, time.Now)
	t.Cleanup(func() { _ = s.Close() })
	sess := func(id string) *store.Session {
		now := time.Now()
		return &store.Session{ID: id, User: identity.User{ID: "u1"}, App: "courses", CreatedAt: now, ExpiresAt: now.Add(time.Hour), IdleAt: now.Add(time.Hour)}
	}
	l := storetest.PutLink(t, s, "l1", identity.User{ID: "u1"}, 1, time.Now(), time.Now().Add(time.Hour))
	if _, err := s.Redeem(ctx, l, sess("s1")); err != nil {
		t.Fatal(err)
	}
	srv.RestartEmpty()
	var err error
	testkit.Eventually(t, 10*time.Second, "Redis to answer after its restart", func() bool {
		_, err = s.Redeem(ctx, l, sess("s2"))
		return err == nil || errors.Is(err, store.ErrLinkBeforeStore) || errors.Is(err, store.ErrLinkUsed)
	})
	if !errors.Is(err, store.ErrLinkBeforeStore) {
		t.Fatalf("the spent link after Redis came back empty = %v, want ErrLinkBeforeStore", err)
	}
	fresh := storetest.PutLink(t, s, "l2", identity.User{ID: "u1"}, 1, time.Now(), time.Now().Add(time.Hour))
	if _, err := s.Redeem(ctx, fresh, sess("s3")); err != nil {
		t.Fatalf("a link minted after the restart: %v", err)
	}
}

// A Redis that answers but takes no writes (here a replica, as a client
// misled during a failover reaches) signs no one in: health must say so.
func TestPing_RedisThatTakesNoWritesIsUnhealthy(t *testing.T) {
	master := redistest.Start(t)
	replica := redistest.StartReplica(t, master)
	s := redis.New(goredis.NewClient(&goredis.Options{Addr: replica.Addr}), "ro:", time.Second, time.Now)
	t.Cleanup(func() { _ = s.Close() })
	if err := s.Ping(context.Background()); err == nil || !strings.Contains(err.Error(), "READONLY") {
		t.Fatalf("Ping of a read-only replica = %v, want its READONLY refusal", err)
	}
	if err := redis.New(goredis.NewClient(&goredis.Options{Addr: master.Addr}), "ro:", time.Second, time.Now).Ping(context.Background()); err != nil {
		t.Fatalf("Ping of the master: %v", err)
	}
}

func TestContactsByEmail_ContactsFromBeforeTheIndexAreFound(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	rdb := goredis.NewClient(&goredis.Options{Addr: srv.Addr})
	// A contact as a version before the index stored it.
	if err := rdb.HSet(ctx, "ix:dc:{dir}", "c_ada", `{"id":"c_ada","email":"Ada@example.com"}`).Err(); err != nil {
		t.Fatal(err)
	}
	s := redis.New(rdb, "ix:", time.Second, time.Now)
	t.Cleanup(func() { _ = s.Close() })
	got, err := s.ContactsByEmail(ctx, "ada@example.com")
	if err != nil || len(got) != 1 || got[0].ID != "c_ada" {
		t.Fatalf("a contact of before the index: %v %v", got, err)
	}
	// Later puts keep the index whole.
	if err := s.PutContacts(ctx, []store.Contact{{ID: "c_ada", Email: "ada@new.example"}}); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.ContactsByEmail(ctx, "ada@example.com"); len(got) != 0 {
		t.Fatalf("the old address still finds %v", got)
	}
}

// TestPutSignIn_AddressWithBracesStaysInTheDirectorysSlot: an address may
// hold a hash tag of its own ({b}); on Cluster a key that took its slot
// from it would fail the script that touches the directory's keys too.
func TestPutSignIn_AddressWithBracesStaysInTheDirectorysSlot(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	rdb := goredis.NewClient(&goredis.Options{Addr: srv.Addr})
	s := redis.New(rdb, "br:", time.Second, time.Now)
	t.Cleanup(func() { _ = s.Close() })
	now := time.Now()
	si := store.SignIn{Browser: "b1", Address: "a{b}@example.com", Link: store.Grant{ID: "l1", Expires: now.Add(time.Minute)}}
	if _, err := s.PutSignIn(ctx, si); err != nil {
		t.Fatal(err)
	}
	keys, err := rdb.Keys(ctx, "br:signin*").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		open, closeAt := strings.IndexByte(k, '{'), strings.IndexByte(k, '}')
		if open < 0 || k[open+1:closeAt] != "dir" {
			t.Errorf("key %q takes its slot from %q, not the directory's", k, k[open+1:closeAt])
		}
	}
	if len(keys) != 2 {
		t.Fatalf("keys %v", keys)
	}
}

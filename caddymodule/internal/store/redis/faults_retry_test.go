package redis_test

import (
	"bytes"
	"context"
	"errors"
	"net"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/portalgate/portalgate/caddymodule/internal/identity"
	"github.com/portalgate/portalgate/caddymodule/internal/store"
	"github.com/portalgate/portalgate/caddymodule/internal/store/redis"
	"github.com/portalgate/portalgate/caddymodule/internal/store/storetest"
	"github.com/portalgate/portalgate/caddymodule/internal/testkit/redistest"
)

// slowOnce is a proxy that delays, once, the first reply chunk matching
// match: Redis ran the command, its answer comes after the client's
// read_timeout, and go-redis retries the command.
type slowOnce struct {
	ln    net.Listener
	match func([]byte) bool
	armed atomic.Bool
	delay time.Duration
}

func newSlowOnce(t *testing.T, target string, delay time.Duration, match func([]byte) bool) *slowOnce {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &slowOnce{ln: ln, match: match, delay: delay}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			u, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			go func() {
				buf := make([]byte, 1<<16)
				for {
					n, err := c.Read(buf)
					if n > 0 {
						_, _ = u.Write(buf[:n])
					}
					if err != nil {
						u.Close()
						return
					}
				}
			}()
			go func() {
				buf := make([]byte, 1<<16)
				for {
					n, err := u.Read(buf)
					if n > 0 {
						if p.match(buf[:n]) && p.armed.CompareAndSwap(true, false) {
							time.Sleep(p.delay)
						}
						_, _ = c.Write(buf[:n])
					}
					if err != nil {
						c.Close()
						return
					}
				}
			}()
		}
	}()
	t.Cleanup(func() { ln.Close() })
	return p
}

// slowClient is configured as the Caddy module configures its clients: no
// retries, since a retried command may already have run.
func slowClient(addr string) *goredis.Client {
	return goredis.NewClient(&goredis.Options{Addr: addr, ReadTimeout: 150 * time.Millisecond, MaxRetries: -1})
}

func mkSession(id, user string) *store.Session {
	s := &store.Session{ID: id, App: "courses", CreatedAt: time.Now(), ExpiresAt: time.Now().Add(time.Hour), IdleAt: time.Now().Add(time.Hour)}
	s.User.ID = user
	return s
}

// A revocation whose reply comes late fails, and repeating it finishes the
// job: the user's set is emptied only after their sessions are deleted.
func TestFaults_RevokeUserSurvivesASlowReply(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	direct := redis.New(goredis.NewClient(&goredis.Options{Addr: srv.Addr}), "r1:", time.Second, time.Now)
	id := "SESSIONrevokeAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
	if err := direct.CreateSession(ctx, mkSession(id, "victim")); err != nil {
		t.Fatal(err)
	}
	p := newSlowOnce(t, srv.Addr, 400*time.Millisecond, func(b []byte) bool { return bytes.Contains(b, []byte(id)) })
	proxied := redis.New(slowClient(p.ln.Addr().String()), "r1:", time.Second, time.Now)
	p.armed.Store(true)
	ended, err := proxied.RevokeUser(ctx, "victim", time.Now(), time.Now().Add(time.Hour))
	if err != nil {
		// The caller saw an error and repeats the revocation.
		if ended, err = direct.RevokeUser(ctx, "victim", time.Now(), time.Now().Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := direct.GetSession(ctx, id); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("the revoked user's session is still live in Redis (RevokeUser returned %v, %v)", ended, err)
	}
}

// A one-time link whose redemption's answer comes late (Redis ran it; the
// client gave up waiting) is never reported used on its first redemption:
// the client does not retry a command that may have run. The redemption did
// run, so the user is signed in, and the link is spent: a second redemption
// of it is refused.
func TestFaults_FirstRedemptionAfterASlowReplyIsNotReportedUsed(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	// The redemption's answer: the new count, 1, and the grant.
	p := newSlowOnce(t, srv.Addr, 400*time.Millisecond, func(b []byte) bool { return bytes.HasPrefix(b, []byte("*2\r\n:1\r\n")) })
	st := redis.New(slowClient(p.ln.Addr().String()), "r2:", time.Second, time.Now)
	if err := st.Ping(ctx); err != nil { // the proxy is up; its Ping reply is not the one delayed
		t.Fatal(err)
	}
	l := storetest.PutLink(t, st, "link1", identity.User{ID: "u"}, 1, time.Now(), time.Now().Add(time.Hour))
	p.armed.Store(true)
	id := "SESSIONredeemAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
	if _, err := st.Redeem(ctx, l, mkSession(id, "u")); err != nil {
		t.Fatalf("first redemption of a fresh link, its answer late: %v", err)
	}
	if p.armed.Load() {
		t.Fatal("the proxy never delayed the redemption's answer")
	}
	if _, err := st.GetSession(ctx, id); err != nil {
		t.Fatalf("the session of the redemption: %v", err)
	}
	if _, err := st.Redeem(ctx, l, mkSession("SESSIONagainAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "u")); !errors.Is(err, store.ErrLinkUsed) {
		t.Fatalf("second redemption of a one-time link: %v, want ErrLinkUsed", err)
	}
}

// A redemption that never reached Redis (it is down) is a store error (503),
// however the check for a lost answer goes: nothing ran.
func TestFaults_RedemptionWithRedisDownIsAStoreError(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	st := redis.New(slowClient(srv.Addr), "r4:", time.Second, time.Now)
	if err := st.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	srv.Stop()
	l := store.Spend{ID: "link1", UserID: "u", Expires: time.Now().Add(time.Hour)}
	_, err := st.Redeem(ctx, l, mkSession("SESSIONdownAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "u"))
	if err == nil || errors.Is(err, store.ErrLinkUsed) || errors.Is(err, store.ErrLinkRevoked) {
		t.Fatalf("redemption with Redis down: %v, want a store error", err)
	}
}

// A logout whose GETDEL reply comes late is still announced to the other
// instances.
func TestFaults_LogoutAfterASlowReplyIsAnnounced(t *testing.T) {
	srv := redistest.Start(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	direct := redis.New(goredis.NewClient(&goredis.Options{Addr: srv.Addr}), "r3:", time.Second, time.Now)
	id := "SESSIONlogoutAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
	if err := direct.CreateSession(ctx, mkSession(id, "u")); err != nil {
		t.Fatal(err)
	}
	forgot := make(chan []string, 4)
	synced := make(chan bool, 4)
	go direct.Watch(ctx, func(ids ...string) { forgot <- ids }, func(ok bool) { synced <- ok })
	<-synced
	p := newSlowOnce(t, srv.Addr, 400*time.Millisecond, func(b []byte) bool { return bytes.Contains(b, []byte(id)) })
	proxied := redis.New(slowClient(p.ln.Addr().String()), "r3:", time.Second, time.Now)
	p.armed.Store(true)
	err := proxied.DeleteSession(ctx, id)
	select {
	case <-forgot:
	case <-time.After(2 * time.Second):
		t.Fatalf("logout (DeleteSession returned %v) was never announced to other instances", err)
	}
}

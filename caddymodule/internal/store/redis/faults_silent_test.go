package redis_test

import (
	"context"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/portalgate/portalgate/caddymodule/internal/store/redis"
	"github.com/portalgate/portalgate/caddymodule/internal/testkit/redistest"
)

// freezer is a TCP proxy that can stop forwarding (a black-holed link:
// no RST, no FIN, writes still succeed into kernel buffers).
type freezer struct {
	ln     net.Listener
	mu     sync.Mutex
	frozen bool
	cond   *sync.Cond
}

func newFreezer(t *testing.T, target string) *freezer {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &freezer{ln: ln}
	f.cond = sync.NewCond(&f.mu)
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
			go f.pipe(c, u)
			go f.pipe(u, c)
		}
	}()
	t.Cleanup(func() { ln.Close(); f.set(false) })
	return f
}

func (f *freezer) set(v bool) { f.mu.Lock(); f.frozen = v; f.cond.Broadcast(); f.mu.Unlock() }

func (f *freezer) pipe(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		f.mu.Lock()
		for f.frozen {
			f.cond.Wait()
		}
		f.mu.Unlock()
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			if err != io.EOF {
				return
			}
			return
		}
	}
}

// A subscription whose link goes silent (no RST) must be reported broken
// within a few pubsub_check intervals: pings go unanswered.
func TestWatch_SilentSubscriptionIsNoticed(t *testing.T) {
	srv := redistest.Start(t)
	f := newFreezer(t, srv.Addr)
	check := 200 * time.Millisecond
	b := redis.New(goredis.NewClient(&goredis.Options{Addr: f.ln.Addr().String()}), "h:", check, time.Now)
	defer b.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	synced := make(chan bool, 10)
	go b.Watch(ctx, func(...string) {}, func(ok bool) { synced <- ok })
	if !<-synced {
		t.Fatal("not synced")
	}
	f.set(true) // the network path goes dark
	select {
	case ok := <-synced:
		if ok {
			t.Fatal("synced(true) while dark")
		}
	case <-time.After(25 * check):
		t.Fatalf("subscription silent for %v (pubsub_check %v) and still trusted", 25*check, check)
	}
}

package gateway

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/portalgate/portalgate/caddymodule/internal/store"
	"github.com/portalgate/portalgate/caddymodule/internal/store/redis"
	"github.com/portalgate/portalgate/caddymodule/internal/testkit/redistest"
)

// BenchmarkTenants_AddedOnOneInstanceServedOnAnother is how long a tenant
// added through one instance takes to be served by a second sharing its
// Redis, polling the store every 250 ms as Caddy's do: ns/op is the time
// from the add's answer to the second instance serving the tenant, each
// add at a random moment of the poll's period; worst-ms the longest.
func BenchmarkTenants_AddedOnOneInstanceServedOnAnother(b *testing.B) {
	srv := redistest.Start(b)
	open := func(now func() time.Time) store.Store {
		rdb := goredis.NewClient(&goredis.Options{Addr: srv.Addr})
		b.Cleanup(func() { _ = rdb.Close() })
		return redis.New(rdb, "bench:", time.Second, now)
	}
	poll := func(s *setup) { s.cfg.TenantPoll = 250 * time.Millisecond }
	// Each with its catch-all site: an instance polls once it has one.
	one := newTestGateway(b, withStore(open), withTenants(), poll)
	two := newTestGateway(b, withStore(open), withTenants(), poll)
	var worst time.Duration
	b.ResetTimer()
	for i := range b.N {
		// At a moment unrelated to the second instance's polls.
		b.StopTimer()
		time.Sleep(time.Duration(rand.Int64N(int64(250 * time.Millisecond))))
		b.StartTimer()
		id := fmt.Sprintf("t%d", i)
		t := store.Tenant{ID: id, Portal: fmt.Sprintf("https://portal.%s.example", id)}
		if _, err := one.gw.PutTenant(context.Background(), t, false, "bench"); err != nil {
			b.Fatal(err)
		}
		added := time.Now()
		for deadline := added.Add(10 * time.Second); ; {
			if _, ok := two.gw.viewOf(id); ok {
				break
			}
			if time.Now().After(deadline) {
				b.Fatalf("the second instance did not serve %s within 10 s", id)
			}
			time.Sleep(time.Millisecond)
		}
		worst = max(worst, time.Since(added))
	}
	b.ReportMetric(float64(worst.Milliseconds()), "worst-ms")
}

// BenchmarkRouter_Resolve is what the catch-all adds to a gated request:
// the host's tenant and app, and that tenant's site, among one tenant and
// among 10,000 of 4 hosts each. It must not allocate.
func BenchmarkRouter_Resolve(b *testing.B) {
	for _, n := range []int{1, 10_000} {
		b.Run(fmt.Sprintf("tenants=%d", n), func(b *testing.B) {
			g := newTestGateway(b)
			sts := make([]store.Tenant, n)
			for i := range sts {
				sts[i] = store.Tenant{ID: fmt.Sprintf("t%d", i), Portal: fmt.Sprintf("https://portal.client%d.example", i), Apps: map[string]string{}}
				for _, app := range []string{"courses", "communities", "affiliates"} {
					sts[i].Apps[app] = fmt.Sprintf("https://%s.client%d.example", app, i)
				}
			}
			if failed := g.gw.serveStoredAll(sts); len(failed) > 0 {
				b.Fatal(failed)
			}
			rt, err := g.gw.Router(SiteConfig{}, nil)
			if err != nil {
				b.Fatal(err)
			}
			r := httptest.NewRequest(http.MethodGet, fmt.Sprintf("https://courses.client%d.example/lesson", n-1), nil)
			if site, _, _, status := rt.resolve(r); site == nil || status != 0 {
				b.Fatalf("not resolved: %d", status)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if site, _, _, _ := rt.resolve(r); site == nil {
					b.Fatal("not resolved")
				}
			}
		})
	}
}

package bench

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"runtime"
	"time"

	"github.com/portalgate/portalgate/caddymodule/internal/identity"
	"github.com/portalgate/portalgate/caddymodule/internal/store"
	"github.com/portalgate/portalgate/caddymodule/internal/store/bolt"
)

// manyTenants is how many tenants scenario 14 compares one with.
const manyTenants = 10_000

// tenantScale is scenario 14: the gate through the catch-all site of the
// tenants (host → tenant and app, then the tenant's site), among one
// tenant and among 10,000 of 4 hosts each (portal, courses, communities,
// affiliates), on bolt with a warm L1. Each round loads the two stores in
// turn, in alternating order, and the ratio is taken within the round. It reports what the
// tenants take on the heap, per tenant.
func (e *env) tenantScale(ctx context.Context) error {
	one, err := e.seedTenants("tenants-1", 1)
	if err != nil {
		return err
	}
	many, err := e.seedTenants(fmt.Sprintf("tenants-%d", manyTenants), manyTenants)
	if err != nil {
		return err
	}
	var heap [2]uint64
	url := "http://" + e.tenantsSite + identityPath
	names := []string{"catch-all, 1 tenant", fmt.Sprintf("catch-all, %d tenants", manyTenants)}
	rounds, err := e.alternating(14, names, func(i int) (result, error) {
		s := []seeded{one, many}[i]
		if err := e.loadTenants(s.path); err != nil {
			return result{}, err
		}
		// The heap with this config alone: the one before is stopped.
		var after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&after)
		heap[i] = after.HeapAlloc
		// Warm: every session into L1, the tenant's site built.
		_ = load(ctx, e.o.Connections, time.Second, http.StatusOK, tenantGet(url, s.host, s.ids))
		return e.driveWith(ctx, url, "portalgate-courses="+s.ids[0], s.host, tenantGet(url, s.host, s.ids)), nil
	})
	if err != nil {
		return err
	}
	ratios, _ := sideRatios(rounds, 1, 0)
	fmt.Fprintf(e.o.Out, "scenario 14: %d tenants / 1 tenant, median of the rounds' ratios (target >= 0.98): %.3f (rounds: %v)\n",
		manyTenants, median(ratios), ratios)
	fmt.Fprintf(e.o.Out, "scenario 14: the heap with %d tenants %d MiB, with 1 %d MiB: %.0f bytes a tenant\n",
		manyTenants, heap[1]>>20, heap[0]>>20, (float64(heap[1])-float64(heap[0]))/float64(manyTenants-1))
	return nil
}

// seeded is a bolt file of tenants and sessions of the last tenant's
// courses, and that app's host.
type seeded struct {
	path, host string
	ids        []string
}

// seedTenants writes n tenants into a fresh bolt file, and 1,000 sessions
// of the last tenant's courses.
func (e *env) seedTenants(name string, n int) (seeded, error) {
	path := filepath.Join(e.dir, name+".db")
	st, err := bolt.Open(path, time.Now)
	if err != nil {
		return seeded{}, err
	}
	defer st.Close()
	ctx := context.Background()
	for i := range n {
		t := store.Tenant{ID: fmt.Sprintf("t%d", i), Portal: fmt.Sprintf("http://portal.client%d.example", i), Apps: map[string]string{}}
		for _, app := range []string{"courses", "communities", "affiliates"} {
			t.Apps[app] = fmt.Sprintf("http://%s.client%d.example", app, i)
		}
		if err := st.AddTenant(ctx, t); err != nil {
			return seeded{}, err
		}
	}
	last := fmt.Sprintf("t%d", n-1)
	sessions, ids := makeSessions(1000, 0)
	for _, s := range sessions {
		s.Tenant = last
		s.User.Location = last
		s.User.Type = identity.Contact
	}
	if err := st.CreateSessions(ctx, sessions); err != nil {
		return seeded{}, err
	}
	return seeded{path: path, host: fmt.Sprintf("courses.client%d.example", n-1), ids: ids}, nil
}

// loadTenants loads Caddy with the catch-all site of the tenants in path,
// every app proxied to the upstream.
func (e *env) loadTenants(path string) error {
	return e.loadCaddyfile(fmt.Sprintf(`{
	admin %[1]s
	persist_config off
	log {
		level ERROR
	}
	portalgate {
		portal http://%[2]s
		signing_key bench %[3]s
		store bolt %[4]s
		cache_max_bytes 64MiB
		rate_limit off
	}
}
http://%[2]s {
	portalgate portal
}
http://%[5]s {
	portalgate
	reverse_proxy %[6]s
}
`, e.admin, e.portal, benchKey, path, e.tenantsSite, e.upstream))
}

// tenantGet is get with the Host of a tenant's site.
func tenantGet(url, host string, ids []string) request {
	next := get(url, ids)
	return func(c, i int) *http.Request {
		req := next(c, i)
		req.Host = host
		return req
	}
}

package caddymodule

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/portalgate/portalgate/caddymodule/internal/gateway"
	"github.com/portalgate/portalgate/caddymodule/internal/link"
	"github.com/portalgate/portalgate/caddymodule/internal/store"
	"github.com/portalgate/portalgate/caddymodule/internal/store/bolt"
	"github.com/portalgate/portalgate/caddymodule/internal/testkit/redistest"
)

// newBenchHandler provisions the app and a handler for courses directly,
// without an HTTP server, so a benchmark measures the handler alone.
func newBenchHandler(b *testing.B, storeJSON string) *Handler {
	b.Helper()
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	b.Cleanup(cancel)
	a := &App{
		Portal:      "http://portal.test",
		Apps:        []AppURL{{Name: "courses", URL: "http://courses.test"}},
		SigningKeys: []SigningKey{{ID: "test", Secret: testKey}},
		// Configured, so provisioning needs no storage.
		AssertionKeys: []SigningKey{{ID: "a", Secret: "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}},
		StoreRaw:      json.RawMessage(storeJSON),
		// Audit events of every redemption are not what is measured.
		logger: zap.NewNop(),
	}
	if err := a.Provision(ctx); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = a.Cleanup() })
	h := &Handler{AppName: "courses"}
	if err := h.join(a); err != nil {
		b.Fatal(err)
	}
	benchApps[h] = a
	return h
}

// benchApps are the apps of the benchmarks' handlers.
var benchApps = map[*Handler]*App{}

func benchStores(b *testing.B) map[string]string {
	stores := map[string]string{
		"memory": `{"backend":"memory"}`,
		"bolt":   `{"backend":"bolt","path":"` + filepath.Join(b.TempDir(), "bench.db") + `"}`,
	}
	if _, err := exec.LookPath("redis-server"); err == nil || os.Getenv("CI") != "" {
		srv := redistest.Start(b)
		stores["redis"] = `{"backend":"redis","url":"` + srv.URL(0) + `"}`
	}
	return stores
}

type discard struct{ h http.Header }

func (d *discard) Header() http.Header         { return d.h }
func (d *discard) Write(p []byte) (int, error) { return len(p), nil }
func (d *discard) WriteHeader(int)             {}

// BenchmarkGate_SessionHit is a request with a valid session cookie through
// the handler: strip client identity, find the session in L1, set identity.
func BenchmarkGate_SessionHit(b *testing.B) {
	h := newBenchHandler(b, `{"backend":"memory"}`)
	sessions := benchApps[h].sessions
	s, err := sessions.Create(context.Background(), userOf("c_bench"), "", "courses", nil, "l")
	if err != nil {
		b.Fatal(err)
	}
	sessions.Wait()
	cookie := "_ga=GA1.2.3; portalgate-courses=" + s.ID + "; theme=dark"
	passed := 0
	next := caddyhttp.HandlerFunc(func(http.ResponseWriter, *http.Request) error { passed++; return nil })
	reqs, ws := serveGated(b, h, "http://courses.test/lesson/1", cookie, next)
	r := reqs[0]
	if passed != b.N || r.Header.Get("X-Portal-User-Id") != "c_bench" || strings.Contains(r.Header.Get("Cookie"), s.ID) ||
		len(ws[0].h["Content-Security-Policy"]) != 1 {
		b.Fatalf("%d of %d requests passed the gate; last headers %v, answer %v", passed, b.N, r.Header, ws[0].h)
	}
}

// benchLink signs a one-time link for courses and keeps its grant, as the
// link API does but without listing it on the dashboard: the redemption is
// what is measured.
func benchLink(b *testing.B, h *Handler) string {
	a := benchApps[h]
	l, err := a.codec.Mint(link.Request{App: "courses", User: userOf("c_bench")})
	if err == nil {
		err = a.store.PutLink(context.Background(), gateway.GrantOf(l))
	}
	if err != nil {
		b.Error(err)
		return ""
	}
	return "http://courses.test" + magicPath + "?token=" + l.Token
}

// BenchmarkRedeem is one magic-link redemption: verify the token, spend it
// and create the session in the store, set the cookie, redirect.
func BenchmarkRedeem(b *testing.B) {
	for name, st := range benchStores(b) {
		b.Run(name, func(b *testing.B) {
			h := newBenchHandler(b, st)
			// Links are minted up front; minting is not what is measured.
			urls := make([]string, b.N)
			for i := range urls {
				urls[i] = benchLink(b, h)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				redeemOnce(b, h, urls[i])
			}
		})
	}
}

// BenchmarkRedeem_Parallel is redemption throughput with concurrent
// clients: bolt batches concurrent writes into one fsync.
func BenchmarkRedeem_Parallel(b *testing.B) {
	for name, st := range benchStores(b) {
		b.Run(name, func(b *testing.B) {
			h := newBenchHandler(b, st)
			b.SetParallelism(16)
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					redeemOnce(b, h, benchLink(b, h))
				}
			})
		})
	}
}

func redeemOnce(b *testing.B, h *Handler, url string) {
	r := httptest.NewRequest(http.MethodGet, url, nil)
	w := httptest.NewRecorder()
	if err := h.ServeHTTP(w, r, nil); err != nil || w.Code != http.StatusSeeOther {
		b.Fatalf("redeem: %v %d %s", err, w.Code, w.Body)
	}
}

// BenchmarkGate_SessionHitThroughTheCatchAll is BenchmarkGate_SessionHit on
// a tenant's app through the catch-all site (host → tenant and app, then
// the tenant's site), among one tenant and among 10,000 of 4 hosts each;
// "site" is the default tenant's own site, without the lookup. It reports
// the heap the tenants take, per tenant.
func BenchmarkGate_SessionHitThroughTheCatchAll(b *testing.B) {
	for _, n := range []int{0, 1, 10_000} {
		name := "site"
		if n > 0 {
			name = fmt.Sprintf("tenants=%d", n)
		}
		b.Run(name, func(b *testing.B) { benchCatchAll(b, n) })
	}
}

func benchCatchAll(b *testing.B, tenants int) {
	h, grown := provisionTenants(b, tenants)
	var perTenant float64
	if tenants > 1 {
		// What the tenants take: the heap of a gateway of n tenants less
		// that of one of 1, each with its catch-all site.
		_, one := provisionTenants(b, 1)
		perTenant = float64(int64(grown)-int64(one)) / float64(tenants-1)
	}
	app := benchApps[h]
	host, tenant := "courses.test", ""
	if tenants > 0 {
		tenant = fmt.Sprintf("t%d", tenants-1)
		host = fmt.Sprintf("courses.client%d.example", tenants-1)
	}
	s, err := app.sessions.Create(context.Background(), userOf("c_bench"), tenant, "courses", nil, "l")
	if err != nil {
		b.Fatal(err)
	}
	app.sessions.Wait()
	cookie := "_ga=GA1.2.3; portalgate-courses=" + s.ID + "; theme=dark"
	passed := 0
	next := caddyhttp.HandlerFunc(func(http.ResponseWriter, *http.Request) error { passed++; return nil })
	reqs, _ := serveGated(b, h, "http://"+host+"/lesson/1", cookie, next)
	if passed != b.N || reqs[0].Header.Get("X-Portal-User-Id") != "c_bench" {
		b.Fatalf("%d of %d requests passed the gate; last headers %v", passed, b.N, reqs[0].Header)
	}
	if tenants > 1 {
		b.ReportMetric(perTenant, "heap-B/tenant")
	}
}

// serveGated hands h b.N requests for url with the Cookie line cookie, as
// Caddy hands it one it has just parsed: fresh request and response header
// maps (the latter holding its Server header), a replacer and Caddy's own
// vars. They are made outside the timer, in batches small enough to be
// still in cache when served, as a just-parsed request is; a large batch
// measured cache misses on setup's memory. It returns the last batch.
func serveGated(b *testing.B, h *Handler, url, cookie string, next caddyhttp.Handler) ([]*http.Request, []discard) {
	b.Helper()
	const batch = 64
	base := httptest.NewRequest(http.MethodGet, url, nil)
	reqs := make([]*http.Request, batch)
	ws := make([]discard, batch)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i += batch {
		b.StopTimer()
		n := min(batch, b.N-i)
		for j := range n {
			// A shallow copy (the URL is shared, and the handler never writes
			// it), with the context, vars and replacer Caddy's server gives
			// every request.
			ws[j] = discard{h: http.Header{"Server": {"Caddy"}}}
			r := caddyhttp.PrepareRequest(base.WithContext(base.Context()), caddy.NewReplacer(), &ws[j], nil)
			r.Header = http.Header{"Accept": {"text/html"}, "Cookie": {cookie}}
			reqs[j] = r
		}
		b.StartTimer()
		for j, r := range reqs[:n] {
			if err := h.ServeHTTP(&ws[j], r, next); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.StopTimer()
	return reqs, ws
}

// provisionTenants provisions a gateway whose store holds n tenants of 4
// hosts each and returns its catch-all handler (for n 0, the default
// tenant's courses site) and how much the heap grew.
func provisionTenants(b *testing.B, n int) (*Handler, uint64) {
	b.Helper()
	path := filepath.Join(b.TempDir(), "tenants.db")
	st, err := bolt.Open(path, time.Now)
	if err != nil {
		b.Fatal(err)
	}
	for i := range n {
		t := store.Tenant{ID: fmt.Sprintf("t%d", i), Portal: fmt.Sprintf("http://portal.client%d.example", i), Apps: map[string]string{}}
		for _, app := range []string{"courses", "communities", "affiliates"} {
			t.Apps[app] = fmt.Sprintf("http://%s.client%d.example", app, i)
		}
		if err := st.AddTenant(context.Background(), t); err != nil {
			b.Fatal(err)
		}
	}
	if err := st.Close(); err != nil {
		b.Fatal(err)
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	h := newBenchHandler(b, `{"backend":"bolt","path":"`+path+`"}`)
	if n > 0 {
		app := benchApps[h]
		h = &Handler{}
		if err := h.join(app); err != nil {
			b.Fatal(err)
		}
		benchApps[h] = app
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	return h, after.HeapAlloc - before.HeapAlloc
}

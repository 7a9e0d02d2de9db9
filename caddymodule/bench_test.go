package caddymodule

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/portalgate/portalgate/caddymodule/internal/gateway"
	"github.com/portalgate/portalgate/caddymodule/internal/link"
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
	// Caddy hands the handler a request it has just parsed, with fresh
	// request and response header maps (the latter holding its Server
	// header) and a replacer. They are made outside the timer, in batches
	// small enough to be still in cache when served, as a just-parsed
	// request is; a large batch measured cache misses on setup's memory.
	const batch = 64
	base := httptest.NewRequest(http.MethodGet, "http://courses.test/lesson/1", nil)
	reqs := make([]*http.Request, batch)
	ws := make([]discard, batch)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i += batch {
		b.StopTimer()
		n := min(batch, b.N-i)
		for j := range n {
			// A shallow copy: the URL is shared, and the handler never writes it.
			r := base.WithContext(context.WithValue(base.Context(), caddy.ReplacerCtxKey, caddy.NewReplacer()))
			r.Header = http.Header{"Accept": {"text/html"}, "Cookie": {cookie}}
			reqs[j] = r
			ws[j] = discard{h: http.Header{"Server": {"Caddy"}}}
		}
		b.StartTimer()
		for j, r := range reqs[:n] {
			if err := h.ServeHTTP(&ws[j], r, next); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.StopTimer()
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

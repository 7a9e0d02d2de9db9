package caddymodule

import (
	"net/http"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/golang-jwt/jwt/v5"
)

func TestSession_SurvivesConfigReload(t *testing.T) {
	for _, st := range []string{"store memory", "store bolt " + filepath.Join(t.TempDir(), "reload.db")} {
		t.Run(strings.Fields(st)[1], func(t *testing.T) {
			g := newGateway(t, st)
			c := g.signIn("courses", "reload")
			g.globalExtra = st + "\n\t\tlink_ttl 10m"
			g.load()
			h := upstreamHeaders(t, g.do(c, http.MethodGet, "http://"+g.courses+"/"))
			if h.Get("X-Portal-User-Id") != "reload" {
				t.Fatalf("after reload the app sees %v", h)
			}
		})
	}
}

func TestBolt_SessionAndConsumedLinkSurviveRestart(t *testing.T) {
	g := newGateway(t, "store bolt "+filepath.Join(t.TempDir(), "restart.db"))
	c := g.signIn("courses", "restart")
	used := g.mint(MintRequest{App: "courses", User: userOf("restart")})
	if r := g.do(g.client(), http.MethodGet, used.URL, browser); r.StatusCode != http.StatusSeeOther {
		t.Fatal(r.StatusCode)
	}
	fresh := g.mint(MintRequest{App: "courses", User: userOf("restart")})

	if err := caddy.Stop(); err != nil {
		t.Fatal(err)
	}
	g.load()

	if h := upstreamHeaders(t, g.do(c, http.MethodGet, "http://"+g.courses+"/")); h.Get("X-Portal-User-Id") != "restart" {
		t.Fatalf("after restart the app sees %v", h)
	}
	if r := g.do(g.client(), http.MethodGet, used.URL, browser); r.StatusCode != http.StatusGone {
		t.Fatalf("consumed link after restart: %d", r.StatusCode)
	}
	if r := g.do(g.client(), http.MethodGet, fresh.URL, browser); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("unused link after restart: %d", r.StatusCode)
	}
}

func TestGeneratedKey_LinksSurviveRestart(t *testing.T) {
	g := newGateway(t, "store memory")
	// No signing_key: the gateway generates one and keeps it in Caddy's storage.
	noKey := func() string {
		return strings.Replace(g.caddyfile(), "signing_key test "+testKey, "", 1)
	}
	if err := loadCaddyfile(noKey()); err != nil {
		t.Fatal(err)
	}
	l := g.mint(MintRequest{App: "courses", User: userOf("genkey")})
	if err := caddy.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := loadCaddyfile(noKey()); err != nil {
		t.Fatal(err)
	}
	if r := g.do(g.client(), http.MethodGet, l.URL, browser); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("link signed with the generated key, after restart: %d %s", r.StatusCode, r.body)
	}
	tok, _, err := jwt.NewParser().ParseUnverified(l.URL[strings.Index(l.URL, "token=")+len("token="):], jwt.MapClaims{})
	if err != nil {
		t.Fatal(err)
	}
	if kid, _ := tok.Header["kid"].(string); !strings.HasPrefix(kid, "gen-") {
		t.Fatalf("signed with key %q, not a generated one", kid)
	}
}

// Caddy keeps an old config reachable after a reload once reverse_proxy has
// carried traffic; each config's L1 must not pile up with it (tens of MB a
// reload before Manager.Close dropped the cache).
func TestReload_UnderTrafficDoesNotPileUpSessionCaches(t *testing.T) {
	g := newGateway(t, "store memory")
	c := g.signIn("courses", "reloads")
	heap := func() uint64 {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	var before uint64
	for i := range 5 {
		for range 10 {
			upstreamHeaders(t, g.do(c, http.MethodGet, "http://"+g.courses+"/"))
		}
		g.load()
		if i == 0 {
			before = heap()
		}
	}
	// Each L1 is about 25 MiB at the default size: four reloads piled up
	// 100 MiB. One may still be alive here, closing (more so with -race).
	if grown := int64(heap()) - int64(before); grown > 40<<20 {
		t.Fatalf("the heap grew by %d MiB over 4 reloads", grown>>20)
	}
}

package caddymodule

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"

	"github.com/portalgate/portalgate/caddymodule/internal/testkit/web"
)

func TestConfig_StoreBlocksAreReadNotIgnored(t *testing.T) {
	g := newGateway(t, "store memory")
	path := filepath.Join(t.TempDir(), "from-block.db")
	if err := loadCaddyfile(strings.Replace(g.caddyfile(), "store memory", "store bolt {\n\t\t\tpath "+path+"\n\t\t}", 1)); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("store bolt { path } ignored: %v", err)
	}
	for name, tc := range map[string]struct{ from, to, want string }{
		"memory option": {"store memory", "store memory {\n\t\t\tsize 1\n\t\t}", "store memory takes no options"},
		"bolt option":   {"store memory", "store bolt {\n\t\t\tfsync off\n\t\t}", `unknown store bolt option "fsync"`},
		"matcher":       {"portalgate courses", "portalgate /secure* courses", "takes no matcher"},
	} {
		t.Run(name, func(t *testing.T) {
			if err := loadCaddyfile(strings.Replace(g.caddyfile(), tc.from, tc.to, 1)); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error = %v, want %q", err, tc.want)
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

	if h := web.Echoed(t, g.do(c, http.MethodGet, "http://"+g.courses+"/")); h.Get("X-Portal-User-Id") != "restart" {
		t.Fatalf("after restart the app sees %v", h)
	}
	if r := g.do(g.client(), http.MethodGet, used.URL, browser); r.StatusCode != http.StatusGone {
		t.Fatalf("consumed link after restart: %d", r.StatusCode)
	}
	if r := g.do(g.client(), http.MethodGet, fresh.URL, browser); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("unused link after restart: %d", r.StatusCode)
	}
}

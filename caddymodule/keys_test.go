package caddymodule

import (
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/golang-jwt/jwt/v5"
)

func TestGeneratedKey_LinksSurviveRestart(t *testing.T) {
	// A restart keeps the store's state in a file only.
	g := newGateway(t, "store bolt "+filepath.Join(t.TempDir(), "genkey.db"))
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
		t.Fatalf("link signed with the generated key, after restart: %d %s", r.StatusCode, r.Body)
	}
	tok, _, err := jwt.NewParser().ParseUnverified(l.URL[strings.Index(l.URL, "token=")+len("token="):], jwt.MapClaims{})
	if err != nil {
		t.Fatal(err)
	}
	if kid, _ := tok.Header["kid"].(string); !strings.HasPrefix(kid, "gen-") {
		t.Fatalf("signed with key %q, not a generated one", kid)
	}
}

func TestRedeem_RotatedOutKeyIsRefused(t *testing.T) {
	g := newGateway(t, "store memory")
	old := g.mint(MintRequest{App: "courses", User: userOf("c_rot")})
	stillGood := g.mint(MintRequest{App: "courses", User: userOf("c_rot")})
	const newKey = "second-signing-secret-0123456789-abcdef"
	rotate := func(keys string) {
		if err := loadCaddyfile(strings.Replace(g.caddyfile(), "signing_key test "+testKey, keys, 1)); err != nil {
			t.Fatal(err)
		}
	}
	// Step 1: the new key signs, the old one still verifies.
	rotate("signing_key k2 " + newKey + "\n\t\tsigning_key test " + testKey)
	if r := g.do(g.client(), http.MethodGet, stillGood.URL, browser); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("old link during rotation: %d", r.StatusCode)
	}
	fresh := g.mint(MintRequest{App: "courses", User: userOf("c_rot")})
	// Step 2: the old key is removed; its links die with it.
	rotate("signing_key k2 " + newKey)
	if r := g.do(g.client(), http.MethodGet, old.URL, browser); r.StatusCode != http.StatusBadRequest {
		t.Fatalf("link of a removed key: %d", r.StatusCode)
	}
	if r := g.do(g.client(), http.MethodGet, fresh.URL, browser); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("link of the new key: %d", r.StatusCode)
	}
}

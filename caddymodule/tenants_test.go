package caddymodule

import (
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"

	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"

	"github.com/portalgate/portalgate/caddymodule/internal/identity"
	"github.com/portalgate/portalgate/caddymodule/internal/testkit/web"
)

// One catch-all site serves every tenant: real Caddy resolves each host to
// its tenant and app, and ordinary vars matchers route each app to its own
// upstream, which learns the tenant. A host of no tenant is a plain 404, and
// a link of one tenant opens nothing of another.
func TestTenants_OneCatchAllSiteRoutesEachTenantsAppsToTheirUpstreams(t *testing.T) {
	second := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "communities upstream, for "+r.Header.Get(identity.HeaderTenant))
	}))
	t.Cleanup(second.Close)
	catchAll := freeAddrs(t, 1)[0]
	_, port, _ := net.SplitHostPort(catchAll)
	at := func(host string) string { return "http://" + host + ".localhost:" + port }
	g := &testCaddy{t: t}
	addrs := freeAddrs(t, 4)
	g.admin, g.portal, g.courses, g.community = addrs[0], addrs[1], addrs[2], addrs[3]
	g.globalExtra = fmt.Sprintf(`store memory
		tenant acme {
			name "Acme Coaching"
			portal %s
			app courses %s
			app communities %s
			brand color 0f766e
			brand sender_name "Acme Coaching"
		}
		tenant beta {
			name "Beta Fitness"
			portal %s
			app courses %s
		}`, at("portal.acme"), at("courses.acme"), at("communities.acme"), at("portal.beta"), at("courses.beta"))
	g.start()
	g.sites = fmt.Sprintf(`http://:%s {
	bind 127.0.0.1
	portalgate
	@courses vars portalgate_app courses
	reverse_proxy @courses %s {
		header_up X-Routed {http.vars.portalgate_tenant}/{http.vars.portalgate_app}
	}
	@communities vars portalgate_app communities
	reverse_proxy @communities %s
}`, port, strings.TrimPrefix(g.upstream.URL, "http://"), strings.TrimPrefix(second.URL, "http://"))
	g.load()

	l := g.mint(MintRequest{Tenant: "acme", App: "courses", User: userOf("c_ada")})
	if !strings.HasPrefix(l.URL, at("courses.acme")+magicPath) {
		t.Fatalf("acme's link: %s", l.URL)
	}
	c := web.ClientVia(catchAll)
	if r := g.do(c, http.MethodGet, l.URL, browser); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("redeeming: %d %s", r.StatusCode, r.Body)
	}
	h := web.Echoed(t, g.do(c, http.MethodGet, at("courses.acme")+"/lesson", "X-Portal-Tenant: beta"))
	if h.Get(identity.HeaderTenant) != "acme" || h.Get(identity.HeaderUserID) != "c_ada" || h.Get("X-Routed") != "acme/courses" {
		t.Fatalf("acme's courses upstream got %v", h)
	}
	// Acme's communities reach their own upstream; its session is its own.
	l2 := g.mint(MintRequest{Tenant: "acme", App: "communities", User: userOf("c_ada")})
	if r := g.do(c, http.MethodGet, l2.URL, browser); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("redeeming on communities: %d %s", r.StatusCode, r.Body)
	}
	if r := g.do(c, http.MethodGet, at("communities.acme")+"/"); r.StatusCode != http.StatusOK || r.Body != "communities upstream, for acme" {
		t.Fatalf("acme's communities: %d %q", r.StatusCode, r.Body)
	}
	// Beta has no communities, and acme's link opens nothing of beta's.
	_, token, _ := strings.Cut(l.URL, "?")
	for _, url := range []string{at("communities.beta") + "/", at("courses.beta") + magicPath + "?" + token, "http://nobody.localhost:" + port + "/"} {
		r := g.do(web.ClientVia(catchAll), http.MethodGet, url, browser)
		if r.StatusCode < 400 {
			t.Fatalf("%s: %d %s", url, r.StatusCode, r.Body)
		}
	}
	if r := g.do(web.ClientVia(catchAll), http.MethodGet, at("communities.beta")+"/"); r.StatusCode != http.StatusNotFound || strings.TrimSpace(r.Body) != "Not Found" {
		t.Fatalf("a host of no tenant: %d %q", r.StatusCode, r.Body)
	}
	// Beta's portal is beta's, under its name.
	if r := g.do(web.ClientVia(catchAll), http.MethodGet, at("portal.beta")+"/", browser); !strings.Contains(r.Body, "Beta Fitness") {
		t.Fatalf("beta's portal: %d %s", r.StatusCode, r.Body)
	}
}

// The Caddyfile of tenants alone, as the multi-tenant README gives it: no
// default portal, one https:// catch-all site with on-demand TLS and the
// permission module, and each app routed by the vars matcher. A link
// minted through the admin API for a tenant signs its contact in, over a
// real TLS handshake for the tenant's host, and the app learns the tenant.
func TestTenants_TenantsAloneOverOnDemandTLS(t *testing.T) {
	addrs := freeAddrs(t, 2)
	admin, site := addrs[0], addrs[1]
	_, port, _ := net.SplitHostPort(site)
	upstream := httptest.NewServer(http.HandlerFunc(web.Echo))
	t.Cleanup(upstream.Close)
	sum := sha256.Sum256([]byte(testAPIKey))
	cf := fmt.Sprintf(`{
	admin %[1]s
	persist_config off
	skip_install_trust
	on_demand_tls {
		permission portalgate
	}
	portalgate {
		store memory
		signing_key test %[3]s
		api_key_hash %[4]s
		staff ann agency_user
		tenant acme {
			name "Acme Coaching"
			portal https://portal.acme.localhost:%[2]s
			app courses https://courses.acme.localhost:%[2]s
			brand color "#0f766e"
			brand logo https://cdn.acme-client.example/logo.png
		}
	}
}
https://:%[2]s {
	bind 127.0.0.1
	tls internal {
		on_demand
	}
	portalgate
	@courses vars portalgate_app courses
	reverse_proxy @courses %[5]s
}
`, admin, port, testKey, hex.EncodeToString(sum[:]), strings.TrimPrefix(upstream.URL, "http://"))
	if err := loadCaddyfile(cf); err != nil {
		t.Fatalf("loading: %v", err)
	}
	t.Cleanup(func() { _ = caddy.Stop() })

	body := `{"tenant":"acme","app":"courses","user":{"id":"c_ada","email":"ada@example.com"}}`
	r := web.Send(t, http.DefaultClient, http.MethodPost, "http://"+admin+"/portalgate/links", strings.NewReader(body), "Content-Type: application/json", "Origin: http://"+admin)
	if r.StatusCode != http.StatusCreated {
		t.Fatalf("minting: %d %s", r.StatusCode, r.Body)
	}
	var l MintResponse
	_ = json.Unmarshal([]byte(r.Body), &l)
	if !strings.HasPrefix(l.URL, "https://courses.acme.localhost:"+port+magicPath) {
		t.Fatalf("the link: %s", l.URL)
	}
	// Without a tenant, there is no default portal to mint for.
	r = web.Send(t, http.DefaultClient, http.MethodPost, "http://"+admin+"/portalgate/links", strings.NewReader(`{"app":"courses","user":{"id":"c_x"}}`), "Content-Type: application/json", "Origin: http://"+admin)
	if r.StatusCode != http.StatusBadRequest || !strings.Contains(r.Body, "no default portal") {
		t.Fatalf("a link of no tenant: %d %s", r.StatusCode, r.Body)
	}
	c := web.ClientVia(site)
	c.Transport.(*http.Transport).TLSClientConfig = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // Caddy's internal CA
	if r := web.Send(t, c, http.MethodGet, l.URL, nil, browser); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("redeeming: %d %s", r.StatusCode, r.Body)
	}
	h := web.Echoed(t, web.Send(t, c, http.MethodGet, "https://courses.acme.localhost:"+port+"/", nil))
	if h.Get(identity.HeaderTenant) != "acme" || h.Get(identity.HeaderUserID) != "c_ada" {
		t.Fatalf("the app got %v", h)
	}
	home := web.Send(t, c, http.MethodGet, "https://portal.acme.localhost:"+port+"/", nil, browser)
	if csp := home.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "https://cdn.acme-client.example") {
		t.Fatalf("acme's pages may not show its logo: %s", csp)
	}
}

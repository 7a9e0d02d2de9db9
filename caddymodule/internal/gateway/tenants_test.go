package gateway

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/portalgate/portalgate/caddymodule/internal/identity"
	"github.com/portalgate/portalgate/caddymodule/internal/portal"
	"github.com/portalgate/portalgate/caddymodule/internal/store"
	"github.com/portalgate/portalgate/caddymodule/internal/store/memory"
	"github.com/portalgate/portalgate/caddymodule/internal/testkit/web"
)

// withTenants serves two tenants besides the default one, acme and beta,
// each with a portal and a courses app on hosts of their own under
// .localhost, all at one catch-all site (g.router).
func withTenants() option {
	return func(s *setup) {
		s.routed = true
		at := tenantAt(s.router)
		s.cfg.Tenants = append(s.cfg.Tenants,
			Tenant{ID: "acme", Name: "Acme Coaching", Portal: at("portal.acme"), Apps: []AppURL{{Name: "courses", URL: at("courses.acme")}},
				Brand: portal.Brand{Color: "#0f766e", Support: "help@acme.example"}},
			Tenant{ID: "beta", Name: "Beta Fitness", Portal: at("portal.beta"), Apps: []AppURL{{Name: "courses", URL: at("courses.beta")}}},
		)
	}
}

// tenantAt gives the URL of a tenant's site named host (.localhost) at the
// catch-all site's port.
func tenantAt(router string) func(host string) string {
	_, port, _ := net.SplitHostPort(router)
	return func(host string) string { return "http://" + host + ".localhost:" + port }
}

// view is the gateway of tenant id.
func (g *testGateway) view(id string) *Gateway {
	g.t.Helper()
	v, ok := g.gw.viewOf(id)
	if !ok {
		g.t.Fatalf("no tenant %s", id)
	}
	return v
}

// basicAuth is the header that signs staff name in, as the authenticator
// in front of the dashboard takes it.
func basicAuth(name, password string) string {
	return "Authorization: Basic " + base64.StdEncoding.EncodeToString([]byte(name+":"+password))
}

// at is the URL of the tenant site named host.
func (g *testGateway) at(host string) string { return tenantAt(g.router)(host) }

// via is a fresh browser that reaches every tenant host at the catch-all
// site.
func (g *testGateway) via() *http.Client { return web.ClientVia(g.router) }

// signInVia opens a tenant's magic link in a fresh browser and returns it.
func (g *testGateway) signInVia(magicURL string) *http.Client {
	g.t.Helper()
	c := g.via()
	if r := g.do(c, http.MethodGet, magicURL, browser); r.StatusCode != http.StatusSeeOther {
		g.t.Fatalf("redeeming %s: %d %s", magicURL, r.StatusCode, r.Body)
	}
	return c
}

// The catch-all site serves each tenant's sites by host: the gated request
// reaches the upstream with the tenant named (X-Portal-Tenant, and Caddy's
// vars for the matchers routing to its upstream); a client's own
// X-Portal-Tenant never passes.
func TestTenants_CatchAllServesEachTenantsAppsByHost(t *testing.T) {
	t.Parallel()
	g := newTestGateway(t, withTenants())
	l := g.mint(MintRequest{Tenant: "acme", App: "courses", User: userOf("c_ada")})
	if !strings.HasPrefix(l.URL, g.at("courses.acme")+"/") {
		t.Fatalf("acme's link is at %s", l.URL)
	}
	c := g.signInVia(l.URL)
	h := web.Echoed(t, g.do(c, http.MethodGet, g.at("courses.acme")+"/lesson", "X-Portal-Tenant: beta", "X-Portal-User-Id: admin"))
	if h.Get(identity.HeaderTenant) != "acme" || h.Get(identity.HeaderUserID) != "c_ada" || h.Get(identity.HeaderLocation) != "acme" || h.Get(identity.HeaderApp) != "courses" {
		t.Fatalf("acme's app got %v", h)
	}
	if v := g.lastVars.Load(); v == nil || *v != [2]string{"acme", "courses"} {
		t.Fatalf("vars = %v, want acme courses", v)
	}
	// The default tenant's sites name no tenant.
	d := web.Echoed(t, g.do(g.signIn("courses", "c_dee"), http.MethodGet, "http://"+g.courses+"/", "X-Portal-Tenant: acme"))
	if _, ok := d[identity.HeaderTenant]; ok {
		t.Fatalf("the default tenant's app got %v", d)
	}
	// Each portal under its own brand: acme's colour is a style sheet of
	// its own, which its pages' CSP names.
	acmePage := g.do(g.via(), http.MethodGet, g.at("portal.acme")+"/", browser)
	_, lookHash := portal.NewLook(portal.Brand{Color: "#0f766e"})
	if !strings.Contains(acmePage.Body, "<style>:root{--brand:#0f766e}</style>") || !strings.Contains(acmePage.Header.Get("Content-Security-Policy"), lookHash) {
		t.Fatalf("acme's page: %s\n%s", acmePage.Header.Get("Content-Security-Policy"), acmePage.Body)
	}
	// Each portal under its own brand.
	home := g.do(g.via(), http.MethodGet, g.at("portal.beta")+"/", browser)
	if home.StatusCode != http.StatusUnauthorized || !strings.Contains(home.Body, "Beta Fitness") || strings.Contains(home.Body, "Acme") {
		t.Fatalf("beta's sign-in page: %d %s", home.StatusCode, home.Body)
	}
}

// A host no tenant has is a plain 404 that reaches nothing; a request
// whose TLS server name is another site's than its Host is a 421.
func TestTenants_UnknownHostIsAPlain404AndAMisdirectedOneA421(t *testing.T) {
	t.Parallel()
	g := newTestGateway(t, withTenants())
	for _, host := range []string{"portal.nobody.localhost", "127.0.0.1", "courses.acme.localhost.evil.example", "[::1]"} {
		r := g.do(g.via(), http.MethodGet, "http://"+host+"/", browser)
		if r.StatusCode != http.StatusNotFound || r.Header.Get("Content-Type") != "text/plain; charset=utf-8" || strings.TrimSpace(r.Body) != "Not Found" {
			t.Fatalf("%s: %d %q %q", host, r.StatusCode, r.Header.Get("Content-Type"), r.Body)
		}
	}
	// Every spelling of a tenant's host is its host.
	for _, host := range []string{"PORTAL.Acme.LOCALHOST", "portal.acme.localhost."} {
		r := g.do(g.via(), http.MethodGet, "http://"+host+"/", browser)
		if r.StatusCode != http.StatusUnauthorized || !strings.Contains(r.Body, "Acme Coaching") {
			t.Fatalf("%s: %d", host, r.StatusCode)
		}
	}
	if g.upstreamHits.Load() != 0 {
		t.Fatal("an unknown host reached the upstream")
	}

	rt, err := g.gw.Router(SiteConfig{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = rt.ServeHTTP(w, r, nextFunc(func(w http.ResponseWriter, r *http.Request) error { web.Echo(w, r); return nil }))
	}))
	srv.StartTLS()
	t.Cleanup(srv.Close)
	tlsTo := func(serverName, host string) int {
		tr := &http.Transport{TLSClientConfig: &tls.Config{ServerName: serverName, InsecureSkipVerify: true}} //nolint:gosec // the test server's own certificate
		defer tr.CloseIdleConnections()
		req, _ := http.NewRequest(http.MethodGet, srv.URL+jwksPath, nil)
		req.Host = host
		res, err := tr.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	if got := tlsTo("portal.acme.localhost", "portal.acme.localhost"); got != http.StatusOK {
		t.Fatalf("matching server name: %d", got)
	}
	if got := tlsTo("portal.acme.localhost", "portal.beta.localhost"); got != http.StatusMisdirectedRequest {
		t.Fatalf("acme's server name, beta's host: %d, want 421", got)
	}
}

// A link minted for tenant A opens nothing of tenant B, even for an app of
// the same name and a user of the same id: the token names its tenant, and
// the host's tenant is checked at redemption, before anything is spent.
func TestTenants_LinkOfOneTenantIsRefusedOnEveryHostOfAnother(t *testing.T) {
	t.Parallel()
	g := newTestGateway(t, withTenants())
	l := g.mint(MintRequest{Tenant: "acme", App: "courses", User: userOf("c_same")})
	_, query, _ := strings.Cut(l.URL, "?")
	token := "?" + query
	for _, site := range []string{g.at("courses.beta"), g.at("portal.beta"), "http://" + g.courses} {
		r := g.do(g.via(), http.MethodGet, site+magicPath+token, browser)
		if r.StatusCode < 400 || web.Cookie(r, "portalgate-courses") != nil {
			t.Fatalf("acme's link on %s: %d %s", site, r.StatusCode, r.Body)
		}
	}
	// Nothing was spent: it still works where it belongs.
	g.signInVia(l.URL)
}

// A session cookie of tenant A replayed with B's Host opens nothing, under
// any cookie name of B's sites.
func TestTenants_SessionCookieReplayedOnAnotherTenantsHostOpensNothing(t *testing.T) {
	t.Parallel()
	g := newTestGateway(t, withTenants())
	c := g.signInVia(g.mint(MintRequest{Tenant: "acme", App: "courses", User: userOf("c_same")}).URL)
	u, _ := url.Parse(g.at("courses.acme"))
	var id string
	for _, k := range c.Jar.Cookies(u) {
		if k.Name == "portalgate-courses" {
			id = k.Value
		}
	}
	if id == "" {
		t.Fatal("no session cookie")
	}
	for _, site := range []string{g.at("courses.beta"), g.at("portal.beta")} {
		for _, name := range []string{"portalgate-courses", "portalgate-portal"} {
			r := g.do(g.via(), http.MethodGet, site+"/", "Accept: application/json", "Cookie: "+name+"="+id)
			if r.StatusCode != http.StatusUnauthorized {
				t.Fatalf("acme's session as %s on %s: %d %s", name, site, r.StatusCode, r.Body)
			}
		}
	}
	if g.upstreamHits.Load() != 0 {
		t.Fatal("a replayed session reached an upstream")
	}
}

// Contacts of one tenant are invisible and unusable in another: the same
// e-mail address may be a contact of both, as two people, and each portal
// signs in its own; one tenant's dashboard lists its own contacts only,
// and its sub-account users open no other tenant's dashboard.
func TestTenants_ContactOfOneTenantIsInvisibleInAnother(t *testing.T) {
	t.Parallel()
	g := newTestGateway(t, withTenants(), withOutbox(), withStaff(), func(s *setup) {
		s.cfg.Staff = append(s.cfg.Staff, Staff{Username: "acme-staff", Role: identity.SubaccountUser, Location: "acme"})
	})
	ctx := context.Background()
	if err := g.store.PutContacts(ctx, []store.Contact{
		{ID: "c_acme_pat", Email: "pat@example.com", Name: "Pat of Acme", Location: "acme"},
		{ID: "c_beta_pat", Email: "Pat@Example.com", Name: "Pat of Beta", Location: "beta"},
	}); err != nil {
		t.Fatal(err)
	}
	beta := g.view("beta")
	// Beta's portal mails beta's Pat, and not acme's.
	resp, err := beta.LoginEmail(ctx, "c_beta_pat", "test")
	if err != nil || resp.URL == "" || !strings.HasPrefix(resp.URL, g.at("portal.beta")) {
		t.Fatalf("beta's login e-mail: %+v, %v", resp, err)
	}
	if _, err := beta.LoginEmail(ctx, "c_acme_pat", "test"); err == nil {
		t.Fatal("beta's portal mailed acme's contact")
	}
	// Asked on acme's portal, the address signs in acme's Pat, under
	// acme's brand and name.
	acmeGW := g.view("acme")
	if result, err := acmeGW.signInFor(ctx, signInRequest{address: "PAT@example.com", g: acmeGW}); err != nil || result != "sent" {
		t.Fatalf("acme's sign-in: %s, %v", result, err)
	}
	m := g.mails("pat@example.com", 1)[0]
	if m.To.Name != "Pat of Acme" || !strings.Contains(m.Text, g.at("portal.acme")) || !strings.Contains(m.Subject+m.Text, "Acme Coaching") || !strings.Contains(m.Text, "help@acme.example") {
		t.Fatalf("acme's sign-in e-mail: %+v", m)
	}
	// Each dashboard lists its own.
	acme := g.do(g.via(), http.MethodGet, g.at("portal.acme")+"/dashboard/contacts", browser, basicAuth("agency", testStaff["agency"]))
	if acme.StatusCode != http.StatusOK || !strings.Contains(acme.Body, "Pat of Acme") || strings.Contains(acme.Body, "Pat of Beta") {
		t.Fatalf("acme's contacts: %d %s", acme.StatusCode, acme.Body)
	}
	if r := g.do(g.via(), http.MethodGet, g.at("portal.beta")+"/dashboard/contacts/c_acme_pat", browser, basicAuth("agency", testStaff["agency"])); r.StatusCode != http.StatusNotFound {
		t.Fatalf("acme's contact on beta's dashboard: %d", r.StatusCode)
	}
	if r := g.do(g.via(), http.MethodGet, g.at("portal.beta")+"/dashboard/", browser, basicAuth("acme-staff", "acme-pw")); r.StatusCode != http.StatusForbidden {
		t.Fatalf("acme's staff on beta's dashboard: %d", r.StatusCode)
	}
	if r := g.do(g.via(), http.MethodGet, g.at("portal.acme")+"/dashboard/", browser, basicAuth("acme-staff", "acme-pw")); r.StatusCode != http.StatusOK {
		t.Fatalf("acme's staff on acme's dashboard: %d", r.StatusCode)
	}
	// A tenant's API mints for that tenant's people only.
	if _, err := beta.Mint(ctx, MintRequest{Tenant: "acme", App: "courses", User: userOf("c_x")}, "test"); err == nil {
		t.Fatal("beta minted a link of acme")
	}
	u := userOf("c_y")
	u.Location = "acme"
	if _, err := beta.Mint(ctx, MintRequest{App: "courses", User: u}, "test"); err == nil {
		t.Fatal("beta minted a link for acme's contact")
	}
	// The default portal mints a tenant's contact's links on that tenant.
	l, err := g.gw.Mint(ctx, MintRequest{App: "courses", User: u}, "test")
	if err != nil || !strings.HasPrefix(l.URL, g.at("courses.acme")) {
		t.Fatalf("the default portal's link for acme's contact: %+v, %v", l, err)
	}
}

// A tenant removed, and added again, is a new tenant: the sessions and
// links of the one before open nothing of it.
func TestTenants_RemovedTenantsSessionsAndLinksOpenNothing(t *testing.T) {
	t.Parallel()
	g := newTestGateway(t, withTenants())
	c := g.signInVia(g.mint(MintRequest{Tenant: "acme", App: "courses", User: userOf("c_1")}).URL)
	unused := g.mint(MintRequest{Tenant: "acme", App: "courses", User: userOf("c_2")})
	if n := g.gw.tenants.registry.Len(); n != 2 {
		t.Fatalf("%d tenants, want acme and beta", n)
	}
	t0, _ := g.gw.tenants.registry.Tenant("acme")
	before := t0.Value.(*view).t
	if !g.gw.forgetTenant("acme") {
		t.Fatal("not removed")
	}
	if r := g.do(c, http.MethodGet, g.at("courses.acme")+"/", "Accept: application/json"); r.StatusCode != http.StatusNotFound {
		t.Fatalf("a removed tenant's host: %d", r.StatusCode)
	}
	g.clock.Advance(2 * time.Second)
	before.Since = g.clock.Now()
	if err := g.gw.serveTenant(before); err != nil {
		t.Fatal(err)
	}
	if r := g.do(c, http.MethodGet, g.at("courses.acme")+"/", "Accept: application/json"); r.StatusCode != http.StatusUnauthorized {
		t.Fatalf("a session of the tenant before: %d", r.StatusCode)
	}
	if r := g.do(g.via(), http.MethodGet, unused.URL, browser); r.StatusCode < 400 {
		t.Fatalf("a link of the tenant before: %d", r.StatusCode)
	}
	g.signInVia(g.mint(MintRequest{Tenant: "acme", App: "courses", User: userOf("c_3")}).URL)
}

// A tenant added through the API is served at once, on its own hosts,
// and on every instance sharing the store once it looks; removed, its
// hosts serve nothing anywhere.
func TestTenantsAPI_AddedTenantIsServedHereAndOnEveryInstance(t *testing.T) {
	t.Parallel()
	open := sharedStore()
	one := newTestGateway(t, withTenants(), open)
	two := newTestGateway(t, withTenants(), open)
	body := func(g *testGateway) string {
		return `{"id":"gamma","name":"Gamma Yoga","portal":"` + g.at("portal.gamma") + `","apps":{"courses":"` + g.at("courses.gamma") +
			`"},"brand":{"color":"#7c3aed","support_email":"help@gamma.example","sender_name":"Gamma Yoga"}}`
	}
	// Both instances serve at their own ports here, so each names its own
	// hosts: the second adds its spelling once the first's is in.
	created := one.apiCall(http.MethodPost, "tenants", body(one), http.StatusCreated)
	if !strings.Contains(created, `"since":`) || !strings.Contains(created, "Gamma Yoga") {
		t.Fatalf("created: %s", created)
	}
	l := one.mint(MintRequest{Tenant: "gamma", App: "courses", User: userOf("c_g")})
	c := one.signInVia(l.URL)
	if h := web.Echoed(t, one.do(c, http.MethodGet, one.at("courses.gamma")+"/")); h.Get(identity.HeaderTenant) != "gamma" {
		t.Fatalf("gamma's app got %v", h)
	}
	// The other instance serves it once it looks at the store.
	if err := two.gw.SyncTenants(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, ok := two.gw.viewOf("gamma"); !ok {
		t.Fatal("the second instance does not serve gamma")
	}
	if r := two.api(http.MethodGet, "tenants/gamma", ""); r.StatusCode != http.StatusOK || !strings.Contains(r.Body, "help@gamma.example") {
		t.Fatalf("GET on the second instance: %d %s", r.StatusCode, r.Body)
	}
	list := one.apiCall(http.MethodGet, "tenants?limit=2", "", http.StatusOK)
	if !strings.Contains(list, `"id":"acme"`) || !strings.Contains(list, `"next":"beta"`) || strings.Contains(list, `"id":"gamma"`) {
		t.Fatalf("first page: %s", list)
	}
	if rest := one.apiCall(http.MethodGet, "tenants?after=beta", "", http.StatusOK); !strings.Contains(rest, `"id":"gamma"`) || strings.Contains(rest, "next") {
		t.Fatalf("second page: %s", rest)
	}
	one.apiCall(http.MethodDelete, "tenants/gamma", "", http.StatusOK)
	if r := one.do(c, http.MethodGet, one.at("courses.gamma")+"/", "Accept: application/json"); r.StatusCode != http.StatusNotFound {
		t.Fatalf("a removed tenant's host: %d", r.StatusCode)
	}
	if err := two.gw.SyncTenants(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, ok := two.gw.viewOf("gamma"); ok {
		t.Fatal("the second instance still serves gamma")
	}
}

// The tenants API refuses what it cannot serve, says why, and is the
// agency's: a tenant's own portal has none.
func TestTenantsAPI_RefusesWhatItCannotServe(t *testing.T) {
	t.Parallel()
	g := newTestGateway(t, withTenants())
	for name, c := range map[string]struct {
		method, route, body string
		status              int
		says                string
	}{
		"bad id":           {http.MethodPost, "tenants", `{"id":"a b","portal":"https://p.example"}`, 400, "location id"},
		"unknown field":    {http.MethodPost, "tenants", `{"id":"x","portal":"https://p.example","colour":"red"}`, 400, "unknown field"},
		"no portal":        {http.MethodPost, "tenants", `{"id":"x"}`, 400, "needs a URL"},
		"bad portal":       {http.MethodPost, "tenants", `{"id":"x","portal":"javascript:alert(1)"}`, 400, "absolute http(s) origin"},
		"bad colour":       {http.MethodPost, "tenants", `{"id":"x","portal":"https://p.example","brand":{"color":"red;"}}`, 400, "hex colour"},
		"since":            {http.MethodPost, "tenants", `{"id":"x","portal":"https://p.example","since":"2026-01-01T00:00:00Z"}`, 400, "gateway's to set"},
		"exists":           {http.MethodPost, "tenants", `{"id":"fresh","portal":"https://fresh.example"}`, 409, "exists already"},
		"another's host":   {http.MethodPost, "tenants", `{"id":"x","portal":"` + g.at("PORTAL.acme") + `"}`, 400, "another tenant's"},
		"default's host":   {http.MethodPost, "tenants", `{"id":"x","portal":"http://` + g.portal + `"}`, 400, "configuration's own sites"},
		"static":           {http.MethodDelete, "tenants/acme", ``, 409, "declared in the Caddyfile"},
		"static replaced":  {http.MethodPut, "tenants/acme", `{"portal":"https://p.example"}`, 409, "declared in the Caddyfile"},
		"unknown":          {http.MethodDelete, "tenants/nobody", ``, 404, "No tenant"},
		"ids differ":       {http.MethodPut, "tenants/fresh", `{"id":"other","portal":"https://p.example"}`, 400, "not the address's"},
		"limit":            {http.MethodGet, "tenants?limit=0", ``, 400, "limit is a number"},
		"unknown replaced": {http.MethodPut, "tenants/nobody", `{"portal":"https://p.example"}`, 404, "No tenant"},
	} {
		if name == "exists" {
			g.apiCall(http.MethodPost, "tenants", c.body, http.StatusCreated)
		}
		r := g.api(c.method, c.route, c.body)
		if r.StatusCode != c.status || !strings.Contains(r.Body, c.says) {
			t.Errorf("%s: %d %s; want %d saying %q", name, r.StatusCode, r.Body, c.status, c.says)
		}
	}
	// On a tenant's own portal, the tenants API is not there to call.
	r := web.Send(t, g.via(), http.MethodGet, g.at("portal.acme")+apiPrefix+"tenants", nil, "Authorization: Bearer "+testAPIKey)
	if r.StatusCode != http.StatusForbidden || !strings.Contains(r.Body, "agency") {
		t.Fatalf("the tenants API on acme's portal: %d %s", r.StatusCode, r.Body)
	}
}

// Agency users add and remove sub-accounts on the agency's dashboard, and
// open each one's dashboard from its row; a sub-account user sees none of
// it, and a tenant's dashboard changes none.
func TestSubaccounts_AgencyAddsOpensAndRemovesSubaccounts(t *testing.T) {
	t.Parallel()
	g := newTestGateway(t, withTenants(), withStaff())
	agency := g.staff("agency")
	page := agency.get(DashboardPath + "subaccounts")
	if page.StatusCode != http.StatusOK || !strings.Contains(page.Body, "Acme Coaching") || !strings.Contains(page.Body, `href="`+g.at("portal.acme")+`/dashboard/"`) ||
		!strings.Contains(page.Body, "set in the Caddyfile") {
		t.Fatalf("sub-accounts: %d %s", page.StatusCode, page.Body)
	}
	form := url.Values{"action": {"add"}, "id": {"gamma"}, "name": {"Gamma Yoga"}, "portal": {g.at("portal.gamma")},
		"apps": {"courses " + g.at("courses.gamma")}, "color": {"7c3aed"}}
	if r := agency.post(DashboardPath+"subaccounts", form); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("adding: %d %s", r.StatusCode, r.Body)
	}
	if r := agency.post(DashboardPath+"subaccounts", form); r.StatusCode != http.StatusConflict || !strings.Contains(r.Body, "exists already") {
		t.Fatalf("adding twice: %d %s", r.StatusCode, r.Body)
	}
	bad := url.Values{"action": {"add"}, "id": {"delta"}, "portal": {"ftp://x"}}
	if r := agency.post(DashboardPath+"subaccounts", bad); r.StatusCode != http.StatusBadRequest || !strings.Contains(r.Body, "absolute http(s) origin") || !strings.Contains(r.Body, `value="ftp://x"`) {
		t.Fatalf("a bad portal: %d %s", r.StatusCode, r.Body)
	}
	if v, ok := g.gw.viewOf("gamma"); !ok || v.look.Title != "Gamma Yoga" || v.Origin("courses") != g.at("courses.gamma") {
		t.Fatalf("gamma is not served: %v", ok)
	}
	ask := agency.post(DashboardPath+"subaccounts", url.Values{"action": {"remove"}, "id": {"gamma"}})
	if ask.StatusCode != http.StatusOK || !strings.Contains(ask.Body, "remove-confirm") {
		t.Fatalf("remove asks first: %d %s", ask.StatusCode, ask.Body)
	}
	if r := agency.post(DashboardPath+"subaccounts", url.Values{"action": {"remove"}, "id": {"gamma"}, "confirm": {"yes"}}); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("removing: %d %s", r.StatusCode, r.Body)
	}
	if _, ok := g.gw.viewOf("gamma"); ok {
		t.Fatal("gamma is still served")
	}
	if r := g.staff("sub").get(DashboardPath + "subaccounts"); r.StatusCode != http.StatusForbidden {
		t.Fatalf("a sub-account user: %d", r.StatusCode)
	}
	// On acme's dashboard the page lists, and changes nothing.
	onAcme := g.do(g.via(), http.MethodGet, g.at("portal.acme")+DashboardPath+"subaccounts", browser, basicAuth("agency", testStaff["agency"]))
	if onAcme.StatusCode != http.StatusOK || strings.Contains(onAcme.Body, "tenant-form") || !strings.Contains(onAcme.Body, "this dashboard") ||
		!strings.Contains(onAcme.Body, "Acme Coaching dashboard") {
		t.Fatalf("sub-accounts on acme's dashboard: %d %s", onAcme.StatusCode, onAcme.Body)
	}
}

// A host pattern gives the hosts a tenant names none of: a tenant without
// apps of its own has the configured ones there, titled as they are.
func TestTenants_HostPatternGivesTheHostsATenantNamesNoneOf(t *testing.T) {
	t.Parallel()
	g := newTestGateway(t, withTenants(), func(s *setup) {
		_, port, _ := net.SplitHostPort(s.router)
		s.cfg.HostPattern = "http://{app}.{tenant}.localhost:" + port
		s.cfg.Apps[0].Description = "Lessons"
		s.cfg.Tenants = append(s.cfg.Tenants, Tenant{ID: "delta", Name: "Delta Dance", Portal: tenantAt(s.router)("portal.delta")})
	})
	delta := g.view("delta")
	if got := delta.AppNames(); len(got) != 2 || got[0] != "courses" || got[1] != "communities" {
		t.Fatalf("delta's apps: %v", got)
	}
	if delta.Origin("courses") != g.at("courses.delta") || delta.apps["courses"].description != "Lessons" {
		t.Fatalf("delta's courses: %s %q", delta.Origin("courses"), delta.apps["courses"].description)
	}
	c := g.signInVia(g.mint(MintRequest{Tenant: "delta", App: "communities", User: userOf("c_d")}).URL)
	if h := web.Echoed(t, g.do(c, http.MethodGet, g.at("communities.delta")+"/")); h.Get(identity.HeaderTenant) != "delta" {
		t.Fatalf("delta's communities got %v", h)
	}
	// An id that cannot be a host's label names no host of the pattern.
	if _, err := g.gw.PutTenant(context.Background(), store.Tenant{ID: "loc_1", Portal: g.at("portal.loc1")}, false, "test"); err == nil || !strings.Contains(err.Error(), "give the tenant hosts of its own") {
		t.Fatalf("a tenant id with an underscore at the pattern: %v", err)
	}
	for _, bad := range []string{"{app}.{tenant}.example.com", "ftp://{tenant}.example.com", "https://{tenant}.example.com/x", "https://{tenant}.example.com:http"} {
		if err := (&tenants{}).parsePattern(bad); err == nil {
			t.Errorf("host_pattern %q accepted", bad)
		}
	}
}

// On a tenant's portal, the code step tells a contact of the tenant from
// a stranger nothing either: the stranger's decoy sign-in is the
// tenant's own, answered wrong code for wrong code alike.
func TestTenants_CodeStepOnATenantsPortalTellsKnownFromUnknownNothing(t *testing.T) {
	t.Parallel()
	g := newTestGateway(t, withTenants(), withOutbox(), withRateLimit(0))
	if err := g.store.PutContacts(context.Background(), []store.Contact{{ID: "c_acme_pat", Email: "pat@example.com", Name: "Pat", Location: "acme"}}); err != nil {
		t.Fatal(err)
	}
	portalURL := g.at("portal.acme")
	post := func(c *http.Client, path string, v url.Values) resp {
		return g.send(c, http.MethodPost, portalURL+path, strings.NewReader(v.Encode()), browser,
			"Content-Type: application/x-www-form-urlencoded", "Origin: "+portalURL)
	}
	ask := func(c *http.Client, address string) resp {
		form := g.do(c, http.MethodGet, portalURL+signInPath, browser)
		return post(c, signInPath, url.Values{"csrf": {web.CSRF(t, form.Body)}, "email": {address}})
	}
	known, unknown := g.via(), g.via()
	kp, up := ask(known, "pat@example.com"), ask(unknown, "nobody@example.com")
	g.mails("pat@example.com", 1)
	for try := 1; try <= 3; try++ {
		kr := post(known, signInCodePath, url.Values{"csrf": {web.CSRF(t, kp.Body)}, "code": {"000000"}})
		ur := post(unknown, signInCodePath, url.Values{"csrf": {web.CSRF(t, up.Body)}, "code": {"000000"}})
		if kr.StatusCode != ur.StatusCode || kr.StatusCode != http.StatusBadRequest {
			t.Fatalf("wrong code %d: known %d, unknown %d: %s", try, kr.StatusCode, ur.StatusCode, ur.Body)
		}
		kp, up = kr, ur
	}
}

// A sub-account user of a tenant has no default dashboard, and on the
// default portal the sessions of a tenant's people open nothing.
func TestTenants_DefaultPortalIsNotATenantsPeoples(t *testing.T) {
	t.Parallel()
	g := newTestGateway(t, withTenants(), withStaff(), func(s *setup) {
		s.cfg.Staff = append(s.cfg.Staff, Staff{Username: "acme-staff", Role: identity.SubaccountUser, Location: "acme"})
	})
	if r := g.staff("acme-staff").get(DashboardPath); r.StatusCode != http.StatusForbidden {
		t.Fatalf("acme's staff on the default dashboard: %d", r.StatusCode)
	}
	// A session begun on the default portal for someone of location
	// "gamma", which then becomes a tenant, opens nothing there.
	u := userOf("c_g")
	u.Location = "gamma"
	l := g.mint(MintRequest{App: "courses", User: u})
	before := web.SignIn(t, l.URL)
	if r := g.do(before, http.MethodGet, "http://"+g.courses+"/", "Accept: application/json"); r.StatusCode != http.StatusOK {
		t.Fatalf("before gamma is a tenant: %d", r.StatusCode)
	}
	if _, err := g.gw.PutTenant(context.Background(), store.Tenant{ID: "gamma", Portal: g.at("portal.gamma")}, false, "test"); err != nil {
		t.Fatal(err)
	}
	if r := g.do(before, http.MethodGet, "http://"+g.courses+"/", "Accept: application/json"); r.StatusCode != http.StatusUnauthorized {
		t.Fatalf("once gamma is a tenant: %d", r.StatusCode)
	}
}

// Two instances that each let a tenant take one host before either saw
// the other's (within a poll) agree, once they look at the store, on the
// tenant added first; a replace from an instance that has not seen a
// removal puts nothing back.
func TestTenantsAPI_InstancesAgreeOnAHostTwoTenantsTookAtOnce(t *testing.T) {
	t.Parallel()
	open := sharedStore()
	one := newTestGateway(t, open)
	two := newTestGateway(t, open)
	ctx := context.Background()
	if _, err := one.gw.PutTenant(ctx, store.Tenant{ID: "x", Portal: "https://portal.shared.example"}, false, "test"); err != nil {
		t.Fatal(err)
	}
	two.clock.Advance(time.Second)
	if _, err := two.gw.PutTenant(ctx, store.Tenant{ID: "y", Portal: "https://portal.shared.example"}, false, "test"); err != nil {
		t.Fatal(err)
	}
	for _, g := range []*testGateway{one, two} {
		if err := g.gw.SyncTenants(ctx); err != nil {
			t.Fatal(err)
		}
		h, ok := g.gw.tenants.registry.Lookup("portal.shared.example")
		if !ok || h.Tenant.ID != "x" {
			t.Fatalf("the shared host resolves to %+v, %v; want x, added first", h, ok)
		}
	}
	// Removed on one, replaced on the other before it looked: refused.
	one.apiCall(http.MethodDelete, "tenants/x", "", http.StatusOK)
	if r := two.api(http.MethodPut, "tenants/x", `{"portal":"https://portal.shared.example"}`); r.StatusCode != http.StatusConflict || !strings.Contains(r.Body, "another instance") {
		t.Fatalf("a replace of a removed tenant: %d %s", r.StatusCode, r.Body)
	}
}

// sharedStore is one memory store for every gateway a test starts with it,
// on the first one's clock: instances sharing their store.
func sharedStore() option {
	var shared store.Store
	return withStore(func(now func() time.Time) store.Store {
		if shared == nil {
			shared = memory.New(now)
		}
		return shared
	})
}

package gateway

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portalgate/portalgate/caddymodule/internal/assertion"
	"github.com/portalgate/portalgate/caddymodule/internal/identity"
	"github.com/portalgate/portalgate/caddymodule/internal/link"
	"github.com/portalgate/portalgate/caddymodule/internal/mail"
	"github.com/portalgate/portalgate/caddymodule/internal/ratelimit"
	"github.com/portalgate/portalgate/caddymodule/internal/session"
	"github.com/portalgate/portalgate/caddymodule/internal/store"
	"github.com/portalgate/portalgate/caddymodule/internal/store/memory"
	"github.com/portalgate/portalgate/caddymodule/internal/testkit/clock"
	"github.com/portalgate/portalgate/caddymodule/internal/testkit/web"
)

// The gateway tests serve each site (the portal, courses, communities) from
// its own httptest server, over real HTTP on loopback, with a fake clock and
// the memory store unless a test picks another. What the gate lets through
// reaches an upstream stand-in that answers with the headers it got. Every
// test builds its own gateway and runs in parallel.

const (
	testKey    = "test-signing-secret-0123456789-abcdef"
	testAPIKey = "test-api-key"
)

// Staff of the dashboard tests: name → password. The authenticator in front
// (basic auth, as Caddy's basic_auth would) signs them in; "stranger" passes
// it but is not staff.
var testStaff = map[string]string{"agency": "agency-pw", "sub": "sub-pw", "stranger": "stranger-pw", "acme-staff": "acme-pw"}

// testGateway is a running gateway with its three sites.
type testGateway struct {
	t                          testing.TB
	gw                         *Gateway
	store                      store.Store
	sessions                   *session.Manager
	clock                      *clock.Fake
	portal, courses, community string // host:port
	// sites are the handlers of the portal and the apps, by app name.
	sites        map[string]*Site
	upstreamHits atomic.Int32
	// outbox holds what the gateway mailed (withOutbox).
	outbox *mail.Outbox
	// router is the catch-all site of the tenants (withTenants): the
	// address every tenant host is served at, and what it told Caddy's
	// vars last.
	router   string
	lastVars atomic.Pointer[[2]string]
}

// setup is what a test changes before the gateway starts.
type setup struct {
	cfg   Config
	sites map[string]*SiteConfig
	// limit is the failure budget per client (failures per minute); 0 is off.
	limit int
	// open opens the store; nil is a fresh memory store.
	open func(now func() time.Time) store.Store
	// authenticator signs staff in with basic auth, as Caddy's basic_auth in
	// front of the dashboard does.
	authenticator bool
	// outbox is the mailer when set: sign-in by e-mail is on.
	outbox bool
	// router is the address of the tenants' catch-all site; routed starts
	// it (withTenants).
	router string
	routed bool
}

type option func(*setup)

// withStore serves from the store open returns (on the gateway's clock)
// instead of a fresh memory store.
func withStore(open func(now func() time.Time) store.Store) option {
	return func(s *setup) { s.open = open }
}

// withRateLimit sets the failure budget: n failures a minute per client; 0
// turns it off. Default: 10, the product's own default.
func withRateLimit(n int) option { return func(s *setup) { s.limit = n } }

// withSite configures the site of app.
func withSite(app string, cfg SiteConfig) option { return func(s *setup) { s.sites[app] = &cfg } }

// withStaff puts an authenticator in front of the dashboard and lists the
// agency user "agency" and the sub-account user "sub" of loc_a as staff.
func withStaff() option {
	return func(s *setup) {
		s.authenticator = true
		s.cfg.Staff = []Staff{{Username: "agency", Role: identity.AgencyUser},
			{Username: "sub", Role: identity.SubaccountUser, Location: "loc_a"}}
	}
}

// withoutAuthenticator leaves the dashboard with nothing in front that
// signs staff in.
func withoutAuthenticator() option { return func(s *setup) { s.authenticator = false } }

// withMenuLinks fixes menu items, as menu_link lines in the Caddyfile do.
func withMenuLinks(links ...MenuLink) option {
	return func(s *setup) { s.cfg.MenuLinks = append(s.cfg.MenuLinks, links...) }
}

// withOutbox gives the gateway a mailer: the outbox, which g.outbox reads.
func withOutbox() option {
	return func(s *setup) { s.outbox = true }
}

// withMailer gives the gateway a mailer of the test's own.
func withMailer(m mail.Sender) option {
	return func(s *setup) { s.cfg.Mailer = m }
}

// withoutAPIKeys turns the link API off.
func withoutAPIKeys() option { return func(s *setup) { s.cfg.APIKeys = nil } }

// newTestGateway starts a gateway and its sites; the test ends them.
func newTestGateway(t testing.TB, opts ...option) *testGateway {
	t.Helper()
	g := &testGateway{t: t, clock: clock.NewFake(), sites: map[string]*Site{}}
	servers := map[string]*httptest.Server{}
	for _, app := range []string{PortalName, "courses", "communities"} {
		srv := httptest.NewUnstartedServer(nil)
		t.Cleanup(srv.Close)
		servers[app] = srv
	}
	g.portal = servers[PortalName].Listener.Addr().String()
	g.courses = servers["courses"].Listener.Addr().String()
	g.community = servers["communities"].Listener.Addr().String()
	routerSrv := httptest.NewUnstartedServer(nil)
	t.Cleanup(routerSrv.Close)
	g.router = routerSrv.Listener.Addr().String()

	ring, err := link.NewRing(link.Key{ID: "test", Secret: []byte(testKey)})
	if err != nil {
		t.Fatal(err)
	}
	issuer := "http://" + g.portal
	akey := assertion.Key{ID: "ed-test", Private: ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, ed25519.SeedSize))}
	asserter, err := assertion.NewSigner(issuer, AssertionTTL, g.clock.Now, akey)
	if err != nil {
		t.Fatal(err)
	}
	s := &setup{limit: 10, sites: map[string]*SiteConfig{}, router: g.router}
	s.cfg = Config{
		Portal: issuer,
		Apps:   []AppURL{{Name: "courses", URL: "http://" + g.courses}, {Name: "communities", URL: "http://" + g.community}},
		Codec: &link.Codec{Ring: ring, Issuer: issuer, DefaultTTL: 15 * time.Minute, MaxTTL: 24 * time.Hour,
			Now: g.clock.Now},
		Asserter:   asserter,
		CSRFKey:    ring.Derive("csrf"),
		APIKeys:    [][sha256.Size]byte{sha256.Sum256([]byte(testAPIKey))},
		SessionTTL: 12 * time.Hour,
		LinkMaxTTL: 24 * time.Hour,
		Now:        g.clock.Now,
		Health:     HealthInfo{Backend: "memory"},
	}
	for _, o := range opts {
		o(s)
	}
	if s.open == nil {
		s.open = func(now func() time.Time) store.Store { return memory.New(now) }
	}
	g.store = s.open(g.clock.Now)
	s.cfg.Store, s.cfg.Directory, s.cfg.SignIns = g.store, g.store, g.store
	if s.outbox {
		g.outbox = mail.NewOutbox(100, g.clock.Now)
		s.cfg.Mailer, s.cfg.Outbox = g.outbox, g.outbox
	}
	if s.limit > 0 {
		if s.cfg.Limiter, err = ratelimit.New(s.limit, time.Minute, 100_000, g.clock.Now); err != nil {
			t.Fatal(err)
		}
	}
	if s.authenticator {
		s.cfg.AuthUser = func(r *http.Request) string {
			if name, pw, ok := r.BasicAuth(); ok && testStaff[name] == pw && pw != "" {
				return name
			}
			return ""
		}
	}
	if g.sessions, err = session.NewManager(s.cfg.Store, session.Config{TTL: s.cfg.SessionTTL, Idle: time.Hour,
		CacheMaxBytes: 1 << 20, Now: g.clock.Now}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(g.sessions.Close)
	s.cfg.Sessions = g.sessions
	if g.gw, err = New(s.cfg); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.gw.Close(context.Background()) })
	upstream := nextFunc(func(w http.ResponseWriter, r *http.Request) error {
		g.upstreamHits.Add(1)
		web.Echo(w, r)
		return nil
	})
	for app, srv := range servers {
		cfg := SiteConfig{}
		if c := s.sites[app]; c != nil {
			cfg = *c
		}
		site, err := g.gw.Site(app, cfg)
		if err != nil {
			t.Fatal(err)
		}
		g.sites[app] = site
		srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if err := site.ServeHTTP(w, r, upstream); err != nil {
				t.Errorf("%s %s: %v", r.Method, r.URL, err)
			}
		})
		srv.Start()
	}
	if s.routed {
		rt, err := g.gw.Router(SiteConfig{}, func(_ *http.Request, tenantID, app any) {
			g.lastVars.Store(&[2]string{tenantID.(string), app.(string)})
		})
		if err != nil {
			t.Fatal(err)
		}
		routerSrv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if err := rt.ServeHTTP(w, r, upstream); err != nil {
				t.Errorf("%s %s: %v", r.Method, r.URL, err)
			}
		})
		routerSrv.Start()
	}
	return g
}

// nextFunc is the handler after the gate.
type nextFunc func(http.ResponseWriter, *http.Request) error

func (f nextFunc) ServeHTTP(w http.ResponseWriter, r *http.Request) error { return f(w, r) }

// client is a browser-like client that shows every redirect.
func (g *testGateway) client() *http.Client { return web.Client() }

type resp = web.Response

// do sends one request; headers come as "Name: value" strings.
func (g *testGateway) do(c *http.Client, method, url string, headers ...string) resp {
	g.t.Helper()
	return web.Send(g.t, c, method, url, nil, headers...)
}

func (g *testGateway) send(c *http.Client, method, url string, body io.Reader, headers ...string) resp {
	g.t.Helper()
	return web.Send(g.t, c, method, url, body, headers...)
}

const browser = web.Browser

// mint mints a link, as the admin API does.
func (g *testGateway) mint(req MintRequest) MintResponse {
	g.t.Helper()
	out, err := g.gw.Mint(context.Background(), req, "admin")
	if err != nil {
		g.t.Fatalf("minting %+v: %v", req, err)
	}
	return out
}

// signIn redeems a fresh link for app and returns the client holding the session.
func (g *testGateway) signIn(app, userID string) *http.Client {
	g.t.Helper()
	return web.SignIn(g.t, g.mint(MintRequest{App: app, User: userOf(userID)}).URL)
}

// signInPortal returns a client signed in to the portal.
func (g *testGateway) signInPortal(userID string) *http.Client {
	g.t.Helper()
	return g.signIn(PortalName, userID)
}

// api calls the portal's API with the test API key.
func (g *testGateway) api(method, route, body string) resp {
	g.t.Helper()
	return web.API(g.t, g.portal, testAPIKey, method, route, body)
}

// apiCall is api that insists on a status, and returns the body.
func (g *testGateway) apiCall(method, route, body string, want int) string {
	g.t.Helper()
	return web.APICall(g.t, g.portal, testAPIKey, method, route, body, want)
}

// apiCallWithKey mints through the portal's API with key.
func apiCallWithKey(g *testGateway, key string) resp {
	g.t.Helper()
	return web.API(g.t, g.portal, key, http.MethodPost, "links", `{"app":"courses","user":{"id":"x"}}`)
}

func userOf(id string) identity.User {
	return identity.User{ID: id, Email: id + "@example.com", Name: "User " + id}
}

func jsonString(s string) string { b, _ := json.Marshal(s); return string(b) }

// Paths as a client names them.
const (
	apiLinksPath = apiPrefix + "links"
	apiMenuPath  = menuAPIPath
)

package gateway

import (
	"fmt"
	"net/http"
	"path"
	"strings"

	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/portalgate/portalgate/caddymodule/internal/identity"
	"github.com/portalgate/portalgate/caddymodule/internal/portal"
)

// Paths the gateway answers itself, on every gated site.
const (
	gatewayPrefix = "/_portalgate/"
	magicPath     = gatewayPrefix + "magic"
	jwksPath      = gatewayPrefix + "jwks.json"
	logoutPath    = gatewayPrefix + "logout"
	launchPrefix  = gatewayPrefix + "launch/"
	apiPrefix     = gatewayPrefix + "api/"
	menuAPIPath   = apiPrefix + "menu"
	// DashboardPath is the staff dashboard on the portal's site.
	DashboardPath = "/dashboard/"
)

// Redeem modes: when does opening a link spend it.
const (
	// RedeemAuto spends a link on GET: one click signs in.
	RedeemAuto = "auto"
	// RedeemConfirm shows a page with a Continue button on GET; only its
	// POST spends the link, so mail scanners that open links spend nothing.
	RedeemConfirm = "confirm"
)

// assertionCacheSize bounds the assertions kept for reuse, per site.
const assertionCacheSize = 100_000

// Next is the handler after the gate: what a site proxies to. Caddy's
// caddyhttp.Handler is one.
type Next interface {
	ServeHTTP(http.ResponseWriter, *http.Request) error
}

// SiteConfig is how one site serves its app.
type SiteConfig struct {
	// RedeemMode is RedeemAuto or RedeemConfirm. Default: RedeemAuto.
	RedeemMode string
	// Assertion adds a signed identity assertion to every request let through.
	Assertion bool
}

// Site gates one site: it redeems magic links for its app, turns session
// cookies into identity headers, and sends everyone else to sign in. On the
// portal's site it also serves the portal home, launches, the link API and
// the dashboard.
type Site struct {
	g          *Gateway
	app        *servedApp
	redeemMode string
	routes     *table[siteHandler]
	// assertions reuses a session's assertion while it has most of its life
	// left: signing costs tens of microseconds, a lookup far less. A plain
	// LRU (expiry checked on read): it starts no goroutine a reload leaks.
	assertions *lru.Cache[string, cachedAssertion]
	// The gate's counters, resolved once: the hot path only adds.
	gatedOK, gatedNoSession, gatedStoreError prometheus.Counter
	csp, dashboardCSP                        string
	// imgSrc and cspRest build csp (cspWithImages).
	imgSrc, cspRest string
	// frameAncestors is added to every response of the app: it may be
	// framed by the portal (menu items open in an iframe) and itself only.
	frameAncestors string
}

// siteHandler serves one route of a site; hit is that route, with the
// values of its pattern.
type siteHandler func(s *Site, w http.ResponseWriter, r *http.Request, hit routeHit) error

// Site builds the handler of the site that serves app ("portal" or a
// declared app).
func (g *Gateway) Site(app string, cfg SiteConfig) (*Site, error) {
	t := g.apps[app]
	switch {
	case g.portal == nil:
		return nil, fmt.Errorf("portalgate %s: no default portal is configured (portal https://...); a site of the tenants takes a portalgate directive without an app", app)
	case t == nil:
		return nil, fmt.Errorf("portalgate %s: no such app; declare it in the global portalgate block (app %s https://...)", app, app)
	}
	ts := g.tenants
	ts.mu.Lock()
	twice := ts.served[app]
	ts.served[app] = true
	ts.mu.Unlock()
	if twice {
		// Two handlers of one app would split its routes and gate twice,
		// or gate one site and leave the other open.
		return nil, fmt.Errorf("portalgate %s: the app is served by two portalgate handlers; serve each app from one site, with one portalgate directive", app)
	}
	return g.newSite(app, cfg)
}

// siteMode is cfg's redeem mode, its default filled in.
func siteMode(cfg SiteConfig) (string, error) {
	switch cfg.RedeemMode {
	case "":
		return RedeemAuto, nil
	case RedeemAuto, RedeemConfirm:
		return cfg.RedeemMode, nil
	}
	return "", fmt.Errorf("portalgate: redeem must be auto or confirm, not %q", cfg.RedeemMode)
}

// newSite builds the site of app, one of g's.
func (g *Gateway) newSite(app string, cfg SiteConfig) (*Site, error) {
	t := g.apps[app]
	mode, err := siteMode(cfg)
	if err != nil {
		return nil, err
	}
	s := &Site{g: g, app: t, redeemMode: mode}
	gated := g.metrics.Gated
	s.gatedOK = gated.WithLabelValues(app, "ok")
	s.gatedNoSession = gated.WithLabelValues(app, "no_session")
	s.gatedStoreError = gated.WithLabelValues(app, "store_error")
	if cfg.Assertion {
		if s.assertions, err = lru.New[string, cachedAssertion](assertionCacheSize); err != nil {
			return nil, err
		}
	}
	// Gateway pages run no script, load nothing, post only to themselves
	// (an app's sign-out is then redirected on to the portal, and a portal
	// sign-in on to the app, which form-action covers too), and may be
	// framed by the portal alone (menu items show apps in an iframe).
	formAction := "'self'"
	if !s.isPortal() {
		formAction += " " + g.portal.origin
	} else {
		// A portal form may end in an app: the sign-in code, or Continue
		// on a portal link, signs in and launches on (form-action holds
		// for every redirect after the post).
		for _, name := range g.appNames {
			formAction += " " + g.apps[name].origin
		}
	}
	s.imgSrc = "'self' data:"
	if logo := g.look.Logo; logo != "" {
		// The portal's logo, at the top of its pages.
		s.imgSrc += " " + originOf(logo)
	}
	if s.isPortal() {
		// The portal home shows the apps' icons.
		s.imgSrc += g.iconSources()
	}
	s.cspRest = "; form-action " + formAction + "; base-uri 'none'; frame-ancestors " + g.portal.origin
	s.csp = s.cspWithImages("")
	s.frameAncestors = "frame-ancestors 'self' " + g.portal.origin
	if s.isPortal() {
		// The dashboard runs its one script (Copy), and its Open buttons post
		// to itself and are redirected on into the apps.
		origins := []string{"'self'"}
		for _, name := range g.appNames {
			origins = append(origins, g.apps[name].origin)
		}
		s.dashboardCSP = "default-src 'none'; style-src " + portal.StyleHash + "; script-src " + portal.ScriptHash +
			"; img-src 'self' data:; form-action " + strings.Join(origins, " ") + "; base-uri 'none'; frame-ancestors 'none'"
	}
	s.routes = routesOf(s.isPortal())
	return s, nil
}

func (s *Site) isPortal() bool { return s.app.name == PortalName }

// styleSrc is the pages' style sources: the style sheet and, for a
// brand of its own colour, the portal's look.
func (g *Gateway) styleSrc() string {
	if g.lookHash == "" {
		return portal.StyleHash
	}
	return portal.StyleHash + " " + g.lookHash
}

// cspWithImages is the pages' Content-Security-Policy, with more image
// sources (each after a space): the custom links' icons on the portal home.
func (s *Site) cspWithImages(more string) string {
	return "default-src 'none'; style-src " + s.g.styleSrc() + "; img-src " + s.imgSrc + more + s.cspRest
}

// siteRoutes are the two route tables, the portal's and an app's: they
// name handlers of any Site, so every site of a kind shares one.
var siteRoutes [2]table[siteHandler]

func init() { siteRoutes = [2]table[siteHandler]{routeTable(false), routeTable(true)} }

// routesOf is the route table of a portal's site or an app's.
func routesOf(portal bool) *table[siteHandler] {
	if portal {
		return &siteRoutes[1]
	}
	return &siteRoutes[0]
}

// routeTable is what this kind of site serves. Every site: redemption,
// sign-out, the assertion keys. The portal also: its home, launches, the
// menu API, the link API and the dashboard.
func routeTable(portal bool) table[siteHandler] {
	const get, head, post, options = http.MethodGet, http.MethodHead, http.MethodPost, http.MethodOptions
	var t table[siteHandler]
	t.on(magicPath, (*Site).redeem, get, head, post)
	t.on(magicPath, (*Site).options, options)
	t.on(logoutPath, (*Site).logout, get, head, post)
	t.on(jwksPath, (*Site).jwks, get, head)
	if portal {
		t.on("/", (*Site).home, get, head)
		t.on(signInPath, (*Site).signInForm, get, head)
		t.on(signInPath, (*Site).askForSignIn, post)
		t.on(signInCodePath, (*Site).signInWithCode, post)
		t.on(launchPrefix+"{app}", (*Site).launch, get)
		t.on(menuAPIPath, (*Site).menuAPI, get, head)
		// The link API has its own table (shared with Caddy's admin API),
		// behind the API key.
		t.on(apiPrefix+"{call...}", (*Site).api, anyMethod)
		dashboardRoutes(&t)
	}
	return t
}

// ServeHTTP strips client-sent identity, then serves the site's own routes
// or, for everything else, the gate in front of the app.
func (s *Site) ServeHTTP(w http.ResponseWriter, r *http.Request, next Next) error {
	identity.StripHeaders(r.Header)
	if identity.InTrailer(r) {
		s.fail(w, r, problemBadHeaders)
		return nil
	}
	identity.GuardTrailers(r)
	m, _ := s.routes.lookup(r.Method, r.URL.Path, false)
	if strings.HasPrefix(r.URL.Path, DashboardPath) {
		// A dashboard address may name a record whose id holds "/" (a
		// contact's, escaped as %2F): its segments are unescaped one by one.
		// Dashboard requests are few; the gated ones keep the in-place read.
		m, _ = s.routes.lookup(r.Method, r.URL.EscapedPath(), true)
	}
	switch {
	case m.ok:
		if err := m.handler(s, w, r, m.hit); err != nil {
			s.answer(w, r, err)
		}
		return nil
	case m.found:
		s.fail(w, r, methodNotAllowed(m.hit.allow))
		return nil
	case strings.HasPrefix(r.URL.Path, gatewayPrefix), underGateway(r.URL.Path):
		s.fail(w, r, problemNotFound)
		return nil
	}
	return s.gate(w, r, next)
}

// underGateway reports whether p is a gateway address once cleaned
// (//_portalgate/magic, /x/../_portalgate/magic): such a path is the
// gateway's, never an app's, and never sent on to sign in with its token.
func underGateway(p string) bool {
	if !strings.Contains(p, "_portalgate") {
		return false
	}
	c := path.Clean(p)
	return c == strings.TrimSuffix(gatewayPrefix, "/") || strings.HasPrefix(c, gatewayPrefix)
}

// options answers OPTIONS with what the address takes.
func (s *Site) options(w http.ResponseWriter, _ *http.Request, hit routeHit) error {
	noStore(w)
	w.Header().Set("Allow", hit.allow)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// jwks serves the public keys of identity assertions (RFC 7517).
// faviconPath is where browsers look for a site's icon.
const faviconPath = "/favicon.ico"

// icon answers with the portal's icon: its brand colour behind a keyhole.
func (s *Site) icon(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "image/svg+xml")
	// Only a signed-out browser gets it: a signed-in one gets the app's.
	w.Header().Set("Cache-Control", "private, max-age=3600")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	_, _ = w.Write(s.g.icon) //nolint:gosec // our own SVG, from a checked hex colour
}

func (s *Site) jwks(w http.ResponseWriter, _ *http.Request, _ routeHit) error {
	w.Header().Set("Content-Type", "application/jwk-set+json")
	w.Header().Set("Cache-Control", "public, max-age=300")
	_, _ = w.Write(s.g.cfg.Asserter.JWKS()) //nolint:gosec // our public keys, as JSON
	return nil
}

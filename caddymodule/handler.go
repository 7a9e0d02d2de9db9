package caddymodule

import (
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/portalgate/portalgate/caddymodule/internal/session"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/portalgate/portalgate/caddymodule/internal/portal"
)

// assertionCacheSize bounds the assertions kept for reuse, per site.
const assertionCacheSize = 100_000

func init() {
	caddy.RegisterModule(Handler{})
}

// Paths the gateway answers itself, on every gated site.
const (
	gatewayPrefix = "/_portalgate/"
	magicPath     = gatewayPrefix + "magic"
	jwksPath      = gatewayPrefix + "jwks.json"
	logoutPath    = gatewayPrefix + "logout"
	launchPrefix  = gatewayPrefix + "launch/"
	apiPrefix     = gatewayPrefix + "api/"
	apiLinksPath  = apiPrefix + "links"
	apiMenuPath   = apiPrefix + "menu"
)

// Handler gates one site: it redeems magic links for its app, turns session
// cookies into identity headers, and sends everyone else to sign in. On the
// portal's site it also serves the portal home, app launches and the link API.
type Handler struct {
	// App is the app this site serves: a name declared in the portalgate
	// app, or "portal". Required.
	App string `json:"app"`

	// Redeem is when opening a link spends it: "auto" on GET, or "confirm"
	// only after the person presses Continue on a page (safe from mail
	// scanners that open links). Default: auto.
	Redeem string `json:"redeem,omitempty"`

	// Assertion adds X-Portal-Assertion to every request it lets through: an
	// Ed25519 JWT (aud = this app, 60 s) with the identity, verifiable with
	// the keys at /_portalgate/jwks.json. Default: false.
	Assertion bool `json:"assertion,omitempty"`

	// assertions reuses a session's assertion while it has most of its life
	// left: signing costs tens of microseconds, a lookup far less. A plain
	// LRU (expiry checked on read): it starts no goroutine a reload leaks.
	assertions *lru.Cache[string, cachedAssertion]
	// The gate's counters, resolved once: the hot path only adds.
	gatedOK, gatedNoSession, gatedStoreError prometheus.Counter
	app                                      *App
	csp                                      string
	dashboardCSP                             string
	// frameAncestors is added to every response of the app: it may be
	// framed by the portal (menu items open in an iframe) and itself only.
	frameAncestors string
	target         *target
	portal         bool
	logger         *zap.Logger
}

// CaddyModule returns the Caddy module information.
func (Handler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.portalgate",
		New: func() caddy.Module { return new(Handler) },
	}
}

// Provision finds the portalgate app and the declared app this site serves.
func (h *Handler) Provision(ctx caddy.Context) error {
	h.logger = ctx.Logger()
	v, err := ctx.App("portalgate")
	if err != nil {
		return fmt.Errorf("loading the portalgate app: %w", err)
	}
	return h.setup(v.(*App))
}

// setup binds the handler to the app and builds its private state.
func (h *Handler) setup(app *App) error {
	h.app = app
	h.target = h.app.targets[h.App]
	if h.target == nil {
		return fmt.Errorf("portalgate %s: no such app; declare it in the global portalgate block (app %s https://...)", h.App, h.App)
	}
	h.portal = h.App == PortalName
	h.gatedOK = h.app.metrics.gated.WithLabelValues(h.App, "ok")
	h.gatedNoSession = h.app.metrics.gated.WithLabelValues(h.App, "no_session")
	h.gatedStoreError = h.app.metrics.gated.WithLabelValues(h.App, "store_error")
	switch h.Redeem {
	case "":
		h.Redeem = RedeemAuto
	case RedeemAuto, RedeemConfirm:
	default:
		return fmt.Errorf("portalgate %s: redeem must be auto or confirm, not %q", h.App, h.Redeem)
	}
	if h.Assertion {
		var err error
		if h.assertions, err = lru.New[string, cachedAssertion](assertionCacheSize); err != nil {
			return err
		}
	}
	// Gateway pages run no script, load nothing, post only to themselves, and
	// may be framed by the portal alone (menu items show apps in an iframe).
	portalOrigin := h.app.targets[PortalName].origin
	h.csp = "default-src 'none'; style-src " + portal.StyleHash + "; img-src 'self' data:; form-action 'self'; base-uri 'none'; frame-ancestors " +
		portalOrigin
	h.frameAncestors = "frame-ancestors 'self' " + portalOrigin
	if h.portal {
		// The dashboard runs its one script (Copy), and its Open buttons post
		// to itself and are redirected on into the apps.
		origins := []string{"'self'"}
		for _, name := range h.app.appNames() {
			origins = append(origins, h.app.targets[name].origin)
		}
		h.dashboardCSP = "default-src 'none'; style-src " + portal.StyleHash + "; script-src " + portal.ScriptHash +
			"; img-src 'self' data:; form-action " + strings.Join(origins, " ") + "; base-uri 'none'; frame-ancestors 'none'"
	}
	return nil
}

// ServeHTTP strips client-sent identity, then dispatches: gateway paths,
// the portal home, or the gate in front of the app.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	stripIdentityHeaders(r.Header)
	if identityTrailer(r) {
		return h.fail(w, r, problemBadHeaders)
	}
	path := r.URL.Path
	switch {
	case path == magicPath:
		return h.redeem(w, r)
	case path == logoutPath:
		return h.logout(w, r)
	case path == jwksPath:
		return h.jwks(w, r)
	case h.portal && path == apiMenuPath:
		return h.menuAPI(w, r)
	case h.portal && strings.HasPrefix(path, apiPrefix):
		// The escaped path: a user id may hold "/" or "%", decoded once, later.
		return h.api(w, r, strings.TrimPrefix(r.URL.EscapedPath(), apiPrefix))
	case h.portal && strings.HasPrefix(path, launchPrefix):
		return h.launch(w, r, strings.TrimPrefix(path, launchPrefix))
	case strings.HasPrefix(path, gatewayPrefix):
		return h.fail(w, r, problemNotFound)
	case h.portal && path == "/":
		return h.home(w, r)
	case h.portal && strings.HasPrefix(path+"/", dashboardPath):
		return h.dashboard(w, r)
	}
	return h.gate(w, r, next)
}

// Interface guards.
var (
	_ caddy.Provisioner           = (*Handler)(nil)
	_ caddyhttp.MiddlewareHandler = (*Handler)(nil)
)

// jwks serves the public keys of identity assertions (RFC 7517).
func (h *Handler) jwks(w http.ResponseWriter, r *http.Request) error {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return h.fail(w, r, problemMethod)
	}
	w.Header().Set("Content-Type", "application/jwk-set+json")
	w.Header().Set("Cache-Control", "public, max-age=300")
	_, err := w.Write(h.app.asserter.JWKS())
	return err
}

// cachedAssertion is a signed assertion and until when it is reused.
type cachedAssertion struct {
	token string
	until time.Time
}

// assertion returns the signed identity assertion for a session, reusing
// one while at least half its life is left.
func (h *Handler) assertion(id string, s *session.Entry) (string, error) {
	now := h.app.now()
	if c, ok := h.assertions.Get(id); ok && now.Before(c.until) {
		return c.token, nil
	}
	tok, exp, err := h.app.asserter.Sign(h.App, s.User)
	if err != nil {
		return "", err
	}
	h.assertions.Add(id, cachedAssertion{token: tok, until: exp.Add(-assertionTTL / 2)})
	return tok, nil
}

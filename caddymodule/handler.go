package caddymodule

import (
	"fmt"
	"net/http"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/portalgate/portalgate/caddymodule/internal/gateway"
)

func init() {
	caddy.RegisterModule(Handler{})
}

// Redeem modes: when does opening a link spend it.
const (
	// RedeemAuto spends a link on GET: one click signs in.
	RedeemAuto = gateway.RedeemAuto
	// RedeemConfirm shows a page with a Continue button on GET; only its
	// POST spends the link, so mail scanners that open links spend nothing.
	RedeemConfirm = gateway.RedeemConfirm
)

// Handler gates one site: it redeems magic links for its app, turns session
// cookies into identity headers, and sends everyone else to sign in. On the
// portal's site it also serves the portal home, app launches, the link API
// and the dashboard. The work is the gateway's; the handler is its config.
type Handler struct {
	// AppName is the app this site serves: a name declared in the
	// portalgate app, or "portal". Empty: the site serves every tenant's
	// sites, by host, and sets the vars portalgate_tenant and
	// portalgate_app for the matchers that route each app to its upstream.
	AppName string `json:"app,omitempty"`

	// RedeemMode is when opening a link spends it: "auto" on GET, or
	// "confirm" only after the person presses Continue on a page (safe from
	// mail scanners that open links). Default: auto.
	RedeemMode string `json:"redeem,omitempty"`

	// Assertion adds X-Portal-Assertion to every request it lets through: an
	// Ed25519 JWT (aud = this app, 60 s) with the identity, verifiable with
	// the keys at /_portalgate/jwks.json. Default: false.
	Assertion bool `json:"assertion,omitempty"`

	site     *gateway.Site
	router   *gateway.Router
	requests *inFlight
}

// The vars a catch-all site sets: {http.vars.portalgate_app} and the vars
// matcher route each app to its upstream.
const (
	VarApp    = "portalgate_app"
	VarTenant = "portalgate_tenant"
)

// setVars tells Caddy's matchers whose site a request is: the vars map
// read once, as caddyhttp.SetVar would read it for each.
func setVars(r *http.Request, tenantID, app any) {
	if vars, ok := r.Context().Value(caddyhttp.VarsCtxKey).(map[string]any); ok {
		vars[VarTenant], vars[VarApp] = tenantID, app
	}
}

// CaddyModule returns the Caddy module information.
func (Handler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.portalgate",
		New: func() caddy.Module { return new(Handler) },
	}
}

// Provision finds the portalgate app and builds this site's part of its
// gateway.
func (h *Handler) Provision(ctx caddy.Context) error {
	v, err := ctx.App("portalgate")
	if err != nil {
		return fmt.Errorf("loading the portalgate app: %w", err)
	}
	return h.join(v.(*App))
}

// join builds this site's part of app's gateway.
func (h *Handler) join(app *App) (err error) {
	h.requests = app.requests
	cfg := gateway.SiteConfig{RedeemMode: h.RedeemMode, Assertion: h.Assertion}
	if h.AppName == "" {
		h.router, err = app.gateway.Router(cfg, setVars)
		return err
	}
	h.site, err = app.gateway.Site(h.AppName, cfg)
	return err
}

// ServeHTTP hands the request to the gateway, which serves its own routes
// and passes everything else through the gate to next.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	h.requests.enter()
	defer h.requests.leave()
	if h.router != nil {
		return h.router.ServeHTTP(w, r, next)
	}
	return h.site.ServeHTTP(w, r, next)
}

// Interface guards.
var (
	_ caddy.Provisioner           = (*Handler)(nil)
	_ caddyhttp.MiddlewareHandler = (*Handler)(nil)
)

package caddymodule

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"github.com/caddyserver/caddy/v2"

	"github.com/portalgate/portalgate/caddymodule/internal/gateway"
	"github.com/portalgate/portalgate/caddymodule/internal/store"
)

func init() {
	caddy.RegisterModule(AdminAPI{})
}

// adminPrefix is where the link API lives on Caddy's admin endpoint.
const adminPrefix = "/portalgate/"

// AdminAPI is admin.api.portalgate: the link API on Caddy's admin endpoint,
// without an API key (the admin endpoint is local and guarded like the rest
// of Caddy's configuration). The CLI uses it.
type AdminAPI struct{}

// CaddyModule returns the Caddy module information.
func (AdminAPI) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "admin.api.portalgate",
		New: func() caddy.Module { return new(AdminAPI) },
	}
}

// Routes returns the admin routes: POST /portalgate/links,
// DELETE /portalgate/links/{id}, POST /portalgate/users/{id}/revoke and
// GET /portalgate/health.
func (AdminAPI) Routes() []caddy.AdminRoute {
	return []caddy.AdminRoute{{Pattern: adminPrefix, Handler: caddy.AdminHandlerFunc(serveAdmin)}}
}

func serveAdmin(w http.ResponseWriter, r *http.Request) error {
	app, err := runningApp()
	if err != nil {
		return caddy.APIError{HTTPStatus: http.StatusNotFound, Err: err}
	}
	gw := app.gateway
	route := strings.TrimPrefix(r.URL.EscapedPath(), adminPrefix)
	if route == "health" && r.Method == http.MethodGet {
		gw.ServeHealth(w, r)
		return nil
	}
	if r.URL.RawQuery != "" {
		route += "?" + r.URL.RawQuery
	}
	status, body, err := gw.CallAPI(context.WithoutCancel(r.Context()), "admin_api", r.Method, route, http.MaxBytesReader(w, r.Body, gateway.MaxAPIBody))
	var p *gateway.Problem
	switch {
	case errors.As(err, &p):
		return caddy.APIError{HTTPStatus: p.Status, Err: errors.New(p.Detail)}
	case err != nil:
		return caddy.APIError{HTTPStatus: http.StatusServiceUnavailable, Err: err}
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	return json.NewEncoder(w).Encode(body)
}

// runningApp returns the portalgate app of the running config.
func runningApp() (*App, error) {
	v, err := caddy.ActiveContext().AppIfConfigured("portalgate")
	if err != nil || v == nil {
		return nil, errors.New("the running config has no portalgate app")
	}
	return v.(*App), nil
}

// RunningStore returns the store of the running config, for a tool in the
// same process (the load harness) that signs links with the config's key
// and keeps their grants there, as a mint does.
func RunningStore() (store.Store, error) {
	a, err := runningApp()
	if err != nil {
		return nil, err
	}
	return a.store, nil
}

// Interface guards.
var _ caddy.AdminRouter = AdminAPI{}

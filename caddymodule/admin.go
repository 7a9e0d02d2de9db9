package caddymodule

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/caddyserver/caddy/v2"
)

func init() {
	caddy.RegisterModule(AdminAPI{})
}

// AdminAPI is admin.api.portalgate: the local, key-less way to mint links
// (the CLI uses it), protected like the rest of Caddy's admin endpoint.
type AdminAPI struct{}

// CaddyModule returns the Caddy module information.
func (AdminAPI) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "admin.api.portalgate",
		New: func() caddy.Module { return new(AdminAPI) },
	}
}

// Routes returns the admin routes.
func (AdminAPI) Routes() []caddy.AdminRoute {
	return []caddy.AdminRoute{
		{Pattern: "/portalgate/links", Handler: caddy.AdminHandlerFunc(mintFromAdmin)},
	}
}

// mintFromAdmin is POST /portalgate/links: the same JSON as the link API.
func mintFromAdmin(w http.ResponseWriter, r *http.Request) error {
	if r.Method != http.MethodPost {
		return caddy.APIError{HTTPStatus: http.StatusMethodNotAllowed, Err: errors.New("method not allowed: use POST")}
	}
	app, err := runningApp()
	if err != nil {
		return err
	}
	req, err := decodeMintRequest(http.MaxBytesReader(w, r.Body, maxMintBody))
	if err != nil {
		return caddy.APIError{HTTPStatus: http.StatusBadRequest, Err: err}
	}
	resp, err := app.Mint(req)
	if errors.Is(err, errInput) {
		return caddy.APIError{HTTPStatus: http.StatusBadRequest, Err: err}
	}
	if err != nil {
		return caddy.APIError{HTTPStatus: http.StatusInternalServerError, Err: err}
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusCreated)
	return json.NewEncoder(w).Encode(resp)
}

// runningApp returns the portalgate app of the running config.
func runningApp() (*App, error) {
	v, err := caddy.ActiveContext().AppIfConfigured("portalgate")
	if err != nil || v == nil {
		return nil, caddy.APIError{
			HTTPStatus: http.StatusNotFound,
			Err:        fmt.Errorf("the running config has no portalgate app"),
		}
	}
	return v.(*App), nil
}

// Interface guards.
var _ caddy.AdminRouter = AdminAPI{}

package caddymodule

import (
	"context"
	"fmt"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddytls"
)

func init() {
	caddy.RegisterModule(Permission{})
}

// Permission lets on-demand TLS obtain certificates for the hosts of the
// tenants the gateway serves, and for no other name: a tenant added
// through the API gets its certificates at its first handshake, and a
// removed one no new ones. Module ID: tls.permission.portalgate.
//
//	{
//		on_demand_tls {
//			permission portalgate
//		}
//	}
type Permission struct {
	app *App
}

// CaddyModule returns the Caddy module information.
func (Permission) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "tls.permission.portalgate",
		New: func() caddy.Module { return new(Permission) },
	}
}

// Provision finds the portalgate app of the same config.
func (p *Permission) Provision(ctx caddy.Context) error {
	v, err := ctx.App("portalgate")
	if err != nil {
		return fmt.Errorf("the portalgate permission needs the portalgate app: %w", err)
	}
	p.app = v.(*App)
	return nil
}

// CertificateAllowed implements caddytls.OnDemandPermission: a host some
// tenant's portal or app has, in any spelling, or caddytls's
// ErrPermissionDenied. It reads the registry's snapshot, without a lock.
func (p *Permission) CertificateAllowed(_ context.Context, name string) error {
	if !p.app.gateway.ServesHost(name) {
		return fmt.Errorf("%s: %w: no tenant has this host", name, caddytls.ErrPermissionDenied)
	}
	return nil
}

// UnmarshalCaddyfile sets up the permission from `permission portalgate`,
// which takes nothing more.
func (p *Permission) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // the module's name
	if d.NextArg() || d.NextBlock(0) {
		return d.Err("permission portalgate takes no arguments: it allows the hosts of the tenants")
	}
	return nil
}

// Interface guards.
var (
	_ caddy.Provisioner           = (*Permission)(nil)
	_ caddytls.OnDemandPermission = (*Permission)(nil)
	_ caddyfile.Unmarshaler       = (*Permission)(nil)
)

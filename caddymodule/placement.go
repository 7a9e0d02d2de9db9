package caddymodule

import (
	"fmt"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// checkPlacement refuses a portalgate handler that would gate only part of
// its site: inside a `handle` or `route` block with a matcher, next to
// other `handle` blocks that take some requests instead, or under a site
// address with a path. The rest of the site, and the gateway's own
// /_portalgate/ routes (a magic link among them), would reach whatever
// comes next, ungated.
func checkPlacement(ctx caddy.Context) error {
	v, err := ctx.AppIfConfigured("http")
	if err != nil {
		return nil // no HTTP app: no handler to check
	}
	for name, srv := range v.(*caddyhttp.App).Servers {
		if err := checkRoutes(srv.Routes, 0, false); err != nil {
			return fmt.Errorf("portalgate: server %s: %w", name, err)
		}
	}
	return nil
}

// checkRoutes walks routes at a depth of subroutes; narrowed says that a
// route around them already lets only some requests in.
func checkRoutes(routes caddyhttp.RouteList, depth int, narrowed bool) error {
	for i, r := range routes {
		in := narrowed || narrows(r, depth) || sharesGroup(routes, i)
		for _, h := range r.Handlers {
			switch h := h.(type) {
			case *Handler:
				if in {
					return fmt.Errorf("portalgate %s sits inside a handle or route block that takes only some of the site's requests "+
						"(a matcher, a site address with a path, or other handle blocks beside it): the rest would not be gated; "+
						"put the portalgate directive at the top level of the site block", h.AppName)
				}
			case *caddyhttp.Subroute:
				if err := checkRoutes(h.Routes, depth+1, in); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// narrows reports whether a route lets only some requests in: any matcher
// does, except the host matcher of a site (a top-level route).
func narrows(r caddyhttp.Route, depth int) bool {
	for _, set := range r.MatcherSets {
		for _, m := range set {
			switch m.(type) {
			case caddyhttp.MatchHost, *caddyhttp.MatchHost:
				if depth == 0 {
					continue
				}
			}
			return true
		}
	}
	return false
}

// sharesGroup reports whether another route of routes is in route i's
// group: of a group only the first route that matches runs, so each takes
// requests from the others.
func sharesGroup(routes caddyhttp.RouteList, i int) bool {
	if routes[i].Group == "" {
		return false
	}
	for j, r := range routes {
		if j != i && r.Group == routes[i].Group {
			return true
		}
	}
	return false
}

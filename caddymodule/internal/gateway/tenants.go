package gateway

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/portalgate/portalgate/caddymodule/internal/store"

	"github.com/portalgate/portalgate/caddymodule/internal/identity"
	"github.com/portalgate/portalgate/caddymodule/internal/portal"
	"github.com/portalgate/portalgate/caddymodule/internal/tenant"
)

// Tenant is a sub-account as the configuration or the tenants API declares
// it: its own portal and apps on hosts of their own, its own brand, its own
// contacts, links, staff and custom links. Its id is the location id of its
// people: a contact or sub-account user of location acme is tenant acme's.
type Tenant struct {
	ID, Name string
	// Portal is the public origin of the tenant's portal; "" takes it from
	// the host pattern.
	Portal string
	// Apps are its apps. An app without a URL takes it from the host
	// pattern; one named as a configured app shows as that one does. No
	// apps at all: the configured apps, at the host pattern's hosts (with
	// no pattern, none).
	Apps  []AppURL
	Brand portal.Brand
	// Since is when the tenant was added: the sessions and links of an
	// earlier tenant of its id, removed since, open nothing of this one.
	Since time.Time
	// Static marks a tenant of the configuration, which only a new
	// configuration changes.
	Static bool
}

// tenants are the sub-accounts the gateway serves besides the default
// one, and the catch-all sites that serve them.
type tenants struct {
	registry *tenant.Registry
	// pattern and scheme give the URLs of sites a tenant names no URL of.
	pattern      *tenant.Pattern
	scheme, port string
	// mu orders the changes of tenants and of routers.
	mu      sync.Mutex
	routers []*Router
	// served are the default tenant's apps a site serves by name, so that
	// none is served twice (two sites, or two handlers in one site).
	served map[string]bool
	// root is the default tenant's gateway, which holds the rest.
	root *Gateway
	// changing orders the changes through the API with the syncs from the
	// store, so that a sync never undoes a change it did not read.
	changing sync.Mutex
	// seen is the store's count of tenant changes at the last sync, once
	// synced.
	seen   atomic.Int64
	synced atomic.Bool
	// stopPoll ends the polling of the store.
	stopPoll context.CancelFunc
}

// view is one tenant as the gateway serves it. It holds what the tenant
// is (its URLs filled in), and builds at its first use what serving it
// takes: its gateway (the root's shared parts, its own apps and brand) and
// the sites each catch-all router serves it with, by app name, each built
// at its first request. Most of thousands of tenants are idle at any
// moment, and an idle one costs its hosts and this. A view never changes
// once the registry holds it; a change of the tenant is a new view.
type view struct {
	t Tenant
	// stored is the tenant as the store keeps it; nil for a tenant of the
	// configuration.
	stored *store.Tenant
	// id is t.ID as Caddy's vars hold it, boxed once.
	id    any
	root  *Gateway
	once  sync.Once
	built *builtView
	err   error
}

// builtView is what serving a tenant takes, built at its first use.
type builtView struct {
	g *Gateway
	// sites are each router's, one for each app: a scan of a handful of
	// names is quicker than a map's hash.
	sites [][]*lazySite
}

// site is router i's site of app.
func (b *builtView) site(i int, app string) *lazySite {
	for _, l := range b.sites[i] {
		if l.app == app {
			return l
		}
	}
	return nil
}

// serving is what serving v takes, built at its first use (the tenant was
// checked when the view was made: building it again fails only if that
// check was wrong).
func (v *view) serving() (*builtView, error) {
	v.once.Do(func() {
		g, err := v.root.tenantGateway(v.t)
		if err != nil {
			v.err = err
			return
		}
		ts := v.root.tenants
		ts.mu.Lock()
		routers := slices.Clone(ts.routers)
		ts.mu.Unlock()
		b := &builtView{g: g}
		for _, rt := range routers {
			sites := make([]*lazySite, 0, len(g.apps))
			for name := range g.apps {
				sites = append(sites, &lazySite{g: g, app: name, name: name, cfg: rt.cfg})
			}
			b.sites = append(b.sites, sites)
		}
		v.built = b
	})
	return v.built, v.err
}

// gateway is the tenant's gateway.
func (v *view) gateway() (*Gateway, bool) {
	b, err := v.serving()
	if err != nil {
		v.root.log.Error("serving a tenant", zap.String("tenant", v.t.ID), zap.Error(err))
		return nil, false
	}
	return b.g, true
}

func (g *Gateway) startTenants() error {
	ts := &tenants{registry: tenant.NewRegistry(), served: make(map[string]bool), root: g}
	g.tenants = ts
	if g.cfg.HostPattern != "" {
		if err := ts.parsePattern(g.cfg.HostPattern); err != nil {
			return err
		}
	}
	seen := map[string]bool{}
	for _, t := range g.cfg.Tenants {
		if seen[t.ID] {
			return fmt.Errorf("portalgate: tenant %s is declared twice", t.ID)
		}
		seen[t.ID] = true
		t.Static = true
		if err := g.serveTenant(t); err != nil {
			return err
		}
	}
	// The stored tenants are served from the start; a store that cannot
	// be read now is read again at the next poll.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := g.SyncTenants(ctx); err != nil {
		g.log.Error("reading the tenants", zap.Error(err))
	}
	return nil
}

// startPolling polls the store for tenants changed on other instances,
// from the first catch-all site on (without one no tenant is served);
// ts.mu is held.
func (g *Gateway) startPolling() {
	ts := g.tenants
	if g.cfg.TenantPoll <= 0 || ts.stopPoll != nil {
		return
	}
	var poll context.Context
	poll, ts.stopPoll = context.WithCancel(context.Background())
	go g.pollTenants(poll, g.cfg.TenantPoll)
}

// stopTenants ends the polling of the store.
func (g *Gateway) stopTenants() {
	ts := g.tenants
	if ts == nil {
		return
	}
	ts.mu.Lock()
	stop := ts.stopPoll
	ts.mu.Unlock()
	if stop != nil {
		stop()
	}
}

// root is the default tenant's gateway.
func (g *Gateway) root() *Gateway { return g.tenants.root }

// viewOf is the gateway of tenant id, "" naming the default tenant.
func (g *Gateway) viewOf(id string) (*Gateway, bool) {
	if id == "" {
		return g.root(), true
	}
	t, ok := g.tenants.registry.Tenant(id)
	if !ok {
		return nil, false
	}
	return t.Value.(*view).gateway()
}

// ownsLocation reports whether people of location are this tenant's: a
// named tenant's are those of its id; the default tenant's all the others.
func (g *Gateway) ownsLocation(location string) bool {
	if g.tenant != "" {
		return location == g.tenant
	}
	_, other := g.tenants.registry.Tenant(location)
	return location == "" || !other
}

// serveTenant checks t, a tenant of the configuration, and puts its view
// in the registry: from then on its hosts resolve to it. A change of a
// tenant replaces its view whole.
func (g *Gateway) serveTenant(t Tenant) error {
	v, err := g.root().newView(t, nil)
	if err != nil {
		return err
	}
	return g.putView(v)
}

// putView puts a checked view in the registry.
func (g *Gateway) putView(v *view) error {
	ts := g.tenants
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return ts.registry.Put(v.registered())
}

// serveStoredAll serves stored tenants in one change of the registry (a
// start with thousands of them is one snapshot, not one per tenant), or,
// when one of them cannot be served, each on its own, and says which
// could not.
func (g *Gateway) serveStoredAll(sts []store.Tenant) map[string]error {
	failed := map[string]error{}
	regs := make([]tenant.Tenant, 0, len(sts))
	for i := range sts {
		v, err := g.root().newView(g.tenantOf(sts[i]), &sts[i])
		if err != nil {
			failed[sts[i].ID] = err
			continue
		}
		regs = append(regs, v.registered())
	}
	ts := g.tenants
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if ts.registry.PutAll(regs) == nil {
		return failed
	}
	for _, r := range regs {
		err := ts.registry.Put(r)
		if errors.Is(err, tenant.ErrHostTaken) && ts.winsHosts(r) {
			// Two instances each let a tenant take one host within a poll:
			// every instance gives it to the first added of them.
			for _, h := range ts.registry.Holders(r) {
				ts.registry.Remove(h.ID)
				failed[h.ID] = fmt.Errorf("%w by tenant %s, added before it", tenant.ErrHostTaken, r.ID)
			}
			err = ts.registry.Put(r)
		}
		if err != nil {
			failed[r.ID] = err
		}
	}
	return failed
}

// winsHosts reports whether r, a stored tenant, was added before every
// stored tenant holding a host of its (then by id); a tenant of the
// configuration always keeps its hosts.
func (ts *tenants) winsHosts(r tenant.Tenant) bool {
	mine := r.Value.(*view)
	for _, h := range ts.registry.Holders(r) {
		theirs := h.Value.(*view)
		if theirs.stored == nil || theirs.t.Since.Before(mine.t.Since) ||
			(theirs.t.Since.Equal(mine.t.Since) && theirs.t.ID < mine.t.ID) {
			return false
		}
	}
	return true
}

// forgetTenant stops serving tenant id: its hosts resolve to nothing.
func (g *Gateway) forgetTenant(id string) bool {
	ts := g.tenants
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return ts.registry.Remove(id)
}

// newView is root's view of t (stored as stored, nil for a tenant of the
// configuration), its URLs filled in, once t is checked: its gateway
// builds.
func (g *Gateway) newView(t Tenant, stored *store.Tenant) (*view, error) {
	t, err := g.completeTenant(t)
	if err != nil {
		return nil, err
	}
	// Built to check it, and let go: it is built again at its first use.
	if _, err := g.tenantGateway(t); err != nil {
		return nil, err
	}
	return &view{t: t, stored: stored, id: t.ID, root: g}, nil
}

// completeTenant is t with the URLs the host pattern gives, and its apps
// titled as the configuration's of their names.
func (g *Gateway) completeTenant(t Tenant) (Tenant, error) {
	if t.ID == "" {
		return t, errors.New("portalgate: a tenant needs an id (its location id)")
	}
	where := func(err error) error { return fmt.Errorf("portalgate: tenant %s: %w", t.ID, err) }
	var err error
	if t.Portal, err = g.tenants.siteURL(t.ID, PortalName, t.Portal); err != nil {
		return t, where(err)
	}
	apps := t.Apps
	if len(apps) == 0 && g.tenants.pattern != nil && g.tenants.pattern.NamesApps() {
		// No apps of its own: the configured ones, at the pattern's hosts.
		for _, name := range g.appNames {
			apps = append(apps, AppURL{Name: name})
		}
	}
	t.Apps = make([]AppURL, 0, len(apps))
	for _, a := range apps {
		if known := g.apps[a.Name]; known != nil && a.Name != PortalName {
			// An app of the configuration's name shows as it does.
			a.Title, a.Description, a.Icon = cmp.Or(a.Title, known.title), cmp.Or(a.Description, known.description), cmp.Or(a.Icon, known.icon)
		}
		if a.URL, err = g.tenants.siteURL(t.ID, a.Name, a.URL); err != nil {
			return t, where(err)
		}
		t.Apps = append(t.Apps, a)
	}
	return t, nil
}

// tenantGateway is root's gateway of complete tenant t: root's shared
// parts, t's apps and brand.
func (g *Gateway) tenantGateway(t Tenant) (*Gateway, error) {
	where := func(err error) error { return fmt.Errorf("portalgate: tenant %s: %w", t.ID, err) }
	brand := t.Brand
	brand.Title = cmp.Or(t.Name, brand.Title, t.ID)
	mails, err := g.cfg.Mails.WithBrand(brand)
	if err != nil {
		return nil, where(err)
	}
	v := *g
	v.cfg.Portal, v.cfg.Apps, v.cfg.MenuLinks, v.cfg.Mails = t.Portal, t.Apps, nil, mails
	v.tenant, v.since = t.ID, t.Since
	v.appNames = nil
	if err := v.buildApps(); err != nil {
		return nil, where(err)
	}
	v.fixedMenu = nil
	v.icon = portal.Icon(mails.Brand().Color)
	v.look, v.lookHash = portal.NewLook(mails.Brand())
	// No tenant takes a host of the default tenant's sites.
	for _, name := range append([]string{PortalName}, v.appNames...) {
		host := hostOf(v.apps[name].origin)
		for _, own := range g.apps {
			if hostOf(own.origin) == host {
				return nil, where(fmt.Errorf("%w: %s is a host of the configuration's own sites", tenant.ErrHostTaken, host))
			}
		}
	}
	return &v, nil
}

// parsePattern reads host_pattern: a scheme, the host pattern, and
// perhaps a port (https://{app}.{tenant}.portals.example.com[:8443]).
func (ts *tenants) parsePattern(raw string) error {
	bad := fmt.Errorf("portalgate: host_pattern %q must be a URL such as https://{app}.{tenant}.portals.example.com", raw)
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok || (scheme != "http" && scheme != "https") || strings.ContainsAny(rest, "/?#@") {
		return bad
	}
	host, port := rest, ""
	if i := strings.LastIndexByte(rest, ':'); i >= 0 {
		host, port = rest[:i], rest[i:]
		if _, err := strconv.ParseUint(port[1:], 10, 16); err != nil {
			return bad
		}
	}
	p, err := tenant.ParsePattern(host)
	if err != nil {
		return fmt.Errorf("portalgate: %w", err)
	}
	ts.pattern, ts.scheme, ts.port = &p, scheme, port
	return nil
}

// siteURL is the URL of app's site of tenant id: raw when given, else the
// host pattern's.
func (ts *tenants) siteURL(id, app, raw string) (string, error) {
	if raw != "" {
		return raw, nil
	}
	if ts.pattern == nil {
		return "", fmt.Errorf("%s needs a URL (or the configuration a host_pattern)", app)
	}
	host, err := ts.pattern.Host(id, app)
	if err != nil {
		return "", err
	}
	return ts.scheme + "://" + host + ts.port, nil
}

// hostOf is the host of an origin, normalised ("" when it has none).
func hostOf(origin string) string {
	u, err := url.Parse(origin)
	if err != nil {
		return ""
	}
	host, err := tenant.Normalize(u.Host)
	if err != nil {
		return strings.ToLower(u.Hostname())
	}
	return host
}

// registered is v as the registry holds it: its hosts, and v itself.
func (v *view) registered() tenant.Tenant {
	t := tenant.Tenant{ID: v.t.ID, Name: v.t.Name, Portal: hostOf(v.t.Portal), Apps: make(map[string]string, len(v.t.Apps)), Value: v}
	for _, a := range v.t.Apps {
		t.Apps[a.Name] = hostOf(a.URL)
	}
	return t
}

// lazySite is a tenant's site, built once, at its first request.
type lazySite struct {
	once sync.Once
	g    *Gateway
	app  string
	// name is app as Caddy's vars hold it, boxed once.
	name any
	cfg  SiteConfig
	site *Site
	err  error
}

func (l *lazySite) get() (*Site, error) {
	l.once.Do(func() { l.site, l.err = l.g.newSite(l.app, l.cfg) })
	return l.site, l.err
}

// Router is the catch-all site of the tenants: it resolves a request's
// host to its tenant and app and hands the request to that site, after
// vars learns which it is (Caddy's placeholders, for the matchers that
// route each app to its upstream). A host of no tenant is a plain 404,
// and a request whose TLS server name is another site's a 421.
type Router struct {
	tenants *tenants
	index   int
	cfg     SiteConfig
	vars    VarsFunc
}

// VarsFunc learns a request's tenant id and app name (strings, each boxed
// once per tenant, so that keeping them as Caddy's vars allocates
// nothing).
type VarsFunc func(r *http.Request, tenantID, app any)

// Router builds a catch-all site serving every tenant with cfg; vars, when
// set, learns each request's tenant and app before it is served.
func (g *Gateway) Router(cfg SiteConfig, vars VarsFunc) (*Router, error) {
	if _, err := siteMode(cfg); err != nil {
		return nil, err
	}
	ts := g.tenants
	ts.mu.Lock()
	defer ts.mu.Unlock()
	rt := &Router{tenants: ts, index: len(ts.routers), cfg: cfg, vars: vars}
	// Every view gains this router's sites: the registry is rebuilt with
	// the same tenants, each a view with one more set of sites.
	var views []tenant.Tenant
	for _, t := range ts.registry.All() {
		old := t.Value.(*view)
		// A view not yet built builds with every router; one built
		// already gives way to a new one, which does.
		v := &view{t: old.t, stored: old.stored, id: old.id, root: old.root}
		views = append(views, v.registered())
	}
	if err := ts.registry.PutAll(views); err != nil {
		return nil, err
	}
	ts.routers = append(ts.routers, rt)
	g.root().startPolling()
	return rt, nil
}

// ServeHTTP serves the request as its host's tenant site does.
func (rt *Router) ServeHTTP(w http.ResponseWriter, r *http.Request, next Next) error {
	site, v, lazy, status := rt.resolve(r)
	switch {
	case status != 0:
		identity.StripHeaders(r.Header)
		plain(w, status)
		return nil
	case site == nil:
		// The router's configuration was checked when it was built.
		_, err := v.serving()
		if err == nil {
			_, err = lazy.get()
		}
		return fmt.Errorf("serving tenant %s: %w", v.t.ID, err)
	}
	if rt.vars != nil {
		rt.vars(r, v.id, lazy.name)
	}
	return site.ServeHTTP(w, r, next)
}

// resolve finds the site of r's host: its tenant's view and site, or the
// status that answers a host of no tenant (404) or a Host of another site
// than the TLS server name (421). It is what the catch-all adds to the
// gated path.
func (rt *Router) resolve(r *http.Request) (*Site, *view, *lazySite, int) {
	h, ok := rt.tenants.registry.Lookup(r.Host)
	if !ok {
		return nil, nil, nil, http.StatusNotFound
	}
	if r.TLS != nil {
		// The certificate was chosen for the server name: a Host of
		// another site on that connection is misdirected (RFC 9110 15.5.20).
		if sni, ok := rt.tenants.registry.Lookup(r.TLS.ServerName); !ok || sni != h {
			return nil, nil, nil, http.StatusMisdirectedRequest
		}
	}
	v := h.Tenant.Value.(*view)
	b, err := v.serving()
	if err != nil {
		return nil, v, nil, 0
	}
	lazy := b.site(rt.index, h.App)
	if _, err := lazy.get(); err != nil {
		return nil, v, lazy, 0
	}
	return lazy.site, v, lazy, 0
}

// plain answers with status and its text, nothing else.
func plain(w http.ResponseWriter, status int) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = fmt.Fprintln(w, http.StatusText(status)) //nolint:gosec // a status text, as plain text
}

// ServesHost reports whether name (a TLS server name) is a host of a
// tenant's site: on-demand TLS obtains certificates for those alone.
func (g *Gateway) ServesHost(name string) bool {
	_, ok := g.tenants.registry.Lookup(name)
	return ok
}

// TenantOrigin is the origin of tenant id's portal ("" when no tenant has
// the id).
func (g *Gateway) TenantOrigin(id string) string {
	if v, ok := g.viewOf(id); ok {
		return v.portal.origin
	}
	return ""
}

// servesTenants reports whether tenants can be served: a catch-all site,
// or a tenant.
func (g *Gateway) servesTenants() bool {
	ts := g.tenants
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return len(ts.routers) > 0 || ts.registry.Len() > 0
}

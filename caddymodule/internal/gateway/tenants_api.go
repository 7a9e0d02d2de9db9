package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"time"

	"go.uber.org/zap"

	"github.com/portalgate/portalgate/caddymodule/internal/portal"
	"github.com/portalgate/portalgate/caddymodule/internal/store"
)

// The tenants API, on the default portal and Caddy's admin API (the
// agency's, never a tenant's own portal):
//
//	POST   tenants        add a tenant (JSON: store.Tenant without since) → 201
//	GET    tenants        list them, in id order (?after=<id>&limit=<n>)
//	GET    tenants/{id}   one tenant
//	PUT    tenants/{id}   replace it (its sessions and links stand)
//	DELETE tenants/{id}   remove it: its hosts serve nothing, its sessions
//	                      and links open nothing, on every instance
//
// A change is written to the store, which every instance sharing it
// polls (Config.TenantPoll), and served here at once.

var validTenantID = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// tenantOf is a stored tenant as the gateway serves it: its apps in the
// configuration's order, then by name.
func (g *Gateway) tenantOf(st store.Tenant) Tenant {
	t := Tenant{ID: st.ID, Name: st.Name, Portal: st.Portal, Since: st.Since,
		Brand: portal.Brand{Color: st.Brand.Color, Logo: st.Brand.Logo, Support: st.Brand.SupportEmail, Sender: st.Brand.SenderName}}
	names := slices.Sorted(maps.Keys(st.Apps))
	slices.SortStableFunc(names, func(a, b string) int { return g.appOrder(a) - g.appOrder(b) })
	for _, name := range names {
		t.Apps = append(t.Apps, AppURL{Name: name, URL: st.Apps[name]})
	}
	return t
}

// appOrder is where app stands among the configured apps (after them all
// when it is none of them).
func (g *Gateway) appOrder(app string) int {
	if i := slices.Index(g.root().appNames, app); i >= 0 {
		return i
	}
	return len(g.root().appNames)
}

// storedOf is how the tenants API shows t.
func storedOf(v *view) store.Tenant {
	if v.stored != nil {
		return *v.stored
	}
	st := store.Tenant{ID: v.t.ID, Name: v.t.Name, Portal: v.t.Portal, Apps: map[string]string{}, Since: v.t.Since,
		Brand: store.TenantBrand{Color: v.t.Brand.Color, Logo: v.t.Brand.Logo, SupportEmail: v.t.Brand.Support, SenderName: v.t.Brand.Sender}}
	for _, a := range v.t.Apps {
		st.Apps[a.Name] = a.URL
	}
	return st
}

// tenantView is the view of tenant id, if the gateway serves it.
func (g *Gateway) tenantView(id string) (*view, bool) {
	t, ok := g.tenants.registry.Tenant(id)
	if !ok {
		return nil, false
	}
	return t.Value.(*view), true
}

var (
	problemTenantsAgencyOnly = newProblem(http.StatusForbidden, "agency_only", "Agency only",
		"Sub-accounts are the agency's to manage: call the tenants API on the default portal or Caddy's admin API.", "", "")
	problemNoTenant = newProblem(http.StatusNotFound, "tenant_not_found", "No such sub-account", "No tenant has this id.", "", "")
)

func tenantExists(id string) *Problem {
	return &Problem{Status: http.StatusConflict, Code: "tenant_exists", Title: "The sub-account exists",
		Detail: fmt.Sprintf("tenant %q exists already: PUT /_portalgate/api/tenants/%s replaces it", id, id)}
}

func tenantStatic(id string) *Problem {
	return &Problem{Status: http.StatusConflict, Code: "tenant_static", Title: "Declared in the configuration",
		Detail: fmt.Sprintf("tenant %q is declared in the Caddyfile: change it there", id)}
}

// decodeTenant reads one tenant, known fields only.
func decodeTenant(body io.Reader) (store.Tenant, error) {
	var t store.Tenant
	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&t); err != nil {
		return t, badRequest(`body must be a tenant such as {"id":"acme","name":"Acme","portal":"https://portal.acme.example","apps":{"courses":"https://courses.acme.example"}}: ` + jsonError(err))
	}
	if dec.More() {
		return t, badRequest("body must hold exactly one JSON object")
	}
	if !t.Since.IsZero() {
		return t, badRequest("since is the gateway's to set")
	}
	return t, nil
}

func (g *Gateway) apiAddTenant(ctx context.Context, c apiCall) (int, any, error) {
	t, err := decodeTenant(c.body)
	if err != nil {
		return 0, nil, err
	}
	out, err := g.PutTenant(ctx, t, false, c.by)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusCreated, out, nil
}

func (g *Gateway) apiReplaceTenant(ctx context.Context, c apiCall) (int, any, error) {
	t, err := decodeTenant(c.body)
	if err != nil {
		return 0, nil, err
	}
	switch id := c.params["id"]; {
	case t.ID == "":
		t.ID = id
	case t.ID != id:
		return 0, nil, badRequest(fmt.Sprintf("the body's id %q is not the address's %q", t.ID, id))
	}
	out, err := g.PutTenant(ctx, t, true, c.by)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, out, nil
}

func (g *Gateway) apiTenant(_ context.Context, c apiCall) (int, any, error) {
	if g.tenant != "" {
		return 0, nil, problemTenantsAgencyOnly
	}
	v, ok := g.tenantView(c.params["id"])
	if !ok {
		return 0, nil, problemNoTenant
	}
	return http.StatusOK, storedOf(v), nil
}

func (g *Gateway) apiTenants(_ context.Context, c apiCall) (int, any, error) {
	if g.tenant != "" {
		return 0, nil, problemTenantsAgencyOnly
	}
	limit := store.DefaultLimit
	if raw := c.query.Get("limit"); raw != "" {
		n, err := strconv.Atoi(raw)
		if err != nil || n < 1 || n > store.MaxTenantsPage {
			return 0, nil, badRequest(fmt.Sprintf("limit is a number from 1 to %d", store.MaxTenantsPage))
		}
		limit = n
	}
	out := struct {
		Tenants []store.Tenant `json:"tenants"`
		// Next, when there may be more, is the after of the next page.
		Next string `json:"next,omitempty"`
	}{Tenants: []store.Tenant{}}
	page, next := g.tenantsPage(c.query.Get("after"), limit)
	for _, v := range page {
		out.Tenants = append(out.Tenants, storedOf(v))
	}
	out.Next = next
	return http.StatusOK, out, nil
}

// tenantsPage is a page of the tenants served, of one snapshot, in id
// order: at most limit of those after after, and the after of the next
// page ("" when this one is the last).
func (g *Gateway) tenantsPage(after string, limit int) ([]*view, string) {
	var page []*view
	for _, t := range g.tenants.registry.All() {
		if t.ID <= after {
			continue
		}
		if len(page) == limit {
			return page, page[limit-1].t.ID
		}
		page = append(page, t.Value.(*view))
	}
	return page, ""
}

func (g *Gateway) apiRemoveTenant(ctx context.Context, c apiCall) (int, any, error) {
	id := c.params["id"]
	if err := g.RemoveTenant(ctx, id, c.by); err != nil {
		return 0, nil, err
	}
	return http.StatusOK, map[string]string{"status": "removed", "id": id}, nil
}

// PutTenant adds t (replace false: a new id) or replaces the tenant of its
// id (replace true), serves it here at once and keeps it in the store for
// every instance. It answers with the tenant as stored.
func (g *Gateway) PutTenant(ctx context.Context, t store.Tenant, replace bool, by string) (store.Tenant, error) {
	if g.tenant != "" {
		return store.Tenant{}, problemTenantsAgencyOnly
	}
	if !validTenantID.MatchString(t.ID) {
		return store.Tenant{}, badRequest(fmt.Sprintf("id %q must be the location id: letters, digits, dashes and underscores, at most 64", t.ID))
	}
	g.tenants.changing.Lock()
	defer g.tenants.changing.Unlock()
	old, exists := g.tenantView(t.ID)
	switch {
	case exists && old.stored == nil:
		return store.Tenant{}, tenantStatic(t.ID)
	case exists && !replace:
		return store.Tenant{}, tenantExists(t.ID)
	case !exists && replace:
		return store.Tenant{}, problemNoTenant
	case exists:
		// A change of a tenant keeps its sessions and links.
		t.Since = old.stored.Since
	default:
		t.Since = g.now().UTC().Truncate(time.Microsecond)
	}
	// Checked first, then kept, then served: a tenant is served only once
	// the store holds it, for every instance.
	v, err := g.root().newView(g.tenantOf(t), &t)
	if err == nil {
		err = g.tenants.registry.Check(v.registered())
	}
	if err != nil {
		return store.Tenant{}, badRequest(err.Error())
	}
	if replace {
		err = g.cfg.Directory.ReplaceTenant(ctx, t)
	} else {
		err = g.cfg.Directory.AddTenant(ctx, t)
	}
	switch {
	case errors.Is(err, store.ErrConflict) && !replace:
		// Another instance added it first.
		return store.Tenant{}, tenantExists(t.ID)
	case errors.Is(err, store.ErrConflict), errors.Is(err, store.ErrNotFound):
		// Removed, or removed and added again, on another instance.
		return store.Tenant{}, &Problem{Status: http.StatusConflict, Code: "tenant_changed", Title: "Changed elsewhere",
			Detail: fmt.Sprintf("tenant %q was removed or added again on another instance: read it again", t.ID)}
	case err != nil:
		return store.Tenant{}, err
	}
	if err := g.putView(v); err != nil {
		return store.Tenant{}, err
	}
	g.audit.tenantChanged(by, t.ID, map[bool]string{false: "added", true: "replaced"}[exists])
	return t, nil
}

// RemoveTenant stops serving tenant id, here at once and, through the
// store, on every instance: its hosts serve nothing, and a tenant added
// again under its id is a new one.
func (g *Gateway) RemoveTenant(ctx context.Context, id, by string) error {
	if g.tenant != "" {
		return problemTenantsAgencyOnly
	}
	g.tenants.changing.Lock()
	defer g.tenants.changing.Unlock()
	v, ok := g.tenantView(id)
	switch {
	case !ok:
		return problemNoTenant
	case v.stored == nil:
		return tenantStatic(id)
	}
	if err := g.cfg.Directory.DeleteTenant(ctx, id); err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	g.forgetTenant(id)
	g.audit.tenantChanged(by, id, "removed")
	return nil
}

// SyncTenants brings the tenants served here to what the store holds, if
// it changed since the last look: every instance sharing the store calls
// it (Config.TenantPoll), so that a tenant added, changed or removed on
// one is so on all. A stored tenant that cannot be served here (its host
// another's) is logged and left out.
func (g *Gateway) SyncTenants(ctx context.Context) error {
	ts := g.tenants
	ts.changing.Lock()
	defer ts.changing.Unlock()
	n, err := g.cfg.Directory.TenantsChanged(ctx)
	if err != nil {
		return err
	}
	if ts.synced.Load() && ts.seen.Load() == n {
		return nil
	}
	stored := map[string]store.Tenant{}
	for after := ""; ; {
		page, err := g.cfg.Directory.Tenants(ctx, after, store.MaxTenantsPage)
		if err != nil {
			return err
		}
		if len(page) == 0 {
			// To the end: a page may come back short when a tenant goes
			// between its reads.
			break
		}
		for _, t := range page {
			stored[t.ID] = t
		}
		after = page[len(page)-1].ID
	}
	for _, t := range ts.registry.All() {
		if t.Value.(*view).stored != nil {
			if _, kept := stored[t.ID]; !kept {
				g.forgetTenant(t.ID)
			}
		}
	}
	var changed []store.Tenant
	for _, id := range slices.Sorted(maps.Keys(stored)) {
		st := stored[id]
		v, ok := g.tenantView(id)
		switch {
		case ok && v.stored == nil:
			continue // the configuration's own
		case ok && reflect.DeepEqual(*v.stored, st):
			continue
		}
		changed = append(changed, st)
	}
	// A tenant that cannot be served (its host another's, added before
	// it) is said once, not at every poll.
	for id, err := range g.serveStoredAll(changed) {
		g.log.Error("serving a stored tenant", zap.String("tenant", id), zap.Error(err))
	}
	ts.seen.Store(n)
	ts.synced.Store(true)
	return nil
}

// pollTenants syncs the tenants every interval until ctx ends.
func (g *Gateway) pollTenants(ctx context.Context, every time.Duration) {
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		sctx, cancel := context.WithTimeout(ctx, max(every, 5*time.Second))
		if err := g.SyncTenants(sctx); err != nil && ctx.Err() == nil {
			g.log.Warn("reading the tenants", zap.Error(err))
		}
		cancel()
	}
}

package gateway

import (
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"

	"github.com/portalgate/portalgate/caddymodule/internal/identity"
	"github.com/portalgate/portalgate/caddymodule/internal/store"
)

// Staff is a dashboard user: a username that an authenticator in front of
// the dashboard signs in, its role there, and for a sub-account user its
// location.
type Staff struct {
	Username string
	Role     identity.Type
	Location string
	// within is the tenant whose dashboard they are on (a tenant's
	// dashboard shows that tenant's records alone, to agency users too);
	// "" on the default tenant's.
	within string
}

// MenuLink is a custom menu item fixed by the configuration: Target is an
// absolute URL or app:NAME.
type MenuLink struct {
	Title, Target, Open string
	Roles               []identity.Type
}

// buildStaff checks the staff list and the configured menu links.
func (g *Gateway) buildStaff() error {
	g.staff = make(map[string]Staff, len(g.cfg.Staff))
	for _, s := range g.cfg.Staff {
		switch {
		case s.Username == "":
			return errors.New("portalgate: staff needs a username")
		case s.Role != identity.AgencyUser && s.Role != identity.SubaccountUser:
			return fmt.Errorf("portalgate: staff %s: role must be agency_user or subaccount_user, not %q", s.Username, s.Role)
		case s.Role == identity.SubaccountUser && s.Location == "":
			return fmt.Errorf("portalgate: staff %s: a subaccount_user needs its location (staff %s subaccount_user location <id>)", s.Username, s.Username)
		case s.Role == identity.AgencyUser && s.Location != "":
			return fmt.Errorf("portalgate: staff %s: an agency_user sees every location and takes none", s.Username)
		}
		if _, dup := g.staff[s.Username]; dup {
			return fmt.Errorf("portalgate: staff %s is listed twice", s.Username)
		}
		if err := s.user().Validate(); err != nil {
			return fmt.Errorf("portalgate: staff %s: %w", s.Username, err)
		}
		g.staff[s.Username] = s
	}
	g.fixedMenu = make([]store.MenuItem, 0, len(g.cfg.MenuLinks))
	for i, m := range g.cfg.MenuLinks {
		it := store.MenuItem{ID: fmt.Sprintf("config-%d", i+1), Title: m.Title, Open: m.Open, Roles: m.Roles}
		if name, ok := strings.CutPrefix(m.Target, "app:"); ok {
			it.App = name
		} else {
			it.URL = m.Target
		}
		if errs := g.checkMenuItem(&it); len(errs) > 0 {
			var msgs []string
			for _, field := range slices.Sorted(maps.Keys(errs)) {
				msgs = append(msgs, errs[field])
			}
			return fmt.Errorf("portalgate: menu_link %q: %s", m.Title, strings.Join(msgs, "; "))
		}
		g.fixedMenu = append(g.fixedMenu, it)
	}
	return nil
}

// user is the identity a staff member has in the apps they open.
func (s Staff) user() identity.User {
	return identity.User{ID: s.Username, Name: s.Username, Type: s.Role, Location: s.Location}
}

// sees reports whether s may see things of a location: an agency user sees
// every location, a sub-account user only its own, and on a tenant's
// dashboard everyone only the tenant's.
func (s Staff) sees(location string) bool {
	return s.home() == "" || location == s.home()
}

// home is the location whose records s works on: the tenant's on a
// tenant's dashboard, else a sub-account user's own; "" for an agency user
// on the default dashboard, who sees every location.
func (s Staff) home() string {
	switch {
	case s.within != "":
		return s.within
	case s.Role == identity.SubaccountUser:
		return s.Location
	}
	return ""
}

// staffOf returns the staff member the authenticator in front of the
// dashboard signed in: 401 when none did, 403 when they are not staff.
func (g *Gateway) staffOf(r *http.Request) (Staff, error) {
	name := g.authUser(r)
	if name == "" {
		return Staff{}, problemNoStaffAuth
	}
	s, ok := g.staff[name]
	if !ok {
		return Staff{}, problemNotStaff
	}
	return s, nil
}

package caddymodule

import (
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/caddyserver/caddy/v2"

	"github.com/portalgate/portalgate/caddymodule/internal/identity"
	"github.com/portalgate/portalgate/caddymodule/internal/store"
)

// Staff is a dashboard user: a username that an authenticator in front of
// the dashboard (Caddy's basic_auth, forward_auth, ...) signs in, and the
// role it has there.
type Staff struct {
	// Username is the authenticated user id ({http.auth.user.id}). Required.
	Username string `json:"username"`
	// Role is agency_user (every contact and link) or subaccount_user (only
	// those of its location). Required.
	Role identity.Type `json:"role"`
	// Location is the sub-account a subaccount_user belongs to. Required for
	// subaccount_user, refused for agency_user.
	Location string `json:"location,omitempty"`
}

// MenuLink is a custom menu item declared in the config: shown to everyone
// in its roles, and read-only on the dashboard.
type MenuLink struct {
	// Title is the text of the item. Required.
	Title string `json:"title"`
	// Target is an absolute http(s) URL, or app:NAME for a "magic" item that
	// opens a child app signed in. Required.
	Target string `json:"target"`
	// Open is iframe (inside the portal page), new_tab or current_tab.
	// Default: current_tab.
	Open string `json:"open,omitempty"`
	// Roles are the user types that see the item: contact, subaccount_user,
	// agency_user. Default: all three.
	Roles []identity.Type `json:"roles,omitempty"`
}

// Ways a menu item opens.
const (
	OpenIframe     = "iframe"
	OpenNewTab     = "new_tab"
	OpenCurrentTab = "current_tab"
)

var allRoles = []identity.Type{identity.Contact, identity.SubaccountUser, identity.AgencyUser}

// provisionStaff checks the staff list and the declared menu links.
func (a *App) provisionStaff() error {
	a.staff = make(map[string]Staff, len(a.Staff))
	for _, s := range a.Staff {
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
		if _, dup := a.staff[s.Username]; dup {
			return fmt.Errorf("portalgate: staff %s is listed twice", s.Username)
		}
		if err := s.user().Validate(); err != nil {
			return fmt.Errorf("portalgate: staff %s: %w", s.Username, err)
		}
		a.staff[s.Username] = s
	}
	a.fixedMenu = make([]store.MenuItem, 0, len(a.MenuLinks))
	for i, m := range a.MenuLinks {
		it := store.MenuItem{ID: fmt.Sprintf("config-%d", i+1), Title: m.Title, Open: m.Open, Roles: m.Roles}
		if name, ok := strings.CutPrefix(m.Target, "app:"); ok {
			it.App = name
		} else {
			it.URL = m.Target
		}
		if errs := a.checkMenuItem(&it); len(errs) > 0 {
			var msgs []string
			for _, field := range slices.Sorted(maps.Keys(errs)) {
				msgs = append(msgs, errs[field])
			}
			return fmt.Errorf("portalgate: menu_link %q: %s", m.Title, strings.Join(msgs, "; "))
		}
		a.fixedMenu = append(a.fixedMenu, it)
	}
	return nil
}

// user is the identity a staff member has in the apps they open.
func (s Staff) user() identity.User {
	return identity.User{ID: s.Username, Name: s.Username, Type: s.Role, Location: s.Location}
}

// sees reports whether s may see things of a location: an agency user sees
// every location, a sub-account user only its own.
func (s Staff) sees(location string) bool {
	return s.Role == identity.AgencyUser || location == s.Location
}

// staffOf returns the staff member the authenticator in front of the
// dashboard signed in: 401 when none did, 403 when they are not staff.
func (a *App) staffOf(r *http.Request) (Staff, *problem) {
	repl, _ := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
	var name string
	if repl != nil {
		name, _ = repl.GetString("http.auth.user.id")
	}
	if name == "" {
		return Staff{}, &problemNoStaffAuth
	}
	s, ok := a.staff[name]
	if !ok {
		return Staff{}, &problemNotStaff
	}
	return s, nil
}

// menuHost is a host[:port] a menu URL may name.
var menuHost = regexp.MustCompile(`^([A-Za-z0-9-]+\.)*[A-Za-z0-9-]+(:[0-9]{1,5})?$|^\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?$`)

// maxMenuTitle bounds a menu item's title, in characters.
const maxMenuTitle = 80

// checkMenuItem fills a menu item's defaults and returns what is wrong
// with it, by field.
func (a *App) checkMenuItem(it *store.MenuItem) map[string]string {
	errs := map[string]string{}
	it.Title = strings.TrimSpace(it.Title)
	switch n := utf8.RuneCountInString(it.Title); {
	case n == 0:
		errs["title"] = "A title is required."
	case n > maxMenuTitle:
		errs["title"] = fmt.Sprintf("A title has at most %d characters.", maxMenuTitle)
	}
	switch {
	case it.App != "" && it.URL != "":
		errs["target"] = "Choose an app or a URL, not both."
	case it.App != "":
		if t := a.targets[it.App]; t == nil || t.name == PortalName {
			errs["target"] = fmt.Sprintf("%q is not a declared app.", it.App)
		}
	case it.URL != "":
		u, err := url.Parse(it.URL)
		// The host goes into the portal page's CSP (frame-src): host
		// characters only, so it cannot add a directive.
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || !menuHost.MatchString(u.Host) || u.User != nil || len(it.URL) > 2048 {
			errs["target"] = "The URL must be an absolute http:// or https:// address."
		}
	default:
		errs["target"] = "Choose an app or enter a URL."
	}
	if it.Open == "" {
		it.Open = OpenCurrentTab
	}
	if it.Open != OpenIframe && it.Open != OpenNewTab && it.Open != OpenCurrentTab {
		errs["open"] = "Open in must be iframe, new_tab or current_tab."
	}
	if len(it.Roles) == 0 {
		it.Roles = slices.Clone(allRoles)
	}
	for _, r := range it.Roles {
		if !slices.Contains(allRoles, r) {
			errs["roles"] = fmt.Sprintf("Unknown role %q (want contact, subaccount_user or agency_user).", r)
		}
	}
	return errs
}

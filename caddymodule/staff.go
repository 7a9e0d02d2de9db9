package caddymodule

import (
	"github.com/portalgate/portalgate/caddymodule/internal/gateway"
	"github.com/portalgate/portalgate/caddymodule/internal/identity"
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
	OpenIframe     = gateway.OpenIframe
	OpenNewTab     = gateway.OpenNewTab
	OpenCurrentTab = gateway.OpenCurrentTab
)

// allRoles are the user types a menu item may be shown to.
var allRoles = []identity.Type{identity.Contact, identity.SubaccountUser, identity.AgencyUser}

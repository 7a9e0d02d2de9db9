package gateway

import (
	"cmp"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/portalgate/portalgate/caddymodule/internal/identity"
	"github.com/portalgate/portalgate/caddymodule/internal/portal"
	"github.com/portalgate/portalgate/caddymodule/internal/store"
)

// Ways a menu item opens.
const (
	OpenIframe     = "iframe"
	OpenNewTab     = "new_tab"
	OpenCurrentTab = "current_tab"
)

var allRoles = []identity.Type{identity.Contact, identity.SubaccountUser, identity.AgencyUser}

// menuHost is a host[:port] a menu URL may name.
var menuHost = regexp.MustCompile(`^([A-Za-z0-9-]+\.)*[A-Za-z0-9-]+(:[0-9]{1,5})?$|^\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?$`)

// maxMenuTitle bounds a menu item's title, in characters.
const maxMenuTitle = 80

// checkMenuItem fills a menu item's defaults and returns what is wrong
// with it, by field.
func (g *Gateway) checkMenuItem(it *store.MenuItem) map[string]string {
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
		if t := g.apps[it.App]; t == nil || t.name == PortalName {
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
	it.Icon = strings.TrimSpace(it.Icon)
	if it.Icon != "" && portal.CheckImageURL(it.Icon) != nil {
		errs["icon"] = "An icon is the https address of an image, or nothing."
	}
	if it.Open != OpenIframe && it.Open != OpenNewTab && it.Open != OpenCurrentTab {
		errs["open"] = "Open in must be iframe, new_tab or current_tab."
	}
	portalURL, _ := url.Parse(g.portal.origin) // checked when the gateway was built
	if u, err := url.Parse(it.URL); it.Open == OpenIframe && it.URL != "" && err == nil && originOfURL(u) == originOfURL(portalURL) {
		// The portal inside its own page, inside its own page...
		errs["open"] = "A page of the portal cannot open inside the portal: choose the same tab or a new tab."
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

var errMenuItemGone = errors.New("no such menu item")

// saveMenuItem is the change that adds it (no id yet) or replaces the item
// with its id. The id of a new item is chosen once, here: updateMenu may
// apply the change again to a fresher menu.
func saveMenuItem(it store.MenuItem) func([]store.MenuItem) ([]store.MenuItem, error) {
	isNew := it.ID == ""
	if isNew {
		it.ID = newMenuID()
	}
	return func(items []store.MenuItem) ([]store.MenuItem, error) {
		if isNew {
			return append(items, it), nil
		}
		i := slices.IndexFunc(items, func(x store.MenuItem) bool { return x.ID == it.ID })
		if i < 0 {
			return nil, errMenuItemGone
		}
		items[i] = it
		return items, nil
	}
}

// updateMenu applies change to the stored menu, again if another write came
// first: two staff members editing at once both keep their change.
func (g *Gateway) updateMenu(ctx context.Context, change func([]store.MenuItem) ([]store.MenuItem, error)) error {
	dir := g.cfg.Directory
	for range 8 {
		m, err := dir.Menu(ctx, g.tenant)
		if err != nil {
			return err
		}
		items, err := change(slices.Clone(m.Items))
		if err != nil {
			return err
		}
		if _, err = dir.SetMenu(ctx, g.tenant, items, m.Version); !errors.Is(err, store.ErrConflict) {
			return err
		}
	}
	return store.ErrConflict
}

// newMenuID names a menu item: random, so ids never clash across instances.
func newMenuID() string { return "m" + strings.ToLower(rand.Text()[:12]) }

// portalMenu is the menu a signed-in user sees: their apps and the custom
// links for their role, with magic items only for apps they may open.
type portalMenu struct {
	Apps  []menuApp  `json:"apps"`
	Links []menuLink `json:"links"`
}

type menuApp struct {
	Name  string `json:"name"`
	Title string `json:"title"`
	URL   string `json:"url"`
}

type menuLink struct {
	ID    string `json:"id"`
	Title string `json:"title"`
	URL   string `json:"url"`
	Open  string `json:"open"`
	// App is set for a magic item: URL launches it signed in.
	App string `json:"app,omitempty"`
	// Icon is the https URL of the item's image, when it has one.
	Icon string `json:"icon,omitempty"`
}

// menuFor builds the menu of a session's user. A magic item's URL is the
// portal's launch address: a one-time token is never written into a menu.
func (g *Gateway) menuFor(ctx context.Context, u identity.User, apps []string) (portalMenu, error) {
	m, err := g.cfg.Directory.Menu(ctx, g.tenant)
	if err != nil {
		return portalMenu{}, err
	}
	portalOrigin := g.portal.origin
	out := portalMenu{Apps: []menuApp{}, Links: []menuLink{}}
	for _, name := range g.appNames {
		if t := g.apps[name]; t.allowed(apps) {
			out.Apps = append(out.Apps, menuApp{Name: name, Title: t.title, URL: portalOrigin + launchPrefix + name})
		}
	}
	role := cmp.Or(u.Type, identity.Contact)
	for _, it := range slices.Concat(g.fixedMenu, m.Items) {
		if !slices.Contains(it.Roles, role) {
			continue
		}
		l := menuLink{ID: it.ID, Title: it.Title, URL: it.URL, Open: it.Open, Icon: it.Icon}
		if it.App != "" {
			t := g.apps[it.App]
			if t == nil || !t.allowed(apps) {
				continue
			}
			l.App, l.URL = it.App, portalOrigin+launchPrefix+it.App
		}
		out.Links = append(out.Links, l)
	}
	return out, nil
}

// menuAPI is GET /_portalgate/api/menu: the signed-in user's menu as JSON,
// for a portal front end that renders its own.
func (s *Site) menuAPI(w http.ResponseWriter, r *http.Request, _ routeHit) error {
	_, e, err := s.session(r)
	if err != nil {
		return noSession(err)
	}
	m, err := s.g.menuFor(r.Context(), e.User, e.Apps)
	if err != nil {
		return err
	}
	noStore(w)
	writeJSON(w, http.StatusOK, struct {
		User identity.User `json:"user"`
		portalMenu
	}{e.User, m})
	return nil
}

// originOfURL is u's origin as a browser compares it: scheme and host in
// lower case, a default port left out.
func originOfURL(u *url.URL) string {
	scheme, host := strings.ToLower(u.Scheme), strings.ToLower(u.Hostname())
	defaultPort := map[string]string{"https": "443", "http": "80"}[scheme]
	if p := u.Port(); p != "" && p != defaultPort {
		host += ":" + p
	}
	return scheme + "://" + host
}

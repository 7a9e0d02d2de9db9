package gateway

import (
	"errors"
	"maps"
	"net/http"
	"net/url"
	"slices"

	"github.com/portalgate/portalgate/caddymodule/internal/portal"
	"github.com/portalgate/portalgate/caddymodule/internal/session"
)

// home is the portal home: the apps the signed-in user may open. Sent here
// by an app with ?app=&next=, it launches the user straight back.
func (s *Site) home(w http.ResponseWriter, r *http.Request, _ routeHit) error {
	id, e, err := s.session(r)
	q := r.URL.Query()
	if errors.Is(err, session.ErrNoSession) && s.g.signIns != nil && wantsHTML(r) {
		// A person signed out signs in, and goes on to where they were going.
		noStore(w)
		to := signInPath
		if q.Get("app") != "" {
			to += "?" + url.Values{"app": {q.Get("app")}, "next": {q.Get("next")}}.Encode()
		}
		http.Redirect(w, r, s.app.origin+to, http.StatusSeeOther) //nolint:gosec // the configured origin and a checked path
		return nil
	}
	if err != nil {
		return noSession(err)
	}
	if t := s.g.apps[q.Get("app")]; t != nil && t.name != PortalName && t.allowed(e.Apps) {
		noStore(w)
		to := launchPrefix + t.name + "?" + url.Values{"next": {q.Get("next")}}.Encode()
		http.Redirect(w, r, s.app.origin+to, http.StatusSeeOther) //nolint:gosec // configured origins and our own values: the host only chose the site
		return nil
	}
	m, err := s.g.menuFor(r.Context(), e.User, e.Apps)
	if err != nil {
		return err
	}
	data := portal.Home{Portal: s.g.look, UserName: e.User.Name, UserEmail: e.User.Email, UserID: e.User.ID,
		CSRF: s.g.csrfToken("logout", id)}
	for _, a := range m.Apps {
		t := s.g.apps[a.Name]
		data.Apps = append(data.Apps, portal.AppEntry{Name: a.Name, Title: a.Title, LaunchURL: launchPrefix + a.Name,
			Description: t.description, Icon: t.icon})
	}
	frameSrc, icons := "", map[string]bool{}
	view := q.Get("view")
	for _, l := range m.Links {
		item := portal.MenuLink{ID: l.ID, Title: l.Title, Href: l.URL, Src: l.URL, Open: l.Open, Icon: l.Icon}
		if l.Icon != "" {
			icons[originOf(l.Icon)] = true
		}
		if l.App != "" {
			item.Href = launchPrefix + l.App
			item.Src = item.Href
			item.Magic = true
		}
		if l.Open == OpenIframe {
			item.Href = "/?" + url.Values{"view": {l.ID}}.Encode()
			if l.ID == view {
				data.Frame = &item
				frameSrc = "; frame-src " + s.g.frameSources(l)
			}
		}
		data.Links = append(data.Links, item)
	}
	var more string
	for _, o := range slices.Sorted(maps.Keys(icons)) {
		more += " " + o
	}
	csp := s.cspWithImages(more) + frameSrc
	noStore(w)
	s.pageWithCSP(w, http.StatusOK, "home.html", data, csp)
	return nil
}

// frameSources are the origins an iframe item may load: a magic item goes
// through the portal's launch to its app.
func (g *Gateway) frameSources(l menuLink) string {
	if l.App != "" {
		return "'self' " + g.apps[l.App].origin
	}
	return originOf(l.URL)
}

// originOf is the origin of an absolute URL, for a CSP source list.
func originOf(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	return u.Scheme + "://" + u.Host
}

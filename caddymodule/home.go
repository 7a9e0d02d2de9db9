package caddymodule

import (
	"errors"
	"net/http"
	"net/url"

	"go.uber.org/zap"

	"github.com/portalgate/portalgate/caddymodule/internal/link"
	"github.com/portalgate/portalgate/caddymodule/internal/portal"
	"github.com/portalgate/portalgate/caddymodule/internal/session"
)

// home is the portal home: the apps the signed-in user may open. Sent here
// by an app with ?app=&next=, it launches the user straight back.
func (h *Handler) home(w http.ResponseWriter, r *http.Request) error {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return h.fail(w, r, problemMethod)
	}
	id, s, err := h.session(r)
	if err != nil {
		return h.noSession(w, r, err)
	}
	q := r.URL.Query()
	if t := h.app.targets[q.Get("app")]; t != nil && t.name != PortalName && t.allowed(s.Apps) {
		noStore(w)
		to := launchPrefix + t.name + "?" + url.Values{"next": {q.Get("next")}}.Encode()
		http.Redirect(w, r, h.target.origin+to, http.StatusSeeOther)
		return nil
	}
	m, err := h.app.menuFor(r.Context(), s.User, s.Apps)
	if err != nil {
		return h.noSession(w, r, err)
	}
	data := portal.Home{UserName: s.User.Name, UserEmail: s.User.Email, UserID: s.User.ID,
		CSRF: h.app.csrfToken("logout", id)}
	for _, a := range m.Apps {
		data.Apps = append(data.Apps, portal.AppEntry{Name: a.Name, Title: a.Title, LaunchURL: launchPrefix + a.Name})
	}
	csp := h.csp
	view := q.Get("view")
	for _, l := range m.Links {
		item := portal.MenuLink{ID: l.ID, Title: l.Title, Href: l.URL, Src: l.URL, Open: l.Open}
		if l.App != "" {
			item.Href = launchPrefix + l.App
			item.Src = item.Href
			item.Magic = true
		}
		if l.Open == OpenIframe {
			item.Href = "/?" + url.Values{"view": {l.ID}}.Encode()
			if l.ID == view {
				data.Frame = &item
				csp += "; frame-src " + h.frameSources(l)
			}
		}
		data.Links = append(data.Links, item)
	}
	noStore(w)
	return h.pageWithCSP(w, http.StatusOK, "home.html", data, csp)
}

// frameSources are the origins an iframe item may load: a magic item goes
// through the portal's launch to its app.
func (h *Handler) frameSources(l menuLink) string {
	if l.App != "" {
		return "'self' " + h.app.targets[l.App].origin
	}
	return originOf(l.URL)
}

// launch mints a fresh one-time link for the signed-in user and sends them
// into the app with it: one portal sign-in opens every allowed app, and no
// token is ever written into a page.
func (h *Handler) launch(w http.ResponseWriter, r *http.Request, name string) error {
	if r.Method != http.MethodGet {
		return h.fail(w, r, problemMethod)
	}
	t := h.app.targets[name]
	if t == nil || t.name == PortalName {
		return h.fail(w, r, problemNotFound)
	}
	_, s, err := h.session(r)
	if err != nil {
		return h.noSession(w, r, err)
	}
	if !t.allowed(s.Apps) {
		return h.fail(w, r, problemNotAllowed)
	}
	next := r.URL.Query().Get("next")
	if link.CheckPath(next) != nil {
		// Anything but a plain path inside the app lands on its front page.
		next = "/"
	}
	l, err := h.app.issue("launch", link.Request{App: t.name, User: s.User, Path: next, TTL: launchTTL})
	if err != nil {
		h.logger.Error("minting launch link", zap.String("app", t.name), zap.Error(err))
		return h.fail(w, r, problemStore)
	}
	noStore(w)
	http.Redirect(w, r, t.magicURL(l.Token), http.StatusSeeOther)
	return nil
}

// noSession answers a portal request that has no session, or whose session
// could not be read.
func (h *Handler) noSession(w http.ResponseWriter, r *http.Request, err error) error {
	if !errors.Is(err, session.ErrNoSession) {
		h.logger.Error("looking up session", zap.String("app", h.App), zap.Error(err))
		return h.fail(w, r, problemStore)
	}
	return h.fail(w, r, problemNoSession)
}

package gateway

import (
	"net/http"

	"go.uber.org/zap"

	"github.com/portalgate/portalgate/caddymodule/internal/link"
)

// launch mints a fresh one-time link for the signed-in user and sends them
// into the app with it: one portal sign-in opens every allowed app, and no
// token is ever written into a page.
func (s *Site) launch(w http.ResponseWriter, r *http.Request, hit routeHit) error {
	t := s.g.apps[hit.params["app"]]
	if t == nil || t.name == PortalName {
		return problemNotFound
	}
	_, e, err := s.session(r)
	if err != nil {
		return noSession(err)
	}
	if !t.allowed(e.Apps) {
		return problemNotAllowed
	}
	next := r.URL.Query().Get("next")
	if link.CheckPath(next) != nil {
		// Anything but a plain path inside the app lands on its front page.
		next = "/"
	}
	l, err := s.g.issue("launch", link.Request{App: t.name, User: e.User, Path: next, TTL: launchTTL, Launch: true})
	if err != nil {
		s.g.log.Error("minting launch link", zap.String("app", t.name), zap.Error(err))
		return problemStore
	}
	noStore(w)
	http.Redirect(w, r, t.magicURL(l.Token), http.StatusSeeOther)
	return nil
}

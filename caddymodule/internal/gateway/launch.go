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
	id, e, err := s.session(r)
	if err != nil {
		return noSession(err)
	}
	if !t.allowed(e.Apps) {
		return problemNotAllowed
	}
	// A person launches a few apps a minute; a script in a loop is slowed.
	if wait, blocked := s.g.launches.Spend(sessionRef(id)); blocked {
		return tooMany{wait}
	}
	// The app's session shares the portal session's origin: one sign-out,
	// or revoking the link that began it, ends them together.
	portalSession, err := s.g.cfg.Sessions.Session(r.Context(), id)
	if err != nil {
		return noSession(err)
	}
	next := r.URL.Query().Get("next")
	if link.CheckPath(next) != nil {
		// Anything but a plain path inside the app lands on its front page.
		next = "/"
	}
	l, err := s.g.issue(r.Context(), "launch", link.Request{App: t.name, User: e.User, Path: next, TTL: launchTTL,
		Launch: true, Origin: portalSession.Origin})
	if err != nil {
		s.g.log.Error("minting launch link", zap.String("app", t.name), zap.Error(err))
		return problemStore
	}
	noStore(w)
	http.Redirect(w, r, t.magicURL(l.Token), http.StatusSeeOther) //nolint:gosec // configured origins and our own values: the host only chose the site
	return nil
}

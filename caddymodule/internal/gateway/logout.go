package gateway

import (
	"context"
	"errors"
	"net/http"

	"go.uber.org/zap"

	"github.com/portalgate/portalgate/caddymodule/internal/portal"
	"github.com/portalgate/portalgate/caddymodule/internal/session"
	"github.com/portalgate/portalgate/caddymodule/internal/store"
)

// logout ends this app's session and every session of the same origin (the
// portal's and the apps' this sign-in opened, in this browser), and clears
// the cookie. GET shows a page with a Sign out button; the POST it sends
// must come from this app's own page and carry a token bound to the session
// (no cross-site sign-out).
func (s *Site) logout(w http.ResponseWriter, r *http.Request, _ routeHit) error {
	if isSafe(r.Method) {
		id, _, err := s.session(r)
		if err != nil {
			return noSession(err)
		}
		noStore(w)
		s.page(w, http.StatusOK, "signout.html", portal.Form{
			AppTitle: s.app.title, CSRF: s.g.csrfToken("logout", id),
		})
		return nil
	}
	id := cookieValue(r.Header, s.app.cookie)
	if !s.sameOrigin(r) {
		return problemCSRF
	}
	if id != "" {
		token := r.Header.Get("X-CSRF-Token")
		if token == "" {
			token = formValue(w, r, "csrf")
		}
		if !s.g.checkCSRF("logout", id, token) {
			return problemCSRF
		}
		if err := s.endSignIn(context.WithoutCancel(r.Context()), id); err != nil {
			s.g.log.Error("ending session", zap.String("app", s.app.name), zap.Error(err))
			return problemStore
		}
	}
	http.SetCookie(w, s.cookie(s.app.cookie, "", -1))
	noStore(w)
	if wantsHTML(r) {
		s.page(w, http.StatusOK, "notice.html", portal.Notice{
			Title:   "You are signed out",
			Message: "Your session has ended here, and in the portal and every app this sign-in opened in this browser.",
			Hint:    "To come back, open a new sign-in link.",
		})
		return nil
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "signed_out"})
	return nil
}

// endSignIn ends session id and every session of its user with the same
// origin. A session of before origins were kept ends alone.
func (s *Site) endSignIn(ctx context.Context, id string) error {
	sessions := s.g.cfg.Sessions
	cur, err := sessions.Session(ctx, id)
	if errors.Is(err, session.ErrNoSession) {
		return nil
	}
	if err != nil {
		return err
	}
	n, err := sessions.EndWhere(ctx, cur.User.ID, func(o *store.Session) bool {
		return o.ID == id || (cur.Origin != "" && o.Origin == cur.Origin)
	})
	if n > 0 {
		s.g.audit.sessionEnded(s.app.name, cur.User.ID, id, "logout")
	}
	if err != nil {
		return err
	}
	// The store may not list a session it has just written: end it by id.
	return sessions.End(ctx, id)
}

package gateway

import (
	"context"
	"net/http"

	"go.uber.org/zap"

	"github.com/portalgate/portalgate/caddymodule/internal/portal"
)

// logout ends this app's session and clears its cookie. GET shows a page
// with a Sign out button; the POST it sends must come from this app's own
// page and carry a token bound to the session (no cross-site sign-out).
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
		sessions := s.g.cfg.Sessions
		e, _ := sessions.Lookup(r.Context(), id, s.app.name)
		if err := sessions.End(context.WithoutCancel(r.Context()), id); err != nil {
			s.g.log.Error("ending session", zap.String("app", s.app.name), zap.Error(err))
			return problemStore
		}
		if e != nil {
			s.g.audit.sessionEnded(s.app.name, e.User.ID, id, "logout")
		}
	}
	http.SetCookie(w, s.cookie(s.app.cookie, "", -1))
	noStore(w)
	if wantsHTML(r) {
		s.page(w, http.StatusOK, "notice.html", portal.Notice{
			Title:   "You are signed out",
			Message: "Your session has ended on this app.",
			Hint:    "To come back, open a new sign-in link.",
		})
		return nil
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "signed_out"})
	return nil
}

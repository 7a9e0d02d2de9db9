package gateway

import (
	"context"
	"errors"
	"net/http"
	"net/url"

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
	if ticket := r.URL.Query().Get("ticket"); isSafe(r.Method) && s.isPortal() && ticket != "" {
		return s.signedOutOfApp(w, r, ticket)
	}
	if isSafe(r.Method) {
		id, _, err := s.session(r)
		if err != nil {
			return noSession(err)
		}
		noStore(w)
		s.page(w, http.StatusOK, "signout.html", portal.Form{Portal: s.g.look,
			AppTitle: s.app.title, CSRF: s.g.csrfToken("logout", id),
		})
		return nil
	}
	id := cookieValue(r.Header, s.app.cookie)
	if !s.sameOrigin(r) {
		return problemCSRF
	}
	var userID string
	if id != "" {
		token := r.Header.Get("X-CSRF-Token")
		if token == "" {
			token = formValue(w, r, "csrf")
		}
		if !s.g.checkCSRF("logout", id, token) {
			return problemCSRF
		}
		var err error
		if userID, err = s.endSignIn(context.WithoutCancel(r.Context()), id); err != nil {
			s.g.log.Error("ending session", zap.String("app", s.app.name), zap.Error(err))
			return problemStore
		}
	}
	http.SetCookie(w, s.cookie(s.app.cookie, "", -1))
	noStore(w)
	if wantsHTML(r) && userID != "" && !s.isPortal() {
		// This browser may be signed in to the portal from another link,
		// which would sign it straight back in here: the portal, which
		// alone sees its cookie, ends that too, with a ticket naming the
		// user, and says the person is signed out.
		u := s.g.portal.origin + logoutPath + "?" + url.Values{"app": {s.app.name}, "ticket": {s.g.signOutTicket(userID)}}.Encode()
		http.Redirect(w, r, u, http.StatusSeeOther) //nolint:gosec // configured origins and our own values: the host only chose the site
		return nil
	}
	if wantsHTML(r) {
		s.signedOutPage(w, r, "Your session has ended here, and in the portal and every app this sign-in opened in this browser.")
		return nil
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "signed_out"})
	return nil
}

// endSignIn ends session id and every session of its user with the same
// origin, and returns the user's id ("" when the session was gone).
func (s *Site) endSignIn(ctx context.Context, id string) (string, error) {
	cur, err := s.g.cfg.Sessions.Session(ctx, id)
	if errors.Is(err, session.ErrNoSession) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	return cur.User.ID, s.endOrigin(ctx, cur)
}

// endOrigin ends cur and every session of its user with the same origin. A
// session of before origins were kept ends alone.
func (s *Site) endOrigin(ctx context.Context, cur *store.Session) error {
	sessions := s.g.cfg.Sessions
	n, err := sessions.EndWhere(ctx, cur.User.ID, func(o *store.Session) bool {
		return o.ID == cur.ID || (cur.Origin != "" && o.Origin == cur.Origin)
	})
	if n > 0 {
		s.g.audit.sessionEnded(s.app.name, cur.User.ID, cur.ID, "logout")
	}
	if err != nil {
		return err
	}
	// The store may not list a session it has just written: end it by id.
	return sessions.End(ctx, cur.ID)
}

// signedOutPage tells a person they are signed out, and how to come back.
func (s *Site) signedOutPage(w http.ResponseWriter, r *http.Request, message string) {
	hint := "To come back, open a new sign-in link."
	if s.g.signIns != nil {
		hint = "To come back, sign in with your e-mail, or open a new sign-in link."
	}
	s.page(w, http.StatusOK, "notice.html", portal.Notice{Portal: s.g.look,
		Title:   "You are signed out",
		Message: message,
		Hint:    hint,
		Actions: s.waysOn(r, signInAgain),
		Support: s.g.cfg.Mails.Brand().Support,
	})
}

// signedOutOfApp ends this browser's portal sign-in after the person signed
// out of an app, when the ticket is good and names the portal session's
// user, and says they are signed out. A ticket only ends a portal session
// of the user it names, begun before it was issued, within a minute: kept
// and opened again after a new sign-in, it ends nothing. A ticket that is
// not good falls back to the sign-out page.
func (s *Site) signedOutOfApp(w http.ResponseWriter, r *http.Request, ticket string) error {
	user, issued, ok := s.g.checkSignOutTicket(ticket)
	if !ok {
		http.Redirect(w, r, logoutPath, http.StatusSeeOther)
		return nil
	}
	if id := cookieValue(r.Header, s.app.cookie); id != "" {
		ctx := context.WithoutCancel(r.Context())
		cur, err := s.g.cfg.Sessions.Session(ctx, id)
		switch {
		case err == nil && cur.User.ID == user && !cur.CreatedAt.After(issued):
			if err := s.endOrigin(ctx, cur); err != nil {
				s.g.log.Error("ending session", zap.String("app", s.app.name), zap.Error(err))
				return problemStore
			}
			http.SetCookie(w, s.cookie(s.app.cookie, "", -1))
		case err != nil && !errors.Is(err, session.ErrNoSession):
			return err
		}
	}
	noStore(w)
	s.signedOutPage(w, r, "Your session has ended in "+s.signedOutOf(r.URL.Query().Get("app"))+
		", in the portal and in every app you opened from it, in this browser.")
	return nil
}

// signedOutOf names the app a sign-out came from, when it is a declared one.
func (s *Site) signedOutOf(app string) string {
	if t := s.g.apps[app]; t != nil && t.name != PortalName {
		return t.title
	}
	return "the app"
}

package caddymodule

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/portalgate/portalgate/caddymodule/internal/portal"
	"github.com/portalgate/portalgate/caddymodule/internal/session"
)

// gate lets a request with a live session of this app through, with the
// user's identity; everyone else is sent to sign in.
func (h *Handler) gate(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	id, s, err := h.session(r)
	if err == nil {
		h.gatedOK.Inc()
		stripSessionCookies(r.Header)
		setIdentity(r, s, w.Header(), h.frameAncestors)
		if h.Assertion {
			tok, err := h.assertion(id, s)
			if err != nil {
				h.logger.Error("signing identity assertion", zap.String("app", h.App), zap.Error(err))
				return h.fail(w, r, problemStore)
			}
			r.Header[headerAssertion] = []string{tok}
		}
		return next.ServeHTTP(w, r)
	}
	if errors.Is(err, session.ErrNoSession) {
		h.gatedNoSession.Inc()
	} else {
		h.gatedStoreError.Inc()
	}
	if h.portal || !errors.Is(err, session.ErrNoSession) || !wantsHTML(r) {
		return h.noSession(w, r, err)
	}
	// Send people to the portal, which launches them back here when it knows
	// them. The address is built from configuration, never from Host.
	q := url.Values{"app": {h.App}, "next": {r.URL.RequestURI()}}
	noStore(w)
	http.Redirect(w, r, h.app.targets[PortalName].origin+"/?"+q.Encode(), http.StatusSeeOther)
	return nil
}

// session returns the id and the live session of this app that the
// request's cookie names, or session.ErrNoSession.
func (h *Handler) session(r *http.Request) (string, *session.Entry, error) {
	id := cookieValue(r.Header, h.target.cookie)
	if id == "" {
		return "", nil, session.ErrNoSession
	}
	s, err := h.app.sessions.Lookup(r.Context(), id, h.App)
	return id, s, err
}

// logout ends this app's session and clears its cookie. GET shows a page
// with a Sign out button; the POST it sends must come from this app's own
// page and carry a token bound to the session (no cross-site sign-out).
func (h *Handler) logout(w http.ResponseWriter, r *http.Request) error {
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		id, _, err := h.session(r)
		if err != nil {
			return h.noSession(w, r, err)
		}
		noStore(w)
		return h.page(w, http.StatusOK, "signout.html", portal.Form{
			AppTitle: h.target.title, CSRF: h.app.csrfToken("logout", id),
		})
	case http.MethodPost:
	default:
		return h.fail(w, r, problemMethod)
	}
	id := cookieValue(r.Header, h.target.cookie)
	if !h.sameOrigin(r) {
		return h.fail(w, r, problemCSRF)
	}
	if id != "" {
		token := r.Header.Get("X-CSRF-Token")
		if token == "" {
			token = formValue(w, r, "csrf")
		}
		if !h.app.checkCSRF("logout", id, token) {
			return h.fail(w, r, problemCSRF)
		}
		s, _ := h.app.sessions.Lookup(r.Context(), id, h.App)
		if err := h.app.sessions.End(context.WithoutCancel(r.Context()), id); err != nil {
			h.logger.Error("ending session", zap.String("app", h.App), zap.Error(err))
			return h.fail(w, r, problemStore)
		}
		if s != nil {
			h.app.audit.sessionEnded(h.App, s.User.ID, id, "logout")
		}
	}
	http.SetCookie(w, h.cookie(h.target.cookie, "", -1))
	noStore(w)
	if wantsHTML(r) {
		return h.page(w, http.StatusOK, "notice.html", portal.Notice{
			Title:   "You are signed out",
			Message: "Your session has ended on this app.",
			Hint:    "To come back, open a new sign-in link.",
		})
	}
	return writeJSON(w, http.StatusOK, map[string]string{"status": "signed_out"})
}

// cookie builds one of this app's cookies; maxAge < 0 deletes it.
func (h *Handler) cookie(name, value string, maxAge time.Duration) *http.Cookie {
	// Secure follows the app's configured scheme: only a plain-HTTP origin
	// (a localhost demo) gets a cookie without it; HTTPS gets __Host-.
	c := &http.Cookie{ //nolint:gosec // see above
		Name:     name,
		Value:    value,
		Path:     "/",
		HttpOnly: true,
		Secure:   h.target.secure,
		SameSite: http.SameSiteLaxMode,
		MaxAge:   int(maxAge / time.Second),
	}
	if maxAge < 0 {
		c.MaxAge = -1
	}
	return c
}

package gateway

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/portalgate/portalgate/caddymodule/internal/identity"
	"github.com/portalgate/portalgate/caddymodule/internal/session"
)

const headerCSP = "Content-Security-Policy"

// gate lets a request with a live session of this app through, with the
// user's identity; everyone else is sent to sign in.
func (s *Site) gate(w http.ResponseWriter, r *http.Request, next Next) error {
	id, e, err := s.session(r)
	if err == nil {
		s.gatedOK.Inc()
		m := s.stripCookies(r.Header, e, s.memo(e))
		// The identity and the answer's frame-ancestors in one allocation,
		// the only one of a request of a session seen before.
		vals := new(gatedValues)
		vals.identity.Set(r.Header, &e.User, s.g.tenant, e.App)
		resp := w.Header()
		if csp := resp[headerCSP]; len(csp) > 0 {
			resp[headerCSP] = append(csp, s.frameAncestors)
		} else {
			vals.csp[0] = s.frameAncestors
			resp[headerCSP] = vals.csp[:]
		}
		if m.setUser != nil {
			m.setUser(r)
		}
		if s.assertions != nil {
			tok, err := s.assertion(id, e)
			if err != nil {
				s.g.log.Error("signing identity assertion", zap.String("app", s.app.name), zap.Error(err))
				s.fail(w, r, problemStore)
				return nil
			}
			r.Header[identity.HeaderAssertion] = []string{tok}
		}
		return next.ServeHTTP(w, r)
	}
	if errors.Is(err, session.ErrNoSession) {
		s.gatedNoSession.Inc()
	} else {
		s.gatedStoreError.Inc()
	}
	if r.URL.Path == faviconPath && errors.Is(err, session.ErrNoSession) && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
		// Every browser asks for it, signed in or not: the portal's icon,
		// not a 401 in the console (a signed-in browser gets the app's own).
		s.icon(w)
		return nil
	}
	if s.isPortal() || !errors.Is(err, session.ErrNoSession) || !wantsHTML(r) {
		s.answer(w, r, noSession(err))
		return nil
	}
	// Send people to the portal, which launches them back here when it knows
	// them. The address is built from configuration, never from Host.
	q := url.Values{"app": {s.app.name}, "next": {nextOf(r.URL)}}
	noStore(w)
	http.Redirect(w, r, s.g.portal.origin+"/?"+q.Encode(), http.StatusSeeOther) //nolint:gosec // the configured portal origin; the host only chose the site
	return nil
}

// gatedValues are the header values the gate sets on one request and its
// answer.
type gatedValues struct {
	identity identity.HeaderValues
	csp      [1]string
}

// gateMemo is what the gate works out from a session once and reuses on
// each of its requests (session.Entry.Memo): what hands its user to the
// server, and the last Cookie line it rewrote, with the rewrite.
type gateMemo struct {
	setUser             func(*http.Request)
	cookieIn, cookieOut string
}

// maxMemoCookie is the longest Cookie line a session's memo keeps with its
// rewrite: a browser's handful of cookies. A longer line is rewritten on
// each request, so a client cannot make L1 hold more than its budget.
const maxMemoCookie = 1024

// memo is the session's gateMemo, made at its first request.
func (s *Site) memo(e *session.Entry) *gateMemo {
	if m, ok := e.Memo().(*gateMemo); ok {
		return m
	}
	m := new(gateMemo)
	if s.g.cfg.UserSetter != nil {
		m.setUser = s.g.cfg.UserSetter(&e.User)
	}
	e.SetMemo(m)
	return m
}

// stripCookies is stripSessionCookies, with the rewrite of the session's
// Cookie line taken from its memo while the browser sends the same line.
// It returns the memo, renewed when the line changed.
func (s *Site) stripCookies(h http.Header, e *session.Entry, m *gateMemo) *gateMemo {
	lines := h["Cookie"]
	if len(lines) != 1 || len(lines[0]) > maxMemoCookie {
		stripSessionCookies(h)
		return m
	}
	if lines[0] != m.cookieIn {
		next := *m
		next.cookieIn, next.cookieOut = lines[0], withoutSessionCookies(lines[0])
		m = &next
		e.SetMemo(m)
	}
	if m.cookieOut == "" {
		delete(h, "Cookie")
	} else {
		// In place: the request's header slice is its own.
		lines[0] = m.cookieOut
	}
	return m
}

// nextOf is where a signed-out visitor was going, for the portal to send
// them back to. It never carries a token: a query parameter named token
// (a magic link's, or an app's own reset token) would travel to the portal
// and into its access log, where the filter of the token parameter does
// not look inside next.
func nextOf(u *url.URL) string {
	// A name may be escaped (tok%65n): look closer at any query that has
	// "token" or an escape in it.
	if !strings.Contains(strings.ToLower(u.RawQuery), "token") && !strings.Contains(u.RawQuery, "%") {
		return u.RequestURI()
	}
	q := u.Query()
	dropped := false
	for k := range q {
		if strings.EqualFold(k, "token") {
			delete(q, k)
			dropped = true
		}
	}
	if !dropped {
		return u.RequestURI()
	}
	out := *u
	out.RawQuery = q.Encode()
	return out.RequestURI()
}

// session returns the id and the live session of this app that the
// request's cookie names, or session.ErrNoSession.
func (s *Site) session(r *http.Request) (string, *session.Entry, error) {
	id := cookieValue(r.Header, s.app.cookie)
	if id == "" {
		return "", nil, session.ErrNoSession
	}
	e, err := s.g.cfg.Sessions.Lookup(r.Context(), id, s.g.tenant, s.app.name)
	switch {
	case err != nil:
	case e.CreatedAt().Before(s.g.since):
		// A session of an earlier tenant of this id, removed since.
		return id, nil, session.ErrNoSession
	case s.g.tenant == "" && e.User.Location != "" && !s.g.ownsLocation(e.User.Location):
		// On the default portal, a session of someone whose location has
		// become a tenant since: they are that tenant's now.
		return id, nil, session.ErrNoSession
	}
	return id, e, err
}

// noSession is the answer to a request without a session: not signed in,
// or (any other error) the store could not be read.
func noSession(err error) error {
	if errors.Is(err, session.ErrNoSession) {
		return problemNoSession
	}
	return err
}

// cachedAssertion is a signed assertion and until when it is reused.
type cachedAssertion struct {
	token string
	until time.Time
}

// assertion returns the signed identity assertion for a session, reusing
// one while at least half its life is left.
func (s *Site) assertion(id string, e *session.Entry) (string, error) {
	now := s.g.now()
	if c, ok := s.assertions.Get(id); ok && now.Before(c.until) {
		return c.token, nil
	}
	tok, exp, err := s.g.cfg.Asserter.Sign(s.g.tenant, s.app.name, e.User)
	if err != nil {
		return "", err
	}
	s.assertions.Add(id, cachedAssertion{token: tok, until: exp.Add(-AssertionTTL / 2)})
	return tok, nil
}

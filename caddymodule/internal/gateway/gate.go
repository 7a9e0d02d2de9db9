package gateway

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unsafe"

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
		// The identity, the answer's frame-ancestors and the Cookie line
		// without the session cookies, in the request's one allocation.
		vals := gatedCookies(r.Header)
		vals.identity.Set(r.Header, &e.User, s.g.tenant, e.App)
		resp := w.Header()
		if csp := resp[headerCSP]; len(csp) > 0 {
			resp[headerCSP] = append(csp, s.frameAncestors)
		} else {
			vals.csp[0] = s.frameAncestors
			resp[headerCSP] = vals.csp[:]
		}
		if s.g.cfg.SetUser != nil {
			s.g.cfg.SetUser(r, e)
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

// gatedCookies removes the session cookies from the request's Cookie line
// (stripSessionCookies) and returns the request's gatedValues. A line
// that must be joined anew is written into the same allocation, in one of
// a few sizes of room (each an allocation size class), so the request
// allocates once; only a longer line, or a request with several Cookie
// lines, allocates more.
func gatedCookies(h http.Header) *gatedValues {
	lines := h["Cookie"]
	if len(lines) != 1 {
		stripSessionCookies(h)
		return new(gatedValues)
	}
	kept, n := cutSessionCookies(lines[0])
	var vals *gatedValues
	if n == 0 {
		vals = new(gatedValues)
	} else {
		var room []byte
		vals, room = gatedValuesWithRoom(n)
		b := keptCookies(room, lines[0])
		// As strings.Builder does: the bytes are written once, here, and
		// never again, and the string keeps the allocation alive.
		kept = unsafe.String(unsafe.SliceData(b), len(b)) //nolint:gosec // see above
	}
	if kept == "" {
		delete(h, "Cookie")
	} else {
		lines[0] = kept // in place: the request's header slice is its own
	}
	return vals
}

// gatedValuesWithRoom returns gatedValues with room for n bytes after them,
// in the same allocation when n fits one of the sizes (gatedValues is 128
// bytes: 192, 320 and 576 are allocation size classes).
func gatedValuesWithRoom(n int) (*gatedValues, []byte) {
	switch {
	case n <= 64:
		v := new(struct {
			gatedValues
			room [64]byte
		})
		return &v.gatedValues, v.room[:0]
	case n <= 192:
		v := new(struct {
			gatedValues
			room [192]byte
		})
		return &v.gatedValues, v.room[:0]
	case n <= 448:
		v := new(struct {
			gatedValues
			room [448]byte
		})
		return &v.gatedValues, v.room[:0]
	}
	return new(gatedValues), make([]byte, 0, n)
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

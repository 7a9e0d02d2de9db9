package gateway

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/portalgate/portalgate/caddymodule/internal/link"
	"github.com/portalgate/portalgate/caddymodule/internal/portal"
	"github.com/portalgate/portalgate/caddymodule/internal/session"
	"github.com/portalgate/portalgate/caddymodule/internal/store"
)

// confirmTTL bounds how long a confirmation page stays usable.
const confirmTTL = 10 * time.Minute

// maxSessionsPerApp bounds the live sessions of one user on one app that
// launches keep (browsers and devices: a phone, a laptop, a tablet...).
const maxSessionsPerApp = 10

// redeem turns a magic link into a session: verify, spend it once, create a
// fresh session, set the cookie and send the user where the link points.
// HEAD and prefetches never spend a link, in either mode.
func (s *Site) redeem(w http.ResponseWriter, r *http.Request, _ routeHit) error {
	ip := s.g.clientIP(r)
	claims, err := s.g.cfg.Codec.Verify(r.URL.Query().Get("token"), s.app.name)
	if err == nil && !s.g.opens(claims) {
		err = link.ErrWrongApp
	}
	if err != nil {
		if guessed(err) {
			return s.rejectGuess(ip, linkProblem(err))
		}
		return s.rejectLink(ip, linkProblem(err), nil)
	}
	switch r.Method {
	case http.MethodHead:
		// Link checkers probe with HEAD: answer, spend nothing.
		noStore(w)
		w.WriteHeader(http.StatusOK)
		return nil
	case http.MethodPost:
		if !s.confirmed(w, r, claims.ID) {
			return s.rejectLink(ip, problemCSRF, claims)
		}
		return s.spend(w, r, ip, claims)
	}
	// Ask first, on a page that names the account, when one click could do
	// what the person did not mean: a mail scanner or a prefetch opening the
	// link (redeem confirm; a prefetched page may be shown later), another
	// site sending the browser here (login CSRF: signing a victim into the
	// attacker's account), or the link being another account's than the one
	// this browser is signed in as here. A link the gateway sent a signed-in
	// browser to at once (launch, Open) needs no Continue of its own, and may
	// come from a sibling site (the portal); any other link only from no
	// site at all (a mail program, a typed address) or from this one.
	current, known := s.signedInAs(r, claims.Subject)
	fetchSite := r.Header.Get("Sec-Fetch-Site")
	foreign := fetchSite == "cross-site" || (fetchSite == "same-site" && !claims.Launch)
	if isPrefetch(r) || !known || current != "" || foreign || (s.redeemMode == RedeemConfirm && !claims.Launch) {
		return s.confirmPage(w, r, ip, claims, current)
	}
	return s.spend(w, r, ip, claims)
}

// signedInAs names the account this browser is signed in to this app as,
// when it is another than userID's ("" when it is none, or userID's own).
// known is false when the session could not be read: then the page asks.
func (s *Site) signedInAs(r *http.Request, userID string) (current string, known bool) {
	id := cookieValue(r.Header, s.app.cookie)
	if id == "" {
		return "", true
	}
	e, err := s.g.cfg.Sessions.Lookup(r.Context(), id, s.g.tenant, s.app.name)
	switch {
	case errors.Is(err, session.ErrNoSession):
		return "", true
	case err != nil:
		s.g.log.Error("reading the session a link would replace", zap.String("app", s.app.name), zap.Error(err))
		return "", false
	case e.User.ID == userID:
		return "", true
	}
	return displayName(e.User), true
}

// spend uses the link: one atomic store step spends it and creates the session.
func (s *Site) spend(w http.ResponseWriter, r *http.Request, ip string, claims *link.Claims) error {
	// The store judges the link's end again, by its own clock, when it
	// spends it: a request verified just before the end that reaches the
	// store after it is refused.
	// A client that hangs up must not leave a redemption half done (a link
	// spent without its session): state changes outlive the request.
	ctx := context.WithoutCancel(r.Context())
	sessions := s.g.cfg.Sessions
	created, grant, err := sessions.Redeem(ctx, spendOf(claims), s.g.tenant, s.app.name)
	var unsettled *session.Unsettled
	switch {
	case errors.Is(err, store.ErrLinkUsed):
		if s.spentHere(ctx, r, claims.ID) {
			return s.land(w, r, grant.Path)
		}
		return s.rejectLink(ip, problemUsed, claims)
	case spendRefusal(err) != nil:
		return s.rejectLink(ip, spendRefusal(err), claims)
	case err != nil:
		s.g.log.Error("redeeming link", zap.String("app", s.app.name), zap.Error(err))
		s.redemptions("store_error").Inc()
		if errors.As(err, &unsettled) {
			// The store may yet spend the link (a stalled Redis runs the
			// script when it wakes): this browser, and only it, gets the id
			// of the session that would start, so that then it is signed
			// in, and its retry of the link lands instead of saying
			// "already used".
			http.SetCookie(w, s.cookie(s.app.cookie, unsettled.SessionID, s.g.cfg.SessionTTL))
		}
		return problemStore
	}
	s.endReplacedSession(ctx, r)
	if claims.Launch {
		// A signed-in user can launch in a loop: their sessions on this
		// app are bounded, the oldest ended first.
		if _, err := sessions.Trim(ctx, created, maxSessionsPerApp); err != nil {
			s.g.log.Error("ending a user's oldest sessions", zap.String("app", s.app.name), zap.Error(err))
		}
	}
	s.redemptions("ok").Inc()
	s.g.audit.linkRedeemed(s.app.name, created.User.ID, claims.ID, created.ID, ip)
	http.SetCookie(w, s.cookie(s.app.cookie, created.ID, s.g.cfg.SessionTTL))
	return s.land(w, r, grant.Path)
}

// opens reports whether a link of claims is for this tenant: of its id,
// and minted since the tenant was added (not for an earlier tenant of its
// id, removed since). Whatever its app, a link of one tenant opens nothing
// of another.
func (g *Gateway) opens(claims *link.Claims) bool {
	return claims.Tenant == g.tenant && !time.Unix(claims.IssuedAt, 0).Before(g.since.Truncate(time.Second))
}

// spendOf is how a link's token names what a redemption spends.
func spendOf(claims *link.Claims) store.Spend {
	return store.Spend{ID: claims.ID, UserID: claims.Subject, Expires: claims.Expires().Add(link.Leeway)}
}

// land sends a browser signed in by a link to path, where the link leads.
func (s *Site) land(w http.ResponseWriter, r *http.Request, path string) error {
	if cookieValue(r.Header, s.confirmCookie()) != "" {
		http.SetCookie(w, s.cookie(s.confirmCookie(), "", -1))
	}
	noStore(w)
	// The grant's path was checked to be a path inside the app when the
	// link was minted, and is again, as the store hands it back; the origin
	// comes from configuration.
	if link.CheckPath(path) != nil {
		path = "/"
	}
	http.Redirect(w, r, s.app.origin+path, http.StatusSeeOther) //nolint:gosec // origin from config, path checked
	return nil
}

// spentHere reports whether this browser holds a live session the link
// started on this app: its own redemption, whose answer it did not get (a
// stalled store answered 503 and spent the link later) or opened again.
// Nobody else holds that session's id, so it lands again; anyone else
// hears that the link is used.
func (s *Site) spentHere(ctx context.Context, r *http.Request, linkID string) bool {
	id := cookieValue(r.Header, s.app.cookie)
	if id == "" {
		return false
	}
	held, err := s.g.cfg.Sessions.Session(ctx, id)
	return err == nil && held.LinkID == linkID && held.App == s.app.name
}

// guessed reports whether a token failed as a guess does: not a token, or
// not signed with a key of ours. A link we signed that is used, expired,
// revoked or for another app is no guess.
func guessed(err error) bool {
	return errors.Is(err, link.ErrMalformed) || errors.Is(err, link.ErrBadSignature)
}

// rejectGuess refuses a token that is a guess and counts it against the
// client's failure budget; past the budget the answer is 429. Only guesses
// count, and only guesses are refused for the budget: re-clicking a spent
// link, or a page of ten <img> tags pointing at one, never locks a whole
// office (one address behind NAT) out of the fresh links its people open.
// The budget bounds the noise and the cost of guessing; a guess itself is
// hopeless against HMAC-SHA256 with a key of 32 bytes or more.
func (s *Site) rejectGuess(ip string, p *Problem) error {
	if wait, blocked := s.g.cfg.Limiter.Spend(redeemKey(ip)); blocked {
		s.redemptions(problemRateLimit.why()).Inc()
		return tooMany{wait}
	}
	return s.rejectLink(ip, p, nil)
}

// rejectLink refuses a link that cannot be used.
func (s *Site) rejectLink(ip string, p *Problem, claims *link.Claims) error {
	s.redemptions(p.why()).Inc()
	var linkID, userID string
	if claims != nil {
		linkID, userID = claims.ID, claims.Subject
	}
	s.g.audit.linkRejected(s.app.name, p.why(), ip, linkID, userID)
	return p
}

// confirmPage asks a person to press Continue as the account the link
// names, from the link's grant. The form's token is bound to the link and
// to a random value in a SameSite cookie, so only this page, in this
// browser, can spend the link. A link already spent or revoked, or one
// the store holds no grant of, gets its refusal at once, not a Continue
// that only then says so.
func (s *Site) confirmPage(w http.ResponseWriter, r *http.Request, ip string, claims *link.Claims, current string) error {
	l, err := s.g.cfg.Store.Link(r.Context(), claims.ID)
	switch {
	case errors.Is(err, store.ErrNotFound) || (err == nil && (l.User.ID != claims.Subject || l.App != s.app.name)):
		return s.rejectLink(ip, problemBeforeStore, claims)
	case err != nil:
		return err
	case l.Revoked:
		return s.rejectLink(ip, problemRevoked, claims)
	case l.Spent >= l.Uses && s.spentHere(r.Context(), r, claims.ID):
		return s.land(w, r, l.Path)
	case l.Spent >= l.Uses:
		return s.rejectLink(ip, problemUsed, claims)
	}
	linkID := claims.ID
	var nonce [16]byte
	if _, err := rand.Read(nonce[:]); err != nil {
		return err
	}
	n := base64.RawURLEncoding.EncodeToString(nonce[:])
	http.SetCookie(w, s.cookie(s.confirmCookie(), n, confirmTTL))
	noStore(w)
	s.page(w, http.StatusOK, "confirm.html", portal.Confirm{Portal: s.g.look,
		AppTitle: s.app.title,
		CSRF:     s.g.csrfToken("confirm", linkID+"\x00"+n),
		Account:  displayName(l.User),
		Current:  current,
	})
	return nil
}

// confirmed checks a Continue press: same origin, and the form's token
// matches the link and the browser's confirmation cookie.
func (s *Site) confirmed(w http.ResponseWriter, r *http.Request, linkID string) bool {
	nonce := cookieValue(r.Header, s.confirmCookie())
	return s.sameOrigin(r) && nonce != "" &&
		s.g.checkCSRF("confirm", linkID+"\x00"+nonce, formValue(w, r, "csrf"))
}

func (s *Site) confirmCookie() string { return s.app.cookie + "-confirm" }

// isPrefetch recognises speculative loads (browser prefetch and prerender,
// link previews): they must never spend a link.
func isPrefetch(r *http.Request) bool {
	for _, name := range []string{"Sec-Purpose", "Purpose", "X-Purpose", "X-Moz"} {
		v := strings.ToLower(r.Header.Get(name))
		if strings.Contains(v, "prefetch") || strings.Contains(v, "prerender") || strings.Contains(v, "preview") {
			return true
		}
	}
	return false
}

// spendRefusal is the Problem of a spend the store refused for what the
// link is (revoked, past its end, older than the store), or nil.
func spendRefusal(err error) *Problem {
	switch {
	case errors.Is(err, store.ErrLinkRevoked):
		return problemRevoked
	case errors.Is(err, store.ErrLinkExpired):
		return problemExpired
	case errors.Is(err, store.ErrLinkBeforeStore):
		return problemBeforeStore
	}
	return nil
}

// endReplacedSession ends the session the browser had here: a sign-in
// always starts a new one with a new id, so a planted cookie is worth
// nothing.
func (s *Site) endReplacedSession(ctx context.Context, r *http.Request) {
	if old := cookieValue(r.Header, s.app.cookie); old != "" {
		if err := s.g.cfg.Sessions.End(ctx, old); err != nil {
			s.g.log.Error("ending replaced session", zap.String("app", s.app.name), zap.Error(err))
		}
	}
}

func linkProblem(err error) *Problem {
	switch {
	case errors.Is(err, link.ErrExpired):
		return problemExpired
	case errors.Is(err, link.ErrWrongApp):
		return problemWrongApp
	case errors.Is(err, link.ErrBadSignature):
		return problemSignature
	}
	return problemMalformed
}

// redemptions is this app's redemption counter for a result.
func (s *Site) redemptions(result string) prometheus.Counter {
	return s.g.metrics.Redemptions.WithLabelValues(s.app.name, result)
}

func redeemKey(ip string) string { return "redeem|" + clientKey(ip) }

func apiKeyKey(ip string) string { return "apikey|" + clientKey(ip) }

// clientKey is what a client's budgets are kept under: its IPv4 address,
// or the /64 of its IPv6 address, which one host holds whole (one machine
// may use any address in it).
func clientKey(ip string) string {
	a, err := netip.ParseAddr(ip)
	if err != nil || a.Is4() || a.Is4In6() {
		return ip
	}
	p, err := a.Prefix(64)
	if err != nil {
		return ip
	}
	return p.String()
}

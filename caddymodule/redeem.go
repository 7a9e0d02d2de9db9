package caddymodule

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/portalgate/portalgate/caddymodule/internal/link"
	"github.com/portalgate/portalgate/caddymodule/internal/portal"
	"github.com/portalgate/portalgate/caddymodule/internal/store"
)

// Redeem modes: when does opening a link spend it.
const (
	// RedeemAuto spends a link on GET: one click signs in.
	RedeemAuto = "auto"
	// RedeemConfirm shows a page with a Continue button on GET; only its
	// POST spends the link, so mail scanners that open links spend nothing.
	RedeemConfirm = "confirm"
)

// confirmTTL bounds how long a confirmation page stays usable.
const confirmTTL = 10 * time.Minute

// redeem turns a magic link into a session: verify, spend it once, create a
// fresh session, set the cookie and send the user where the link points.
// HEAD, OPTIONS and prefetches never spend a link, in either mode.
func (h *Handler) redeem(w http.ResponseWriter, r *http.Request) error {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodPost:
	case http.MethodOptions:
		noStore(w)
		w.Header().Set("Allow", "GET, HEAD, POST, OPTIONS")
		w.WriteHeader(http.StatusNoContent)
		return nil
	default:
		return h.fail(w, r, problemMethod)
	}
	ip := clientIP(r)
	if wait, blocked := h.app.limiter.Blocked(redeemKey(ip)); blocked {
		h.redemptions(problemRateLimit.why()).Inc()
		return h.tooMany(w, r, wait)
	}
	claims, err := h.app.codec.Verify(r.URL.Query().Get("token"), h.App)
	if err != nil {
		return h.rejectLink(w, r, ip, linkProblem(err), nil)
	}
	switch {
	case r.Method == http.MethodHead:
		// Link checkers probe with HEAD: answer, spend nothing.
		noStore(w)
		w.WriteHeader(http.StatusOK)
		return nil
	case r.Method == http.MethodPost:
		if !h.confirmed(w, r, claims.ID) {
			return h.rejectLink(w, r, ip, problemCSRF, claims)
		}
		return h.spend(w, r, ip, claims)
	case h.Redeem == RedeemConfirm || isPrefetch(r):
		// A prefetched page may be shown later: it is the confirmation page,
		// which spends nothing until a person presses Continue.
		return h.confirmPage(w, claims.ID)
	}
	return h.spend(w, r, ip, claims)
}

// spend uses the link: one atomic store step spends it and creates the session.
func (h *Handler) spend(w http.ResponseWriter, r *http.Request, ip string, claims *link.Claims) error {
	// The link's record outlives every instant at which its token verifies.
	use := store.LinkUse{ID: claims.ID, UserID: claims.Subject, Uses: claims.Uses,
		IssuedAt: claims.Issued(), Expires: claims.ExpiresAt.Add(link.Leeway)}
	// A client that hangs up must not leave a redemption half done (a link
	// spent without its session): state changes outlive the request.
	ctx := context.WithoutCancel(r.Context())
	s, err := h.app.sessions.Redeem(ctx, use, claims.User(), h.App, claims.Apps)
	switch {
	case errors.Is(err, store.ErrLinkUsed):
		return h.rejectLink(w, r, ip, problemUsed, claims)
	case errors.Is(err, store.ErrLinkRevoked):
		return h.rejectLink(w, r, ip, problemRevoked, claims)
	case err != nil:
		h.logger.Error("redeeming link", zap.String("app", h.App), zap.Error(err))
		h.redemptions("store_error").Inc()
		return h.fail(w, r, problemStore)
	}
	// A redemption always starts a new session with a new id, so a planted
	// cookie is worth nothing; whatever session the browser had here ends.
	if old := cookieValue(r.Header, h.target.cookie); old != "" {
		if err := h.app.sessions.End(ctx, old); err != nil {
			h.logger.Error("ending replaced session", zap.String("app", h.App), zap.Error(err))
		}
	}
	h.redemptions("ok").Inc()
	h.app.audit.linkRedeemed(h.App, s.User.ID, claims.ID, s.ID, ip)
	http.SetCookie(w, h.cookie(h.target.cookie, s.ID, time.Duration(h.app.SessionTTL)))
	if cookieValue(r.Header, h.confirmCookie()) != "" {
		http.SetCookie(w, h.cookie(h.confirmCookie(), "", -1))
	}
	noStore(w)
	// claims.Path was checked to be a path inside the app when minted and
	// again when verified; the origin comes from configuration.
	http.Redirect(w, r, h.target.origin+claims.Path, http.StatusSeeOther) //nolint:gosec // origin from config, path checked
	return nil
}

// rejectLink answers a link that cannot be used, and counts it against the
// client's failure budget: guessing and replaying cost the guesser.
func (h *Handler) rejectLink(w http.ResponseWriter, r *http.Request, ip string, p problem, claims *link.Claims) error {
	h.app.limiter.Fail(redeemKey(ip))
	h.redemptions(p.why()).Inc()
	var linkID, userID string
	if claims != nil {
		linkID, userID = claims.ID, claims.Subject
	}
	h.app.audit.linkRejected(h.App, p.why(), ip, linkID, userID)
	return h.fail(w, r, p)
}

// confirmPage asks a person to press Continue. The form's token is bound to
// the link and to a random value in a SameSite cookie, so only this page, in
// this browser, can spend the link.
func (h *Handler) confirmPage(w http.ResponseWriter, linkID string) error {
	var nonce [16]byte
	if _, err := rand.Read(nonce[:]); err != nil {
		return err
	}
	n := base64.RawURLEncoding.EncodeToString(nonce[:])
	http.SetCookie(w, h.cookie(h.confirmCookie(), n, confirmTTL))
	noStore(w)
	return h.page(w, http.StatusOK, "confirm.html", portal.Form{
		AppTitle: h.target.title,
		CSRF:     h.app.csrfToken("confirm", linkID+"\x00"+n),
	})
}

// confirmed checks a Continue press: same origin, and the form's token
// matches the link and the browser's confirmation cookie.
func (h *Handler) confirmed(w http.ResponseWriter, r *http.Request, linkID string) bool {
	nonce := cookieValue(r.Header, h.confirmCookie())
	return h.sameOrigin(r) && nonce != "" &&
		h.app.checkCSRF("confirm", linkID+"\x00"+nonce, formValue(w, r, "csrf"))
}

func (h *Handler) confirmCookie() string { return h.target.cookie + "-confirm" }

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

func linkProblem(err error) problem {
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
func (h *Handler) redemptions(result string) prometheus.Counter {
	return h.app.metrics.redemptions.WithLabelValues(h.App, result)
}

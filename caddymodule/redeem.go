package caddymodule

import (
	"errors"
	"net/http"
	"time"

	"go.uber.org/zap"

	"github.com/portalgate/portalgate/caddymodule/internal/link"
	"github.com/portalgate/portalgate/caddymodule/internal/store"
)

// redeem turns a magic link into a session: verify, consume once, create a
// fresh session, set the cookie and send the user where the link points.
func (h *Handler) redeem(w http.ResponseWriter, r *http.Request) error {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return h.fail(w, r, problemMethod)
	}
	claims, err := h.app.codec.Verify(r.URL.Query().Get("token"), h.App)
	if err != nil {
		p := linkProblem(err)
		h.logger.Info("link rejected", zap.String("app", h.App), zap.String("reason", p.code))
		return h.fail(w, r, p)
	}
	if r.Method == http.MethodHead {
		// Link checkers and mail scanners probe with HEAD: answer, never consume.
		noStore(w)
		w.WriteHeader(http.StatusOK)
		return nil
	}
	// The link's record outlives every instant at which its token verifies.
	use := store.LinkUse{ID: claims.ID, UserID: claims.Subject, Uses: claims.Uses,
		IssuedAt: claims.IssuedAt.Time, Expires: claims.ExpiresAt.Add(link.Leeway)}
	s, err := h.app.sessions.Redeem(r.Context(), use, claims.User(), h.App, claims.Apps)
	switch {
	case errors.Is(err, store.ErrLinkUsed), errors.Is(err, store.ErrLinkRevoked):
		p := problemUsed
		if errors.Is(err, store.ErrLinkRevoked) {
			p = problemRevoked
		}
		h.logger.Info("link rejected", zap.String("app", h.App), zap.String("reason", p.code),
			zap.String("link_id", claims.ID), zap.String("user_id", claims.Subject))
		return h.fail(w, r, p)
	case err != nil:
		h.logger.Error("redeeming link", zap.String("app", h.App), zap.Error(err))
		return h.fail(w, r, problemStore)
	}
	// A redemption always starts a new session with a new id, so a planted
	// cookie is worth nothing; whatever session the browser had here ends.
	if old := cookieValue(r.Header, h.target.cookie); old != "" {
		if err := h.app.sessions.End(r.Context(), old); err != nil {
			h.logger.Error("ending replaced session", zap.String("app", h.App), zap.Error(err))
		}
	}
	h.logger.Info("link redeemed", zap.String("app", h.App), zap.String("user_id", s.User.ID),
		zap.String("link_id", claims.ID))
	http.SetCookie(w, h.cookie(s.ID, time.Duration(h.app.SessionTTL)))
	noStore(w)
	// claims.Path was checked to be a path inside the app when minted and
	// again when verified; the origin comes from configuration.
	http.Redirect(w, r, h.target.origin+claims.Path, http.StatusSeeOther)
	return nil
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

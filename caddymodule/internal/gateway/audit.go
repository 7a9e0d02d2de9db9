package gateway

import (
	"crypto/sha256"
	"encoding/hex"
	"time"

	"go.uber.org/zap"
)

// audit writes one structured event per security fact to the logger
// "portalgate.audit". Events never hold a token, a cookie value or a key;
// sessions appear as a reference (a hash prefix of the id) that correlates
// events without granting anything.
//
// Fields: event, app, user_id, link_id, session_ref, by, reason, client_ip,
// expires_at, sessions_ended, action, count, kind, try.
type audit struct{ l *zap.Logger }

// sessionRef is a non-secret handle of a session id.
func sessionRef(id string) string {
	sum := sha256.Sum256([]byte(id))
	return hex.EncodeToString(sum[:6])
}

func (a audit) linkMinted(by, app, userID, linkID string, expires time.Time) {
	a.l.Info("link minted", zap.String("event", "link_minted"), zap.String("by", by), zap.String("app", app),
		zap.String("user_id", userID), zap.String("link_id", linkID), zap.Time("expires_at", expires))
}

func (a audit) linkRedeemed(app, userID, linkID, sessionID, ip string) {
	a.l.Info("link redeemed", zap.String("event", "link_redeemed"), zap.String("app", app),
		zap.String("user_id", userID), zap.String("link_id", linkID), zap.String("client_ip", ip))
	a.l.Info("session created", zap.String("event", "session_created"), zap.String("app", app),
		zap.String("user_id", userID), zap.String("session_ref", sessionRef(sessionID)), zap.String("link_id", linkID))
}

func (a audit) linkRejected(app, reason, ip, linkID, userID string) {
	fields := []zap.Field{zap.String("event", "link_rejected"), zap.String("app", app),
		zap.String("reason", reason), zap.String("client_ip", ip)}
	if linkID != "" {
		fields = append(fields, zap.String("link_id", linkID), zap.String("user_id", userID))
	}
	a.l.Info("link rejected", fields...)
}

func (a audit) apiKeyRejected(ip string) {
	a.l.Info("API key rejected", zap.String("event", "api_key_rejected"), zap.String("client_ip", ip))
}

func (a audit) sessionEnded(app, userID, sessionID, reason string) {
	a.l.Info("session ended", zap.String("event", "session_ended"), zap.String("app", app),
		zap.String("user_id", userID), zap.String("session_ref", sessionRef(sessionID)), zap.String("reason", reason))
}

func (a audit) linkRevoked(by, linkID string) {
	a.l.Info("link revoked", zap.String("event", "link_revoked"), zap.String("by", by), zap.String("link_id", linkID))
}

func (a audit) userRevoked(by, userID string, sessionsEnded int) {
	a.l.Info("user revoked", zap.String("event", "user_revoked"), zap.String("by", by),
		zap.String("user_id", userID), zap.Int("sessions_ended", sessionsEnded))
}

func (a audit) menuChanged(by, action string) {
	a.l.Info("menu changed", zap.String("event", "menu_changed"), zap.String("by", by), zap.String("action", action))
}

func (a audit) tenantChanged(by, id, action string) {
	a.l.Info("tenant "+action, zap.String("event", "tenant_"+action), zap.String("by", by), zap.String("tenant", id))
}

func (a audit) contactsSynced(by string, count int) {
	a.l.Info("contacts synced", zap.String("event", "contacts_synced"), zap.String("by", by), zap.Int("count", count))
}

// mail is what became of an e-mail, named by the link it carries.
func (a audit) mail(kind, linkID, status string, try int) {
	a.l.Info("mail "+status, zap.String("event", "mail_"+status), zap.String("kind", kind),
		zap.String("link_id", linkID), zap.Int("try", try))
}

// codeRejected is a wrong sign-in code: the sign-in's user and link, and
// how many codes it has taken.
func (a audit) codeRejected(userID, linkID, ip string, tries int) {
	a.l.Info("sign-in code rejected", zap.String("event", "signin_code_rejected"), zap.String("user_id", userID),
		zap.String("link_id", linkID), zap.String("client_ip", ip), zap.Int("try", tries))
}

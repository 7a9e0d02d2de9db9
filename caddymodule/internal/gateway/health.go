package gateway

import (
	"context"
	"encoding/json"
	"net/http"
	"time"
)

// HealthInfo is what the health check says of the configuration: the
// store's name and whether the keys were generated (none configured).
type HealthInfo struct {
	Backend                                    string
	GeneratedSigningKey, GeneratedAssertionKey bool
}

// Health is the answer of the health check, for readiness probes: is the
// store reachable, which keys sign.
type Health struct {
	Status string `json:"status"`
	Store  struct {
		Backend   string `json:"backend"`
		Reachable bool   `json:"reachable"`
		Error     string `json:"error,omitempty"`
	} `json:"store"`
	Keys struct {
		Signing   KeyStatus `json:"signing"`
		Assertion KeyStatus `json:"assertion"`
	} `json:"keys"`
	// Mail, with a mailer, is its queue: how many e-mails wait, of how
	// many it takes before it refuses more.
	Mail *MailStatus `json:"mail,omitempty"`
}

// MailStatus is the mail queue's fill.
type MailStatus struct {
	Waiting  int `json:"waiting"`
	Capacity int `json:"capacity"`
}

// KeyStatus is one key ring: KeyID signs; Keys is how many verify (or are
// published).
type KeyStatus struct {
	KeyID     string `json:"kid"`
	Keys      int    `json:"keys"`
	Generated bool   `json:"generated"`
}

// Health checks the store (within 2 s) and describes the keys: 200 when
// ready, 503 when the store cannot be reached.
func (g *Gateway) Health(ctx context.Context) (int, Health) {
	var h Health
	h.Status = "ok"
	h.Store.Backend, h.Store.Reachable = g.cfg.Health.Backend, true
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if err := g.cfg.Store.Ping(ctx); err != nil {
		h.Status, h.Store.Reachable, h.Store.Error = "unavailable", false, err.Error()
	}
	ring := g.cfg.Codec.Ring
	h.Keys.Signing = KeyStatus{KeyID: ring.SigningID(), Keys: ring.Len(), Generated: g.cfg.Health.GeneratedSigningKey}
	ids := g.cfg.Asserter.KeyIDs()
	h.Keys.Assertion = KeyStatus{KeyID: ids[0], Keys: len(ids), Generated: g.cfg.Health.GeneratedAssertionKey}
	if g.mail != nil {
		h.Mail = &MailStatus{Waiting: g.mail.Len(), Capacity: g.mail.Cap()}
	}
	if !h.Store.Reachable {
		return http.StatusServiceUnavailable, h
	}
	return http.StatusOK, h
}

// ServeHealth answers a health check as JSON.
func (g *Gateway) ServeHealth(w http.ResponseWriter, r *http.Request) {
	status, h := g.Health(r.Context())
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(h)
}

package caddymodule

import (
	"context"
	"encoding/json"
	"net/http"
	"time"
)

// health is GET /portalgate/health on the admin endpoint, for readiness
// probes: is the store reachable, which keys sign. 200 when ready, 503 when
// the store cannot be reached.
type health struct {
	Status string `json:"status"`
	Store  struct {
		Backend   string `json:"backend"`
		Reachable bool   `json:"reachable"`
		Error     string `json:"error,omitempty"`
	} `json:"store"`
	Keys struct {
		Signing   keyStatus `json:"signing"`
		Assertion keyStatus `json:"assertion"`
	} `json:"keys"`
}

type keyStatus struct {
	// KeyID signs; Keys is how many verify (or are published).
	KeyID     string `json:"kid"`
	Keys      int    `json:"keys"`
	Generated bool   `json:"generated"`
}

// pinger is a store that can tell whether it is reachable.
type pinger interface {
	Ping(ctx context.Context) error
}

func (a *App) health(ctx context.Context) (int, health) {
	var h health
	h.Status = "ok"
	h.Store.Backend, h.Store.Reachable = a.backend, true
	if p, ok := a.inner.(pinger); ok {
		ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		if err := p.Ping(ctx); err != nil {
			h.Status, h.Store.Reachable, h.Store.Error = "unavailable", false, err.Error()
		}
	}
	h.Keys.Signing = keyStatus{KeyID: a.codec.Ring.SigningID(), Keys: a.codec.Ring.Len(), Generated: len(a.SigningKeys) == 0}
	ids := a.asserter.KeyIDs()
	h.Keys.Assertion = keyStatus{KeyID: ids[0], Keys: len(ids), Generated: len(a.AssertionKeys) == 0}
	if !h.Store.Reachable {
		return http.StatusServiceUnavailable, h
	}
	return http.StatusOK, h
}

func serveHealth(w http.ResponseWriter, r *http.Request, a *App) error {
	status, h := a.health(r.Context())
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	return json.NewEncoder(w).Encode(h)
}

package caddymodule

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/portalgate/portalgate/caddymodule/internal/gateway"
	"github.com/portalgate/portalgate/caddymodule/internal/session"
	"github.com/portalgate/portalgate/caddymodule/internal/store"
)

// metrics are Portalgate's series in Caddy's own Prometheus registry, shown
// at the admin endpoint's /metrics: the gateway's counters, the store's
// latencies, the session cache's hits.
type metrics struct {
	gateway  *gateway.Metrics
	storeOps *prometheus.HistogramVec
}

func newMetrics() *metrics {
	return &metrics{
		gateway: gateway.NewMetrics(),
		storeOps: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: gateway.MetricsNamespace, Name: "store_operation_seconds",
			Help:    "Latency of session store operations, by store and operation.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, 1},
		}, []string{"store", "operation"}),
	}
}

// register puts the series into the config's registry. The active-session
// gauge is there for a store that counts its sessions cheaply.
func (m *metrics) register(ctx caddy.Context, backend string, sessions *session.Manager, st store.Sessions) error {
	collectors := append(m.gateway.Collectors(), m.storeOps,
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Namespace: gateway.MetricsNamespace, Name: "cache_hits_total", Help: "Session lookups served by the L1 cache.",
		}, func() float64 { h, _ := sessions.Stats(); return float64(h) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Namespace: gateway.MetricsNamespace, Name: "cache_misses_total", Help: "Session lookups that read the store.",
		}, func() float64 { _, mi := sessions.Stats(); return float64(mi) }),
	)
	if _, err := st.CountSessions(ctx); !errors.Is(err, errors.ErrUnsupported) {
		collectors = append(collectors, prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: gateway.MetricsNamespace, Name: "active_sessions", Help: "Sessions in the store (live or awaiting purge).",
			ConstLabels: prometheus.Labels{"store": backend},
		}, func() float64 {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			n, err := st.CountSessions(ctx)
			if err != nil {
				return -1
			}
			return float64(n)
		}))
	}
	reg := ctx.GetMetricsRegistry()
	for _, c := range collectors {
		if err := reg.Register(c); err != nil {
			return fmt.Errorf("portalgate: registering metrics: %w", err)
		}
	}
	return nil
}

// timedStore observes the latency of every session-store operation. It is
// the whole store.Store: every ability of the backend stays in reach.
type timedStore struct {
	store.Store
	ops map[string]prometheus.Observer
}

// timed wraps st so every session operation is timed under backend's label.
func (m *metrics) timed(st store.Store, backend string) store.Store {
	t := &timedStore{Store: st, ops: map[string]prometheus.Observer{}}
	for _, op := range []string{"put_link", "redeem", "link", "revoke_link", "revoke_user", "create", "get", "touch", "delete", "user_sessions", "purge"} {
		t.ops[op] = m.storeOps.WithLabelValues(backend, op)
	}
	return t
}

func (t *timedStore) since(op string, start time.Time) {
	t.ops[op].Observe(time.Since(start).Seconds())
}

func (t *timedStore) PutLink(ctx context.Context, g store.Grant) error {
	defer t.since("put_link", time.Now())
	return t.Store.PutLink(ctx, g)
}

func (t *timedStore) Redeem(ctx context.Context, l store.Spend, s *store.Session) (store.Grant, error) {
	defer t.since("redeem", time.Now())
	return t.Store.Redeem(ctx, l, s)
}

func (t *timedStore) RevokeLink(ctx context.Context, id string) error {
	defer t.since("revoke_link", time.Now())
	return t.Store.RevokeLink(ctx, id)
}

func (t *timedStore) RevokeUser(ctx context.Context, userID string, at, until time.Time) ([]string, error) {
	defer t.since("revoke_user", time.Now())
	return t.Store.RevokeUser(ctx, userID, at, until)
}

func (t *timedStore) CreateSession(ctx context.Context, s *store.Session) error {
	defer t.since("create", time.Now())
	return t.Store.CreateSession(ctx, s)
}

func (t *timedStore) GetSession(ctx context.Context, id string) (*store.Session, error) {
	defer t.since("get", time.Now())
	return t.Store.GetSession(ctx, id)
}

func (t *timedStore) TouchSession(ctx context.Context, id string, idleAt time.Time) error {
	defer t.since("touch", time.Now())
	return t.Store.TouchSession(ctx, id, idleAt)
}

func (t *timedStore) DeleteSession(ctx context.Context, id string) error {
	defer t.since("delete", time.Now())
	return t.Store.DeleteSession(ctx, id)
}

func (t *timedStore) UserSessions(ctx context.Context, userID string) ([]store.Session, error) {
	defer t.since("user_sessions", time.Now())
	return t.Store.UserSessions(ctx, userID)
}

func (t *timedStore) Link(ctx context.Context, id string) (store.LinkState, error) {
	defer t.since("link", time.Now())
	return t.Store.Link(ctx, id)
}

func (t *timedStore) Purge(ctx context.Context) (int, error) {
	defer t.since("purge", time.Now())
	return t.Store.Purge(ctx)
}

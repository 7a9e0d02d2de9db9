package caddymodule

import (
	"context"
	"fmt"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/portalgate/portalgate/caddymodule/internal/store"
)

// metrics are Portalgate's series in Caddy's own Prometheus registry, shown
// at the admin endpoint's /metrics.
type metrics struct {
	minted      *prometheus.CounterVec
	redemptions *prometheus.CounterVec
	gated       *prometheus.CounterVec
	storeOps    *prometheus.HistogramVec
}

const metricsNamespace = "portalgate"

func newMetrics() *metrics {
	return &metrics{
		minted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: metricsNamespace, Name: "links_minted_total",
			Help: "Magic links minted, by target app.",
		}, []string{"app"}),
		redemptions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: metricsNamespace, Name: "redemptions_total",
			Help: "Link redemptions by app and result (ok, used, revoked, expired, bad_signature, malformed, wrong_app, csrf_failed, rate_limited, store_error).",
		}, []string{"app", "result"}),
		gated: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: metricsNamespace, Name: "gated_requests_total",
			Help: "Requests through the gate by app and result (ok, no_session, store_error).",
		}, []string{"app", "result"}),
		storeOps: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: metricsNamespace, Name: "store_operation_seconds",
			Help:    "Latency of session store operations, by store and operation.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, 1},
		}, []string{"store", "operation"}),
	}
}

// registerMetrics puts the app's series into the config's registry.
func (a *App) registerMetrics(ctx caddy.Context, backend string, inner store.Store) error {
	m := a.metrics
	collectors := []prometheus.Collector{
		m.minted, m.redemptions, m.gated, m.storeOps,
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Namespace: metricsNamespace, Name: "cache_hits_total", Help: "Session lookups served by the L1 cache.",
		}, func() float64 { h, _ := a.sessions.Stats(); return float64(h) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Namespace: metricsNamespace, Name: "cache_misses_total", Help: "Session lookups that read the store.",
		}, func() float64 { _, mi := a.sessions.Stats(); return float64(mi) }),
	}
	if counter, ok := inner.(sessionCounter); ok {
		collectors = append(collectors, prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: metricsNamespace, Name: "active_sessions", Help: "Sessions in the store (live or awaiting purge).",
			ConstLabels: prometheus.Labels{"store": backend},
		}, func() float64 {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			n, err := counter.CountSessions(ctx)
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

// sessionCounter is a store that can count its sessions cheaply.
type sessionCounter interface {
	CountSessions(ctx context.Context) (int, error)
}

// timedStore observes the latency of every store operation.
type timedStore struct {
	store.Store
	ops map[string]prometheus.Observer
}

// instrument wraps st so every operation is timed under backend's label.
// A store shared between instances keeps its Watch.
func instrument(st store.Store, backend string, hist *prometheus.HistogramVec) store.Store {
	t := &timedStore{Store: st, ops: map[string]prometheus.Observer{}}
	for _, op := range []string{"redeem", "revoke_link", "revoke_user", "create", "get", "touch", "delete", "purge"} {
		t.ops[op] = hist.WithLabelValues(backend, op)
	}
	if w, ok := st.(store.Watcher); ok {
		return &timedWatcher{timedStore: t, w: w}
	}
	return t
}

type timedWatcher struct {
	*timedStore
	w store.Watcher
}

func (t *timedWatcher) Watch(ctx context.Context, forget func(ids ...string), synced func(ok bool)) {
	t.w.Watch(ctx, forget, synced)
}

func (t *timedStore) since(op string, start time.Time) {
	t.ops[op].Observe(time.Since(start).Seconds())
}

func (t *timedStore) Redeem(ctx context.Context, l store.LinkUse, s *store.Session) error {
	defer t.since("redeem", time.Now())
	return t.Store.Redeem(ctx, l, s)
}

func (t *timedStore) RevokeLink(ctx context.Context, id string, until time.Time) error {
	defer t.since("revoke_link", time.Now())
	return t.Store.RevokeLink(ctx, id, until)
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

func (t *timedStore) Purge(ctx context.Context) (int, error) {
	defer t.since("purge", time.Now())
	return t.Store.Purge(ctx)
}

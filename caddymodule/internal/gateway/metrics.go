package gateway

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the gateway's counters. caddymodule registers them in Caddy's
// registry; a gateway without a registry counts into its own.
type Metrics struct {
	Minted      *prometheus.CounterVec
	Redemptions *prometheus.CounterVec
	Gated       *prometheus.CounterVec
	Mail        *prometheus.CounterVec
	SignIns     *prometheus.CounterVec
}

// MetricsNamespace starts every series' name.
const MetricsNamespace = "portalgate"

// NewMetrics makes the counters, unregistered.
func NewMetrics() *Metrics {
	return &Metrics{
		Minted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: MetricsNamespace, Name: "links_minted_total",
			Help: "Magic links minted, by target app.",
		}, []string{"app"}),
		Redemptions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: MetricsNamespace, Name: "redemptions_total",
			Help: "Link redemptions by app and result (ok, used, revoked, expired, bad_signature, malformed, wrong_app, csrf_failed, rate_limited, store_error).",
		}, []string{"app", "result"}),
		Gated: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: MetricsNamespace, Name: "gated_requests_total",
			Help: "Requests through the gate by app and result (ok, no_session, store_error).",
		}, []string{"app", "result"}),
		Mail: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: MetricsNamespace, Name: "mail_messages_total",
			Help: "E-mails by kind (link) and what became of them (queued, sent, failed, queue_full).",
		}, []string{"kind", "status"}),
		SignIns: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: MetricsNamespace, Name: "signin_requests_total",
			Help: "Sign-in e-mails asked for and codes typed, by result (sent, unknown, address_limited, mail_failed, dropped, store_error, code_ok, code_wrong, code_unknown, address_guessed).",
		}, []string{"result"}),
	}
}

// Collectors are the series to register.
func (m *Metrics) Collectors() []prometheus.Collector {
	return []prometheus.Collector{m.Minted, m.Redemptions, m.Gated, m.Mail, m.SignIns}
}

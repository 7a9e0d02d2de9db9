package caddymodule

import (
	"net/http"
	"strings"
	"testing"
)

func TestMetrics_AdminEndpointShowsPortalgateSeries(t *testing.T) {
	g := newGateway(t, "store bolt "+t.TempDir()+"/metrics.db")
	c := g.signIn("courses", "c_metrics")
	g.do(c, http.MethodGet, "http://"+g.courses+"/")
	g.do(c, http.MethodGet, "http://"+g.courses+"/")
	g.do(g.client(), http.MethodGet, "http://"+g.courses+"/", "Accept: application/json")
	g.do(g.client(), http.MethodGet, "http://"+g.courses+magicPath+"?token=nope")
	m := g.do(http.DefaultClient, http.MethodGet, "http://"+g.admin+"/metrics").Body
	for _, want := range []string{
		`portalgate_links_minted_total{app="courses"} 1`,
		`portalgate_redemptions_total{app="courses",result="ok"} 1`,
		`portalgate_redemptions_total{app="courses",result="malformed"} 1`,
		`portalgate_gated_requests_total{app="courses",result="ok"} 2`,
		`portalgate_gated_requests_total{app="courses",result="no_session"} 1`,
		`portalgate_store_operation_seconds_count{operation="redeem",store="bolt"} 1`,
		`portalgate_active_sessions{store="bolt"} 1`,
		`portalgate_cache_hits_total`,
		`portalgate_cache_misses_total`,
	} {
		if !strings.Contains(m, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

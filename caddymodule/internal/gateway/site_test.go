package gateway

import (
	"net/http"
	"testing"
)

func TestGateway_UnknownGatewayPathIsNotFound(t *testing.T) {
	t.Parallel()
	g := newTestGateway(t)
	before := g.upstreamHits.Load()
	r := g.do(g.signIn("courses", "nf"), http.MethodGet, "http://"+g.courses+"/_portalgate/nothing")
	if r.StatusCode != http.StatusNotFound || g.upstreamHits.Load() != before {
		t.Fatalf("unknown gateway path: %d", r.StatusCode)
	}
}

package gateway

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/portalgate/portalgate/caddymodule/internal/identity"
)

// BenchmarkIdentity_Set is the gate's header work: it deletes a client-sent X-Portal-* header, sets the
// six identity headers and adds frame-ancestors to the answer (each op
// refills the header maps first). The {http.auth.user.*} placeholders need
// Caddy's per-request replacer: BenchmarkGate_SessionHit has them.
func BenchmarkIdentity_Set(b *testing.B) {
	u := &identity.User{ID: "c_bench", Email: "ada@example.com", Name: "Ada Lovelace", Type: identity.Contact, Location: "loc_1"}
	r := httptest.NewRequest(http.MethodGet, "http://courses.test/lesson/1", nil)
	resp := http.Header{}
	accept, forged, server := []string{"text/html"}, []string{"admin"}, []string{"Caddy"}
	const frameAncestors = "frame-ancestors 'self' http://portal.test"
	b.ReportAllocs()
	for b.Loop() {
		clear(r.Header)
		r.Header["Accept"], r.Header["X-Portal-User-Id"] = accept, forged
		clear(resp)
		resp["Server"] = server
		identity.StripHeaders(r.Header)
		identity.SetHeaders(r.Header, u, "courses")
		resp[headerCSP] = []string{frameAncestors}
	}
	if r.Header.Get(identity.HeaderUserID) != "c_bench" || r.Header.Get(identity.HeaderLocation) != "loc_1" || resp.Get(headerCSP) != frameAncestors {
		b.Fatalf("request %v, answer %v", r.Header, resp)
	}
}

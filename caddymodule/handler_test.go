package caddymodule

import (
	"io"
	"net/http"
	"testing"

	"github.com/portalgate/portalgate/caddymodule/internal/identity"
	"github.com/portalgate/portalgate/caddymodule/internal/testkit/web"
)

func TestGate_IdentityTrailersAreRefused(t *testing.T) {
	g := newGateway(t, "store memory")
	c := g.signIn("courses", "c_trailer")
	before := g.upstreamHits.Load()
	res := postWithTrailers(t, c, "http://"+g.courses+"/upload", []string{"X-Portal-User-Id"}, http.Header{"X-Portal-User-Id": {"admin"}})
	if res.StatusCode != http.StatusBadRequest || g.upstreamHits.Load() != before {
		t.Fatalf("identity trailer: %d, upstream hits %d", res.StatusCode, g.upstreamHits.Load()-before)
	}
}

// A client that declares an innocent trailer and sends identity trailers it
// never declared after the last chunk: net/http adds them to the declared
// set, and reverse_proxy forwards that set.
func TestGate_UndeclaredIdentityTrailersNeverReachTheApp(t *testing.T) {
	g := newGateway(t, "store memory")
	c := g.signIn("courses", "c_trailer")
	res := postWithTrailers(t, c, "http://"+g.courses+"/upload", []string{"X-Note"},
		http.Header{"X-Note": {"fine"}, "X-Portal-User-Id": {"admin"}, "X-Portal-User-Type": {"agency_user"}})
	if res.StatusCode != http.StatusOK {
		t.Fatalf("a request with trailers: %d", res.StatusCode)
	}
	tr := *g.lastTrailer.Load()
	if tr.Get("X-Note") != "fine" {
		t.Fatalf("the declared trailer did not arrive (%v): the test proves nothing", tr)
	}
	for name, v := range tr {
		if identity.IsHeader(name) {
			t.Errorf("client-sent trailer %s: %v reached the app", name, v)
		}
	}
}

func TestGate_ConnectionHeaderCannotDropIdentity(t *testing.T) {
	g := newGateway(t, "store memory")
	c := g.client()
	g.do(c, http.MethodGet, g.mint(MintRequest{App: "courses", User: identityWithLocation("c_conn", "loc_9")}).URL, browser)
	h := web.Echoed(t, g.do(c, http.MethodGet, "http://"+g.courses+"/",
		"Connection: keep-alive, X-Portal-Location-Id, x_portal_user_type"))
	if h.Get("X-Portal-Location-Id") != "loc_9" || h.Get("X-Portal-User-Type") != "contact" {
		t.Fatalf("identity after a hostile Connection header: %v", h)
	}
}

// postWithTrailers posts a chunked body that declares the trailers named in
// declared and sends sent after its last chunk, declared or not: net/http's
// client writes every trailer it holds once the body has ended.
func postWithTrailers(t *testing.T, c *http.Client, url string, declared []string, sent http.Header) *http.Response {
	t.Helper()
	pr, pw := io.Pipe()
	req, _ := http.NewRequest(http.MethodPost, url, pr)
	req.Trailer = http.Header{}
	for _, name := range declared {
		req.Trailer[name] = nil
	}
	go func() {
		_, _ = pw.Write([]byte("data"))
		for k, v := range sent {
			req.Trailer[k] = v
		}
		pw.Close()
	}()
	res, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return res
}

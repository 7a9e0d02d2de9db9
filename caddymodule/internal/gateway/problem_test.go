package gateway

import (
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"strings"
	"testing"
)

func TestHeaders_GatewayPagesAreLockedDown(t *testing.T) {
	t.Parallel()
	g := newTestGateway(t)
	pages := map[string]resp{
		"error":   g.do(g.client(), http.MethodGet, "http://"+g.courses+magicPath+"?token=x", browser),
		"home":    g.do(g.signInPortal("c_hdr"), http.MethodGet, "http://"+g.portal+"/", browser),
		"sign in": g.do(g.client(), http.MethodGet, "http://"+g.portal+"/", browser),
	}
	for name, r := range pages {
		h := r.Header
		csp := h.Get("Content-Security-Policy")
		if h.Get("Cache-Control") != "no-store" || h.Get("Referrer-Policy") != "no-referrer" || h.Get("X-Content-Type-Options") != "nosniff" ||
			!strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "frame-ancestors http://"+g.portal) ||
			strings.Contains(csp, "unsafe-inline") || strings.Contains(r.Body, "<script") {
			t.Errorf("%s page headers: %v", name, h)
		}
		// The inline style sheet is allowed by its hash, and only it.
		start := strings.Index(r.Body, "<style>") + len("<style>")
		sum := sha256.Sum256([]byte(r.Body[start:strings.Index(r.Body, "</style>")]))
		if !strings.Contains(csp, base64.StdEncoding.EncodeToString(sum[:])) {
			t.Errorf("%s page: the CSP does not allow its own style sheet", name)
		}
	}
}

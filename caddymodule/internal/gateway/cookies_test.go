package gateway

import (
	"net/http"
	"strings"
	"testing"

	"github.com/portalgate/portalgate/caddymodule/internal/session"
)

// benchCookie is the Cookie line a browser sends an app: the session among
// the site's own cookies.
var benchCookie = "_ga=GA1.2.3; portalgate-courses=" + strings.Repeat("S", session.IDLen) + "; theme=dark"

// BenchmarkCookie_Parse finds the session id in the Cookie line.
func BenchmarkCookie_Parse(b *testing.B) {
	h := http.Header{"Cookie": {benchCookie}}
	b.ReportAllocs()
	for b.Loop() {
		if cookieValue(h, "portalgate-courses") == "" {
			b.Fatal("no session cookie found")
		}
	}
}

// BenchmarkCookie_Strip removes the session cookie from the line that goes
// upstream (each op puts the browser's line back first).
func BenchmarkCookie_Strip(b *testing.B) {
	h := http.Header{}
	lines := make([]string, 1)
	b.ReportAllocs()
	for b.Loop() {
		lines[0] = benchCookie
		h["Cookie"] = lines
		stripSessionCookies(h)
	}
	if got := h.Get("Cookie"); got != "_ga=GA1.2.3; theme=dark" {
		b.Fatalf("Cookie upstream = %q", got)
	}
}

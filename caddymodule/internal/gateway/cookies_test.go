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
// upstream, as the gate does, the kept cookies joined in the room of the
// request's one allocation (each op puts the browser's line back first).
func BenchmarkCookie_Strip(b *testing.B) {
	h := http.Header{}
	lines := make([]string, 1)
	b.ReportAllocs()
	for b.Loop() {
		lines[0] = benchCookie
		h["Cookie"] = lines
		gatedCookies(h)
	}
	if got := h.Get("Cookie"); got != "_ga=GA1.2.3; theme=dark" {
		b.Fatalf("Cookie upstream = %q", got)
	}
}

// TestCookies_EveryLineLosesItsSessionCookiesAndNothingElse compares the
// gate's rewrite of a Cookie line (cut, or joined in its room) with the
// cookies parsed one by one, over lines of every shape.
func TestCookies_EveryLineLosesItsSessionCookiesAndNothingElse(t *testing.T) {
	t.Parallel()
	parts := []string{"a=1", " b=2", "portalgate-courses=S", "__Host-portalgate-x=S", "", " ", "c=" + strings.Repeat("z", 200), "portalgatex=keep", "d"}
	var lines []string
	for _, p := range parts {
		for _, q := range parts {
			for _, r := range parts {
				lines = append(lines, p+";"+q+"; "+r, p+"; "+q, r)
			}
		}
	}
	for _, line := range lines {
		var want []string
		for part := range strings.SplitSeq(line, ";") {
			part = strings.TrimSpace(part)
			if name, _, _ := strings.Cut(part, "="); part != "" && !isSessionCookie(name) {
				want = append(want, part)
			}
		}
		h := http.Header{"Cookie": {line}}
		gatedCookies(h)
		if !strings.Contains(line, cookiePrefix) {
			// Not ours to touch: the line goes on as the browser sent it.
			if h.Get("Cookie") != line {
				t.Fatalf("Cookie %q without session cookies went upstream as %q", line, h["Cookie"])
			}
			continue
		}
		var got []string
		for part := range strings.SplitSeq(h.Get("Cookie"), ";") {
			if part = strings.TrimSpace(part); part != "" {
				got = append(got, part)
			}
		}
		if strings.Join(got, "; ") != strings.Join(want, "; ") || (len(want) == 0) != (h["Cookie"] == nil) {
			t.Fatalf("Cookie %q went upstream as %q, want the cookies %q", line, h["Cookie"], want)
		}
	}
}

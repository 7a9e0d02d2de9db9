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

// TestCookies_SessionCookiesOfEveryShapeAreDropped: lines written out by
// hand, with what must go upstream, so the rewrite is checked against more
// than its own parsing.
func TestCookies_SessionCookiesOfEveryShapeAreDropped(t *testing.T) {
	t.Parallel()
	id := strings.Repeat("S", session.IDLen)
	for _, tc := range []struct{ line, want string }{
		{"portalgate-courses=" + id, ""},
		{"portalgate-courses", ""},
		{"portalgate-courses=", ""},
		{"\tportalgate-courses=" + id + "\t", ""},
		{"__Host-portalgate-courses=" + id + "; a=1", "a=1"},
		{"a=1;portalgate-courses=" + id, "a=1"},
		{`a="x;y"; portalgate-courses=` + id + "; b=2", `a="x; y"; b=2`},
		{"a=1; portalgate-courses=" + id + "; b=2; portalgate-communities=" + id + "; c=3", "a=1; b=2; c=3"},
		{"a=1;\tportalgate-courses=" + id + ";\tb=2", "a=1; b=2"},
		{"a=portalgate-courses; portalgatex=1", "a=portalgate-courses; portalgatex=1"},
		{"a=1; __Host-portalgate-x=" + id + ";;; portalgate-y; b=2;", "a=1; b=2"},
		{";;", ";;"},
	} {
		h := http.Header{"Cookie": {tc.line}}
		gatedCookies(h)
		if got := h.Get("Cookie"); got != tc.want || (tc.want == "") != (h["Cookie"] == nil) {
			t.Errorf("Cookie %q went upstream as %q, want %q", tc.line, h["Cookie"], tc.want)
		}
	}
}

// TestCookies_ALineOfEveryRoomSizeCostsTheRequestOneAllocation: a line to
// join, of each room size and at its edges, costs the request its one
// allocation and no more (one more past the largest room). Not parallel:
// testing.AllocsPerRun counts the whole process's allocations.
func TestCookies_ALineOfEveryRoomSizeCostsTheRequestOneAllocation(t *testing.T) {
	id := strings.Repeat("S", session.IDLen)
	for _, n := range []int{7, 64, 65, 192, 193, 448, 449, 2000} {
		// "a=1" and "b=vvv" on either side of the session cookie: n bytes
		// to join.
		kept := "a=1; b=" + strings.Repeat("v", n-len("a=1; b="))
		line := "a=1; portalgate-courses=" + id + "; " + strings.TrimPrefix(kept, "a=1; ")
		h := http.Header{}
		lines := make([]string, 1)
		allocs := testing.AllocsPerRun(20, func() {
			lines[0] = line
			h["Cookie"] = lines
			gatedCookies(h)
		})
		if h.Get("Cookie") != kept {
			t.Fatalf("%d bytes kept: upstream %q", n, h.Get("Cookie"))
		}
		want := 1.0
		if n > 448 {
			want = 2 // the line gets an allocation of its own
		}
		if allocs != want && !raceEnabled {
			t.Errorf("a line keeping %d bytes: %.0f allocations, want %.0f", n, allocs, want)
		}
	}
}

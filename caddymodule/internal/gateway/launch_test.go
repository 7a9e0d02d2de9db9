package gateway

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/portalgate/portalgate/caddymodule/internal/testkit/web"
)

func TestLaunch_OpenRedirectNextStaysOnTheApp(t *testing.T) {
	t.Parallel()
	g := newTestGateway(t)
	c := g.client()
	g.do(c, http.MethodGet, g.mint(MintRequest{App: "portal", User: userOf("redir")}).URL, browser)
	for _, next := range []string{"//evil.example.com/", "/\\evil.example.com", "https://evil.example.com", "javascript:alert(1)"} {
		magic := g.do(c, http.MethodGet, "http://"+g.portal+launchPrefix+"courses?next="+strings.ReplaceAll(next, "/", "%2F"), browser).Header.Get("Location")
		if land := g.do(c, http.MethodGet, magic, browser).Header.Get("Location"); land != "http://"+g.courses+"/" {
			t.Fatalf("next=%q landed on %q", next, land)
		}
	}
}

func TestLaunch_AppOutsideTheLinkIsForbidden(t *testing.T) {
	t.Parallel()
	g := newTestGateway(t)
	c := g.client()
	g.do(c, http.MethodGet, g.mint(MintRequest{App: "portal", User: userOf("limited"), Apps: []string{"courses"}}).URL, browser)
	if r := g.do(c, http.MethodGet, "http://"+g.portal+launchPrefix+"communities", browser); r.StatusCode != http.StatusForbidden {
		t.Fatalf("launch of an app outside the link: %d", r.StatusCode)
	}
	home := g.do(c, http.MethodGet, "http://"+g.portal+"/", browser)
	if strings.Contains(home.Body, "launch/communities") {
		t.Fatal("home lists an app the user may not open")
	}
	if r := g.do(g.client(), http.MethodGet, "http://"+g.portal+launchPrefix+"courses", browser); r.StatusCode != http.StatusUnauthorized {
		t.Fatalf("launch without a session: %d", r.StatusCode)
	}
	if r := g.do(c, http.MethodGet, "http://"+g.portal+launchPrefix+"nope", browser); r.StatusCode != http.StatusNotFound {
		t.Fatalf("launch of an unknown app: %d", r.StatusCode)
	}
}

// A signed-in contact calling launch in a loop used to create a session a
// time without end (5,000 in 14 s, the bolt file growing by GBs an hour).
// Launches are slowed per portal session, and the sessions a user keeps
// on one app are bounded, the oldest ended first.
func TestLaunch_LoopIsSlowedAndItsSessionsBounded(t *testing.T) {
	t.Parallel()
	g := newTestGateway(t)
	c := g.signInPortal("c_loop")
	var newest *http.Client
	for i := range launchesPerMinute {
		magic := g.do(c, http.MethodGet, "http://"+g.portal+launchPrefix+"courses", browser).Header.Get("Location")
		newest = g.client()
		if r := g.do(newest, http.MethodGet, magic, browser); r.StatusCode != http.StatusSeeOther {
			t.Fatalf("launch %d: %d", i+1, r.StatusCode)
		}
	}
	r := g.do(c, http.MethodGet, "http://"+g.portal+launchPrefix+"courses", browser)
	if r.StatusCode != http.StatusTooManyRequests || r.Header.Get("Retry-After") == "" {
		t.Fatalf("launch past the budget: %d", r.StatusCode)
	}
	sessions, err := g.store.UserSessions(context.Background(), "c_loop")
	if err != nil {
		t.Fatal(err)
	}
	onCourses := 0
	for _, s := range sessions {
		if s.App == "courses" {
			onCourses++
		}
	}
	if onCourses != maxSessionsPerApp {
		t.Fatalf("%d live sessions on courses after %d launches, want %d", onCourses, launchesPerMinute, maxSessionsPerApp)
	}
	if h := web.Echoed(t, g.do(newest, http.MethodGet, "http://"+g.courses+"/")); h.Get("X-Portal-User-Id") != "c_loop" {
		t.Fatal("the newest session was ended")
	}
	// The budget refills.
	g.clock.Advance(time.Minute)
	if r := g.do(c, http.MethodGet, "http://"+g.portal+launchPrefix+"courses", browser); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("launch a minute later: %d", r.StatusCode)
	}
}

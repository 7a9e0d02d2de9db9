package gateway

import (
	"context"
	"encoding/base64"
	"net/http"
	"net/url"
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

// A launch link used to carry, in its token, the origin of the portal
// session it came from: the link that began it and the portal session's
// own id, the browser's cookie. The app host's access log, the browser's
// history or a proxy in between then held a working portal session. A
// link's token now names the link alone; the origin is kept with its grant
// in the store, and is never a session id.
func TestLaunch_LinkURLCarriesNoSessionOfThePortal(t *testing.T) {
	t.Parallel()
	g := newTestGateway(t)
	c := g.signInPortal("c_history")
	u, _ := url.Parse("http://" + g.portal + "/")
	portalSession := c.Jar.Cookies(u)[0].Value
	magic := g.do(c, http.MethodGet, "http://"+g.portal+launchPrefix+"courses?next=%2Flessons%2Fprivate", browser).Header.Get("Location")
	for _, secret := range []string{portalSession, "c_history@example.com", "User c_history", "private"} {
		if text := linkText(t, magic); strings.Contains(text, secret) {
			t.Fatalf("the launch link %s carries %q", text, secret)
		}
	}
	if r := g.do(c, http.MethodGet, magic, browser); r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != "http://"+g.courses+"/lessons/private" {
		t.Fatalf("the launch: %d to %q", r.StatusCode, r.Header.Get("Location"))
	}
	// The app's session still shares the portal's origin: signing out of
	// the portal ends it (the origin came from the grant).
	s, err := g.gw.cfg.Sessions.Session(context.Background(), portalSession)
	if err != nil || !strings.HasPrefix(s.Origin, s.LinkID+"/") || strings.Contains(s.Origin, portalSession) {
		t.Fatalf("portal session %+v, %v: its origin names it", s, err)
	}
}

// linkText is a magic link's URL with its token's parts decoded, as anyone
// holding the URL can read it.
func linkText(t *testing.T, magic string) string {
	t.Helper()
	u, err := url.Parse(magic)
	if err != nil {
		t.Fatal(err)
	}
	text := magic
	for _, part := range strings.Split(u.Query().Get("token"), ".") {
		b, _ := base64.RawURLEncoding.DecodeString(part)
		text += "\n" + string(b)
	}
	return text
}

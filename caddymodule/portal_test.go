package caddymodule

import (
	"net/http"
	"strings"
	"testing"
)

func TestPortal_HomeListsAppsAndLaunchSignsIntoEach(t *testing.T) {
	g := newGateway(t, "store memory")
	c := g.client()
	l := g.mint(MintRequest{App: "portal", User: userOf("c_portal")})
	r := g.do(c, http.MethodGet, l.URL, browser)
	if r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != "http://"+g.portal+"/" {
		t.Fatalf("portal link: %d → %s", r.StatusCode, r.Header.Get("Location"))
	}
	home := g.do(c, http.MethodGet, "http://"+g.portal+"/", browser)
	for _, want := range []string{"/_portalgate/launch/courses", "/_portalgate/launch/communities", "User c_portal"} {
		if !strings.Contains(home.body, want) {
			t.Fatalf("home page lacks %q:\n%s", want, home.body)
		}
	}
	for _, app := range []struct{ name, origin string }{{"courses", g.courses}, {"communities", g.community}} {
		r := g.do(c, http.MethodGet, "http://"+g.portal+"/_portalgate/launch/"+app.name+"?next=/deep/page", browser)
		if r.StatusCode != http.StatusSeeOther || !strings.HasPrefix(r.Header.Get("Location"), "http://"+app.origin+magicPath+"?token=") {
			t.Fatalf("launch %s: %d → %s", app.name, r.StatusCode, r.Header.Get("Location"))
		}
		in := g.do(c, http.MethodGet, r.Header.Get("Location"), browser)
		if in.Header.Get("Location") != "http://"+app.origin+"/deep/page" {
			t.Fatalf("launch link lands on %q", in.Header.Get("Location"))
		}
		h := upstreamHeaders(t, g.do(c, http.MethodGet, in.Header.Get("Location")))
		if h.Get("X-Portal-User-Id") != "c_portal" || h.Get("X-Portal-App") != app.name {
			t.Fatalf("%s sees %v", app.name, h)
		}
	}
}

func TestPortal_SignedOutAppVisitComesBackAfterSignIn(t *testing.T) {
	g := newGateway(t, "store memory")
	c := g.client()
	g.do(c, http.MethodGet, g.mint(MintRequest{App: "portal", User: userOf("back")}).URL, browser)
	// Courses sends the browser to the portal, which launches it back.
	to := g.do(c, http.MethodGet, "http://"+g.courses+"/lesson/9", browser).Header.Get("Location")
	launch := g.do(c, http.MethodGet, to, browser).Header.Get("Location")
	if !strings.HasPrefix(launch, "http://"+g.portal+launchPrefix+"courses?") {
		t.Fatalf("portal sent a known user to %q", launch)
	}
	magic := g.do(c, http.MethodGet, launch, browser).Header.Get("Location")
	if land := g.do(c, http.MethodGet, magic, browser).Header.Get("Location"); land != "http://"+g.courses+"/lesson/9" {
		t.Fatalf("landed on %q", land)
	}
}

func TestLaunch_OpenRedirectNextStaysOnTheApp(t *testing.T) {
	g := newGateway(t, "store memory")
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
	g := newGateway(t, "store memory")
	c := g.client()
	g.do(c, http.MethodGet, g.mint(MintRequest{App: "portal", User: userOf("limited"), Apps: []string{"courses"}}).URL, browser)
	if r := g.do(c, http.MethodGet, "http://"+g.portal+launchPrefix+"communities", browser); r.StatusCode != http.StatusForbidden {
		t.Fatalf("launch of an app outside the link: %d", r.StatusCode)
	}
	home := g.do(c, http.MethodGet, "http://"+g.portal+"/", browser)
	if strings.Contains(home.body, "launch/communities") {
		t.Fatal("home lists an app the user may not open")
	}
	if r := g.do(g.client(), http.MethodGet, "http://"+g.portal+launchPrefix+"courses", browser); r.StatusCode != http.StatusUnauthorized {
		t.Fatalf("launch without a session: %d", r.StatusCode)
	}
	if r := g.do(c, http.MethodGet, "http://"+g.portal+launchPrefix+"nope", browser); r.StatusCode != http.StatusNotFound {
		t.Fatalf("launch of an unknown app: %d", r.StatusCode)
	}
}

func TestPortal_SignedOutHomeSaysHowToSignIn(t *testing.T) {
	g := newGateway(t, "store memory")
	r := g.do(g.client(), http.MethodGet, "http://"+g.portal+"/?app=courses&next=/x", browser)
	if r.StatusCode != http.StatusUnauthorized || !strings.Contains(r.body, "sign-in link") {
		t.Fatalf("signed-out home: %d %s", r.StatusCode, r.body)
	}
}

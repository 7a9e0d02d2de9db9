package gateway

import (
	"net/http"
	"strings"
	"testing"
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

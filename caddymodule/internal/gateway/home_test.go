package gateway

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/portalgate/portalgate/caddymodule/internal/identity"
	"github.com/portalgate/portalgate/caddymodule/internal/testkit/web"
)

func TestPortal_HomeListsAppsAndLaunchSignsIntoEach(t *testing.T) {
	t.Parallel()
	g := newTestGateway(t)
	c := g.client()
	l := g.mint(MintRequest{App: "portal", User: userOf("c_portal")})
	r := g.do(c, http.MethodGet, l.URL, browser)
	if r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != "http://"+g.portal+"/" {
		t.Fatalf("portal link: %d → %s", r.StatusCode, r.Header.Get("Location"))
	}
	home := g.do(c, http.MethodGet, "http://"+g.portal+"/", browser)
	for _, want := range []string{"/_portalgate/launch/courses", "/_portalgate/launch/communities", "User c_portal"} {
		if !strings.Contains(home.Body, want) {
			t.Fatalf("home page lacks %q:\n%s", want, home.Body)
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
		h := web.Echoed(t, g.do(c, http.MethodGet, in.Header.Get("Location")))
		if h.Get("X-Portal-User-Id") != "c_portal" || h.Get("X-Portal-App") != app.name {
			t.Fatalf("%s sees %v", app.name, h)
		}
	}
}

func TestPortal_SignedOutAppVisitComesBackAfterSignIn(t *testing.T) {
	t.Parallel()
	g := newTestGateway(t)
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

func TestPortal_SignedOutHomeSaysHowToSignIn(t *testing.T) {
	t.Parallel()
	g := newTestGateway(t)
	r := g.do(g.client(), http.MethodGet, "http://"+g.portal+"/?app=courses&next=/x", browser)
	if r.StatusCode != http.StatusUnauthorized || !strings.Contains(r.Body, "sign-in link") {
		t.Fatalf("signed-out home: %d %s", r.StatusCode, r.Body)
	}
}

func TestPortalHome_ShowsTheMenuForTheUsersRoleAndMagicItemsOnlyLaunch(t *testing.T) {
	t.Parallel()
	g := newTestGateway(t, withStaff(), withMenuLinks(
		MenuLink{Title: "Help centre", Target: "https://help.example.com", Open: OpenNewTab, Roles: []identity.Type{identity.Contact}},
		MenuLink{Title: "Staff only", Target: "https://staff.example.com", Roles: []identity.Type{identity.AgencyUser}}))
	ag := g.staff("agency")
	for _, it := range []url.Values{
		{"title": {"My courses"}, "kind": {"app"}, "app": {"courses"}, "open": {"current_tab"}, "roles": {"contact"}},
		{"title": {"Community"}, "kind": {"app"}, "app": {"communities"}, "open": {"iframe"}, "roles": {"contact"}},
	} {
		it.Set("action", "save")
		ag.post("/dashboard/settings/links", it)
	}
	c := g.client()
	// A contact whose portal session may open courses only.
	l := g.mint(MintRequest{App: "portal", User: userOf("c_menu"), Apps: []string{"courses"}})
	g.do(c, http.MethodGet, l.URL, browser)
	home := g.do(c, http.MethodGet, "http://"+g.portal+"/", browser)
	for _, want := range []string{"Help centre", `href="https://help.example.com"`, `target="_blank"`, "My courses", `href="/_portalgate/launch/courses"`} {
		if !strings.Contains(home.Body, want) {
			t.Errorf("home lacks %q", want)
		}
	}
	for _, not := range []string{"Staff only", "Community", "token="} {
		if strings.Contains(home.Body, not) {
			t.Errorf("home shows %q:\n%s", not, home.Body)
		}
	}
	// The menu API says the same, as JSON.
	var m struct {
		User  map[string]string           `json:"user"`
		Apps  []struct{ Name string }     `json:"apps"`
		Links []struct{ URL, App string } `json:"links"`
	}
	r := g.do(c, http.MethodGet, "http://"+g.portal+menuAPIPath)
	if err := json.Unmarshal([]byte(r.Body), &m); err != nil || r.StatusCode != http.StatusOK {
		t.Fatalf("menu API: %d %s", r.StatusCode, r.Body)
	}
	if m.User["id"] != "c_menu" || len(m.Apps) != 1 || len(m.Links) != 2 || m.Links[1].URL != "http://"+g.portal+launchPrefix+"courses" || m.Links[1].App != "courses" {
		t.Fatalf("menu API: %+v", m)
	}
	if r := g.do(g.client(), http.MethodGet, "http://"+g.portal+menuAPIPath); r.StatusCode != http.StatusUnauthorized {
		t.Fatalf("menu API without a session: %d", r.StatusCode)
	}
}

func TestPortalHome_IframeItemShowsTheAppFramedByThePortalOnly(t *testing.T) {
	t.Parallel()
	g := newTestGateway(t, withStaff(), withMenuLinks(MenuLink{Title: "Courses inside", Target: "app:courses", Open: OpenIframe}))
	c := g.client()
	g.do(c, http.MethodGet, g.mint(MintRequest{App: "portal", User: userOf("c_frame")}).URL, browser)
	home := g.do(c, http.MethodGet, "http://"+g.portal+"/", browser)
	if !strings.Contains(home.Body, `href="/?view=config-1"`) || strings.Contains(home.Body, "<iframe") {
		t.Fatalf("home:\n%s", home.Body)
	}
	framed := g.do(c, http.MethodGet, "http://"+g.portal+"/?view=config-1", browser)
	if !strings.Contains(framed.Body, `<iframe src="/_portalgate/launch/courses"`) {
		t.Fatalf("framed home:\n%s", framed.Body)
	}
	if csp := framed.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "frame-src 'self' http://"+g.courses) {
		t.Fatalf("framed home CSP: %s", csp)
	}
	// The app lets the portal frame it, and no one else.
	in := g.do(c, http.MethodGet, g.do(c, http.MethodGet, "http://"+g.portal+launchPrefix+"courses", browser).Header.Get("Location"), browser)
	app := g.do(c, http.MethodGet, in.Header.Get("Location"))
	if csp := app.Header.Values("Content-Security-Policy"); len(csp) != 1 || csp[0] != "frame-ancestors 'self' http://"+g.portal {
		t.Fatalf("app CSP: %q", csp)
	}
}

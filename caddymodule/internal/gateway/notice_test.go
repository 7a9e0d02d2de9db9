package gateway

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/portalgate/portalgate/caddymodule/internal/testkit/web"
)

// actionLink is a way on in a rendered page.
var actionLink = regexp.MustCompile(`<a class="button[^"]*" href="([^"]+)" data-action>([^<]+)</a>`)

// ways returns the ways on a page offers, as "text -> url".
func ways(body string) []string {
	var out []string
	for _, m := range actionLink.FindAllStringSubmatch(body, -1) {
		out = append(out, m[2]+" -> "+strings.ReplaceAll(m[1], "&amp;", "&"))
	}
	return out
}

// Error pages used to end the visit: "ask for a new link", and nothing to
// click. Every page about a failure now offers a way on: a new sign-in for
// a link or a session that does not work, the same page for a passing
// failure, and the portal; never a link back to itself or one that holds
// a token.
func TestErrorPages_EveryOneLeadsSomewhere(t *testing.T) {
	t.Parallel()
	g := newTestGateway(t, withOutbox())
	all := []*Problem{problemNotFound, problemMethod, problemMalformed, problemSignature, problemWrongApp, problemExpired,
		problemUsed, problemBeforeStore, problemCodeGone, problemRevoked, problemNoSession, problemNotAllowed, problemStore,
		problemCSRF, problemRateLimit, problemBadHeaders, problemNoStaffAuth, problemNotStaff, problemOutboxAgencyOnly,
		problemAgencyOnly, problemBadForm}
	for _, app := range []string{PortalName, "courses"} {
		for _, path := range []string{"/", "/lessons/1", magicPath + "?token=abc.def.ghi", signInPath, DashboardPath + "generate"} {
			for _, p := range all {
				r := httptest.NewRequest(http.MethodGet, path, nil)
				r.Header.Set("Accept", "text/html")
				w := httptest.NewRecorder()
				g.sites[app].fail(w, r, p)
				got := ways(w.Body.String())
				if len(got) == 0 {
					t.Errorf("%s %s, %s: a dead end", app, path, p.Code)
				}
				for _, way := range got {
					if strings.Contains(way, "token") {
						t.Errorf("%s %s, %s: offers %q", app, path, p.Code, way)
					}
				}
			}
		}
	}
	// A link that does not work offers a new sign-in, keeping the app.
	r := g.do(g.client(), http.MethodGet, "http://"+g.courses+magicPath+"?token=not.a.token", browser)
	want := []string{"Sign in with your e-mail -> http://" + g.portal + signInPath + "?app=courses", "Go to your portal -> http://" + g.portal + "/"}
	if got := ways(r.Body); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("a bad link's page offers %q, want %q", got, want)
	}
	// Signed out: sign in again.
	c := g.signIn("courses", "c_out")
	form := url.Values{"csrf": {web.CSRF(t, g.do(c, http.MethodGet, "http://"+g.courses+logoutPath, browser).Body)}}.Encode()
	out := g.send(c, http.MethodPost, "http://"+g.courses+logoutPath, strings.NewReader(form), browser,
		"Content-Type: application/x-www-form-urlencoded", "Origin: http://"+g.courses)
	done := g.do(c, http.MethodGet, out.Header.Get("Location"), browser)
	if got := ways(done.Body); len(got) < 2 || !strings.HasPrefix(got[0], "Sign in with your e-mail") {
		t.Fatalf("the signed-out page offers %q\n%s", got, done.Body)
	}
}

// A gated site answered a browser's /favicon.ico with 401 (an error in
// every signed-out visitor's console); it is the portal's icon now, and a
// signed-in browser still gets the app's own.
func TestFavicon_SignedOutBrowserGetsThePortalsIcon(t *testing.T) {
	t.Parallel()
	g := newTestGateway(t)
	for _, host := range []string{g.portal, g.courses} {
		r := g.do(g.client(), http.MethodGet, "http://"+host+faviconPath, "Accept: image/avif,image/webp,*/*")
		if r.StatusCode != http.StatusOK || r.Header.Get("Content-Type") != "image/svg+xml" || !strings.HasPrefix(r.Body, "<svg") {
			t.Fatalf("%s%s: %d %s %q", host, faviconPath, r.StatusCode, r.Header.Get("Content-Type"), r.Body)
		}
	}
	c := g.signIn("courses", "c_icon")
	if r := g.do(c, http.MethodGet, "http://"+g.courses+faviconPath); r.StatusCode != http.StatusOK || strings.HasPrefix(r.Body, "<svg") {
		t.Fatalf("a signed-in browser's favicon did not reach the app: %d %q", r.StatusCode, r.Body)
	}
}

// "Try again" linked to the request's address as it came: a path such as
// //evil.example/x made it a link to another site, and a sign-out ticket in
// the query was written into the page.
func TestErrorPages_TryAgainStaysOnTheSiteAndKeepsNoSecret(t *testing.T) {
	t.Parallel()
	g := newTestGateway(t)
	for path, want := range map[string]string{
		"//evil.example/x":                  "Try again -> http://" + g.courses + "//evil.example/x",
		logoutPath + "?ticket=SECRET&app=x": "Try again -> http://" + g.courses + logoutPath,
		"/lessons/1?page=2":                 "Try again -> http://" + g.courses + "/lessons/1?page=2",
	} {
		r := httptest.NewRequest(http.MethodGet, "http://"+g.courses+"/", nil)
		r.URL, _ = url.ParseRequestURI(path) // as the server reads a request line
		r.RequestURI = path
		r.Header.Set("Accept", "text/html")
		w := httptest.NewRecorder()
		g.sites["courses"].fail(w, r, problemStore)
		if got := ways(w.Body.String()); len(got) == 0 || got[0] != want {
			t.Errorf("%s: ways %q, want first %q", path, got, want)
		}
	}
}

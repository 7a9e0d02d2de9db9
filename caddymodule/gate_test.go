package caddymodule

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/portalgate/portalgate/caddymodule/internal/store"
)

// spoofs are identity headers a client might send, in the spellings an app
// could read as ours.
var spoofs = []string{
	"X-Portal-User-Id: admin",
	"x-portal-user-type: agency_user",
	"X-PORTAL-LOCATION-ID: loc_all",
	"X_Portal_User_Email: boss@example.com",
	"x_portal_app: affiliates",
	"X-Portal-Assertion: forged",
	"X-Portal-Anything-New: x",
}

func TestGate_SpoofedIdentityHeadersNeverReachTheApp(t *testing.T) {
	g := newGateway(t, "store memory")

	t.Run("signed out", func(t *testing.T) {
		before := g.upstreamHits.Load()
		r := g.do(g.client(), http.MethodGet, "http://"+g.courses+"/", spoofs...)
		if r.StatusCode != http.StatusUnauthorized || g.upstreamHits.Load() != before {
			t.Fatalf("a signed-out request with identity headers: %d, upstream hits %d", r.StatusCode, g.upstreamHits.Load()-before)
		}
	})

	t.Run("signed in", func(t *testing.T) {
		c := g.signIn("courses", "c_real")
		h := upstreamHeaders(t, g.do(c, http.MethodGet, "http://"+g.courses+"/", spoofs...))
		for name, values := range h {
			n := strings.ReplaceAll(strings.ToLower(name), "_", "-")
			if !strings.HasPrefix(n, "x-portal-") {
				continue
			}
			switch name {
			case "X-Portal-User-Id", "X-Portal-User-Email", "X-Portal-User-Name", "X-Portal-User-Type", "X-Portal-App":
				if len(values) != 1 {
					t.Errorf("%s arrived %d times: %v", name, len(values), values)
				}
			default:
				t.Errorf("client-sent %s: %v reached the app", name, values)
			}
		}
		if h.Get("X-Portal-User-Id") != "c_real" || h.Get("X-Portal-User-Type") != "contact" || h.Get("X-Portal-App") != "courses" {
			t.Fatalf("identity the app got: %v", h)
		}
	})
}

func TestGate_SignedOutBrowserGoesToPortalAndAPIClientGets401(t *testing.T) {
	g := newGateway(t, "store memory")
	r := g.do(g.client(), http.MethodGet, "http://"+g.courses+"/lessons/3?tab=notes", browser)
	if r.StatusCode != http.StatusSeeOther {
		t.Fatalf("browser: %d", r.StatusCode)
	}
	want := "http://" + g.portal + "/?" + url.Values{"app": {"courses"}, "next": {"/lessons/3?tab=notes"}}.Encode()
	if loc := r.Header.Get("Location"); loc != want {
		t.Fatalf("Location = %q, want %q", loc, want)
	}
	api := g.do(g.client(), http.MethodGet, "http://"+g.courses+"/api/things", "Accept: application/json")
	if api.StatusCode != http.StatusUnauthorized || api.Header.Get("Content-Type") != "application/json" ||
		!strings.Contains(api.body, `"code":"no_session"`) {
		t.Fatalf("API client: %d %s %s", api.StatusCode, api.Header.Get("Content-Type"), api.body)
	}
}

func TestGate_SessionCookieOfAnotherAppOpensNothing(t *testing.T) {
	g := newGateway(t, "store memory")
	c := g.signIn("courses", "cross")
	u, _ := url.Parse("http://" + g.courses + "/")
	ck := c.Jar.Cookies(u)[0]
	r := g.do(g.client(), http.MethodGet, "http://"+g.community+"/", "Cookie: portalgate-communities="+ck.Value)
	if r.StatusCode != http.StatusUnauthorized {
		t.Fatalf("courses session used as communities: %d", r.StatusCode)
	}
}

// csrfFrom reads the CSRF token from a page's form.
func csrfFrom(t *testing.T, page string) string {
	t.Helper()
	m := csrfField.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no csrf field in:\n%s", page)
	}
	return m[1]
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func TestLogout_EndsSessionInStoreAndClearsCookie(t *testing.T) {
	g := newGateway(t, "store memory")
	c := g.signIn("courses", "leaver")
	u, _ := url.Parse("http://" + g.courses + "/")
	id := c.Jar.Cookies(u)[0].Value

	page := g.do(c, http.MethodGet, "http://"+g.courses+logoutPath, browser)
	if page.StatusCode != http.StatusOK || !strings.Contains(page.body, "Sign out of Courses?") {
		t.Fatalf("GET logout: %d %s", page.StatusCode, page.body)
	}
	form := url.Values{"csrf": {csrfFrom(t, page.body)}}.Encode()
	r := g.send(c, http.MethodPost, "http://"+g.courses+logoutPath, strings.NewReader(form), browser,
		"Content-Type: application/x-www-form-urlencoded", "Origin: http://"+g.courses)
	if r.StatusCode != http.StatusOK || !strings.Contains(r.body, "signed out") {
		t.Fatalf("logout: %d %s", r.StatusCode, r.body)
	}
	if ck := cookieNamed(r, "portalgate-courses"); ck == nil || ck.MaxAge >= 0 {
		t.Fatalf("logout cookie = %+v, want it deleted", ck)
	}
	if _, err := runningTestApp(t).store.GetSession(context.Background(), id); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("session still in the store: %v", err)
	}
	// A copy of the old cookie kept by an attacker opens nothing.
	replay := g.do(g.client(), http.MethodGet, "http://"+g.courses+"/", "Cookie: portalgate-courses="+id)
	if replay.StatusCode != http.StatusUnauthorized {
		t.Fatalf("old cookie after logout: %d", replay.StatusCode)
	}
}

func TestLogout_CrossSiteRequestForgeryIsRefused(t *testing.T) {
	g := newGateway(t, "store memory")
	c := g.signIn("courses", "csrf")
	token := csrfFrom(t, g.do(c, http.MethodGet, "http://"+g.courses+logoutPath, browser).body)
	form := "Content-Type: application/x-www-form-urlencoded"
	for name, tc := range map[string]struct {
		body    string
		headers []string
	}{
		"no token":                 {"", []string{form, "Origin: http://" + g.courses}},
		"wrong token":              {"csrf=forged", []string{form, "Origin: http://" + g.courses}},
		"token, other origin":      {"csrf=" + token, []string{form, "Origin: http://evil.example.com"}},
		"token, sibling app":       {"csrf=" + token, []string{form, "Origin: http://" + g.community}},
		"token, cross-site fetch":  {"csrf=" + token, []string{form, "Sec-Fetch-Site: cross-site"}},
		"token, opaque origin":     {"csrf=" + token, []string{form, "Origin: null"}},
		"token, null cross-site":   {"csrf=" + token, []string{form, "Origin: null", "Sec-Fetch-Site: cross-site"}},
		"token of another session": {"csrf=" + csrfFrom(t, g.do(g.signIn("courses", "other"), http.MethodGet, "http://"+g.courses+logoutPath, browser).body), []string{form}},
	} {
		t.Run(name, func(t *testing.T) {
			r := g.send(c, http.MethodPost, "http://"+g.courses+logoutPath, strings.NewReader(tc.body), append(tc.headers, browser)...)
			if r.StatusCode != http.StatusForbidden {
				t.Fatalf("forged logout: %d", r.StatusCode)
			}
			if h := upstreamHeaders(t, g.do(c, http.MethodGet, "http://"+g.courses+"/")); h.Get("X-Portal-User-Id") != "csrf" {
				t.Fatal("the session ended")
			}
		})
	}
	if r := g.do(c, http.MethodDelete, "http://"+g.courses+logoutPath); r.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("DELETE logout: %d", r.StatusCode)
	}
}

// Our pages send no Referer, so a browser posts their forms with
// "Origin: null": Sec-Fetch-Site says they are the app's own.
func TestLogout_OwnFormWithNullOriginSignsOut(t *testing.T) {
	g := newGateway(t, "store memory")
	c := g.signIn("courses", "null-origin")
	token := csrfFrom(t, g.do(c, http.MethodGet, "http://"+g.courses+logoutPath, browser).body)
	r := g.send(c, http.MethodPost, "http://"+g.courses+logoutPath, strings.NewReader("csrf="+token),
		"Content-Type: application/x-www-form-urlencoded", "Origin: null", "Sec-Fetch-Site: same-origin", browser)
	if r.StatusCode != http.StatusOK {
		t.Fatalf("sign-out from the app's own page: %d %s", r.StatusCode, r.body)
	}
}

func TestGateway_UnknownGatewayPathIsNotFound(t *testing.T) {
	g := newGateway(t, "store memory")
	before := g.upstreamHits.Load()
	r := g.do(g.signIn("courses", "nf"), http.MethodGet, "http://"+g.courses+"/_portalgate/nothing")
	if r.StatusCode != http.StatusNotFound || g.upstreamHits.Load() != before {
		t.Fatalf("unknown gateway path: %d", r.StatusCode)
	}
}

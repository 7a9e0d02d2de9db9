package gateway

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/portalgate/portalgate/caddymodule/internal/store"
	"github.com/portalgate/portalgate/caddymodule/internal/testkit/web"
)

func TestLogout_EndsSessionInStoreAndClearsCookie(t *testing.T) {
	t.Parallel()
	g := newTestGateway(t)
	c := g.signIn("courses", "leaver")
	u, _ := url.Parse("http://" + g.courses + "/")
	id := c.Jar.Cookies(u)[0].Value

	page := g.do(c, http.MethodGet, "http://"+g.courses+logoutPath, browser)
	if page.StatusCode != http.StatusOK || !strings.Contains(page.Body, "Sign out of Courses?") {
		t.Fatalf("GET logout: %d %s", page.StatusCode, page.Body)
	}
	form := url.Values{"csrf": {web.CSRF(t, page.Body)}}.Encode()
	r := g.send(c, http.MethodPost, "http://"+g.courses+logoutPath, strings.NewReader(form), browser,
		"Content-Type: application/x-www-form-urlencoded", "Origin: http://"+g.courses)
	if r.StatusCode != http.StatusSeeOther || !strings.HasPrefix(r.Header.Get("Location"), "http://"+g.portal+logoutPath+"?") {
		t.Fatalf("logout: %d → %s", r.StatusCode, r.Header.Get("Location"))
	}
	if ck := web.Cookie(r, "portalgate-courses"); ck == nil || ck.MaxAge >= 0 {
		t.Fatalf("logout cookie = %+v, want it deleted", ck)
	}
	if done := g.do(c, http.MethodGet, r.Header.Get("Location"), browser); done.StatusCode != http.StatusOK || !strings.Contains(done.Body, "signed out") {
		t.Fatalf("the portal after the sign-out: %d %s", done.StatusCode, done.Body)
	}
	if _, err := g.store.GetSession(context.Background(), id); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("session still in the store: %v", err)
	}
	// A copy of the old cookie kept by an attacker opens nothing.
	replay := g.do(g.client(), http.MethodGet, "http://"+g.courses+"/", "Cookie: portalgate-courses="+id)
	if replay.StatusCode != http.StatusUnauthorized {
		t.Fatalf("old cookie after logout: %d", replay.StatusCode)
	}
}

func TestLogout_CrossSiteRequestForgeryIsRefused(t *testing.T) {
	t.Parallel()
	g := newTestGateway(t)
	c := g.signIn("courses", "csrf")
	token := web.CSRF(t, g.do(c, http.MethodGet, "http://"+g.courses+logoutPath, browser).Body)
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
		"token of another session": {"csrf=" + web.CSRF(t, g.do(g.signIn("courses", "other"), http.MethodGet, "http://"+g.courses+logoutPath, browser).Body), []string{form}},
	} {
		t.Run(name, func(t *testing.T) {
			r := g.send(c, http.MethodPost, "http://"+g.courses+logoutPath, strings.NewReader(tc.body), append(tc.headers, browser)...)
			if r.StatusCode != http.StatusForbidden {
				t.Fatalf("forged logout: %d", r.StatusCode)
			}
			if h := web.Echoed(t, g.do(c, http.MethodGet, "http://"+g.courses+"/")); h.Get("X-Portal-User-Id") != "csrf" {
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
	t.Parallel()
	g := newTestGateway(t)
	c := g.signIn("courses", "null-origin")
	token := web.CSRF(t, g.do(c, http.MethodGet, "http://"+g.courses+logoutPath, browser).Body)
	r := g.send(c, http.MethodPost, "http://"+g.courses+logoutPath, strings.NewReader("csrf="+token),
		"Content-Type: application/x-www-form-urlencoded", "Origin: null", "Sec-Fetch-Site: same-origin", browser)
	if r.StatusCode != http.StatusSeeOther || web.Cookie(r, "portalgate-courses") == nil {
		t.Fatalf("sign-out from the app's own page: %d %s", r.StatusCode, r.Body)
	}
}

func TestLogout_CSRFHeaderIsAccepted(t *testing.T) {
	t.Parallel()
	g := newTestGateway(t)
	c := g.signIn("courses", "c_hdr")
	token := web.CSRF(t, g.do(c, http.MethodGet, "http://"+g.courses+logoutPath, browser).Body)
	r := g.do(c, http.MethodPost, "http://"+g.courses+logoutPath, "X-CSRF-Token: "+token, "Origin: http://"+g.courses)
	if r.StatusCode != http.StatusOK || !strings.Contains(r.Body, "signed_out") {
		t.Fatalf("logout with the CSRF header: %d %s", r.StatusCode, r.Body)
	}
}

// "Sign out" used to end one app's session only: visiting the app again
// signed the person straight back in through the portal session, and
// signing out of the portal left every app session alive for 12 hours.
func TestLogout_SignOutEndsThePortalAndEveryAppThisSignInOpened(t *testing.T) {
	t.Parallel()
	g := newTestGateway(t)
	c := g.signInPortal("c_out")
	for _, app := range []string{"courses", "communities"} {
		magic := g.do(c, http.MethodGet, "http://"+g.portal+launchPrefix+app, browser).Header.Get("Location")
		if r := g.do(c, http.MethodGet, magic, browser); r.StatusCode != http.StatusSeeOther {
			t.Fatalf("launch %s: %d", app, r.StatusCode)
		}
	}
	// The same person signed in elsewhere, from another link, and from one
	// link of two uses in two browsers: not this browser's sign-in.
	elsewhere := g.signIn("courses", "c_out")
	shared := g.mint(MintRequest{App: "courses", User: userOf("c_out"), Uses: 2})
	here, there := g.client(), g.client()
	g.do(here, http.MethodGet, shared.URL, browser)
	g.do(there, http.MethodGet, shared.URL, browser)
	tokenHere := web.CSRF(t, g.do(here, http.MethodGet, "http://"+g.courses+logoutPath, browser).Body)
	g.send(here, http.MethodPost, "http://"+g.courses+logoutPath, strings.NewReader("csrf="+tokenHere), browser,
		"Content-Type: application/x-www-form-urlencoded", "Origin: http://"+g.courses)
	if h := web.Echoed(t, g.do(there, http.MethodGet, "http://"+g.courses+"/")); h.Get("X-Portal-User-Id") != "c_out" {
		t.Fatal("signing out in one browser ended the other browser's use of the same link")
	}

	token := web.CSRF(t, g.do(c, http.MethodGet, "http://"+g.courses+logoutPath, browser).Body)
	if r := g.send(c, http.MethodPost, "http://"+g.courses+logoutPath, strings.NewReader("csrf="+token), browser,
		"Content-Type: application/x-www-form-urlencoded", "Origin: http://"+g.courses); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign out: %d %s", r.StatusCode, r.Body)
	}
	for _, origin := range []string{g.courses, g.community, g.portal} {
		if r := g.do(c, http.MethodGet, "http://"+origin+"/", "Accept: application/json"); r.StatusCode != http.StatusUnauthorized {
			t.Errorf("http://%s after signing out: %d", origin, r.StatusCode)
		}
	}
	// Courses sends the browser to the portal, which no longer knows it.
	to := g.do(c, http.MethodGet, "http://"+g.courses+"/lesson", browser).Header.Get("Location")
	if r := g.do(c, http.MethodGet, to, browser); r.StatusCode != http.StatusUnauthorized {
		t.Fatalf("the portal after signing out of an app: %d → %s", r.StatusCode, r.Header.Get("Location"))
	}
	if h := web.Echoed(t, g.do(elsewhere, http.MethodGet, "http://"+g.courses+"/")); h.Get("X-Portal-User-Id") != "c_out" {
		t.Fatal("signing out ended another browser's sign-in")
	}
}

// A browser signed in to the portal from one link and to an app from
// another (an e-mail straight into Courses) used to be signed straight back
// in after signing out of the app: the app sent it to the portal, which
// launched it back. The app's sign-out hands the portal a ticket naming
// the user, and the portal ends its own session of that user.
func TestLogout_SignOutOfAnAppEndsThisBrowsersPortalSessionToo(t *testing.T) {
	t.Parallel()
	g := newTestGateway(t)
	c := g.signInPortal("c_two")
	g.do(c, http.MethodGet, g.mint(MintRequest{App: "courses", User: userOf("c_two")}).URL, browser)
	token := web.CSRF(t, g.do(c, http.MethodGet, "http://"+g.courses+logoutPath, browser).Body)
	r := g.send(c, http.MethodPost, "http://"+g.courses+logoutPath, strings.NewReader("csrf="+token), browser,
		"Content-Type: application/x-www-form-urlencoded", "Origin: http://"+g.courses)
	if done := g.do(c, http.MethodGet, r.Header.Get("Location"), browser); done.StatusCode != http.StatusOK ||
		!strings.Contains(done.Body, "Courses") || web.Cookie(done, "portalgate-portal") == nil {
		t.Fatalf("the portal's end of the sign-out: %d %s", done.StatusCode, done.Body)
	}
	to := g.do(c, http.MethodGet, "http://"+g.courses+"/lesson", browser).Header.Get("Location")
	if r := g.do(c, http.MethodGet, to, browser); r.StatusCode != http.StatusUnauthorized {
		t.Fatalf("Courses after signing out of it: the portal answers %d → %s", r.StatusCode, r.Header.Get("Location"))
	}
}

// A sign-out ticket ends only its own user's portal session, and only for
// a minute: one sent to another browser, or kept, signs no one out.
func TestLogout_ForeignOrOldSignOutTicketEndsNothing(t *testing.T) {
	t.Parallel()
	g := newTestGateway(t)
	kept := g.gw.signOutTicket("c_victim")
	g.clock.Advance(time.Second)
	// Signed in again after the ticket was issued, within its minute.
	victim := g.signInPortal("c_victim")
	g.do(victim, http.MethodGet, "http://"+g.portal+logoutPath+"?ticket="+url.QueryEscape(kept), browser)
	if r := g.do(victim, http.MethodGet, "http://"+g.portal+"/", browser); r.StatusCode != http.StatusOK {
		t.Fatalf("a ticket of before a new sign-in ended it: %d", r.StatusCode)
	}
	old := g.gw.signOutTicket("c_victim")
	g.clock.Advance(2 * time.Minute)
	for name, ticket := range map[string]string{
		"another user's": g.gw.signOutTicket("attacker"),
		"expired":        old,
		"forged":         strings.Replace(g.gw.signOutTicket("attacker"), "YXR0YWNrZXI", "Y192aWN0aW0", 1),
	} {
		g.do(victim, http.MethodGet, "http://"+g.portal+logoutPath+"?ticket="+url.QueryEscape(ticket), browser)
		if r := g.do(victim, http.MethodGet, "http://"+g.portal+"/", browser); r.StatusCode != http.StatusOK {
			t.Fatalf("%s ticket signed the victim out of the portal: %d", name, r.StatusCode)
		}
	}
}

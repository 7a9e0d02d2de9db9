package caddymodule

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/portalgate/portalgate/caddymodule/internal/identity"
	"github.com/portalgate/portalgate/caddymodule/internal/link"
	"github.com/portalgate/portalgate/caddymodule/internal/session"
)

func userOf(id string) identity.User {
	return identity.User{ID: id, Email: id + "@example.com", Name: "User " + id}
}

func identityWithLocation(id, location string) identity.User {
	u := userOf(id)
	u.Location = location
	return u
}

func TestRedeem_SignsInAndUpstreamSeesIdentity(t *testing.T) {
	g := newGateway(t, "store memory")
	c := g.client()
	l := g.mint(MintRequest{App: "courses", Path: "/lesson/1?week=2", User: identity.User{
		ID: "c_123", Email: "ada@example.com", Name: "Ada Lovelace", Location: "loc_1",
	}})
	if !strings.HasPrefix(l.URL, "http://"+g.courses+"/_portalgate/magic?token=") {
		t.Fatalf("link URL %q", l.URL)
	}

	r := g.do(c, http.MethodGet, l.URL, browser)
	if r.StatusCode != http.StatusSeeOther {
		t.Fatalf("redeem: %d %s", r.StatusCode, r.body)
	}
	if loc := r.Header.Get("Location"); loc != "http://"+g.courses+"/lesson/1?week=2" {
		t.Fatalf("Location = %q", loc)
	}
	for k, want := range map[string]string{"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"} {
		if got := r.Header.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	ck := cookieNamed(r, "portalgate-courses")
	if ck == nil || !ck.HttpOnly || ck.SameSite != http.SameSiteLaxMode || ck.Path != "/" || !session.ValidID(ck.Value) {
		t.Fatalf("session cookie = %+v", ck)
	}

	h := upstreamHeaders(t, g.do(c, http.MethodGet, "http://"+g.courses+"/lesson/1?week=2"))
	for k, want := range map[string]string{
		"X-Portal-User-Id": "c_123", "X-Portal-User-Email": "ada@example.com", "X-Portal-User-Name": "Ada Lovelace",
		"X-Portal-User-Type": "contact", "X-Portal-Location-Id": "loc_1", "X-Portal-App": "courses",
	} {
		if got := h.Get(k); got != want {
			t.Errorf("upstream %s = %q, want %q", k, got, want)
		}
	}
	if strings.Contains(h.Get("Cookie"), ck.Value) {
		t.Error("the session id was forwarded to the app")
	}
}

func TestRedeem_ReplayedLinkIsGone(t *testing.T) {
	g := newGateway(t, "store memory")
	l := g.mint(MintRequest{App: "courses", User: userOf("replay")})
	if r := g.do(g.client(), http.MethodGet, l.URL, browser); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("first use: %d", r.StatusCode)
	}
	r := g.do(g.client(), http.MethodGet, l.URL, browser)
	if r.StatusCode != http.StatusGone || !strings.Contains(r.body, "already been used") {
		t.Fatalf("replay: %d %s", r.StatusCode, r.body)
	}
	if len(r.Cookies()) != 0 {
		t.Fatal("a replay set a cookie")
	}
	api := g.do(g.client(), http.MethodGet, l.URL, "Accept: application/json")
	if api.StatusCode != http.StatusGone || !strings.Contains(api.body, `"code":"link_used"`) {
		t.Fatalf("replay as an API client: %d %s", api.StatusCode, api.body)
	}
}

func TestRedeem_MultiUseLinkWorksExactlyThatOften(t *testing.T) {
	g := newGateway(t, "store memory")
	l := g.mint(MintRequest{App: "courses", User: userOf("multi"), Uses: 3})
	for i := range 3 {
		if r := g.do(g.client(), http.MethodGet, l.URL, browser); r.StatusCode != http.StatusSeeOther {
			t.Fatalf("use %d: %d", i+1, r.StatusCode)
		}
	}
	if r := g.do(g.client(), http.MethodGet, l.URL, browser); r.StatusCode != http.StatusGone {
		t.Fatalf("fourth use: %d", r.StatusCode)
	}
}

func TestRedeem_LinkForAnotherAppIsForbidden(t *testing.T) {
	g := newGateway(t, "store memory")
	l := g.mint(MintRequest{App: "courses", User: userOf("wrongapp")})
	stolen := strings.Replace(l.URL, g.courses, g.community, 1)
	r := g.do(g.client(), http.MethodGet, stolen, browser)
	if r.StatusCode != http.StatusForbidden || !strings.Contains(r.body, "another app") {
		t.Fatalf("link on another app: %d %s", r.StatusCode, r.body)
	}
	// Refused without being consumed: it still works where it belongs.
	if r := g.do(g.client(), http.MethodGet, l.URL, browser); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("link on its own app after the refusal: %d", r.StatusCode)
	}
}

// mintDirect signs a link with the test key and a chosen clock.
func mintDirect(t *testing.T, g *testCaddy, now time.Time, req link.Request) string {
	t.Helper()
	ring, _ := link.NewRing(link.Key{ID: "test", Secret: []byte(testKey)})
	c := &link.Codec{Ring: ring, Issuer: "http://" + g.portal, DefaultTTL: 15 * time.Minute, MaxTTL: 24 * time.Hour,
		Now: func() time.Time { return now }}
	l, err := c.Mint(req)
	if err != nil {
		t.Fatal(err)
	}
	return l.Token
}

func TestRedeem_ExpiredLinkIsGone(t *testing.T) {
	g := newGateway(t, "store memory")
	tok := mintDirect(t, g, time.Now().Add(-time.Hour), link.Request{App: "courses", User: userOf("late")})
	r := g.do(g.client(), http.MethodGet, "http://"+g.courses+"/_portalgate/magic?token="+tok, browser)
	if r.StatusCode != http.StatusGone || !strings.Contains(r.body, "expired") {
		t.Fatalf("expired link: %d %s", r.StatusCode, r.body)
	}
}

func TestRedeem_TamperedLinkIsRefusedWithoutEcho(t *testing.T) {
	g := newGateway(t, "store memory")
	l := g.mint(MintRequest{App: "courses", User: userOf("tamper")})
	tok := l.URL[strings.Index(l.URL, "token=")+len("token="):]
	tok, _ = url.QueryUnescape(tok)
	tampered := tok[:len(tok)-2] + "xx"
	for name, tc := range map[string]struct {
		token  string
		status int
	}{
		"bad signature": {tampered, http.StatusBadRequest},
		"garbage":       {"not-a-token", http.StatusBadRequest},
		"missing":       {"", http.StatusBadRequest},
	} {
		t.Run(name, func(t *testing.T) {
			for _, accept := range []string{browser, "Accept: application/json"} {
				r := g.do(g.client(), http.MethodGet, "http://"+g.courses+"/_portalgate/magic?token="+url.QueryEscape(tc.token), accept)
				if r.StatusCode != tc.status {
					t.Fatalf("%s: %d %s", accept, r.StatusCode, r.body)
				}
				if tc.token != "" && strings.Contains(r.body, tc.token) {
					t.Fatalf("the error echoes the token: %s", r.body)
				}
			}
		})
	}
}

func TestRedeem_HeadOptionsAndPrefetchNeverConsume(t *testing.T) {
	g := newGateway(t, "store memory")
	l := g.mint(MintRequest{App: "courses", User: userOf("scanner")})
	probes := []struct {
		method string
		header []string
		status int
	}{
		{http.MethodHead, nil, http.StatusOK},
		{http.MethodOptions, nil, http.StatusNoContent},
		{http.MethodGet, []string{browser, "Sec-Purpose: prefetch"}, http.StatusOK},
		{http.MethodGet, []string{browser, "Sec-Purpose: prefetch;prerender"}, http.StatusOK},
		{http.MethodGet, []string{browser, "Purpose: prefetch"}, http.StatusOK},
		{http.MethodGet, []string{browser, "X-Moz: prefetch"}, http.StatusOK},
		{http.MethodPost, []string{browser}, http.StatusForbidden}, // a POST without the confirmation form
	}
	for _, p := range probes {
		r := g.do(g.client(), p.method, l.URL, p.header...)
		if r.StatusCode != p.status || cookieNamed(r, "portalgate-courses") != nil {
			t.Fatalf("%s %v: %d (want %d), cookies %v", p.method, p.header, r.StatusCode, p.status, r.Cookies())
		}
		if allow := r.Header.Get("Allow"); p.method == http.MethodOptions && allow != "GET, HEAD, POST, OPTIONS" {
			t.Fatalf("OPTIONS: Allow %q", allow)
		}
	}
	if r := g.do(g.client(), http.MethodGet, l.URL, browser); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("GET after the probes: %d", r.StatusCode)
	}
	if r := g.do(g.client(), http.MethodPut, l.URL); r.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("PUT: %d", r.StatusCode)
	}
}

func TestRedeem_FixationPlantedSessionIsReplaced(t *testing.T) {
	g := newGateway(t, "store memory")
	// The attacker's own session, planted in the victim's browser.
	attacker := g.signIn("courses", "attacker")
	u, _ := url.Parse("http://" + g.courses + "/")
	planted := attacker.Jar.Cookies(u)[0]
	victim := g.client()
	victim.Jar.SetCookies(u, []*http.Cookie{planted})

	l := g.mint(MintRequest{App: "courses", User: userOf("victim")})
	r := g.do(victim, http.MethodGet, l.URL, browser)
	fresh := cookieNamed(r, "portalgate-courses")
	if fresh == nil || fresh.Value == planted.Value {
		t.Fatalf("redemption kept the planted session id")
	}
	// The planted session is ended, so the attacker cannot ride the victim's.
	if _, err := runningTestApp(t).sessions.Lookup(context.Background(), planted.Value, "courses"); !errors.Is(err, session.ErrNoSession) {
		t.Fatalf("planted session still live: %v", err)
	}
	if h := upstreamHeaders(t, g.do(victim, http.MethodGet, "http://"+g.courses+"/")); h.Get("X-Portal-User-Id") != "victim" {
		t.Fatalf("victim is %q", h.Get("X-Portal-User-Id"))
	}
}

func runningTestApp(t *testing.T) *App {
	t.Helper()
	a, err := runningApp()
	if err != nil {
		t.Fatal(err)
	}
	return a
}

package gateway

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/portalgate/portalgate/caddymodule/internal/identity"
	"github.com/portalgate/portalgate/caddymodule/internal/link"
	"github.com/portalgate/portalgate/caddymodule/internal/session"
	"github.com/portalgate/portalgate/caddymodule/internal/store"
	"github.com/portalgate/portalgate/caddymodule/internal/store/bolt"
	"github.com/portalgate/portalgate/caddymodule/internal/store/memory"
	"github.com/portalgate/portalgate/caddymodule/internal/testkit/clock"
	"github.com/portalgate/portalgate/caddymodule/internal/testkit/web"
)

// Tests named after an attack are mapped in SECURITY.md.

func TestRedeem_SignsInAndUpstreamSeesIdentity(t *testing.T) {
	t.Parallel()
	g := newTestGateway(t)
	c := g.client()
	l := g.mint(MintRequest{App: "courses", Path: "/lesson/1?week=2", User: identity.User{
		ID: "c_123", Email: "ada@example.com", Name: "Ada Lovelace", Location: "loc_1",
	}})
	if !strings.HasPrefix(l.URL, "http://"+g.courses+"/_portalgate/magic?token=") {
		t.Fatalf("link URL %q", l.URL)
	}

	r := g.do(c, http.MethodGet, l.URL, browser)
	if r.StatusCode != http.StatusSeeOther {
		t.Fatalf("redeem: %d %s", r.StatusCode, r.Body)
	}
	if loc := r.Header.Get("Location"); loc != "http://"+g.courses+"/lesson/1?week=2" {
		t.Fatalf("Location = %q", loc)
	}
	for k, want := range map[string]string{"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"} {
		if got := r.Header.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	ck := web.Cookie(r, "portalgate-courses")
	if ck == nil || !ck.HttpOnly || ck.SameSite != http.SameSiteLaxMode || ck.Path != "/" || !session.ValidID(ck.Value) {
		t.Fatalf("session cookie = %+v", ck)
	}

	h := web.Echoed(t, g.do(c, http.MethodGet, "http://"+g.courses+"/lesson/1?week=2"))
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
	t.Parallel()
	g := newTestGateway(t)
	l := g.mint(MintRequest{App: "courses", User: userOf("replay")})
	if r := g.do(g.client(), http.MethodGet, l.URL, browser); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("first use: %d", r.StatusCode)
	}
	r := g.do(g.client(), http.MethodGet, l.URL, browser)
	if r.StatusCode != http.StatusGone || !strings.Contains(r.Body, "already been used") {
		t.Fatalf("replay: %d %s", r.StatusCode, r.Body)
	}
	if len(r.Cookies()) != 0 {
		t.Fatal("a replay set a cookie")
	}
	api := g.do(g.client(), http.MethodGet, l.URL, "Accept: application/json")
	if api.StatusCode != http.StatusGone || !strings.Contains(api.Body, `"code":"link_used"`) {
		t.Fatalf("replay as an API client: %d %s", api.StatusCode, api.Body)
	}
}

func TestRedeem_MultiUseLinkWorksExactlyThatOften(t *testing.T) {
	t.Parallel()
	g := newTestGateway(t)
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
	t.Parallel()
	g := newTestGateway(t)
	l := g.mint(MintRequest{App: "courses", User: userOf("wrongapp")})
	stolen := strings.Replace(l.URL, g.courses, g.community, 1)
	r := g.do(g.client(), http.MethodGet, stolen, browser)
	if r.StatusCode != http.StatusForbidden || !strings.Contains(r.Body, "another app") {
		t.Fatalf("link on another app: %d %s", r.StatusCode, r.Body)
	}
	// Refused without being consumed: it still works where it belongs.
	if r := g.do(g.client(), http.MethodGet, l.URL, browser); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("link on its own app after the refusal: %d", r.StatusCode)
	}
}

func TestRedeem_ExpiredLinkIsGone(t *testing.T) {
	t.Parallel()
	g := newTestGateway(t)
	l := g.mint(MintRequest{App: "courses", User: userOf("late"), TTL: "15m"})
	g.clock.Advance(time.Hour)
	r := g.do(g.client(), http.MethodGet, l.URL, browser)
	if r.StatusCode != http.StatusGone || !strings.Contains(r.Body, "expired") {
		t.Fatalf("expired link: %d %s", r.StatusCode, r.Body)
	}
}

func TestRedeem_TamperedLinkIsRefusedWithoutEcho(t *testing.T) {
	t.Parallel()
	g := newTestGateway(t)
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
					t.Fatalf("%s: %d %s", accept, r.StatusCode, r.Body)
				}
				if tc.token != "" && strings.Contains(r.Body, tc.token) {
					t.Fatalf("the error echoes the token: %s", r.Body)
				}
			}
		})
	}
}

func TestRedeem_HeadOptionsAndPrefetchNeverConsume(t *testing.T) {
	t.Parallel()
	g := newTestGateway(t)
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
		if r.StatusCode != p.status || web.Cookie(r, "portalgate-courses") != nil {
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
	t.Parallel()
	g := newTestGateway(t)
	// The attacker's own session, planted in the victim's browser.
	attacker := g.signIn("courses", "attacker")
	u, _ := url.Parse("http://" + g.courses + "/")
	planted := attacker.Jar.Cookies(u)[0]
	victim := g.client()
	victim.Jar.SetCookies(u, []*http.Cookie{planted})

	l := g.mint(MintRequest{App: "courses", User: userOf("victim")})
	// The browser is signed in as someone else: the page asks first, and
	// names both accounts.
	ask := g.do(victim, http.MethodGet, l.URL, browser)
	if ask.StatusCode != http.StatusOK || !strings.Contains(ask.Body, "User victim &lt;victim@example.com&gt;") ||
		!strings.Contains(ask.Body, "User attacker") || web.Cookie(ask, "portalgate-courses") != nil {
		t.Fatalf("opening another account's link: %d %s", ask.StatusCode, ask.Body)
	}
	r := g.send(victim, http.MethodPost, l.URL, strings.NewReader("csrf="+web.CSRF(t, ask.Body)), browser,
		"Content-Type: application/x-www-form-urlencoded", "Origin: http://"+g.courses)
	fresh := web.Cookie(r, "portalgate-courses")
	if fresh == nil || fresh.Value == planted.Value {
		t.Fatalf("redemption kept the planted session id")
	}
	// The planted session is ended, so the attacker cannot ride the victim's.
	if _, err := g.sessions.Lookup(context.Background(), planted.Value, "", "courses"); !errors.Is(err, session.ErrNoSession) {
		t.Fatalf("planted session still live: %v", err)
	}
	if h := web.Echoed(t, g.do(victim, http.MethodGet, "http://"+g.courses+"/")); h.Get("X-Portal-User-Id") != "victim" {
		t.Fatalf("victim is %q", h.Get("X-Portal-User-Id"))
	}
}

// confirmGateway serves communities in redeem confirm mode.
func confirmGateway(t *testing.T) *testGateway {
	t.Helper()
	return newTestGateway(t, withSite("communities", SiteConfig{RedeemMode: RedeemConfirm}))
}

func TestConfirm_ScannerOpeningTheLinkSpendsNothing(t *testing.T) {
	t.Parallel()
	g := confirmGateway(t)
	l := g.mint(MintRequest{App: "communities", User: userOf("c_confirm")})
	// A mail scanner (or a headless browser that runs scripts) opens the link.
	for range 3 {
		r := g.do(g.client(), http.MethodGet, l.URL, browser)
		if r.StatusCode != http.StatusOK || !strings.Contains(r.Body, "Continue to Communities") || web.Cookie(r, "portalgate-communities") != nil {
			t.Fatalf("GET in confirm mode: %d %s", r.StatusCode, r.Body)
		}
	}
	// The person opens it and presses Continue; a second browser had the
	// page open too.
	c, other := g.client(), g.client()
	page := g.do(c, http.MethodGet, l.URL, browser)
	if !strings.Contains(page.Body, "as <strong>User c_confirm &lt;c_confirm@example.com&gt;</strong>") {
		t.Fatalf("the page does not name the account: %s", page.Body)
	}
	otherPage := g.do(other, http.MethodGet, l.URL, browser)
	post := func(c *http.Client, token string, headers ...string) resp {
		return g.send(c, http.MethodPost, l.URL, strings.NewReader(url.Values{"csrf": {token}}.Encode()),
			append(headers, browser, "Content-Type: application/x-www-form-urlencoded")...)
	}
	r := post(c, web.CSRF(t, page.Body), "Origin: http://"+g.community)
	if r.StatusCode != http.StatusSeeOther || web.Cookie(r, "portalgate-communities") == nil {
		t.Fatalf("Continue: %d %s", r.StatusCode, r.Body)
	}
	if h := web.Echoed(t, g.do(c, http.MethodGet, "http://"+g.community+"/")); h.Get("X-Portal-User-Id") != "c_confirm" {
		t.Fatalf("after Continue the app sees %v", h)
	}
	// The used form is void, and a fresh one finds the link spent.
	if r := post(c, web.CSRF(t, page.Body), "Origin: http://"+g.community); r.StatusCode != http.StatusForbidden {
		t.Fatalf("the same Continue again: %d", r.StatusCode)
	}
	if r := post(other, web.CSRF(t, otherPage.Body), "Origin: http://"+g.community); r.StatusCode != http.StatusGone {
		t.Fatalf("Continue on a spent link: %d", r.StatusCode)
	}
	// Opened again, a spent link says so at once: no Continue that only
	// then tells.
	if r := g.do(g.client(), http.MethodGet, l.URL, browser); r.StatusCode != http.StatusGone || !strings.Contains(r.Body, "already been used") {
		t.Fatalf("a spent link in confirm mode: %d %s", r.StatusCode, r.Body)
	}
}

func TestConfirm_ForgedContinueIsRefused(t *testing.T) {
	t.Parallel()
	g := confirmGateway(t)
	l := g.mint(MintRequest{App: "communities", User: userOf("c_forged")})
	c := g.client()
	token := web.CSRF(t, g.do(c, http.MethodGet, l.URL, browser).Body)
	form := "Content-Type: application/x-www-form-urlencoded"
	for name, tc := range map[string]struct {
		client  *http.Client
		body    string
		headers []string
	}{
		"no token":                  {c, "", []string{form}},
		"wrong token":               {c, "csrf=forged", []string{form}},
		"token without the cookie":  {g.client(), "csrf=" + token, []string{form}},
		"token from another origin": {c, "csrf=" + token, []string{form, "Origin: http://evil.example.com"}},
		"cross-site form post":      {c, "csrf=" + token, []string{form, "Sec-Fetch-Site: cross-site"}},
	} {
		t.Run(name, func(t *testing.T) {
			r := g.send(tc.client, http.MethodPost, l.URL, strings.NewReader(tc.body), append(tc.headers, browser)...)
			if r.StatusCode != http.StatusForbidden {
				t.Fatalf("forged Continue: %d", r.StatusCode)
			}
		})
	}
	// None of them spent the link.
	r := g.send(c, http.MethodPost, l.URL, strings.NewReader("csrf="+token), form, browser)
	if r.StatusCode != http.StatusSeeOther {
		t.Fatalf("the real Continue after forgeries: %d", r.StatusCode)
	}
}

func TestRedeem_ConcurrentRedemptionsMakeExactlyOneSession(t *testing.T) {
	t.Parallel()
	// Nineteen refusals from one address would trip the default failure budget.
	g := newTestGateway(t, withStore(boltStore(t)), withRateLimit(0))
	l := g.mint(MintRequest{App: "courses", User: userOf("c_race")})
	var wg sync.WaitGroup
	var sessions, gone atomic.Int32
	for range 20 {
		wg.Go(func() {
			r := g.do(g.client(), http.MethodGet, l.URL, browser)
			switch {
			case r.StatusCode == http.StatusSeeOther && web.Cookie(r, "portalgate-courses") != nil:
				sessions.Add(1)
			case r.StatusCode == http.StatusGone:
				gone.Add(1)
			default:
				t.Errorf("redemption: %d", r.StatusCode)
			}
		})
	}
	wg.Wait()
	if sessions.Load() != 1 || gone.Load() != 19 {
		t.Fatalf("%d sessions, %d refusals from 20 concurrent redemptions; want 1 and 19", sessions.Load(), gone.Load())
	}
}

func TestRedeem_AlgNoneAndKeyConfusionAreRefused(t *testing.T) {
	t.Parallel()
	g := newTestGateway(t)
	now := g.clock.Now()
	claims := jwt.MapClaims{"iss": "http://" + g.portal, "sub": "admin", "aud": []string{"courses"},
		"exp": now.Add(time.Minute).Unix(), "iat": now.Unix(), "jti": "abcdefghijklmnopqrstuv", "uses": 1, "path": "/"}
	enc := func(v any) string { b, _ := json.Marshal(v); return base64.RawURLEncoding.EncodeToString(b) }
	none := enc(map[string]string{"alg": "none", "typ": link.TokenType, "kid": "test"}) + "." + enc(claims) + "."
	// RS/HS confusion: an "RS256" token whose signature is an HMAC keyed
	// with something public; the allow-list refuses the algorithm outright.
	rs := jwt.NewWithClaims(jwt.SigningMethodHS256, claims)
	rs.Header["alg"] = "RS256"
	rs.Header["typ"] = link.TokenType
	rs.Header["kid"] = "test"
	rsSigned, _ := rs.SignedString([]byte(testKey))
	hs512 := jwt.NewWithClaims(jwt.SigningMethodHS512, claims)
	hs512.Header["typ"], hs512.Header["kid"] = link.TokenType, "test"
	hs512Signed, _ := hs512.SignedString([]byte(testKey))
	unknownKid := jwt.NewWithClaims(jwt.SigningMethodHS256, claims)
	unknownKid.Header["typ"], unknownKid.Header["kid"] = link.TokenType, "other"
	unknownSigned, _ := unknownKid.SignedString([]byte(testKey))
	for name, tok := range map[string]string{"alg none": none, "RS256 header": rsSigned, "HS512": hs512Signed, "unknown kid": unknownSigned} {
		r := g.do(g.client(), http.MethodGet, "http://"+g.courses+magicPath+"?token="+tok, "Accept: application/json")
		if r.StatusCode != http.StatusBadRequest || !strings.Contains(r.Body, "invalid_link") {
			t.Errorf("%s: %d %s", name, r.StatusCode, r.Body)
		}
	}
}

func TestOpenRedirect_LandingPathStaysOnTheApp(t *testing.T) {
	t.Parallel()
	g := newTestGateway(t)
	for _, path := range []string{"//evil.example.com", "/\\evil.example.com", "\\\\evil.example.com", "https://evil.example.com",
		"javascript:alert(1)", "/ok\r\nLocation: http://evil.example.com", "/\t/evil.example.com", "evil.example.com"} {
		r := g.send(g.client(), http.MethodPost, "http://"+g.portal+apiLinksPath,
			strings.NewReader(`{"app":"courses","user":{"id":"x"},"path":`+jsonString(path)+`}`), "Authorization: Bearer "+testAPIKey)
		if r.StatusCode != http.StatusBadRequest {
			t.Errorf("path %q minted: %d", path, r.StatusCode)
		}
	}
	// Encoded slashes and backslashes are path bytes on the app's own origin.
	for _, path := range []string{"/%2F%2Fevil.example.com", "/%5Cevil.example.com", "/a/../..//evil"} {
		l := g.mint(MintRequest{App: "courses", User: userOf("x"), Path: path})
		loc := g.do(g.client(), http.MethodGet, l.URL, browser).Header.Get("Location")
		u, err := url.Parse(loc)
		if err != nil || u.Host != g.courses || u.Scheme != "http" {
			t.Errorf("path %q landed on %q", path, loc)
		}
	}
}

func TestOpenRedirect_RedirectsNeverFollowTheHostHeader(t *testing.T) {
	t.Parallel()
	g := newTestGateway(t)
	l := g.mint(MintRequest{App: "courses", User: userOf("x")})
	for _, hdr := range []string{"X-Forwarded-Host: evil.example.com", "X-Forwarded-Proto: https", "Forwarded: host=evil.example.com"} {
		loc := g.do(g.client(), http.MethodGet, "http://"+g.courses+"/x", browser, hdr).Header.Get("Location")
		if !strings.HasPrefix(loc, "http://"+g.portal+"/?") {
			t.Errorf("%s: signed-out redirect to %q", hdr, loc)
		}
	}
	if loc := g.do(g.client(), http.MethodGet, l.URL, browser, "X-Forwarded-Host: evil.example.com").Header.Get("Location"); loc != "http://"+g.courses+"/" {
		t.Errorf("redemption redirect to %q", loc)
	}
}

func TestRateLimit_BruteForceOfLinksIsSlowedPerClient(t *testing.T) {
	t.Parallel()
	g := newTestGateway(t, withRateLimit(3))
	bad := "http://" + g.courses + magicPath + "?token=guess"
	for i := range 3 {
		if r := g.do(g.client(), http.MethodGet, bad, "X-Forwarded-For: 10.0.0."+string(rune('1'+i))); r.StatusCode != http.StatusBadRequest {
			t.Fatalf("guess %d: %d", i+1, r.StatusCode)
		}
	}
	// Without trusted proxies, X-Forwarded-For is the attacker's to write and
	// is ignored: every guess counted against the connection's address.
	r := g.do(g.client(), http.MethodGet, bad, browser, "X-Forwarded-For: 10.9.9.9")
	if r.StatusCode != http.StatusTooManyRequests || r.Header.Get("Retry-After") == "" {
		t.Fatalf("past the limit: %d, Retry-After %q", r.StatusCode, r.Header.Get("Retry-After"))
	}
	if !strings.Contains(r.Body, "Too many attempts") {
		t.Fatalf("429 page: %s", r.Body)
	}
	// A link we signed is no guess: it is never refused for the guesses.
	l := g.mint(MintRequest{App: "courses", User: userOf("x")})
	if r := g.do(g.client(), http.MethodGet, l.URL, browser); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("a valid link from the guessing address: %d", r.StatusCode)
	}
}

// Ten <img> tags on any page pointing at a spent link, or a person clicking
// a used link again and again, used to spend the failure budget of their
// address, and the whole office behind it (one NAT address) then got 429
// for the fresh links its people opened. Only guesses count now.
func TestRateLimit_SpentLinksClickedAgainNeverLockOutTheOffice(t *testing.T) {
	t.Parallel()
	g := newTestGateway(t, withRateLimit(3), withSite("communities", SiteConfig{RedeemMode: RedeemConfirm}))
	used := g.mint(MintRequest{App: "courses", User: userOf("c_used")})
	g.do(g.client(), http.MethodGet, used.URL, browser)
	expired := g.mint(MintRequest{App: "courses", User: userOf("c_late"), TTL: "1m"})
	revoked := g.mint(MintRequest{App: "courses", User: userOf("c_gone")})
	if err := g.gw.RevokeLink(context.Background(), "test", revoked.ID); err != nil {
		t.Fatal(err)
	}
	confirm := g.mint(MintRequest{App: "communities", User: userOf("c_confirm")})
	g.clock.Advance(2 * time.Minute)
	for range 10 {
		for _, u := range []string{used.URL, expired.URL, revoked.URL, strings.Replace(used.URL, g.courses, g.community, 1)} {
			if r := g.do(g.client(), http.MethodGet, u, browser); r.StatusCode == http.StatusTooManyRequests {
				t.Fatalf("a link we signed got 429: %s", u)
			}
		}
		// A forged Continue of a real link.
		if r := g.send(g.client(), http.MethodPost, confirm.URL, strings.NewReader("csrf=forged"), browser,
			"Content-Type: application/x-www-form-urlencoded"); r.StatusCode != http.StatusForbidden {
			t.Fatalf("forged Continue: %d", r.StatusCode)
		}
	}
	fresh := g.mint(MintRequest{App: "courses", User: userOf("c_fresh")})
	if r := g.do(g.client(), http.MethodGet, fresh.URL, browser); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("a fresh link from the same address: %d", r.StatusCode)
	}
}

// boltStore opens a bolt file in the test's directory, closed when it ends.
func boltStore(t *testing.T) func(now func() time.Time) store.Store {
	return func(now func() time.Time) store.Store {
		st, err := bolt.Open(filepath.Join(t.TempDir(), "gateway.db"), now)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = st.Close() })
		return st
	}
}

// lateStore reaches every spend later than it was asked for, as a batched
// write or a slow network does: the clock moves by delay first.
type lateStore struct {
	store.Store
	clock *clock.Fake
	delay time.Duration
}

func (s *lateStore) Redeem(ctx context.Context, l store.Spend, sess *store.Session) (store.Grant, error) {
	s.clock.Advance(s.delay)
	return s.Store.Redeem(ctx, l, sess)
}

// A spent link used to redeem again when its token verified just before its
// end and the spend reached the store just after: the use record was gone,
// and was written back already expired, so every request in that window
// won. The store judges the end by its own clock and refuses.
func TestRedeem_SpentLinkReplayedAtItsEndIsRefused(t *testing.T) {
	t.Parallel()
	for _, st := range []struct {
		name string
		open func(t *testing.T) func(now func() time.Time) store.Store
	}{
		{"memory", func(*testing.T) func(now func() time.Time) store.Store {
			return func(now func() time.Time) store.Store { return memory.New(now) }
		}},
		{"bolt", boltStore},
	} {
		t.Run(st.name, func(t *testing.T) {
			t.Parallel()
			var late *lateStore
			g := newTestGateway(t, withRateLimit(0), withStore(func(now func() time.Time) store.Store {
				late = &lateStore{Store: st.open(t)(now)}
				return late
			}))
			late.clock = g.clock
			l := g.mint(MintRequest{App: "courses", User: userOf("c_edge"), TTL: "15m"})
			if r := g.do(g.client(), http.MethodGet, l.URL, browser); r.StatusCode != http.StatusSeeOther {
				t.Fatalf("first use: %d", r.StatusCode)
			}
			// Verified a millisecond before the token's end, spent two
			// milliseconds later.
			g.clock.Advance(l.ExpiresAt.Add(link.Leeway).Sub(g.clock.Now()) - time.Millisecond)
			late.delay = 2 * time.Millisecond
			for i := range 3 {
				r := g.do(g.client(), http.MethodGet, l.URL, browser)
				if r.StatusCode != http.StatusGone || web.Cookie(r, "portalgate-courses") != nil {
					t.Fatalf("replay %d at the link's end: %d %s", i+1, r.StatusCode, r.Body)
				}
			}
		})
	}
}

// Login CSRF: any contact can mint a link for himself (a launch, whose
// address the redirect shows), and a hostile page used to navigate a
// victim's browser to it, spending it and signing the victim into the
// attacker's account. A cross-site navigation asks first, on a page that
// names the account, and spends nothing until Continue.
func TestRedeem_LoginCSRFCrossSiteNavigationAsksFirst(t *testing.T) {
	t.Parallel()
	g := newTestGateway(t)
	attacker := g.signInPortal("attacker")
	magic := g.do(attacker, http.MethodGet, "http://"+g.portal+launchPrefix+"courses", browser).Header.Get("Location")
	for _, u := range []string{magic, g.mint(MintRequest{App: "courses", User: userOf("attacker")}).URL} {
		victim := g.client()
		r := g.do(victim, http.MethodGet, u, browser, "Sec-Fetch-Site: cross-site", "Sec-Fetch-Mode: navigate")
		if r.StatusCode != http.StatusOK || !strings.Contains(r.Body, "as <strong>User attacker") || web.Cookie(r, "portalgate-courses") != nil {
			t.Fatalf("a cross-site navigation to a magic link: %d %s", r.StatusCode, r.Body)
		}
		if r := g.do(victim, http.MethodGet, "http://"+g.courses+"/", "Accept: application/json"); r.StatusCode != http.StatusUnauthorized {
			t.Fatalf("the victim was signed in: %d", r.StatusCode)
		}
	}
	// A sibling site (another app of the same domain, where contacts post
	// links) is no better than a foreign one for a link it did not launch.
	sibling := g.mint(MintRequest{App: "courses", User: userOf("attacker")})
	if r := g.do(g.client(), http.MethodGet, sibling.URL, browser, "Sec-Fetch-Site: same-site"); r.StatusCode != http.StatusOK || web.Cookie(r, "portalgate-courses") != nil {
		t.Fatalf("a same-site navigation to a magic link: %d", r.StatusCode)
	}
	// A link opened from a mail program or typed (no site sent it) signs in
	// at one click, as before.
	l := g.mint(MintRequest{App: "courses", User: userOf("c_mail")})
	if r := g.do(g.client(), http.MethodGet, l.URL, browser, "Sec-Fetch-Site: none"); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("a link opened from outside any site: %d", r.StatusCode)
	}
}

// In redeem confirm mode the Continue page used to appear for the links
// the portal mints for its own signed-in browser (launches) and for staff
// Open too; and a revoked link showed Continue and only then said so.
func TestConfirm_LaunchFromThePortalSkipsContinueAndARevokedLinkSaysSoAtOnce(t *testing.T) {
	t.Parallel()
	g := confirmGateway(t)
	c := g.signInPortal("c_launch")
	magic := g.do(c, http.MethodGet, "http://"+g.portal+launchPrefix+"communities", browser).Header.Get("Location")
	if r := g.do(c, http.MethodGet, magic, browser, "Sec-Fetch-Site: same-site"); r.StatusCode != http.StatusSeeOther || web.Cookie(r, "portalgate-communities") == nil {
		t.Fatalf("a launch into a confirm-mode app: %d %s", r.StatusCode, r.Body)
	}
	l := g.mint(MintRequest{App: "communities", User: userOf("c_revoked")})
	if err := g.gw.RevokeLink(context.Background(), "test", l.ID); err != nil {
		t.Fatal(err)
	}
	if r := g.do(g.client(), http.MethodGet, l.URL, browser); r.StatusCode != http.StatusGone || !strings.Contains(r.Body, "revoked") {
		t.Fatalf("a revoked link in confirm mode: %d %s", r.StatusCode, r.Body)
	}
}

// lostAnswer is a store that spends a link but, once, does not say so: a
// Redis that stalled past the client's timeout and ran the script when it
// woke.
type lostAnswer struct {
	store.Store
	lose atomic.Bool
}

func (s *lostAnswer) Redeem(ctx context.Context, l store.Spend, sess *store.Session) (store.Grant, error) {
	g, err := s.Store.Redeem(ctx, l, sess)
	if err == nil && s.lose.Swap(false) {
		return store.Grant{}, fmt.Errorf("redeeming link: %w: read tcp 127.0.0.1:6379: i/o timeout", store.ErrOutcomeUnknown)
	}
	return g, err
}

// A store that spent a link without answering made the person's retry say
// "already used": the browser that got the 503 finishes its redemption
// when the store answers again, and no other browser can.
func TestRedeem_StalledStoreThatSpentTheLinkLetsOnlyThatBrowserFinish(t *testing.T) {
	t.Parallel()
	var lost *lostAnswer
	g := newTestGateway(t, withStore(func(now func() time.Time) store.Store {
		lost = &lostAnswer{Store: memory.New(now)}
		return lost
	}))
	l := g.mint(MintRequest{App: "courses", User: userOf("c_stall")})
	lost.lose.Store(true)
	asked := g.client()
	if r := g.do(asked, http.MethodGet, l.URL, browser); r.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("the redemption whose answer was lost: %d %s", r.StatusCode, r.Body)
	}
	if r := g.do(g.client(), http.MethodGet, l.URL, browser); r.StatusCode != http.StatusGone {
		t.Fatalf("another browser with the link: %d", r.StatusCode)
	}
	r := g.do(asked, http.MethodGet, l.URL, browser)
	if r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != "http://"+g.courses+"/" {
		t.Fatalf("the browser that got the 503, trying again: %d %s", r.StatusCode, r.Body)
	}
	if h := web.Echoed(t, g.do(asked, http.MethodGet, "http://"+g.courses+"/")); h.Get("X-Portal-User-Id") != "c_stall" {
		t.Fatalf("the app sees %v", h)
	}
}

// A link used to hold the contact's e-mail address and name in its token:
// mail scanners, proxies and browser histories kept them. The e-mail and
// name now come from the link's grant in the store; the page that asks to
// continue still names the account.
func TestMint_LinkURLCarriesNoPersonalData(t *testing.T) {
	t.Parallel()
	g := newTestGateway(t)
	u := identity.User{ID: "c_private", Email: "ada.private@example.com", Name: "Ada Private", Location: "loc_private"}
	l := g.mint(MintRequest{App: "courses", User: u, Path: "/lessons/diagnosis"})
	for _, secret := range []string{u.Email, u.Name, u.Location, "diagnosis"} {
		if text := linkText(t, l.URL); strings.Contains(text, secret) {
			t.Fatalf("the link %s carries %q", text, secret)
		}
	}
	if len(l.URL) > 400 {
		t.Errorf("the link is %d characters: %s", len(l.URL), l.URL)
	}
	page := g.do(g.client(), http.MethodGet, l.URL, "Sec-Fetch-Site: cross-site")
	if page.StatusCode != http.StatusOK || !strings.Contains(page.Body, "Ada Private") {
		t.Fatalf("the confirm page does not name the account: %d %s", page.StatusCode, page.Body)
	}
	c := web.SignIn(t, l.URL)
	h := web.Echoed(t, g.do(c, http.MethodGet, "http://"+g.courses+"/", browser))
	if h.Get("X-Portal-User-Email") != u.Email || h.Get("X-Portal-User-Name") != u.Name {
		t.Fatalf("the app got %v, want the grant's e-mail and name", h)
	}
}

// A token signed with the gateway's key but naming a link the store never
// granted (a store emptied or replaced, another deployment's key) signs
// no one in, whatever its claims.
func TestRedeem_TokenWithoutAGrantIsRefused(t *testing.T) {
	t.Parallel()
	g := newTestGateway(t)
	l, err := g.gw.cfg.Codec.Mint(link.Request{App: "courses", User: userOf("c_nogrant")})
	if err != nil {
		t.Fatal(err)
	}
	c := g.client()
	r := g.do(c, http.MethodGet, "http://"+g.courses+magicPath+"?token="+l.Token, browser)
	if r.StatusCode != http.StatusGone || !strings.Contains(r.Body, problemBeforeStore.Title) {
		t.Fatalf("a link without a grant: %d %s", r.StatusCode, r.Body)
	}
	if h := g.do(c, http.MethodGet, "http://"+g.courses+"/", browser); h.StatusCode == http.StatusOK {
		t.Fatal("a link without a grant signed the browser in")
	}
}

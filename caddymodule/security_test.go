package caddymodule

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/portalgate/portalgate/caddymodule/internal/link"
)

// Each test here is named after the attack it stops; SECURITY.md maps them.

func confirmGateway(t *testing.T) *testCaddy {
	g := &testCaddy{}
	*g = *newGateway(t, "store memory")
	g.communityBlock = "redeem confirm"
	g.load()
	return g
}

func TestConfirm_ScannerOpeningTheLinkSpendsNothing(t *testing.T) {
	g := confirmGateway(t)
	l := g.mint(MintRequest{App: "communities", User: userOf("c_confirm")})
	// A mail scanner (or a headless browser that runs scripts) opens the link.
	for range 3 {
		r := g.do(g.client(), http.MethodGet, l.URL, browser)
		if r.StatusCode != http.StatusOK || !strings.Contains(r.body, "Continue to Communities") || cookieNamed(r, "portalgate-communities") != nil {
			t.Fatalf("GET in confirm mode: %d %s", r.StatusCode, r.body)
		}
	}
	// The person opens it and presses Continue.
	c := g.client()
	page := g.do(c, http.MethodGet, l.URL, browser)
	post := func(c *http.Client, token string, headers ...string) resp {
		return g.send(c, http.MethodPost, l.URL, strings.NewReader(url.Values{"csrf": {token}}.Encode()),
			append(headers, browser, "Content-Type: application/x-www-form-urlencoded")...)
	}
	r := post(c, csrfFrom(t, page.body), "Origin: http://"+g.community)
	if r.StatusCode != http.StatusSeeOther || cookieNamed(r, "portalgate-communities") == nil {
		t.Fatalf("Continue: %d %s", r.StatusCode, r.body)
	}
	if h := upstreamHeaders(t, g.do(c, http.MethodGet, "http://"+g.community+"/")); h.Get("X-Portal-User-Id") != "c_confirm" {
		t.Fatalf("after Continue the app sees %v", h)
	}
	// The used form is void, and a fresh one finds the link spent.
	if r := post(c, csrfFrom(t, page.body), "Origin: http://"+g.community); r.StatusCode != http.StatusForbidden {
		t.Fatalf("the same Continue again: %d", r.StatusCode)
	}
	again := g.do(c, http.MethodGet, l.URL, browser)
	if r := post(c, csrfFrom(t, again.body), "Origin: http://"+g.community); r.StatusCode != http.StatusGone {
		t.Fatalf("Continue on a spent link: %d", r.StatusCode)
	}
}

func TestConfirm_ForgedContinueIsRefused(t *testing.T) {
	g := confirmGateway(t)
	l := g.mint(MintRequest{App: "communities", User: userOf("c_forged")})
	c := g.client()
	token := csrfFrom(t, g.do(c, http.MethodGet, l.URL, browser).body)
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
	// Nineteen refusals from one address would trip the default failure budget.
	g := newGateway(t, "store bolt "+t.TempDir()+"/race.db\n\t\trate_limit off")
	l := g.mint(MintRequest{App: "courses", User: userOf("c_race")})
	var wg sync.WaitGroup
	var sessions, gone atomic.Int32
	for range 20 {
		wg.Go(func() {
			r := g.do(g.client(), http.MethodGet, l.URL, browser)
			switch {
			case r.StatusCode == http.StatusSeeOther && cookieNamed(r, "portalgate-courses") != nil:
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
	g := newGateway(t, "store memory")
	claims := jwt.MapClaims{"iss": "http://" + g.portal, "sub": "admin", "aud": []string{"courses"},
		"exp": time.Now().Add(time.Minute).Unix(), "iat": time.Now().Unix(), "jti": "abcdefghijklmnopqrstuv", "uses": 1, "path": "/"}
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
		if r.StatusCode != http.StatusBadRequest || !strings.Contains(r.body, "invalid_link") {
			t.Errorf("%s: %d %s", name, r.StatusCode, r.body)
		}
	}
}

func TestRedeem_RotatedOutKeyIsRefused(t *testing.T) {
	g := newGateway(t, "store memory")
	old := g.mint(MintRequest{App: "courses", User: userOf("c_rot")})
	stillGood := g.mint(MintRequest{App: "courses", User: userOf("c_rot")})
	const newKey = "second-signing-secret-0123456789-abcdef"
	rotate := func(keys string) {
		if err := loadCaddyfile(strings.Replace(g.caddyfile(), "signing_key test "+testKey, keys, 1)); err != nil {
			t.Fatal(err)
		}
	}
	// Step 1: the new key signs, the old one still verifies.
	rotate("signing_key k2 " + newKey + "\n\t\tsigning_key test " + testKey)
	if r := g.do(g.client(), http.MethodGet, stillGood.URL, browser); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("old link during rotation: %d", r.StatusCode)
	}
	fresh := g.mint(MintRequest{App: "courses", User: userOf("c_rot")})
	// Step 2: the old key is removed; its links die with it.
	rotate("signing_key k2 " + newKey)
	if r := g.do(g.client(), http.MethodGet, old.URL, browser); r.StatusCode != http.StatusBadRequest {
		t.Fatalf("link of a removed key: %d", r.StatusCode)
	}
	if r := g.do(g.client(), http.MethodGet, fresh.URL, browser); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("link of the new key: %d", r.StatusCode)
	}
}

func TestOpenRedirect_LandingPathStaysOnTheApp(t *testing.T) {
	g := newGateway(t, "store memory")
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

func jsonString(s string) string { b, _ := json.Marshal(s); return string(b) }

func TestOpenRedirect_RedirectsNeverFollowTheHostHeader(t *testing.T) {
	g := newGateway(t, "store memory")
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
	g := newGateway(t, "store memory\n\t\trate_limit 3 1m")
	bad := "http://" + g.courses + magicPath + "?token=guess"
	for i := range 3 {
		if r := g.do(g.client(), http.MethodGet, bad, "X-Forwarded-For: 10.0.0."+string(rune('1'+i))); r.StatusCode != http.StatusBadRequest {
			t.Fatalf("guess %d: %d", i+1, r.StatusCode)
		}
	}
	// Without trusted proxies, X-Forwarded-For is the attacker's to write and
	// is ignored: every guess counted against the connection's address.
	l := g.mint(MintRequest{App: "courses", User: userOf("x")})
	r := g.do(g.client(), http.MethodGet, l.URL, browser, "X-Forwarded-For: 10.9.9.9")
	if r.StatusCode != http.StatusTooManyRequests || r.Header.Get("Retry-After") == "" {
		t.Fatalf("past the limit: %d, Retry-After %q", r.StatusCode, r.Header.Get("Retry-After"))
	}
	if !strings.Contains(r.body, "Too many attempts") {
		t.Fatalf("429 page: %s", r.body)
	}
}

func TestRateLimit_TrustedProxyClientsAreCountedApart(t *testing.T) {
	g := &testCaddy{}
	*g = *newGateway(t, "store memory\n\t\trate_limit 3 1m")
	g.caddyOptions = "servers {\n\t\ttrusted_proxies static 127.0.0.1/32\n\t}"
	g.load()
	bad := "http://" + g.courses + magicPath + "?token=guess"
	for range 3 {
		g.do(g.client(), http.MethodGet, bad, "X-Forwarded-For: 203.0.113.7")
	}
	if r := g.do(g.client(), http.MethodGet, bad, "X-Forwarded-For: 203.0.113.7"); r.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("the guessing client behind the proxy: %d", r.StatusCode)
	}
	l := g.mint(MintRequest{App: "courses", User: userOf("x")})
	if r := g.do(g.client(), http.MethodGet, l.URL, browser, "X-Forwarded-For: 198.51.100.20"); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("another client behind the same proxy: %d", r.StatusCode)
	}
}

func TestRateLimit_APIKeyGuessingIsSlowed(t *testing.T) {
	g := newGateway(t, "store memory\n\t\trate_limit 3 1m")
	for range 3 {
		if r := apiCallWithKey(g, "guess"); r.StatusCode != http.StatusUnauthorized {
			t.Fatalf("wrong key: %d", r.StatusCode)
		}
	}
	if r := apiCallWithKey(g, testAPIKey); r.StatusCode != http.StatusTooManyRequests || r.Header.Get("Retry-After") == "" {
		t.Fatalf("past the limit, even the right key: %d", r.StatusCode)
	}
}

func apiCallWithKey(g *testCaddy, key string) resp {
	return g.send(g.client(), http.MethodPost, "http://"+g.portal+apiLinksPath,
		strings.NewReader(`{"app":"courses","user":{"id":"x"}}`), "Authorization: Bearer "+key)
}

func TestHeaders_GatewayPagesAreLockedDown(t *testing.T) {
	g := newGateway(t, "store memory")
	pages := map[string]resp{
		"error":   g.do(g.client(), http.MethodGet, "http://"+g.courses+magicPath+"?token=x", browser),
		"home":    g.do(g.signInPortal("c_hdr"), http.MethodGet, "http://"+g.portal+"/", browser),
		"sign in": g.do(g.client(), http.MethodGet, "http://"+g.portal+"/", browser),
	}
	for name, r := range pages {
		h := r.Header
		csp := h.Get("Content-Security-Policy")
		if h.Get("Cache-Control") != "no-store" || h.Get("Referrer-Policy") != "no-referrer" || h.Get("X-Content-Type-Options") != "nosniff" ||
			!strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "frame-ancestors http://"+g.portal) ||
			strings.Contains(csp, "unsafe-inline") || strings.Contains(r.body, "<script") {
			t.Errorf("%s page headers: %v", name, h)
		}
		// The inline style sheet is allowed by its hash, and only it.
		start := strings.Index(r.body, "<style>") + len("<style>")
		sum := sha256.Sum256([]byte(r.body[start:strings.Index(r.body, "</style>")]))
		if !strings.Contains(csp, base64.StdEncoding.EncodeToString(sum[:])) {
			t.Errorf("%s page: the CSP does not allow its own style sheet", name)
		}
	}
}

// signInPortal returns a client signed in to the portal.
func (g *testCaddy) signInPortal(userID string) *http.Client {
	c := g.client()
	g.do(c, http.MethodGet, g.mint(MintRequest{App: "portal", User: userOf(userID)}).URL, browser)
	return c
}

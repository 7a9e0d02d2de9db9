package gateway

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"

	"github.com/portalgate/portalgate/caddymodule/internal/assertion"
	"github.com/portalgate/portalgate/caddymodule/internal/identity"
	"github.com/portalgate/portalgate/caddymodule/internal/session"
	"github.com/portalgate/portalgate/caddymodule/internal/testkit/web"
)

// BenchmarkIdentity_Set is the gate's header work: it deletes a client-sent X-Portal-* header, sets the
// six identity headers and adds frame-ancestors to the answer (each op
// refills the header maps first). The {http.auth.user.*} placeholders need
// Caddy's per-request replacer: BenchmarkGate_SessionHit has them.
func BenchmarkIdentity_Set(b *testing.B) {
	u := &identity.User{ID: "c_bench", Email: "ada@example.com", Name: "Ada Lovelace", Type: identity.Contact, Location: "loc_1"}
	r := httptest.NewRequest(http.MethodGet, "http://courses.test/lesson/1", nil)
	resp := http.Header{}
	accept, forged, server := []string{"text/html"}, []string{"admin"}, []string{"Caddy"}
	const frameAncestors = "frame-ancestors 'self' http://portal.test"
	b.ReportAllocs()
	for b.Loop() {
		clear(r.Header)
		r.Header["Accept"], r.Header["X-Portal-User-Id"] = accept, forged
		clear(resp)
		resp["Server"] = server
		identity.StripHeaders(r.Header)
		vals := new(gatedValues)
		vals.identity.Set(r.Header, u, "", "courses")
		vals.csp[0] = frameAncestors
		resp[headerCSP] = vals.csp[:]
	}
	if r.Header.Get(identity.HeaderUserID) != "c_bench" || r.Header.Get(identity.HeaderLocation) != "loc_1" || resp.Get(headerCSP) != frameAncestors {
		b.Fatalf("request %v, answer %v", r.Header, resp)
	}
}

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
	t.Parallel()
	g := newTestGateway(t)

	t.Run("signed out", func(t *testing.T) {
		before := g.upstreamHits.Load()
		r := g.do(g.client(), http.MethodGet, "http://"+g.courses+"/", spoofs...)
		if r.StatusCode != http.StatusUnauthorized || g.upstreamHits.Load() != before {
			t.Fatalf("a signed-out request with identity headers: %d, upstream hits %d", r.StatusCode, g.upstreamHits.Load()-before)
		}
	})

	t.Run("signed in", func(t *testing.T) {
		c := g.signIn("courses", "c_real")
		h := web.Echoed(t, g.do(c, http.MethodGet, "http://"+g.courses+"/", spoofs...))
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
	t.Parallel()
	g := newTestGateway(t)
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
		!strings.Contains(api.Body, `"code":"no_session"`) {
		t.Fatalf("API client: %d %s %s", api.StatusCode, api.Header.Get("Content-Type"), api.Body)
	}
}

func TestGate_SessionCookieOfAnotherAppOpensNothing(t *testing.T) {
	t.Parallel()
	g := newTestGateway(t)
	c := g.signIn("courses", "cross")
	u, _ := url.Parse("http://" + g.courses + "/")
	ck := c.Jar.Cookies(u)[0]
	r := g.do(g.client(), http.MethodGet, "http://"+g.community+"/", "Cookie: portalgate-communities="+ck.Value)
	if r.StatusCode != http.StatusUnauthorized {
		t.Fatalf("courses session used as communities: %d", r.StatusCode)
	}
}

func TestAssertion_AppVerifiesIdentityWithOnlyTheJWKS(t *testing.T) {
	t.Parallel()
	g := newTestGateway(t, withSite("communities", SiteConfig{Assertion: true}))
	c := g.signIn("communities", "c_assert")
	h := web.Echoed(t, g.do(c, http.MethodGet, "http://"+g.community+"/"))
	tok := h.Get("X-Portal-Assertion")
	if tok == "" {
		t.Fatalf("no assertion reached the app: %v", h)
	}
	// The app knows nothing but the JWKS document.
	jwks := g.do(g.client(), http.MethodGet, "http://"+g.community+jwksPath)
	if jwks.StatusCode != http.StatusOK || jwks.Header.Get("Content-Type") != "application/jwk-set+json" {
		t.Fatalf("jwks: %d %s", jwks.StatusCode, jwks.Header.Get("Content-Type"))
	}
	var doc struct {
		Keys []struct{ Kty, Crv, X, Kid, Alg, Use string }
	}
	if err := json.Unmarshal([]byte(jwks.Body), &doc); err != nil || len(doc.Keys) == 0 {
		t.Fatalf("jwks document %s: %v", jwks.Body, err)
	}
	var claims assertion.Claims
	_, err := jwt.ParseWithClaims(tok, &claims, func(tk *jwt.Token) (any, error) {
		for _, k := range doc.Keys {
			if k.Kid == tk.Header["kid"] && k.Kty == "OKP" && k.Crv == "Ed25519" && k.Alg == "EdDSA" {
				x, err := base64.RawURLEncoding.DecodeString(k.X)
				return ed25519.PublicKey(x), err
			}
		}
		return nil, jwt.ErrTokenUnverifiable
	}, jwt.WithValidMethods([]string{"EdDSA"}), jwt.WithAudience("communities"), jwt.WithExpirationRequired(),
		jwt.WithIssuer("http://"+g.portal), jwt.WithTimeFunc(g.clock.Now))
	if err != nil || claims.Subject != "c_assert" || claims.Email != "c_assert@example.com" {
		t.Fatalf("verifying the assertion with the JWKS: %v %+v", err, claims)
	}
	if exp := claims.ExpiresAt.Sub(claims.IssuedAt.Time); exp.Seconds() != 60 {
		t.Fatalf("assertion lives %v, want 60s", exp)
	}
	// Courses has no assertion on: nothing, and a client's forged one is gone.
	h = web.Echoed(t, g.do(g.signIn("courses", "c_plain"), http.MethodGet, "http://"+g.courses+"/", "X-Portal-Assertion: forged"))
	if h.Get("X-Portal-Assertion") != "" {
		t.Fatalf("courses received an assertion: %v", h)
	}
}

// A magic URL on a path that only cleans into the gateway's
// (//_portalgate/magic) used to go to the gate, which sent the browser to
// the portal with the whole address, token included, in next: past the
// access log's token filter.
func TestGate_TokenNeverTravelsInNext(t *testing.T) {
	t.Parallel()
	g := newTestGateway(t)
	const secret = "eyJhbGciOiJIUzI1NiJ9.c2VjcmV0.c2lnbmF0dXJl"
	for _, p := range []string{"//_portalgate/magic", "/x/../_portalgate/magic", "/_portalgate", "/./_portalgate/magic"} {
		r := g.do(g.client(), http.MethodGet, "http://"+g.courses+p+"?token="+secret, browser)
		if r.StatusCode != http.StatusNotFound || strings.Contains(r.Header.Get("Location")+r.Body, secret) {
			t.Errorf("%s: %d, Location %q", p, r.StatusCode, r.Header.Get("Location"))
		}
	}
	// An app's own address with a token parameter: the visitor goes to sign
	// in without it, with the rest of the address kept.
	r := g.do(g.client(), http.MethodGet, "http://"+g.courses+"/reset?Token="+secret+"&step=2&token=x", browser)
	loc, _ := url.Parse(r.Header.Get("Location"))
	if r.StatusCode != http.StatusSeeOther || strings.Contains(loc.String(), secret) || loc.Query().Get("next") != "/reset?step=2" {
		t.Fatalf("signed-out visit with a token parameter: %d → %s", r.StatusCode, loc)
	}
}

func TestNextOf_DropsEveryTokenParameterAndNothingElse(t *testing.T) {
	t.Parallel()
	for raw, want := range map[string]string{
		"/a?b=1":                  "/a?b=1",
		"/a?q=token&b;c":          "/a?q=token&b;c",
		"/a?tok%65n=secret&x=1":   "/a?x=1",
		"/a?TOKEN=s&token=t&step": "/a?step=",
		"/a?x=%2F":                "/a?x=%2F",
	} {
		u, _ := url.Parse(raw)
		if got := nextOf(u); got != want {
			t.Errorf("nextOf(%q) = %q, want %q", raw, got, want)
		}
	}
}

// TestGate_SessionCookiesNeverReachTheAppWhateverTheBrowserSends: the gate
// rewrites the Cookie line without allocating (a run of it, or the kept
// cookies joined in room of its one allocation); whatever the line, in
// whatever room, no session cookie goes upstream and every other does.
func TestGate_SessionCookiesNeverReachTheAppWhateverTheBrowserSends(t *testing.T) {
	t.Parallel()
	g := newTestGateway(t)
	c := g.signIn("courses", "c_cookies")
	u, _ := url.Parse("http://" + g.courses + "/")
	own := "portalgate-courses=" + c.Jar.Cookies(u)[0].Value
	other := "portalgate-communities=" + strings.Repeat("C", session.IDLen)
	for _, size := range []int{10, 100, 300, 1000} {
		big := "big=" + strings.Repeat("x", size)
		for _, tc := range []struct{ line, upstream string }{
			{own, ""},
			{own + "; " + big, big},
			{big + "; " + own, big},
			{"_ga=1; " + own + "; " + big, "_ga=1; " + big},
			{"_ga=1;" + own + ";;  " + big + "; " + other, "_ga=1; " + big},
			{"_ga=1; " + own + "; " + other + "; __Host-" + other + "; " + big, "_ga=1; " + big},
			{"_ga=1; " + big + "; theme=dark; " + own, "_ga=1; " + big + "; theme=dark"},
		} {
			h := web.Echoed(t, g.do(g.client(), http.MethodGet, "http://"+g.courses+"/", "Cookie: "+tc.line))
			want := []string{tc.upstream}
			if tc.upstream == "" {
				want = nil // no Cookie header at all, not an empty one
			}
			if got := h["Cookie"]; !slices.Equal(got, want) || h.Get(identity.HeaderUserID) != "c_cookies" {
				t.Fatalf("sent Cookie %.80q, upstream got Cookie %.80q (want %.80q) as %q", tc.line, got, want, h.Get(identity.HeaderUserID))
			}
		}
	}
	// A client may send several Cookie lines (HTTP/1.1 allows it of no
	// browser, but of anyone): each loses its session cookies, and a line
	// left empty is dropped.
	h := web.Echoed(t, g.do(g.client(), http.MethodGet, "http://"+g.courses+"/",
		"Cookie: a=1; "+other, "Cookie: "+own, "Cookie: b=2"))
	if got := h["Cookie"]; !slices.Equal(got, []string{"a=1", "b=2"}) || h.Get(identity.HeaderUserID) != "c_cookies" {
		t.Fatalf("three Cookie lines went upstream as %q, as %q", got, h.Get(identity.HeaderUserID))
	}
}

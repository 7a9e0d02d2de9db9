package caddymodule

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/golang-jwt/jwt/v5"

	"github.com/portalgate/portalgate/caddymodule/internal/assertion"
)

func TestAssertion_AppVerifiesIdentityWithOnlyTheJWKS(t *testing.T) {
	g := &testCaddy{}
	*g = *newGateway(t, "store memory")
	g.communityBlock = "assertion on"
	g.load()
	c := g.signIn("communities", "c_assert")
	h := upstreamHeaders(t, g.do(c, http.MethodGet, "http://"+g.community+"/"))
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
	if err := json.Unmarshal([]byte(jwks.body), &doc); err != nil || len(doc.Keys) == 0 {
		t.Fatalf("jwks document %s: %v", jwks.body, err)
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
	}, jwt.WithValidMethods([]string{"EdDSA"}), jwt.WithAudience("communities"), jwt.WithExpirationRequired(), jwt.WithIssuer("http://"+g.portal))
	if err != nil || claims.Subject != "c_assert" || claims.Email != "c_assert@example.com" {
		t.Fatalf("verifying the assertion with the JWKS: %v %+v", err, claims)
	}
	if exp := claims.ExpiresAt.Sub(claims.IssuedAt.Time); exp.Seconds() != 60 {
		t.Fatalf("assertion lives %v, want 60s", exp)
	}
	// Courses has no assertion on: nothing, and a client's forged one is gone.
	h = upstreamHeaders(t, g.do(g.signIn("courses", "c_plain"), http.MethodGet, "http://"+g.courses+"/", "X-Portal-Assertion: forged"))
	if h.Get("X-Portal-Assertion") != "" {
		t.Fatalf("courses received an assertion: %v", h)
	}
}

func TestMetrics_AdminEndpointShowsPortalgateSeries(t *testing.T) {
	g := newGateway(t, "store bolt "+t.TempDir()+"/metrics.db")
	c := g.signIn("courses", "c_metrics")
	g.do(c, http.MethodGet, "http://"+g.courses+"/")
	g.do(c, http.MethodGet, "http://"+g.courses+"/")
	g.do(g.client(), http.MethodGet, "http://"+g.courses+"/", "Accept: application/json")
	g.do(g.client(), http.MethodGet, "http://"+g.courses+magicPath+"?token=nope")
	m := g.do(http.DefaultClient, http.MethodGet, "http://"+g.admin+"/metrics").body
	for _, want := range []string{
		`portalgate_links_minted_total{app="courses"} 1`,
		`portalgate_redemptions_total{app="courses",result="ok"} 1`,
		`portalgate_redemptions_total{app="courses",result="malformed"} 1`,
		`portalgate_gated_requests_total{app="courses",result="ok"} 2`,
		`portalgate_gated_requests_total{app="courses",result="no_session"} 1`,
		`portalgate_store_operation_seconds_count{operation="redeem",store="bolt"} 1`,
		`portalgate_active_sessions{store="bolt"} 1`,
		`portalgate_cache_hits_total`,
		`portalgate_cache_misses_total`,
	} {
		if !strings.Contains(m, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

func TestAuditLog_RecordsEverySecurityFactAndNoSecret(t *testing.T) {
	g := &testCaddy{}
	*g = *newGateway(t, "store memory")
	logPath := filepath.Join(t.TempDir(), "audit.log")
	g.caddyOptions = "log audit {\n\t\tinclude portalgate.audit\n\t\toutput file " + logPath + "\n\t\tformat json\n\t}"
	g.load()
	c := g.client()
	l := g.mint(MintRequest{App: "courses", User: userOf("c_audit")})
	g.do(c, http.MethodGet, l.URL, browser)
	u, _ := url.Parse("http://" + g.courses)
	secrets := []string{l.URL[strings.Index(l.URL, "token=")+6:], testKey, testAPIKey}
	for _, ck := range c.Jar.Cookies(u) {
		secrets = append(secrets, ck.Value)
	}
	if len(secrets) != 4 {
		t.Fatal("no session cookie to look for")
	}
	g.do(g.client(), http.MethodGet, l.URL, browser) // replay
	token := csrfFrom(t, g.do(c, http.MethodGet, "http://"+g.courses+logoutPath, browser).body)
	g.do(c, http.MethodPost, "http://"+g.courses+logoutPath, "X-CSRF-Token: "+token)
	g.api(http.MethodDelete, "links/"+g.mint(MintRequest{App: "courses", User: userOf("c_audit")}).ID, "")
	g.api(http.MethodPost, "users/c_audit/revoke", "")
	apiCallWithKey(g, "wrong")
	g.apiCall(http.MethodPost, "contacts", `[{"id":"c_audit","name":"Audit"}]`, http.StatusOK)
	if err := caddy.Stop(); err != nil { // flush the log file
		t.Fatal(err)
	}
	raw, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	log := string(raw)
	events := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(log), "\n") {
		var e map[string]any
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("audit line %q: %v", line, err)
		}
		if e["logger"] != "portalgate.audit" {
			t.Fatalf("foreign line in the audit log: %s", line)
		}
		events[e["event"].(string)] = true
	}
	for _, want := range []string{"link_minted", "link_redeemed", "session_created", "link_rejected", "session_ended", "link_revoked", "user_revoked", "api_key_rejected", "contacts_synced"} {
		if !events[want] {
			t.Errorf("no %s event in:\n%s", want, log)
		}
	}
	for _, s := range secrets {
		if s != "" && strings.Contains(log, s) {
			t.Fatalf("a secret is in the audit log: %s", s)
		}
	}
}

func TestHealth_ReportsStoreAndKeys(t *testing.T) {
	g := newGateway(t, "store bolt "+t.TempDir()+"/health.db")
	r := g.do(http.DefaultClient, http.MethodGet, "http://"+g.admin+"/portalgate/health")
	var h struct {
		Status string
		Store  struct {
			Backend   string
			Reachable bool
		}
		Keys struct {
			Signing, Assertion struct {
				Kid       string
				Keys      int
				Generated bool
			}
		}
	}
	if err := json.Unmarshal([]byte(r.body), &h); err != nil || r.StatusCode != http.StatusOK {
		t.Fatalf("health: %d %s", r.StatusCode, r.body)
	}
	if h.Status != "ok" || h.Store.Backend != "bolt" || !h.Store.Reachable || h.Keys.Signing.Kid != "test" ||
		h.Keys.Signing.Keys != 1 || h.Keys.Signing.Generated || !h.Keys.Assertion.Generated || strings.Contains(r.body, testKey) {
		t.Fatalf("health: %s", r.body)
	}
}

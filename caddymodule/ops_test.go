package caddymodule

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"testing"

	"github.com/golang-jwt/jwt/v5"

	"github.com/portalgate/portalgate/caddymodule/internal/assertion"
)

func TestAssertion_AppVerifiesIdentityWithOnlyTheJWKS(t *testing.T) {
	g := &gateway{}
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

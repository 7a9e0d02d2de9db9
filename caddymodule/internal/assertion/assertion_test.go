package assertion_test

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/portalgate/portalgate/caddymodule/internal/assertion"
	"github.com/portalgate/portalgate/caddymodule/internal/identity"
	"github.com/portalgate/portalgate/caddymodule/internal/testkit/clock"
)

// VerifyWithJWKS checks an assertion knowing only the JWKS document, as an
// app would.
func VerifyWithJWKS(t *testing.T, jwks []byte, token, app string, now func() time.Time) (*assertion.Claims, error) {
	t.Helper()
	var doc struct {
		Keys []struct{ Kty, Crv, X, Kid, Alg string }
	}
	if err := json.Unmarshal(jwks, &doc); err != nil {
		t.Fatal(err)
	}
	var claims assertion.Claims
	_, err := jwt.ParseWithClaims(token, &claims, func(tok *jwt.Token) (any, error) {
		for _, k := range doc.Keys {
			if k.Kid == tok.Header["kid"] && k.Kty == "OKP" && k.Crv == "Ed25519" {
				x, err := base64.RawURLEncoding.DecodeString(k.X)
				return ed25519.PublicKey(x), err
			}
		}
		return nil, jwt.ErrTokenUnverifiable
	}, jwt.WithValidMethods([]string{"EdDSA"}), jwt.WithAudience(app), jwt.WithExpirationRequired(), jwt.WithTimeFunc(now))
	return &claims, err
}

func TestSign_VerifiesWithTheJWKSAlone(t *testing.T) {
	clk := clock.NewFake()
	_, priv, _ := ed25519.GenerateKey(nil)
	_, old, _ := ed25519.GenerateKey(nil)
	s, err := assertion.NewSigner("https://portal.example.com", time.Minute, clk.Now,
		assertion.Key{ID: "new", Private: priv}, assertion.Key{ID: "old", Private: old})
	if err != nil {
		t.Fatal(err)
	}
	u := identity.User{ID: "c_1", Email: "ada@example.com", Name: "Ada", Type: identity.Contact, Location: "loc_1"}
	tok, exp, err := s.Sign("acme", "courses", u)
	if err != nil || !exp.Equal(clk.Now().Add(time.Minute)) {
		t.Fatalf("Sign: %v, exp %v", err, exp)
	}
	claims, err := VerifyWithJWKS(t, s.JWKS(), tok, "courses", clk.Now)
	if err != nil || claims.Subject != "c_1" || claims.Location != "loc_1" || claims.Type != identity.Contact || claims.Tenant != "acme" {
		t.Fatalf("verify: %v %+v", err, claims)
	}
	if _, err := VerifyWithJWKS(t, s.JWKS(), tok, "communities", clk.Now); err == nil {
		t.Fatal("an assertion for courses verified for communities")
	}
	clk.Advance(61 * time.Second)
	if _, err := VerifyWithJWKS(t, s.JWKS(), tok, "courses", clk.Now); err == nil {
		t.Fatal("an expired assertion verified")
	}
	if got := s.KeyIDs(); len(got) != 2 || got[0] != "new" {
		t.Fatalf("key ids %v", got)
	}
}

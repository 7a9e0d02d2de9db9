// Package assertion signs short-lived identity assertions (Ed25519 JWTs) for
// apps that must verify who a request is for rather than trust the network,
// and publishes the public keys as a JWKS document (RFC 7517, OKP keys).
package assertion

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/portalgate/portalgate/caddymodule/internal/identity"
)

// TokenType is the JOSE "typ" of an assertion.
const TokenType = "portalgate-assertion+jwt"

// Key is one named Ed25519 key pair.
type Key struct {
	ID      string
	Private ed25519.PrivateKey
}

// Claims are what an assertion says: the registered claims and the user.
type Claims struct {
	jwt.RegisteredClaims
	Email    string        `json:"email,omitempty"`
	Name     string        `json:"name,omitempty"`
	Type     identity.Type `json:"type,omitempty"`
	Location string        `json:"location,omitempty"`
	// Tenant is the sub-account whose app the request is for, when the
	// gateway serves tenants: an app verifying assertions of many tenants
	// tells them apart by it, and an assertion of one is not another's.
	Tenant string `json:"tenant,omitempty"`
}

// Signer signs assertions with the first key; every key is published.
type Signer struct {
	keys   []Key
	issuer string
	ttl    time.Duration
	now    func() time.Time
	jwks   []byte
}

// NewSigner returns a signer over keys (the first signs).
func NewSigner(issuer string, ttl time.Duration, now func() time.Time, keys ...Key) (*Signer, error) {
	if len(keys) == 0 {
		return nil, errors.New("an assertion signer needs a key")
	}
	type jwk struct {
		Kty string `json:"kty"`
		Crv string `json:"crv"`
		X   string `json:"x"`
		Kid string `json:"kid"`
		Use string `json:"use"`
		Alg string `json:"alg"`
	}
	doc := struct {
		Keys []jwk `json:"keys"`
	}{}
	seen := map[string]bool{}
	for _, k := range keys {
		if k.ID == "" || seen[k.ID] {
			return nil, fmt.Errorf("assertion key id %q is empty or used twice", k.ID)
		}
		if len(k.Private) != ed25519.PrivateKeySize {
			return nil, fmt.Errorf("assertion key %q is not an Ed25519 private key", k.ID)
		}
		seen[k.ID] = true
		pub := k.Private.Public().(ed25519.PublicKey)
		doc.Keys = append(doc.Keys, jwk{Kty: "OKP", Crv: "Ed25519", X: base64.RawURLEncoding.EncodeToString(pub), Kid: k.ID, Use: "sig", Alg: "EdDSA"})
	}
	jwks, err := json.Marshal(doc)
	if err != nil {
		return nil, err
	}
	return &Signer{keys: keys, issuer: issuer, ttl: ttl, now: now, jwks: jwks}, nil
}

// Sign returns an assertion that u is making a request to app of tenant
// ("" for none), and when it expires.
func (s *Signer) Sign(tenant, app string, u identity.User) (string, time.Time, error) {
	now := s.now().Truncate(time.Second)
	exp := now.Add(s.ttl)
	tok := jwt.NewWithClaims(jwt.SigningMethodEdDSA, Claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    s.issuer,
			Subject:   u.ID,
			Audience:  jwt.ClaimStrings{app},
			ExpiresAt: jwt.NewNumericDate(exp),
			IssuedAt:  jwt.NewNumericDate(now),
		},
		Email: u.Email, Name: u.Name, Type: u.Type, Location: u.Location, Tenant: tenant,
	})
	tok.Header["kid"] = s.keys[0].ID
	tok.Header["typ"] = TokenType
	signed, err := tok.SignedString(s.keys[0].Private)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("signing assertion: %w", err)
	}
	return signed, exp, nil
}

// JWKS is the public keys as a JSON Web Key Set document.
func (s *Signer) JWKS() []byte { return s.jwks }

// KeyIDs lists the key ids, the signing key first.
func (s *Signer) KeyIDs() []string {
	ids := make([]string, len(s.keys))
	for i, k := range s.keys {
		ids[i] = k.ID
	}
	return ids
}

// Package link mints and verifies magic-link tokens: compact JWS (HS256) signed
// with a key ring, one audience (the target app) each, short-lived and counted
// by the store so they can be used only as often as they say.
package link

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/portalgate/portalgate/caddymodule/internal/identity"
)

// TokenType is the JOSE "typ" header of every link token, so a token minted
// for another purpose with the same key is never taken for a link.
const TokenType = "portalgate-link+jwt"

// Leeway is the clock skew allowed between the instance that minted a link and
// the one that redeems it.
const Leeway = 10 * time.Second

// The ways a token can fail. Callers map them to HTTP statuses.
var (
	ErrMalformed    = errors.New("link token is malformed")
	ErrBadSignature = errors.New("link token signature is not valid")
	ErrWrongApp     = errors.New("link is for another app")
	ErrExpired      = errors.New("link has expired")
	// ErrInvalidClaims is a token with a good signature whose claims do not
	// hold (an issuer, an iat in the future, a user that fails Validate):
	// not a guess, but not a link to honour.
	ErrInvalidClaims = errors.New("link token claims are not valid")
)

// Claims are what a link token carries: the registered JWT claims that
// name the link, its app and its life, and nothing about the person. Who
// the link signs in, where it lands and how often it works are the link's
// record in the store (see store.Grant), found by ID: a link in a mail
// scanner's log, a proxy's or a browser's history holds no e-mail address,
// no name and no session id. They implement jwt.Claims.
type Claims struct {
	Issuer  string `json:"iss"`
	Subject string `json:"sub"`
	// Audience is the one app the link is for.
	Audience string `json:"aud"`
	// ExpiresAt and IssuedAt are Unix seconds.
	ExpiresAt int64  `json:"exp"`
	IssuedAt  int64  `json:"iat"`
	ID        string `json:"jti"`
	// Launch marks a link the gateway minted for a signed-in browser and
	// redirected it to at once (a portal launch, a staff Open): no mail
	// scanner ever sees one, so it needs no Continue.
	Launch bool `json:"launch,omitempty"`
	// Tenant is the sub-account whose portal and apps the link opens ("" for
	// the default one): a link of one tenant opens nothing of another.
	Tenant string `json:"tenant,omitempty"`
}

// Expires is the link's end as the token says it.
func (c *Claims) Expires() time.Time { return time.Unix(c.ExpiresAt, 0) }

// GetExpirationTime implements jwt.Claims.
func (c *Claims) GetExpirationTime() (*jwt.NumericDate, error) {
	return jwt.NewNumericDate(time.Unix(c.ExpiresAt, 0)), nil
}

// GetIssuedAt implements jwt.Claims.
func (c *Claims) GetIssuedAt() (*jwt.NumericDate, error) {
	return jwt.NewNumericDate(time.Unix(c.IssuedAt, 0)), nil
}

// GetNotBefore implements jwt.Claims: a link is good from its issue.
func (c *Claims) GetNotBefore() (*jwt.NumericDate, error) { return nil, nil }

// GetIssuer implements jwt.Claims.
func (c *Claims) GetIssuer() (string, error) { return c.Issuer, nil }

// GetSubject implements jwt.Claims.
func (c *Claims) GetSubject() (string, error) { return c.Subject, nil }

// GetAudience implements jwt.Claims.
func (c *Claims) GetAudience() (jwt.ClaimStrings, error) { return jwt.ClaimStrings{c.Audience}, nil }

// Request is what a caller asks to mint.
type Request struct {
	// Tenant is the sub-account the link is for ("" for the default one).
	Tenant string
	App    string
	User   identity.User
	// Path is where the link lands inside App. Default: "/".
	Path string
	// TTL is how long the link stays valid. Default: the codec's default TTL.
	TTL time.Duration
	// Uses is how many times the link can be redeemed. Default: 1.
	Uses int
	// Apps lists the apps a session started from this link may launch.
	Apps []string
	// Launch marks a link sent at once to the browser that asked for it.
	Launch bool
	// Origin is the origin of the session that asked for the link.
	Origin string
}

// Link is a freshly minted token with what it grants: the request, its
// defaults filled in, for the caller to keep in the store under ID.
type Link struct {
	Request
	ID    string
	Token string
	// IssuedAt is the issue time, to the microsecond; the token carries it
	// in whole seconds.
	IssuedAt  time.Time
	ExpiresAt time.Time
}

// Codec mints and verifies link tokens.
type Codec struct {
	Ring   *Ring
	Issuer string
	// DefaultTTL applies when a request names no TTL; MaxTTL bounds every request.
	DefaultTTL, MaxTTL time.Duration
	// Now is the clock; tests set a fake one.
	Now func() time.Time
}

// Check reports whether Mint would sign req, and why not.
func (c *Codec) Check(req Request) error {
	_, err := c.complete(req)
	return err
}

// complete checks req and fills in its defaults.
func (c *Codec) complete(req Request) (Request, error) {
	if req.App == "" {
		return req, errors.New("app is required")
	}
	if err := req.User.Validate(); err != nil {
		return req, err
	}
	if req.Path == "" {
		req.Path = "/"
	}
	if err := CheckPath(req.Path); err != nil {
		return req, err
	}
	if req.TTL == 0 {
		req.TTL = c.DefaultTTL
	}
	if req.TTL < 0 || req.TTL > c.MaxTTL {
		return req, fmt.Errorf("ttl must be between 0 and %s", c.MaxTTL)
	}
	if req.Uses == 0 {
		req.Uses = 1
	}
	if req.Uses < 0 || req.Uses > MaxUses {
		return req, fmt.Errorf("uses must be between 1 and %d", MaxUses)
	}
	return req, nil
}

// Mint signs a new link for req.
func (c *Codec) Mint(req Request) (Link, error) {
	req, err := c.complete(req)
	if err != nil {
		return Link{}, err
	}
	req.User.Type, _ = identity.ParseType(string(req.User.Type))
	id, err := NewID()
	if err != nil {
		return Link{}, err
	}
	issued := c.Now().Truncate(time.Microsecond)
	now := issued.Truncate(time.Second)
	exp := now.Add(req.TTL)
	key := c.Ring.signing()
	signed, err := key.sign(&Claims{
		Issuer:    c.Issuer,
		Subject:   req.User.ID,
		Audience:  req.App,
		ExpiresAt: exp.Unix(),
		IssuedAt:  now.Unix(),
		ID:        id,
		Launch:    req.Launch,
		Tenant:    req.Tenant,
	})
	if err != nil {
		return Link{}, fmt.Errorf("signing link: %w", err)
	}
	return Link{Request: req, ID: id, Token: signed, IssuedAt: issued, ExpiresAt: exp}, nil
}

// MaxUses bounds the uses of one link.
const MaxUses = 1000

// Verify checks token's signature, type, issuer, expiry and audience (app)
// and returns its claims. Errors wrap one of the package's Err values.
//
// It accepts a token only when it is byte for byte one that Mint signs: the
// header one of the ring's (so alg, typ and kid are never parsed, and no
// "none" or RS256 can be asked for), the HMAC of a ring key over it, and
// claims whose JSON is exactly what Mint writes for them (no unknown,
// repeated or differently cased member). golang-jwt signs; this narrow
// check, which the tests hold against golang-jwt's own parser, spares
// every redemption the general parser's cost.
func (c *Codec) Verify(token, app string) (*Claims, error) {
	b := []byte(token)
	head := bytes.IndexByte(b, '.')
	if head < 0 {
		return nil, ErrMalformed
	}
	signed := bytes.IndexByte(b[head+1:], '.') + head + 1
	if signed == head || bytes.IndexByte(b[signed+1:], '.') >= 0 {
		return nil, ErrMalformed
	}
	k := c.Ring.byHeader[string(b[:head])]
	if k == nil {
		return nil, unknownHeader(b[:head])
	}
	var sig [sha256.Size]byte
	if len(b)-signed-1 != sigLen {
		return nil, ErrMalformed
	}
	if n, err := strict.Decode(sig[:], b[signed+1:]); err != nil || n != len(sig) {
		return nil, ErrMalformed
	}
	if !k.verify(b[:signed], sig[:]) {
		return nil, ErrBadSignature
	}
	payload := make([]byte, strict.DecodedLen(signed-head-1))
	n, err := strict.Decode(payload, b[head+1:signed])
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidClaims, err)
	}
	payload = payload[:n]
	claims := new(Claims)
	if err := json.Unmarshal(payload, claims); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidClaims, err)
	}
	if canonical, err := json.Marshal(claims); err != nil || !bytes.Equal(canonical, payload) {
		return nil, fmt.Errorf("%w: not claims this codec writes", ErrInvalidClaims)
	}
	now := c.Now()
	switch {
	case !now.Before(time.Unix(claims.ExpiresAt, 0).Add(Leeway)):
		return nil, ErrExpired
	case claims.Audience != app:
		return nil, ErrWrongApp
	case claims.Issuer != c.Issuer, claims.ID == "", claims.Subject == "",
		now.Add(Leeway).Before(time.Unix(claims.IssuedAt, 0)):
		return nil, ErrInvalidClaims
	}
	// The user id is checked again as at mint: a token signed with the real
	// key by anything but this codec (another version, a leaked key in a
	// script) must not hand an app a value that splits its headers.
	if err := (identity.User{ID: claims.Subject}).Validate(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidClaims, err)
	}
	return claims, nil
}

// strict is the token's base64: unpadded base64url, with no unused bits
// set, so that one token has one spelling.
var strict = base64.RawURLEncoding.Strict()

// sigLen is the length of an HS256 signature in base64url.
var sigLen = strict.EncodedLen(sha256.Size)

// unknownHeader tells a token whose header is none of the ring's: not a
// token at all, or one signed some other way (another algorithm, type or
// key), which is no more than a guess.
func unknownHeader(h []byte) error {
	raw := make([]byte, base64.RawURLEncoding.DecodedLen(len(h)))
	n, err := base64.RawURLEncoding.Decode(raw, h)
	if err != nil || !json.Valid(raw[:n]) {
		return ErrMalformed
	}
	return ErrBadSignature
}

// NewID returns a random 128-bit id, base64url without padding.
func NewID() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("reading random bytes: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b[:]), nil
}

// CheckPath reports whether p is a path inside an app: absolute, not a
// scheme-relative URL, no backslashes or control characters, no fragment.
func CheckPath(p string) error {
	if !strings.HasPrefix(p, "/") || strings.HasPrefix(p, "//") {
		return fmt.Errorf("path %q must start with a single /", p)
	}
	if len(p) > 2048 {
		return errors.New("path is longer than 2048 bytes")
	}
	for _, c := range []byte(p) {
		// A backslash is a slash to some browsers: /\evil.com leaves the origin.
		if c < 0x20 || c == 0x7f || c == '\\' || c == '#' {
			return fmt.Errorf("path %q contains a character not allowed in a landing path", p)
		}
	}
	return nil
}

// Package link mints and verifies magic-link tokens: compact JWS (HS256) signed
// with a key ring, one audience (the target app) each, short-lived and counted
// by the store so they can be used only as often as they say.
package link

import (
	"crypto/rand"
	"encoding/base64"
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

// validMethods is the algorithm allow-list: anything else ("none", RS256 with
// an HMAC secret as the "public key", ...) is rejected before any key is used.
var validMethods = []string{jwt.SigningMethodHS256.Alg()}

// Claims are the registered JWT claims plus what a link carries.
type Claims struct {
	jwt.RegisteredClaims
	Uses     int           `json:"uses"`
	Path     string        `json:"path"`
	Email    string        `json:"email,omitempty"`
	Name     string        `json:"name,omitempty"`
	Type     identity.Type `json:"type,omitempty"`
	Location string        `json:"location,omitempty"`
	Apps     []string      `json:"apps,omitempty"`
	// IssuedUs is the issue time in microseconds ("iat" has whole seconds):
	// a user revoked and sent a new link right after keeps the new link.
	IssuedUs int64 `json:"iat_us,omitempty"`
	// Launch marks a link the gateway minted for a signed-in browser and
	// redirected it to at once (a portal launch, a staff Open): no mail
	// scanner ever sees one, so it needs no Continue.
	Launch bool `json:"launch,omitempty"`
	// Origin is the origin of the session a launch was minted from: the
	// session the link starts shares it (see store.Session.Origin).
	Origin string `json:"origin,omitempty"`
}

// Issued is when the link was minted, to the microsecond when known.
func (c *Claims) Issued() time.Time {
	if c.IssuedUs > 0 {
		return time.UnixMicro(c.IssuedUs)
	}
	return c.IssuedAt.Time
}

// App returns the app the link is for.
func (c *Claims) App() string {
	if len(c.Audience) == 0 {
		return ""
	}
	return c.Audience[0]
}

// User returns the identity the link stands for.
func (c *Claims) User() identity.User {
	return identity.User{ID: c.Subject, Email: c.Email, Name: c.Name, Type: c.Type, Location: c.Location}
}

// Request is what a caller asks to mint.
type Request struct {
	App  string
	User identity.User
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

// Link is a freshly minted token with the facts a caller reports back.
type Link struct {
	ID    string
	Token string
	// IssuedAt is the issue time the token carries (Claims.Issued).
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
	typ, _ := identity.ParseType(string(req.User.Type))
	id, err := NewID()
	if err != nil {
		return Link{}, err
	}
	issued := c.Now()
	now := issued.Truncate(time.Second)
	exp := now.Add(req.TTL)
	claims := Claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    c.Issuer,
			Subject:   req.User.ID,
			Audience:  jwt.ClaimStrings{req.App},
			ExpiresAt: jwt.NewNumericDate(exp),
			IssuedAt:  jwt.NewNumericDate(now),
			ID:        id,
		},
		Uses:     req.Uses,
		Path:     req.Path,
		Email:    req.User.Email,
		Name:     req.User.Name,
		Type:     typ,
		Location: req.User.Location,
		Apps:     req.Apps,
		IssuedUs: issued.UnixMicro(),
		Launch:   req.Launch,
		Origin:   req.Origin,
	}
	key := c.Ring.signing()
	tok := jwt.NewWithClaims(jwt.SigningMethodHS256, claims)
	tok.Header["kid"] = key.ID
	tok.Header["typ"] = TokenType
	signed, err := tok.SignedString(key.Secret)
	if err != nil {
		return Link{}, fmt.Errorf("signing link: %w", err)
	}
	return Link{ID: id, Token: signed, IssuedAt: time.UnixMicro(issued.UnixMicro()), ExpiresAt: exp}, nil
}

// MaxUses bounds the uses of one link.
const MaxUses = 1000

// Verify checks token's signature, type, issuer, expiry and audience (app)
// and returns its claims. Errors wrap one of the package's Err values.
func (c *Codec) Verify(token, app string) (*Claims, error) {
	var claims Claims
	_, err := jwt.ParseWithClaims(token, &claims, c.key,
		jwt.WithValidMethods(validMethods),
		jwt.WithIssuer(c.Issuer),
		jwt.WithAudience(app),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(Leeway),
		jwt.WithTimeFunc(c.Now),
		jwt.WithStrictDecoding(),
	)
	switch {
	case err == nil:
	case errors.Is(err, jwt.ErrTokenMalformed):
		return nil, ErrMalformed
	case errors.Is(err, jwt.ErrTokenSignatureInvalid), errors.Is(err, jwt.ErrTokenUnverifiable):
		return nil, ErrBadSignature
	case errors.Is(err, jwt.ErrTokenExpired):
		return nil, ErrExpired
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return nil, ErrWrongApp
	case errors.Is(err, jwt.ErrTokenInvalidClaims):
		// A valid signature (it is checked first) over claims that fail
		// validation (issuer, iat in the future, ...).
		return nil, fmt.Errorf("%w: %v", ErrInvalidClaims, err)
	default:
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if len(claims.Audience) != 1 || claims.Subject == "" || claims.ID == "" ||
		claims.Uses < 1 || claims.Uses > MaxUses || CheckPath(claims.Path) != nil {
		return nil, ErrInvalidClaims
	}
	// The user is checked again as at mint: a token signed with the real key
	// by anything but this codec (another version, a leaked key in a
	// script) must not hand an app a role it does not know or a value that
	// splits its headers.
	if err := claims.User().Validate(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidClaims, err)
	}
	return &claims, nil
}

// key picks the verification key named by the token's kid; it never reads a
// file or URL, so kid is only ever a name in the ring.
func (c *Codec) key(t *jwt.Token) (any, error) {
	if typ, _ := t.Header["typ"].(string); typ != TokenType {
		return nil, errors.New("wrong token type")
	}
	kid, _ := t.Header["kid"].(string)
	secret, ok := c.Ring.lookup(kid)
	if !ok {
		return nil, errors.New("unknown key id")
	}
	return secret, nil
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

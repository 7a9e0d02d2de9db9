package link_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/portalgate/portalgate/caddymodule/internal/identity"
	"github.com/portalgate/portalgate/caddymodule/internal/link"
	"github.com/portalgate/portalgate/caddymodule/internal/testkit/clock"
)

var (
	keyA = link.Key{ID: "a", Secret: []byte("0123456789abcdef0123456789abcdef")}
	keyB = link.Key{ID: "b", Secret: []byte("fedcba9876543210fedcba9876543210")}
	ada  = identity.User{ID: "c_123", Email: "ada@example.com", Name: "Ada Lovelace", Location: "loc_1"}
)

func newCodec(t testing.TB, clk *clock.Fake, keys ...link.Key) *link.Codec {
	t.Helper()
	ring, err := link.NewRing(keys...)
	if err != nil {
		t.Fatal(err)
	}
	return &link.Codec{Ring: ring, Issuer: "https://portal.example.com", DefaultTTL: 15 * time.Minute, MaxTTL: 24 * time.Hour, Now: clk.Now}
}

func mint(t *testing.T, c *link.Codec, req link.Request) link.Link {
	t.Helper()
	l, err := c.Mint(req)
	if err != nil {
		t.Fatalf("Mint: %v", err)
	}
	return l
}

func TestMintVerify_RoundTrip(t *testing.T) {
	clk := clock.NewFake()
	c := newCodec(t, clk, keyA)
	l := mint(t, c, link.Request{App: "courses", User: ada, Path: "/lesson/1?x=2", Apps: []string{"courses"}})
	if want := clk.Now().Add(15 * time.Minute); !l.ExpiresAt.Equal(want) {
		t.Fatalf("ExpiresAt = %v, want %v", l.ExpiresAt, want)
	}
	claims, err := c.Verify(l.Token, "courses")
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	want := ada
	want.Type = identity.Contact
	if claims.User() != want || claims.App() != "courses" || claims.Path != "/lesson/1?x=2" ||
		claims.Uses != 1 || claims.ID != l.ID || len(claims.Apps) != 1 {
		t.Fatalf("claims = %+v", claims)
	}
	if len(l.ID) != 22 {
		t.Fatalf("link id %q is not 128 bits in base64url", l.ID)
	}
}

func TestMint_RejectsBadRequests(t *testing.T) {
	c := newCodec(t, clock.NewFake(), keyA)
	for name, req := range map[string]link.Request{
		"no app":        {User: ada},
		"no user id":    {App: "courses", User: identity.User{Email: "x@example.com"}},
		"bad type":      {App: "courses", User: identity.User{ID: "u", Type: "admin"}},
		"ttl above max": {App: "courses", User: ada, TTL: 25 * time.Hour},
		"negative ttl":  {App: "courses", User: ada, TTL: -time.Minute},
		"too many uses": {App: "courses", User: ada, Uses: link.MaxUses + 1},
		"header split":  {App: "courses", User: identity.User{ID: "u\r\nX-Portal-User-Id: admin"}},
		"offsite path":  {App: "courses", User: ada, Path: "//evil.example.com/"},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := c.Mint(req); err == nil {
				t.Fatal("Mint accepted a bad request")
			}
		})
	}
}

func TestVerify_ExpiredLinkIsGone(t *testing.T) {
	clk := clock.NewFake()
	c := newCodec(t, clk, keyA)
	l := mint(t, c, link.Request{App: "courses", User: ada, TTL: time.Minute})
	clk.Advance(time.Minute + link.Leeway - time.Second)
	if _, err := c.Verify(l.Token, "courses"); err != nil {
		t.Fatalf("Verify within the leeway: %v", err)
	}
	clk.Advance(2 * time.Second)
	if _, err := c.Verify(l.Token, "courses"); !errors.Is(err, link.ErrExpired) {
		t.Fatalf("Verify after expiry = %v, want ErrExpired", err)
	}
}

func TestVerify_LinkForAnotherAppIsRefused(t *testing.T) {
	c := newCodec(t, clock.NewFake(), keyA)
	l := mint(t, c, link.Request{App: "courses", User: ada})
	if _, err := c.Verify(l.Token, "communities"); !errors.Is(err, link.ErrWrongApp) {
		t.Fatalf("Verify for another app = %v, want ErrWrongApp", err)
	}
}

func TestVerify_TamperedSignatureIsRefused(t *testing.T) {
	c := newCodec(t, clock.NewFake(), keyA)
	l := mint(t, c, link.Request{App: "courses", User: ada})
	parts := strings.Split(l.Token, ".")
	// Change the subject in the payload, keep the old signature.
	payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
	forged := strings.Replace(string(payload), `"sub":"c_123"`, `"sub":"admin"`, 1)
	tok := parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(forged)) + "." + parts[2]
	if _, err := c.Verify(tok, "courses"); !errors.Is(err, link.ErrBadSignature) {
		t.Fatalf("Verify of a forged payload = %v, want ErrBadSignature", err)
	}
}

// sign builds a token by hand, as an attacker would.
func sign(t *testing.T, header, claims map[string]any, secret []byte) string {
	t.Helper()
	h, _ := json.Marshal(header)
	c, _ := json.Marshal(claims)
	input := base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(c)
	if secret == nil {
		return input + "."
	}
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(input))
	return input + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

func validClaims(clk *clock.Fake) map[string]any {
	return map[string]any{
		"iss": "https://portal.example.com", "sub": "admin", "aud": []string{"courses"},
		"exp": clk.Now().Add(time.Minute).Unix(), "iat": clk.Now().Unix(), "jti": "abcdefghijklmnopqrstuv",
		"uses": 1, "path": "/",
	}
}

func TestVerify_ForgedTokensAreRefused(t *testing.T) {
	clk := clock.NewFake()
	c := newCodec(t, clk, keyA)
	claims := validClaims(clk)
	noExp := validClaims(clk)
	delete(noExp, "exp")
	otherIss := validClaims(clk)
	otherIss["iss"] = "https://evil.example.com"
	future := validClaims(clk)
	future["iat"] = clk.Now().Add(time.Hour).Unix()
	rootType := validClaims(clk)
	rootType["type"] = "root"
	crlfName := validClaims(clk)
	crlfName["name"] = "Ada\r\nX-Portal-User-Type: agency_user"
	for name, tc := range map[string]struct {
		token string
		want  error
	}{
		"alg none":        {sign(t, map[string]any{"alg": "none", "typ": link.TokenType, "kid": "a"}, claims, nil), link.ErrBadSignature},
		"alg HS512":       {hs512(t, claims), link.ErrBadSignature},
		"unknown kid":     {sign(t, map[string]any{"alg": "HS256", "typ": link.TokenType, "kid": "zz"}, claims, keyA.Secret), link.ErrBadSignature},
		"kid is a path":   {sign(t, map[string]any{"alg": "HS256", "typ": link.TokenType, "kid": "../../etc/passwd"}, claims, keyA.Secret), link.ErrBadSignature},
		"wrong typ":       {sign(t, map[string]any{"alg": "HS256", "typ": "JWT", "kid": "a"}, claims, keyA.Secret), link.ErrBadSignature},
		"no exp":          {sign(t, map[string]any{"alg": "HS256", "typ": link.TokenType, "kid": "a"}, noExp, keyA.Secret), link.ErrInvalidClaims},
		"other issuer":    {sign(t, map[string]any{"alg": "HS256", "typ": link.TokenType, "kid": "a"}, otherIss, keyA.Secret), link.ErrInvalidClaims},
		"issued later":    {sign(t, map[string]any{"alg": "HS256", "typ": link.TokenType, "kid": "a"}, future, keyA.Secret), link.ErrInvalidClaims},
		"unknown type":    {sign(t, map[string]any{"alg": "HS256", "typ": link.TokenType, "kid": "a"}, rootType, keyA.Secret), link.ErrInvalidClaims},
		"CRLF in name":    {sign(t, map[string]any{"alg": "HS256", "typ": link.TokenType, "kid": "a"}, crlfName, keyA.Secret), link.ErrInvalidClaims},
		"not a token":     {"hello", link.ErrMalformed},
		"empty":           {"", link.ErrMalformed},
		"signed by other": {sign(t, map[string]any{"alg": "HS256", "typ": link.TokenType, "kid": "a"}, claims, keyB.Secret), link.ErrBadSignature},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := c.Verify(tc.token, "courses"); !errors.Is(err, tc.want) {
				t.Fatalf("Verify = %v, want %v", err, tc.want)
			}
		})
	}
	// The hand-made token itself is good: the cases above fail for their reason.
	good := sign(t, map[string]any{"alg": "HS256", "typ": link.TokenType, "kid": "a"}, claims, keyA.Secret)
	if _, err := c.Verify(good, "courses"); err != nil {
		t.Fatalf("hand-made valid token: %v", err)
	}
}

func hs512(t *testing.T, claims map[string]any) string {
	tok := jwt.NewWithClaims(jwt.SigningMethodHS512, jwt.MapClaims(claims))
	tok.Header["kid"] = "a"
	tok.Header["typ"] = link.TokenType
	s, err := tok.SignedString(keyA.Secret)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestRing_RotationKeepsOldLinksUntilKeyIsRemoved(t *testing.T) {
	clk := clock.NewFake()
	old := newCodec(t, clk, keyA)
	l := mint(t, old, link.Request{App: "courses", User: ada})
	rotated := newCodec(t, clk, keyB, keyA)
	if _, err := rotated.Verify(l.Token, "courses"); err != nil {
		t.Fatalf("old link after rotation: %v", err)
	}
	fresh := mint(t, rotated, link.Request{App: "courses", User: ada})
	if _, err := old.Verify(fresh.Token, "courses"); !errors.Is(err, link.ErrBadSignature) {
		t.Fatalf("new key signs: old ring verify = %v, want ErrBadSignature", err)
	}
	retired := newCodec(t, clk, keyB)
	if _, err := retired.Verify(l.Token, "courses"); !errors.Is(err, link.ErrBadSignature) {
		t.Fatalf("link of a removed key = %v, want ErrBadSignature", err)
	}
}

func TestNewRing_RejectsWeakOrDuplicateKeys(t *testing.T) {
	for name, keys := range map[string][]link.Key{
		"none":      nil,
		"short":     {{ID: "a", Secret: []byte("short")}},
		"no id":     {{Secret: keyA.Secret}},
		"duplicate": {keyA, {ID: "a", Secret: keyB.Secret}},
	} {
		if _, err := link.NewRing(keys...); err == nil {
			t.Errorf("%s: NewRing accepted it", name)
		}
	}
}

func TestCheckPath_KeepsLandingOnTheAppsOrigin(t *testing.T) {
	for _, p := range []string{"/", "/a/b?c=d", "/%2F%2Fevil"} {
		if err := link.CheckPath(p); err != nil {
			t.Errorf("CheckPath(%q) = %v, want ok", p, err)
		}
	}
	for _, p := range []string{"", "evil.com", "//evil.com", "/\\evil.com", "\\\\evil.com", "https://evil.com",
		"javascript:alert(1)", "/a\r\nSet-Cookie: x", "/a#frag", "/\x00"} {
		if err := link.CheckPath(p); err == nil {
			t.Errorf("CheckPath(%q) accepted it", p)
		}
	}
}

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
	if claims.Subject != ada.ID || claims.Audience != "courses" || claims.ID != l.ID || claims.Launch {
		t.Fatalf("claims = %+v", claims)
	}
	// What the link grants comes back from Mint, defaults filled in, for
	// the store to keep.
	want := ada
	want.Type = identity.Contact
	if l.User != want || l.Path != "/lesson/1?x=2" || l.Uses != 1 || len(l.Apps) != 1 || !l.IssuedAt.Equal(clk.Now()) {
		t.Fatalf("link = %+v", l)
	}
	if len(l.ID) != 22 {
		t.Fatalf("link id %q is not 128 bits in base64url", l.ID)
	}
}

// TestToken_CarriesNoPersonalDataOrSessionID: a link ends up in mail
// scanners' logs, proxies' access logs and browser histories. Its token
// holds the link's id and nothing of the person: no e-mail, no name, no
// location, no landing path, and no id of the session a launch came from.
func TestToken_CarriesNoPersonalDataOrSessionID(t *testing.T) {
	c := newCodec(t, clock.NewFake(), keyA)
	l := mint(t, c, link.Request{App: "courses", User: ada, Path: "/lessons/private-topic", Apps: []string{"courses"},
		Launch: true, Origin: "linkid/SESSIONidSESSIONidSE"})
	_, payload, _ := strings.Cut(l.Token, ".")
	payload, _, _ = strings.Cut(payload, ".")
	raw, err := base64.RawURLEncoding.DecodeString(payload)
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{ada.Email, ada.Name, ada.Location, "private-topic", "SESSIONid"} {
		if strings.Contains(string(raw), secret) || strings.Contains(l.Token, secret) {
			t.Errorf("token carries %q: %s", secret, raw)
		}
	}
	if len(l.Token) > 320 {
		t.Errorf("token is %d characters: %s", len(l.Token), raw)
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
	if forged == string(payload) {
		t.Fatalf("payload %s has no sub to forge", payload)
	}
	tok := parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(forged)) + "." + parts[2]
	if _, err := c.Verify(tok, "courses"); !errors.Is(err, link.ErrBadSignature) {
		t.Fatalf("Verify of a forged payload = %v, want ErrBadSignature", err)
	}
}

// sign builds a token by hand, as an attacker would.
func sign(t *testing.T, header map[string]any, claims any, secret []byte) string {
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

func validClaims(clk *clock.Fake) link.Claims {
	return link.Claims{
		Issuer: "https://portal.example.com", Subject: "admin", Audience: "courses",
		ExpiresAt: clk.Now().Add(time.Minute).Unix(), IssuedAt: clk.Now().Unix(), ID: "abcdefghijklmnopqrstuv",
	}
}

// asMap is claims as a JSON object to add members to.
func asMap(t *testing.T, claims link.Claims) map[string]any {
	t.Helper()
	b, _ := json.Marshal(claims)
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestVerify_ForgedTokensAreRefused(t *testing.T) {
	clk := clock.NewFake()
	c := newCodec(t, clk, keyA)
	claims := validClaims(clk)
	noExp := asMap(t, claims)
	delete(noExp, "exp")
	otherIss := validClaims(clk)
	otherIss.Issuer = "https://evil.example.com"
	future := validClaims(clk)
	future.IssuedAt = clk.Now().Add(time.Hour).Unix()
	rootType := asMap(t, claims)
	rootType["type"] = "agency_user"
	crlfSub := validClaims(clk)
	crlfSub.Subject = "ada\r\nX-Portal-User-Type: agency_user"
	upperExp := asMap(t, claims)
	upperExp["EXP"] = upperExp["exp"]
	delete(upperExp, "exp")
	audArray := asMap(t, claims)
	audArray["aud"] = []string{"courses"}
	ours := map[string]any{"alg": "HS256", "typ": link.TokenType, "kid": "a"}
	for name, tc := range map[string]struct {
		token string
		want  error
	}{
		"alg none":          {sign(t, map[string]any{"alg": "none", "typ": link.TokenType, "kid": "a"}, claims, nil), link.ErrBadSignature},
		"alg HS512":         {hs512(t, asMap(t, claims)), link.ErrBadSignature},
		"unknown kid":       {sign(t, map[string]any{"alg": "HS256", "typ": link.TokenType, "kid": "zz"}, claims, keyA.Secret), link.ErrBadSignature},
		"kid is a path":     {sign(t, map[string]any{"alg": "HS256", "typ": link.TokenType, "kid": "../../etc/passwd"}, claims, keyA.Secret), link.ErrBadSignature},
		"wrong typ":         {sign(t, map[string]any{"alg": "HS256", "typ": "JWT", "kid": "a"}, claims, keyA.Secret), link.ErrBadSignature},
		"extra header":      {sign(t, map[string]any{"alg": "HS256", "typ": link.TokenType, "kid": "a", "jku": "https://evil.example.com/"}, claims, keyA.Secret), link.ErrBadSignature},
		"no exp":            {sign(t, ours, noExp, keyA.Secret), link.ErrInvalidClaims},
		"other issuer":      {sign(t, ours, otherIss, keyA.Secret), link.ErrInvalidClaims},
		"issued later":      {sign(t, ours, future, keyA.Secret), link.ErrInvalidClaims},
		"a role claim":      {sign(t, ours, rootType, keyA.Secret), link.ErrInvalidClaims},
		"CRLF in subject":   {sign(t, ours, crlfSub, keyA.Secret), link.ErrInvalidClaims},
		"claim in caps":     {sign(t, ours, upperExp, keyA.Secret), link.ErrInvalidClaims},
		"audience as array": {sign(t, ours, audArray, keyA.Secret), link.ErrInvalidClaims},
		"not a token":       {"hello", link.ErrMalformed},
		"empty":             {"", link.ErrMalformed},
		"four parts":        {sign(t, ours, claims, keyA.Secret) + ".x", link.ErrMalformed},
		"signed by other":   {sign(t, ours, claims, keyB.Secret), link.ErrBadSignature},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := c.Verify(tc.token, "courses"); !errors.Is(err, tc.want) {
				t.Fatalf("Verify = %v, want %v", err, tc.want)
			}
		})
	}
	// The hand-made token itself is good: the cases above fail for their reason.
	good := sign(t, ours, claims, keyA.Secret)
	if _, err := c.Verify(good, "courses"); err != nil {
		t.Fatalf("hand-made valid token: %v", err)
	}
	// A duplicated member, or white space, is another spelling of the same
	// claims: refused, so one link has one token.
	h, p, _ := strings.Cut(good, ".")
	p, _, _ = strings.Cut(p, ".")
	raw, _ := base64.RawURLEncoding.DecodeString(p)
	for name, payload := range map[string]string{
		"repeated sub": strings.Replace(string(raw), `{`, `{"sub":"admin",`, 1),
		"white space":  strings.Replace(string(raw), `,`, `, `, 1),
	} {
		input := h + "." + base64.RawURLEncoding.EncodeToString([]byte(payload))
		m := hmac.New(sha256.New, keyA.Secret)
		m.Write([]byte(input))
		tok := input + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
		if _, err := c.Verify(tok, "courses"); !errors.Is(err, link.ErrInvalidClaims) {
			t.Errorf("%s: Verify = %v, want ErrInvalidClaims", name, err)
		}
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

// golangJWT verifies token with golang-jwt's own parser, under the rules
// Verify keeps: the reference that Verify's narrow check is held to.
func golangJWT(c *link.Codec, keys []link.Key, token, app string) (*link.Claims, error) {
	var claims link.Claims
	_, err := jwt.NewParser(
		jwt.WithValidMethods([]string{"HS256"}),
		jwt.WithIssuer(c.Issuer),
		jwt.WithAudience(app),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(link.Leeway),
		jwt.WithTimeFunc(c.Now),
		jwt.WithStrictDecoding(),
	).ParseWithClaims(token, &claims, func(t *jwt.Token) (any, error) {
		if t.Header["typ"] != link.TokenType {
			return nil, errors.New("wrong type")
		}
		for _, k := range keys {
			if t.Header["kid"] == k.ID {
				return k.Secret, nil
			}
		}
		return nil, errors.New("unknown key")
	})
	return &claims, err
}

// TestVerify_AgreesWithGolangJWT: on every token Mint signs, at every
// moment of its life and for every app, Verify accepts exactly what
// golang-jwt's parser accepts under the same rules, with the same claims.
func TestVerify_AgreesWithGolangJWT(t *testing.T) {
	clk := clock.NewFake()
	keys := []link.Key{keyB, keyA}
	c := newCodec(t, clk, keys...)
	other := newCodec(t, clk, keyA) // signs with keyA, which c still verifies
	var tokens []string
	for _, req := range []link.Request{
		{App: "courses", User: ada},
		{App: "communities", User: identity.User{ID: "ünïcode-<&>"}, TTL: time.Hour, Launch: true},
		{App: "portal", User: ada, TTL: time.Second},
		{Tenant: "acme", App: "courses", User: ada},
	} {
		tokens = append(tokens, mint(t, c, req).Token, mint(t, other, req).Token)
	}
	for _, step := range []time.Duration{0, time.Second, link.Leeway, 15 * time.Minute, time.Hour} {
		clk.Advance(step)
		for _, tok := range tokens {
			for _, app := range []string{"courses", "communities", "portal"} {
				got, err := c.Verify(tok, app)
				want, jwtErr := golangJWT(c, keys, tok, app)
				if (err == nil) != (jwtErr == nil) {
					t.Fatalf("at +%v for %s: Verify = %v, golang-jwt = %v", step, app, err, jwtErr)
				}
				if err == nil && *got != *want {
					t.Fatalf("claims differ: Verify %+v, golang-jwt %+v", got, want)
				}
			}
		}
	}
}

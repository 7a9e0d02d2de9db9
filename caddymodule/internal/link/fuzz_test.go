package link_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"strings"
	"testing"

	"github.com/portalgate/portalgate/caddymodule/internal/link"
	"github.com/portalgate/portalgate/caddymodule/internal/testkit/clock"
)

// FuzzVerify feeds the token parser arbitrary input: it must never panic,
// never accept a token it did not sign, and never accept one that
// golang-jwt's parser refuses under the same rules.
func FuzzVerify(f *testing.F) {
	clk := clock.NewFake()
	ring, _ := link.NewRing(keyA)
	c := &link.Codec{Ring: ring, Issuer: "https://portal.example.com", DefaultTTL: 15 * 60e9, MaxTTL: 24 * 3600e9, Now: clk.Now}
	good, err := c.Mint(link.Request{App: "courses", User: ada})
	if err != nil {
		f.Fatal(err)
	}
	tenant, err := c.Mint(link.Request{Tenant: "acme", App: "courses", User: ada})
	if err != nil {
		f.Fatal(err)
	}
	for _, seed := range []string{
		good.Token, tenant.Token, "", ".", "..", "a.b.c", "eyJhbGciOiJub25lIn0.e30.",
		good.Token[:len(good.Token)-1], good.Token + "AAAA", strings.Replace(good.Token, ".", "..", 1),
		"eyJhbGciOiJIUzI1NiIsImtpZCI6ImEiLCJ0eXAiOiJwb3J0YWxnYXRlLWxpbmsrand0In0.e30.AAAA",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, token string) {
		claims, err := c.Verify(token, "courses")
		if err != nil {
			return
		}
		// Accepted: then it must carry keyA's HMAC over exactly its text.
		parts := strings.Split(token, ".")
		mac := hmac.New(sha256.New, keyA.Secret)
		mac.Write([]byte(parts[0] + "." + parts[1]))
		if len(parts) != 3 || parts[2] != base64.RawURLEncoding.EncodeToString(mac.Sum(nil)) {
			t.Fatalf("accepted a token it did not sign: %q → %+v", token, claims)
		}
		want, err := golangJWT(c, []link.Key{keyA}, token, "courses")
		if err != nil || *want != *claims {
			t.Fatalf("accepted %q → %+v; golang-jwt says %v, %+v", token, claims, err, want)
		}
	})
}

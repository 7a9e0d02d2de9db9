package link_test

import (
	"testing"

	"github.com/portalgate/portalgate/caddymodule/internal/link"
	"github.com/portalgate/portalgate/caddymodule/internal/testkit/clock"
)

// BenchmarkVerify is the token check of every redemption: split and decode
// the JWT, check its HMAC under the key its kid names, decode the claims and
// check issuer, audience and expiry.
func BenchmarkVerify(b *testing.B) {
	c := newCodec(b, clock.NewFake(), keyA)
	l, err := c.Mint(link.Request{App: "courses", User: ada, Path: "/lesson/1", Apps: []string{"courses", "communities"}})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Verify(l.Token, "courses"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkMint is signing one link, as the link API and Generate do.
func BenchmarkMint(b *testing.B) {
	c := newCodec(b, clock.NewFake(), keyA)
	req := link.Request{App: "courses", User: ada, Path: "/lesson/1", Apps: []string{"courses", "communities"}}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Mint(req); err != nil {
			b.Fatal(err)
		}
	}
}

package session_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/portalgate/portalgate/caddymodule/internal/identity"
	"github.com/portalgate/portalgate/caddymodule/internal/session"
	"github.com/portalgate/portalgate/caddymodule/internal/store/memory"
	"github.com/portalgate/portalgate/caddymodule/internal/testkit/clock"
)

// BenchmarkL1_BytesPerSession measures what one cached session costs in L1,
// as ristretto accounts it, for a typical contact of a child app.
func BenchmarkL1_BytesPerSession(b *testing.B) {
	clk := clock.NewFake()
	m, err := session.NewManager(memory.New(clk.Now), session.Config{TTL: 12 * time.Hour, Idle: 2 * time.Hour, CacheMaxBytes: 1 << 30, Now: clk.Now,
		// As the gateway has it: a resolver of the user's placeholders per entry.
		Placeholders: func(u *identity.User) func(string) (any, bool) {
			return func(key string) (any, bool) { return u.ID, key == "http.auth.user.id" }
		}})
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	const n = 10_000
	for i := range n {
		u := identity.User{ID: fmt.Sprintf("c_%06d", i), Email: fmt.Sprintf("contact%06d@example.com", i), Name: "Ada Lovelace", Type: identity.Contact}
		if _, err := m.Create(context.Background(), u, "", "courses", nil, "AAAAAAAAAAAAAAAAAAAAAA"); err != nil {
			b.Fatal(err)
		}
	}
	m.Wait()
	for b.Loop() {
	}
	b.ReportMetric(float64(m.L1Bytes())/n, "L1-bytes/session")
}

package bolt_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/portalgate/portalgate/caddymodule/internal/clock"
	"github.com/portalgate/portalgate/caddymodule/internal/identity"
	"github.com/portalgate/portalgate/caddymodule/internal/store"
	"github.com/portalgate/portalgate/caddymodule/internal/store/bolt"
	"github.com/portalgate/portalgate/caddymodule/internal/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T, now func() time.Time) store.Store {
		s, err := bolt.Open(filepath.Join(t.TempDir(), "sub", "portalgate.db"), now)
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

func TestStateSurvivesReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "portalgate.db")
	clk := clock.NewFake()
	ctx := context.Background()
	s, err := bolt.Open(path, clk.Now)
	if err != nil {
		t.Fatal(err)
	}
	sess := &store.Session{ID: "s1", User: identity.User{ID: "u1"}, App: "courses",
		CreatedAt: clk.Now(), ExpiresAt: clk.Now().Add(time.Hour), IdleAt: clk.Now().Add(time.Hour)}
	l := store.LinkUse{ID: "l1", UserID: "u1", Uses: 1, IssuedAt: clk.Now(), Expires: clk.Now().Add(time.Hour)}
	if err := s.Redeem(ctx, l, sess); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s, err = bolt.Open(path, clk.Now)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.GetSession(ctx, "s1"); err != nil {
		t.Fatalf("session lost on reopen: %v", err)
	}
	if err := s.Redeem(ctx, l, sess); err != store.ErrLinkUsed {
		t.Fatalf("consumed link forgotten on reopen: %v", err)
	}
}

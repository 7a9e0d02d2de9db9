package bolt_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/portalgate/portalgate/caddymodule/internal/identity"
	"github.com/portalgate/portalgate/caddymodule/internal/store"
	"github.com/portalgate/portalgate/caddymodule/internal/store/bolt"
	"github.com/portalgate/portalgate/caddymodule/internal/store/storetest"
	"github.com/portalgate/portalgate/caddymodule/internal/testkit/clock"
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

// reopen closes s (when there is one) and opens the file at path again, as a
// restart does.
func reopen(t *testing.T, s *bolt.Store, path string, clk *clock.Fake) *bolt.Store {
	t.Helper()
	if s != nil {
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
	s, err := bolt.Open(path, clk.Now)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestStateSurvivesReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "portalgate.db")
	clk := clock.NewFake()
	ctx := context.Background()
	s := reopen(t, nil, path, clk)
	sess := &store.Session{ID: "s1", User: identity.User{ID: "u1"}, App: "courses",
		CreatedAt: clk.Now(), ExpiresAt: clk.Now().Add(time.Hour), IdleAt: clk.Now().Add(time.Hour)}
	l := store.LinkUse{ID: "l1", UserID: "u1", Uses: 1, IssuedAt: clk.Now(), Expires: clk.Now().Add(time.Hour)}
	if err := s.Redeem(ctx, l, sess); err != nil {
		t.Fatal(err)
	}
	s = reopen(t, s, path, clk)
	defer s.Close()
	if _, err := s.GetSession(ctx, "s1"); err != nil {
		t.Fatalf("session lost on reopen: %v", err)
	}
	if err := s.Redeem(ctx, l, sess); err != store.ErrLinkUsed {
		t.Fatalf("consumed link forgotten on reopen: %v", err)
	}
}

func TestDirectorySurvivesReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "portalgate.db")
	clk := clock.NewFake()
	ctx := context.Background()
	s := reopen(t, nil, path, clk)
	contact := store.Contact{ID: "c1", Email: "ada@example.com", Name: "Ada Lovelace"}
	if err := s.PutContacts(ctx, []store.Contact{contact}); err != nil {
		t.Fatal(err)
	}
	rec := store.LinkRecord{ID: "l1", App: "courses", User: identity.User{ID: "u1"}, Uses: 2,
		IssuedAt: clk.Now(), ExpiresAt: clk.Now().Add(time.Hour), Keep: clk.Now().Add(24 * time.Hour)}
	if err := s.RecordLink(ctx, rec); err != nil {
		t.Fatal(err)
	}
	sess := &store.Session{ID: "s1", User: identity.User{ID: "u1"}, App: "courses",
		CreatedAt: clk.Now(), ExpiresAt: clk.Now().Add(time.Hour), IdleAt: clk.Now().Add(time.Hour)}
	l := store.LinkUse{ID: "l1", UserID: "u1", Uses: 2, IssuedAt: clk.Now(), Expires: clk.Now().Add(time.Hour)}
	if err := s.Redeem(ctx, l, sess); err != nil {
		t.Fatal(err)
	}
	items := []store.MenuItem{{ID: "m1", Title: "Help", URL: "https://example.com/help", Open: "new_tab", Roles: []identity.Type{identity.Contact}}}
	if _, err := s.SetMenu(ctx, items, 0); err != nil {
		t.Fatal(err)
	}
	s = reopen(t, s, path, clk)
	defer s.Close()
	if cs, err := s.SearchContacts(ctx, store.ContactQuery{}); err != nil || !reflect.DeepEqual(cs, []store.Contact{contact}) {
		t.Fatalf("contacts after reopen = %+v, %v", cs, err)
	}
	rs, err := s.Links(ctx, store.LinkQuery{})
	if err != nil || len(rs) != 1 || rs[0].ID != "l1" || rs[0].Spent != 1 || !rs[0].Keep.Equal(rec.Keep) {
		t.Fatalf("link records after reopen = %+v, %v", rs, err)
	}
	m, err := s.Menu(ctx)
	if err != nil || m.Version != 1 || !reflect.DeepEqual(m.Items, items) {
		t.Fatalf("menu after reopen = %+v, %v", m, err)
	}
	if _, err := s.SetMenu(ctx, nil, 0); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("SetMenu at the version before reopen = %v, want ErrConflict", err)
	}
}

// A bolt file emptied under the gateway (truncated to nothing, or a new
// path) knows no spent link: the links issued before it began are refused.
func TestOpen_EmptiedFileDoesNotReviveSpentLinks(t *testing.T) {
	path := filepath.Join(t.TempDir(), "portalgate.db")
	clk := clock.NewFake()
	ctx := context.Background()
	s := reopen(t, nil, path, clk)
	sess := func(id string) *store.Session {
		return &store.Session{ID: id, User: identity.User{ID: "u1"}, App: "courses",
			CreatedAt: clk.Now(), ExpiresAt: clk.Now().Add(time.Hour), IdleAt: clk.Now().Add(time.Hour)}
	}
	l := store.LinkUse{ID: "l1", UserID: "u1", Uses: 1, IssuedAt: clk.Now(), Expires: clk.Now().Add(time.Hour)}
	if err := s.Redeem(ctx, l, sess("s1")); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path, 0); err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Second)
	s = reopen(t, nil, path, clk)
	defer s.Close()
	if err := s.Redeem(ctx, l, sess("s2")); !errors.Is(err, store.ErrLinkBeforeStore) {
		t.Fatalf("the spent link in the emptied file = %v, want ErrLinkBeforeStore", err)
	}
	s = reopen(t, s, path, clk)
	if err := s.Redeem(ctx, l, sess("s3")); !errors.Is(err, store.ErrLinkBeforeStore) {
		t.Fatalf("the file forgot when it began on reopen: %v", err)
	}
	clk.Advance(time.Millisecond)
	l2 := store.LinkUse{ID: "l2", UserID: "u1", Uses: 1, IssuedAt: clk.Now(), Expires: clk.Now().Add(time.Hour)}
	if err := s.Redeem(ctx, l2, sess("s4")); err != nil {
		t.Fatalf("a link issued after the file began: %v", err)
	}
}

// Package storetest is the conformance suite every store.Store must pass.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portalgate/portalgate/caddymodule/internal/clock"
	"github.com/portalgate/portalgate/caddymodule/internal/identity"
	"github.com/portalgate/portalgate/caddymodule/internal/store"
)

// Factory opens a fresh, empty store that reads time from now. The suite
// closes it.
type Factory func(t *testing.T, now func() time.Time) store.Store

// Run runs the conformance suite against stores made by open.
func Run(t *testing.T, open Factory) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.Store, clk *clock.Fake)
	}{
		{"SessionRoundTrip", testSessionRoundTrip},
		{"MissingSessionIsNotFound", testMissingSession},
		{"SessionEndsAtAbsoluteExpiry", testAbsoluteExpiry},
		{"SessionEndsWhenIdle", testIdleExpiry},
		{"TouchExtendsIdleDeadline", testTouch},
		{"DeleteSession", testDeleteSession},
		{"DeleteUserSessionsRemovesOnlyThatUser", testDeleteUserSessions},
		{"OneTimeLinkIsConsumedOnce", testConsumeOnce},
		{"MultiUseLinkCountsUses", testConsumeMulti},
		{"LinkRecordOutlivesNothing", testLinkRecordExpiry},
		{"ConcurrentConsumptionHasOneWinner", testConcurrentConsume},
		{"RedeemSpendsLinkAndCreatesSession", testRedeem},
		{"ConcurrentRedeemCreatesOneSession", testConcurrentRedeem},
		{"PurgeRemovesOnlyExpired", testPurge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := clock.NewFake()
			s := open(t, clk.Now)
			t.Cleanup(func() {
				if err := s.Close(); err != nil {
					t.Errorf("closing store: %v", err)
				}
			})
			tt.fn(t, s, clk)
		})
	}
}

func newSession(clk *clock.Fake, id, user string) *store.Session {
	now := clk.Now()
	return &store.Session{
		ID:        id,
		User:      identity.User{ID: user, Email: user + "@example.com", Name: "Ada Lovelace", Type: identity.Contact, Location: "loc_1"},
		App:       "courses",
		Apps:      []string{"courses", "communities"},
		LinkID:    "link-" + id,
		CreatedAt: now,
		ExpiresAt: now.Add(12 * time.Hour),
		IdleAt:    now.Add(2 * time.Hour),
	}
}

func mustCreate(t *testing.T, s store.Store, sess *store.Session) {
	t.Helper()
	if err := s.CreateSession(context.Background(), sess); err != nil {
		t.Fatalf("CreateSession: %v", err)
	}
}

func wantNotFound(t *testing.T, s store.Store, id string) {
	t.Helper()
	if got, err := s.GetSession(context.Background(), id); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("GetSession(%s) = %+v, %v; want ErrNotFound", id, got, err)
	}
}

func testSessionRoundTrip(t *testing.T, s store.Store, clk *clock.Fake) {
	want := newSession(clk, "s1", "u1")
	mustCreate(t, s, want)
	got, err := s.GetSession(context.Background(), "s1")
	if err != nil {
		t.Fatalf("GetSession: %v", err)
	}
	if !got.CreatedAt.Equal(want.CreatedAt) || !got.ExpiresAt.Equal(want.ExpiresAt) || !got.IdleAt.Equal(want.IdleAt) {
		t.Fatalf("times changed: got %+v, want %+v", got, want)
	}
	got.CreatedAt, got.ExpiresAt, got.IdleAt = want.CreatedAt, want.ExpiresAt, want.IdleAt
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("GetSession = %+v, want %+v", got, want)
	}
	got.Apps[0] = "changed"
	again, _ := s.GetSession(context.Background(), "s1")
	if again.Apps[0] != "courses" {
		t.Fatal("a returned session shares memory with the store")
	}
}

func testMissingSession(t *testing.T, s store.Store, _ *clock.Fake) {
	wantNotFound(t, s, "nope")
	if err := s.TouchSession(context.Background(), "nope", time.Now()); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("TouchSession of a missing session = %v, want ErrNotFound", err)
	}
	if err := s.DeleteSession(context.Background(), "nope"); err != nil {
		t.Fatalf("DeleteSession of a missing session = %v, want nil", err)
	}
}

func testAbsoluteExpiry(t *testing.T, s store.Store, clk *clock.Fake) {
	sess := newSession(clk, "s1", "u1")
	sess.IdleAt = sess.ExpiresAt.Add(time.Hour)
	mustCreate(t, s, sess)
	clk.Advance(12*time.Hour - time.Second)
	if _, err := s.GetSession(context.Background(), "s1"); err != nil {
		t.Fatalf("GetSession before expiry: %v", err)
	}
	clk.Advance(time.Second)
	wantNotFound(t, s, "s1")
}

func testIdleExpiry(t *testing.T, s store.Store, clk *clock.Fake) {
	mustCreate(t, s, newSession(clk, "s1", "u1"))
	clk.Advance(2 * time.Hour)
	wantNotFound(t, s, "s1")
}

func testTouch(t *testing.T, s store.Store, clk *clock.Fake) {
	mustCreate(t, s, newSession(clk, "s1", "u1"))
	clk.Advance(90 * time.Minute)
	if err := s.TouchSession(context.Background(), "s1", clk.Now().Add(2*time.Hour)); err != nil {
		t.Fatalf("TouchSession: %v", err)
	}
	clk.Advance(90 * time.Minute)
	got, err := s.GetSession(context.Background(), "s1")
	if err != nil {
		t.Fatalf("GetSession after touch: %v", err)
	}
	if !got.IdleAt.Equal(clk.Now().Add(30 * time.Minute)) {
		t.Fatalf("IdleAt = %v, want %v", got.IdleAt, clk.Now().Add(30*time.Minute))
	}
	clk.Advance(30 * time.Minute)
	wantNotFound(t, s, "s1")
	if n, err := s.Purge(context.Background()); err != nil || n != 1 {
		t.Fatalf("Purge after idle expiry = %d, %v; want 1", n, err)
	}
}

func testDeleteSession(t *testing.T, s store.Store, clk *clock.Fake) {
	mustCreate(t, s, newSession(clk, "s1", "u1"))
	mustCreate(t, s, newSession(clk, "s2", "u1"))
	if err := s.DeleteSession(context.Background(), "s1"); err != nil {
		t.Fatalf("DeleteSession: %v", err)
	}
	wantNotFound(t, s, "s1")
	ids, err := s.DeleteUserSessions(context.Background(), "u1")
	if err != nil || !reflect.DeepEqual(ids, []string{"s2"}) {
		t.Fatalf("DeleteUserSessions after one delete = %v, %v; want [s2]", ids, err)
	}
}

func testDeleteUserSessions(t *testing.T, s store.Store, clk *clock.Fake) {
	for i, u := range []string{"u1", "u1", "u1", "u10", "u2"} {
		mustCreate(t, s, newSession(clk, fmt.Sprintf("s%d", i), u))
	}
	ids, err := s.DeleteUserSessions(context.Background(), "u1")
	if err != nil {
		t.Fatalf("DeleteUserSessions: %v", err)
	}
	sort.Strings(ids)
	if !reflect.DeepEqual(ids, []string{"s0", "s1", "s2"}) {
		t.Fatalf("DeleteUserSessions = %v, want [s0 s1 s2]", ids)
	}
	for _, id := range ids {
		wantNotFound(t, s, id)
	}
	for _, id := range []string{"s3", "s4"} {
		if _, err := s.GetSession(context.Background(), id); err != nil {
			t.Fatalf("session %s of another user is gone: %v", id, err)
		}
	}
	if ids, err := s.DeleteUserSessions(context.Background(), "nobody"); err != nil || len(ids) != 0 {
		t.Fatalf("DeleteUserSessions(nobody) = %v, %v", ids, err)
	}
}

func testConsumeOnce(t *testing.T, s store.Store, clk *clock.Fake) {
	exp := clk.Now().Add(15 * time.Minute)
	if err := s.ConsumeLink(context.Background(), "l1", 1, exp); err != nil {
		t.Fatalf("first ConsumeLink: %v", err)
	}
	if err := s.ConsumeLink(context.Background(), "l1", 1, exp); !errors.Is(err, store.ErrLinkUsed) {
		t.Fatalf("second ConsumeLink = %v, want ErrLinkUsed", err)
	}
	if err := s.ConsumeLink(context.Background(), "l2", 1, exp); err != nil {
		t.Fatalf("ConsumeLink of another link: %v", err)
	}
}

func testConsumeMulti(t *testing.T, s store.Store, clk *clock.Fake) {
	exp := clk.Now().Add(15 * time.Minute)
	for i := range 3 {
		if err := s.ConsumeLink(context.Background(), "l1", 3, exp); err != nil {
			t.Fatalf("use %d: %v", i+1, err)
		}
	}
	if err := s.ConsumeLink(context.Background(), "l1", 3, exp); !errors.Is(err, store.ErrLinkUsed) {
		t.Fatalf("fourth use = %v, want ErrLinkUsed", err)
	}
}

// testLinkRecordExpiry: a used link's record is kept until the link itself
// expires, so it can never be replayed while its token is still valid.
func testLinkRecordExpiry(t *testing.T, s store.Store, clk *clock.Fake) {
	exp := clk.Now().Add(15 * time.Minute)
	if err := s.ConsumeLink(context.Background(), "l1", 1, exp); err != nil {
		t.Fatal(err)
	}
	clk.Advance(15*time.Minute - time.Second)
	if _, err := s.Purge(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := s.ConsumeLink(context.Background(), "l1", 1, exp); !errors.Is(err, store.ErrLinkUsed) {
		t.Fatalf("replay before the link expired = %v, want ErrLinkUsed", err)
	}
	clk.Advance(time.Minute)
	if n, err := s.Purge(context.Background()); err != nil || n != 1 {
		t.Fatalf("Purge after expiry = %d, %v; want 1", n, err)
	}
}

func testConcurrentConsume(t *testing.T, s store.Store, clk *clock.Fake) {
	const workers = 50
	exp := clk.Now().Add(15 * time.Minute)
	var wins, used atomic.Int32
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			switch err := s.ConsumeLink(context.Background(), "race", 2, exp); {
			case err == nil:
				wins.Add(1)
			case errors.Is(err, store.ErrLinkUsed):
				used.Add(1)
			default:
				t.Errorf("ConsumeLink: %v", err)
			}
		})
	}
	wg.Wait()
	if wins.Load() != 2 || used.Load() != workers-2 {
		t.Fatalf("%d wins and %d used of %d for a 2-use link; want 2 wins", wins.Load(), used.Load(), workers)
	}
}

func testPurge(t *testing.T, s store.Store, clk *clock.Fake) {
	short := newSession(clk, "short", "u1")
	short.IdleAt = clk.Now().Add(time.Minute)
	mustCreate(t, s, short)
	mustCreate(t, s, newSession(clk, "long", "u1"))
	if err := s.ConsumeLink(context.Background(), "l1", 1, clk.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if n, err := s.Purge(context.Background()); err != nil || n != 0 {
		t.Fatalf("Purge with nothing expired = %d, %v", n, err)
	}
	clk.Advance(2 * time.Minute)
	if n, err := s.Purge(context.Background()); err != nil || n != 2 {
		t.Fatalf("Purge = %d, %v; want 2 (one session, one link)", n, err)
	}
	if _, err := s.GetSession(context.Background(), "long"); err != nil {
		t.Fatalf("live session purged: %v", err)
	}
	ids, err := s.DeleteUserSessions(context.Background(), "u1")
	if err != nil || !reflect.DeepEqual(ids, []string{"long"}) {
		t.Fatalf("user index after purge = %v, %v; want [long]", ids, err)
	}
}

func testRedeem(t *testing.T, s store.Store, clk *clock.Fake) {
	ctx := context.Background()
	exp := clk.Now().Add(15 * time.Minute)
	if err := s.Redeem(ctx, "l1", 1, exp, newSession(clk, "s1", "u1")); err != nil {
		t.Fatalf("Redeem: %v", err)
	}
	if _, err := s.GetSession(ctx, "s1"); err != nil {
		t.Fatalf("session of a redemption: %v", err)
	}
	if err := s.Redeem(ctx, "l1", 1, exp, newSession(clk, "s2", "u1")); !errors.Is(err, store.ErrLinkUsed) {
		t.Fatalf("second Redeem = %v, want ErrLinkUsed", err)
	}
	wantNotFound(t, s, "s2")
	if err := s.ConsumeLink(ctx, "l1", 1, exp); !errors.Is(err, store.ErrLinkUsed) {
		t.Fatalf("ConsumeLink after Redeem = %v, want ErrLinkUsed", err)
	}
}

func testConcurrentRedeem(t *testing.T, s store.Store, clk *clock.Fake) {
	const workers = 50
	exp := clk.Now().Add(15 * time.Minute)
	var wg sync.WaitGroup
	var wins atomic.Int32
	for i := range workers {
		wg.Go(func() {
			err := s.Redeem(context.Background(), "race", 1, exp, newSession(clk, fmt.Sprintf("s%d", i), "racer"))
			switch {
			case err == nil:
				wins.Add(1)
			case !errors.Is(err, store.ErrLinkUsed):
				t.Errorf("Redeem: %v", err)
			}
		})
	}
	wg.Wait()
	ids, err := s.DeleteUserSessions(context.Background(), "racer")
	if wins.Load() != 1 || err != nil || len(ids) != 1 {
		t.Fatalf("%d wins, %d sessions (%v) from %d concurrent redemptions of a one-time link; want 1 and 1", wins.Load(), len(ids), err, workers)
	}
}

// Package storetest is the conformance suite every store.Store must pass.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portalgate/portalgate/caddymodule/internal/identity"
	"github.com/portalgate/portalgate/caddymodule/internal/store"
	"github.com/portalgate/portalgate/caddymodule/internal/testkit/clock"
)

// Factory opens a fresh, empty store that reads time from now: a fake clock
// that starts at the real time (Redis keeps a clock of its own) and moves
// only when a test moves it. The suite closes it.
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
		{"UserSessionsListsOneUsersLiveSessions", testUserSessions},
		{"RevokeUserRemovesOnlyThatUser", testRevokeUserSessions},
		{"RevokeUserRefusesOlderLinksOnly", testRevokeUserLinks},
		{"RevokedLinkIsRefused", testRevokeLink},
		{"LinkStateIsReadByID", testLinkState},
		{"GrantIsWhatARedemptionStarts", testGrantStartsTheSession},
		{"OneTimeLinkIsRedeemedOnce", testRedeemOnce},
		{"MultiUseLinkCountsUses", testRedeemMulti},
		{"UsedLinkIsRememberedUntilItExpires", testLinkRecordExpiry},
		{"LinkReplayedAtItsEndIsRefused", testRedeemAtTheEnd},
		{"ConcurrentRedeemHasOneWinner", testConcurrentRedeem},
		{"ConcurrentRedeemOfMultiUseLink", testConcurrentRedeemMulti},
		{"PurgeRemovesOnlyExpired", testPurge},
		{"ContactsAreUpsertedAndListed", testContacts},
		{"ContactWithoutIDIsRefused", testContactWithoutID},
		{"ContactsAreSearchedAndFoundByEmail", testContactSearch},
		{"IDNamesOnePerson", testIDNamesOnePerson},
		{"ConcurrentClaimsOfOneIDHaveOneWinner", testConcurrentClaimsHaveOneWinner},
		{"LinkRecordsAreSelectedAndFoundByID", testLinkQueries},
		{"StoreAnswersPing", testPing},
		{"LinkRecordRoundTrip", testLinkRecordRoundTrip},
		{"LinkRecordsNewestFirstAndTrimmed", testLinkRecordsTrimmed},
		{"LinkRecordForgottenAfterKeep", testLinkRecordKeep},
		{"LinkRecordShowsSpentAndRevoked", testLinkRecordUses},
		{"LinkRecordShowsWhatBecameOfItsEmail", testLinkRecordDelivery},
		{"MenuIsVersioned", testMenu},
		{"ConcurrentSetMenuHasOneWinner", testConcurrentSetMenu},
		{"MenusOfTenantsAreTheirOwn", testMenusOfTenantsAreTheirOwn},
		{"TenantsAreKeptListedAndRemoved", testTenants},
		{"ConcurrentAddTenantHasOneWinner", testConcurrentAddTenantHasOneWinner},
		{"SameAddressInTwoTenantsIsTwoContacts", testSameAddressInTwoTenantsIsTwoContacts},
		{"SignInCodeTriesAreCountedAndEndAtTheLast", testSignInTries},
		{"NewSignInOfAnAddressReplacesItsLast", testSignInReplaced},
		{"SignInEndsWhenUsedOrWithItsLink", testSignInEnds},
		{"ConcurrentCodeTriesNeverPassTheLimit", testConcurrentSignInTries},
		{"WrongCodesAreCountedPerAddress", testCodeFailures},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := clock.NewFakeAt(time.Now())
			s := open(t, clk.Now)
			t.Cleanup(func() {
				if err := s.Close(); err != nil {
					t.Errorf("closing store: %v", err)
				}
			})
			tt.fn(t, s, clk)
		})
	}
	t.Run("EmptyStoreDoesNotReviveASpentLink", func(t *testing.T) { testEmptyStore(t, open) })
}

// testEmptyStore: a store that starts empty (new, emptied, or put in the
// place of another) holds no grant of the links minted before it, so it
// cannot know which were spent: it refuses them, and only them.
func testEmptyStore(t *testing.T, open Factory) {
	clk := clock.NewFakeAt(time.Now())
	first := open(t, clk.Now)
	t.Cleanup(func() { _ = first.Close() })
	l := granted(t, first, clk, "spent", "u1", 1)
	if err := redeem(first, clk, l); err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Second + 123*time.Nanosecond)
	empty := open(t, clk.Now)
	t.Cleanup(func() { _ = empty.Close() })
	if err := redeem(empty, clk, l); !errors.Is(err, store.ErrLinkBeforeStore) {
		t.Fatalf("a spent link in an empty store = %v, want ErrLinkBeforeStore", err)
	}
	if err := redeem(empty, clk, granted(t, empty, clk, "new", "u1", 1)); err != nil {
		t.Fatalf("a link granted by the new store: %v", err)
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
	wantPurged(t, s, 1, "after idle expiry")
}

// grantOf is the grant of a link for user to courses, living 15 minutes.
func grantOf(clk *clock.Fake, id, user string, uses int) store.Grant {
	return store.Grant{
		ID: id, App: "courses", Path: "/lesson/1", Uses: uses, Apps: []string{"courses", "communities"},
		User:     identity.User{ID: user, Email: user + "@example.com", Name: "Ada Lovelace", Type: identity.Contact, Location: "loc_1"},
		IssuedAt: clk.Now(), Expires: clk.Now().Add(15 * time.Minute),
	}
}

// putLink keeps g in s.
func putLink(t *testing.T, s store.Store, g store.Grant) store.Grant {
	t.Helper()
	if err := s.PutLink(context.Background(), g); err != nil {
		t.Fatalf("PutLink: %v", err)
	}
	return g
}

// granted keeps the grant of a link in s, as a mint does.
func granted(t *testing.T, s store.Store, clk *clock.Fake, id, user string, uses int) store.Grant {
	t.Helper()
	return putLink(t, s, grantOf(clk, id, user, uses))
}

// spendOf is how a token names the link of g.
func spendOf(g store.Grant) store.Spend {
	return store.Spend{ID: g.ID, UserID: g.User.ID, Expires: g.Expires}
}

var sessionSeq atomic.Int64

// redeem redeems link g with a fresh session and returns the error.
func redeem(s store.Store, clk *clock.Fake, g store.Grant) error {
	_, err := s.Redeem(context.Background(), spendOf(g), bareSession(clk, fmt.Sprintf("r%d", sessionSeq.Add(1))))
	return err
}

// bareSession is a session as a redemption asks the store to start it:
// without what it takes from the link's grant.
func bareSession(clk *clock.Fake, id string) *store.Session {
	now := clk.Now()
	return &store.Session{ID: id, App: "courses", Origin: "own-" + id, CreatedAt: now, ExpiresAt: now.Add(12 * time.Hour), IdleAt: now.Add(2 * time.Hour)}
}

func revokeUser(t *testing.T, s store.Store, clk *clock.Fake, user string) []string {
	t.Helper()
	ids, err := s.RevokeUser(context.Background(), user, clk.Now(), clk.Now().Add(time.Hour))
	if err != nil {
		t.Fatalf("RevokeUser: %v", err)
	}
	sort.Strings(ids)
	return ids
}

func testDeleteSession(t *testing.T, s store.Store, clk *clock.Fake) {
	mustCreate(t, s, newSession(clk, "s1", "u1"))
	mustCreate(t, s, newSession(clk, "s2", "u1"))
	if err := s.DeleteSession(context.Background(), "s1"); err != nil {
		t.Fatalf("DeleteSession: %v", err)
	}
	wantNotFound(t, s, "s1")
	if ids := revokeUser(t, s, clk, "u1"); !reflect.DeepEqual(ids, []string{"s2"}) {
		t.Fatalf("RevokeUser after one delete = %v; want [s2]", ids)
	}
}

func testUserSessions(t *testing.T, s store.Store, clk *clock.Fake) {
	ctx := context.Background()
	for i, u := range []string{"u1", "u1", "u10", "u2"} {
		sess := newSession(clk, fmt.Sprintf("s%d", i), u)
		sess.Origin = "origin-" + u
		mustCreate(t, s, sess)
	}
	short := newSession(clk, "s-short", "u1")
	short.ExpiresAt = clk.Now().Add(time.Minute)
	mustCreate(t, s, short)
	gone := newSession(clk, "s-gone", "u1")
	mustCreate(t, s, gone)
	if err := s.DeleteSession(ctx, "s-gone"); err != nil {
		t.Fatal(err)
	}
	clk.Advance(2 * time.Minute)
	got, err := s.UserSessions(ctx, "u1")
	if err != nil {
		t.Fatalf("UserSessions: %v", err)
	}
	var ids []string
	for _, sess := range got {
		ids = append(ids, sess.ID)
		if sess.Origin != "origin-u1" || sess.User.ID != "u1" || sess.App != "courses" {
			t.Errorf("session %s read back as %+v", sess.ID, sess)
		}
	}
	sort.Strings(ids)
	if !reflect.DeepEqual(ids, []string{"s0", "s1"}) {
		t.Fatalf("UserSessions(u1) = %v, want [s0 s1] (live, of u1 only)", ids)
	}
	if got, err := s.UserSessions(ctx, "nobody"); err != nil || len(got) != 0 {
		t.Fatalf("UserSessions(nobody) = %v, %v", got, err)
	}
}

func testRevokeUserSessions(t *testing.T, s store.Store, clk *clock.Fake) {
	for i, u := range []string{"u1", "u1", "u1", "u10", "u2"} {
		mustCreate(t, s, newSession(clk, fmt.Sprintf("s%d", i), u))
	}
	ids := revokeUser(t, s, clk, "u1")
	if !reflect.DeepEqual(ids, []string{"s0", "s1", "s2"}) {
		t.Fatalf("RevokeUser = %v, want [s0 s1 s2]", ids)
	}
	for _, id := range ids {
		wantNotFound(t, s, id)
	}
	for _, id := range []string{"s3", "s4"} {
		if _, err := s.GetSession(context.Background(), id); err != nil {
			t.Fatalf("session %s of another user is gone: %v", id, err)
		}
	}
	if ids := revokeUser(t, s, clk, "nobody"); len(ids) != 0 {
		t.Fatalf("RevokeUser(nobody) = %v", ids)
	}
}

func testRevokeUserLinks(t *testing.T, s store.Store, clk *clock.Fake) {
	old := granted(t, s, clk, "old", "u1", 1)
	// Issued before the revocation too, tried only after its hold, and
	// outliving it, so that the hold's end can be seen (the gateway holds a
	// revocation past every link's end).
	later := grantOf(clk, "later", "u1", 1)
	later.Expires = clk.Now().Add(2 * time.Hour)
	putLink(t, s, later)
	other := granted(t, s, clk, "other", "u2", 1)
	clk.Advance(time.Second)
	revokeUser(t, s, clk, "u1")
	if err := redeem(s, clk, old); !errors.Is(err, store.ErrLinkRevoked) {
		t.Fatalf("link issued before the revocation = %v, want ErrLinkRevoked", err)
	}
	if err := redeem(s, clk, other); err != nil {
		t.Fatalf("another user's link: %v", err)
	}
	clk.Advance(time.Second)
	if err := redeem(s, clk, granted(t, s, clk, "new", "u1", 1)); err != nil {
		t.Fatalf("link issued after the revocation: %v", err)
	}
	// The refusal ends when it expires (after every older link has).
	clk.Advance(time.Hour)
	if err := redeem(s, clk, later); err != nil {
		t.Fatalf("after the revocation expired: %v", err)
	}
}

func testRevokeLink(t *testing.T, s store.Store, clk *clock.Fake) {
	ctx := context.Background()
	l := granted(t, s, clk, "l1", "u1", 3)
	if err := s.RevokeLink(ctx, "l1"); err != nil {
		t.Fatalf("RevokeLink: %v", err)
	}
	if err := redeem(s, clk, l); !errors.Is(err, store.ErrLinkRevoked) {
		t.Fatalf("revoked link = %v, want ErrLinkRevoked", err)
	}
	used := granted(t, s, clk, "l2", "u1", 2)
	if err := redeem(s, clk, used); err != nil {
		t.Fatal(err)
	}
	if err := s.RevokeLink(ctx, "l2"); err != nil {
		t.Fatal(err)
	}
	if err := redeem(s, clk, used); !errors.Is(err, store.ErrLinkRevoked) {
		t.Fatalf("link revoked after one of two uses = %v, want ErrLinkRevoked", err)
	}
	if err := s.RevokeLink(ctx, "never"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("revoking a link never granted = %v, want ErrNotFound", err)
	}
}

func testLinkState(t *testing.T, s store.Store, clk *clock.Fake) {
	ctx := context.Background()
	want := func(id string, spent int, revoked bool) {
		t.Helper()
		l, err := s.Link(ctx, id)
		if err != nil || l.Spent != spent || l.Revoked != revoked {
			t.Fatalf("Link(%s) = %+v, %v; want %d spent, revoked %v", id, l, err, spent, revoked)
		}
	}
	if _, err := s.Link(ctx, "none"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Link of a link never granted = %v, want ErrNotFound", err)
	}
	g := granted(t, s, clk, "l1", "u1", 3)
	want("l1", 0, false)
	for range 2 {
		if err := redeem(s, clk, g); err != nil {
			t.Fatal(err)
		}
	}
	want("l1", 2, false)
	if l, _ := s.Link(ctx, "l1"); !sameGrant(l.Grant, g) {
		t.Fatalf("Link(l1) = %+v, want the grant %+v", l.Grant, g)
	}
	if err := s.RevokeLink(ctx, "l1"); err != nil {
		t.Fatal(err)
	}
	// A revoked link's spent uses may be forgotten: revoked is what counts.
	if l, err := s.Link(ctx, "l1"); err != nil || !l.Revoked {
		t.Fatalf("Link of a revoked link = %+v, %v", l, err)
	}
	clk.Advance(16 * time.Minute)
	if _, err := s.Link(ctx, "l1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Link after its end = %v, want ErrNotFound", err)
	}
}

// sameGrant compares grants as a store keeps them (times to the
// microsecond, through JSON or not).
func sameGrant(a, b store.Grant) bool {
	return a.ID == b.ID && a.App == b.App && a.User == b.User && a.Path == b.Path && a.Uses == b.Uses &&
		slices.Equal(a.Apps, b.Apps) && a.Origin == b.Origin &&
		a.IssuedAt.Equal(b.IssuedAt) && a.Expires.Equal(b.Expires)
}

// testGrantStartsTheSession: the token names the link and its user only;
// the session a redemption starts takes who it is for, what it may launch
// and (for a launch) its origin from the grant, in the store and in the
// caller's hands. A token naming another user, or used on another app,
// finds no grant.
func testGrantStartsTheSession(t *testing.T, s store.Store, clk *clock.Fake) {
	ctx := context.Background()
	g := granted(t, s, clk, "l1", "u1", 3)
	forged := spendOf(g)
	forged.UserID = "u2"
	if _, err := s.Redeem(ctx, forged, bareSession(clk, "s0")); !errors.Is(err, store.ErrLinkBeforeStore) {
		t.Fatalf("a token naming another user = %v, want ErrLinkBeforeStore", err)
	}
	elsewhere := bareSession(clk, "s0")
	elsewhere.App = "communities"
	if _, err := s.Redeem(ctx, spendOf(g), elsewhere); !errors.Is(err, store.ErrLinkBeforeStore) {
		t.Fatalf("a link used on another app = %v, want ErrLinkBeforeStore", err)
	}
	wantNotFound(t, s, "s0")
	sess := bareSession(clk, "s1")
	got, err := s.Redeem(ctx, spendOf(g), sess)
	if err != nil {
		t.Fatalf("Redeem: %v", err)
	}
	if !sameGrant(got, g) {
		t.Fatalf("Redeem answered the grant %+v, want %+v", got, g)
	}
	stored, err := s.GetSession(ctx, "s1")
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range []*store.Session{sess, stored} {
		if x.User != g.User || !slices.Equal(x.Apps, g.Apps) || x.LinkID != "l1" || x.Origin != "own-s1" || x.App != "courses" {
			t.Fatalf("session %+v does not hold what the grant gives", x)
		}
	}
	launch := grantOf(clk, "l2", "u1", 1)
	launch.Origin, launch.Apps = "l0/portal-origin", nil
	putLink(t, s, launch)
	sess = bareSession(clk, "s2")
	if _, err := s.Redeem(ctx, spendOf(launch), sess); err != nil {
		t.Fatal(err)
	}
	if stored, err = s.GetSession(ctx, "s2"); err != nil || stored.Origin != launch.Origin || sess.Origin != launch.Origin || len(stored.Apps) != 0 {
		t.Fatalf("a launch's session = %+v, %v; want the origin %q", stored, err, launch.Origin)
	}
	if got, err := s.Redeem(ctx, spendOf(launch), bareSession(clk, "s3")); !errors.Is(err, store.ErrLinkUsed) || got.ID != "l2" {
		t.Fatalf("a spent link = %+v, %v; want its grant and ErrLinkUsed", got, err)
	}
}

func testRedeemOnce(t *testing.T, s store.Store, clk *clock.Fake) {
	ctx := context.Background()
	l := granted(t, s, clk, "l1", "u1", 1)
	if _, err := s.Redeem(ctx, spendOf(l), bareSession(clk, "s1")); err != nil {
		t.Fatalf("Redeem: %v", err)
	}
	if _, err := s.GetSession(ctx, "s1"); err != nil {
		t.Fatalf("session of a redemption: %v", err)
	}
	if _, err := s.Redeem(ctx, spendOf(l), bareSession(clk, "s2")); !errors.Is(err, store.ErrLinkUsed) {
		t.Fatalf("second Redeem = %v, want ErrLinkUsed", err)
	}
	wantNotFound(t, s, "s2")
	if err := redeem(s, clk, granted(t, s, clk, "l2", "u1", 1)); err != nil {
		t.Fatalf("another link: %v", err)
	}
}

func testRedeemMulti(t *testing.T, s store.Store, clk *clock.Fake) {
	l := granted(t, s, clk, "l1", "u1", 3)
	for i := range 3 {
		if err := redeem(s, clk, l); err != nil {
			t.Fatalf("use %d: %v", i+1, err)
		}
	}
	if err := redeem(s, clk, l); !errors.Is(err, store.ErrLinkUsed) {
		t.Fatalf("fourth use = %v, want ErrLinkUsed", err)
	}
}

// testLinkRecordExpiry: a used link's record is kept until the link itself
// expires, so it can never be replayed while its token is still valid.
func testLinkRecordExpiry(t *testing.T, s store.Store, clk *clock.Fake) {
	l := granted(t, s, clk, "l1", "u1", 1)
	if err := redeem(s, clk, l); err != nil {
		t.Fatal(err)
	}
	clk.Advance(15*time.Minute - time.Second)
	if _, err := s.Purge(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := redeem(s, clk, l); !errors.Is(err, store.ErrLinkUsed) {
		t.Fatalf("replay before the link expired = %v, want ErrLinkUsed", err)
	}
	clk.Advance(time.Minute)
	wantPurged(t, s, 1, "after the link expired")
}

// testRedeemAtTheEnd: the store is the one judge of a link's end. A token
// verified just before its end can reach the store just after it (a
// batched write, a slow network): the store refuses it then by its own
// clock, and the record of a use it accepted just before the end is there
// at every instant it would still accept the link.
func testRedeemAtTheEnd(t *testing.T, s store.Store, clk *clock.Fake) {
	l := granted(t, s, clk, "edge", "u1", 1)
	clk.Advance(15*time.Minute - 2*time.Millisecond)
	if err := redeem(s, clk, l); err != nil {
		t.Fatalf("redeem 2ms before the end: %v", err)
	}
	clk.Advance(time.Millisecond)
	if err := redeem(s, clk, l); !errors.Is(err, store.ErrLinkUsed) {
		t.Fatalf("replay 1ms before the end = %v, want ErrLinkUsed", err)
	}
	clk.Advance(time.Millisecond)
	if err := redeem(s, clk, l); !errors.Is(err, store.ErrLinkExpired) {
		t.Fatalf("replay at the end = %v, want ErrLinkExpired", err)
	}
	// A link never spent is refused from its end on, too, and nothing is
	// stored for it.
	fresh := grantOf(clk, "fresh", "u2", 1)
	fresh.Expires = clk.Now().Add(time.Millisecond)
	putLink(t, s, fresh)
	clk.Advance(time.Millisecond)
	if _, err := s.Redeem(context.Background(), spendOf(fresh), bareSession(clk, "late")); !errors.Is(err, store.ErrLinkExpired) {
		t.Fatalf("unspent link at its end = %v, want ErrLinkExpired", err)
	}
	wantNotFound(t, s, "late")
	clk.Advance(time.Hour)
	if err := redeem(s, clk, l); !errors.Is(err, store.ErrLinkExpired) {
		t.Fatalf("replay an hour after the end = %v, want ErrLinkExpired", err)
	}
}

// redeemConcurrently redeems l from 50 goroutines at once and returns how
// many succeeded; any failure but ErrLinkUsed fails the test.
func redeemConcurrently(t *testing.T, s store.Store, clk *clock.Fake, l store.Grant) int32 {
	var wg sync.WaitGroup
	var wins atomic.Int32
	for range concurrentWorkers {
		wg.Go(func() {
			switch err := redeem(s, clk, l); {
			case err == nil:
				wins.Add(1)
			case !errors.Is(err, store.ErrLinkUsed):
				t.Errorf("Redeem: %v", err)
			}
		})
	}
	wg.Wait()
	return wins.Load()
}

const concurrentWorkers = 50

func testConcurrentRedeem(t *testing.T, s store.Store, clk *clock.Fake) {
	wins := redeemConcurrently(t, s, clk, granted(t, s, clk, "race", "racer", 1))
	ids := revokeUser(t, s, clk, "racer")
	if wins != 1 || len(ids) != 1 {
		t.Fatalf("%d wins, %d sessions from %d concurrent redemptions of a one-time link; want 1 and 1", wins, len(ids), concurrentWorkers)
	}
}

func testConcurrentRedeemMulti(t *testing.T, s store.Store, clk *clock.Fake) {
	if wins := redeemConcurrently(t, s, clk, granted(t, s, clk, "race", "racer", 5)); wins != 5 {
		t.Fatalf("%d wins for a 5-use link", wins)
	}
}

func testPurge(t *testing.T, s store.Store, clk *clock.Fake) {
	short := newSession(clk, "short", "u1")
	short.IdleAt = clk.Now().Add(time.Minute)
	mustCreate(t, s, short)
	mustCreate(t, s, newSession(clk, "long", "u1"))
	l := grantOf(clk, "l1", "u3", 1)
	l.Expires = clk.Now().Add(time.Minute)
	putLink(t, s, l)
	if _, err := s.Redeem(context.Background(), spendOf(l), bareSession(clk, "fromlink")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.RevokeUser(context.Background(), "u2", clk.Now(), clk.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	wantPurged(t, s, 0, "with nothing expired")
	clk.Advance(2 * time.Minute)
	wantPurged(t, s, 3, "of one session, one link, one user revocation")
	if _, err := s.GetSession(context.Background(), "long"); err != nil {
		t.Fatalf("live session purged: %v", err)
	}
	if ids := revokeUser(t, s, clk, "u1"); !reflect.DeepEqual(ids, []string{"long"}) {
		t.Fatalf("user index after purge = %v; want [long]", ids)
	}
}

// wantPurged runs Purge and checks its count, for stores that purge at all:
// a self-expiring store (Redis) leaves expiry to the server.
func wantPurged(t *testing.T, s store.Store, n int, what string) {
	t.Helper()
	got, err := s.Purge(context.Background())
	if err != nil {
		t.Fatalf("Purge: %v", err)
	}
	if se, ok := s.(interface{ SelfExpiring() bool }); ok && se.SelfExpiring() {
		return
	}
	if got != n {
		t.Fatalf("Purge %s = %d, want %d", what, got, n)
	}
}

func testPing(t *testing.T, s store.Store, _ *clock.Fake) {
	if err := s.Ping(context.Background()); err != nil {
		t.Fatalf("Ping of a working store: %v", err)
	}
}

// PutLink keeps in s the grant of link id for user to courses, as a mint
// does, and returns how its token names it: for tests of one store.
func PutLink(t testing.TB, s store.Sessions, id string, user identity.User, uses int, issued, expires time.Time) store.Spend {
	t.Helper()
	g := store.Grant{ID: id, App: "courses", User: user, Path: "/", Uses: uses, IssuedAt: issued, Expires: expires}
	if err := s.PutLink(context.Background(), g); err != nil {
		t.Fatalf("PutLink: %v", err)
	}
	return spendOf(g)
}

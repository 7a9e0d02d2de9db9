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

	"github.com/portalgate/portalgate/caddymodule/internal/identity"
	"github.com/portalgate/portalgate/caddymodule/internal/store"
	"github.com/portalgate/portalgate/caddymodule/internal/testkit/clock"
)

func contacts(t *testing.T, s store.Store) []store.Contact {
	t.Helper()
	cs, err := s.SearchContacts(context.Background(), store.ContactQuery{Limit: 1 << 20})
	if err != nil {
		t.Fatalf("SearchContacts: %v", err)
	}
	sort.Slice(cs, func(i, j int) bool { return cs[i].ID < cs[j].ID })
	return cs
}

func testContacts(t *testing.T, s store.Store, _ *clock.Fake) {
	ctx := context.Background()
	if cs := contacts(t, s); len(cs) != 0 {
		t.Fatalf("Contacts of an empty store = %+v", cs)
	}
	if err := s.PutContacts(ctx, nil); err != nil {
		t.Fatalf("PutContacts(nil): %v", err)
	}
	ada := store.Contact{ID: "c1", Email: "ada@example.com", Name: "Ada Lovelace", Location: "loc_1"}
	bob := store.Contact{ID: "c2", Email: "bob@example.com"}
	if err := s.PutContacts(ctx, []store.Contact{ada, bob}); err != nil {
		t.Fatalf("PutContacts: %v", err)
	}
	renamed := store.Contact{ID: "c1", Email: "ada@example.org", Name: "Ada King"}
	cyd := store.Contact{ID: "c3", Name: "Cyd"}
	if err := s.PutContacts(ctx, []store.Contact{renamed, cyd}); err != nil {
		t.Fatalf("PutContacts: %v", err)
	}
	if got, want := contacts(t, s), []store.Contact{renamed, bob, cyd}; !reflect.DeepEqual(got, want) {
		t.Fatalf("Contacts = %+v, want %+v", got, want)
	}
	if c, err := s.Contact(ctx, "c1"); err != nil || c != renamed {
		t.Fatalf("Contact(c1) = %+v, %v; want %+v", c, err, renamed)
	}
	if _, err := s.Contact(ctx, "nobody"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Contact of an unknown id: %v, want ErrNotFound", err)
	}
}

func testContactWithoutID(t *testing.T, s store.Store, _ *clock.Fake) {
	bad := []store.Contact{{ID: "c1", Name: "Ada"}, {Name: "nobody"}}
	if err := s.PutContacts(context.Background(), bad); err == nil {
		t.Fatal("PutContacts of a contact without an id succeeded")
	}
	if cs := contacts(t, s); len(cs) != 0 {
		t.Fatalf("a refused PutContacts stored %+v", cs)
	}
}

// linkRecord is a record of link id, issued now and kept for a day.
func linkRecord(clk *clock.Fake, id string, uses int) store.LinkRecord {
	now := clk.Now()
	return store.LinkRecord{
		ID:        id,
		App:       "courses",
		Path:      "/lesson/1",
		User:      identity.User{ID: "u1", Email: "ada@example.com", Name: "Ada Lovelace", Type: identity.Contact, Location: "loc_1"},
		Uses:      uses,
		IssuedAt:  now,
		ExpiresAt: now.Add(15 * time.Minute),
		By:        "staff@example.com",
		Keep:      now.Add(24 * time.Hour),
	}
}

func mustRecord(t *testing.T, s store.Store, r store.LinkRecord) {
	t.Helper()
	if err := s.RecordLink(context.Background(), r); err != nil {
		t.Fatalf("RecordLink: %v", err)
	}
}

func links(t *testing.T, s store.Store) []store.LinkRecord {
	t.Helper()
	rs, err := s.Links(context.Background(), store.LinkQuery{Limit: store.MaxLinkRecords})
	if err != nil {
		t.Fatalf("Links: %v", err)
	}
	return rs
}

func linkIDs(rs []store.LinkRecord) []string {
	ids := make([]string, len(rs))
	for i, r := range rs {
		ids[i] = r.ID
	}
	return ids
}

func testLinkRecordRoundTrip(t *testing.T, s store.Store, clk *clock.Fake) {
	want := linkRecord(clk, "l1", 2)
	mustRecord(t, s, want)
	rs := links(t, s)
	if len(rs) != 1 {
		t.Fatalf("Links = %+v, want one record", rs)
	}
	got := rs[0]
	if !got.IssuedAt.Equal(want.IssuedAt) || !got.ExpiresAt.Equal(want.ExpiresAt) || !got.Keep.Equal(want.Keep) {
		t.Fatalf("times changed: got %+v, want %+v", got, want)
	}
	got.IssuedAt, got.ExpiresAt, got.Keep = want.IssuedAt, want.ExpiresAt, want.Keep
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Links = %+v, want %+v", got, want)
	}
}

// testLinkRecordsTrimmed records MaxLinkRecords+5 links: the 5 oldest must
// go. The bulk in between is recorded concurrently, so a store that syncs
// each write to disk fills up in a moment; only the ends are in a known order.
func testLinkRecordsTrimmed(t *testing.T, s store.Store, clk *clock.Fake) {
	const oldest, newest = 5, 10
	record := func(i int) {
		mustRecord(t, s, linkRecord(clk, fmt.Sprintf("l%d", i), 1))
		clk.Advance(time.Millisecond)
	}
	for i := range oldest {
		record(i)
	}
	var wg sync.WaitGroup
	next := make(chan int)
	for range concurrentWorkers {
		wg.Go(func() {
			for i := range next {
				// Not record: t.Fatal belongs to the test's goroutine.
				r := linkRecord(clk, fmt.Sprintf("l%d", i), 1)
				r.IssuedAt = r.IssuedAt.Add(time.Duration(i) * time.Microsecond)
				if err := s.RecordLink(context.Background(), r); err != nil {
					t.Errorf("RecordLink: %v", err)
				}
			}
		})
	}
	total := store.MaxLinkRecords + oldest
	for i := oldest; i < total-newest; i++ {
		next <- i
	}
	close(next)
	wg.Wait()
	clk.Advance(time.Second)
	for i := total - newest; i < total; i++ {
		record(i)
	}

	ids := linkIDs(links(t, s))
	if len(ids) != store.MaxLinkRecords {
		t.Fatalf("Links holds %d records, want %d", len(ids), store.MaxLinkRecords)
	}
	var want []string
	for i := total - 1; i >= total-newest; i-- {
		want = append(want, fmt.Sprintf("l%d", i))
	}
	if !reflect.DeepEqual(ids[:newest], want) {
		t.Fatalf("Links starts with %v, want the newest first: %v", ids[:newest], want)
	}
	kept := make(map[string]bool, len(ids))
	for _, id := range ids {
		kept[id] = true
	}
	for i := range oldest {
		if id := fmt.Sprintf("l%d", i); kept[id] {
			t.Fatalf("the oldest record %s was kept beyond MaxLinkRecords", id)
		}
	}
	if len(kept) != len(ids) {
		t.Fatalf("Links lists %d records, %d of them distinct", len(ids), len(kept))
	}
}

func testLinkRecordKeep(t *testing.T, s store.Store, clk *clock.Fake) {
	short := linkRecord(clk, "short", 1)
	short.Keep = clk.Now().Add(time.Hour)
	mustRecord(t, s, short)
	clk.Advance(time.Second)
	mustRecord(t, s, linkRecord(clk, "long", 1))
	wantPurged(t, s, 0, "with no link record past its Keep")

	clk.Advance(time.Hour - time.Second)
	if ids := linkIDs(links(t, s)); !reflect.DeepEqual(ids, []string{"long"}) {
		t.Fatalf("Links once short's Keep passed = %v, want [long]", ids)
	}
	wantPurged(t, s, 1, "of one link record past its Keep")
	if ids := linkIDs(links(t, s)); !reflect.DeepEqual(ids, []string{"long"}) {
		t.Fatalf("Links after Purge = %v, want [long]", ids)
	}
	clk.Advance(24 * time.Hour)
	if rs := links(t, s); len(rs) != 0 {
		t.Fatalf("Links once every Keep passed = %v, want none", linkIDs(rs))
	}
}

func testLinkRecordUses(t *testing.T, s store.Store, clk *clock.Fake) {
	for _, r := range []store.LinkRecord{linkRecord(clk, "spent", 3), linkRecord(clk, "revoked", 2), linkRecord(clk, "unused", 1)} {
		mustRecord(t, s, r)
	}
	spent := granted(t, s, clk, "spent", "u1", 3)
	for range 2 {
		if err := redeem(s, clk, spent); err != nil {
			t.Fatal(err)
		}
	}
	revoked := granted(t, s, clk, "revoked", "u1", 2)
	if err := redeem(s, clk, revoked); err != nil {
		t.Fatal(err)
	}
	if err := s.RevokeLink(context.Background(), "revoked"); err != nil {
		t.Fatal(err)
	}
	type uses struct {
		Spent   int
		Revoked bool
	}
	byID := func() map[string]uses {
		m := make(map[string]uses)
		for _, r := range links(t, s) {
			m[r.ID] = uses{r.Spent, r.Revoked}
		}
		return m
	}
	// A revoked link's count is not asserted: stores may keep the mark
	// in its place.
	got := byID()
	if got["spent"] != (uses{Spent: 2}) || !got["revoked"].Revoked || got["unused"] != (uses{}) {
		t.Fatalf("Links uses = %+v; want spent 2, revoked, unused untouched", got)
	}
	// Revoking their user revokes the links issued to them until then, and
	// not those issued after.
	if _, err := s.RevokeUser(context.Background(), "u1", clk.Now(), clk.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Second)
	later := linkRecord(clk, "later", 1)
	mustRecord(t, s, later)
	got = byID()
	if !got["spent"].Revoked || !got["unused"].Revoked || got["later"].Revoked {
		t.Fatalf("Links after revoking the user = %+v; want every earlier link revoked, the later one not", got)
	}
	// Once the links expire their use records go, and the records say so.
	clk.Advance(15 * time.Minute)
	clk.Advance(time.Hour)
	if got := byID(); len(got) != 4 || got["spent"] != (uses{}) || got["revoked"] != (uses{}) {
		t.Fatalf("Links uses after the links expired = %+v; want all zero", got)
	}
}

// menuItems is a menu of n items, all distinct from those of other tags.
func menuItems(tag string, n int) []store.MenuItem {
	items := make([]store.MenuItem, n)
	for i := range items {
		items[i] = store.MenuItem{ID: fmt.Sprintf("%s-%d", tag, i), Title: "Item " + tag, Open: "new_tab", Roles: []identity.Type{identity.Contact}}
		if i%2 == 0 {
			items[i].URL = "https://example.com/" + tag
		} else {
			items[i].App = "courses"
			items[i].Open = "iframe"
			items[i].Roles = append(items[i].Roles, identity.AgencyUser)
		}
	}
	return items
}

func wantMenu(t *testing.T, s store.Store, items []store.MenuItem, version int64) {
	t.Helper()
	wantMenuOf(t, s, "", items, version)
}

func wantMenuOf(t *testing.T, s store.Store, tenant string, items []store.MenuItem, version int64) {
	t.Helper()
	m, err := s.Menu(context.Background(), tenant)
	if err != nil {
		t.Fatalf("Menu: %v", err)
	}
	if m.Version != version || len(m.Items) != len(items) || (len(items) > 0 && !reflect.DeepEqual(m.Items, items)) {
		t.Fatalf("Menu = %+v, want version %d with %+v", m, version, items)
	}
}

func testMenu(t *testing.T, s store.Store, _ *clock.Fake) {
	ctx := context.Background()
	wantMenu(t, s, nil, 0)
	first := menuItems("a", 3)
	v, err := s.SetMenu(ctx, "", first, 0)
	if err != nil || v != 1 {
		t.Fatalf("SetMenu at version 0 = %d, %v; want 1", v, err)
	}
	wantMenu(t, s, first, 1)
	if _, err := s.SetMenu(ctx, "", menuItems("stale", 1), 0); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("SetMenu at a stale version = %v, want ErrConflict", err)
	}
	wantMenu(t, s, first, 1)
	second := menuItems("b", 2)
	if v, err := s.SetMenu(ctx, "", second, 1); err != nil || v != 2 {
		t.Fatalf("SetMenu at version 1 = %d, %v; want 2", v, err)
	}
	wantMenu(t, s, second, 2)
	if v, err := s.SetMenu(ctx, "", nil, 2); err != nil || v != 3 {
		t.Fatalf("SetMenu of an empty menu = %d, %v; want 3", v, err)
	}
	wantMenu(t, s, nil, 3)
}

func testConcurrentSetMenu(t *testing.T, s store.Store, _ *clock.Fake) {
	const writers = 8
	var wg sync.WaitGroup
	won := make(chan string, writers)
	for i := range writers {
		tag := fmt.Sprintf("w%d", i)
		wg.Go(func() {
			switch v, err := s.SetMenu(context.Background(), "", menuItems(tag, 2), 0); {
			case err == nil && v == 1:
				won <- tag
			case err == nil:
				t.Errorf("SetMenu won at version %d, want 1", v)
			case !errors.Is(err, store.ErrConflict):
				t.Errorf("SetMenu: %v", err)
			}
		})
	}
	wg.Wait()
	close(won)
	var winners []string
	for tag := range won {
		winners = append(winners, tag)
	}
	if len(winners) != 1 {
		t.Fatalf("%d of %d concurrent SetMenu calls at one version won: %v; want 1", len(winners), writers, winners)
	}
	wantMenu(t, s, menuItems(winners[0], 2), 1)
}

func testContactSearch(t *testing.T, s store.Store, _ *clock.Fake) {
	ctx := context.Background()
	all := []store.Contact{
		{ID: "c1", Email: "ada@example.com", Name: "ada Lovelace", Location: "loc_1"},
		{ID: "c2", Email: "bob@example.com", Name: "Bob", Location: "loc_2"},
		{ID: "c3", Email: "Ada@Example.com", Name: "Ada Byron", Location: "loc_2"},
		{ID: "c4", Email: "cyd@example.com", Location: "loc_1"},
	}
	if err := s.PutContacts(ctx, all); err != nil {
		t.Fatalf("PutContacts: %v", err)
	}
	ids := func(cs []store.Contact, err error) []string {
		t.Helper()
		if err != nil {
			t.Fatalf("query: %v", err)
		}
		out := []string{}
		for _, c := range cs {
			out = append(out, c.ID)
		}
		return out
	}
	for name, tc := range map[string]struct {
		q    store.ContactQuery
		want []string
	}{
		"all, by name then e-mail":   {store.ContactQuery{}, []string{"c3", "c1", "c2", "c4"}},
		"text in a name, any case":   {store.ContactQuery{Text: "ADA"}, []string{"c3", "c1"}},
		"text in an id":              {store.ContactQuery{Text: "c4"}, []string{"c4"}},
		"one location":               {store.ContactQuery{Location: "loc_1"}, []string{"c1", "c4"}},
		"text within a location":     {store.ContactQuery{Text: "example", Location: "loc_2"}, []string{"c3", "c2"}},
		"limit keeps the first ones": {store.ContactQuery{Limit: 2}, []string{"c3", "c1"}},
		"nothing matches":            {store.ContactQuery{Text: "zed"}, []string{}},
	} {
		if got := ids(s.SearchContacts(ctx, tc.q)); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: SearchContacts(%+v) = %v, want %v", name, tc.q, got, tc.want)
		}
	}
	if got := ids(s.ContactsByEmail(ctx, "ADA@example.COM")); !reflect.DeepEqual(got, []string{"c1", "c3"}) {
		t.Errorf("ContactsByEmail ignoring case = %v, want [c1 c3]", got)
	}
	if got := ids(s.ContactsByEmail(ctx, "nobody@example.com")); len(got) != 0 {
		t.Errorf("ContactsByEmail of an unknown address = %v", got)
	}
	if got := ids(s.ContactsByEmail(ctx, "")); len(got) != 0 {
		t.Errorf("ContactsByEmail of no address = %v", got)
	}
	if got := ids(s.ContactsByEmail(ctx, "  cyd@EXAMPLE.com ")); !reflect.DeepEqual(got, []string{"c4"}) {
		t.Errorf("ContactsByEmail of a padded address = %v, want [c4]", got)
	}
	// Only ASCII case folds: a Kelvin sign is not a K.
	if err := s.PutContacts(ctx, []store.Contact{{ID: "c5", Email: "kate@example.com"}}); err != nil {
		t.Fatal(err)
	}
	if got := ids(s.ContactsByEmail(ctx, "\u212Aate@example.com")); len(got) != 0 {
		t.Errorf("ContactsByEmail of a Kelvin sign = %v, want none", got)
	}
	// The index follows a contact's new address, and forgets the old one.
	if err := s.PutContacts(ctx, []store.Contact{{ID: "c1", Email: "ada.lovelace@example.com", Name: "ada Lovelace"}}); err != nil {
		t.Fatal(err)
	}
	if got := ids(s.ContactsByEmail(ctx, "ada@example.com")); !reflect.DeepEqual(got, []string{"c3"}) {
		t.Errorf("ContactsByEmail of a contact's old address = %v, want [c3]", got)
	}
	if got := ids(s.ContactsByEmail(ctx, "Ada.Lovelace@example.com")); !reflect.DeepEqual(got, []string{"c1"}) {
		t.Errorf("ContactsByEmail of a contact's new address = %v, want [c1]", got)
	}
	if err := s.PutContacts(ctx, []store.Contact{{ID: "c1", Name: "ada Lovelace"}}); err != nil {
		t.Fatal(err)
	}
	if got := ids(s.ContactsByEmail(ctx, "ada.lovelace@example.com")); len(got) != 0 {
		t.Errorf("ContactsByEmail after the address was removed = %v", got)
	}
}

func testLinkQueries(t *testing.T, s store.Store, clk *clock.Fake) {
	ctx := context.Background()
	for i, loc := range []string{"loc_1", "loc_2", "loc_1"} {
		r := linkRecord(clk, fmt.Sprintf("l%d", i+1), 1)
		r.User.Location = loc
		clk.Advance(time.Second)
		mustRecord(t, s, r)
	}
	got := func(q store.LinkQuery) []string {
		t.Helper()
		rs, err := s.Links(ctx, q)
		if err != nil {
			t.Fatalf("Links(%+v): %v", q, err)
		}
		return linkIDs(rs)
	}
	if ids := got(store.LinkQuery{Location: "loc_1"}); !reflect.DeepEqual(ids, []string{"l3", "l1"}) {
		t.Errorf("links of loc_1 = %v, want [l3 l1]", ids)
	}
	if ids := got(store.LinkQuery{Limit: 2}); !reflect.DeepEqual(ids, []string{"l3", "l2"}) {
		t.Errorf("the newest two links = %v, want [l3 l2]", ids)
	}
	if r, err := s.LinkRecord(ctx, "l2"); err != nil || r.ID != "l2" || r.User.Location != "loc_2" {
		t.Errorf("LinkRecord(l2) = %+v, %v", r, err)
	}
	if _, err := s.LinkRecord(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("LinkRecord of an unknown id: %v, want ErrNotFound", err)
	}
}

func testIDNamesOnePerson(t *testing.T, s store.Store, _ *clock.Fake) {
	ctx := context.Background()
	contact := store.Holder{Type: identity.Contact}
	subA := store.Holder{Type: identity.SubaccountUser, Location: "loc_a"}
	subB := store.Holder{Type: identity.SubaccountUser, Location: "loc_b"}
	agency := store.Holder{Type: identity.AgencyUser}
	claim := func(id string, h, want store.Holder, wantErr error) {
		t.Helper()
		if held, err := s.ClaimID(ctx, id, h); !errors.Is(err, wantErr) || held != want {
			t.Fatalf("ClaimID(%s, %+v) = %+v, %v; want %+v, %v", id, h, held, err, want, wantErr)
		}
	}
	claim("u1", subA, subA, nil)
	claim("u1", subA, subA, nil) // the same person again
	claim("u1", subB, subA, store.ErrIDTaken)
	claim("u1", contact, subA, store.ErrIDTaken)
	claim("u1", agency, subA, store.ErrIDTaken)

	// A contact's record is its claim, and a sync never takes a user's id.
	if err := s.PutContacts(ctx, []store.Contact{{ID: "c1", Name: "Ada"}}); err != nil {
		t.Fatal(err)
	}
	claim("c1", agency, contact, store.ErrIDTaken)
	claim("c1", contact, contact, nil)
	claim("c2", contact, contact, nil)
	if err := s.PutContacts(ctx, []store.Contact{{ID: "c2"}, {ID: "c3"}}); err != nil {
		t.Fatalf("PutContacts of claimed contact ids: %v", err)
	}
	err := s.PutContacts(ctx, []store.Contact{{ID: "c4"}, {ID: "u1"}})
	if !errors.Is(err, store.ErrIDTaken) {
		t.Fatalf("PutContacts of a sub-account user's id: %v, want ErrIDTaken", err)
	}
	if _, err := s.Contact(ctx, "c4"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a refused PutContacts stored part of its contacts: %v", err)
	}
}

func testConcurrentClaimsHaveOneWinner(t *testing.T, s store.Store, _ *clock.Fake) {
	holders := []store.Holder{
		{Type: identity.Contact}, {Type: identity.AgencyUser},
		{Type: identity.SubaccountUser, Location: "loc_a"}, {Type: identity.SubaccountUser, Location: "loc_b"},
	}
	var wg sync.WaitGroup
	won := make(chan store.Holder, len(holders))
	for _, h := range holders {
		wg.Go(func() {
			switch _, err := s.ClaimID(context.Background(), "u1", h); {
			case err == nil:
				won <- h
			case !errors.Is(err, store.ErrIDTaken):
				t.Errorf("ClaimID: %v", err)
			}
		})
	}
	wg.Wait()
	close(won)
	var winners []store.Holder
	for h := range won {
		winners = append(winners, h)
	}
	if len(winners) != 1 {
		t.Fatalf("%d of %d concurrent claims of one id won: %+v; want 1", len(winners), len(holders), winners)
	}
	if held, err := s.ClaimID(context.Background(), "u1", store.Holder{Type: identity.AgencyUser, Location: "x"}); !errors.Is(err, store.ErrIDTaken) || held != winners[0] {
		t.Fatalf("after the race the id names %+v, %v; want %+v", held, err, winners[0])
	}
}

func testLinkRecordDelivery(t *testing.T, s store.Store, clk *clock.Fake) {
	ctx := context.Background()
	mailed := linkRecord(clk, "mailed", 1)
	mailed.Delivery = store.DeliverySending
	mustRecord(t, s, mailed)
	mustRecord(t, s, linkRecord(clk, "shown", 1))
	delivery := func(id string) string {
		t.Helper()
		r, err := s.LinkRecord(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		return r.Delivery
	}
	if got := delivery("mailed"); got != store.DeliverySending {
		t.Fatalf("a mailed link's delivery before the queue said: %q", got)
	}
	if err := s.SetDelivery(ctx, "mailed", store.DeliverySent, mailed.Keep); err != nil {
		t.Fatal(err)
	}
	if got := delivery("mailed"); got != store.DeliverySent {
		t.Fatalf("after SetDelivery: %q", got)
	}
	if got := links(t, s); len(got) != 2 || got[0].ID != "shown" || got[0].Delivery != "" || got[1].Delivery != store.DeliverySent {
		t.Fatalf("Links: %+v", got)
	}
	if err := s.SetDelivery(ctx, "never-recorded", store.DeliveryFailed, mailed.Keep); err != nil {
		t.Fatalf("SetDelivery of a link without a record: %v", err)
	}
}

// Each tenant has a menu of its own: a write to one is not another's, nor
// the default tenant's, and its version is its own.
func testMenusOfTenantsAreTheirOwn(t *testing.T, s store.Store, _ *clock.Fake) {
	ctx := context.Background()
	if _, err := s.SetMenu(ctx, "", menuItems("default", 1), 0); err != nil {
		t.Fatal(err)
	}
	acme := menuItems("acme", 2)
	if v, err := s.SetMenu(ctx, "acme", acme, 0); err != nil || v != 1 {
		t.Fatalf("acme's first SetMenu = %d, %v", v, err)
	}
	wantMenuOf(t, s, "acme", acme, 1)
	wantMenuOf(t, s, "beta", nil, 0)
	wantMenu(t, s, menuItems("default", 1), 1)
	if _, err := s.SetMenu(ctx, "beta", menuItems("beta", 1), 1); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("beta's SetMenu at acme's version = %v, want ErrConflict", err)
	}
}

// Tenants are kept whole, replaced by id, listed in id order a page at a
// time, and removed; every change raises the count of changes, which
// instances poll.
func testTenants(t *testing.T, s store.Store, clk *clock.Fake) {
	ctx := context.Background()
	changed := func() int64 {
		t.Helper()
		n, err := s.TenantsChanged(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	n0 := changed()
	if ts, err := s.Tenants(ctx, "", 0); err != nil || len(ts) != 0 {
		t.Fatalf("Tenants of an empty store = %v, %v", ts, err)
	}
	acme := store.Tenant{ID: "acme", Name: "Acme Coaching", Portal: "https://portal.acme-client.com",
		Apps:  map[string]string{"courses": "https://courses.acme-client.com", "communities": ""},
		Brand: store.TenantBrand{Color: "#0f766e", Logo: "https://cdn.acme-client.com/logo.png", SupportEmail: "help@acme-client.com", SenderName: "Acme"},
		Since: clk.Now().UTC().Truncate(time.Microsecond)}
	for i := range 5 {
		if err := s.AddTenant(ctx, store.Tenant{ID: fmt.Sprintf("t%d", 4-i), Name: "T"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.AddTenant(ctx, acme); err != nil {
		t.Fatal(err)
	}
	if err := s.AddTenant(ctx, acme); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("AddTenant of an id there is = %v, want ErrConflict", err)
	}
	if n := changed(); n <= n0 {
		t.Fatalf("TenantsChanged = %d after changes, was %d", n, n0)
	}
	all, err := s.Tenants(ctx, "", 0)
	if err != nil || len(all) != 6 || all[0].ID != "acme" || all[5].ID != "t4" {
		t.Fatalf("Tenants = %+v, %v; want acme, t0..t4", all, err)
	}
	if !reflect.DeepEqual(all[0], acme) || !all[0].Since.Equal(acme.Since) {
		t.Fatalf("acme came back as %+v, want %+v", all[0], acme)
	}
	page, err := s.Tenants(ctx, "t1", 2)
	if err != nil || len(page) != 2 || page[0].ID != "t2" || page[1].ID != "t3" {
		t.Fatalf("Tenants after t1, 2 = %+v, %v; want t2, t3", page, err)
	}
	acme.Name = "Acme Academy"
	if err := s.ReplaceTenant(ctx, acme); err != nil {
		t.Fatal(err)
	}
	other := acme
	other.Since = acme.Since.Add(time.Second)
	if err := s.ReplaceTenant(ctx, other); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("ReplaceTenant of a tenant added at another time = %v, want ErrConflict", err)
	}
	if err := s.ReplaceTenant(ctx, store.Tenant{ID: "nobody"}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("ReplaceTenant of no tenant = %v, want ErrNotFound", err)
	}
	if got, _ := s.Tenants(ctx, "", 1); len(got) != 1 || got[0].Name != "Acme Academy" {
		t.Fatalf("a replaced tenant reads %+v", got)
	}
	before := changed()
	if err := s.DeleteTenant(ctx, "acme"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteTenant(ctx, "acme"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("DeleteTenant of a removed tenant = %v, want ErrNotFound", err)
	}
	// A replace from an instance that has not seen the removal puts
	// nothing back.
	if err := s.ReplaceTenant(ctx, acme); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("ReplaceTenant of a removed tenant = %v, want ErrNotFound", err)
	}
	if changed() <= before {
		t.Fatal("a removal did not raise TenantsChanged")
	}
	if got, _ := s.Tenants(ctx, "", 0); len(got) != 5 || got[0].ID != "t0" {
		t.Fatalf("after removing acme: %+v", got)
	}
}

// The same e-mail address may be a contact of two tenants, as two people:
// the index finds both, and a search of one location finds its own.
func testSameAddressInTwoTenantsIsTwoContacts(t *testing.T, s store.Store, _ *clock.Fake) {
	ctx := context.Background()
	if err := s.PutContacts(ctx, []store.Contact{
		{ID: "c_acme_pat", Email: "pat@example.com", Name: "Pat", Location: "acme"},
		{ID: "c_beta_pat", Email: "PAT@example.com", Name: "Pat", Location: "beta"},
	}); err != nil {
		t.Fatal(err)
	}
	both, err := s.ContactsByEmail(ctx, "pat@example.com")
	if err != nil || len(both) != 2 || both[0].Location != "acme" || both[1].Location != "beta" {
		t.Fatalf("ContactsByEmail = %+v, %v; want both", both, err)
	}
	for _, loc := range []string{"acme", "beta"} {
		got, err := s.SearchContacts(ctx, store.ContactQuery{Text: "pat", Location: loc})
		if err != nil || len(got) != 1 || got[0].Location != loc {
			t.Fatalf("SearchContacts in %s = %+v, %v", loc, got, err)
		}
	}
}

// Instances adding one tenant id at once: one of them adds it.
func testConcurrentAddTenantHasOneWinner(t *testing.T, s store.Store, _ *clock.Fake) {
	const adders = 8
	var wg sync.WaitGroup
	var won atomic.Int32
	for i := range adders {
		wg.Go(func() {
			err := s.AddTenant(context.Background(), store.Tenant{ID: "race", Name: fmt.Sprintf("n%d", i)})
			switch {
			case err == nil:
				won.Add(1)
			case !errors.Is(err, store.ErrConflict):
				t.Errorf("AddTenant: %v", err)
			}
		})
	}
	wg.Wait()
	if won.Load() != 1 {
		t.Fatalf("%d of %d concurrent adds of one id won, want 1", won.Load(), adders)
	}
}

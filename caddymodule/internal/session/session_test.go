package session_test

import (
	"context"
	"errors"
	"runtime"
	"testing"
	"time"

	"github.com/portalgate/portalgate/caddymodule/internal/identity"
	"github.com/portalgate/portalgate/caddymodule/internal/session"
	"github.com/portalgate/portalgate/caddymodule/internal/store"
	"github.com/portalgate/portalgate/caddymodule/internal/store/memory"
	"github.com/portalgate/portalgate/caddymodule/internal/testkit/clock"
)

var ada = identity.User{ID: "c_123", Email: "ada@example.com", Name: "Ada Lovelace", Type: identity.Contact}

// countingStore counts reads so tests can tell L1 hits from store reads.
type countingStore struct {
	store.Store
	gets, touches int
}

func (c *countingStore) GetSession(ctx context.Context, id string) (*store.Session, error) {
	c.gets++
	return c.Store.GetSession(ctx, id)
}

func (c *countingStore) TouchSession(ctx context.Context, id string, idleAt time.Time) error {
	c.touches++
	return c.Store.TouchSession(ctx, id, idleAt)
}

func newManager(t *testing.T) (*session.Manager, *countingStore, *clock.Fake) {
	t.Helper()
	clk := clock.NewFake()
	st := &countingStore{Store: memory.New(clk.Now)}
	return managerOn(t, st, clk), st, clk
}

// managerOn is a manager of the usual lifetimes on st, closed when t ends.
func managerOn(t *testing.T, st store.Store, clk *clock.Fake) *session.Manager {
	t.Helper()
	m, err := session.NewManager(st, session.Config{TTL: 12 * time.Hour, Idle: 2 * time.Hour, CacheMaxBytes: 1 << 20, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	return m
}

func create(t *testing.T, m *session.Manager) *store.Session {
	t.Helper()
	s, err := m.Create(context.Background(), ada, "", "courses", nil, "link1")
	if err != nil {
		t.Fatal(err)
	}
	m.Wait()
	return s
}

func TestCreate_NewRandomIDEachTime(t *testing.T) {
	m, _, _ := newManager(t)
	a, b := create(t, m), create(t, m)
	if a.ID == b.ID || !session.ValidID(a.ID) || len(a.ID) != session.IDLen {
		t.Fatalf("ids %q and %q", a.ID, b.ID)
	}
}

func TestLookup_ServesFromL1(t *testing.T) {
	m, st, _ := newManager(t)
	s := create(t, m)
	for range 3 {
		got, err := m.Lookup(context.Background(), s.ID, "", "courses")
		if err != nil || got.User != ada {
			t.Fatalf("Lookup = %+v, %v", got, err)
		}
	}
	if st.gets != 0 {
		t.Fatalf("%d store reads for cached session, want 0", st.gets)
	}
}

func TestLookup_MissFallsBackToStore(t *testing.T) {
	m, st, clk := newManager(t)
	s := create(t, m)
	other, err := session.NewManager(st, session.Config{TTL: time.Hour, Idle: time.Hour, CacheMaxBytes: 1 << 20, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if _, err := other.Lookup(context.Background(), s.ID, "", "courses"); err != nil {
		t.Fatalf("Lookup on a cold cache: %v", err)
	}
	if st.gets != 1 {
		t.Fatalf("store reads = %d, want 1", st.gets)
	}
}

func TestLookup_CookieFromAnotherAppIsRefused(t *testing.T) {
	m, _, _ := newManager(t)
	s := create(t, m)
	if _, err := m.Lookup(context.Background(), s.ID, "", "communities"); !errors.Is(err, session.ErrNoSession) {
		t.Fatalf("Lookup for another app = %v, want ErrNoSession", err)
	}
}

func TestLookup_GarbageIDNeverReachesStore(t *testing.T) {
	m, st, _ := newManager(t)
	for _, id := range []string{"", "short", "../../../../etc/passwd/aaaaaaaaaaaaaaaaaaaaaaaaaaaaa", string(make([]byte, session.IDLen))} {
		if _, err := m.Lookup(context.Background(), id, "", "courses"); !errors.Is(err, session.ErrNoSession) {
			t.Fatalf("Lookup(%q) = %v", id, err)
		}
	}
	if st.gets != 0 {
		t.Fatalf("store reads = %d, want 0", st.gets)
	}
}

func TestLookup_IdleSessionEnds(t *testing.T) {
	m, _, clk := newManager(t)
	s := create(t, m)
	clk.Advance(2 * time.Hour)
	if _, err := m.Lookup(context.Background(), s.ID, "", "courses"); !errors.Is(err, session.ErrNoSession) {
		t.Fatalf("Lookup after idle timeout = %v, want ErrNoSession", err)
	}
}

func TestLookup_UseSlidesIdleDeadlineAtMostOncePerMinute(t *testing.T) {
	m, st, clk := newManager(t)
	s := create(t, m)
	for range 10 {
		clk.Advance(5 * time.Second)
		if _, err := m.Lookup(context.Background(), s.ID, "", "courses"); err != nil {
			t.Fatal(err)
		}
	}
	if st.touches != 0 {
		t.Fatalf("touches within the first minute = %d, want 0", st.touches)
	}
	// Keep using it every 90 minutes: it outlives the 2h idle timeout.
	for range 4 {
		clk.Advance(90 * time.Minute)
		if _, err := m.Lookup(context.Background(), s.ID, "", "courses"); err != nil {
			t.Fatalf("active session ended: %v", err)
		}
		m.Wait()
	}
	if st.touches != 4 {
		t.Fatalf("touches = %d, want 4", st.touches)
	}
}

func TestLookup_AbsoluteExpiryEndsEvenActiveSessions(t *testing.T) {
	m, _, clk := newManager(t)
	s := create(t, m)
	for range 12 {
		clk.Advance(time.Hour)
		_, _ = m.Lookup(context.Background(), s.ID, "", "courses")
		m.Wait()
	}
	if _, err := m.Lookup(context.Background(), s.ID, "", "courses"); !errors.Is(err, session.ErrNoSession) {
		t.Fatalf("Lookup after 12h = %v, want ErrNoSession", err)
	}
}

func TestEnd_RemovesFromL1AndStore(t *testing.T) {
	m, st, _ := newManager(t)
	s := create(t, m)
	if err := m.End(context.Background(), s.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Lookup(context.Background(), s.ID, "", "courses"); !errors.Is(err, session.ErrNoSession) {
		t.Fatalf("Lookup after End = %v", err)
	}
	if _, err := st.Store.GetSession(context.Background(), s.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("store still has the session: %v", err)
	}
}

func TestRevokeUser_EndsEverySessionOfTheUserAtOnce(t *testing.T) {
	m, _, _ := newManager(t)
	a, b := create(t, m), create(t, m)
	if _, err := m.Lookup(context.Background(), a.ID, "", "courses"); err != nil {
		t.Fatal(err)
	}
	n, err := m.RevokeUser(context.Background(), ada.ID, time.Now().Add(time.Hour))
	if err != nil || n != 2 {
		t.Fatalf("RevokeUser = %d, %v; want 2", n, err)
	}
	for _, s := range []*store.Session{a, b} {
		if _, err := m.Lookup(context.Background(), s.ID, "", "courses"); !errors.Is(err, session.ErrNoSession) {
			t.Fatalf("session %s survives RevokeUser (L1 kept it?): %v", s.ID, err)
		}
	}
}

func TestCost_CountsStrings(t *testing.T) {
	small := &session.Entry{}
	big := &session.Entry{User: identity.User{Name: string(make([]byte, 1000))}, Apps: []string{"courses"}}
	if d := session.Cost(big) - session.Cost(small); d < 1000 {
		t.Fatalf("cost difference %d, want at least 1000", d)
	}
}

// endingStore ends the session (from another goroutine, as a concurrent
// logout would) right after the store answered a read or a touch.
type endingStore struct {
	store.Store
	m    *session.Manager
	done chan struct{}
}

func (e *endingStore) race(id string) {
	if e.m == nil || e.done != nil {
		return
	}
	e.done = make(chan struct{})
	go func() { _ = e.m.End(context.Background(), id); close(e.done) }()
	// Give the logout every chance to finish before the caller writes L1;
	// with the per-id lock it cannot, and waits for the lookup instead.
	select {
	case <-e.done:
	case <-time.After(50 * time.Millisecond):
	}
}

func (e *endingStore) GetSession(ctx context.Context, id string) (*store.Session, error) {
	s, err := e.Store.GetSession(ctx, id)
	e.race(id)
	return s, err
}

func (e *endingStore) TouchSession(ctx context.Context, id string, idleAt time.Time) error {
	err := e.Store.TouchSession(ctx, id, idleAt)
	e.race(id)
	return err
}

func TestLookup_LogoutDuringAStoreReadIsNotUndoneByL1(t *testing.T) {
	for name, warm := range map[string]bool{"during a miss": false, "during a touch": true} {
		t.Run(name, func(t *testing.T) {
			clk := clock.NewFake()
			st := &endingStore{Store: memory.New(clk.Now)}
			m, err := session.NewManager(st, session.Config{TTL: 12 * time.Hour, Idle: 2 * time.Hour, CacheMaxBytes: 1 << 20, Now: clk.Now})
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			var s *store.Session
			if warm {
				s = create(t, m)
				clk.Advance(2 * time.Minute) // the next lookup writes the idle deadline back
			} else {
				other, _ := session.NewManager(st, session.Config{TTL: 12 * time.Hour, Idle: 2 * time.Hour, CacheMaxBytes: 1 << 20, Now: clk.Now})
				s = create(t, other)
				other.Close()
			}
			st.m = m
			_, _ = m.Lookup(context.Background(), s.ID, "", "courses")
			<-st.done
			m.Wait()
			if got, err := m.Lookup(context.Background(), s.ID, "", "courses"); !errors.Is(err, session.ErrNoSession) {
				t.Fatalf("a session ended during a lookup is back from L1: %+v, %v", got, err)
			}
		})
	}
}

// cache_max_bytes was allocated up front: 8 GiB cost 3.2 GB before any
// session existed, and 900 GiB ran out of memory. Only the admission
// counters are allocated at once, and they are bounded.
func TestNewManager_HugeCacheIsNotAllocatedUpFront(t *testing.T) {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	m, err := session.NewManager(memory.New(time.Now), session.Config{TTL: time.Hour, Idle: time.Hour, CacheMaxBytes: 900 << 30, Now: time.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	runtime.ReadMemStats(&after)
	if grown := after.TotalAlloc - before.TotalAlloc; grown > 128<<20 {
		t.Fatalf("a 900 GiB cache allocated %d MiB before its first session", grown>>20)
	}
}

// TestEntry_PlaceholdersResolveTheEntrysOwnUserAfterATouch: the resolver
// built for an entry is its own, and the entry a touch puts in L1 in its
// place gets one of its own too.
func TestEntry_PlaceholdersResolveTheEntrysOwnUserAfterATouch(t *testing.T) {
	clk := clock.NewFake()
	st := &countingStore{Store: memory.New(clk.Now)}
	var built []*identity.User
	m, err := session.NewManager(st, session.Config{TTL: 12 * time.Hour, Idle: 2 * time.Hour, CacheMaxBytes: 1 << 20, Now: clk.Now,
		Placeholders: func(u *identity.User) func(string) (any, bool) {
			built = append(built, u)
			return func(key string) (any, bool) { return u, key == "user" }
		}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	s := create(t, m)
	e, err := m.Lookup(context.Background(), s.ID, "", "courses")
	if err != nil {
		t.Fatal(err)
	}
	if v, ok := e.Placeholders("user"); !ok || v != &e.User || built[len(built)-1] != &e.User {
		t.Fatalf("a new entry resolves its user to %p, %v, not %p", v, ok, &e.User)
	}
	clk.Advance(90 * time.Minute)
	touched, err := m.Lookup(context.Background(), s.ID, "", "courses")
	if err != nil {
		t.Fatal(err)
	}
	if st.touches != 1 || touched == e || built[len(built)-1] != &touched.User {
		t.Fatalf("after %d touches, the resolver was last built over %p, not the new entry's user %p", st.touches, built[len(built)-1], &touched.User)
	}
	if v, ok := touched.Placeholders("user"); !ok || v != &touched.User {
		t.Fatalf("the touched entry resolves its user to %p, %v, not its own %p", v, ok, &touched.User)
	}
	// Read again from the store, after L1 forgot it: a resolver of its own.
	m.Forget(s.ID)
	again, err := m.Lookup(context.Background(), s.ID, "", "courses")
	if err != nil {
		t.Fatal(err)
	}
	if v, ok := again.Placeholders("user"); !ok || again == touched || v != &again.User {
		t.Fatalf("the entry read from the store resolves its user to %p, %v, not its own %p", v, ok, &again.User)
	}
}

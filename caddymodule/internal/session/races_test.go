package session_test

import (
	"context"
	"errors"
	"runtime"
	"testing"
	"time"
	"weak"

	"github.com/portalgate/portalgate/caddymodule/internal/session"
	"github.com/portalgate/portalgate/caddymodule/internal/store"
	"github.com/portalgate/portalgate/caddymodule/internal/store/memory"
	"github.com/portalgate/portalgate/caddymodule/internal/store/storetest"
	"github.com/portalgate/portalgate/caddymodule/internal/testkit/clock"
)

// watchStore is a shared store whose subscription the test drives, and
// whose GetSession can be paused after it has read.
type watchStore struct {
	store.Store
	synced chan func(bool)
	pause  chan chan struct{}
	read   chan struct{}
}

// Shared says other instances share the store, so the manager watches it.
func (w *watchStore) Shared() bool { return true }

func (w *watchStore) Watch(ctx context.Context, _ func(...string), synced func(bool)) {
	w.synced <- synced
	<-ctx.Done()
}

func (w *watchStore) GetSession(ctx context.Context, id string) (*store.Session, error) {
	s, err := w.Store.GetSession(ctx, id)
	select {
	case resume := <-w.pause:
		w.read <- struct{}{}
		<-resume
	default:
	}
	return s, err
}

// A lookup that read the store while L1 was untrusted, and writes L1 after
// the resubscription reset it, leaves a session in L1 that was ended in
// between (its end announced while the subscription was down).
func TestWatch_AReadBeforeAResyncDoesNotRefillL1(t *testing.T) {
	clk := clock.NewFake()
	ws := &watchStore{Store: memory.New(clk.Now), synced: make(chan func(bool), 1), pause: make(chan chan struct{}, 1), read: make(chan struct{}, 1)}
	m := managerOn(t, ws, clk)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	m.Watch(ctx)
	synced := <-ws.synced // untrusted: subscription not up yet

	s, err := m.Create(ctx, ada, "", "courses", nil, "l")
	if err != nil {
		t.Fatal(err)
	}
	m.Wait()
	resume := make(chan struct{})
	ws.pause <- resume
	done := make(chan error)
	go func() { _, err := m.Lookup(ctx, s.ID, "", "courses"); done <- err }()
	<-ws.read // the lookup has read the live session
	// Another instance ends it; the announcement is lost (subscription down).
	if err := ws.DeleteSession(ctx, s.ID); err != nil {
		t.Fatal(err)
	}
	synced(true) // subscription back: L1 cleared, trusted
	close(resume)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	m.Wait()
	if _, err := m.Lookup(ctx, s.ID, "", "courses"); err == nil {
		t.Fatal("an ended session is served from L1 after the resync")
	}
}

// racyStore: right after a redemption is stored, another instance revokes
// the user; the announcement reaches this instance before Redeem returns.
type racyStore struct {
	store.Store
	forget    func(...string)
	synced    chan func(bool)
	forgotten chan struct{}
}

// Shared says other instances share the store, so the manager watches it.
func (r *racyStore) Shared() bool { return true }

func (r *racyStore) Watch(ctx context.Context, forget func(...string), synced func(bool)) {
	r.forget = forget
	r.synced <- synced
	<-ctx.Done()
}

func (r *racyStore) Redeem(ctx context.Context, l store.Spend, s *store.Session) (store.Grant, error) {
	g, err := r.Store.Redeem(ctx, l, s)
	if err != nil {
		return g, err
	}
	ids, _ := r.RevokeUser(ctx, s.User.ID, time.Now(), time.Now().Add(time.Hour))
	// The pub/sub message arrives on the watcher's goroutine at once.
	go func() { r.forget(ids...); close(r.forgotten) }()
	return g, nil
}

func TestRedeem_RevocationRacingARedemptionHoldsInL1(t *testing.T) {
	clk := clock.NewFake()
	rs := &racyStore{Store: memory.New(clk.Now), synced: make(chan func(bool), 1), forgotten: make(chan struct{})}
	m := managerOn(t, rs, clk)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	m.Watch(ctx)
	(<-rs.synced)(true)
	l := storetest.PutLink(t, rs, "l1", ada, 1, clk.Now().Add(-time.Second), clk.Now().Add(time.Hour))
	s, _, err := m.Redeem(ctx, l, "", "courses")
	if err != nil {
		t.Fatal(err)
	}
	<-rs.forgotten
	m.Wait()
	if _, err := rs.GetSession(ctx, s.ID); err == nil {
		t.Fatal("setup: session should be gone from the store")
	}
	if _, err := m.Lookup(ctx, s.ID, "", "courses"); err == nil {
		t.Fatal("a session revoked (and announced) during its redemption is served from L1")
	}
}

// Caddy can keep an old config reachable after a reload (reverse_proxy
// traffic does, in v2.11): Close must let L1's memory go even then.
func TestClose_ReleasesTheCacheWhileTheManagerIsStillHeld(t *testing.T) {
	m, _, _ := newManager(t)
	cache := weak.Make(session.L1(m))
	m.Close()
	runtime.GC()
	if cache.Value() != nil {
		t.Fatal("a closed manager still holds its cache")
	}
	// A request still running on the old config misses L1 and reads the store.
	if _, err := m.Lookup(context.Background(), "no-such-session", "", "courses"); !errors.Is(err, session.ErrNoSession) {
		t.Fatalf("lookup on a closed manager: %v", err)
	}
	runtime.KeepAlive(m)
}

// slowRead is a store whose read of one session hangs until released: a
// stalled Redis.
type slowRead struct {
	store.Store
	slow    string
	entered chan struct{}
	release chan struct{}
	// answers: the slow read answers what it read before it hung, instead
	// of failing.
	answers bool
}

func (s *slowRead) GetSession(ctx context.Context, id string) (*store.Session, error) {
	got, err := s.Store.GetSession(ctx, id)
	if id == s.slow {
		s.entered <- struct{}{}
		<-s.release
		if !s.answers {
			return nil, errors.New("i/o timeout")
		}
	}
	return got, err
}

// Lookups held a lock across the store's round trip: behind a stalled
// read, every session sharing its lock waited, and one session's parallel
// requests failed one after another. A slow read now holds up only the
// lookups of its own session, which share it.
func TestLookup_SlowStoreReadHoldsUpNoOtherSession(t *testing.T) {
	clk := clock.NewFake()
	mem := memory.New(clk.Now)
	clk.Advance(time.Second)
	put := func(id string) {
		t.Helper()
		now := clk.Now()
		if err := mem.CreateSession(context.Background(), &store.Session{ID: id, User: ada, App: "courses",
			CreatedAt: now, ExpiresAt: now.Add(time.Hour), IdleAt: now.Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
	}
	slow, err := session.NewID()
	if err != nil {
		t.Fatal(err)
	}
	st := &slowRead{Store: mem, slow: slow, entered: make(chan struct{}, 3), release: make(chan struct{})}
	m := managerOn(t, st, clk)
	put(slow)
	// Another session ordered by the same stripe as the slow one.
	var other string
	for other == "" || !m.SameStripe(slow, other) {
		if other, err = session.NewID(); err != nil {
			t.Fatal(err)
		}
	}
	put(other)

	failed := make(chan error, 3)
	for range 3 {
		go func() {
			_, err := m.Lookup(context.Background(), slow, "", "courses")
			failed <- err
		}()
	}
	<-st.entered
	if _, err := m.Lookup(context.Background(), other, "", "courses"); err != nil {
		t.Fatalf("the other session, while the slow read hangs: %v", err)
	}
	close(st.release)
	for range 3 {
		if err := <-failed; err == nil {
			t.Fatal("a lookup of the stalled session succeeded")
		}
	}
}

// A lookup that begins after a logout must not take the answer of a read
// that began before it (the session as it was): it reads again.
func TestLookup_AfterALogoutNeverTakesAReadFromBeforeIt(t *testing.T) {
	clk := clock.NewFake()
	mem := memory.New(clk.Now)
	clk.Advance(time.Second)
	id, err := session.NewID()
	if err != nil {
		t.Fatal(err)
	}
	now := clk.Now()
	if err := mem.CreateSession(context.Background(), &store.Session{ID: id, User: ada, App: "courses",
		CreatedAt: now, ExpiresAt: now.Add(time.Hour), IdleAt: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	st := &slowRead{Store: mem, slow: id, entered: make(chan struct{}, 8), release: make(chan struct{}), answers: true}
	m := managerOn(t, st, clk)
	before := make(chan error, 1)
	go func() {
		_, err := m.Lookup(context.Background(), id, "", "courses")
		before <- err
	}()
	<-st.entered // the read has the session and hangs
	if err := m.End(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	after := make(chan error, 1)
	go func() {
		_, err := m.Lookup(context.Background(), id, "", "courses")
		after <- err
	}()
	close(st.release)
	if err := <-after; !errors.Is(err, session.ErrNoSession) {
		t.Fatalf("a lookup after the logout = %v, want ErrNoSession", err)
	}
	if err := <-before; err != nil && !errors.Is(err, session.ErrNoSession) {
		t.Fatalf("the lookup that began before the logout: %v", err)
	}
	m.Wait()
	if _, err := m.Lookup(context.Background(), id, "", "courses"); !errors.Is(err, session.ErrNoSession) {
		t.Fatalf("the ended session came back into L1: %v", err)
	}
}

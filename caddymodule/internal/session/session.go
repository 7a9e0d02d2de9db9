// Package session creates, finds and ends sessions: the store is the authority
// and a ristretto cache (L1) in front of it serves the hot path.
package session

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"hash/maphash"
	"slices"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/dgraph-io/ristretto/v2"
	"golang.org/x/sync/singleflight"

	"github.com/portalgate/portalgate/caddymodule/internal/identity"
	"github.com/portalgate/portalgate/caddymodule/internal/store"
)

// ErrNoSession means the request carries no valid session for this app.
var ErrNoSession = errors.New("no valid session")

// IDLen is the length of an encoded session id: 32 random bytes, base64url.
const IDLen = 43

// Config sets the lifetimes and the L1 budget.
type Config struct {
	// TTL is the absolute lifetime of a session.
	TTL time.Duration
	// Idle ends a session that has not been used for this long.
	Idle time.Duration
	// CacheMaxBytes bounds the L1 cache.
	CacheMaxBytes int64
	// Now is the clock.
	Now func() time.Time
	// Placeholders, when set, builds for a session's user what resolves
	// the server's placeholders of that user (Caddy's {http.auth.user.*}):
	// once for each entry L1 keeps, so a request that hands the user on
	// allocates nothing for it (Entry.Placeholders).
	Placeholders func(*identity.User) func(key string) (any, bool)
}

// Manager is the session lifecycle over a store with an L1 cache.
type Manager struct {
	store store.Sessions
	// cache is L1; Close drops it, so an old config that something still
	// holds after a reload does not keep L1's memory (tens of MB) alive.
	cache atomic.Pointer[ristretto.Cache[string, *Entry]]
	cfg   Config
	// slide is how stale an idle deadline may get before it is written back:
	// sliding expiry costs a store write at most this often per session.
	slide time.Duration
	// trusted is false while a shared store cannot tell us which sessions
	// other instances ended: then every lookup reads the store.
	trusted atomic.Bool
	// stripes order, per session id, a store read and its L1 write
	// against an end and its L1 delete, so an ended session is never put
	// back into L1 by a lookup that read it just before it ended; no lock
	// is held across a store round trip.
	stripes [64]stripe
	seed    maphash.Seed
	// loads shares one store read among the concurrent lookups of one
	// session that L1 misses: behind a slow store they wait for one round
	// trip together instead of one after another.
	loads singleflight.Group
	// hits and misses count lookups served by L1 and by the store.
	hits, misses atomic.Uint64
	// gen changes whenever L1 is reset; a store read started before a reset
	// must not write L1 after it (it may hold a session ended meanwhile).
	gen atomic.Uint64
	// stopWatch ends the watch and waits for it.
	stopWatch func()
}

// L1Bytes is what the L1 cache holds, as ristretto accounts it (each
// entry's Cost plus ristretto's own per-entry bookkeeping).
func (m *Manager) L1Bytes() int64 { return m.l1().MaxCost() - m.l1().RemainingCost() }

// Stats returns how many lookups L1 served and how many read the store.
func (m *Manager) Stats() (hits, misses uint64) { return m.hits.Load(), m.misses.Load() }

// stripe orders the reads and ends of the session ids that hash to it. An
// end moves its version (and deletes from L1) under its mutex; a read
// notes the version before it asks the store and writes L1 only if the
// version has not moved since. The mutex is held for an L1 call, never for
// a store round trip.
type stripe struct {
	mu      sync.Mutex
	version uint64
}

func (m *Manager) stripe(id string) *stripe {
	return &m.stripes[maphash.String(m.seed, id)%uint64(len(m.stripes))]
}

// reading is the version a store read of id starts at, and L1's
// generation: remember takes both.
func (m *Manager) reading(id string) (seen, gen uint64) {
	st := m.stripe(id)
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.version, m.gen.Load()
}

// remember puts what a store read found into L1, unless the session may
// have ended since the read began: an end of it moved its stripe's version,
// or L1 was reset (gen; an end the reset dropped) or is untrusted.
func (m *Manager) remember(id string, e *Entry, now time.Time, seen, gen uint64) {
	st := m.stripe(id)
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.version != seen || !m.trusted.Load() || m.gen.Load() != gen {
		return
	}
	if ttl := e.Deadline().Sub(now); ttl > 0 {
		m.l1().SetWithTTL(id, e, Cost(e), ttl)
	}
}

// drop deletes id from L1 and moves its stripe's version, so that no read
// begun before puts it back.
func (m *Manager) drop(id string) {
	st := m.stripe(id)
	st.mu.Lock()
	defer st.mu.Unlock()
	st.version++
	m.l1().Del(id)
}

// NewManager returns a manager over st. Close releases its cache.
func NewManager(st store.Sessions, cfg Config) (*Manager, error) {
	if cfg.TTL <= 0 || cfg.Idle <= 0 {
		return nil, errors.New("session ttl and idle timeout must be positive")
	}
	if cfg.CacheMaxBytes <= 0 {
		return nil, errors.New("session cache size must be positive")
	}
	cache, err := ristretto.NewCache(&ristretto.Config[string, *Entry]{
		// Ristretto's guidance: ten counters per item the cache may hold,
		// up to maxCounters. The counters are allocated at once (two bytes
		// each), the entries only as sessions come: a cache of 8 GiB cost
		// 3.2 GB before its first session.
		NumCounters: min(max(cfg.CacheMaxBytes/costFloor*10, 1000), maxCounters),
		MaxCost:     cfg.CacheMaxBytes,
		BufferItems: 64,
	})
	if err != nil {
		return nil, fmt.Errorf("creating session cache: %w", err)
	}
	m := &Manager{store: st, cfg: cfg, slide: min(time.Minute, cfg.Idle/2), seed: maphash.MakeSeed()}
	m.cache.Store(cache)
	m.trusted.Store(!st.Shared())
	return m, nil
}

// Watch keeps L1 in step with a store shared by several instances: sessions
// ended elsewhere are dropped, and while the store cannot vouch for that,
// L1 is cleared and bypassed. It returns at once for a store of one instance.
func (m *Manager) Watch(ctx context.Context) {
	if !m.store.Shared() {
		return
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	m.stopWatch = func() { cancel(); <-done }
	go func() {
		defer close(done)
		m.store.Watch(ctx, m.Forget, func(ok bool) {
			m.trusted.Store(false)
			m.gen.Add(1)
			m.l1().Clear()
			m.trusted.Store(ok)
		})
	}()
}

// Close stops the watch and releases the cache. The store belongs to the
// caller.
func (m *Manager) Close() {
	if m.stopWatch != nil {
		m.stopWatch()
	}
	m.cache.Swap(nil).Close()
}

// l1 is the cache, or nil once the manager is closed (ristretto's methods
// treat a nil cache as an empty one).
func (m *Manager) l1() *ristretto.Cache[string, *Entry] { return m.cache.Load() }

// Create starts a session for user in app of tenant, with a new random
// id.
func (m *Manager) Create(ctx context.Context, user identity.User, tenant, app string, apps []string, linkID string) (*store.Session, error) {
	s, err := m.newSession(user, tenant, app, apps, linkID, "")
	if err != nil {
		return nil, err
	}
	seen, gen := m.reading(s.ID)
	if err := m.store.CreateSession(ctx, s); err != nil {
		return nil, err
	}
	m.remember(s.ID, m.entryOf(s), s.CreatedAt, seen, gen)
	return s, nil
}

// Redeem spends one of a link's uses and starts the session it grants on
// app of tenant, in one atomic store step, and returns the session and the grant. It
// returns store.ErrLinkUsed, store.ErrLinkRevoked, store.ErrLinkExpired or
// store.ErrLinkBeforeStore when the link may not be used (the grant comes
// back with the first two).
func (m *Manager) Redeem(ctx context.Context, l store.Spend, tenant, app string) (*store.Session, store.Grant, error) {
	s, err := m.newSession(identity.User{}, tenant, app, nil, l.ID, "")
	if err != nil {
		return nil, store.Grant{}, err
	}
	// An end announced before L1 is written (a revocation racing the
	// redemption) keeps it out of L1.
	seen, gen := m.reading(s.ID)
	g, err := m.store.Redeem(ctx, l, s)
	switch {
	case errors.Is(err, store.ErrOutcomeUnknown):
		return nil, g, &Unsettled{SessionID: s.ID, Err: err}
	case err != nil:
		return nil, g, err
	}
	m.remember(s.ID, m.entryOf(s), s.CreatedAt, seen, gen)
	return s, g, nil
}

// Unsettled is a redemption whose outcome the store did not tell (a
// timeout, a lost connection): it may yet have spent the link and started
// the session SessionID, which no one else knows. Whoever holds that id
// holds the session if it did.
type Unsettled struct {
	SessionID string
	Err       error
}

func (u *Unsettled) Error() string { return u.Err.Error() }

func (u *Unsettled) Unwrap() error { return u.Err }

func (m *Manager) newSession(user identity.User, tenant, app string, apps []string, linkID, origin string) (*store.Session, error) {
	id, err := NewID()
	if err != nil {
		return nil, err
	}
	originID, err := NewID()
	if err != nil {
		return nil, err
	}
	now := m.cfg.Now()
	return &store.Session{
		ID:     id,
		User:   user,
		Tenant: tenant,
		App:    app,
		Apps:   apps,
		LinkID: linkID,
		// A link may have many uses, each in its own browser: the origin of
		// a sign-in it begins is this redemption's own, named by a value of
		// its own (never the session's id, which is the browser's secret).
		Origin:    cmp.Or(origin, linkID+"/"+originID),
		CreatedAt: now,
		ExpiresAt: now.Add(m.cfg.TTL),
		IdleAt:    now.Add(m.cfg.Idle),
	}, nil
}

// Entry is a live session as L1 keeps it and Lookup returns it: what a
// gated request needs, compactly (the id is the cache key, not stored; the
// deadlines are Unix nanoseconds). It is shared and must not be modified.
type Entry struct {
	User identity.User
	// Tenant and App are the sub-account and the app the session opens.
	Tenant, App string
	// Apps lists the apps a portal session may launch.
	Apps []string
	// created, expires and idle are when the session began and its
	// absolute and idle deadlines.
	created, expires, idle int64
	// Placeholders resolves the server's placeholders of User, when
	// Config.Placeholders builds it; nil otherwise.
	Placeholders func(key string) (any, bool)
}

// entryOf is the L1 entry of a stored session.
func (m *Manager) entryOf(s *store.Session) *Entry {
	e := &Entry{User: s.User, Tenant: s.Tenant, App: s.App, Apps: s.Apps,
		created: s.CreatedAt.UnixNano(), expires: s.ExpiresAt.UnixNano(), idle: s.IdleAt.UnixNano()}
	m.resolve(e)
	return e
}

// resolve gives e its own Placeholders, over its own User (an entry that
// replaces another must not keep the old one reachable).
func (m *Manager) resolve(e *Entry) {
	if m.cfg.Placeholders != nil {
		e.Placeholders = m.cfg.Placeholders(&e.User)
	}
}

// CreatedAt is when the session began.
func (e *Entry) CreatedAt() time.Time { return time.Unix(0, e.created) }

// Deadline is when the session ends if nothing changes.
func (e *Entry) Deadline() time.Time { return time.Unix(0, e.deadline()) }

// deadline is Deadline in Unix nanoseconds.
func (e *Entry) deadline() int64 { return min(e.expires, e.idle) }

// IdleAt is when the session ends unless it is used again.
func (e *Entry) IdleAt() time.Time { return time.Unix(0, e.idle) }

// Lookup returns the live session id bound to app of tenant, from L1 or
// the store.
func (m *Manager) Lookup(ctx context.Context, id, tenant, app string) (*Entry, error) {
	// Only an id that L1 misses is checked for its shape, before the store
	// sees it: L1 holds none but ids of the right shape.
	if len(id) != IDLen {
		return nil, ErrNoSession
	}
	now := m.cfg.Now()
	at := now.UnixNano()
	var s *Entry
	ok := false
	if m.trusted.Load() {
		s, ok = m.l1().Get(id)
		if ok && at >= s.deadline() {
			// Stale here, perhaps extended by another instance: ask the store.
			m.l1().Del(id)
			ok = false
		}
	}
	if ok {
		m.hits.Add(1)
	} else {
		if !ValidID(id) {
			return nil, ErrNoSession
		}
		m.misses.Add(1)
		var err error
		if s, err = m.load(ctx, id, now); err != nil {
			return nil, err
		}
	}
	if at >= s.deadline() {
		m.l1().Del(id)
		return nil, ErrNoSession
	}
	// A session opens only the app it was created for: a cookie copied from
	// one app's host to another's, or to another tenant's, is worthless.
	if s.App != app || s.Tenant != tenant {
		return nil, ErrNoSession
	}
	// Time since the last touch (the idle deadline less the idle timeout).
	if at-(s.idle-int64(m.cfg.Idle)) >= int64(m.slide) {
		return m.touch(ctx, id, s, now)
	}
	return s, nil
}

// load reads a session from the store into L1.
//
// Concurrent loads of one id share one read, which no request's end
// cancels: it is bounded by the store's own timeouts.
//
// A lookup that joins a read begun before an end of the session (a logout
// while the read was on its way) does not take its answer: it reads again.
func (m *Manager) load(ctx context.Context, id string, now time.Time) (*Entry, error) {
	seen, _ := m.reading(id)
	v, err, shared := m.loads.Do(id, func() (any, error) { return m.read(ctx, id, now) })
	if shared {
		if again, _ := m.reading(id); again != seen {
			v, err = m.read(ctx, id, now)
		}
	}
	if err != nil {
		return nil, err
	}
	return v.(*Entry), nil
}

// read reads a session from the store into L1, unless it ended meanwhile.
func (m *Manager) read(ctx context.Context, id string, now time.Time) (*Entry, error) {
	seen, gen := m.reading(id)
	s, err := m.store.GetSession(context.WithoutCancel(ctx), id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, ErrNoSession
	}
	if err != nil {
		return nil, fmt.Errorf("reading session: %w", err)
	}
	e := m.entryOf(s)
	m.remember(id, e, now, seen, gen)
	return e, nil
}

// touch slides the idle deadline; the cached value is replaced, never
// changed in place, because readers share it.
func (m *Manager) touch(ctx context.Context, id string, s *Entry, now time.Time) (*Entry, error) {
	seen, gen := m.reading(id)
	next := *s
	m.resolve(&next)
	idleAt := now.Add(m.cfg.Idle)
	next.idle = idleAt.UnixNano()
	err := m.store.TouchSession(ctx, id, idleAt)
	if errors.Is(err, store.ErrNotFound) {
		// Ended elsewhere (another instance, a revocation) since it was cached.
		m.drop(id)
		return nil, ErrNoSession
	}
	if err != nil {
		return nil, fmt.Errorf("extending session: %w", err)
	}
	m.remember(id, &next, now, seen, gen)
	return &next, nil
}

// End deletes a session from the store and L1.
func (m *Manager) End(ctx context.Context, id string) error {
	if !ValidID(id) {
		return nil
	}
	m.drop(id)
	err := m.store.DeleteSession(ctx, id)
	// Again once it is gone from the store: a read that began between the
	// two drops may have found it there.
	m.drop(id)
	if err != nil {
		return fmt.Errorf("ending session: %w", err)
	}
	return nil
}

// Session reads a live session from the store, with all it holds.
func (m *Manager) Session(ctx context.Context, id string) (*store.Session, error) {
	if !ValidID(id) {
		return nil, ErrNoSession
	}
	s, err := m.store.GetSession(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, ErrNoSession
	}
	return s, err
}

// EndWhere ends the live sessions of a user that match, L1 included, and
// returns how many it ended. On an error it has ended some, maybe not all.
func (m *Manager) EndWhere(ctx context.Context, userID string, match func(*store.Session) bool) (int, error) {
	all, err := m.store.UserSessions(ctx, userID)
	if err != nil {
		return 0, fmt.Errorf("listing a user's sessions: %w", err)
	}
	return m.endEach(ctx, slices.DeleteFunc(all, func(s store.Session) bool { return !match(&s) }))
}

// Trim ends the oldest sessions of s's user on s's app beyond the newest
// keep, s counted among them and never ended.
func (m *Manager) Trim(ctx context.Context, s *store.Session, keep int) (int, error) {
	all, err := m.store.UserSessions(ctx, s.User.ID)
	if err != nil {
		return 0, fmt.Errorf("listing a user's sessions: %w", err)
	}
	others := slices.DeleteFunc(all, func(o store.Session) bool { return o.App != s.App || o.ID == s.ID })
	keep = max(keep-1, 0) // s itself
	if len(others) <= keep {
		return 0, nil
	}
	slices.SortFunc(others, func(a, b store.Session) int { return b.CreatedAt.Compare(a.CreatedAt) })
	return m.endEach(ctx, others[keep:])
}

// endEach ends sessions in order, and returns how many it ended.
func (m *Manager) endEach(ctx context.Context, ss []store.Session) (int, error) {
	for i, s := range ss {
		if err := m.End(ctx, s.ID); err != nil {
			return i, err
		}
	}
	return len(ss), nil
}

// RevokeUser ends every session of a user at once, L1 included, and refuses
// the user's links issued until now; the refusal is kept until `until`, when
// every such link has expired anyway. It returns how many sessions ended.
func (m *Manager) RevokeUser(ctx context.Context, userID string, until time.Time) (int, error) {
	ids, err := m.store.RevokeUser(ctx, userID, m.cfg.Now(), until)
	m.Forget(ids...)
	if err != nil {
		return len(ids), fmt.Errorf("revoking a user: %w", err)
	}
	return len(ids), nil
}

// Forget drops sessions from L1 only (another instance ended them).
func (m *Manager) Forget(ids ...string) {
	for _, id := range ids {
		m.drop(id)
	}
}

// Wait blocks until buffered L1 writes are applied (tests, benchmarks).
func (m *Manager) Wait() { m.l1().Wait() }

// maxCounters bounds the admission counters of L1: ten per session for a
// million and a half sessions (about 32 MiB); a bigger cache still holds
// more, with admission a little less sharp.
const maxCounters = 1 << 24

// costFloor is the smallest cost an entry can have: the struct itself.
const costFloor = int64(unsafe.Sizeof(Entry{}))

// placeholdersCost is what an entry's Placeholders takes: a closure over
// its User.
const placeholdersCost = 16

// Cost is an entry's size in bytes as the L1 budget counts it: the struct
// and every string it points to (ristretto adds its own bookkeeping).
func Cost(e *Entry) int64 {
	u := &e.User
	n := costFloor + int64(len(u.ID)+len(u.Email)+len(u.Name)+len(u.Type)+len(u.Location)+len(e.Tenant)+len(e.App))
	if e.Placeholders != nil {
		n += placeholdersCost
	}
	for _, a := range e.Apps {
		n += int64(unsafe.Sizeof(a)) + int64(len(a))
	}
	return n
}

// NewID returns a new random session id: 256 bits, base64url.
func NewID() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("reading random bytes: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b[:]), nil
}

// ValidID reports whether id has the shape of a session id, so garbage from
// a cookie never reaches the store.
func ValidID(id string) bool {
	if len(id) != IDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		alnum := 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
		if !alnum && c != '-' && c != '_' {
			return false
		}
	}
	return true
}

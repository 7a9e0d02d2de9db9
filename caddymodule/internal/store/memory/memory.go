// Package memory is a Store kept in process memory: fast, shared across config
// reloads, lost on restart. For tests and single-instance trials.
package memory

import (
	"context"
	"sync"
	"time"

	"github.com/portalgate/portalgate/caddymodule/internal/store"
)

type linkUse struct {
	count   int
	expires time.Time
}

// Store is an in-memory store.Store.
type Store struct {
	now      func() time.Time
	mu       sync.Mutex
	sessions map[string]store.Session
	byUser   map[string]map[string]struct{}
	links    map[string]linkUse
}

// New returns an empty store reading time from now.
func New(now func() time.Time) *Store {
	return &Store{
		now:      now,
		sessions: make(map[string]store.Session),
		byUser:   make(map[string]map[string]struct{}),
		links:    make(map[string]linkUse),
	}
}

// ConsumeLink implements store.Store.
func (m *Store) ConsumeLink(_ context.Context, id string, uses int, expires time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.consumeLocked(id, uses, expires)
}

// Redeem implements store.Store.
func (m *Store) Redeem(_ context.Context, id string, uses int, expires time.Time, s *store.Session) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.consumeLocked(id, uses, expires); err != nil {
		return err
	}
	m.createLocked(s)
	return nil
}

func (m *Store) consumeLocked(id string, uses int, expires time.Time) error {
	u, ok := m.links[id]
	if ok && !m.now().Before(u.expires) {
		ok = false
	}
	if !ok {
		u = linkUse{expires: expires}
	}
	if u.count >= uses {
		return store.ErrLinkUsed
	}
	u.count++
	m.links[id] = u
	return nil
}

// CreateSession implements store.Store.
func (m *Store) CreateSession(_ context.Context, s *store.Session) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.createLocked(s)
	return nil
}

func (m *Store) createLocked(s *store.Session) {
	m.sessions[s.ID] = cloneSession(s)
	ids := m.byUser[s.User.ID]
	if ids == nil {
		ids = make(map[string]struct{})
		m.byUser[s.User.ID] = ids
	}
	ids[s.ID] = struct{}{}
}

// GetSession implements store.Store.
func (m *Store) GetSession(_ context.Context, id string) (*store.Session, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.sessions[id]
	if !ok || !m.now().Before(s.Deadline()) {
		return nil, store.ErrNotFound
	}
	c := cloneSession(&s)
	return &c, nil
}

// TouchSession implements store.Store.
func (m *Store) TouchSession(_ context.Context, id string, idleAt time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.sessions[id]
	if !ok || !m.now().Before(s.Deadline()) {
		return store.ErrNotFound
	}
	s.IdleAt = idleAt
	m.sessions[id] = s
	return nil
}

// DeleteSession implements store.Store.
func (m *Store) DeleteSession(_ context.Context, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.deleteLocked(id)
	return nil
}

func (m *Store) deleteLocked(id string) {
	s, ok := m.sessions[id]
	if !ok {
		return
	}
	delete(m.sessions, id)
	if ids := m.byUser[s.User.ID]; ids != nil {
		delete(ids, id)
		if len(ids) == 0 {
			delete(m.byUser, s.User.ID)
		}
	}
}

// DeleteUserSessions implements store.Store.
func (m *Store) DeleteUserSessions(_ context.Context, userID string) ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []string
	for id := range m.byUser[userID] {
		out = append(out, id)
	}
	for _, id := range out {
		m.deleteLocked(id)
	}
	return out, nil
}

// Purge implements store.Store.
func (m *Store) Purge(context.Context) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now, n := m.now(), 0
	for id, s := range m.sessions {
		if !now.Before(s.Deadline()) {
			m.deleteLocked(id)
			n++
		}
	}
	for id, u := range m.links {
		if !now.Before(u.expires) {
			delete(m.links, id)
			n++
		}
	}
	return n, nil
}

// Close implements store.Store.
func (m *Store) Close() error { return nil }

// cloneSession copies s so callers never share the slice the store keeps.
func cloneSession(s *store.Session) store.Session {
	c := *s
	c.Apps = append([]string(nil), s.Apps...)
	return c
}

var _ store.Store = (*Store)(nil)

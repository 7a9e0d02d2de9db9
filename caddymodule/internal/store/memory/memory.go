// Package memory is a Store kept in process memory: fast, shared across config
// reloads, lost on restart. For tests and single-instance trials.
package memory

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/portalgate/portalgate/caddymodule/internal/store"
)

// link is a link's grant and its uses so far.
type link struct {
	store.Grant
	count   int
	revoked bool
}

type cutoff struct{ at, until time.Time }

// Store is an in-memory store.Store.
type Store struct {
	store.Local
	store.Scan
	now      func() time.Time
	mu       sync.Mutex
	sessions map[string]store.Session
	byUser   map[string]map[string]struct{}
	links    map[string]*link
	cutoffs  map[string]cutoff

	contacts map[string]store.Contact
	// byEmail indexes the contacts' ids by AddressKey of their e-mail.
	byEmail map[string]map[string]struct{}
	holders map[string]store.Holder
	// records are the minted links, oldest first.
	records []store.LinkRecord
	menus   map[string]store.Menu
	tenants map[string]store.Tenant
	// tenantsChanged counts the changes of tenants.
	tenantsChanged int64

	// signIns are the sign-ins by browser, lastSignIn each address's last.
	signIns    map[string]*signIn
	lastSignIn map[string]addressSignIn
	// codeFailures are the wrong codes typed per address.
	codeFailures map[string]failures
}

// failures is a count kept until a time.
type failures struct {
	n     int
	until time.Time
}

// signIn is a live sign-in and the tries of its code so far.
type signIn struct {
	store.SignIn
	tries int
}

// addressSignIn is an address's last sign-in: its browser and link.
type addressSignIn struct {
	browser, link string
	expires       time.Time
}

// New returns an empty store reading time from now.
func New(now func() time.Time) *Store {
	m := &Store{
		now:      now,
		sessions: make(map[string]store.Session),
		byUser:   make(map[string]map[string]struct{}),
		links:    make(map[string]*link),
		cutoffs:  make(map[string]cutoff),
		contacts: make(map[string]store.Contact),
		byEmail:  make(map[string]map[string]struct{}),
		holders:  make(map[string]store.Holder),
		menus:    make(map[string]store.Menu),
		tenants:  make(map[string]store.Tenant),

		signIns:      make(map[string]*signIn),
		lastSignIn:   make(map[string]addressSignIn),
		codeFailures: make(map[string]failures),
	}
	m.Scan = store.Scan{Scanner: m}
	return m
}

// PutLink implements store.Store.
func (m *Store) PutLink(_ context.Context, g store.Grant) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	g.Apps = slices.Clone(g.Apps)
	m.links[g.ID] = &link{Grant: g}
	return nil
}

// grantLocked is the live grant of link id, or nil.
func (m *Store) grantLocked(id string, now time.Time) *link {
	l := m.links[id]
	if l == nil || !now.Before(l.Expires) {
		return nil
	}
	return l
}

// Redeem implements store.Store.
func (m *Store) Redeem(_ context.Context, sp store.Spend, s *store.Session) (store.Grant, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	if !now.Before(sp.Expires) {
		return store.Grant{}, store.ErrLinkExpired
	}
	l := m.grantLocked(sp.ID, now)
	if l == nil || l.User.ID != sp.UserID || l.App != s.App {
		return store.Grant{}, store.ErrLinkBeforeStore
	}
	g := l.Grant
	g.Apps = slices.Clone(g.Apps)
	switch {
	case m.cutOffLocked(l.User.ID, l.IssuedAt, now) || l.revoked:
		return g, store.ErrLinkRevoked
	case l.count >= l.Uses:
		return g, store.ErrLinkUsed
	}
	l.count++
	g.Starts(s)
	m.createLocked(s)
	return g, nil
}

// cutOffLocked reports whether a link of userID issued at issued was
// revoked with its user.
func (m *Store) cutOffLocked(userID string, issued, now time.Time) bool {
	c, ok := m.cutoffs[userID]
	return ok && now.Before(c.until) && !issued.After(c.at)
}

// Link implements store.Store.
func (m *Store) Link(_ context.Context, id string) (store.LinkState, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	l := m.grantLocked(id, m.now())
	if l == nil {
		return store.LinkState{}, store.ErrNotFound
	}
	st := store.LinkState{Grant: l.Grant, Spent: l.count, Revoked: l.revoked}
	st.Apps = slices.Clone(st.Apps)
	return st, nil
}

// RevokeLink implements store.Store.
func (m *Store) RevokeLink(_ context.Context, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	l := m.grantLocked(id, m.now())
	if l == nil {
		return store.ErrNotFound
	}
	l.revoked = true
	return nil
}

// RevokeUser implements store.Store.
func (m *Store) RevokeUser(_ context.Context, userID string, at, until time.Time) ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.cutoffs[userID] = cutoff{at: at, until: until}
	var ids []string
	for id := range m.byUser[userID] {
		ids = append(ids, id)
	}
	for _, id := range ids {
		m.deleteLocked(id)
	}
	return ids, nil
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

// UserSessions implements store.Store.
func (m *Store) UserSessions(_ context.Context, userID string) ([]store.Session, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	var out []store.Session
	for id := range m.byUser[userID] {
		if s, ok := m.sessions[id]; ok && now.Before(s.Deadline()) {
			out = append(out, cloneSession(&s))
		}
	}
	return out, nil
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
	for id, l := range m.links {
		if !now.Before(l.Expires) {
			delete(m.links, id)
			n++
		}
	}
	for user, c := range m.cutoffs {
		if !now.Before(c.until) {
			delete(m.cutoffs, user)
			n++
		}
	}
	for b, si := range m.signIns {
		if !now.Before(si.Expires()) {
			delete(m.signIns, b)
			n++
		}
	}
	for a, last := range m.lastSignIn {
		if !now.Before(last.expires) {
			delete(m.lastSignIn, a)
		}
	}
	for a, f := range m.codeFailures {
		if !now.Before(f.until) {
			delete(m.codeFailures, a)
		}
	}
	kept := len(m.records)
	m.records = slices.DeleteFunc(m.records, func(r store.LinkRecord) bool { return !now.Before(r.Keep) })
	n += kept - len(m.records)
	return n, nil
}

// CountSessions returns how many sessions the store holds.
func (m *Store) CountSessions(context.Context) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.sessions), nil
}

// Close implements store.Sessions.
func (m *Store) Close() error { return nil }

// Ping implements store.Sessions: memory is always there.
func (m *Store) Ping(context.Context) error { return nil }

// PutContacts implements store.Directory.
func (m *Store) PutContacts(_ context.Context, cs []store.Contact) error {
	for _, c := range cs {
		if c.ID == "" {
			return errors.New("storing contacts: a contact has no id")
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, c := range cs {
		if h, ok := m.holders[c.ID]; ok && h != store.ContactHolder {
			return fmt.Errorf("storing contact %q: %w", c.ID, store.ErrIDTaken)
		}
	}
	for _, c := range cs {
		if old, ok := m.contacts[c.ID]; ok {
			if ids := m.byEmail[store.AddressKey(old.Email)]; ids != nil {
				delete(ids, c.ID)
			}
		}
		m.contacts[c.ID] = c
		m.holders[c.ID] = store.ContactHolder
		if key := store.AddressKey(c.Email); key != "" {
			if m.byEmail[key] == nil {
				m.byEmail[key] = make(map[string]struct{})
			}
			m.byEmail[key][c.ID] = struct{}{}
		}
	}
	return nil
}

// ContactsByEmail implements store.Directory, from the index.
func (m *Store) ContactsByEmail(_ context.Context, email string) ([]store.Contact, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []store.Contact
	for id := range m.byEmail[store.AddressKey(email)] {
		out = append(out, m.contacts[id])
	}
	slices.SortFunc(out, func(x, y store.Contact) int { return strings.Compare(x.ID, y.ID) })
	return out, nil
}

// ClaimID implements store.Directory.
func (m *Store) ClaimID(_ context.Context, id string, h store.Holder) (store.Holder, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	held, ok := m.holders[id]
	if !ok {
		m.holders[id] = h
		return h, nil
	}
	if held != h {
		return held, store.ErrIDTaken
	}
	return held, nil
}

// Contact implements store.Directory.
func (m *Store) Contact(_ context.Context, id string) (store.Contact, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	c, ok := m.contacts[id]
	if !ok {
		return store.Contact{}, store.ErrNotFound
	}
	return c, nil
}

// ScanContacts implements store.Scanner.
func (m *Store) ScanContacts(context.Context) ([]store.Contact, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	cs := make([]store.Contact, 0, len(m.contacts))
	for _, c := range m.contacts {
		cs = append(cs, c)
	}
	return cs, nil
}

// RecordLink implements store.Directory.
func (m *Store) RecordLink(_ context.Context, r store.LinkRecord) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	r.Spent, r.Revoked = 0, false
	m.records = append(m.records, r)
	if over := len(m.records) - store.MaxLinkRecords; over > 0 {
		m.records = slices.Delete(m.records, 0, over)
	}
	return nil
}

// ScanLinks implements store.Scanner.
func (m *Store) ScanLinks(context.Context) ([]store.LinkRecord, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	var rs []store.LinkRecord
	for _, r := range slices.Backward(m.records) {
		if !now.Before(r.Keep) {
			continue
		}
		// A grant that has expired awaits Purge: it says nothing.
		if l := m.grantLocked(r.ID, now); l != nil {
			r.Spent, r.Revoked = l.count, l.revoked
		}
		if m.cutOffLocked(r.User.ID, r.IssuedAt, now) {
			r.Revoked = true
		}
		rs = append(rs, r)
	}
	return rs, nil
}

// Menu implements store.Directory.
func (m *Store) Menu(_ context.Context, tenant string) (store.Menu, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	menu := m.menus[tenant]
	return store.Menu{Items: cloneItems(menu.Items), Version: menu.Version}, nil
}

// SetMenu implements store.Directory.
func (m *Store) SetMenu(_ context.Context, tenant string, items []store.MenuItem, version int64) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.menus[tenant].Version != version {
		return 0, store.ErrConflict
	}
	m.menus[tenant] = store.Menu{Items: cloneItems(items), Version: version + 1}
	return version + 1, nil
}

// AddTenant implements store.Directory.
func (m *Store) AddTenant(_ context.Context, t store.Tenant) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.tenants[t.ID]; ok {
		return store.ErrConflict
	}
	t.Apps = maps.Clone(t.Apps)
	m.tenants[t.ID] = t
	m.tenantsChanged++
	return nil
}

// ReplaceTenant implements store.Directory.
func (m *Store) ReplaceTenant(_ context.Context, t store.Tenant) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	old, ok := m.tenants[t.ID]
	switch {
	case !ok:
		return store.ErrNotFound
	case !old.Since.Equal(t.Since):
		return store.ErrConflict
	}
	t.Apps = maps.Clone(t.Apps)
	m.tenants[t.ID] = t
	m.tenantsChanged++
	return nil
}

// DeleteTenant implements store.Directory.
func (m *Store) DeleteTenant(_ context.Context, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.tenants[id]; !ok {
		return store.ErrNotFound
	}
	delete(m.tenants, id)
	m.tenantsChanged++
	return nil
}

// Tenants implements store.Directory.
func (m *Store) Tenants(_ context.Context, after string, limit int) ([]store.Tenant, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []store.Tenant
	for _, id := range slices.Sorted(maps.Keys(m.tenants)) {
		if id <= after {
			continue
		}
		if len(out) == store.TenantPage(limit) {
			break
		}
		t := m.tenants[id]
		t.Apps = maps.Clone(t.Apps)
		out = append(out, t)
	}
	return out, nil
}

// TenantsChanged implements store.Directory.
func (m *Store) TenantsChanged(context.Context) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.tenantsChanged, nil
}

// cloneItems copies menu items so callers never share the slices the store
// keeps.
func cloneItems(items []store.MenuItem) []store.MenuItem {
	if items == nil {
		return nil
	}
	c := make([]store.MenuItem, len(items))
	for i, it := range items {
		it.Roles = slices.Clone(it.Roles)
		c[i] = it
	}
	return c
}

// cloneSession copies s so callers never share the slice the store keeps.
func cloneSession(s *store.Session) store.Session {
	c := *s
	c.Apps = append([]string(nil), s.Apps...)
	return c
}

var (
	_ store.Store     = (*Store)(nil)
	_ store.Directory = (*Store)(nil)
)

var _ store.Store = (*Store)(nil)

// PutSignIn implements store.SignIns.
func (m *Store) PutSignIn(_ context.Context, s store.SignIn) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	replaced := ""
	if s.Decoy {
		s.Tries = 0
		m.signIns[s.Browser] = &signIn{SignIn: s}
		return "", nil
	}
	if last, ok := m.lastSignIn[s.Address]; ok && now.Before(last.expires) {
		replaced = last.link
		if cur := m.signIns[last.browser]; cur != nil && cur.Link.ID == last.link {
			delete(m.signIns, last.browser)
		}
	}
	s.Tries = 0
	m.signIns[s.Browser] = &signIn{SignIn: s}
	m.lastSignIn[s.Address] = addressSignIn{browser: s.Browser, link: s.Link.ID, expires: s.Expires()}
	return replaced, nil
}

// TrySignIn implements store.SignIns.
func (m *Store) TrySignIn(_ context.Context, browser string, maxTries int) (store.SignIn, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	cur := m.signIns[browser]
	if cur == nil || !m.now().Before(cur.Expires()) {
		delete(m.signIns, browser)
		return store.SignIn{}, store.ErrNotFound
	}
	cur.tries++
	out := cur.SignIn
	out.Tries = cur.tries
	if cur.tries >= maxTries {
		delete(m.signIns, browser)
	}
	return out, nil
}

// EndSignIn implements store.SignIns.
func (m *Store) EndSignIn(_ context.Context, browser string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.signIns, browser)
	return nil
}

// SetDelivery implements store.Directory.
func (m *Store) SetDelivery(_ context.Context, id, delivery string, _ time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for i := range m.records {
		if m.records[i].ID == id {
			m.records[i].Delivery = delivery
		}
	}
	return nil
}

// AddCodeFailure implements store.SignIns.
func (m *Store) AddCodeFailure(_ context.Context, address string, until time.Time) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	f, ok := m.codeFailures[address]
	if !ok || !m.now().Before(f.until) {
		f = failures{until: until}
	}
	f.n++
	m.codeFailures[address] = f
	return f.n, nil
}

// CodeFailures implements store.SignIns.
func (m *Store) CodeFailures(_ context.Context, address string) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if f, ok := m.codeFailures[address]; ok && m.now().Before(f.until) {
		return f.n, nil
	}
	return 0, nil
}

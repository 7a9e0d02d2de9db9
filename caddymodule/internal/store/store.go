// Package store defines the authoritative state of the gateway: sessions,
// the use counts of links, and the dashboard's directory. Every backend
// (memory, bolt, redis) implements Store and passes the conformance suite in
// storetest.
package store

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/portalgate/portalgate/caddymodule/internal/identity"
)

// ErrNotFound means what was asked for (a session, a link's grant, a
// contact, a record) does not exist, or has ended.
var ErrNotFound = errors.New("not found")

// ErrLinkUsed means every use of a link has been spent.
var ErrLinkUsed = errors.New("link already used")

// ErrLinkRevoked means the link, or every link of its user issued until
// then, was revoked.
var ErrLinkRevoked = errors.New("link revoked")

// ErrLinkExpired means the store's clock has reached the link's end.
var ErrLinkExpired = errors.New("link expired")

// ErrLinkBeforeStore means the store holds no grant of the link: it was
// minted before the store's state began (the store was created, emptied or
// replaced since) or into another store. A link is only ever what its
// grant says, so the store refuses it rather than guess.
var ErrLinkBeforeStore = errors.New("the store holds no grant of the link")

// ErrOutcomeUnknown means a write may or may not have happened: it was sent
// and its answer lost (a timeout, a broken connection), or the replicas did
// not acknowledge it. Whoever holds what it would have created (a session
// id) may find it there later.
var ErrOutcomeUnknown = errors.New("the store's answer was lost")

// Grant is what a link grants, kept by the store from its mint to its end.
// The token in the link's URL names it by ID and its user by id, nothing
// more: who it signs in, where it lands and how often are here, so that no
// e-mail address, name or session id travels in a URL.
type Grant struct {
	ID string `json:"id"`
	// Tenant is the sub-account whose sites the link opens ("" for the
	// default one).
	Tenant string `json:"tenant,omitempty"`
	// App is the app the link signs in to.
	App  string        `json:"app"`
	User identity.User `json:"user"`
	// Path is where the link lands inside App.
	Path string `json:"path"`
	// Uses is how many times the link may be redeemed.
	Uses int `json:"uses"`
	// Apps lists the apps a session it starts may launch.
	Apps []string `json:"apps,omitempty"`
	// Origin, for a link minted for a signed-in browser (a launch), is the
	// origin of the session that asked for it: the session it starts
	// shares it (see Session.Origin).
	Origin   string    `json:"origin,omitempty"`
	IssuedAt time.Time `json:"issued_at"`
	// Expires is the link's end: the last instant at which its token still
	// verifies. The store is the one judge of it: by its own clock, read
	// where the spend is decided, it refuses the link from Expires on and
	// keeps the grant and its uses at least until then, so no use it
	// accepted is forgotten while it would accept another.
	Expires time.Time `json:"expires"`
}

// Starts gives s, the session a redemption of g starts, what it takes from
// g: the user, the apps it may launch, the link and, for a launch, the
// origin.
func (g *Grant) Starts(s *Session) {
	s.User, s.Apps, s.LinkID = g.User, g.Apps, g.ID
	if g.Origin != "" {
		s.Origin = g.Origin
	}
}

// A store that builds a session's JSON where the spend is decided, from
// the grant it holds there (Redis, in its script), joins two pieces that
// encoding/json wrote, without decoding either: the session's own members
// (OwnJSON), then those the grant gives (StartsJSON), then "}". The two
// types below spell those members as Session does.

// startsJSON is what a session takes from its grant, as Session spells it.
type startsJSON struct {
	User   identity.User `json:"user"`
	Apps   []string      `json:"apps,omitempty"`
	LinkID string        `json:"link_id"`
	Origin string        `json:"origin,omitempty"`
}

// ownJSON is what a session has of its own, as Session spells it; its
// origin last, so that the members before it are the session's own without
// one.
type ownJSON struct {
	ID        string    `json:"id"`
	Tenant    string    `json:"tenant,omitempty"`
	App       string    `json:"app"`
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at"`
	IdleAt    time.Time `json:"idle_at"`
	Origin    string    `json:"origin"`
}

// StartsJSON is the members of a session's JSON that g gives it (see
// Starts), without braces.
func (g *Grant) StartsJSON() ([]byte, error) {
	b, err := json.Marshal(startsJSON{User: g.User, Apps: g.Apps, LinkID: g.ID, Origin: g.Origin})
	if err != nil {
		return nil, fmt.Errorf("encoding a grant's session: %w", err)
	}
	return b[1 : len(b)-1], nil
}

// OwnJSON is the opening of s's JSON with the members it has of its own,
// each followed by a comma; its origin is the last of them, from byte
// withoutOrigin on, to be left out for a grant that has one.
func (s *Session) OwnJSON() (own []byte, withoutOrigin int, err error) {
	b, err := json.Marshal(ownJSON{ID: s.ID, Tenant: s.Tenant, App: s.App, CreatedAt: s.CreatedAt, ExpiresAt: s.ExpiresAt, IdleAt: s.IdleAt, Origin: s.Origin})
	if err != nil {
		return nil, 0, fmt.Errorf("encoding session: %w", err)
	}
	b[len(b)-1] = ','
	return b, bytes.LastIndex(b, []byte(`"origin":`)), nil
}

// Spend names the link a redemption spends, as its token does.
type Spend struct {
	ID, UserID string
	// Expires is the link's end by its token: the store refuses the link
	// from then on, and tells that from a link it has no grant of.
	Expires time.Time
}

// LinkState is a link's grant and what became of it.
type LinkState struct {
	Grant
	Spent   int
	Revoked bool
}

// Session is a signed-in user's state, bound to one app.
type Session struct {
	ID   string        `json:"id"`
	User identity.User `json:"user"`
	// Tenant is the sub-account whose app the session opens ("" for the
	// default one), App that app: it opens nothing else.
	Tenant string `json:"tenant,omitempty"`
	App    string `json:"app"`
	// Apps lists the apps this session may launch (portal sessions).
	Apps []string `json:"apps,omitempty"`
	// LinkID is the id of the link that created the session.
	LinkID string `json:"link_id,omitempty"`
	// Origin is the link that began this browser's sign-in: LinkID, or for
	// a session launched from the portal's, that session's Origin. A
	// sign-out or a revoked link ends every session of one origin.
	Origin    string    `json:"origin,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	// ExpiresAt is the absolute end of the session.
	ExpiresAt time.Time `json:"expires_at"`
	// IdleAt is when the session ends unless it is used again.
	IdleAt time.Time `json:"idle_at"`
}

// DecodeSession reads a session a store kept as JSON, and reports
// ErrNotFound when its deadline has passed by now.
func DecodeSession(v []byte, now time.Time) (*Session, error) {
	var s Session
	if err := json.Unmarshal(v, &s); err != nil {
		return nil, fmt.Errorf("decoding session: %w", err)
	}
	if !now.Before(s.Deadline()) {
		return nil, ErrNotFound
	}
	return &s, nil
}

// Deadline is when the session ends if nothing changes.
func (s *Session) Deadline() time.Time {
	if s.IdleAt.Before(s.ExpiresAt) {
		return s.IdleAt
	}
	return s.ExpiresAt
}

// Sessions is the authority on sessions, link uses and revocations: what
// a redemption and the gate need, every state change atomic. Implementations
// are safe for concurrent use.
type Sessions interface {
	// PutLink keeps what link g.ID grants, unspent, until g.Expires: a
	// link is minted only once the store holds its grant.
	PutLink(ctx context.Context, g Grant) error
	// Redeem spends one use of link l.ID and stores the session it starts,
	// s, which takes from the link's grant what Grant.Starts gives, as one
	// atomic step: a link is never spent without its session. It returns
	// the grant, and ErrLinkUsed when every use is spent, ErrLinkRevoked
	// when the link or its user was revoked after it was issued,
	// ErrLinkExpired from the link's end on, and ErrLinkBeforeStore when
	// the store holds no grant of the link for l.UserID on s.App (minted
	// before the store's state began, or into another store); then nothing
	// is stored. The grant comes back with ErrLinkUsed and ErrLinkRevoked.
	Redeem(ctx context.Context, l Spend, s *Session) (Grant, error)
	// Link returns the grant of link id and its uses spent so far, while
	// the store keeps it (until the link's end); ErrNotFound after, or for
	// a link it never granted.
	Link(ctx context.Context, id string) (LinkState, error)
	// RevokeLink makes link id unusable; ErrNotFound for a link the store
	// holds no grant of (never granted, or ended: unusable already).
	RevokeLink(ctx context.Context, id string) error
	// RevokeUser deletes every session of a user and refuses their links
	// issued at or before `at`; the refusal is kept until `until`. It
	// returns the ids of the deleted sessions.
	RevokeUser(ctx context.Context, userID string, at, until time.Time) ([]string, error)
	// CreateSession stores a new session (staff access, load tests).
	CreateSession(ctx context.Context, s *Session) error
	// GetSession returns the session with id, or ErrNotFound when it does not
	// exist or its deadline has passed.
	GetSession(ctx context.Context, id string) (*Session, error)
	// TouchSession moves a session's idle deadline; ErrNotFound when it is gone.
	TouchSession(ctx context.Context, id string, idleAt time.Time) error
	// DeleteSession removes a session; deleting a missing one is not an error.
	DeleteSession(ctx context.Context, id string) error
	// UserSessions returns the live sessions of a user, of every app, in no
	// order.
	UserSessions(ctx context.Context, userID string) ([]Session, error)
	// Purge removes expired sessions and link and revocation records,
	// returning how many.
	Purge(ctx context.Context) (int, error)
	// CountSessions returns how many sessions the store holds (live or
	// awaiting purge); errors.ErrUnsupported from a store that cannot count
	// them cheaply.
	CountSessions(ctx context.Context) (int, error)
	// Ping reports whether the store can be reached, for health checks.
	Ping(ctx context.Context) error
	// Shared reports whether other instances share the store: then Watch
	// tells of their changes, and until it has said it is in step, a cache
	// in front of the store must not be trusted.
	Shared() bool
	// Watch reports the ids of sessions ended by any instance (forget), and
	// whether that report is known to be complete (synced). It returns when
	// ctx ends, or at once for a store no other instance shares.
	Watch(ctx context.Context, forget func(ids ...string), synced func(ok bool))
	// Close releases the store's resources.
	Close() error
}

// Store is a backend that keeps it all: the sessions, the directory and
// the sign-ins. Every backend (memory, bolt, redis) is one, and passes
// storetest.
type Store interface {
	Sessions
	Directory
	SignIns
}

// Local is embedded by a store of one instance: nobody else changes it, so
// it has nothing to watch.
type Local struct{}

// Shared implements Sessions: no other instance shares the store.
func (Local) Shared() bool { return false }

// Watch implements Sessions: nothing to report; it returns at once.
func (Local) Watch(context.Context, func(ids ...string), func(ok bool)) {}

// Package store defines the authoritative state of the gateway: sessions,
// the use counts of links, and the dashboard's directory. Every backend
// (memory, bolt, redis) implements Store and passes the conformance suite in
// storetest.
package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/portalgate/portalgate/caddymodule/internal/identity"
)

// ErrNotFound means the session does not exist or has expired.
var ErrNotFound = errors.New("not found")

// ErrLinkUsed means every use of a link has been spent.
var ErrLinkUsed = errors.New("link already used")

// ErrLinkRevoked means the link, or every link of its user issued until
// then, was revoked.
var ErrLinkRevoked = errors.New("link revoked")

// ErrLinkExpired means the store's clock has reached the link's end.
var ErrLinkExpired = errors.New("link expired")

// ErrLinkBeforeStore means the link was issued before the store's state
// began: the store was created, emptied or replaced since, and cannot know
// whether the link was spent, so it refuses it rather than revive it.
var ErrLinkBeforeStore = errors.New("link issued before the store's state began")

// ErrOutcomeUnknown means a write may or may not have happened: it was sent
// and its answer lost (a timeout, a broken connection), or the replicas did
// not acknowledge it. Whoever holds what it would have created (a session
// id) may find it there later.
var ErrOutcomeUnknown = errors.New("the store's answer was lost")

// LinkUse is what the store needs to spend one use of a link.
type LinkUse struct {
	ID     string
	UserID string
	// Uses is how many times the link may be redeemed.
	Uses     int
	IssuedAt time.Time
	// Expires is the link's end: the last instant at which its token still
	// verifies. The store is the one judge of it: by its own clock, read
	// where the spend is decided, it refuses the link from Expires on and
	// remembers its uses at least until then, so no use it accepted is
	// forgotten while it would accept another.
	Expires time.Time
}

// Session is a signed-in user's state, bound to one app.
type Session struct {
	ID   string        `json:"id"`
	User identity.User `json:"user"`
	// App is the app the session was created for; it opens nothing else.
	App string `json:"app"`
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
	// Redeem spends one use of a link and stores the session it starts, as
	// one atomic step: a link is never spent without its session. It returns
	// ErrLinkUsed when every use is spent, ErrLinkRevoked when the link or
	// its user was revoked after it was issued, ErrLinkExpired from the
	// link's end on, and ErrLinkBeforeStore for a link issued before the
	// store's state began (an empty store knows no spent link); then
	// nothing is stored.
	Redeem(ctx context.Context, l LinkUse, s *Session) error
	// LinkUses returns how many uses of link id are spent and whether it is
	// revoked, while the store keeps the link's record (until its end):
	// zero and false for a link it has no record of. A revoked link's count
	// may be zero.
	LinkUses(ctx context.Context, id string) (spent int, revoked bool, err error)
	// RevokeLink makes link id unusable; the record lives until `until`.
	RevokeLink(ctx context.Context, id string, until time.Time) error
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

package store

import (
	"context"
	"errors"
	"time"

	"github.com/portalgate/portalgate/caddymodule/internal/identity"
)

// ErrConflict means a write lost a race: what it was based on changed.
var ErrConflict = errors.New("changed by someone else")

// MaxLinkRecords is how many minted links a store lists; older ones drop off.
const MaxLinkRecords = 1000

// Contact is a person the gateway knows: someone staff minted a link for, or
// whom a CRM synced.
type Contact struct {
	ID       string `json:"id"`
	Email    string `json:"email,omitempty"`
	Name     string `json:"name,omitempty"`
	Location string `json:"location,omitempty"`
}

// LinkRecord is a minted link as the dashboard lists it. It never holds the
// token: only what was minted, for whom, and what became of it.
type LinkRecord struct {
	ID        string        `json:"id"`
	App       string        `json:"app"`
	Path      string        `json:"path,omitempty"`
	User      identity.User `json:"user"`
	Uses      int           `json:"uses"`
	IssuedAt  time.Time     `json:"issued_at"`
	ExpiresAt time.Time     `json:"expires_at"`
	// By is who minted it, as the audit log names them.
	By string `json:"by,omitempty"`
	// Keep is when the record may be forgotten.
	Keep time.Time `json:"keep"`

	// Spent and Revoked are filled in by Links from the link's use record,
	// while the store still has one (until the link expires), and from its
	// user's revocation.
	Spent   int  `json:"-"`
	Revoked bool `json:"-"`
}

// MenuItem is one custom link of the portal menu.
type MenuItem struct {
	ID    string `json:"id"`
	Title string `json:"title"`
	// Exactly one of URL and App is set: App makes a "magic" item that
	// launches the child app signed in.
	URL string `json:"url,omitempty"`
	App string `json:"app,omitempty"`
	// Open is iframe, new_tab or current_tab.
	Open string `json:"open"`
	// Roles are the user types who see the item.
	Roles []identity.Type `json:"roles"`
}

// Menu is the custom menu, in order, and its version for SetMenu. Stores
// keep it as this JSON.
type Menu struct {
	Items   []MenuItem `json:"items"`
	Version int64      `json:"version"`
}

// Directory is what the dashboard keeps in the store, so that it survives a
// restart and every instance sharing the store sees the same: contacts, the
// links staff minted and the custom menu.
type Directory interface {
	// PutContacts adds contacts, or replaces those with the same id.
	PutContacts(ctx context.Context, cs []Contact) error
	// Contact returns the contact with id, or ErrNotFound.
	Contact(ctx context.Context, id string) (Contact, error)
	// Contacts returns every contact, in no particular order.
	Contacts(ctx context.Context) ([]Contact, error)
	// RecordLink remembers a minted link until r.Keep; only the newest
	// MaxLinkRecords are kept.
	RecordLink(ctx context.Context, r LinkRecord) error
	// Links returns the recorded links, newest first, with Spent and Revoked
	// read from their use records; a link issued to a user before the user
	// was revoked is Revoked too.
	Links(ctx context.Context) ([]LinkRecord, error)
	// Menu returns the custom menu; an empty one has version 0.
	Menu(ctx context.Context) (Menu, error)
	// SetMenu replaces the menu if it is still at version, and returns the
	// new version; ErrConflict when another write came first.
	SetMenu(ctx context.Context, items []MenuItem, version int64) (int64, error)
}

package store

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/portalgate/portalgate/caddymodule/internal/identity"
)

// ErrConflict means a write lost a race: what it was based on changed.
var ErrConflict = errors.New("changed by someone else")

// ErrIDTaken means an id names someone else already: a person of another
// type, or a sub-account user of another location. One id is one person, so
// an app never sees the same user id for two of them.
var ErrIDTaken = errors.New("the id names someone else")

// Holder is who an id names: a type of user and, for staff, the location
// (a contact's location is its record's, which a CRM may change).
type Holder struct {
	Type     identity.Type `json:"type"`
	Location string        `json:"location,omitempty"`
}

// ContactHolder is who a contact's id names: a contact, wherever it is.
var ContactHolder = Holder{Type: identity.Contact}

// HolderOf is the holder an id of u claims.
func HolderOf(u identity.User) Holder {
	if u.Type == "" || u.Type == identity.Contact {
		return ContactHolder
	}
	return Holder{Type: u.Type, Location: u.Location}
}

// What became of a link's e-mail (LinkRecord.Delivery).
const (
	DeliverySending = "sending"
	DeliverySent    = "sent"
	DeliveryFailed  = "failed"
)

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
	// Delivery is what became of the e-mail that carries the link, when
	// one does: DeliverySending until the mail queue says DeliverySent or
	// DeliveryFailed (SetDelivery).
	Delivery string `json:"delivery,omitempty"`

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
	// Icon is an https URL of an image shown beside the title. Optional.
	Icon string `json:"icon,omitempty"`
}

// Menu is the custom menu, in order, and its version for SetMenu. Stores
// keep it as this JSON.
type Menu struct {
	Items   []MenuItem `json:"items"`
	Version int64      `json:"version"`
}

// Tenant is a sub-account registered at run time (the tenants API, the
// dashboard), as the store keeps it and the API speaks it: its portal and
// apps on hosts of their own, its brand. Its id is its location id.
type Tenant struct {
	ID     string `json:"id"`
	Name   string `json:"name,omitempty"`
	Portal string `json:"portal,omitempty"`
	// Apps are its apps' URLs by name ("" for the host pattern's).
	Apps  map[string]string `json:"apps,omitempty"`
	Brand TenantBrand       `json:"brand,omitzero"`
	// Since is when the tenant was added: the sessions and links of an
	// earlier tenant of its id open nothing of it. Set by the gateway.
	Since time.Time `json:"since,omitzero"`
}

// TenantBrand is how a tenant's pages and e-mails look and who they come
// from.
type TenantBrand struct {
	Color        string `json:"color,omitempty"`
	Logo         string `json:"logo,omitempty"`
	SupportEmail string `json:"support_email,omitempty"`
	SenderName   string `json:"sender_name,omitempty"`
}

// MaxTenantsPage is the most tenants one Tenants call answers with.
const MaxTenantsPage = 1000

// ContactQuery selects contacts for a list or a search.
type ContactQuery struct {
	// Text matches id, name or e-mail, ignoring case. Default: all.
	Text string
	// Location, when set, keeps the contacts of that location only.
	Location string
	// Limit bounds the answer. Default: DefaultLimit.
	Limit int
}

// LinkQuery selects link records for a list.
type LinkQuery struct {
	// Location, when set, keeps links for users of that location only.
	Location string
	// Limit bounds the answer. Default: DefaultLimit.
	Limit int
}

// DefaultLimit is how many records a query answers with when it names no
// limit.
const DefaultLimit = 100

// Directory is what the dashboard keeps in the store, so that it survives a
// restart and every instance sharing the store sees the same: contacts, the
// links staff minted and the custom menu. Lists are bounded by a query,
// never "everything".
type Directory interface {
	// PutContacts adds contacts, or replaces those with the same id, all or
	// none: ErrIDTaken when an id names someone other than a contact.
	PutContacts(ctx context.Context, cs []Contact) error
	// ClaimID records that id names h, in one step, and answers ErrIDTaken
	// with the holder when it names another already. A contact's record is
	// its claim.
	ClaimID(ctx context.Context, id string, h Holder) (Holder, error)
	// Contact returns the contact with id, or ErrNotFound.
	Contact(ctx context.Context, id string) (Contact, error)
	// ContactsByEmail returns the contacts with an e-mail address, compared
	// as AddressKey folds it (trimmed, ASCII case ignored), ordered by id:
	// from an index, never a scan of every contact.
	ContactsByEmail(ctx context.Context, email string) ([]Contact, error)
	// SearchContacts returns the contacts q selects, ordered by name (then
	// e-mail, then id), at most q.Limit.
	SearchContacts(ctx context.Context, q ContactQuery) ([]Contact, error)
	// RecordLink remembers a minted link until r.Keep; only the newest
	// MaxLinkRecords are kept.
	RecordLink(ctx context.Context, r LinkRecord) error
	// Links returns the recorded links q selects, newest first, at most
	// q.Limit, with Spent and Revoked read from their use records; a link
	// issued to a user before the user was revoked is Revoked too.
	Links(ctx context.Context, q LinkQuery) ([]LinkRecord, error)
	// SetDelivery records what became of the e-mail of link id (sent or
	// failed), to be kept until keep (the record's Keep). A link without a
	// record has nothing to record it on.
	SetDelivery(ctx context.Context, id, delivery string, keep time.Time) error
	// LinkRecord returns the record of link id, or ErrNotFound.
	LinkRecord(ctx context.Context, id string) (LinkRecord, error)
	// Menu returns the custom menu of a tenant ("" for the default one);
	// an empty one has version 0.
	Menu(ctx context.Context, tenant string) (Menu, error)
	// SetMenu replaces a tenant's menu if it is still at version, and
	// returns the new version; ErrConflict when another write came first.
	SetMenu(ctx context.Context, tenant string, items []MenuItem, version int64) (int64, error)

	// AddTenant adds a tenant; ErrConflict when one has its id already
	// (another instance added it first).
	AddTenant(ctx context.Context, t Tenant) error
	// ReplaceTenant replaces the tenant of t's id if it is still the one
	// added at t.Since: ErrNotFound when there is none (it was removed),
	// ErrConflict when it is another (removed and added again since).
	ReplaceTenant(ctx context.Context, t Tenant) error
	// DeleteTenant removes tenant id; ErrNotFound when there is none.
	DeleteTenant(ctx context.Context, id string) error
	// Tenants returns the tenants whose ids sort after after, in id order,
	// at most limit (at most MaxTenantsPage).
	Tenants(ctx context.Context, after string, limit int) ([]Tenant, error)
	// TenantsChanged is a count that every PutTenant and DeleteTenant
	// raises: an instance that saw it unchanged has every tenant already.
	TenantsChanged(ctx context.Context) (int64, error)
}

// TenantPage bounds a Tenants limit.
func TenantPage(limit int) int {
	if limit <= 0 || limit > MaxTenantsPage {
		return MaxTenantsPage
	}
	return limit
}

// SelectContacts applies q to contacts, for a backend that reads them in
// a scan.
func SelectContacts(all []Contact, q ContactQuery) []Contact {
	text := strings.ToLower(q.Text)
	var out []Contact
	for _, c := range all {
		if q.Location != "" && c.Location != q.Location {
			continue
		}
		if text != "" && !strings.Contains(strings.ToLower(c.ID+"\x00"+c.Name+"\x00"+c.Email), text) {
			continue
		}
		out = append(out, c)
	}
	slices.SortFunc(out, func(x, y Contact) int {
		return cmp.Or(strings.Compare(strings.ToLower(cmp.Or(x.Name, x.Email, x.ID)), strings.ToLower(cmp.Or(y.Name, y.Email, y.ID))), strings.Compare(x.ID, y.ID))
	})
	if limit := limitOf(q.Limit); len(out) > limit {
		out = out[:limit]
	}
	return out
}

// SelectLinks applies q to link records already newest first.
func SelectLinks(all []LinkRecord, q LinkQuery) []LinkRecord {
	out := make([]LinkRecord, 0, min(len(all), limitOf(q.Limit)))
	for _, l := range all {
		if len(out) == limitOf(q.Limit) {
			break
		}
		if q.Location == "" || l.User.Location == q.Location {
			out = append(out, l)
		}
	}
	return out
}

func limitOf(n int) int {
	if n <= 0 {
		return DefaultLimit
	}
	return n
}

// Scanner is a backend that reads its contacts and link records whole; Scan
// answers the Directory's queries over it.
type Scanner interface {
	// ScanContacts returns every contact, in no particular order.
	ScanContacts(ctx context.Context) ([]Contact, error)
	// ScanLinks returns every link record, newest first, with Spent and
	// Revoked filled in.
	ScanLinks(ctx context.Context) ([]LinkRecord, error)
}

// Scan implements the Directory's queries for a backend that scans: it
// embeds Scan{Scanner: itself}. The scan is the backend's business; the
// gateway only ever sees the bounded answer.
type Scan struct{ Scanner }

// SearchContacts implements Directory.
func (s Scan) SearchContacts(ctx context.Context, q ContactQuery) ([]Contact, error) {
	all, err := s.ScanContacts(ctx)
	if err != nil {
		return nil, err
	}
	return SelectContacts(all, q), nil
}

// Links implements Directory.
func (s Scan) Links(ctx context.Context, q LinkQuery) ([]LinkRecord, error) {
	all, err := s.ScanLinks(ctx)
	if err != nil {
		return nil, err
	}
	return SelectLinks(all, q), nil
}

// LinkRecord implements Directory.
func (s Scan) LinkRecord(ctx context.Context, id string) (LinkRecord, error) {
	all, err := s.ScanLinks(ctx)
	if err != nil {
		return LinkRecord{}, err
	}
	for _, l := range all {
		if l.ID == id {
			return l, nil
		}
	}
	return LinkRecord{}, ErrNotFound
}

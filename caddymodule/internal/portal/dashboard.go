package portal

import (
	"fmt"
	"html/template"
	"strings"

	qrcode "github.com/skip2/go-qrcode"
)

// StaffInfo is who is using the dashboard, and the token of its forms.
type StaffInfo struct {
	Name, Role, Location string
	// Portal names the portal whose dashboard this is: a tenant's, or the
	// default one's.
	Portal string
	// Tenants is true when the agency user may see the sub-accounts page.
	Tenants bool
	// Agency is true for agency users, who may change the custom links.
	Agency bool
	// Outbox is true when the mailer is the outbox and this staff member
	// may read it (agency users: it holds every location's mail).
	Outbox bool
	// Mailer is true when the portal sends e-mail.
	Mailer bool
	CSRF   string
}

// Outbox is the data of the outbox page: what the demo's mailer kept, as
// the recipient would read it.
type Outbox struct {
	Staff    StaffInfo
	Messages []OutboxMessage
}

// OutboxMessage is one kept e-mail.
type OutboxMessage struct {
	At, To, Subject, Text string
}

// Dashboard is the data of the dashboard's front page.
type Dashboard struct {
	Staff StaffInfo
	// Notice confirms what the last action did.
	Notice string
	// Apps get an Open button each.
	Apps  []AppEntry
	Links []LinkRow
}

// LinkRow is one recently minted link. It never holds the token.
type LinkRow struct {
	ID, For, Type, Target, Path, Status, Issued, Expires string
	// State is unused, partly_used, used, expired or revoked.
	State string
	// Delivery is what became of the link's e-mail, when it was mailed:
	// sending, sent or failed.
	Delivery string
	// Revocable is true while the link can still be used.
	Revocable bool
}

// Option is one choice of a select or radio group.
type Option struct {
	Value, Label string
	Selected     bool
}

// Generate is the data of Actions → Generate Magic Link.
type Generate struct {
	Staff StaffInfo
	// Query is the contact search; Contacts are its matches.
	Query    string
	Contacts []Option
	// Who is contact, new or myself.
	Who                                   string
	NewID, NewEmail, NewName, NewLocation string
	// LockedLocation is a sub-account user's location: new contacts get it.
	LockedLocation string
	// Locations are the known locations an agency user may choose from.
	Locations []string
	// InviteFor and SignInFor say how long an invitation's link and a
	// sign-in e-mail's work ("" without sign-in by e-mail).
	InviteFor, SignInFor string
	Targets              []Option
	Path, Uses           string
	TTLs                 []Option
	// Errors are by field name; "form" is about the whole form.
	Errors map[string]string
	// Result is the link just generated, shown once.
	Result *Generated
	// Mailer is true when the portal sends e-mail: Send, Invite and Login
	// e-mail are offered.
	Mailer bool
}

// Generated is a link just minted, as the dashboard shows it once.
type Generated struct {
	URL, For, Target, Expires string
	Uses                      int
	// Mailed, for a link sent by e-mail, says what was sent to whom.
	Mailed string
	// QR is the link as an inline SVG QR code.
	QR template.HTML
}

// Settings is the data of Settings → Custom Links.
type Settings struct {
	Staff StaffInfo
	// Fixed are the items of the config (read-only); Items those stored.
	Fixed, Items []MenuRow
	Form         MenuForm
	Errors       map[string]string
	// Notice says what the last change did.
	Notice string
	// Deleting, when set, is the item a Delete asks about first.
	Deleting *MenuRow
}

// MenuRow is one custom link as the settings list it.
type MenuRow struct {
	ID, Title, Target, Open string
	Roles                   []string
}

// MenuForm is the add/edit form of a custom link.
type MenuForm struct {
	ID, Title, Kind, URL string
	// Icon is the https URL of the item's image, or "".
	Icon        string
	Apps, Opens []Option
	Roles       map[string]bool
}

// QR draws text as a QR code in inline SVG: one path of dark modules, no
// image request and nothing for the page's CSP to allow.
func QR(text string) (template.HTML, error) {
	code, err := qrcode.New(text, qrcode.Medium)
	if err != nil {
		return "", fmt.Errorf("drawing QR code: %w", err)
	}
	bits := code.Bitmap()
	var d strings.Builder
	for y, row := range bits {
		for x, dark := range row {
			if dark {
				fmt.Fprintf(&d, "M%d %dh1v1h-1z", x, y)
			}
		}
	}
	n := len(bits)
	// Only numbers are formatted into the markup: safe as HTML.
	svg := fmt.Sprintf(`<svg class="qr" role="img" aria-label="QR code of the link" viewBox="0 0 %d %d" width="%d" height="%d" shape-rendering="crispEdges"><rect width="%d" height="%d" fill="#fff"/><path fill="#000" d="%s"/></svg>`,
		n, n, n*4, n*4, n, n, d.String())
	return template.HTML(svg), nil //nolint:gosec // numbers only, see above
}

// Contacts is the data of the Contacts page: a search and a page of its
// matches.
type Contacts struct {
	Staff StaffInfo
	// Query is the search; Contacts its matches on this page.
	Query    string
	Contacts []ContactRow
	// Page is this page's number (1 first); PrevURL and NextURL lead to
	// the pages around it, when there are.
	Page             int
	PrevURL, NextURL string
}

// ContactRow is one contact as the Contacts page lists it.
type ContactRow struct {
	ID, Name, Email, Location string
	// URL is the contact's own page; GenerateURL opens Generate for it.
	URL, GenerateURL string
}

// Contact is the data of a contact's page: who, the links sent to them
// and the sessions they have, and what staff may do.
type Contact struct {
	Staff StaffInfo
	ContactRow
	Notice   string
	Links    []LinkRow
	Sessions []SessionRow
	// SignOutURL asks to sign the contact out everywhere.
	SignOutURL string
}

// SessionRow is one live session of a contact.
type SessionRow struct {
	App, Started, IdleUntil string
}

// SignOutEverywhere is the data of the page that asks before a contact is
// signed out of every app.
type SignOutEverywhere struct {
	Staff    StaffInfo
	Name     string
	Sessions int
	// BackURL is the contact's page.
	BackURL string
}

// Subaccounts is the data of the sub-accounts page: the tenants, and the
// form that adds one (agency users, on the default portal's dashboard).
type Subaccounts struct {
	Staff StaffInfo
	// Here names the tenant whose dashboard this is ("" on the default's).
	Here    string
	Tenants []TenantRow
	// CanChange is true where tenants are added and removed.
	CanChange bool
	Form      TenantForm
	Errors    map[string]string
	Notice    string
	// Removing, when set, is the tenant a removal asks about first.
	Removing *TenantRow
	// More is the address of the next page, when there is one.
	More string
}

// TenantRow is one sub-account as the page lists it.
type TenantRow struct {
	ID, Name, Portal, Dashboard string
	Apps                        []string
	// Static is true for a tenant of the Caddyfile, which the page cannot
	// change.
	Static bool
}

// TenantForm is the add form as submitted.
type TenantForm struct {
	ID, Name, Portal, Apps, Color, Logo, Support, Sender string
}

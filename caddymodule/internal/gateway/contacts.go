package gateway

import (
	"cmp"
	"context"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/portalgate/portalgate/caddymodule/internal/identity"
	"github.com/portalgate/portalgate/caddymodule/internal/portal"
	"github.com/portalgate/portalgate/caddymodule/internal/store"
)

// contactsPerPage is how many contacts a page of the Contacts list shows;
// contactPages bounds how far it pages (a search narrows it).
const (
	contactsPerPage = 25
	contactPages    = 40
)

// contactsPath is the Contacts page.
const contactsPath = DashboardPath + "contacts"

// contactsPage lists the contacts staff may see, a page at a time,
// searched by name, e-mail or id.
func (s *Site) contactsPage(w http.ResponseWriter, r *http.Request, st Staff) error {
	q := strings.TrimSpace(r.URL.Query().Get("q"))
	page, err := strconv.Atoi(r.URL.Query().Get("page"))
	if err != nil || page < 1 {
		page = 1
	}
	page = min(page, contactPages)
	// One more than the pages up to this one: whether there is a next.
	cs, err := s.g.cfg.Directory.SearchContacts(r.Context(), store.ContactQuery{Text: q, Location: st.scope(), Limit: page*contactsPerPage + 1})
	if err != nil {
		return err
	}
	data := portal.Contacts{Staff: s.staffInfo(st), Query: q, Page: page}
	pageURL := func(n int) string {
		v := url.Values{"page": {strconv.Itoa(n)}}
		if q != "" {
			v.Set("q", q)
		}
		return contactsPath + "?" + v.Encode()
	}
	if page > 1 {
		data.PrevURL = pageURL(page - 1)
	}
	if len(cs) > page*contactsPerPage && page < contactPages {
		data.NextURL = pageURL(page + 1)
	}
	from := min((page-1)*contactsPerPage, len(cs))
	for _, c := range cs[from:min(from+contactsPerPage, len(cs))] {
		data.Contacts = append(data.Contacts, contactRow(c))
	}
	return s.dashboardPage(w, http.StatusOK, "contacts.html", data)
}

// contactRow is c as the dashboard shows it, with the addresses of its
// page and of Generate for it.
func contactRow(c store.Contact) portal.ContactRow {
	return portal.ContactRow{
		ID: c.ID, Name: c.Name, Email: c.Email, Location: c.Location,
		URL:         contactsPath + "/" + url.PathEscape(c.ID),
		GenerateURL: DashboardPath + "generate?" + url.Values{"who": {"contact"}, "contact": {c.ID}, "q": {cmp.Or(c.Email, c.ID)}}.Encode(),
	}
}

// seenContact is the contact a dashboard address names, when st may see
// it; a 404 Problem otherwise (another location's contact is not there).
func (s *Site) seenContact(ctx context.Context, r *http.Request, st Staff) (store.Contact, error) {
	// The id is the segment after contacts/, unescaped on its own: an id
	// may hold "/" (escaped %2F), which must not reach another route.
	seg, _, _ := strings.Cut(strings.TrimPrefix(r.URL.EscapedPath(), contactsPath+"/"), "/")
	id, err := url.PathUnescape(seg)
	if err != nil {
		return store.Contact{}, problemNotFound
	}
	c, err := s.g.cfg.Directory.Contact(ctx, id)
	switch {
	case errors.Is(err, store.ErrNotFound) || (err == nil && !st.sees(c.Location)):
		return store.Contact{}, problemNotFound
	case err != nil:
		return store.Contact{}, err
	}
	return c, nil
}

// contactPage shows one contact: the apps they are signed in to, the links
// sent to them lately, and Generate, Invite, Login e-mail and Sign out
// everywhere.
func (s *Site) contactPage(w http.ResponseWriter, r *http.Request, st Staff) error {
	ctx := r.Context()
	c, err := s.seenContact(ctx, r, st)
	if err != nil {
		return err
	}
	data := portal.Contact{Staff: s.staffInfo(st), ContactRow: contactRow(c)}
	data.SignOutURL = data.URL + "/signout"
	if r.URL.Query().Get("done") == "signedout" {
		data.Notice = displayName(contactUser(c)) + " is signed out everywhere."
	}
	sessions, err := s.g.cfg.Store.UserSessions(ctx, c.ID)
	if err != nil {
		return err
	}
	for _, ss := range sessions {
		data.Sessions = append(data.Sessions, portal.SessionRow{App: s.g.appTitle(ss.App),
			Started: formatTime(ss.CreatedAt), IdleUntil: formatTime(ss.Deadline())})
	}
	now := s.g.now()
	// The contact is st's to see, and one id is one person: all of its
	// links are, whatever location a link's request named.
	links, err := s.g.cfg.Directory.Links(ctx, store.LinkQuery{Limit: store.MaxLinkRecords})
	if err != nil {
		return err
	}
	for _, l := range links {
		if l.User.ID == c.ID && l.User.Type == identity.Contact && len(data.Links) < dashboardLinks {
			row := s.g.linkRow(l, now)
			// A link minted under another location is shown, not revoked
			// from here (the dashboard's Revoke is by location).
			row.Revocable = row.Revocable && st.sees(l.User.Location)
			data.Links = append(data.Links, row)
		}
	}
	return s.dashboardPage(w, http.StatusOK, "contact.html", data)
}

// signOutEverywhere asks, then ends every session of a contact and refuses
// every link sent to them until now (a revocation of the user).
func (s *Site) signOutEverywhere(w http.ResponseWriter, r *http.Request, st Staff) error {
	ctx := context.WithoutCancel(r.Context())
	c, err := s.seenContact(ctx, r, st)
	if err != nil {
		return err
	}
	back := contactRow(c).URL
	if r.Method != http.MethodPost {
		sessions, err := s.g.cfg.Store.UserSessions(ctx, c.ID)
		if err != nil {
			return err
		}
		return s.dashboardPage(w, http.StatusOK, "signout_everywhere.html", portal.SignOutEverywhere{
			Staff: s.staffInfo(st), Name: displayName(contactUser(c)), Sessions: len(sessions), BackURL: back})
	}
	if _, err := s.g.RevokeUser(ctx, "staff:"+st.Username, c.ID); err != nil {
		return err
	}
	http.Redirect(w, r, back+"?done=signedout", http.StatusSeeOther)
	return nil
}

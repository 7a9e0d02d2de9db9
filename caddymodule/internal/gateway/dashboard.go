package gateway

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/portalgate/portalgate/caddymodule/internal/identity"
	"github.com/portalgate/portalgate/caddymodule/internal/link"
	"github.com/portalgate/portalgate/caddymodule/internal/mail"
	"github.com/portalgate/portalgate/caddymodule/internal/portal"
	"github.com/portalgate/portalgate/caddymodule/internal/store"
)

// Limits of what the dashboard shows at once.
const (
	dashboardLinks    = 50
	dashboardContacts = 100
)

// linkTTLChoices are the expiries the generate form offers (up to link_max_ttl).
var linkTTLChoices = []struct{ value, label string }{
	{"15m", "15 minutes (to sign in now)"}, {"1h", "1 hour"}, {"8h", "8 hours (today)"}, {"24h", "24 hours"}, {"7d", "7 days (to come back to)"},
}

// dashboardRoutes adds the staff dashboard to the portal's table: Actions →
// Generate Magic Link, the recent links, Open for every app, and Settings →
// Custom Links. Everything below it needs a staff member signed in by the
// authenticator in front.
func dashboardRoutes(t *table[siteHandler]) {
	const get, head, post = http.MethodGet, http.MethodHead, http.MethodPost
	t.on(strings.TrimSuffix(DashboardPath, "/"), (*Site).toDashboard, anyMethod)
	t.on(DashboardPath, staffOnly((*Site).overview), get, head)
	t.on(DashboardPath+"generate", staffOnly((*Site).generateForm), get, head)
	t.on(DashboardPath+"generate", staffOnly((*Site).generate), post)
	t.on(DashboardPath+"open", staffOnly((*Site).openAsStaff), post)
	t.on(DashboardPath+"revoke", staffOnly((*Site).revokeFromDashboard), post)
	t.on(DashboardPath+"settings/links", staffOnly((*Site).menuSettingsPage), get, head)
	t.on(DashboardPath+"settings/links", staffOnly((*Site).editMenu), post)
	t.on(DashboardPath+"outbox", staffOnly((*Site).outboxPage), get, head)
	t.on(DashboardPath+"subaccounts", staffOnly((*Site).subaccountsPage), get, head)
	t.on(DashboardPath+"subaccounts", staffOnly((*Site).editSubaccounts), post)
	t.on(DashboardPath+"contacts", staffOnly((*Site).contactsPage), get, head)
	t.on(DashboardPath+"contacts/{id}", staffOnly((*Site).contactPage), get, head)
	t.on(DashboardPath+"contacts/{id}/signout", staffOnly((*Site).signOutEverywhere), get, head, post)
	t.on(DashboardPath+"{page...}", staffOnly((*Site).dashboardNotFound), get, head, post)
}

// staffHandler serves a dashboard page to a staff member.
type staffHandler func(s *Site, w http.ResponseWriter, r *http.Request, st Staff) error

// staffOnly lets staff through to h. Every POST must come from the
// dashboard's own page with a token bound to the staff member: their
// browser sends basic_auth credentials to any site's forms.
func staffOnly(h staffHandler) siteHandler {
	return func(s *Site, w http.ResponseWriter, r *http.Request, _ routeHit) error {
		st, err := s.g.staffOf(r)
		if err != nil {
			return err
		}
		// A tenant's dashboard is its staff's and the agency's; the default
		// one is not the staff's of a tenant.
		if st.Role == identity.SubaccountUser && !s.g.ownsLocation(st.Location) {
			return problemOtherTenant
		}
		if s.g.tenant != "" {
			st.within = s.g.tenant
		}
		noStore(w)
		if r.Method == http.MethodPost && (!s.sameOrigin(r) || !s.g.checkCSRF("dashboard", st.Username, formValue(w, r, "csrf"))) {
			return problemCSRF
		}
		return h(s, w, r, st)
	}
}

// toDashboard sends /dashboard to /dashboard/.
func (s *Site) toDashboard(w http.ResponseWriter, r *http.Request, _ routeHit) error {
	http.Redirect(w, r, DashboardPath, http.StatusPermanentRedirect)
	return nil
}

func (s *Site) dashboardNotFound(http.ResponseWriter, *http.Request, Staff) error {
	return problemNotFound
}

// scope is the location whose records st may see; "" for every location.
func (st Staff) scope() string { return st.home() }

// dashboardPage renders a dashboard page: it may run the dashboard's one
// script, and its forms may lead on to the apps (Open redirects there).
func (s *Site) dashboardPage(w http.ResponseWriter, status int, name string, data any) error {
	s.pageWithCSP(w, status, name, data, s.dashboardCSP)
	return nil
}

func (s *Site) staffInfo(st Staff) portal.StaffInfo {
	return portal.StaffInfo{
		Name: st.Username, Role: string(st.Role), Location: st.Location, Portal: s.g.look.Title,
		Tenants: st.Role == identity.AgencyUser && s.g.servesTenants(),
		Agency:  st.Role == identity.AgencyUser, CSRF: s.g.csrfToken("dashboard", st.Username),
		Outbox: s.g.cfg.Outbox != nil && st.Role == identity.AgencyUser, Mailer: s.g.mail != nil,
	}
}

// outboxPage shows agency users what the outbox mailer kept: the demo's
// way to read the e-mails it would have sent.
func (s *Site) outboxPage(w http.ResponseWriter, _ *http.Request, st Staff) error {
	if s.g.cfg.Outbox == nil {
		return problemNotFound
	}
	if st.Role != identity.AgencyUser {
		return problemOutboxAgencyOnly
	}
	data := portal.Outbox{Staff: s.staffInfo(st)}
	for _, m := range s.g.cfg.Outbox.Messages() {
		data.Messages = append(data.Messages, portal.OutboxMessage{At: formatTime(m.At), To: m.To.String(), Subject: m.Subject, Text: m.Text})
	}
	return s.dashboardPage(w, http.StatusOK, "outbox.html", data)
}

// overview is the dashboard's front page.
func (s *Site) overview(w http.ResponseWriter, r *http.Request, st Staff) error {
	links, err := s.g.cfg.Directory.Links(r.Context(), store.LinkQuery{Location: st.scope(), Limit: dashboardLinks})
	if err != nil {
		return err
	}
	data := portal.Dashboard{Staff: s.staffInfo(st), Notice: dashboardNotices[r.URL.Query().Get("done")]}
	data.Apps = append(data.Apps, portal.AppEntry{Name: PortalName, Title: "Portal home"})
	for _, name := range s.g.appNames {
		data.Apps = append(data.Apps, portal.AppEntry{Name: name, Title: s.g.apps[name].title})
	}
	now := s.g.now()
	for _, l := range links {
		data.Links = append(data.Links, s.g.linkRow(l, now))
	}
	return s.dashboardPage(w, http.StatusOK, "dashboard.html", data)
}

// linkRow is a minted link as the dashboard lists it.
func (g *Gateway) linkRow(l store.LinkRecord, now time.Time) portal.LinkRow {
	state, status := linkStatus(l, now)
	return portal.LinkRow{
		ID: l.ID, For: displayName(l.User), Type: string(l.User.Type), Target: g.appTitle(l.App),
		Path: l.Path, State: state, Status: status, Issued: formatTime(l.IssuedAt), Expires: formatTime(l.ExpiresAt),
		Revocable: state == "unused" || state == "partly_used", Delivery: l.Delivery,
	}
}

var dashboardNotices = map[string]string{
	"revoked": "The link is revoked: it no longer signs anyone in.",
}

// openLabels and roleLabels say a custom link's settings as people do.
var (
	openLabels = map[string]string{OpenCurrentTab: "The same tab", OpenNewTab: "A new tab", OpenIframe: "Inside the portal"}
	roleLabels = map[identity.Type]string{identity.Contact: "contacts", identity.SubaccountUser: "sub-account users", identity.AgencyUser: "agency users"}
)

// linkStatus says what became of a link: its state, and how to say it.
func linkStatus(l store.LinkRecord, now time.Time) (state, label string) {
	switch {
	case l.Revoked:
		return "revoked", "revoked"
	case l.Spent >= l.Uses:
		return "used", "used"
	case !now.Before(l.ExpiresAt):
		return "expired", "expired"
	case l.Spent > 0:
		return "partly_used", "used " + strconv.Itoa(l.Spent) + " of " + strconv.Itoa(l.Uses)
	}
	return "unused", "unused"
}

func displayName(u identity.User) string {
	switch {
	case u.Name != "" && u.Email != "":
		return u.Name + " <" + u.Email + ">"
	case u.Name != "":
		return u.Name
	case u.Email != "":
		return u.Email
	}
	return u.ID
}

func formatTime(t time.Time) string { return t.UTC().Format("2006-01-02 15:04 UTC") }

// generateInput is the generate form as submitted.
type generateInput struct {
	// action is generate (the default), send, invite or login.
	action                                string
	who, contact, query                   string
	newID, newEmail, newName, newLocation string
	app, path, ttl, uses                  string
}

func readGenerateInput(r *http.Request) generateInput {
	f := r.PostFormValue
	if r.Method != http.MethodPost {
		f = r.URL.Query().Get
	}
	in := generateInput{
		who: f("who"), contact: f("contact"), query: strings.TrimSpace(f("q")),
		newID: strings.TrimSpace(f("new_id")), newEmail: strings.TrimSpace(f("new_email")),
		newName: strings.TrimSpace(f("new_name")), newLocation: strings.TrimSpace(f("new_location")),
		app: f("app"), path: strings.TrimSpace(f("path")), ttl: f("ttl"), uses: strings.TrimSpace(f("uses")),
		action: f("action"),
	}
	return in
}

// generateForm shows Actions → Generate Magic Link; ?q= searches contacts.
func (s *Site) generateForm(w http.ResponseWriter, r *http.Request, st Staff) error {
	in := readGenerateInput(r)
	if in.ttl == "" {
		in.ttl = linkTTLChoices[0].value
	}
	if in.uses == "" {
		in.uses = "1"
	}
	return s.renderGenerate(r.Context(), w, http.StatusOK, st, in, nil, nil)
}

func (s *Site) renderGenerate(ctx context.Context, w http.ResponseWriter, status int, st Staff, in generateInput, errs map[string]string, result *portal.Generated) error {
	contacts, err := s.g.cfg.Directory.SearchContacts(ctx, store.ContactQuery{Text: in.query, Location: st.scope(), Limit: dashboardContacts})
	if err != nil {
		return err
	}
	if in.who == "" {
		// With no contacts yet, the form starts at entering a new one.
		in.who = "contact"
		if len(contacts) == 0 && in.query == "" {
			in.who = "new"
		}
	}
	data := portal.Generate{
		Staff: s.staffInfo(st), Query: in.query, Who: in.who, Result: result, Errors: errs,
		NewID: in.newID, NewEmail: in.newEmail, NewName: in.newName, NewLocation: in.newLocation,
		Path: in.path, Uses: in.uses, LockedLocation: st.home(), Mailer: s.g.mail != nil,
		Locations: s.g.knownLocations(contacts), InviteFor: humanDuration(s.g.inviteTTL()),
	}
	if s.g.signIns != nil {
		data.SignInFor = humanDuration(s.g.signIns.ttl)
	}
	for _, c := range contacts {
		label := displayName(identity.User{ID: c.ID, Name: c.Name, Email: c.Email})
		if c.Location != "" {
			label += " · " + c.Location
		}
		data.Contacts = append(data.Contacts, portal.Option{Value: c.ID, Label: label, Selected: c.ID == in.contact})
	}
	data.Targets = append(data.Targets, portal.Option{Value: PortalName, Label: "Portal home", Selected: in.app == PortalName})
	for _, name := range s.g.appNames {
		data.Targets = append(data.Targets, portal.Option{Value: name, Label: s.g.apps[name].title, Selected: in.app == name})
	}
	for _, c := range linkTTLChoices {
		if d, _ := ParseDuration(c.value); d <= s.g.cfg.LinkMaxTTL {
			data.TTLs = append(data.TTLs, portal.Option{Value: c.value, Label: c.label, Selected: c.value == in.ttl})
		}
	}
	return s.dashboardPage(w, status, "generate.html", data)
}

// generate mints the link the form asks for and shows it once.
func (s *Site) generate(w http.ResponseWriter, r *http.Request, st Staff) error {
	// Writes complete even if the browser hangs up.
	ctx := context.WithoutCancel(r.Context())
	in := readGenerateInput(r)
	errs := map[string]string{}
	var user identity.User
	switch in.who {
	case "myself":
		user = st.user()
	case "contact":
		if in.contact == "" {
			errs["contact"] = "Choose a contact, or enter a new one."
			break
		}
		c, err := s.g.cfg.Directory.Contact(ctx, in.contact)
		if errors.Is(err, store.ErrNotFound) || (err == nil && !st.sees(c.Location)) {
			errs["contact"] = "There is no such contact among yours."
			break
		}
		if err != nil {
			return err
		}
		user = contactUser(c)
	case "new":
		loc := in.newLocation
		if home := st.home(); home != "" {
			if loc != "" && loc != home {
				errs["new_location"] = "You can add contacts to your own location only (" + home + ")."
			}
			loc = home
		}
		if in.newID == "" {
			// Staff name people, not records: the id is made up, and may be
			// given under "advanced" (a CRM's id).
			id, err := newContactID()
			if err != nil {
				return err
			}
			in.newID = id
		}
		user = identity.User{ID: in.newID, Email: in.newEmail, Name: in.newName, Location: loc, Type: identity.Contact}
		switch _, err := s.g.cfg.Directory.Contact(ctx, in.newID); {
		case err == nil:
			// A new contact never takes over a known one (nor its location).
			errs["new_id"] = "A contact with this id exists already: search for it and choose it."
		case !errors.Is(err, store.ErrNotFound):
			return err
		default:
			if err := user.Validate(); err != nil {
				errs["new_id"] = "This contact cannot be used: " + err.Error() + "."
			}
		}
		switch same, err := s.sameEmailHere(ctx, in.newEmail, loc); {
		case in.newEmail == "":
			errs["new_email"] = "Enter the contact's e-mail address."
		case !validEmail(in.newEmail):
			errs["new_email"] = "This is not an e-mail address."
		case err != nil:
			return err
		case same != nil:
			// One person, one contact: the one there is, offered as chosen.
			errs["new_email"] = "A contact with this e-mail exists in this location already: " + displayName(contactUser(*same)) + "."
			errs["existing"] = DashboardPath + "generate?" + url.Values{"who": {"contact"}, "contact": {same.ID}, "q": {same.Email}}.Encode()
		}
	default:
		errs["who"] = "Choose who the link is for."
	}
	if in.action == "invite" || in.action == "login" {
		return s.mailContact(ctx, w, st, in, user, errs)
	}
	if s.g.apps[in.app] == nil {
		errs["app"] = "Choose where the link leads."
	}
	path := cmp.Or(in.path, "/")
	if link.CheckPath(path) != nil {
		errs["path"] = "A landing path starts with / and stays inside the app, such as /lessons/1."
	}
	if d, err := ParseDuration(in.ttl); err != nil || d <= 0 || d > s.g.cfg.LinkMaxTTL {
		errs["ttl"] = "Choose one of the expiries offered."
	}
	uses, err := strconv.Atoi(cmp.Or(in.uses, "1"))
	if err != nil || uses < 1 || uses > link.MaxUses {
		errs["uses"] = "Uses is a whole number from 1 to " + strconv.Itoa(link.MaxUses) + "."
	}
	if len(errs) > 0 {
		return s.renderGenerate(ctx, w, http.StatusUnprocessableEntity, st, in, errs, nil)
	}
	req := MintRequest{App: in.app, User: user, Path: path, TTL: in.ttl, Uses: uses}
	if in.action == "send" {
		req.Send = SendEmail
	}
	resp, err := s.g.Mint(ctx, req, "staff:"+st.Username)
	if refused, err := s.refusedOnTheForm(ctx, w, st, in, errs, err); refused || err != nil {
		return err
	}
	qr, err := portal.QR(resp.URL)
	if err != nil {
		// Too long for a QR code (a long landing path): the link stands alone.
		s.g.log.Warn("no QR code for a generated link", zap.String("link_id", resp.ID), zap.Error(err))
	}
	result := &portal.Generated{
		URL: resp.URL, For: displayName(user), Target: s.g.appTitle(in.app),
		Expires: formatTime(resp.ExpiresAt), Uses: uses, QR: qr, Mailed: mailed("The link", user, resp.Delivery),
	}
	if in.who == "new" {
		// The new contact is in the directory now: offer it as chosen.
		in.who, in.contact, in.newID, in.newEmail, in.newName, in.newLocation = "contact", user.ID, "", "", "", ""
	}
	return s.renderGenerate(ctx, w, http.StatusOK, st, in, nil, result)
}

// validEmail reports whether s is one plain e-mail address.
func validEmail(s string) bool {
	_, err := mail.ParseEmail(s)
	return err == nil
}

// sameEmailHere is the contact with email in location, if there is one.
func (s *Site) sameEmailHere(ctx context.Context, email, location string) (*store.Contact, error) {
	if email == "" {
		return nil, nil
	}
	cs, err := s.g.cfg.Directory.ContactsByEmail(ctx, email)
	for _, c := range cs {
		if c.Location == location {
			return &c, err
		}
	}
	return nil, err
}

// newContactID makes up the id of a contact staff entered by name and
// e-mail: "c_" and 16 random hex digits.
func newContactID() (string, error) {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return "c_" + hex.EncodeToString(b[:]), nil
}

// refusedOnTheForm shows the Generate form again with a refusal of the
// gateway (err a Problem) by the field it is about, and says it did; any
// other error it hands back.
func (s *Site) refusedOnTheForm(ctx context.Context, w http.ResponseWriter, st Staff, in generateInput, errs map[string]string, err error) (bool, error) {
	p, ok := asProblem(err)
	if !ok {
		return false, err
	}
	field := "form"
	if p.Code == codeIDTaken && in.who == "new" {
		field = "new_id"
	}
	errs[field] = p.Detail
	return true, s.renderGenerate(ctx, w, http.StatusUnprocessableEntity, st, in, errs, nil)
}

// mailContact sends the contact of the form an invitation or a sign-in
// e-mail (Invite, Login e-mail): a new contact is kept first.
func (s *Site) mailContact(ctx context.Context, w http.ResponseWriter, st Staff, in generateInput, user identity.User, errs map[string]string) error {
	if in.who == "myself" {
		errs["who"] = "Invite and Login e-mail are for contacts."
	}
	if len(errs) > 0 {
		return s.renderGenerate(ctx, w, http.StatusUnprocessableEntity, st, in, errs, nil)
	}
	by := "staff:" + st.Username
	err := s.g.checkSend(SendEmail, user)
	if err == nil && in.who == "new" {
		err = s.g.keepContact(ctx, user)
	}
	var resp MintResponse
	what := "The invitation"
	if err == nil {
		if in.action == "invite" {
			resp, err = s.g.Invite(ctx, user.ID, by)
		} else {
			what = "The sign-in e-mail"
			resp, err = s.g.LoginEmail(ctx, user.ID, by)
		}
	}
	if refused, err := s.refusedOnTheForm(ctx, w, st, in, errs, err); refused || err != nil {
		return err
	}
	result := &portal.Generated{URL: resp.URL, For: displayName(user), Target: "Portal home",
		Expires: formatTime(resp.ExpiresAt), Uses: 1, Mailed: mailed(what, user, resp.Delivery)}
	if in.who == "new" {
		in.who, in.contact, in.newID, in.newEmail, in.newName, in.newLocation = "contact", user.ID, "", "", "", ""
	}
	return s.renderGenerate(ctx, w, http.StatusOK, st, in, nil, result)
}

// mailed says what became of a link's e-mail on the page that sent it.
func mailed(what string, u identity.User, delivery string) string {
	switch delivery {
	case deliveryQueued:
		return what + " is on its way to " + u.Email + ": Recent links on the dashboard say when the mail server has it."
	case deliveryFailed:
		return what + " could not be sent to " + u.Email + " (the mail queue is full): copy the link below instead."
	}
	return ""
}

// openAsStaff signs the staff member into an app as themselves: "Open".
func (s *Site) openAsStaff(w http.ResponseWriter, r *http.Request, st Staff) error {
	t := s.g.apps[r.PostFormValue("app")]
	if t == nil {
		return problemNotFound
	}
	req := link.Request{App: t.name, User: st.user(), TTL: launchTTL, Launch: true}
	if t.name == PortalName {
		req.Apps = s.g.AppNames()
	}
	l, err := s.g.issue(r.Context(), "staff:"+st.Username, req)
	if err != nil {
		return err
	}
	http.Redirect(w, r, t.magicURL(l.Token), http.StatusSeeOther) //nolint:gosec // the app's configured origin and our own token
	return nil
}

// revokeFromDashboard revokes one of the links the staff member may see.
func (s *Site) revokeFromDashboard(w http.ResponseWriter, r *http.Request, st Staff) error {
	ctx := context.WithoutCancel(r.Context())
	id := r.PostFormValue("id")
	l, err := s.g.cfg.Directory.LinkRecord(ctx, id)
	if errors.Is(err, store.ErrNotFound) || (err == nil && !st.sees(l.User.Location)) {
		return problemNotFound
	}
	if err != nil {
		return err
	}
	if err := s.g.RevokeLink(ctx, "staff:"+st.Username, id); err != nil {
		return err
	}
	http.Redirect(w, r, DashboardPath+"?done=revoked", http.StatusSeeOther)
	return nil
}

// menuForm is the custom link form as submitted, or as an item to edit.
type menuForm struct {
	item   store.MenuItem
	kind   string
	errs   map[string]string
	status int
	// deleting is the id of the item a Delete asks about.
	deleting string
}

// menuDone says what a change of the custom links did.
var menuDone = map[string]string{"save": "Saved: the portal home shows it now.", "delete": "Deleted.", "up": "Moved up.", "down": "Moved down."}

// menuSettings shows Settings → Custom Links.
func (s *Site) menuSettingsPage(w http.ResponseWriter, r *http.Request, st Staff) error {
	return s.menuSettings(w, r, st, menuForm{})
}

func (s *Site) menuSettings(w http.ResponseWriter, r *http.Request, st Staff, form menuForm) error {
	menu, err := s.g.cfg.Directory.Menu(r.Context(), s.g.tenant)
	if err != nil {
		return err
	}
	if form.errs == nil && form.item.ID == "" {
		if id := r.URL.Query().Get("edit"); id != "" {
			if i := slices.IndexFunc(menu.Items, func(it store.MenuItem) bool { return it.ID == id }); i >= 0 {
				form.item = menu.Items[i]
			}
		}
	}
	data := portal.Settings{Staff: s.staffInfo(st), Errors: form.errs, Notice: menuDone[r.URL.Query().Get("done")]}
	for _, it := range s.g.fixedMenu {
		data.Fixed = append(data.Fixed, s.g.menuRow(it))
	}
	for _, it := range menu.Items {
		row := s.g.menuRow(it)
		data.Items = append(data.Items, row)
		if it.ID == form.deleting {
			data.Deleting = &row
		}
	}
	if form.deleting != "" && data.Deleting == nil {
		return problemNotFound
	}
	f := form.item
	kind := cmp.Or(form.kind, "app")
	if f.URL != "" {
		kind = "url"
	}
	data.Form = portal.MenuForm{ID: f.ID, Title: f.Title, Kind: kind, URL: f.URL, Icon: f.Icon, Roles: map[string]bool{}}
	roles := f.Roles
	if roles == nil {
		roles = allRoles
	}
	for _, role := range roles {
		data.Form.Roles[string(role)] = true
	}
	for _, name := range s.g.appNames {
		data.Form.Apps = append(data.Form.Apps, portal.Option{Value: name, Label: s.g.apps[name].title, Selected: f.App == name})
	}
	for _, o := range []string{OpenCurrentTab, OpenNewTab, OpenIframe} {
		data.Form.Opens = append(data.Form.Opens, portal.Option{Value: o, Label: openLabels[o], Selected: o == cmp.Or(f.Open, OpenCurrentTab)})
	}
	return s.dashboardPage(w, cmp.Or(form.status, http.StatusOK), "settings.html", data)
}

func (g *Gateway) menuRow(it store.MenuItem) portal.MenuRow {
	row := portal.MenuRow{ID: it.ID, Title: it.Title, Target: it.URL, Open: openLabels[it.Open]}
	if it.App != "" {
		row.Target = g.appTitle(it.App) + ", signed in"
	}
	for _, role := range it.Roles {
		row.Roles = append(row.Roles, roleLabels[role])
	}
	return row
}

// editMenu adds, saves, deletes or moves a custom link. Only agency users
// edit the menu; everyone on the dashboard may read it.
func (s *Site) editMenu(w http.ResponseWriter, r *http.Request, st Staff) error {
	ctx := context.WithoutCancel(r.Context())
	if st.Role != identity.AgencyUser {
		return problemAgencyOnly
	}
	id := r.PostFormValue("id")
	action := r.PostFormValue("action")
	var change func([]store.MenuItem) ([]store.MenuItem, error)
	switch action {
	case "save":
		it := store.MenuItem{ID: id, Title: r.PostFormValue("title"), Open: r.PostFormValue("open"), Icon: r.PostFormValue("icon")}
		kind := r.PostFormValue("kind")
		if kind == "url" {
			it.URL = strings.TrimSpace(r.PostFormValue("url"))
		} else {
			it.App = r.PostFormValue("app")
		}
		for _, role := range r.PostForm["roles"] {
			it.Roles = append(it.Roles, identity.Type(role))
		}
		if len(it.Roles) == 0 {
			return s.menuSettings(w, r, st, menuForm{item: it, kind: kind, status: http.StatusUnprocessableEntity,
				errs: map[string]string{"roles": "Choose who sees the link."}})
		}
		if errs := s.g.checkMenuItem(&it); len(errs) > 0 {
			return s.menuSettings(w, r, st, menuForm{item: it, kind: kind, errs: errs, status: http.StatusUnprocessableEntity})
		}
		change = saveMenuItem(it)
	case "delete", "up", "down":
		if action == "delete" && r.PostFormValue("confirm") != "yes" {
			// A Delete asks first, on the page it came from.
			return s.menuSettings(w, r, st, menuForm{deleting: id})
		}
		change = func(items []store.MenuItem) ([]store.MenuItem, error) {
			i := slices.IndexFunc(items, func(x store.MenuItem) bool { return x.ID == id })
			if i < 0 {
				return nil, errMenuItemGone
			}
			switch {
			case action == "delete":
				return slices.Delete(items, i, i+1), nil
			case action == "up" && i > 0:
				items[i-1], items[i] = items[i], items[i-1]
			case action == "down" && i < len(items)-1:
				items[i+1], items[i] = items[i], items[i+1]
			}
			return items, nil
		}
	default:
		return problemBadForm
	}
	err := s.g.updateMenu(ctx, change)
	if errors.Is(err, errMenuItemGone) {
		return problemNotFound
	}
	if err != nil {
		return err
	}
	s.g.audit.menuChanged("staff:"+st.Username, action)
	http.Redirect(w, r, DashboardPath+"settings/links?done="+action, http.StatusSeeOther) //nolint:gosec // action is save, delete, up or down: the switch above refused any other
	return nil
}

// knownLocations are the locations an agency user may choose for a new
// contact: those of the staff configuration and of the contacts listed.
func (g *Gateway) knownLocations(listed []store.Contact) []string {
	seen := map[string]bool{}
	var out []string
	add := func(loc string) {
		if loc != "" && !seen[loc] {
			seen[loc] = true
			out = append(out, loc)
		}
	}
	for _, st := range g.staff {
		add(st.Location)
	}
	for _, c := range listed {
		add(c.Location)
	}
	slices.Sort(out)
	return out
}

// humanDuration says d as a person would: "10 minutes", "7 days".
func humanDuration(d time.Duration) string {
	n, unit := int(d/time.Minute), "minute"
	switch {
	case d >= 24*time.Hour && d%(24*time.Hour) == 0:
		n, unit = int(d/(24*time.Hour)), "day"
	case d >= time.Hour && d%time.Hour == 0:
		n, unit = int(d/time.Hour), "hour"
	}
	if n == 1 {
		return "1 " + unit
	}
	return strconv.Itoa(n) + " " + unit + "s"
}

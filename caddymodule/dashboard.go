package caddymodule

import (
	"cmp"
	"context"
	"crypto/rand"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/portalgate/portalgate/caddymodule/internal/identity"
	"github.com/portalgate/portalgate/caddymodule/internal/link"
	"github.com/portalgate/portalgate/caddymodule/internal/portal"
	"github.com/portalgate/portalgate/caddymodule/internal/store"
)

// dashboardPath is the staff dashboard on the portal's site. Everything
// below it needs a staff member signed in by the authenticator in front.
const dashboardPath = "/dashboard/"

// Limits of what the dashboard shows at once.
const (
	dashboardLinks    = 50
	dashboardContacts = 100
)

// linkTTLChoices are the expiries the generate form offers (up to link_max_ttl).
var linkTTLChoices = []struct{ value, label string }{
	{"15m", "15 minutes"}, {"1h", "1 hour"}, {"8h", "8 hours"}, {"24h", "24 hours"}, {"7d", "7 days"},
}

// dashboard serves the staff dashboard: Actions → Generate Magic Link, the
// recent links, Open for every app, and Settings → Custom Links. Every POST
// must come from the dashboard's own page with a token bound to the staff
// member: their browser sends basic_auth credentials to any site's forms.
func (h *Handler) dashboard(w http.ResponseWriter, r *http.Request) error {
	if r.URL.Path == strings.TrimSuffix(dashboardPath, "/") {
		http.Redirect(w, r, dashboardPath, http.StatusPermanentRedirect)
		return nil
	}
	st, p := h.app.staffOf(r)
	if p != nil {
		return h.fail(w, r, *p)
	}
	noStore(w)
	route := strings.TrimPrefix(r.URL.Path, dashboardPath)
	switch r.Method {
	case http.MethodGet, http.MethodHead:
	case http.MethodPost:
		if !h.sameOrigin(r) || !h.app.checkCSRF("dashboard", st.Username, formValue(w, r, "csrf")) {
			return h.fail(w, r, problemCSRF)
		}
	default:
		return h.fail(w, r, problemMethod)
	}
	post := r.Method == http.MethodPost
	// Writes complete even if the browser hangs up.
	ctx := context.WithoutCancel(r.Context())
	var err error
	switch {
	case route == "" && !post:
		err = h.overview(w, r, st)
	case route == "generate" && !post:
		err = h.generateForm(w, r, st)
	case route == "generate":
		err = h.generate(ctx, w, r, st)
	case route == "open" && post:
		err = h.openAsStaff(w, r, st)
	case route == "revoke" && post:
		err = h.revokeFromDashboard(ctx, w, r, st)
	case route == "settings/links" && !post:
		err = h.menuSettings(w, r, st, menuForm{})
	case route == "settings/links":
		err = h.editMenu(ctx, w, r, st)
	case route == "" || route == "open" || route == "revoke":
		return h.fail(w, r, problemMethod)
	default:
		return h.fail(w, r, problemNotFound)
	}
	if err != nil {
		h.logger.Error("dashboard", zap.String("route", route), zap.Error(err))
		return h.fail(w, r, problemStore)
	}
	return nil
}

// dashboardPage renders a dashboard page: it may run the dashboard's one
// script, and its forms may lead on to the apps (Open redirects there).
func (h *Handler) dashboardPage(w http.ResponseWriter, status int, name string, data any) error {
	return h.pageWithCSP(w, status, name, data, h.dashboardCSP)
}

func (h *Handler) staffInfo(st Staff) portal.StaffInfo {
	return portal.StaffInfo{
		Name: st.Username, Role: string(st.Role), Location: st.Location,
		Agency: st.Role == identity.AgencyUser, CSRF: h.app.csrfToken("dashboard", st.Username),
	}
}

// overview is the dashboard's front page.
func (h *Handler) overview(w http.ResponseWriter, r *http.Request, st Staff) error {
	links, err := h.app.store.Links(r.Context())
	if err != nil {
		return err
	}
	data := portal.Dashboard{Staff: h.staffInfo(st), Notice: dashboardNotices[r.URL.Query().Get("done")]}
	data.Apps = append(data.Apps, portal.AppEntry{Name: PortalName, Title: "Portal home"})
	for _, name := range h.app.appNames() {
		data.Apps = append(data.Apps, portal.AppEntry{Name: name, Title: h.app.targets[name].title})
	}
	now := h.app.now()
	for _, l := range links {
		if !st.sees(l.User.Location) {
			continue
		}
		if len(data.Links) == dashboardLinks {
			break
		}
		state, status := linkStatus(l, now)
		data.Links = append(data.Links, portal.LinkRow{
			ID: l.ID, For: displayName(l.User), Type: string(l.User.Type), Target: h.app.targetTitle(l.App),
			Path: l.Path, State: state, Status: status, Issued: formatTime(l.IssuedAt), Expires: formatTime(l.ExpiresAt),
			Revocable: state == "unused" || state == "partly_used",
		})
	}
	return h.dashboardPage(w, http.StatusOK, "dashboard.html", data)
}

var dashboardNotices = map[string]string{
	"revoked": "The link is revoked: it no longer signs anyone in.",
}

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

func (a *App) targetTitle(name string) string {
	if name == PortalName {
		return "Portal home"
	}
	if t := a.targets[name]; t != nil {
		return t.title
	}
	return name
}

// generateInput is the generate form as submitted.
type generateInput struct {
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
	}
	return in
}

// generateForm shows Actions → Generate Magic Link; ?q= searches contacts.
func (h *Handler) generateForm(w http.ResponseWriter, r *http.Request, st Staff) error {
	in := readGenerateInput(r)
	if in.ttl == "" {
		in.ttl = linkTTLChoices[0].value
	}
	if in.uses == "" {
		in.uses = "1"
	}
	return h.renderGenerate(r.Context(), w, http.StatusOK, st, in, nil, nil)
}

func (h *Handler) renderGenerate(ctx context.Context, w http.ResponseWriter, status int, st Staff, in generateInput, errs map[string]string, result *portal.Generated) error {
	contacts, err := h.app.visibleContacts(ctx, st, in.query)
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
		Staff: h.staffInfo(st), Query: in.query, Who: in.who, Result: result, Errors: errs,
		NewID: in.newID, NewEmail: in.newEmail, NewName: in.newName, NewLocation: in.newLocation,
		Path: in.path, Uses: in.uses, LockedLocation: st.Location,
	}
	for _, c := range contacts {
		label := displayName(identity.User{ID: c.ID, Name: c.Name, Email: c.Email})
		if c.Location != "" {
			label += " · " + c.Location
		}
		data.Contacts = append(data.Contacts, portal.Option{Value: c.ID, Label: label, Selected: c.ID == in.contact})
	}
	data.Targets = append(data.Targets, portal.Option{Value: PortalName, Label: "Portal home", Selected: in.app == PortalName})
	for _, name := range h.app.appNames() {
		data.Targets = append(data.Targets, portal.Option{Value: name, Label: h.app.targets[name].title, Selected: in.app == name})
	}
	for _, c := range linkTTLChoices {
		if d, _ := caddy.ParseDuration(c.value); d <= time.Duration(h.app.LinkMaxTTL) {
			data.TTLs = append(data.TTLs, portal.Option{Value: c.value, Label: c.label, Selected: c.value == in.ttl})
		}
	}
	return h.dashboardPage(w, status, "generate.html", data)
}

// visibleContacts are the contacts st may see that match query (by id,
// name or e-mail, ignoring case), by name, at most dashboardContacts.
func (a *App) visibleContacts(ctx context.Context, st Staff, query string) ([]store.Contact, error) {
	all, err := a.store.Contacts(ctx)
	if err != nil {
		return nil, err
	}
	q := strings.ToLower(query)
	var out []store.Contact
	for _, c := range all {
		if !st.sees(c.Location) {
			continue
		}
		if q != "" && !strings.Contains(strings.ToLower(c.ID+"\x00"+c.Name+"\x00"+c.Email), q) {
			continue
		}
		out = append(out, c)
	}
	slices.SortFunc(out, func(x, y store.Contact) int {
		return cmp.Or(strings.Compare(strings.ToLower(cmp.Or(x.Name, x.Email, x.ID)), strings.ToLower(cmp.Or(y.Name, y.Email, y.ID))), strings.Compare(x.ID, y.ID))
	})
	if len(out) > dashboardContacts {
		out = out[:dashboardContacts]
	}
	return out, nil
}

// generate mints the link the form asks for and shows it once.
func (h *Handler) generate(ctx context.Context, w http.ResponseWriter, r *http.Request, st Staff) error {
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
		c, err := h.app.store.Contact(ctx, in.contact)
		if errors.Is(err, store.ErrNotFound) || (err == nil && !st.sees(c.Location)) {
			errs["contact"] = "There is no such contact among yours."
			break
		}
		if err != nil {
			return err
		}
		user = identity.User{ID: c.ID, Email: c.Email, Name: c.Name, Location: c.Location, Type: identity.Contact}
	case "new":
		loc := in.newLocation
		if st.Role == identity.SubaccountUser {
			if loc != "" && loc != st.Location {
				errs["new_location"] = "You can add contacts to your own location only (" + st.Location + ")."
			}
			loc = st.Location
		}
		user = identity.User{ID: in.newID, Email: in.newEmail, Name: in.newName, Location: loc, Type: identity.Contact}
		_, isStaff := h.app.staff[in.newID]
		switch _, err := h.app.store.Contact(ctx, in.newID); {
		case in.newID == "":
			errs["new_id"] = "A contact id is required."
		case err == nil:
			// A new contact never takes over a known one (nor its location).
			errs["new_id"] = "A contact with this id exists already: search for it and choose it."
		case !errors.Is(err, store.ErrNotFound):
			return err
		case isStaff:
			errs["new_id"] = "This id is a staff member's: choose another."
		default:
			if err := user.Validate(); err != nil {
				errs["new_id"] = "This contact cannot be used: " + err.Error() + "."
			}
		}
		if in.newEmail != "" && !strings.Contains(in.newEmail, "@") {
			errs["new_email"] = "This is not an e-mail address."
		}
	default:
		errs["who"] = "Choose who the link is for."
	}
	if h.app.targets[in.app] == nil {
		errs["app"] = "Choose where the link leads."
	}
	path := cmp.Or(in.path, "/")
	if link.CheckPath(path) != nil {
		errs["path"] = "A landing path starts with / and stays inside the app, such as /lessons/1."
	}
	if d, err := caddy.ParseDuration(in.ttl); err != nil || d <= 0 || d > time.Duration(h.app.LinkMaxTTL) {
		errs["ttl"] = "Choose one of the expiries offered."
	}
	uses, err := strconv.Atoi(cmp.Or(in.uses, "1"))
	if err != nil || uses < 1 || uses > link.MaxUses {
		errs["uses"] = "Uses is a whole number from 1 to " + strconv.Itoa(link.MaxUses) + "."
	}
	if len(errs) > 0 {
		return h.renderGenerate(ctx, w, http.StatusUnprocessableEntity, st, in, errs, nil)
	}
	resp, err := h.app.Mint(ctx, MintRequest{App: in.app, User: user, Path: path, TTL: in.ttl, Uses: uses}, "staff:"+st.Username)
	if errors.Is(err, errInput) {
		errs["form"] = strings.TrimPrefix(err.Error(), errInput.Error()+": ")
		return h.renderGenerate(ctx, w, http.StatusUnprocessableEntity, st, in, errs, nil)
	}
	if err != nil {
		return err
	}
	qr, err := portal.QR(resp.URL)
	if err != nil {
		// Too long for a QR code (a long landing path): the link stands alone.
		h.logger.Warn("no QR code for a generated link", zap.String("link_id", resp.ID), zap.Error(err))
	}
	result := &portal.Generated{
		URL: resp.URL, For: displayName(user), Target: h.app.targetTitle(in.app),
		Expires: formatTime(resp.ExpiresAt), Uses: uses, QR: qr,
	}
	if in.who == "new" {
		// The new contact is in the directory now: offer it as chosen.
		in.who, in.contact, in.newID, in.newEmail, in.newName, in.newLocation = "contact", user.ID, "", "", "", ""
	}
	return h.renderGenerate(ctx, w, http.StatusOK, st, in, nil, result)
}

// openAsStaff signs the staff member into an app as themselves: "Open".
func (h *Handler) openAsStaff(w http.ResponseWriter, r *http.Request, st Staff) error {
	t := h.app.targets[r.PostFormValue("app")]
	if t == nil {
		return h.fail(w, r, problemNotFound)
	}
	req := link.Request{App: t.name, User: st.user(), TTL: launchTTL}
	if t.name == PortalName {
		req.Apps = h.app.appNames()
	}
	l, err := h.app.issue("staff:"+st.Username, req)
	if err != nil {
		return err
	}
	http.Redirect(w, r, t.magicURL(l.Token), http.StatusSeeOther)
	return nil
}

// revokeFromDashboard revokes one of the links the staff member may see.
func (h *Handler) revokeFromDashboard(ctx context.Context, w http.ResponseWriter, r *http.Request, st Staff) error {
	id := r.PostFormValue("id")
	links, err := h.app.store.Links(ctx)
	if err != nil {
		return err
	}
	i := slices.IndexFunc(links, func(l store.LinkRecord) bool { return l.ID == id && st.sees(l.User.Location) })
	if i < 0 {
		return h.fail(w, r, problemNotFound)
	}
	if err := h.app.RevokeLink(ctx, "staff:"+st.Username, id); err != nil {
		return err
	}
	http.Redirect(w, r, dashboardPath+"?done=revoked", http.StatusSeeOther)
	return nil
}

// menuForm is the custom link form as submitted, or as an item to edit.
type menuForm struct {
	item   store.MenuItem
	kind   string
	errs   map[string]string
	status int
}

// menuSettings shows Settings → Custom Links.
func (h *Handler) menuSettings(w http.ResponseWriter, r *http.Request, st Staff, form menuForm) error {
	menu, err := h.app.store.Menu(r.Context())
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
	data := portal.Settings{Staff: h.staffInfo(st), Errors: form.errs}
	for _, it := range h.app.fixedMenu {
		data.Fixed = append(data.Fixed, h.app.menuRow(it))
	}
	for _, it := range menu.Items {
		data.Items = append(data.Items, h.app.menuRow(it))
	}
	f := form.item
	kind := cmp.Or(form.kind, "app")
	if f.URL != "" {
		kind = "url"
	}
	data.Form = portal.MenuForm{ID: f.ID, Title: f.Title, Kind: kind, URL: f.URL, Roles: map[string]bool{}}
	roles := f.Roles
	if roles == nil {
		roles = allRoles
	}
	for _, role := range roles {
		data.Form.Roles[string(role)] = true
	}
	for _, name := range h.app.appNames() {
		data.Form.Apps = append(data.Form.Apps, portal.Option{Value: name, Label: h.app.targets[name].title, Selected: f.App == name})
	}
	for _, o := range []struct{ value, label string }{{OpenCurrentTab, "Current tab"}, {OpenNewTab, "New tab"}, {OpenIframe, "Inside the portal (iframe)"}} {
		data.Form.Opens = append(data.Form.Opens, portal.Option{Value: o.value, Label: o.label, Selected: o.value == cmp.Or(f.Open, OpenCurrentTab)})
	}
	return h.dashboardPage(w, cmp.Or(form.status, http.StatusOK), "settings.html", data)
}

func (a *App) menuRow(it store.MenuItem) portal.MenuRow {
	row := portal.MenuRow{ID: it.ID, Title: it.Title, Target: it.URL, Open: it.Open}
	if it.App != "" {
		row.Target = "app: " + a.targetTitle(it.App) + " (signed in)"
	}
	for _, role := range it.Roles {
		row.Roles = append(row.Roles, string(role))
	}
	return row
}

// editMenu adds, saves, deletes or moves a custom link. Only agency users
// edit the menu; everyone on the dashboard may read it.
func (h *Handler) editMenu(ctx context.Context, w http.ResponseWriter, r *http.Request, st Staff) error {
	if st.Role != identity.AgencyUser {
		return h.fail(w, r, problemAgencyOnly)
	}
	id := r.PostFormValue("id")
	action := r.PostFormValue("action")
	var change func([]store.MenuItem) ([]store.MenuItem, error)
	switch action {
	case "save":
		it := store.MenuItem{ID: id, Title: r.PostFormValue("title"), Open: r.PostFormValue("open")}
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
			return h.menuSettings(w, r, st, menuForm{item: it, kind: kind, status: http.StatusUnprocessableEntity,
				errs: map[string]string{"roles": "Choose who sees the link."}})
		}
		if errs := h.app.checkMenuItem(&it); len(errs) > 0 {
			return h.menuSettings(w, r, st, menuForm{item: it, kind: kind, errs: errs, status: http.StatusUnprocessableEntity})
		}
		change = saveMenuItem(it)
	case "delete", "up", "down":
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
		return h.fail(w, r, problemBadForm)
	}
	err := h.app.updateMenu(ctx, change)
	if errors.Is(err, errMenuItemGone) {
		return h.fail(w, r, problemNotFound)
	}
	if err != nil {
		return err
	}
	h.app.audit.menuChanged("staff:"+st.Username, action)
	http.Redirect(w, r, dashboardPath+"settings/links", http.StatusSeeOther)
	return nil
}

var errMenuItemGone = errors.New("no such menu item")

// saveMenuItem is the change that adds it (no id yet) or replaces the item
// with its id. The id of a new item is chosen once, here: updateMenu may
// apply the change again to a fresher menu.
func saveMenuItem(it store.MenuItem) func([]store.MenuItem) ([]store.MenuItem, error) {
	isNew := it.ID == ""
	if isNew {
		it.ID = newMenuID()
	}
	return func(items []store.MenuItem) ([]store.MenuItem, error) {
		if isNew {
			return append(items, it), nil
		}
		i := slices.IndexFunc(items, func(x store.MenuItem) bool { return x.ID == it.ID })
		if i < 0 {
			return nil, errMenuItemGone
		}
		items[i] = it
		return items, nil
	}
}

// updateMenu applies change to the stored menu, again if another write came
// first: two staff members editing at once both keep their change.
func (a *App) updateMenu(ctx context.Context, change func([]store.MenuItem) ([]store.MenuItem, error)) error {
	for range 8 {
		m, err := a.store.Menu(ctx)
		if err != nil {
			return err
		}
		items, err := change(slices.Clone(m.Items))
		if err != nil {
			return err
		}
		if _, err = a.store.SetMenu(ctx, items, m.Version); !errors.Is(err, store.ErrConflict) {
			return err
		}
	}
	return store.ErrConflict
}

// newMenuID names a menu item: random, so ids never clash across instances.
func newMenuID() string { return "m" + strings.ToLower(rand.Text()[:12]) }

// portalMenu is the menu a signed-in user sees: their apps and the custom
// links for their role, with magic items only for apps they may open.
type portalMenu struct {
	Apps  []menuApp  `json:"apps"`
	Links []menuLink `json:"links"`
}

type menuApp struct {
	Name  string `json:"name"`
	Title string `json:"title"`
	URL   string `json:"url"`
}

type menuLink struct {
	ID    string `json:"id"`
	Title string `json:"title"`
	URL   string `json:"url"`
	Open  string `json:"open"`
	// App is set for a magic item: URL launches it signed in.
	App string `json:"app,omitempty"`
}

// menuFor builds the menu of a session's user. A magic item's URL is the
// portal's launch address: a one-time token is never written into a menu.
func (a *App) menuFor(ctx context.Context, u identity.User, apps []string) (portalMenu, error) {
	m, err := a.store.Menu(ctx)
	if err != nil {
		return portalMenu{}, err
	}
	portalOrigin := a.targets[PortalName].origin
	out := portalMenu{Apps: []menuApp{}, Links: []menuLink{}}
	for _, name := range a.appNames() {
		if t := a.targets[name]; t.allowed(apps) {
			out.Apps = append(out.Apps, menuApp{Name: name, Title: t.title, URL: portalOrigin + launchPrefix + name})
		}
	}
	role := cmp.Or(u.Type, identity.Contact)
	for _, it := range slices.Concat(a.fixedMenu, m.Items) {
		if !slices.Contains(it.Roles, role) {
			continue
		}
		l := menuLink{ID: it.ID, Title: it.Title, URL: it.URL, Open: it.Open}
		if it.App != "" {
			t := a.targets[it.App]
			if t == nil || !t.allowed(apps) {
				continue
			}
			l.App, l.URL = it.App, portalOrigin+launchPrefix+it.App
		}
		out.Links = append(out.Links, l)
	}
	return out, nil
}

// menuAPI is GET /_portalgate/api/menu: the signed-in user's menu as JSON,
// for a portal front end that renders its own.
func (h *Handler) menuAPI(w http.ResponseWriter, r *http.Request) error {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return h.fail(w, r, problemMethod)
	}
	_, s, err := h.session(r)
	if err != nil {
		return h.noSession(w, r, err)
	}
	m, err := h.app.menuFor(r.Context(), s.User, s.Apps)
	if err != nil {
		h.logger.Error("reading the menu", zap.Error(err))
		return h.fail(w, r, problemStore)
	}
	noStore(w)
	return writeJSON(w, http.StatusOK, struct {
		User identity.User `json:"user"`
		portalMenu
	}{s.User, m})
}

// originOf is the origin of an absolute URL, for a CSP source list.
func originOf(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	return u.Scheme + "://" + u.Host
}

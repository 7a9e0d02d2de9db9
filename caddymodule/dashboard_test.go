package caddymodule

import (
	"encoding/json"
	"fmt"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

// Staff of the dashboard tests: name → password. basic_auth signs them in;
// "stranger" passes basic_auth but is not staff.
var testStaff = map[string]string{"agency": "agency-pw", "sub": "sub-pw", "stranger": "stranger-pw"}

// newStaffGateway is a gateway whose portal puts basic_auth in front of the
// dashboard, with an agency user and a sub-account user of location loc_a.
func newStaffGateway(t *testing.T, extra string) *testCaddy {
	t.Helper()
	var users strings.Builder
	for name, pw := range testStaff {
		// The lowest cost: the tests measure the gateway, not bcrypt.
		h, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&users, "\t\t%s %s\n", name, h)
	}
	g := &testCaddy{t: t}
	addrs := freeAddrs(t, 4)
	g.admin, g.portal, g.courses, g.community = addrs[0], addrs[1], addrs[2], addrs[3]
	g.globalExtra = "store memory\n\t\tstaff agency agency_user\n\t\tstaff sub subaccount_user location loc_a\n\t\t" + extra
	g.portalSite = "basic_auth /dashboard* {\n" + users.String() + "\t}"
	return g.start()
}

// staff is one staff member's browser on the dashboard.
type staff struct {
	g    *testCaddy
	c    *http.Client
	name string
}

func (g *testCaddy) staff(name string) *staff { return &staff{g: g, c: g.client(), name: name} }

// get loads a dashboard page.
func (s *staff) get(path string) resp {
	s.g.t.Helper()
	return s.g.do(s.c, http.MethodGet, "http://"+s.g.portal+path, browser, s.auth())
}

// post submits a dashboard form as the page does: same origin, with the
// CSRF token the dashboard's pages carry.
func (s *staff) post(path string, form url.Values) resp {
	s.g.t.Helper()
	form.Set("csrf", s.csrf())
	return s.postRaw(path, form, "Origin: http://"+s.g.portal)
}

func (s *staff) postRaw(path string, form url.Values, headers ...string) resp {
	s.g.t.Helper()
	headers = append(headers, browser, s.auth(), "Content-Type: application/x-www-form-urlencoded")
	return s.g.send(s.c, http.MethodPost, "http://"+s.g.portal+path, strings.NewReader(form.Encode()), headers...)
}

func (s *staff) auth() string {
	req, _ := http.NewRequest(http.MethodGet, "/", nil)
	req.SetBasicAuth(s.name, testStaff[s.name])
	return "Authorization: " + req.Header.Get("Authorization")
}

func (s *staff) csrf() string {
	s.g.t.Helper()
	r := s.get(dashboardPath)
	m := csrfField.FindStringSubmatch(r.body)
	if m == nil {
		s.g.t.Fatalf("no CSRF token on the dashboard (%d):\n%s", r.StatusCode, r.body)
	}
	return m[1]
}

var magicLinkField = regexp.MustCompile(`id="magic-link" type="text" readonly value="([^"]+)"`)

// generate submits Actions → Generate Magic Link and returns the link shown.
func (s *staff) generate(form url.Values) string {
	s.g.t.Helper()
	r := s.post("/dashboard/generate", form)
	m := magicLinkField.FindStringSubmatch(r.body)
	if r.StatusCode != http.StatusOK || m == nil {
		s.g.t.Fatalf("generate %v: %d, no link:\n%s", form, r.StatusCode, r.body)
	}
	return html.UnescapeString(m[1])
}

func TestDashboard_NoAuthenticatorInFrontRefusesEveryone(t *testing.T) {
	g := newGateway(t, "store memory\n\t\tstaff agency agency_user")
	for _, path := range []string{"/dashboard/", "/dashboard/generate", "/dashboard/settings/links"} {
		r := g.do(g.client(), http.MethodGet, "http://"+g.portal+path, browser)
		if r.StatusCode != http.StatusUnauthorized || !strings.Contains(r.body, "Staff sign-in required") {
			t.Fatalf("%s without an authenticator: %d %s", path, r.StatusCode, r.body)
		}
	}
	r := g.do(g.client(), http.MethodGet, "http://"+g.portal+"/dashboard", browser)
	if r.StatusCode != http.StatusPermanentRedirect || r.Header.Get("Location") != dashboardPath {
		t.Fatalf("/dashboard: %d → %s", r.StatusCode, r.Header.Get("Location"))
	}
}

func TestDashboard_UnlistedAuthenticatedUserIsForbidden(t *testing.T) {
	g := newStaffGateway(t, "")
	if r := g.staff("stranger").get(dashboardPath); r.StatusCode != http.StatusForbidden || !strings.Contains(r.body, "Not a staff member") {
		t.Fatalf("stranger: %d %s", r.StatusCode, r.body)
	}
	if r := g.staff("agency").get(dashboardPath); r.StatusCode != http.StatusOK || !strings.Contains(r.body, "Generate Magic Link") {
		t.Fatalf("agency user: %d %s", r.StatusCode, r.body)
	}
}

func TestDashboard_ContactSessionCannotReachTheDashboard(t *testing.T) {
	g := newStaffGateway(t, "")
	c := g.client()
	if r := g.do(c, http.MethodGet, g.mint(MintRequest{App: "portal", User: userOf("c_1")}).URL, browser); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("portal link: %d", r.StatusCode)
	}
	// The contact's portal session is no staff sign-in: basic_auth asks.
	r := g.do(c, http.MethodGet, "http://"+g.portal+dashboardPath, browser)
	if r.StatusCode != http.StatusUnauthorized || strings.Contains(r.body, "Recent links") {
		t.Fatalf("contact on the dashboard: %d %s", r.StatusCode, r.body)
	}
}

func TestDashboard_GenerateMagicLinkForANewContactSignsThemIntoCourses(t *testing.T) {
	g := newStaffGateway(t, "")
	ag := g.staff("agency")
	form := url.Values{"who": {"new"}, "new_id": {"c_ada"}, "new_email": {"ada@example.com"}, "new_name": {"Ada Lovelace"},
		"new_location": {"loc_a"}, "app": {"courses"}, "path": {"/lessons/1"}, "ttl": {"1h"}, "uses": {"1"}}
	link := ag.generate(form)
	if !strings.HasPrefix(link, "http://"+g.courses+magicPath+"?token=") {
		t.Fatalf("generated %q", link)
	}
	// Whoever opens the link lands in Courses as the contact.
	c := g.client()
	land := g.do(c, http.MethodGet, link, browser)
	if land.StatusCode != http.StatusSeeOther || land.Header.Get("Location") != "http://"+g.courses+"/lessons/1" {
		t.Fatalf("redeem: %d → %s", land.StatusCode, land.Header.Get("Location"))
	}
	h := upstreamHeaders(t, g.do(c, http.MethodGet, land.Header.Get("Location")))
	if h.Get("X-Portal-User-Id") != "c_ada" || h.Get("X-Portal-User-Type") != "contact" || h.Get("X-Portal-Location-Id") != "loc_a" {
		t.Fatalf("courses sees %v", h)
	}
	// The dashboard lists it as used; the contact is in the directory.
	if r := ag.get(dashboardPath); !strings.Contains(r.body, "status-used") || !strings.Contains(r.body, "Ada Lovelace") {
		t.Fatalf("recent links:\n%s", r.body)
	}
	if r := ag.get("/dashboard/generate?q=ADA"); !strings.Contains(r.body, `<option value="c_ada">Ada Lovelace &lt;ada@example.com&gt; · loc_a</option>`) {
		t.Fatalf("contact search:\n%s", r.body)
	}
	// Generating again for the known contact, as "myself", for the portal.
	if l := ag.generate(url.Values{"who": {"contact"}, "contact": {"c_ada"}, "app": {"portal"}, "ttl": {"15m"}, "uses": {"3"}}); !strings.HasPrefix(l, "http://"+g.portal+magicPath) {
		t.Fatalf("portal link: %q", l)
	}
	if l := ag.generate(url.Values{"who": {"myself"}, "app": {"communities"}, "ttl": {"15m"}, "uses": {"1"}}); !strings.HasPrefix(l, "http://"+g.community+magicPath) {
		t.Fatalf("own link: %q", l)
	}
}

func TestDashboard_GenerateShowsErrorsNextToTheirFields(t *testing.T) {
	g := newStaffGateway(t, "")
	r := g.staff("agency").post("/dashboard/generate", url.Values{"who": {"new"}, "new_email": {"nope"}, "app": {"nowhere"},
		"path": {"//evil.example.com"}, "ttl": {"100d"}, "uses": {"0"}})
	if r.StatusCode != http.StatusUnprocessableEntity {
		t.Fatalf("bad form: %d", r.StatusCode)
	}
	for _, id := range []string{"new_id-err", "new_email-err", "app-err", "path-err", "ttl-err", "uses-err"} {
		if !strings.Contains(r.body, `id="`+id+`"`) {
			t.Errorf("no error %s on the page", id)
		}
	}
	if strings.Contains(r.body, "magic-link") {
		t.Fatal("a link was generated from a bad form")
	}
}

func TestDashboard_SubaccountUserSeesOnlyItsLocation(t *testing.T) {
	g := newStaffGateway(t, "")
	g.apiCall(http.MethodPost, "contacts", `[{"id":"c_a","name":"Alice A","location":"loc_a"},{"id":"c_b","name":"Bob B","location":"loc_b"}]`, http.StatusOK)
	ag, sub := g.staff("agency"), g.staff("sub")
	ag.generate(url.Values{"who": {"contact"}, "contact": {"c_b"}, "app": {"courses"}, "ttl": {"15m"}, "uses": {"1"}})
	sub.generate(url.Values{"who": {"contact"}, "contact": {"c_a"}, "app": {"courses"}, "ttl": {"15m"}, "uses": {"1"}})

	page := sub.get("/dashboard/generate").body
	if !strings.Contains(page, "Alice A") || strings.Contains(page, "Bob B") {
		t.Fatalf("sub-account contacts:\n%s", page)
	}
	if r := sub.post("/dashboard/generate", url.Values{"who": {"contact"}, "contact": {"c_b"}, "app": {"courses"}, "ttl": {"15m"}, "uses": {"1"}}); r.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(r.body, `id="contact-err"`) {
		t.Fatalf("sub-account minting for another location: %d", r.StatusCode)
	}
	// A new contact of a sub-account user joins its location, whatever is typed.
	if r := sub.post("/dashboard/generate", url.Values{"who": {"new"}, "new_id": {"c_x"}, "new_location": {"loc_b"}, "app": {"courses"}, "ttl": {"15m"}, "uses": {"1"}}); r.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(r.body, `id="new_location-err"`) {
		t.Fatalf("sub-account adding to another location: %d", r.StatusCode)
	}
	subLinks, agLinks := sub.get(dashboardPath).body, ag.get(dashboardPath).body
	if !strings.Contains(subLinks, "Alice A") || strings.Contains(subLinks, "Bob B") {
		t.Fatalf("sub-account recent links:\n%s", subLinks)
	}
	if !strings.Contains(agLinks, "Alice A") || !strings.Contains(agLinks, "Bob B") {
		t.Fatalf("agency recent links:\n%s", agLinks)
	}
	// Revoking another location's link: as if it did not exist.
	bobLink := regexp.MustCompile(`<tr data-link="([^"]+)"><td>Bob B`).FindStringSubmatch(agLinks)
	if bobLink == nil {
		t.Fatal("no row for Bob's link")
	}
	if r := sub.post("/dashboard/revoke", url.Values{"id": {bobLink[1]}}); r.StatusCode != http.StatusNotFound {
		t.Fatalf("sub-account revoking another location's link: %d", r.StatusCode)
	}
	// And only agency users change the custom links.
	if r := sub.post("/dashboard/settings/links", url.Values{"action": {"save"}, "title": {"X"}, "kind": {"app"}, "app": {"courses"}, "roles": {"contact"}}); r.StatusCode != http.StatusForbidden {
		t.Fatalf("sub-account editing the menu: %d", r.StatusCode)
	}
}

func TestDashboard_CrossSiteFormCannotMintOpenOrRevoke(t *testing.T) {
	g := newStaffGateway(t, "")
	ag := g.staff("agency")
	token := ag.csrf()
	for _, path := range []string{"/dashboard/generate", "/dashboard/open", "/dashboard/revoke", "/dashboard/settings/links"} {
		form := url.Values{"who": {"myself"}, "app": {"courses"}, "ttl": {"15m"}, "uses": {"1"}, "action": {"save"}, "title": {"x"}, "kind": {"app"}, "roles": {"contact"}}
		// Another site's page: the browser sends the basic_auth credentials
		// along, but the Origin and the missing token give it away.
		if r := ag.postRaw(path, form, "Origin: https://evil.example.com"); r.StatusCode != http.StatusForbidden {
			t.Errorf("%s from another origin: %d", path, r.StatusCode)
		}
		if r := ag.postRaw(path, form, "Origin: http://"+g.portal); r.StatusCode != http.StatusForbidden {
			t.Errorf("%s without a token: %d", path, r.StatusCode)
		}
		form.Set("csrf", token)
		if r := ag.postRaw(path, form, "Origin: https://evil.example.com"); r.StatusCode != http.StatusForbidden {
			t.Errorf("%s from another origin with a token: %d", path, r.StatusCode)
		}
	}
	// A token is bound to its staff member.
	sub := g.staff("sub")
	if r := sub.postRaw("/dashboard/open", url.Values{"app": {"courses"}, "csrf": {token}}, "Origin: http://"+g.portal); r.StatusCode != http.StatusForbidden {
		t.Fatalf("another staff member's token: %d", r.StatusCode)
	}
}

func TestDashboard_RevokeStopsAnUnusedLink(t *testing.T) {
	g := newStaffGateway(t, "")
	ag := g.staff("agency")
	link := ag.generate(url.Values{"who": {"new"}, "new_id": {"c_rev"}, "app": {"courses"}, "ttl": {"15m"}, "uses": {"1"}})
	row := regexp.MustCompile(`<tr data-link="([^"]+)">`).FindStringSubmatch(ag.get(dashboardPath).body)
	if row == nil {
		t.Fatal("no link row")
	}
	r := ag.post("/dashboard/revoke", url.Values{"id": {row[1]}})
	if r.StatusCode != http.StatusSeeOther {
		t.Fatalf("revoke: %d %s", r.StatusCode, r.body)
	}
	if page := ag.get(r.Header.Get("Location")).body; !strings.Contains(page, "The link is revoked") || !strings.Contains(page, "status-revoked") {
		t.Fatalf("after revoke:\n%s", page)
	}
	if r := g.do(g.client(), http.MethodGet, link, browser); r.StatusCode != http.StatusGone {
		t.Fatalf("revoked link: %d", r.StatusCode)
	}
}

func TestDashboard_StaffOpenSignsIntoTheAppAsThemselves(t *testing.T) {
	g := newStaffGateway(t, "")
	for _, who := range []struct{ name, typ, location string }{{"agency", "agency_user", ""}, {"sub", "subaccount_user", "loc_a"}} {
		s := g.staff(who.name)
		r := s.post("/dashboard/open", url.Values{"app": {"courses"}})
		if r.StatusCode != http.StatusSeeOther || !strings.HasPrefix(r.Header.Get("Location"), "http://"+g.courses+magicPath) {
			t.Fatalf("open: %d → %s", r.StatusCode, r.Header.Get("Location"))
		}
		in := g.do(s.c, http.MethodGet, r.Header.Get("Location"), browser)
		h := upstreamHeaders(t, g.do(s.c, http.MethodGet, in.Header.Get("Location")))
		if h.Get("X-Portal-User-Id") != who.name || h.Get("X-Portal-User-Type") != who.typ || h.Get("X-Portal-Location-Id") != who.location {
			t.Fatalf("%s in courses: %v", who.name, h)
		}
	}
	// Staff opens are not listed as minted links.
	if page := g.staff("agency").get(dashboardPath).body; strings.Contains(page, "data-link=") {
		t.Fatalf("staff opens listed:\n%s", page)
	}
}

// api calls the portal's API with the test API key.
func (g *testCaddy) api(method, route, body string) resp {
	g.t.Helper()
	return g.send(g.client(), method, "http://"+g.portal+apiPrefix+route, strings.NewReader(body),
		"Authorization: Bearer "+testAPIKey, "Content-Type: application/json")
}

// apiCall is api that insists on a status, and returns the body.
func (g *testCaddy) apiCall(method, route, body string, want int) string {
	g.t.Helper()
	r := g.api(method, route, body)
	if r.StatusCode != want {
		g.t.Fatalf("%s %s: %d, want %d: %s", method, route, r.StatusCode, want, r.body)
	}
	return r.body
}

func TestContactsAPI_UpsertsOneOrManyAndRefusesBadInput(t *testing.T) {
	g := newStaffGateway(t, "")
	g.apiCall(http.MethodPost, "contacts", `{"id":"c_1","name":"One","email":"one@example.com"}`, http.StatusOK)
	g.apiCall(http.MethodPost, "contacts", `[{"id":"c_1","name":"One Renamed"},{"id":"c_2","name":"Two"}]`, http.StatusOK)
	page := g.staff("agency").get("/dashboard/generate").body
	if !strings.Contains(page, "One Renamed") || !strings.Contains(page, "Two") || strings.Contains(page, ">One &lt;") {
		t.Fatalf("contacts after sync:\n%s", page)
	}
	for _, bad := range []string{``, `[]`, `{"id":""}`, `{"id":"c","phone":"1"}`, `[{"id":"c\n1"}]`, `{"id":"a"}{"id":"b"}`, `"c_1"`} {
		body := g.apiCall(http.MethodPost, "contacts", bad, http.StatusBadRequest)
		var e map[string]string
		if err := json.Unmarshal([]byte(body), &e); err != nil || e["code"] != "bad_request" {
			t.Errorf("%q: %s", bad, body)
		}
	}
	many := "[" + strings.Repeat(`{"id":"x"},`, maxContactsPerCall) + `{"id":"y"}]`
	g.apiCall(http.MethodPost, "contacts", many, http.StatusBadRequest)
	g.apiCall(http.MethodGet, "contacts", "", http.StatusMethodNotAllowed)
}

var menuRow = regexp.MustCompile(`<tr data-item="([^"]+)"><td>([^<]+)</td>`)

// menuTitles lists the stored custom links in order, by id and title.
func (s *staff) menuItems() [][2]string {
	s.g.t.Helper()
	var out [][2]string
	for _, m := range menuRow.FindAllStringSubmatch(s.get("/dashboard/settings/links").body, -1) {
		out = append(out, [2]string{m[1], m[2]})
	}
	return out
}

func TestCustomLinks_AddEditReorderDelete(t *testing.T) {
	g := newStaffGateway(t, `menu_link "Help centre" https://help.example.com new_tab`)
	ag := g.staff("agency")
	add := func(title, kind, target, open string, roles ...string) {
		t.Helper()
		form := url.Values{"action": {"save"}, "title": {title}, "kind": {kind}, "open": {open}, "roles": roles}
		form.Set(map[string]string{"app": "app", "url": "url"}[kind], target)
		if r := ag.post("/dashboard/settings/links", form); r.StatusCode != http.StatusSeeOther {
			t.Fatalf("adding %s: %d %s", title, r.StatusCode, r.body)
		}
	}
	add("My courses", "app", "courses", "current_tab", "contact", "agency_user")
	add("Community", "app", "communities", "iframe", "contact")
	add("Staff wiki", "url", "https://wiki.example.com/", "new_tab", "agency_user", "subaccount_user")
	items := ag.menuItems()
	if len(items) != 3 || items[0][1] != "My courses" || items[2][1] != "Staff wiki" {
		t.Fatalf("menu: %v", items)
	}
	page := ag.get("/dashboard/settings/links").body
	if !strings.Contains(page, "Help centre") || !strings.Contains(page, "set in the Caddyfile") {
		t.Fatalf("the Caddyfile's item is not shown:\n%s", page)
	}
	// Move the wiki up twice, edit it, delete the community item.
	for range 2 {
		ag.post("/dashboard/settings/links", url.Values{"action": {"up"}, "id": {items[2][0]}})
	}
	if r := ag.post("/dashboard/settings/links", url.Values{"action": {"save"}, "id": {items[2][0]}, "title": {"Wiki"}, "kind": {"url"},
		"url": {"https://wiki.example.com/"}, "open": {"new_tab"}, "roles": {"agency_user"}}); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("edit: %d %s", r.StatusCode, r.body)
	}
	ag.post("/dashboard/settings/links", url.Values{"action": {"delete"}, "id": {items[1][0]}})
	got := ag.menuItems()
	if len(got) != 2 || got[0] != [2]string{items[2][0], "Wiki"} || got[1][1] != "My courses" {
		t.Fatalf("after up, up, edit, delete: %v", got)
	}
	if r := ag.post("/dashboard/settings/links", url.Values{"action": {"delete"}, "id": {"gone"}}); r.StatusCode != http.StatusNotFound {
		t.Fatalf("deleting a missing item: %d", r.StatusCode)
	}
	// The edit form is filled from the item.
	if page := ag.get("/dashboard/settings/links?edit=" + items[2][0]).body; !strings.Contains(page, `value="Wiki"`) || !strings.Contains(page, "Edit “Wiki”") {
		t.Fatalf("edit form:\n%s", page)
	}
}

func TestCustomLinks_InvalidItemShowsErrorsByField(t *testing.T) {
	g := newStaffGateway(t, "")
	ag := g.staff("agency")
	for _, c := range []struct {
		form url.Values
		err  string
	}{
		{url.Values{"title": {""}, "kind": {"app"}, "app": {"courses"}, "roles": {"contact"}}, `id="title-err"`},
		{url.Values{"title": {"X"}, "kind": {"url"}, "url": {"javascript:alert(1)"}, "roles": {"contact"}}, `id="target-err"`},
		{url.Values{"title": {"X"}, "kind": {"url"}, "url": {"//evil.example.com"}, "roles": {"contact"}}, `id="target-err"`},
		{url.Values{"title": {"X"}, "kind": {"url"}, "url": {"https://a.example.com;sandbox"}, "roles": {"contact"}}, `id="target-err"`},
		{url.Values{"title": {"X"}, "kind": {"app"}, "app": {"nowhere"}, "roles": {"contact"}}, `id="target-err"`},
		{url.Values{"title": {"X"}, "kind": {"app"}, "app": {"courses"}}, "Choose who sees the link."},
		{url.Values{"title": {"X"}, "kind": {"app"}, "app": {"courses"}, "roles": {"root"}}, "Unknown role"},
	} {
		c.form.Set("action", "save")
		r := ag.post("/dashboard/settings/links", c.form)
		if r.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(r.body, c.err) {
			t.Errorf("%v: %d, want the error %s", c.form, r.StatusCode, c.err)
		}
	}
	if items := ag.menuItems(); len(items) != 0 {
		t.Fatalf("invalid items were stored: %v", items)
	}
}

func TestPortalHome_ShowsTheMenuForTheUsersRoleAndMagicItemsOnlyLaunch(t *testing.T) {
	g := newStaffGateway(t, `menu_link "Help centre" https://help.example.com new_tab contact
		menu_link "Staff only" https://staff.example.com agency_user`)
	ag := g.staff("agency")
	for _, it := range []url.Values{
		{"title": {"My courses"}, "kind": {"app"}, "app": {"courses"}, "open": {"current_tab"}, "roles": {"contact"}},
		{"title": {"Community"}, "kind": {"app"}, "app": {"communities"}, "open": {"iframe"}, "roles": {"contact"}},
	} {
		it.Set("action", "save")
		ag.post("/dashboard/settings/links", it)
	}
	c := g.client()
	// A contact whose portal session may open courses only.
	l := g.mint(MintRequest{App: "portal", User: userOf("c_menu"), Apps: []string{"courses"}})
	g.do(c, http.MethodGet, l.URL, browser)
	home := g.do(c, http.MethodGet, "http://"+g.portal+"/", browser)
	for _, want := range []string{"Help centre", `href="https://help.example.com"`, `target="_blank"`, "My courses", `href="/_portalgate/launch/courses"`} {
		if !strings.Contains(home.body, want) {
			t.Errorf("home lacks %q", want)
		}
	}
	for _, not := range []string{"Staff only", "Community", "token="} {
		if strings.Contains(home.body, not) {
			t.Errorf("home shows %q:\n%s", not, home.body)
		}
	}
	// The menu API says the same, as JSON.
	var m struct {
		User  map[string]string           `json:"user"`
		Apps  []struct{ Name string }     `json:"apps"`
		Links []struct{ URL, App string } `json:"links"`
	}
	r := g.do(c, http.MethodGet, "http://"+g.portal+apiMenuPath)
	if err := json.Unmarshal([]byte(r.body), &m); err != nil || r.StatusCode != http.StatusOK {
		t.Fatalf("menu API: %d %s", r.StatusCode, r.body)
	}
	if m.User["id"] != "c_menu" || len(m.Apps) != 1 || len(m.Links) != 2 || m.Links[1].URL != "http://"+g.portal+launchPrefix+"courses" || m.Links[1].App != "courses" {
		t.Fatalf("menu API: %+v", m)
	}
	if r := g.do(g.client(), http.MethodGet, "http://"+g.portal+apiMenuPath); r.StatusCode != http.StatusUnauthorized {
		t.Fatalf("menu API without a session: %d", r.StatusCode)
	}
}

func TestPortalHome_IframeItemShowsTheAppFramedByThePortalOnly(t *testing.T) {
	g := newStaffGateway(t, `menu_link "Courses inside" app:courses iframe`)
	c := g.client()
	g.do(c, http.MethodGet, g.mint(MintRequest{App: "portal", User: userOf("c_frame")}).URL, browser)
	home := g.do(c, http.MethodGet, "http://"+g.portal+"/", browser)
	if !strings.Contains(home.body, `href="/?view=config-1"`) || strings.Contains(home.body, "<iframe") {
		t.Fatalf("home:\n%s", home.body)
	}
	framed := g.do(c, http.MethodGet, "http://"+g.portal+"/?view=config-1", browser)
	if !strings.Contains(framed.body, `<iframe src="/_portalgate/launch/courses"`) {
		t.Fatalf("framed home:\n%s", framed.body)
	}
	if csp := framed.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "frame-src 'self' http://"+g.courses) {
		t.Fatalf("framed home CSP: %s", csp)
	}
	// The app lets the portal frame it, and no one else.
	in := g.do(c, http.MethodGet, g.do(c, http.MethodGet, "http://"+g.portal+launchPrefix+"courses", browser).Header.Get("Location"), browser)
	app := g.do(c, http.MethodGet, in.Header.Get("Location"))
	if csp := app.Header.Values("Content-Security-Policy"); len(csp) != 1 || csp[0] != "frame-ancestors 'self' http://"+g.portal {
		t.Fatalf("app CSP: %q", csp)
	}
}

func TestDashboard_NewContactCannotTakeOverAKnownOne(t *testing.T) {
	g := newStaffGateway(t, "")
	g.apiCall(http.MethodPost, "contacts", `{"id":"c_b","name":"Bob B","email":"bob@example.com","location":"loc_b"}`, http.StatusOK)
	sub := g.staff("sub")
	for _, id := range []string{"c_b", "agency"} {
		r := sub.post("/dashboard/generate", url.Values{"who": {"new"}, "new_id": {id}, "app": {"courses"}, "ttl": {"15m"}, "uses": {"1"}})
		if r.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(r.body, `id="new_id-err"`) || strings.Contains(r.body, "magic-link") {
			t.Fatalf("a new contact with the id %q of someone else: %d", id, r.StatusCode)
		}
	}
	if page := g.staff("agency").get("/dashboard/generate?q=c_b").body; !strings.Contains(page, "Bob B &lt;bob@example.com&gt; · loc_b") {
		t.Fatalf("the contact changed:\n%s", page)
	}
}

func TestLinkAPI_MintNeverRewritesAKnownContact(t *testing.T) {
	g := newStaffGateway(t, "")
	g.apiCall(http.MethodPost, "contacts", `{"id":"c_a","name":"Alice A","email":"alice@example.com","location":"loc_a"}`, http.StatusOK)
	g.apiCall(http.MethodPost, "links", `{"app":"courses","user":{"id":"c_a"}}`, http.StatusCreated)
	g.apiCall(http.MethodPost, "links", `{"app":"courses","user":{"id":"c_new","name":"New N","location":"loc_a"}}`, http.StatusCreated)
	page := g.staff("sub").get("/dashboard/generate").body
	for _, want := range []string{"Alice A &lt;alice@example.com&gt; · loc_a", "New N · loc_a"} {
		if !strings.Contains(page, want) {
			t.Errorf("the directory lacks %q:\n%s", want, page)
		}
	}
}

func TestDashboard_GenerateForAnyVisibleContactNotOnlyTheFirstPage(t *testing.T) {
	g := newStaffGateway(t, "")
	var cs []string
	for i := range dashboardContacts + 50 {
		cs = append(cs, fmt.Sprintf(`{"id":"c%03d","name":"N%03d","location":"loc_a"}`, i, i))
	}
	g.apiCall(http.MethodPost, "contacts", "["+strings.Join(cs, ",")+"]", http.StatusOK)
	sub := g.staff("sub")
	if page := sub.get("/dashboard/generate").body; strings.Contains(page, "N149") {
		t.Fatal("the contact list is not bounded")
	}
	sub.generate(url.Values{"who": {"contact"}, "contact": {"c149"}, "app": {"courses"}, "ttl": {"15m"}, "uses": {"1"}})
}

func TestDashboard_LinkTooLongForAQRCodeIsStillShown(t *testing.T) {
	g := newStaffGateway(t, "")
	link := g.staff("agency").generate(url.Values{"who": {"myself"}, "app": {"courses"}, "path": {"/" + strings.Repeat("p", 1900)}, "ttl": {"15m"}, "uses": {"1"}})
	if !strings.Contains(link, "token=") {
		t.Fatalf("link %q", link)
	}
}

func TestDashboard_UnknownRoutesAndMethods(t *testing.T) {
	g := newStaffGateway(t, "")
	ag := g.staff("agency")
	for _, c := range []struct {
		method, path string
		status       int
		allow        string
	}{
		{http.MethodGet, "/dashboard/open", http.StatusMethodNotAllowed, "POST"},
		{http.MethodGet, "/dashboard/revoke", http.StatusMethodNotAllowed, "POST"},
		{http.MethodPut, "/dashboard/generate", http.StatusMethodNotAllowed, "GET, HEAD, POST"},
		{http.MethodPost, "/dashboard/", http.StatusMethodNotAllowed, "GET, HEAD"},
		{http.MethodGet, "/dashboard/nothing", http.StatusNotFound, ""},
	} {
		var r resp
		if c.method == http.MethodPost {
			r = ag.post(c.path, url.Values{})
		} else {
			r = g.do(ag.c, c.method, "http://"+g.portal+c.path, browser, ag.auth())
		}
		if r.StatusCode != c.status || r.Header.Get("Allow") != c.allow {
			t.Errorf("%s %s: %d Allow %q, want %d %q", c.method, c.path, r.StatusCode, r.Header.Get("Allow"), c.status, c.allow)
		}
	}
	if r := ag.post("/dashboard/settings/links", url.Values{"action": {"explode"}}); r.StatusCode != http.StatusBadRequest {
		t.Errorf("unknown menu action: %d", r.StatusCode)
	}
	if r := ag.post("/dashboard/open", url.Values{"app": {"nowhere"}}); r.StatusCode != http.StatusNotFound {
		t.Errorf("opening an unknown app: %d", r.StatusCode)
	}
}

func TestDashboard_LinksOfARevokedUserShowRevoked(t *testing.T) {
	g := newStaffGateway(t, "")
	ag := g.staff("agency")
	ag.generate(url.Values{"who": {"new"}, "new_id": {"c_gone"}, "app": {"courses"}, "ttl": {"15m"}, "uses": {"1"}})
	g.apiCall(http.MethodPost, "users/c_gone/revoke", "", http.StatusOK)
	page := ag.get(dashboardPath).body
	if !strings.Contains(page, "status-revoked") || strings.Contains(page, ">Revoke</button>") {
		t.Fatalf("a revoked user's link:\n%s", page)
	}
}

package gateway

import (
	"context"
	"errors"
	"fmt"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/portalgate/portalgate/caddymodule/internal/store"
	"github.com/portalgate/portalgate/caddymodule/internal/testkit/web"
)

// staff is one staff member's browser on the dashboard.
type staff struct {
	g    *testGateway
	c    *http.Client
	name string
}

func (g *testGateway) staff(name string) *staff { return &staff{g: g, c: g.client(), name: name} }

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
	return web.CSRF(s.g.t, s.get(DashboardPath).Body)
}

var magicLinkField = regexp.MustCompile(`id="magic-link" type="text" readonly value="([^"]+)"`)

// generate submits Actions → Generate Magic Link and returns the link shown.
func (s *staff) generate(form url.Values) string {
	s.g.t.Helper()
	r := s.post("/dashboard/generate", form)
	m := magicLinkField.FindStringSubmatch(r.Body)
	if r.StatusCode != http.StatusOK || m == nil {
		s.g.t.Fatalf("generate %v: %d, no link:\n%s", form, r.StatusCode, r.Body)
	}
	return html.UnescapeString(m[1])
}

func TestDashboard_NoAuthenticatorInFrontRefusesEveryone(t *testing.T) {
	t.Parallel()
	g := newTestGateway(t, withStaff(), withoutAuthenticator())
	for _, path := range []string{"/dashboard/", "/dashboard/generate", "/dashboard/settings/links"} {
		r := g.do(g.client(), http.MethodGet, "http://"+g.portal+path, browser)
		if r.StatusCode != http.StatusUnauthorized || !strings.Contains(r.Body, "Staff sign-in required") {
			t.Fatalf("%s without an authenticator: %d %s", path, r.StatusCode, r.Body)
		}
	}
	r := g.do(g.client(), http.MethodGet, "http://"+g.portal+"/dashboard", browser)
	if r.StatusCode != http.StatusPermanentRedirect || r.Header.Get("Location") != DashboardPath {
		t.Fatalf("/dashboard: %d → %s", r.StatusCode, r.Header.Get("Location"))
	}
}

func TestDashboard_UnlistedAuthenticatedUserIsForbidden(t *testing.T) {
	t.Parallel()
	g := newTestGateway(t, withStaff())
	if r := g.staff("stranger").get(DashboardPath); r.StatusCode != http.StatusForbidden || !strings.Contains(r.Body, "Not a staff member") {
		t.Fatalf("stranger: %d %s", r.StatusCode, r.Body)
	}
	if r := g.staff("agency").get(DashboardPath); r.StatusCode != http.StatusOK || !strings.Contains(r.Body, "Generate Magic Link") {
		t.Fatalf("agency user: %d %s", r.StatusCode, r.Body)
	}
}

func TestDashboard_ContactSessionCannotReachTheDashboard(t *testing.T) {
	t.Parallel()
	g := newTestGateway(t, withStaff())
	c := g.client()
	if r := g.do(c, http.MethodGet, g.mint(MintRequest{App: "portal", User: userOf("c_1")}).URL, browser); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("portal link: %d", r.StatusCode)
	}
	// The contact's portal session is no staff sign-in: basic_auth asks.
	r := g.do(c, http.MethodGet, "http://"+g.portal+DashboardPath, browser)
	if r.StatusCode != http.StatusUnauthorized || strings.Contains(r.Body, "Recent links") {
		t.Fatalf("contact on the dashboard: %d %s", r.StatusCode, r.Body)
	}
}

func TestDashboard_GenerateMagicLinkForANewContactSignsThemIntoCourses(t *testing.T) {
	t.Parallel()
	g := newTestGateway(t, withStaff())
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
	h := web.Echoed(t, g.do(c, http.MethodGet, land.Header.Get("Location")))
	if h.Get("X-Portal-User-Id") != "c_ada" || h.Get("X-Portal-User-Type") != "contact" || h.Get("X-Portal-Location-Id") != "loc_a" {
		t.Fatalf("courses sees %v", h)
	}
	// The dashboard lists it as used; the contact is in the directory.
	if r := ag.get(DashboardPath); !strings.Contains(r.Body, "status-used") || !strings.Contains(r.Body, "Ada Lovelace") {
		t.Fatalf("recent links:\n%s", r.Body)
	}
	if r := ag.get("/dashboard/generate?q=ADA"); !strings.Contains(r.Body, `<option value="c_ada">Ada Lovelace &lt;ada@example.com&gt; · loc_a</option>`) {
		t.Fatalf("contact search:\n%s", r.Body)
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
	t.Parallel()
	g := newTestGateway(t, withStaff())
	r := g.staff("agency").post("/dashboard/generate", url.Values{"who": {"new"}, "new_email": {"nope"}, "app": {"nowhere"},
		"path": {"//evil.example.com"}, "ttl": {"100d"}, "uses": {"0"}})
	if r.StatusCode != http.StatusUnprocessableEntity {
		t.Fatalf("bad form: %d", r.StatusCode)
	}
	for _, id := range []string{"new_email-err", "app-err", "path-err", "ttl-err", "uses-err"} {
		if !strings.Contains(r.Body, `id="`+id+`"`) {
			t.Errorf("no error %s on the page", id)
		}
	}
	if strings.Contains(r.Body, "magic-link") {
		t.Fatal("a link was generated from a bad form")
	}
}

func TestDashboard_SubaccountUserSeesOnlyItsLocation(t *testing.T) {
	t.Parallel()
	g := newTestGateway(t, withStaff())
	g.apiCall(http.MethodPost, "contacts", `[{"id":"c_a","name":"Alice A","location":"loc_a"},{"id":"c_b","name":"Bob B","location":"loc_b"}]`, http.StatusOK)
	ag, sub := g.staff("agency"), g.staff("sub")
	ag.generate(url.Values{"who": {"contact"}, "contact": {"c_b"}, "app": {"courses"}, "ttl": {"15m"}, "uses": {"1"}})
	sub.generate(url.Values{"who": {"contact"}, "contact": {"c_a"}, "app": {"courses"}, "ttl": {"15m"}, "uses": {"1"}})

	page := sub.get("/dashboard/generate").Body
	if !strings.Contains(page, "Alice A") || strings.Contains(page, "Bob B") {
		t.Fatalf("sub-account contacts:\n%s", page)
	}
	if r := sub.post("/dashboard/generate", url.Values{"who": {"contact"}, "contact": {"c_b"}, "app": {"courses"}, "ttl": {"15m"}, "uses": {"1"}}); r.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(r.Body, `id="contact-err"`) {
		t.Fatalf("sub-account minting for another location: %d", r.StatusCode)
	}
	// A new contact of a sub-account user joins its location, whatever is typed.
	if r := sub.post("/dashboard/generate", url.Values{"who": {"new"}, "new_id": {"c_x"}, "new_location": {"loc_b"}, "app": {"courses"}, "ttl": {"15m"}, "uses": {"1"}}); r.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(r.Body, `id="new_location-err"`) {
		t.Fatalf("sub-account adding to another location: %d", r.StatusCode)
	}
	subLinks, agLinks := sub.get(DashboardPath).Body, ag.get(DashboardPath).Body
	if !strings.Contains(subLinks, "Alice A") || strings.Contains(subLinks, "Bob B") {
		t.Fatalf("sub-account recent links:\n%s", subLinks)
	}
	if !strings.Contains(agLinks, "Alice A") || !strings.Contains(agLinks, "Bob B") {
		t.Fatalf("agency recent links:\n%s", agLinks)
	}
	// Revoking another location's link: as if it did not exist.
	bobLink := regexp.MustCompile(`<tr data-link="([^"]+)"><td data-label="For">Bob B`).FindStringSubmatch(agLinks)
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
	t.Parallel()
	g := newTestGateway(t, withStaff())
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
	t.Parallel()
	g := newTestGateway(t, withStaff())
	ag := g.staff("agency")
	link := ag.generate(url.Values{"who": {"new"}, "new_id": {"c_rev"}, "new_email": {"rev@example.com"}, "app": {"courses"}, "ttl": {"15m"}, "uses": {"1"}})
	row := regexp.MustCompile(`<tr data-link="([^"]+)">`).FindStringSubmatch(ag.get(DashboardPath).Body)
	if row == nil {
		t.Fatal("no link row")
	}
	r := ag.post("/dashboard/revoke", url.Values{"id": {row[1]}})
	if r.StatusCode != http.StatusSeeOther {
		t.Fatalf("revoke: %d %s", r.StatusCode, r.Body)
	}
	if page := ag.get(r.Header.Get("Location")).Body; !strings.Contains(page, "The link is revoked") || !strings.Contains(page, "status-revoked") {
		t.Fatalf("after revoke:\n%s", page)
	}
	if r := g.do(g.client(), http.MethodGet, link, browser); r.StatusCode != http.StatusGone {
		t.Fatalf("revoked link: %d", r.StatusCode)
	}
}

func TestDashboard_StaffOpenSignsIntoTheAppAsThemselves(t *testing.T) {
	t.Parallel()
	g := newTestGateway(t, withStaff())
	for _, who := range []struct{ name, typ, location string }{{"agency", "agency_user", ""}, {"sub", "subaccount_user", "loc_a"}} {
		s := g.staff(who.name)
		r := s.post("/dashboard/open", url.Values{"app": {"courses"}})
		if r.StatusCode != http.StatusSeeOther || !strings.HasPrefix(r.Header.Get("Location"), "http://"+g.courses+magicPath) {
			t.Fatalf("open: %d → %s", r.StatusCode, r.Header.Get("Location"))
		}
		in := g.do(s.c, http.MethodGet, r.Header.Get("Location"), browser)
		h := web.Echoed(t, g.do(s.c, http.MethodGet, in.Header.Get("Location")))
		if h.Get("X-Portal-User-Id") != who.name || h.Get("X-Portal-User-Type") != who.typ || h.Get("X-Portal-Location-Id") != who.location {
			t.Fatalf("%s in courses: %v", who.name, h)
		}
	}
	// Staff opens are not listed as minted links.
	if page := g.staff("agency").get(DashboardPath).Body; strings.Contains(page, "data-link=") {
		t.Fatalf("staff opens listed:\n%s", page)
	}
}

func TestDashboard_NewContactCannotTakeOverAKnownOne(t *testing.T) {
	t.Parallel()
	g := newTestGateway(t, withStaff())
	g.apiCall(http.MethodPost, "contacts", `{"id":"c_b","name":"Bob B","email":"bob@example.com","location":"loc_b"}`, http.StatusOK)
	sub := g.staff("sub")
	for _, id := range []string{"c_b", "agency"} {
		r := sub.post("/dashboard/generate", url.Values{"who": {"new"}, "new_id": {id}, "new_email": {"new@example.com"}, "app": {"courses"}, "ttl": {"15m"}, "uses": {"1"}})
		if r.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(r.Body, `id="new_id-err"`) || strings.Contains(r.Body, "magic-link") {
			t.Fatalf("a new contact with the id %q of someone else: %d", id, r.StatusCode)
		}
	}
	if page := g.staff("agency").get("/dashboard/generate?q=c_b").Body; !strings.Contains(page, "Bob B &lt;bob@example.com&gt; · loc_b") {
		t.Fatalf("the contact changed:\n%s", page)
	}
}

// A sub-account user must not mint a contact whose id already names a
// person of another type or location: the app would see one X-Portal-User-Id
// for two people (and a revocation of one would end the other's sessions).
func TestDashboard_SubaccountUserCannotMintAContactWithAnotherLocationsUserID(t *testing.T) {
	t.Parallel()
	g := newTestGateway(t, withStaff())
	// The CRM signs in a sub-account user of loc_b who is not dashboard staff.
	g.apiCall(http.MethodPost, "links", `{"app":"courses","user":{"id":"u_b","type":"subaccount_user","location":"loc_b"}}`, http.StatusCreated)
	sub := g.staff("sub")
	r := sub.post("/dashboard/generate", url.Values{"who": {"new"}, "new_id": {"u_b"}, "new_email": {"ub@example.com"}, "app": {"courses"}, "ttl": {"15m"}, "uses": {"1"}})
	if r.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(r.Body, `id="new_id-err"`) || strings.Contains(r.Body, "magic-link") {
		t.Fatalf("a new contact with a sub-account user's id: %d\n%s", r.StatusCode, r.Body)
	}
	if _, err := g.store.Contact(context.Background(), "u_b"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("the refused contact was kept: %v", err)
	}
	// The same id stays the same person: another link for them works.
	g.apiCall(http.MethodPost, "links", `{"app":"courses","user":{"id":"u_b","type":"subaccount_user","location":"loc_b"}}`, http.StatusCreated)
}

func TestDashboard_GenerateForAnyVisibleContactNotOnlyTheFirstPage(t *testing.T) {
	t.Parallel()
	g := newTestGateway(t, withStaff())
	var cs []string
	for i := range dashboardContacts + 50 {
		cs = append(cs, fmt.Sprintf(`{"id":"c%03d","name":"N%03d","location":"loc_a"}`, i, i))
	}
	g.apiCall(http.MethodPost, "contacts", "["+strings.Join(cs, ",")+"]", http.StatusOK)
	sub := g.staff("sub")
	if page := sub.get("/dashboard/generate").Body; strings.Contains(page, "N149") {
		t.Fatal("the contact list is not bounded")
	}
	sub.generate(url.Values{"who": {"contact"}, "contact": {"c149"}, "app": {"courses"}, "ttl": {"15m"}, "uses": {"1"}})
}

func TestDashboard_LinkTooLongForAQRCodeIsStillShown(t *testing.T) {
	t.Parallel()
	g := newTestGateway(t, withStaff())
	link := g.staff("agency").generate(url.Values{"who": {"myself"}, "app": {"courses"}, "path": {"/" + strings.Repeat("p", 1900)}, "ttl": {"15m"}, "uses": {"1"}})
	if !strings.Contains(link, "token=") {
		t.Fatalf("link %q", link)
	}
}

func TestDashboard_UnknownRoutesAndMethods(t *testing.T) {
	t.Parallel()
	g := newTestGateway(t, withStaff())
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
	t.Parallel()
	g := newTestGateway(t, withStaff())
	ag := g.staff("agency")
	ag.generate(url.Values{"who": {"new"}, "new_id": {"c_gone"}, "new_email": {"gone@example.com"}, "app": {"courses"}, "ttl": {"15m"}, "uses": {"1"}})
	g.apiCall(http.MethodPost, "users/c_gone/revoke", "", http.StatusOK)
	page := ag.get(DashboardPath).Body
	if !strings.Contains(page, "status-revoked") || strings.Contains(page, ">Revoke</button>") {
		t.Fatalf("a revoked user's link:\n%s", page)
	}
}

// "A new contact" asked for a contact id and a location id: records, not
// people. It asks for a name and an e-mail; the id is made up (or given
// under "advanced"), the location is the staff member's own or one an
// agency user picks; and a second contact with the same e-mail in one
// location is refused with a way to the one there is.
func TestDashboard_NewContactByNameAndEmail(t *testing.T) {
	t.Parallel()
	g := newTestGateway(t, withStaff())
	sub := g.staff("sub")
	form := url.Values{"who": {"new"}, "new_name": {"Grace Hopper"}, "new_email": {"Grace@Example.com"}, "app": {"courses"}, "ttl": {"15m"}, "uses": {"1"}}
	if link := sub.generate(form); link == "" {
		t.Fatal("no link for a contact with a name and an e-mail")
	}
	cs, err := g.store.ContactsByEmail(context.Background(), "grace@example.com")
	if err != nil || len(cs) != 1 || !strings.HasPrefix(cs[0].ID, "c_") || len(cs[0].ID) != 18 || cs[0].Location != "loc_a" || cs[0].Name != "Grace Hopper" {
		t.Fatalf("the new contact: %+v, %v", cs, err)
	}
	again := sub.post("/dashboard/generate", form)
	if again.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(again.Body, "exists in this location already") ||
		!strings.Contains(again.Body, `id="existing-contact"`) || !strings.Contains(again.Body, "contact="+cs[0].ID) || strings.Contains(again.Body, "magic-link") {
		t.Fatalf("a second contact with the same e-mail: %d\n%s", again.StatusCode, again.Body)
	}
	// Another location may know the same person as a contact of its own.
	form.Set("new_location", "loc_b")
	if link := g.staff("agency").generate(form); link == "" {
		t.Fatal("the same e-mail in another location was refused")
	}
	page := g.staff("agency").get("/dashboard/generate").Body
	if !strings.Contains(page, `<datalist id="locations"><option value="loc_a">`) {
		t.Fatalf("the agency user is offered no known locations:\n%s", page)
	}
}

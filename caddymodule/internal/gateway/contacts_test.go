package gateway

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

var contactRowID = regexp.MustCompile(`<tr data-contact="([^"]+)">`)

// There was no way to find a contact but the Generate form's search, and
// signing a user out everywhere was in the API and the CLI only. The
// Contacts page searches and pages a location's contacts; a contact's page
// shows their sessions and links, and signs them out everywhere after
// asking.
func TestContacts_SearchPagesAndSignOutEverywhere(t *testing.T) {
	t.Parallel()
	g := newTestGateway(t, withStaff())
	var cs []map[string]string
	for i := range 30 {
		cs = append(cs, map[string]string{"id": fmt.Sprintf("c_%02d", i), "name": fmt.Sprintf("Ann %02d", i),
			"email": fmt.Sprintf("ann%02d@example.com", i), "location": "loc_a"})
	}
	cs = append(cs, map[string]string{"id": "c_bob", "name": "Bob B", "email": "bob@example.com", "location": "loc_b"})
	body, _ := json.Marshal(cs)
	g.apiCall(http.MethodPost, "contacts", string(body), http.StatusOK)
	sub := g.staff("sub")

	first := sub.get(contactsPath)
	if ids := contactRowID.FindAllStringSubmatch(first.Body, -1); len(ids) != contactsPerPage || ids[0][1] != "c_00" {
		t.Fatalf("the first page lists %d contacts: %v", len(ids), ids)
	}
	if strings.Contains(first.Body, "Bob B") || !strings.Contains(first.Body, `rel="next"`) || strings.Contains(first.Body, `rel="prev"`) {
		t.Fatalf("the first page:\n%s", first.Body)
	}
	second := sub.get(contactsPath + "?page=2")
	if ids := contactRowID.FindAllStringSubmatch(second.Body, -1); len(ids) != 5 || strings.Contains(second.Body, `rel="next"`) || !strings.Contains(second.Body, `rel="prev"`) {
		t.Fatalf("the second page lists %d contacts:\n%s", len(ids), second.Body)
	}
	if ids := contactRowID.FindAllStringSubmatch(sub.get(contactsPath+"?q=ann07").Body, -1); len(ids) != 1 || ids[0][1] != "c_07" {
		t.Fatalf("a search by e-mail finds %v", ids)
	}
	if r := sub.get(contactsPath + "/c_bob"); r.StatusCode != http.StatusNotFound {
		t.Fatalf("another location's contact: %d", r.StatusCode)
	}
	if ids := contactRowID.FindAllStringSubmatch(g.staff("agency").get(contactsPath+"?q=bob").Body, -1); len(ids) != 1 {
		t.Fatalf("an agency user searching Bob finds %v", ids)
	}

	// Ann 07 is signed in to Courses; her page says so, with her link.
	ann := g.signIn("courses", "c_07")
	page := sub.get(contactsPath + "/c_07")
	if page.StatusCode != http.StatusOK || !strings.Contains(page.Body, "<h1>Ann 07</h1>") ||
		!strings.Contains(page.Body, `<td data-label="App">Courses</td>`) || !strings.Contains(page.Body, `data-link="`) {
		t.Fatalf("Ann's page: %d\n%s", page.StatusCode, page.Body)
	}
	ask := sub.get(contactsPath + "/c_07/signout")
	if !strings.Contains(ask.Body, "Sign Ann 07 &lt;ann07@example.com&gt; out everywhere?") || !strings.Contains(ask.Body, "signed in 1 time.") {
		t.Fatalf("the confirmation:\n%s", ask.Body)
	}
	if r := g.do(ann, http.MethodGet, "http://"+g.courses+"/"); r.StatusCode != http.StatusOK {
		t.Fatalf("asking signed nobody out, yet Ann's session: %d", r.StatusCode)
	}
	done := sub.post(contactsPath+"/c_07/signout", url.Values{})
	if done.StatusCode != http.StatusSeeOther || done.Header.Get("Location") != contactsPath+"/c_07?done=signedout" {
		t.Fatalf("signing out everywhere: %d %s", done.StatusCode, done.Header.Get("Location"))
	}
	if r := g.do(ann, http.MethodGet, "http://"+g.courses+"/"); r.StatusCode != http.StatusUnauthorized {
		t.Fatalf("Ann's session after she was signed out everywhere: %d", r.StatusCode)
	}
	if after := sub.get(contactsPath + "/c_07?done=signedout").Body; !strings.Contains(after, "is signed out everywhere") || !strings.Contains(after, "Not signed in anywhere") {
		t.Fatalf("Ann's page after:\n%s", after)
	}
	// Without the dashboard's token, nobody is signed out.
	bob := g.signIn("courses", "c_bob")
	if r := g.staff("agency").postRaw(contactsPath+"/c_bob/signout", url.Values{}, "Origin: http://"+g.portal); r.StatusCode != http.StatusForbidden {
		t.Fatalf("a sign-out without the token: %d", r.StatusCode)
	}
	if r := g.do(bob, http.MethodGet, "http://"+g.courses+"/"); r.StatusCode != http.StatusOK {
		t.Fatalf("Bob after a refused sign-out: %d", r.StatusCode)
	}
}

// A contact id may hold "/": its page used to be a 404, and an id such as
// "x/signout" named the sign-out of contact "x".
func TestContacts_IDWithASlashNamesThatContactOnly(t *testing.T) {
	t.Parallel()
	g := newTestGateway(t, withStaff())
	g.apiCall(http.MethodPost, "contacts", `[{"id":"x","name":"Xavier","email":"x@example.com","location":"loc_a"},`+
		`{"id":"x/signout","name":"Slashed","email":"s@example.com","location":"loc_a"}]`, http.StatusOK)
	sub := g.staff("sub")
	list := sub.get(contactsPath + "?q=slashed").Body
	if !strings.Contains(list, `href="/dashboard/contacts/x%2Fsignout"`) {
		t.Fatalf("the list's link:\n%s", list)
	}
	if page := sub.get(contactsPath + "/x%2Fsignout"); page.StatusCode != http.StatusOK || !strings.Contains(page.Body, "<h1>Slashed</h1>") {
		t.Fatalf("the page of contact x/signout: %d\n%s", page.StatusCode, page.Body)
	}
}

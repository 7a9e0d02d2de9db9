package gateway

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/portalgate/portalgate/caddymodule/internal/store"
	"github.com/portalgate/portalgate/caddymodule/internal/store/memory"
)

// conflictOnce is a store whose first SetMenu loses to another writer.
type conflictOnce struct {
	store.Store
	lost bool
}

func (c *conflictOnce) SetMenu(ctx context.Context, tenant string, items []store.MenuItem, version int64) (int64, error) {
	if !c.lost {
		c.lost = true
		other := store.MenuItem{ID: "other", Title: "Other", URL: "https://other.example.com", Open: OpenNewTab, Roles: allRoles}
		if _, err := c.Store.SetMenu(ctx, tenant, []store.MenuItem{other}, version); err != nil {
			return 0, err
		}
	}
	return c.Store.SetMenu(ctx, tenant, items, version)
}

func TestCustomLinks_ConcurrentEditsBothKeepTheirChange(t *testing.T) {
	st := &conflictOnce{Store: memory.New(time.Now)}
	g := &Gateway{cfg: Config{Directory: st}}
	it := store.MenuItem{Title: "Mine", App: "courses", Open: OpenCurrentTab, Roles: allRoles}
	if err := g.updateMenu(context.Background(), saveMenuItem(it)); err != nil {
		t.Fatalf("adding after a lost race: %v", err)
	}
	m, _ := st.Menu(context.Background(), "")
	if !st.lost || len(m.Items) != 2 || m.Items[0].ID != "other" || m.Items[1].Title != "Mine" {
		t.Fatalf("menu after the race: %+v", m.Items)
	}
}

var menuRow = regexp.MustCompile(`<tr data-item="([^"]+)"><td data-label="Title">([^<]+)</td>`)

// menuTitles lists the stored custom links in order, by id and title.
func (s *staff) menuItems() [][2]string {
	s.g.t.Helper()
	var out [][2]string
	for _, m := range menuRow.FindAllStringSubmatch(s.get("/dashboard/settings/links").Body, -1) {
		out = append(out, [2]string{m[1], m[2]})
	}
	return out
}

func TestCustomLinks_AddEditReorderDelete(t *testing.T) {
	t.Parallel()
	g := newTestGateway(t, withStaff(), withMenuLinks(MenuLink{Title: "Help centre", Target: "https://help.example.com", Open: OpenNewTab}))
	ag := g.staff("agency")
	add := func(title, kind, servedApp, open string, roles ...string) {
		t.Helper()
		form := url.Values{"action": {"save"}, "title": {title}, "kind": {kind}, "open": {open}, "roles": roles}
		form.Set(map[string]string{"app": "app", "url": "url"}[kind], servedApp)
		if r := ag.post("/dashboard/settings/links", form); r.StatusCode != http.StatusSeeOther {
			t.Fatalf("adding %s: %d %s", title, r.StatusCode, r.Body)
		}
	}
	add("My courses", "app", "courses", "current_tab", "contact", "agency_user")
	add("Community", "app", "communities", "iframe", "contact")
	add("Staff wiki", "url", "https://wiki.example.com/", "new_tab", "agency_user", "subaccount_user")
	items := ag.menuItems()
	if len(items) != 3 || items[0][1] != "My courses" || items[2][1] != "Staff wiki" {
		t.Fatalf("menu: %v", items)
	}
	page := ag.get("/dashboard/settings/links").Body
	if !strings.Contains(page, "Help centre") || !strings.Contains(page, "set in the Caddyfile") {
		t.Fatalf("the Caddyfile's item is not shown:\n%s", page)
	}
	// Move the wiki up twice, edit it, delete the community item.
	for range 2 {
		ag.post("/dashboard/settings/links", url.Values{"action": {"up"}, "id": {items[2][0]}})
	}
	if r := ag.post("/dashboard/settings/links", url.Values{"action": {"save"}, "id": {items[2][0]}, "title": {"Wiki"}, "kind": {"url"},
		"url": {"https://wiki.example.com/"}, "open": {"new_tab"}, "roles": {"agency_user"}}); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("edit: %d %s", r.StatusCode, r.Body)
	}
	// A Delete asks first; only the confirmation deletes.
	ask := ag.post("/dashboard/settings/links", url.Values{"action": {"delete"}, "id": {items[1][0]}})
	if ask.StatusCode != http.StatusOK || !strings.Contains(ask.Body, "Delete “Community”?") || len(ag.menuItems()) != 3 {
		t.Fatalf("a Delete did not ask first: %d", ask.StatusCode)
	}
	done := ag.post("/dashboard/settings/links", url.Values{"action": {"delete"}, "id": {items[1][0]}, "confirm": {"yes"}})
	if done.StatusCode != http.StatusSeeOther || !strings.Contains(ag.get(done.Header.Get("Location")).Body, "Deleted.") {
		t.Fatalf("the confirmed Delete: %d %s", done.StatusCode, done.Header.Get("Location"))
	}
	got := ag.menuItems()
	if len(got) != 2 || got[0] != [2]string{items[2][0], "Wiki"} || got[1][1] != "My courses" {
		t.Fatalf("after up, up, edit, delete: %v", got)
	}
	if r := ag.post("/dashboard/settings/links", url.Values{"action": {"delete"}, "id": {"gone"}, "confirm": {"yes"}}); r.StatusCode != http.StatusNotFound {
		t.Fatalf("deleting a missing item: %d", r.StatusCode)
	}
	// The edit form is filled from the item.
	if page := ag.get("/dashboard/settings/links?edit=" + items[2][0]).Body; !strings.Contains(page, `value="Wiki"`) || !strings.Contains(page, "Edit “Wiki”") {
		t.Fatalf("edit form:\n%s", page)
	}
}

func TestCustomLinks_InvalidItemShowsErrorsByField(t *testing.T) {
	t.Parallel()
	g := newTestGateway(t, withStaff())
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
		if r.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(r.Body, c.err) {
			t.Errorf("%v: %d, want the error %s", c.form, r.StatusCode, c.err)
		}
	}
	if items := ag.menuItems(); len(items) != 0 {
		t.Fatalf("invalid items were stored: %v", items)
	}
}

// A custom link to a page of the portal, opened inside the portal, showed
// the portal inside itself. It is refused; a new tab is fine.
func TestCustomLinks_PortalNeverFramesItself(t *testing.T) {
	t.Parallel()
	g := newTestGateway(t, withStaff())
	ag := g.staff("agency")
	form := url.Values{"action": {"save"}, "title": {"Home again"}, "kind": {"url"}, "url": {"http://" + g.portal + "/?view=x"},
		"open": {"iframe"}, "roles": {"contact"}}
	if r := ag.post("/dashboard/settings/links", form); r.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(r.Body, "cannot open inside the portal") {
		t.Fatalf("the portal framed inside itself: %d", r.StatusCode)
	}
	form.Set("open", "new_tab")
	if r := ag.post("/dashboard/settings/links", form); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("the portal in a new tab: %d %s", r.StatusCode, r.Body)
	}
}

// Custom links may have an icon: an https image beside the title on the
// portal home, its origin, and nothing else, allowed in the page's CSP.
func TestCustomLinks_IconIsAnHTTPSImageTheHomeMayLoad(t *testing.T) {
	t.Parallel()
	g := newTestGateway(t, withStaff())
	ag := g.staff("agency")
	form := url.Values{"action": {"save"}, "title": {"Help"}, "kind": {"url"}, "url": {"https://help.example.com/"},
		"open": {"new_tab"}, "roles": {"contact"}, "icon": {"http://cdn.example.com/help.png"}}
	if r := ag.post("/dashboard/settings/links", form); r.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(r.Body, `id="icon-err"`) {
		t.Fatalf("an icon over http: %d", r.StatusCode)
	}
	form.Set("icon", "https://cdn.example.com/help.png")
	if r := ag.post("/dashboard/settings/links", form); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("an https icon: %d %s", r.StatusCode, r.Body)
	}
	home := g.do(g.signInPortal("c_icons"), http.MethodGet, "http://"+g.portal+"/", browser)
	if !strings.Contains(home.Body, `<img src="https://cdn.example.com/help.png" alt=""`) ||
		!strings.Contains(home.Header.Get("Content-Security-Policy"), "img-src 'self' data: https://cdn.example.com;") {
		t.Fatalf("the home: %s\n%s", home.Header.Get("Content-Security-Policy"), home.Body)
	}
}

// An icon's host went into the portal home's CSP as it was typed: a ";"
// added a directive, a "," a second policy, a "*" any host. Host
// characters only now; and the portal is known in any spelling.
func TestCustomLinks_IconCannotWriteIntoTheCSP(t *testing.T) {
	t.Parallel()
	g := newTestGateway(t, withStaff())
	ag := g.staff("agency")
	for _, icon := range []string{"https://a.com;sandbox/x.png", "https://a.com,frame-src/x.png", "https://*/x.png",
		"https://user@cdn.example.com/x.png", "https://bücher.example/x.png"} {
		form := url.Values{"action": {"save"}, "title": {"Help"}, "kind": {"url"}, "url": {"https://help.example.com/"},
			"open": {"new_tab"}, "roles": {"contact"}, "icon": {icon}}
		if r := ag.post("/dashboard/settings/links", form); r.StatusCode != http.StatusUnprocessableEntity {
			t.Errorf("icon %q: %d", icon, r.StatusCode)
		}
	}
	framed := url.Values{"action": {"save"}, "title": {"Home"}, "kind": {"url"}, "url": {"http://" + strings.ToUpper(g.portal) + "/"},
		"open": {"iframe"}, "roles": {"contact"}}
	if r := ag.post("/dashboard/settings/links", framed); r.StatusCode != http.StatusUnprocessableEntity {
		t.Errorf("the portal in capitals, in an iframe: %d", r.StatusCode)
	}
}

package tenant_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/portalgate/portalgate/caddymodule/internal/tenant"
)

func acme() tenant.Tenant {
	return tenant.Tenant{ID: "acme", Name: "Acme Coaching", Portal: "portal.acme-client.com",
		Apps: map[string]string{"courses": "courses.acme-client.com", "shop": "Bücher.Example"}}
}

func registry(t testing.TB, ts ...tenant.Tenant) *tenant.Registry {
	t.Helper()
	r := tenant.NewRegistry()
	for _, x := range ts {
		if err := r.Put(x); err != nil {
			t.Fatal(err)
		}
	}
	return r
}

// A host reaches the gateway spelled many ways (case, a port, a trailing
// dot, an internationalised name in Unicode or punycode): each resolves to
// the one tenant and app it names, and anything else to none.
func TestLookup_EverySpellingOfAHostResolvesToItsTenantOrNone(t *testing.T) {
	t.Parallel()
	r := registry(t, acme())
	for host, app := range map[string]string{
		"portal.acme-client.com":       tenant.PortalApp,
		"PORTAL.Acme-Client.COM":       tenant.PortalApp,
		"portal.acme-client.com.":      tenant.PortalApp,
		"portal.acme-client.com:443":   tenant.PortalApp,
		"Portal.Acme-Client.Com.:8443": tenant.PortalApp,
		"courses.acme-client.com":      "courses",
		"xn--bcher-kva.example":        "shop",
		"bücher.example":               "shop",
		"BÜCHER.EXAMPLE:443":           "shop",
		"ｃｏｕｒｓｅｓ.acme-client.com":      "courses", // full-width letters fold as a browser folds them
	} {
		h, ok := r.Lookup(host)
		if !ok || h.Tenant.ID != "acme" || h.App != app {
			t.Errorf("Lookup(%q) = %+v, %v; want acme's %s", host, h, ok, app)
		}
	}
	for _, host := range []string{"", ".", "acme-client.com", "evil.portal.acme-client.com", "portal.acme-client.com.evil.example",
		"portal.acme-client.co", "127.0.0.1", "[::1]:443", "portal.acme-client.com..", "portal..acme-client.com", "xn--.example"} {
		if h, ok := r.Lookup(host); ok {
			t.Errorf("Lookup(%q) = %+v; want none", host, h)
		}
	}
}

// Caddy's host matcher folded case for 100 hosts or fewer only
// (CVE-2026-27588): above that, "Portal.Acme..." missed its site. With
// thousands of tenants every spelling still resolves, and to the right one.
func TestLookup_ManyTenantsKeepEverySpelling(t *testing.T) {
	t.Parallel()
	r := tenant.NewRegistry()
	for i := range 500 {
		if err := r.Put(tenant.Tenant{ID: fmt.Sprintf("t%d", i), Portal: fmt.Sprintf("portal.client%d.example", i)}); err != nil {
			t.Fatal(err)
		}
	}
	for _, i := range []int{0, 101, 499} {
		h, ok := r.Lookup(fmt.Sprintf("PORTAL.Client%d.Example.", i))
		if !ok || h.Tenant.ID != fmt.Sprintf("t%d", i) {
			t.Errorf("tenant %d among 500: %+v, %v", i, h, ok)
		}
	}
}

// A tenant cannot take another's host, in any spelling: its portal would
// serve the other's contacts.
func TestPut_AnotherTenantsHostIsRefused(t *testing.T) {
	t.Parallel()
	r := registry(t, acme())
	for _, host := range []string{"portal.acme-client.com", "PORTAL.ACME-CLIENT.COM.", "xn--bcher-kva.example"} {
		err := r.Put(tenant.Tenant{ID: "other", Portal: host})
		if !errors.Is(err, tenant.ErrHostTaken) {
			t.Errorf("another tenant taking %q: %v", host, err)
		}
	}
	if h, _ := r.Lookup("portal.acme-client.com"); h.Tenant.ID != "acme" {
		t.Fatalf("the host changed hands: %+v", h)
	}
	// The tenant itself may change its hosts; the old ones are forgotten.
	moved := acme()
	moved.Portal = "portal.acme.example"
	if err := r.Put(moved); err != nil {
		t.Fatal(err)
	}
	if _, ok := r.Lookup("portal.acme-client.com"); ok {
		t.Fatal("the old portal host still resolves")
	}
	if h, ok := r.Lookup("portal.acme.example"); !ok || h.App != tenant.PortalApp {
		t.Fatalf("the new portal host: %+v, %v", h, ok)
	}
	for name, bad := range map[string]tenant.Tenant{
		"one host twice":  {ID: "twice", Portal: "a.example", Apps: map[string]string{"courses": "A.example."}},
		"an IP address":   {ID: "ip", Portal: "10.0.0.5"},
		"a bad id":        {ID: "a b", Portal: "b.example"},
		"an app 'portal'": {ID: "p", Portal: "c.example", Apps: map[string]string{"portal": "d.example"}},
	} {
		if err := r.Put(bad); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// A tenant removed resolves no more: none of its hosts reaches anything.
func TestRemove_TenantsHostsResolveNoMore(t *testing.T) {
	t.Parallel()
	r := registry(t, acme(), tenant.Tenant{ID: "beta", Portal: "portal.beta.example"})
	if !r.Remove("acme") || r.Remove("acme") {
		t.Fatal("Remove did not report what it removed")
	}
	for _, host := range []string{"portal.acme-client.com", "courses.acme-client.com", "xn--bcher-kva.example"} {
		if _, ok := r.Lookup(host); ok {
			t.Errorf("%s resolves after its tenant was removed", host)
		}
	}
	if _, ok := r.Lookup("portal.beta.example"); !ok || r.Len() != 1 {
		t.Fatal("another tenant went with it")
	}
}

// BenchmarkLookup is the host → tenant step of a gated request, among
// 10,000 tenants of 4 hosts each.
func BenchmarkLookup(b *testing.B) {
	r := tenant.NewRegistry()
	ts := make([]tenant.Tenant, 10_000)
	for i := range ts {
		ts[i] = tenant.Tenant{ID: fmt.Sprintf("t%d", i), Portal: fmt.Sprintf("portal.client%d.example", i), Apps: map[string]string{}}
		for _, app := range []string{"courses", "communities", "affiliates"} {
			ts[i].Apps[app] = fmt.Sprintf("%s.client%d.example", app, i)
		}
	}
	if err := r.PutAll(ts); err != nil {
		b.Fatal(err)
	}
	b.Run("canonical", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, ok := r.Lookup("courses.client7777.example"); !ok {
				b.Fatal("not found")
			}
		}
	})
	b.Run("with-port", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, ok := r.Lookup("courses.client7777.example:8443"); !ok {
				b.Fatal("not found")
			}
		}
	})
	b.Run("unknown", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, ok := r.Lookup("courses.nobody.example"); ok {
				b.Fatal("found")
			}
		}
	})
}

// PutAll loads many tenants in one change, or none: two of them may not
// share a host either.
func TestPutAll_AllOrNone(t *testing.T) {
	t.Parallel()
	r := registry(t, acme())
	err := r.PutAll([]tenant.Tenant{{ID: "a", Portal: "portal.a.example"}, {ID: "b", Portal: "PORTAL.A.example"}})
	if !errors.Is(err, tenant.ErrHostTaken) || r.Len() != 1 {
		t.Fatalf("two new tenants with one host: %v, %d tenants", err, r.Len())
	}
	if err := r.PutAll([]tenant.Tenant{{ID: "a", Portal: "portal.a.example"}, {ID: "b", Portal: "portal.b.example"}}); err != nil || r.Len() != 3 {
		t.Fatalf("two tenants: %v, %d tenants", err, r.Len())
	}
}

// An operator's host pattern gives the hosts of every tenant's sites: the
// app and the tenant by one label each, spelled as Normalize spells hosts.
// A tenant id that cannot be a label names no host.
func TestPattern_GivesEachTenantsSitesTheirHosts(t *testing.T) {
	t.Parallel()
	apps, err := tenant.ParsePattern("{app}.{tenant}.Portals.agency.example")
	if err != nil {
		t.Fatal(err)
	}
	portals, err := tenant.ParsePattern("{tenant}.portals.agency.example")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		p          tenant.Pattern
		id, app    string
		host, fail string
	}{
		{p: apps, id: "acme", app: "courses", host: "courses.acme.portals.agency.example"},
		{p: apps, id: "Acme", app: tenant.PortalApp, host: "portal.acme.portals.agency.example"},
		{p: apps, id: "ACME", app: "courses", host: "courses.acme.portals.agency.example"},
		{p: apps, id: "loc_1", app: "courses", fail: "name no host"},
		{p: apps, id: "a.b", app: "courses", fail: "name no host"},
		{p: portals, id: "acme", app: tenant.PortalApp, host: "acme.portals.agency.example"},
		{p: portals, id: "acme", app: "courses", fail: "names portals only"},
	} {
		host, err := c.p.Host(c.id, c.app)
		if c.fail != "" {
			if err == nil || !strings.Contains(err.Error(), c.fail) {
				t.Errorf("%s.Host(%q, %q) = %q, %v; want an error of %q", c.p, c.id, c.app, host, err, c.fail)
			}
			continue
		}
		if err != nil || host != c.host {
			t.Errorf("%s.Host(%q, %q) = %q, %v; want %q", c.p, c.id, c.app, host, err, c.host)
		}
	}
	if apps.String() != "{app}.{tenant}.portals.agency.example" {
		t.Errorf("String = %q", apps.String())
	}
	for _, bad := range []string{"{app}.portals.example", "{tenant}.example", "{tenant}.{tenant}.example.com", "{app}.{app}.{tenant}.example.com", "{tenant}.a_b.example"} {
		if _, err := tenant.ParsePattern(bad); err == nil {
			t.Errorf("ParsePattern(%q) accepted it", bad)
		}
	}
}

package gateway

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/portalgate/portalgate/caddymodule/internal/identity"
	"github.com/portalgate/portalgate/caddymodule/internal/portal"
	"github.com/portalgate/portalgate/caddymodule/internal/store"
)

// subaccountsPerPage is how many tenants the sub-accounts page lists at
// once.
const subaccountsPerPage = 50

var (
	problemSubaccountsAgencyOnly = newProblem(http.StatusForbidden, "agency_only", "Agency users only",
		"Sub-accounts are the agency's: only agency users see and change them.", "Ask an agency user.", "")
	problemSubaccountsOnDefault = newProblem(http.StatusForbidden, "agency_only", "Changed on the agency's dashboard",
		"Sub-accounts are added and removed on the agency's own portal dashboard.", "", "")
)

var subaccountNotices = map[string]string{
	"added":   "The sub-account is added: its portal and apps serve at once, on every instance.",
	"removed": "The sub-account is removed: its portal and apps serve nothing now.",
}

// subaccountsPage lists the tenants for agency users, each with the way to
// its own dashboard, and on the default portal's the form that adds one.
func (s *Site) subaccountsPage(w http.ResponseWriter, r *http.Request, st Staff) error {
	if st.Role != identity.AgencyUser {
		return problemSubaccountsAgencyOnly
	}
	data := s.subaccountsData(st, r.URL.Query().Get("after"))
	data.Notice = subaccountNotices[r.URL.Query().Get("done")]
	return s.dashboardPage(w, http.StatusOK, "subaccounts.html", data)
}

func (s *Site) subaccountsData(st Staff, after string) portal.Subaccounts {
	data := portal.Subaccounts{Staff: s.staffInfo(st), Here: s.g.tenant, CanChange: s.g.tenant == "", Tenants: []portal.TenantRow{}}
	page, next := s.g.tenantsPage(after, subaccountsPerPage)
	if next != "" {
		data.More = DashboardPath + "subaccounts?" + url.Values{"after": {next}}.Encode()
	}
	for _, v := range page {
		tg, ok := v.gateway()
		if !ok {
			continue
		}
		data.Tenants = append(data.Tenants, portal.TenantRow{ID: v.t.ID, Name: v.t.Name, Portal: tg.portal.origin,
			Dashboard: tg.portal.origin + DashboardPath, Apps: tg.AppNames(), Static: v.stored == nil})
	}
	return data
}

// editSubaccounts adds a tenant from the form, or removes one once asked.
func (s *Site) editSubaccounts(w http.ResponseWriter, r *http.Request, st Staff) error {
	switch {
	case st.Role != identity.AgencyUser:
		return problemSubaccountsAgencyOnly
	case s.g.tenant != "":
		return problemSubaccountsOnDefault
	}
	by := "staff:" + st.Username
	id := strings.TrimSpace(r.PostFormValue("id"))
	if r.PostFormValue("action") == "remove" {
		v, ok := s.g.tenantView(id)
		if !ok {
			return problemNoTenant
		}
		if r.PostFormValue("confirm") != "yes" {
			data := s.subaccountsData(st, "")
			data.Removing = &portal.TenantRow{ID: id, Name: v.t.Name}
			return s.dashboardPage(w, http.StatusOK, "subaccounts.html", data)
		}
		if err := s.g.RemoveTenant(r.Context(), id, by); err != nil {
			return err
		}
		http.Redirect(w, r, DashboardPath+"subaccounts?done=removed", http.StatusSeeOther)
		return nil
	}
	f := func(name string) string { return strings.TrimSpace(r.PostFormValue(name)) }
	form := portal.TenantForm{ID: id, Name: f("name"), Portal: f("portal"), Apps: f("apps"), Color: f("color"),
		Logo: f("logo"), Support: f("support"), Sender: f("sender")}
	t := store.Tenant{ID: form.ID, Name: form.Name, Portal: form.Portal,
		Brand: store.TenantBrand{Color: form.Color, Logo: form.Logo, SupportEmail: form.Support, SenderName: form.Sender}}
	if t.Brand.Color != "" && !strings.HasPrefix(t.Brand.Color, "#") {
		t.Brand.Color = "#" + t.Brand.Color
	}
	for line := range strings.Lines(form.Apps) {
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		if t.Apps == nil {
			t.Apps = map[string]string{}
		}
		t.Apps[fields[0]] = strings.Join(fields[1:], " ")
	}
	if _, err := s.g.PutTenant(r.Context(), t, false, by); err != nil {
		p, ok := asProblem(err)
		if !ok {
			return err
		}
		data := s.subaccountsData(st, "")
		data.Form, data.Errors = form, map[string]string{"tenant": p.Detail}
		if strings.HasPrefix(p.Detail, "id ") || p.Code == "tenant_exists" || p.Code == "tenant_static" {
			data.Errors = map[string]string{"id": p.Detail}
		}
		return s.dashboardPage(w, p.Status, "subaccounts.html", data)
	}
	http.Redirect(w, r, DashboardPath+"subaccounts?done=added", http.StatusSeeOther)
	return nil
}

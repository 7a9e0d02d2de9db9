package identity_test

import (
	"strings"
	"testing"

	"github.com/portalgate/portalgate/caddymodule/internal/identity"
)

func TestParseType(t *testing.T) {
	for in, want := range map[string]identity.Type{"": identity.Contact, "contact": identity.Contact,
		"subaccount_user": identity.SubaccountUser, "agency_user": identity.AgencyUser} {
		if got, err := identity.ParseType(in); err != nil || got != want {
			t.Errorf("ParseType(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := identity.ParseType("root"); err == nil {
		t.Error("ParseType accepted an unknown type")
	}
}

func TestValidate_HeaderInjectionIsRefused(t *testing.T) {
	for name, u := range map[string]identity.User{
		"no id":        {Email: "a@example.com"},
		"CRLF in id":   {ID: "u\r\nX-Portal-User-Type: agency_user"},
		"NUL in name":  {ID: "u", Name: "a\x00b"},
		"long email":   {ID: "u", Email: strings.Repeat("a", 300)},
		"unknown type": {ID: "u", Type: "root"},
	} {
		if err := u.Validate(); err == nil {
			t.Errorf("%s: Validate accepted %+v", name, u)
		}
	}
	if err := (identity.User{ID: "c_1", Email: "ada@example.com", Name: "Ada Lovelace"}).Validate(); err != nil {
		t.Errorf("Validate of a good user: %v", err)
	}
}

package caddymodule

import (
	"strings"
	"testing"
)

// parseErrors are the cases the Caddyfile parser itself refuses.
var parseErrors = map[string]bool{"unknown option": true, "app without URL": true, "bad duration": true,
	"zero session ttl": true, "handler no app": true, "staff without location": true, "staff bad role": true,
	"menu link bad mode": true, "menu link no target": true}

func TestConfig_BadSettingsAreRefusedWithAClearError(t *testing.T) {
	g := newGateway(t, "store memory")
	base := g.caddyfile()
	for name, tc := range map[string]struct {
		from, to, want string
	}{
		"unknown option":         {"store memory", "store memory\n\t\tcolour blue", `unknown portalgate option "colour"`},
		"unknown store":          {"store memory", "store carrier-pigeon", "portalgate.stores.carrier-pigeon"},
		"app without URL":        {"app communities http://", "app communities\n\t\tapp x http://", "app takes a name and a URL"},
		"relative app URL":       {"app courses http://" + g.courses, "app courses courses.local", "must be an absolute http(s) origin"},
		"app URL with path":      {"app courses http://" + g.courses, "app courses http://" + g.courses + "/app", "must be an absolute http(s) origin"},
		"duplicate app":          {"app communities", "app courses", `app "courses" is declared twice`},
		"app named portal":       {"app communities", "app portal", "portal's own name"},
		"short key":              {"signing_key test " + testKey, "signing_key test short", "at least 32"},
		"bad duration":           {"store memory", "store memory\n\t\tlink_ttl soon", "link_ttl"},
		"zero session ttl":       {"store memory", "store memory\n\t\tsession_ttl 0s", "session_ttl must be positive"},
		"link ttl above max":     {"store memory", "store memory\n\t\tlink_ttl 2h\n\t\tlink_max_ttl 1h", "above link_max_ttl"},
		"bad api key hash":       {"api_key_hash ", "api_key_hash nothex\n\t\t# ", "api_key_hash must be a SHA-256"},
		"handler app":            {"portalgate courses", "portalgate nope", "portalgate nope: no such app"},
		"handler no app":         {"portalgate courses", "portalgate", "needs the app this site serves"},
		"no portal":              {"portal http://" + g.portal + "\n", "", "the portal URL is required"},
		"staff without location": {"store memory", "store memory\n\t\tstaff ann subaccount_user", "staff takes a username and a role"},
		"staff bad role":         {"store memory", "store memory\n\t\tstaff ann root", "staff takes a username and a role"},
		"staff twice":            {"store memory", "store memory\n\t\tstaff ann agency_user\n\t\tstaff ann agency_user", "staff ann is listed twice"},
		"menu link script":       {"store memory", "store memory\n\t\tmenu_link X javascript:alert(1)", "absolute http:// or https://"},
		"menu link unknown app":  {"store memory", "store memory\n\t\tmenu_link X app:nowhere", `"nowhere" is not a declared app`},
		"menu link bad mode":     {"store memory", "store memory\n\t\tmenu_link X app:courses sideways", "neither an open mode"},
		"menu link no target":    {"store memory", "store memory\n\t\tmenu_link X", "menu_link takes a title and a target"},
	} {
		t.Run(name, func(t *testing.T) {
			cf := strings.Replace(base, tc.from, tc.to, 1)
			if cf == base {
				t.Fatalf("the case changes nothing: %q not found", tc.from)
			}
			err := loadCaddyfile(cf)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error = %v, want it to say %q", err, tc.want)
			}
			// A mistake in the Caddyfile's syntax names its line.
			if parseErrors[name] && !strings.Contains(err.Error(), "Caddyfile:") {
				t.Fatalf("error = %v, want the line it is on", err)
			}
		})
	}
}

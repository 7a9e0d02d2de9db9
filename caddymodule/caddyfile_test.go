package caddymodule

import (
	"bytes"
	"encoding/json"
	"flag"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddytest"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/adapt")

// TestCaddyfileAdapt_Golden adapts every Caddyfile in testdata/adapt and
// compares the JSON with the one below its "----------" line (Caddy's
// .caddyfiletest style). `go test -run Golden -update` rewrites them.
func TestCaddyfileAdapt_Golden(t *testing.T) {
	files, err := filepath.Glob("testdata/adapt/*.caddyfiletest")
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden files: %v", err)
	}
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".caddyfiletest"), func(t *testing.T) {
			raw, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			cf, want, _ := strings.Cut(string(raw), "\n----------\n")
			if *update {
				out, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(cf), nil)
				if err != nil {
					t.Fatal(err)
				}
				var pretty bytes.Buffer
				if err := json.Indent(&pretty, out, "", "\t"); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(f, []byte(cf+"\n----------\n"+pretty.String()+"\n"), 0o600); err != nil {
					t.Fatal(err)
				}
				return
			}
			if !caddytest.CompareAdapt(t, f, cf, "caddyfile", strings.TrimSuffix(want, "\n")) {
				t.Fatalf("%s: adapted JSON differs from the golden file (go test -run Golden -update rewrites it)", f)
			}
		})
	}
}

// parseErrors are the cases the Caddyfile parser itself refuses.
var parseErrors = map[string]bool{"unknown option": true, "app without URL": true, "bad duration": true,
	"zero session ttl": true, "staff without location": true, "staff bad role": true,
	"menu link bad mode": true, "menu link no target": true, "app block field": true, "session ttl too short": true, "global block twice": true,
	"brand color comment": true, "tenant bad field": true}

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
		"no portal":              {"portal http://" + g.portal + "\n", "", "the portal URL is required"},
		"staff without location": {"store memory", "store memory\n\t\tstaff ann subaccount_user", "staff takes a username and a role"},
		"staff bad role":         {"store memory", "store memory\n\t\tstaff ann root", "staff takes a username and a role"},
		"brand color comment":    {"store memory", "store memory\n\t\tbrand color #0f766e", "a bare # starts a Caddyfile comment"},
		"tenant bad field":       {"store memory", "store memory\n\t\ttenant acme {\n\t\t\tcolour red\n\t\t}", "a tenant's block takes name, portal, app and brand"},
		"tenant host taken":      {"store memory", "store memory\n\t\ttenant acme {\n\t\t\tportal http://" + g.portal + "\n\t\t}", "a host of the configuration's own sites"},
		"host pattern":           {"store memory", "store memory\n\t\thost_pattern {tenant}.example.com", "host_pattern"},
		"staff twice":            {"store memory", "store memory\n\t\tstaff ann agency_user\n\t\tstaff ann agency_user", "staff ann is listed twice"},
		"menu link script":       {"store memory", "store memory\n\t\tmenu_link X javascript:alert(1)", "absolute http:// or https://"},
		"menu link unknown app":  {"store memory", "store memory\n\t\tmenu_link X app:nowhere", `"nowhere" is not a declared app`},
		"menu link bad mode":     {"store memory", "store memory\n\t\tmenu_link X app:courses sideways", "neither an open mode"},
		"menu link no target":    {"store memory", "store memory\n\t\tmenu_link X", "menu_link takes a title and a target"},
		"two apps on one URL":    {"app communities http://" + g.community, "app communities http://" + g.courses, `has the URL of app "courses"`},
		"app on the portal URL":  {"app courses http://" + g.courses, "app courses http://" + g.portal, "has the URL of the portal"},
		"app on two sites":       {"portalgate communities", "portalgate courses", "served by two portalgate handlers"},
		"app twice in one site":  {"\tportalgate courses\n", "\tportalgate courses\n\tportalgate courses\n", "served by two portalgate handlers"},
		"session ttl too short":  {"store memory", "store memory\n\t\tsession_ttl 10s", "session_ttl must be at least 1m"},
		"idle above session ttl": {"store memory", "store memory\n\t\tsession_ttl 1h\n\t\tsession_idle 2h", "session_idle 2h0m0s is longer than session_ttl 1h0m0s"},
		"inside a handle":        {"\tportalgate courses\n", "\thandle /secure* {\n\t\tportalgate courses\n\t}\n", "portalgate courses sits inside a handle or route block"},
		"inside a route":         {"\tportalgate courses\n", "\troute /x* {\n\t\tportalgate courses\n\t}\n", "portalgate courses sits inside a handle or route block"},
		"beside other handles":   {"\tportalgate courses\n", "\thandle /open* {\n\t\trespond ok\n\t}\n\thandle {\n\t\tportalgate courses\n\t}\n", "portalgate courses sits inside a handle or route block"},
		"site with a path":       {"http://" + g.courses + " {", "http://" + g.courses + "/app* {", "portalgate courses sits inside a handle or route block"},
		"global block twice":     {"persist_config off", "persist_config off\n\tportalgate {\n\t}", "may appear only once"},
		"unknown mailer":         {"store memory", "store memory\n\t\tmailer pigeon", "portalgate.mailers.pigeon"},
		"mailer twice":           {"store memory", "store memory\n\t\tmailer outbox\n\t\tmailer outbox", "mailer is set twice"},
		"smtp without from":      {"store memory", "store memory\n\t\tmailer smtp {\n\t\t\thost 127.0.0.1\n\t\t}", "needs a host and a from address"},
		"smtp bad tls":           {"store memory", "store memory\n\t\tmailer smtp {\n\t\t\thost h\n\t\t\tfrom a@b.example\n\t\t\ttls ssl\n\t\t}", "tls is starttls, implicit or none"},
		"smtp bad port":          {"store memory", "store memory\n\t\tmailer smtp {\n\t\t\thost h\n\t\t\tfrom a@b.example\n\t\t\tport 99999\n\t\t}", "is not a port number"},
		"smtp bad from":          {"store memory", "store memory\n\t\tmailer smtp {\n\t\t\thost h\n\t\t\tfrom \"Acme Portal\"\n\t\t}", "is not an address"},
		"brand colour":           {"store memory", "store memory\n\t\tbrand color red", "not a hex colour"},
		"app icon over http":     {"app courses http://" + g.courses, "app courses http://" + g.courses + " {\n\t\t\ticon http://cdn.example.com/a.png\n\t\t}", "is not an https URL of an image"},
		"app block field":        {"app courses http://" + g.courses, "app courses http://" + g.courses + " {\n\t\t\tcolour blue\n\t\t}", "takes title, description and icon"},
		"brand field":            {"store memory", "store memory\n\t\tbrand font Comic", "brand takes title, color, logo, support or sender_name"},
		"mail templates missing": {"store memory", "store memory\n\t\tmailer outbox\n\t\tmail_templates " + brokenTemplates(t), `must define "link.text"`},
		"smtp password in clear": {"store memory", "store memory\n\t\tmailer smtp {\n\t\t\thost mail.example.com\n\t\t\tfrom a@b.example\n\t\t\ttls none\n\t\t\tusername u\n\t\t\tpassword p\n\t\t}", "in the clear"},
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

// A route without a matcher takes every request of its site: portalgate
// may sit in one.
func TestConfig_PortalgateInARouteWithoutMatcherGatesTheSite(t *testing.T) {
	g := newGateway(t, "store memory")
	cf := strings.Replace(g.caddyfile(), "\tportalgate courses\n", "\troute {\n\t\tportalgate courses\n\t}\n", 1)
	if err := loadCaddyfile(cf); err != nil {
		t.Fatal(err)
	}
	if r := g.do(g.client(), http.MethodGet, "http://"+g.courses+"/lessons", browser); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("a signed-out visit of the gated site: %d", r.StatusCode)
	}
}

// FuzzUnmarshalCaddyfile feeds the global option and the directive arbitrary
// Caddyfile text: errors are fine, panics are not.
func FuzzUnmarshalCaddyfile(f *testing.F) {
	for _, seed := range []string{
		"portalgate {\n portal http://localhost:8080\n app courses http://localhost:8081\n}",
		"portalgate {\n signing_key k1 0123456789abcdef0123456789abcdef\n store bolt /tmp/x.db\n link_ttl 15m\n}",
		"portalgate {\n store memory\n rate_limit 10 1m\n cache_max_bytes 64MiB\n api_key_hash abc\n}",
		"portalgate {\n rate_limit off\n session_ttl 0s\n}",
		"portalgate {\n staff ann agency_user\n staff sam subaccount_user location l1\n menu_link \"Help\" https://h.example.com new_tab contact\n}",
		"portalgate {\n staff\n menu_link\n menu_link x app:courses iframe agency_user\n}",
		"portalgate courses {\n redeem confirm\n}",
		"portalgate {\n store\n}", "portalgate {\n app\n}", "portalgate", "portalgate {", "portalgate { } extra",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(_ *testing.T, input string) {
		tokens, err := caddyfile.Tokenize([]byte(input), "Caddyfile")
		if err != nil {
			return
		}
		_ = new(App).UnmarshalCaddyfile(caddyfile.NewDispenser(tokens))
		_ = new(Handler).UnmarshalCaddyfile(caddyfile.NewDispenser(tokens))
	})
}

// brokenTemplates is a mail template folder whose link.txt defines a
// subject and no text.
func brokenTemplates(t *testing.T) string {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "link.txt"), []byte(`{{define "link.subject"}}x{{end}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

package caddymodule

import (
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"

	"github.com/portalgate/portalgate/caddymodule/internal/testkit/web"
)

func TestSession_SurvivesConfigReload(t *testing.T) {
	for _, st := range []string{"store memory", "store bolt " + filepath.Join(t.TempDir(), "reload.db")} {
		t.Run(strings.Fields(st)[1], func(t *testing.T) {
			g := newGateway(t, st)
			c := g.signIn("courses", "reload")
			g.globalExtra = st + "\n\t\tlink_ttl 10m"
			g.load()
			h := web.Echoed(t, g.do(c, http.MethodGet, "http://"+g.courses+"/"))
			if h.Get("X-Portal-User-Id") != "reload" {
				t.Fatalf("after reload the app sees %v", h)
			}
		})
	}
}

// Caddy keeps an old config reachable after a reload once reverse_proxy has
// carried traffic; each config's L1 must not pile up with it (tens of MB a
// reload before Manager.Close dropped the cache).
func TestReload_UnderTrafficDoesNotPileUpSessionCaches(t *testing.T) {
	g := newGateway(t, "store memory")
	c := g.signIn("courses", "reloads")
	heap := func() uint64 {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	var before uint64
	for i := range 5 {
		for range 10 {
			web.Echoed(t, g.do(c, http.MethodGet, "http://"+g.courses+"/"))
		}
		g.load()
		if i == 0 {
			before = heap()
		}
	}
	// Each L1 is about 25 MiB at the default size: four reloads piled up
	// 100 MiB. One may still be alive here, closing (more so with -race).
	if grown := int64(heap()) - int64(before); grown > 40<<20 {
		t.Fatalf("the heap grew by %d MiB over 4 reloads", grown>>20)
	}
}

func TestRateLimit_TrustedProxyClientsAreCountedApart(t *testing.T) {
	g := &testCaddy{}
	*g = *newGateway(t, "store memory\n\t\trate_limit 3 1m")
	g.caddyOptions = "servers {\n\t\ttrusted_proxies static 127.0.0.1/32\n\t}"
	g.load()
	bad := "http://" + g.courses + magicPath + "?token=guess"
	for range 3 {
		g.do(g.client(), http.MethodGet, bad, "X-Forwarded-For: 203.0.113.7")
	}
	if r := g.do(g.client(), http.MethodGet, bad, "X-Forwarded-For: 203.0.113.7"); r.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("the guessing client behind the proxy: %d", r.StatusCode)
	}
	l := g.mint(MintRequest{App: "courses", User: userOf("x")})
	if r := g.do(g.client(), http.MethodGet, l.URL, browser, "X-Forwarded-For: 198.51.100.20"); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("another client behind the same proxy: %d", r.StatusCode)
	}
}

func TestAuditLog_RecordsEverySecurityFactAndNoSecret(t *testing.T) {
	g := &testCaddy{}
	*g = *newGateway(t, "store memory")
	logPath := filepath.Join(t.TempDir(), "audit.log")
	g.caddyOptions = "log audit {\n\t\tinclude portalgate.audit\n\t\toutput file " + logPath + "\n\t\tformat json\n\t}"
	g.load()
	c := g.client()
	l := g.mint(MintRequest{App: "courses", User: userOf("c_audit")})
	g.do(c, http.MethodGet, l.URL, browser)
	u, _ := url.Parse("http://" + g.courses)
	secrets := []string{l.URL[strings.Index(l.URL, "token=")+6:], testKey, testAPIKey}
	for _, ck := range c.Jar.Cookies(u) {
		secrets = append(secrets, ck.Value)
	}
	if len(secrets) != 4 {
		t.Fatal("no session cookie to look for")
	}
	g.do(g.client(), http.MethodGet, l.URL, browser) // replay
	token := web.CSRF(t, g.do(c, http.MethodGet, "http://"+g.courses+logoutPath, browser).Body)
	g.do(c, http.MethodPost, "http://"+g.courses+logoutPath, "X-CSRF-Token: "+token)
	g.api(http.MethodDelete, "links/"+g.mint(MintRequest{App: "courses", User: userOf("c_audit")}).ID, "")
	g.api(http.MethodPost, "users/c_audit/revoke", "")
	apiCallWithKey(g, "wrong")
	g.apiCall(http.MethodPost, "contacts", `[{"id":"c_audit","name":"Audit"}]`, http.StatusOK)
	if err := caddy.Stop(); err != nil { // flush the log file
		t.Fatal(err)
	}
	raw, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	log := string(raw)
	events := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(log), "\n") {
		var e map[string]any
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("audit line %q: %v", line, err)
		}
		if e["logger"] != "portalgate.audit" {
			t.Fatalf("foreign line in the audit log: %s", line)
		}
		events[e["event"].(string)] = true
	}
	for _, want := range []string{"link_minted", "link_redeemed", "session_created", "link_rejected", "session_ended", "link_revoked", "user_revoked", "api_key_rejected", "contacts_synced"} {
		if !events[want] {
			t.Errorf("no %s event in:\n%s", want, log)
		}
	}
	for _, s := range secrets {
		if s != "" && strings.Contains(log, s) {
			t.Fatalf("a secret is in the audit log: %s", s)
		}
	}
}

func TestDashboard_BasicAuthInFrontSignsStaffIn(t *testing.T) {
	g := newStaffGateway(t, "")
	get := func(name string) resp {
		return g.do(g.client(), http.MethodGet, "http://"+g.portal+dashboardPath, browser, basicAuth(name))
	}
	if r := get("stranger"); r.StatusCode != http.StatusForbidden || !strings.Contains(r.Body, "Not a staff member") {
		t.Fatalf("stranger: %d %s", r.StatusCode, r.Body)
	}
	if r := get("agency"); r.StatusCode != http.StatusOK || !strings.Contains(r.Body, "Generate Magic Link") {
		t.Fatalf("agency user: %d %s", r.StatusCode, r.Body)
	}
	// A contact's portal session is no staff sign-in: basic_auth asks.
	c := g.signIn("portal", "c_1")
	if r := g.do(c, http.MethodGet, "http://"+g.portal+dashboardPath, browser); r.StatusCode != http.StatusUnauthorized || strings.Contains(r.Body, "Recent links") {
		t.Fatalf("contact on the dashboard: %d %s", r.StatusCode, r.Body)
	}
}

func TestPlaceholders_GateHandsTheUserToTheRestOfCaddy(t *testing.T) {
	g := &testCaddy{}
	*g = *newGateway(t, "store memory")
	g.coursesSite = `request_header X-Seen-User "{http.auth.user.id}|{http.auth.user.email}|{http.auth.user.name}|{http.auth.user.type}|{http.auth.user.location}"`
	g.load()
	c := g.client()
	g.do(c, http.MethodGet, g.mint(MintRequest{App: "courses", User: identityWithLocation("c_seen", "loc_3")}).URL, browser)
	h := web.Echoed(t, g.do(c, http.MethodGet, "http://"+g.courses+"/"))
	if got, want := h.Get("X-Seen-User"), "c_seen|c_seen@example.com|User c_seen|contact|loc_3"; got != want {
		t.Fatalf("{http.auth.user.*} after the gate = %q, want %q", got, want)
	}
}

package caddymodule

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	_ "github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	_ "github.com/caddyserver/caddy/v2/modules/standard"

	"golang.org/x/crypto/bcrypt"

	"github.com/portalgate/portalgate/caddymodule/internal/identity"
	"github.com/portalgate/portalgate/caddymodule/internal/testkit/freeport"
)

// The Caddy tests run one real Caddy in this process, loaded from a
// Caddyfile, with real HTTP to a real upstream. They run one after another:
// Caddy's running config is process-wide.

const (
	testKey    = "test-signing-secret-0123456789-abcdef"
	testAPIKey = "test-api-key"
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "portalgate-caddytest-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	// Caddy's data and config directories (generated keys, bolt files) stay
	// inside the test's own directory.
	os.Setenv("XDG_DATA_HOME", dir)
	os.Setenv("XDG_CONFIG_HOME", dir)
	code := m.Run()
	_ = caddy.Stop()
	os.RemoveAll(dir)
	os.Exit(code)
}

// testCaddy is a running Caddy with the portal, courses and communities, both
// apps proxied to one echo upstream.
type testCaddy struct {
	t                                 *testing.T
	admin, portal, courses, community string // host:port
	upstream                          *httptest.Server
	upstreamHits                      atomic.Int32
	lastUpstream                      atomic.Pointer[http.Header]
	// globalExtra goes into the portalgate block, caddyOptions into Caddy's
	// global options, communityBlock into the communities directive's block,
	// portalSite into the portal's site block (before the gate), coursesSite
	// into the courses site block.
	globalExtra, caddyOptions, communityBlock, portalSite, coursesSite string
}

// freeAddrs returns n distinct free loopback addresses.
func freeAddrs(t *testing.T, n int) []string {
	t.Helper()
	addrs, err := freeport.Addrs(n)
	if err != nil {
		t.Fatal(err)
	}
	return addrs
}

// newGateway starts Caddy; extra lines go into the global portalgate block.
func newGateway(t *testing.T, extra string) *testCaddy {
	t.Helper()
	addrs := freeAddrs(t, 4)
	g := &testCaddy{
		t: t, admin: addrs[0], portal: addrs[1], courses: addrs[2], community: addrs[3],
		globalExtra: extra,
	}
	return g.start()
}

// start runs the echo upstream and loads the gateway's Caddyfile.
func (g *testCaddy) start() *testCaddy {
	t := g.t
	t.Helper()
	g.upstream = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		g.upstreamHits.Add(1)
		h := r.Header.Clone()
		g.lastUpstream.Store(&h)
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(r.Header)
	}))
	t.Cleanup(g.upstream.Close)
	g.load()
	t.Cleanup(func() { _ = caddy.Stop() })
	return g
}

func (g *testCaddy) caddyfile() string {
	sum := sha256.Sum256([]byte(testAPIKey))
	return fmt.Sprintf(`{
	admin %[1]s
	persist_config off
	%[9]s
	portalgate {
		portal http://%[2]s
		app courses http://%[3]s
		app communities http://%[4]s
		signing_key test %[5]s
		api_key_hash %[6]s
		%[7]s
	}
}
http://%[2]s {
	%[11]s
	portalgate portal
}
http://%[3]s {
	portalgate courses
	%[12]s
	reverse_proxy %[8]s
}
http://%[4]s {
	portalgate communities {
		%[10]s
	}
	reverse_proxy %[8]s
}
`, g.admin, g.portal, g.courses, g.community, testKey, hex.EncodeToString(sum[:]), g.globalExtra,
		strings.TrimPrefix(g.upstream.URL, "http://"), g.caddyOptions, g.communityBlock, g.portalSite, g.coursesSite)
}

// load (re)loads the Caddyfile into the running Caddy.
func (g *testCaddy) load() {
	g.t.Helper()
	if err := loadCaddyfile(g.caddyfile()); err != nil {
		g.t.Fatalf("loading config: %v", err)
	}
}

func loadCaddyfile(cf string) error {
	cfg, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(cf), nil)
	if err != nil {
		return err
	}
	return caddy.Load(cfg, true)
}

// client is a browser-like client with a cookie jar that does not follow
// redirects, so every hop can be checked.
func (g *testCaddy) client() *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

type resp struct {
	*http.Response
	body string
}

// do sends one request; headers come as "Name: value" strings.
func (g *testCaddy) do(c *http.Client, method, url string, headers ...string) resp {
	g.t.Helper()
	return g.send(c, method, url, nil, headers...)
}

func (g *testCaddy) send(c *http.Client, method, url string, body io.Reader, headers ...string) resp {
	g.t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		g.t.Fatal(err)
	}
	for _, h := range headers {
		k, v, _ := strings.Cut(h, ": ")
		req.Header[k] = append(req.Header[k], v) // as sent: no canonicalisation
	}
	res, err := c.Do(req)
	if err != nil {
		g.t.Fatalf("%s %s: %v", method, url, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return resp{res, string(b)}
}

// browser marks a request as coming from a person's browser.
const browser = "Accept: text/html,application/xhtml+xml"

// mint asks the admin API for a link.
func (g *testCaddy) mint(req MintRequest) MintResponse {
	g.t.Helper()
	b, _ := json.Marshal(req)
	r := g.send(http.DefaultClient, http.MethodPost, "http://"+g.admin+"/portalgate/links", bytes.NewReader(b),
		"Content-Type: application/json", "Origin: http://"+g.admin)
	if r.StatusCode != http.StatusCreated {
		g.t.Fatalf("minting %+v: %d %s", req, r.StatusCode, r.body)
	}
	var out MintResponse
	if err := json.Unmarshal([]byte(r.body), &out); err != nil {
		g.t.Fatal(err)
	}
	return out
}

// signIn redeems a fresh link for app and returns the client holding the session.
func (g *testCaddy) signIn(app, userID string) *http.Client {
	g.t.Helper()
	c := g.client()
	l := g.mint(MintRequest{App: app, User: userOf(userID)})
	if r := g.do(c, http.MethodGet, l.URL, browser); r.StatusCode != http.StatusSeeOther {
		g.t.Fatalf("redeeming: %d %s", r.StatusCode, r.body)
	}
	return c
}

// upstreamJSON decodes what the echo upstream received.
func upstreamHeaders(t *testing.T, r resp) http.Header {
	t.Helper()
	if r.StatusCode != http.StatusOK {
		t.Fatalf("request through the gate: %d %s", r.StatusCode, r.body)
	}
	var h http.Header
	if err := json.Unmarshal([]byte(r.body), &h); err != nil {
		t.Fatalf("upstream answer %q: %v", r.body, err)
	}
	return h
}

// Paths the gateway serves, as a client names them.
const (
	magicPath     = "/_portalgate/magic"
	apiPrefix     = "/_portalgate/api/"
	apiLinksPath  = apiPrefix + "links"
	dashboardPath = "/dashboard/"
	apiMenuPath   = apiPrefix + "menu"
	launchPrefix  = "/_portalgate/launch/"
	logoutPath    = "/_portalgate/logout"
	jwksPath      = "/_portalgate/jwks.json"
)

func userOf(id string) identity.User {
	return identity.User{ID: id, Email: id + "@example.com", Name: "User " + id}
}

func identityWithLocation(id, location string) identity.User {
	u := userOf(id)
	u.Location = location
	return u
}

// csrfFrom reads the CSRF token from a page's form.
func csrfFrom(t *testing.T, page string) string {
	t.Helper()
	m := csrfField.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no csrf field in:\n%s", page)
	}
	return m[1]
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

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

func apiCallWithKey(g *testCaddy, key string) resp {
	return g.send(g.client(), http.MethodPost, "http://"+g.portal+apiLinksPath,
		strings.NewReader(`{"app":"courses","user":{"id":"x"}}`), "Authorization: Bearer "+key)
}

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

// basicAuth is the Authorization header of a staff member's browser,
// signed in by basic_auth.
func basicAuth(name string) string {
	req, _ := http.NewRequest(http.MethodGet, "/", nil)
	req.SetBasicAuth(name, testStaff[name])
	return "Authorization: " + req.Header.Get("Authorization")
}

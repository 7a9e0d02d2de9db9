package caddymodule

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
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
	"github.com/portalgate/portalgate/caddymodule/internal/testkit/web"
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
	// lastTrailer is the last request's trailers, as the upstream read
	// them after the body.
	lastTrailer atomic.Pointer[http.Header]
	// globalExtra goes into the portalgate block, caddyOptions into Caddy's
	// global options, communityBlock into the communities directive's block,
	// portalSite into the portal's site block (before the gate), coursesSite
	// into the courses site block.
	globalExtra, caddyOptions, communityBlock, portalSite, coursesSite string
	// sites are more site blocks.
	sites string
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
		_, _ = io.Copy(io.Discard, r.Body)
		tr := r.Trailer.Clone()
		g.lastTrailer.Store(&tr)
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
%[13]s
`, g.admin, g.portal, g.courses, g.community, testKey, hex.EncodeToString(sum[:]), g.globalExtra,
		strings.TrimPrefix(g.upstream.URL, "http://"), g.caddyOptions, g.communityBlock, g.portalSite, g.coursesSite, g.sites)
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
	if err := caddy.Load(cfg, true); err != nil {
		return err
	}
	// Requests go on over new connections, which the new servers accept.
	web.CloseIdleConnections()
	return nil
}

// client is a browser-like client that shows every redirect.
func (g *testCaddy) client() *http.Client { return web.Client() }

type resp = web.Response

// do sends one request; headers come as "Name: value" strings.
func (g *testCaddy) do(c *http.Client, method, url string, headers ...string) resp {
	g.t.Helper()
	return web.Send(g.t, c, method, url, nil, headers...)
}

func (g *testCaddy) send(c *http.Client, method, url string, body io.Reader, headers ...string) resp {
	g.t.Helper()
	return web.Send(g.t, c, method, url, body, headers...)
}

const browser = web.Browser

// mint asks the admin API for a link.
func (g *testCaddy) mint(req MintRequest) MintResponse {
	g.t.Helper()
	b, _ := json.Marshal(req)
	r := g.send(http.DefaultClient, http.MethodPost, "http://"+g.admin+"/portalgate/links", bytes.NewReader(b),
		"Content-Type: application/json", "Origin: http://"+g.admin)
	if r.StatusCode != http.StatusCreated {
		g.t.Fatalf("minting %+v: %d %s", req, r.StatusCode, r.Body)
	}
	var out MintResponse
	if err := json.Unmarshal([]byte(r.Body), &out); err != nil {
		g.t.Fatal(err)
	}
	return out
}

// signIn redeems a fresh link for app and returns the client holding the session.
func (g *testCaddy) signIn(app, userID string) *http.Client {
	g.t.Helper()
	return web.SignIn(g.t, g.mint(MintRequest{App: app, User: userOf(userID)}).URL)
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

// api calls the portal's API with the test API key.
func (g *testCaddy) api(method, route, body string) resp {
	g.t.Helper()
	return web.API(g.t, g.portal, testAPIKey, method, route, body)
}

// apiCall is api that insists on a status, and returns the body.
func (g *testCaddy) apiCall(method, route, body string, want int) string {
	g.t.Helper()
	return web.APICall(g.t, g.portal, testAPIKey, method, route, body, want)
}

// apiCallWithKey mints through the portal's API with key.
func apiCallWithKey(g *testCaddy, key string) resp {
	g.t.Helper()
	return web.API(g.t, g.portal, key, http.MethodPost, "links", `{"app":"courses","user":{"id":"x"}}`)
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

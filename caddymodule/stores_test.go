package caddymodule

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/portalgate/portalgate/caddymodule/internal/testkit"
	"github.com/portalgate/portalgate/caddymodule/internal/testkit/redistest"
	"github.com/portalgate/portalgate/caddymodule/internal/testkit/web"
)

func TestConfig_StoreBlocksAreReadNotIgnored(t *testing.T) {
	g := newGateway(t, "store memory")
	path := filepath.Join(t.TempDir(), "from-block.db")
	if err := loadCaddyfile(strings.Replace(g.caddyfile(), "store memory", "store bolt {\n\t\t\tpath "+path+"\n\t\t}", 1)); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("store bolt { path } ignored: %v", err)
	}
	for name, tc := range map[string]struct{ from, to, want string }{
		"memory option": {"store memory", "store memory {\n\t\t\tsize 1\n\t\t}", "store memory takes no options"},
		"bolt option":   {"store memory", "store bolt {\n\t\t\tfsync off\n\t\t}", `unknown store bolt option "fsync"`},
		"matcher":       {"portalgate courses", "portalgate /secure* courses", "takes no matcher"},
	} {
		t.Run(name, func(t *testing.T) {
			if err := loadCaddyfile(strings.Replace(g.caddyfile(), tc.from, tc.to, 1)); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestBolt_SessionAndConsumedLinkSurviveRestart(t *testing.T) {
	g := newGateway(t, "store bolt "+filepath.Join(t.TempDir(), "restart.db"))
	c := g.signIn("courses", "restart")
	used := g.mint(MintRequest{App: "courses", User: userOf("restart")})
	if r := g.do(g.client(), http.MethodGet, used.URL, browser); r.StatusCode != http.StatusSeeOther {
		t.Fatal(r.StatusCode)
	}
	fresh := g.mint(MintRequest{App: "courses", User: userOf("restart")})

	if err := caddy.Stop(); err != nil {
		t.Fatal(err)
	}
	g.load()

	if h := web.Echoed(t, g.do(c, http.MethodGet, "http://"+g.courses+"/")); h.Get("X-Portal-User-Id") != "restart" {
		t.Fatalf("after restart the app sees %v", h)
	}
	if r := g.do(g.client(), http.MethodGet, used.URL, browser); r.StatusCode != http.StatusGone {
		t.Fatalf("consumed link after restart: %d", r.StatusCode)
	}
	if r := g.do(g.client(), http.MethodGet, fresh.URL, browser); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("unused link after restart: %d", r.StatusCode)
	}
}

// A reload that puts another store in place: the requests the old config is
// still serving finish on the store they began with (Caddy cleans the old
// config up before its servers drain), and the new, empty store refuses
// the links spent in the old one instead of spending them again.
func TestReload_ChangingTheStoreFinishesRequestsInFlightAndRevivesNoLink(t *testing.T) {
	dir := t.TempDir()
	g := newGateway(t, "store bolt "+filepath.Join(dir, "before.db"))
	spent := g.mint(MintRequest{App: "courses", User: userOf("switch")})
	if r := g.do(g.client(), http.MethodGet, spent.URL, browser); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("redeeming before the switch: %d", r.StatusCode)
	}

	// A link API call in flight: its body is half sent when the reload comes.
	conn, err := net.Dial("tcp", g.portal)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	body := `{"app":"courses","user":{"id":"in-flight"}}`
	fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s",
		apiLinksPath, g.portal, testAPIKey, len(body), body[:10])

	g.globalExtra = "store bolt " + filepath.Join(dir, "after.db")
	g.load()

	if _, err := io.WriteString(conn, body[10:]); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	answer, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusCreated {
		t.Fatalf("the request in flight during the switch: %d %s", res.StatusCode, answer)
	}

	r := g.do(g.client(), http.MethodGet, spent.URL, browser)
	if r.StatusCode != http.StatusGone || !strings.Contains(r.Body, "records began again") {
		t.Fatalf("the link spent in the old store, in the new one: %d\n%s", r.StatusCode, r.Body)
	}
	if r := g.do(g.client(), http.MethodGet, g.mint(MintRequest{App: "courses", User: userOf("switch")}).URL, browser); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("a link minted after the switch: %d", r.StatusCode)
	}
}

// A Redis that stalls past the client's timeout runs the redemption's
// script when it wakes: the link is spent though the browser was answered
// 503. That browser, and no other, finishes signing in when it tries again.
func TestRedis_StallThatSpentALinkLetsTheBrowserThatGot503Finish(t *testing.T) {
	srv := redistest.Start(t)
	// Short timeouts: the redemption and its follow-up check give up well
	// within the stall.
	g := newGateway(t, "store redis "+srv.URL(0)+" {\n\t\t\tread_timeout 300ms\n\t\t\tdial_timeout 300ms\n\t\t}")
	// Connections open, as under traffic: a stalled Redis accepts no new
	// one, and a command never sent is never run.
	g.signIn("courses", "warm")
	var l MintResponse
	asked := g.client()
	for attempt := 1; ; attempt++ {
		l = g.mint(MintRequest{App: "courses", User: userOf("stalled")})
		srv.Stall(5 * time.Second)
		r := g.do(asked, http.MethodGet, l.URL, browser)
		if r.StatusCode == http.StatusServiceUnavailable {
			break
		}
		// Redis answered before it stalled (a loaded machine): try again.
		if r.StatusCode != http.StatusSeeOther || attempt == 3 {
			t.Fatalf("a redemption during the stall: %d %s", r.StatusCode, r.Body)
		}
		testkit.Eventually(t, 30*time.Second, "the stall to end", func() bool { return srv.Answers() })
		asked = g.client()
	}
	// Once Redis answers again, what it held has run: the link is spent.
	testkit.Eventually(t, 30*time.Second, "the stall to end", func() bool { return srv.Answers() })
	var r resp
	testkit.Eventually(t, 30*time.Second, "the gateway to reach Redis again", func() bool {
		r = g.do(asked, http.MethodGet, l.URL, browser)
		return r.StatusCode != http.StatusServiceUnavailable
	})
	if r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != "http://"+g.courses+"/" {
		t.Fatalf("the browser that got the 503, trying again: %d %s", r.StatusCode, r.Body)
	}
	if h := web.Echoed(t, g.do(asked, http.MethodGet, "http://"+g.courses+"/")); h.Get("X-Portal-User-Id") != "stalled" {
		t.Fatalf("the app sees %v", h)
	}
	if r := g.do(g.client(), http.MethodGet, l.URL, browser); r.StatusCode != http.StatusGone {
		t.Fatalf("another browser with the link: %d", r.StatusCode)
	}
}

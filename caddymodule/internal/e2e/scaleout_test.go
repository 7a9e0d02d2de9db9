package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portalgate/portalgate/caddymodule/internal/testkit"
	"github.com/portalgate/portalgate/caddymodule/internal/testkit/freeport"
	"github.com/portalgate/portalgate/caddymodule/internal/testkit/redistest"
)

// Two Caddy processes share one redis-server and one signing key, as two
// instances behind a load balancer would. Both are configured with the same
// public URLs (instance A's ports, standing in for the balancer's address);
// a request "routed to B" is the same URL with B's port. Cookies ignore
// ports, so one browser holds one session for both.

type instance struct {
	admin, portal, courses string // host:port
	// tenants is the catch-all site of the tenants.
	tenants string
	log     *syncBuffer
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

func startInstance(t *testing.T, redisURL string, public *instance) *instance {
	t.Helper()
	addrs := freeAddrs(t, 4)
	in := &instance{admin: addrs[0], portal: addrs[1], courses: addrs[2], tenants: addrs[3], log: &syncBuffer{}}
	if public == nil {
		public = in
	}
	_, tenantsPort, _ := net.SplitHostPort(in.tenants)
	cf := fmt.Sprintf(`{
	admin %s
	persist_config off
	portalgate {
		portal http://%s
		app courses http://%s
		signing_key shared scale-out-secret-0123456789-abcdef
		store redis %s {
			pubsub_check 200ms
			read_timeout 300ms
			dial_timeout 300ms
		}
		rate_limit off
	}
}
http://%s {
	portalgate portal
}
http://%s {
	portalgate courses
	respond "user={http.request.header.X-Portal-User-Id}"
}
http://:%s {
	bind 127.0.0.1
	portalgate
}
`, in.admin, public.portal, public.courses, redisURL, in.portal, in.courses, tenantsPort)
	dir := t.TempDir()
	path := filepath.Join(dir, "Caddyfile")
	if err := os.WriteFile(path, []byte(cf), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(buildCaddy(t), "run", "--config", path, "--adapter", "caddyfile")
	cmd.Env = append(os.Environ(), "XDG_DATA_HOME="+dir, "XDG_CONFIG_HOME="+dir)
	cmd.Stdout, cmd.Stderr = in.log, in.log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("instance %s:\n%s", in.courses, in.log.String())
		}
	})
	testkit.Eventually(t, 20*time.Second, "instance "+in.courses+" to start", func() bool {
		res, err := http.Get("http://" + in.courses + "/")
		if err == nil {
			res.Body.Close()
		}
		return err == nil
	})
	return in
}

func (in *instance) mint(t *testing.T, userID string) string {
	t.Helper()
	body := fmt.Sprintf(`{"app":"courses","user":{"id":%q}}`, userID)
	req, _ := http.NewRequest(http.MethodPost, "http://"+in.admin+"/portalgate/links", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var out struct{ URL string }
	if err := json.NewDecoder(res.Body).Decode(&out); err != nil || res.StatusCode != http.StatusCreated {
		t.Fatalf("mint: %d %v", res.StatusCode, err)
	}
	return out.URL
}

// on routes a URL of the public address to instance in.
func on(in, public *instance, raw string) string {
	return strings.Replace(raw, public.courses, in.courses, 1)
}

func noFollow() *http.Client {
	c := browserClient(nil)
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return c
}

func status(t *testing.T, c *http.Client, method, u string, headers ...string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, u, nil)
	for _, h := range headers {
		k, v, _ := strings.Cut(h, ": ")
		req.Header.Set(k, v)
	}
	res, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

func TestScaleOut_InstancesShareOneRedis(t *testing.T) {
	if testing.Short() {
		t.Skip("runs two Caddy processes and redis-server")
	}
	srv := redistest.Start(t)
	a := startInstance(t, srv.URL(0), nil)
	b := startInstance(t, srv.URL(0), a)
	home := func(in *instance) string { return "http://" + in.courses + "/" }

	t.Run("MintOnARedeemOnBReplayOnA", func(t *testing.T) {
		link := a.mint(t, "u_ab")
		c := noFollow()
		if code, _ := status(t, c, http.MethodGet, on(b, a, link), "Accept: text/html"); code != http.StatusSeeOther {
			t.Fatalf("redeem on B: %d", code)
		}
		if code, _ := status(t, noFollow(), http.MethodGet, link, "Accept: text/html"); code != http.StatusGone {
			t.Fatalf("replay on A: %d", code)
		}
		for _, in := range []*instance{a, b} {
			if code, body := status(t, c, http.MethodGet, home(in)); code != http.StatusOK || body != "user=u_ab" {
				t.Fatalf("session on %s: %d %q", in.courses, code, body)
			}
		}
	})

	t.Run("TenantAddedOnAIsServedOnBAndRemovedOnBoth", func(t *testing.T) {
		_, port, _ := net.SplitHostPort(a.tenants)
		serves := func(in *instance) int {
			req, _ := http.NewRequest(http.MethodGet, "http://"+in.tenants+"/_portalgate/jwks.json", nil)
			req.Host = "portal.gamma.localhost:" + port
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			return res.StatusCode
		}
		admin := func(method, route, body string) int {
			req, _ := http.NewRequest(method, "http://"+a.admin+"/portalgate/"+route, strings.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			return res.StatusCode
		}
		if got := serves(b); got != http.StatusNotFound {
			t.Fatalf("B before the tenant: %d", got)
		}
		if got := admin(http.MethodPost, "tenants", `{"id":"gamma","portal":"http://portal.gamma.localhost:`+port+`"}`); got != http.StatusCreated {
			t.Fatalf("adding on A: %d", got)
		}
		if got := serves(a); got != http.StatusOK {
			t.Fatalf("A once it added the tenant: %d", got)
		}
		// B polls the store (every 250 ms): it serves the tenant soon after.
		testkit.Eventually(t, 10*time.Second, "B to serve the tenant A added", func() bool { return serves(b) == http.StatusOK })
		if got := admin(http.MethodDelete, "tenants/gamma", ""); got != http.StatusOK {
			t.Fatalf("removing on A: %d", got)
		}
		testkit.Eventually(t, 10*time.Second, "B to stop serving the tenant A removed", func() bool { return serves(b) == http.StatusNotFound })
	})

	t.Run("ConcurrentRedemptionsOverBothMakeOneSession", func(t *testing.T) {
		link := a.mint(t, "u_race")
		var wg sync.WaitGroup
		var sessions, gone atomic.Int32
		for i := range 50 {
			in := []*instance{a, b}[i%2]
			wg.Go(func() {
				req, _ := http.NewRequest(http.MethodGet, on(in, a, link), nil)
				res, err := noFollow().Do(req)
				if err != nil {
					t.Error(err)
					return
				}
				res.Body.Close()
				switch res.StatusCode {
				case http.StatusSeeOther:
					sessions.Add(1)
				case http.StatusGone:
					gone.Add(1)
				default:
					t.Errorf("redemption: %d", res.StatusCode)
				}
			})
		}
		wg.Wait()
		if sessions.Load() != 1 || gone.Load() != 49 {
			t.Fatalf("%d sessions, %d refusals from 50 redemptions over two instances", sessions.Load(), gone.Load())
		}
	})

	t.Run("LogoutOnBHoldsOnA", func(t *testing.T) {
		c := noFollow()
		status(t, c, http.MethodGet, a.mint(t, "u_out"), "Accept: text/html")
		status(t, c, http.MethodGet, home(a)) // A's L1 holds the session now
		_, page := status(t, c, http.MethodGet, on(b, a, "http://"+a.courses+"/_portalgate/logout"), "Accept: text/html")
		m := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindStringSubmatch(page)
		if m == nil {
			t.Fatalf("sign-out page on B:\n%s", page)
		}
		code, _ := status(t, c, http.MethodPost, "http://"+b.courses+"/_portalgate/logout?", "X-CSRF-Token: "+m[1], "Origin: http://"+a.courses)
		if code != http.StatusOK {
			t.Fatalf("logout on B: %d", code)
		}
		testkit.Eventually(t, 2*time.Second, "A to drop the session ended on B", func() bool {
			code, _ := status(t, c, http.MethodGet, home(a))
			return code == http.StatusUnauthorized
		})
	})

	t.Run("RevokeUserOnAHoldsOnB", func(t *testing.T) {
		c := noFollow()
		status(t, c, http.MethodGet, on(b, a, a.mint(t, "u_rev")), "Accept: text/html")
		if code, _ := status(t, c, http.MethodGet, home(b)); code != http.StatusOK {
			t.Fatalf("before the revocation: %d", code)
		}
		req, _ := http.NewRequest(http.MethodPost, "http://"+a.admin+"/portalgate/users/u_rev/revoke", nil)
		res, err := http.DefaultClient.Do(req)
		if err != nil || res.StatusCode != http.StatusOK {
			t.Fatalf("revoke on A: %v %v", res, err)
		}
		res.Body.Close()
		testkit.Eventually(t, 2*time.Second, "B to drop the revoked user's session", func() bool {
			code, _ := status(t, c, http.MethodGet, home(b))
			return code == http.StatusUnauthorized
		})
	})

	t.Run("RedisDownFailsClosedAndRecovers", func(t *testing.T) {
		c := noFollow()
		status(t, c, http.MethodGet, a.mint(t, "u_down"), "Accept: text/html")
		if code, _ := status(t, c, http.MethodGet, home(a)); code != http.StatusOK {
			t.Fatalf("before: %d", code)
		}
		unspent := a.mint(t, "u_down")
		srv.Stop()
		testkit.Eventually(t, 5*time.Second, "a gated request to fail closed", func() bool {
			code, _ := status(t, c, http.MethodGet, home(a))
			return code == http.StatusServiceUnavailable
		})
		code, body := status(t, noFollow(), http.MethodGet, home(b), "Accept: application/json", "Cookie: portalgate-courses=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
		if code != http.StatusServiceUnavailable || !strings.Contains(body, "store_unavailable") {
			t.Fatalf("unknown session with Redis down: %d %s", code, body)
		}
		if code, _ := status(t, noFollow(), http.MethodGet, unspent, "Accept: text/html"); code != http.StatusServiceUnavailable {
			t.Fatalf("redemption with Redis down: %d", code)
		}
		if code, body := status(t, http.DefaultClient, http.MethodGet, "http://"+a.admin+"/portalgate/health"); code != http.StatusServiceUnavailable ||
			!strings.Contains(body, `"reachable":false`) {
			t.Fatalf("health with Redis down: %d %s", code, body)
		}
		srv.Start()
		testkit.Eventually(t, 10*time.Second, "the instance to recover by itself", func() bool {
			code, _ := status(t, c, http.MethodGet, home(a))
			return code == http.StatusOK
		})
		// The redemption that failed spent nothing; the session survived
		// the Redis restart (append-only file).
		if code, _ := status(t, noFollow(), http.MethodGet, on(b, a, unspent), "Accept: text/html"); code != http.StatusSeeOther {
			t.Fatalf("the link refused while Redis was down, after: %d", code)
		}
	})
}

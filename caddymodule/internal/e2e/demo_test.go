// Package e2e tests the built caddy binary end to end: the demo exactly as
// the README runs it, and several instances sharing one Redis.
package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// The demo test builds the command, runs it on the repository's own
// Caddyfile exactly as the README says, and uses the demo as a person would:
// the CLI mints a link, a client with a cookie jar opens it.

// repoRoot is the repository root, seen from this package.
const repoRoot = "../../.."

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// buildCaddy builds ./cmd/caddy once per test run.
func buildCaddy(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "portalgate-e2e-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "caddy")
		// The flags of xcaddy's release build (xcaddy.Dockerfile): the test
		// runs what ships, and .ci/test's xcaddy check reuses these compiles.
		build := exec.Command("go", "build", "-trimpath", "-tags", "nobadger,nomysql,nopgx", "-o", binPath, "./cmd/caddy")
		build.Dir = repoRoot
		if out, err := build.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type demo struct {
	t       *testing.T
	bin     string
	dataDir string
	env     []string
	log     *syncBuffer
	// secrets are values that must never reach the log: cookies, keys.
	secrets []string
}

func startDemo(t *testing.T) *demo {
	t.Helper()
	return startDemoWith(t, nil)
}

// startDemoWith runs the demo with its Caddyfile changed by edit (nil: as
// the repository has it).
func startDemoWith(t *testing.T, edit func(caddyfile string) string) *demo {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end test builds and runs the binary")
	}
	dir := t.TempDir()
	bin := buildCaddy(t)
	d := &demo{t: t, bin: bin, dataDir: dir, log: &syncBuffer{},
		env: append(os.Environ(), "HOME="+dir, "XDG_DATA_HOME="+dir, "XDG_CONFIG_HOME="+dir)}
	args := []string{"run"}
	if edit != nil {
		src, err := os.ReadFile(filepath.Join(repoRoot, "Caddyfile"))
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, "Caddyfile")
		if err := os.WriteFile(path, []byte(edit(string(src))), 0o600); err != nil {
			t.Fatal(err)
		}
		args = append(args, "--config", path, "--adapter", "caddyfile")
	}
	run := exec.Command(bin, args...)
	run.Dir = repoRoot // where the README runs it
	run.Env = d.env
	run.Stdout, run.Stderr = d.log, d.log
	if err := run.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = run.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = run.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = run.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("caddy output:\n%s", d.log.String())
		}
	})
	// Wait until Caddy serves the portal (bounded: a start takes well under a second).
	deadline := time.Now().Add(30 * time.Second)
	for {
		res, err := http.Get("http://localhost:8080/")
		if err == nil {
			res.Body.Close()
			break
		}
		select {
		case <-exited:
			t.Fatalf("caddy exited at start:\n%s", d.log.String())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("the demo did not start: %v\n%s", err, d.log.String())
		}
	}
	return d
}

// cli runs `caddy portalgate ...` and returns its output.
func (d *demo) cli(args ...string) string {
	d.t.Helper()
	cmd := exec.Command(d.bin, append([]string{"portalgate"}, args...)...)
	cmd.Env = d.env
	out, err := cmd.Output()
	if err != nil {
		d.t.Fatalf("caddy portalgate %v: %v", args, err)
	}
	return string(out)
}

func browserClient(*testing.T) *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, Timeout: 10 * time.Second}
}

func get(t *testing.T, c *http.Client, url string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	req.Header.Set("Accept", "text/html")
	res, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res, string(b)
}

func TestDemo(t *testing.T) {
	d := startDemo(t)
	t.Run("MagicLinkFromCLISignsIntoCourses", func(t *testing.T) { testCLILinkSignsIntoCourses(t, d) })
	t.Run("PortalLinkOpensEveryApp", func(t *testing.T) { testPortalLinkOpensEveryApp(t, d) })
	t.Run("HashKey", func(t *testing.T) {
		if out := d.cli("hash-key", "--key", "secret"); strings.TrimSpace(out) != "2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b" {
			t.Fatalf("hash-key printed %q", out)
		}
	})
	// No link token, of any link minted above, ever reached the log; nor a
	// session cookie's value, nor the signing key.
	log := d.log.String()
	// Whoever starts the demo is told where to begin, once.
	if n := strings.Count(log, "portalgate is ready: contacts sign in at http://localhost:8080/, staff open http://localhost:8080/dashboard/"); n != 1 {
		t.Errorf("the start-up line is in the log %d times, want once", n)
	}
	if tok := jwtPattern.FindString(log); tok != "" {
		t.Fatalf("a link token is in Caddy's log: %s", tok)
	}
	key, err := os.ReadFile(filepath.Join(d.dataDir, "caddy", "portalgate", "signing-key.json"))
	if err != nil {
		t.Fatal(err)
	}
	var stored struct{ Secret string }
	if err := json.Unmarshal(key, &stored); err != nil || stored.Secret == "" {
		t.Fatalf("signing-key.json: %v", err)
	}
	if len(d.secrets) < 4 {
		t.Fatalf("only %d session cookies collected", len(d.secrets))
	}
	for _, secret := range append(d.secrets, stored.Secret) {
		if strings.Contains(log, secret) {
			t.Fatalf("a secret is in Caddy's log: %s", secret)
		}
	}
}

// keepCookies remembers the client's session cookie values as secrets.
func (d *demo) keepCookies(c *http.Client) {
	for _, origin := range []string{"http://localhost:8080", "http://localhost:8081", "http://localhost:8082", "http://localhost:8083"} {
		u, _ := url.Parse(origin)
		for _, ck := range c.Jar.Cookies(u) {
			if strings.HasPrefix(ck.Name, "portalgate-") && !slices.Contains(d.secrets, ck.Value) {
				d.secrets = append(d.secrets, ck.Value)
			}
		}
	}
}

// jwtPattern matches a compact JWS: base64url JSON header, payload, signature.
var jwtPattern = regexp.MustCompile(`eyJ[A-Za-z0-9_-]+\.eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+`)

func testCLILinkSignsIntoCourses(t *testing.T, d *demo) {
	out := d.cli("link", "--app", "courses", "--id", "c_123", "--email", "ada@example.com", "--name", "Ada Lovelace", "--location", "loc_1")
	link := strings.TrimSpace(out)
	if strings.Count(out, "\n") != 1 || !strings.HasPrefix(link, "http://localhost:8081/_portalgate/magic?token=") {
		t.Fatalf("CLI printed %q", out)
	}
	token := link[strings.Index(link, "token=")+len("token="):]

	c := browserClient(t)
	res, page := get(t, c, link)
	if res.StatusCode != http.StatusOK || res.Request.URL.String() != "http://localhost:8081/" {
		t.Fatalf("landed on %s with %d", res.Request.URL, res.StatusCode)
	}
	for _, want := range []string{"<h1>Courses</h1>", "X-Portal-User-Id</td><td>c_123", "X-Portal-User-Email</td><td>ada@example.com",
		"X-Portal-User-Name</td><td>Ada Lovelace", "X-Portal-User-Type</td><td>contact", "X-Portal-App</td><td>courses",
		"X-Portal-Location-Id</td><td>loc_1"} {
		if !strings.Contains(page, want) {
			t.Fatalf("the Courses page lacks %q:\n%s", want, page)
		}
	}
	d.keepCookies(c)
	res, body := get(t, c, "http://localhost:8081/whoami")
	var who map[string]string
	if err := json.Unmarshal([]byte(body), &who); err != nil || who["X-Portal-User-Id"] != "c_123" || who["X-Portal-App"] != "courses" {
		t.Fatalf("/whoami: %d %s (%v)", res.StatusCode, body, err)
	}

	res, page = get(t, browserClient(t), link)
	if res.StatusCode != http.StatusGone || !strings.Contains(page, "this link has already been used") && !strings.Contains(page, "This link has already been used") {
		t.Fatalf("second use: %d\n%s", res.StatusCode, page)
	}

	// Sign out through the page's link and button: the session ends.
	if _, home := get(t, c, "http://localhost:8081/"); !strings.Contains(home, `href="/_portalgate/logout"`) {
		t.Fatal("the Courses page has no sign-out link")
	}
	_, signout := get(t, c, "http://localhost:8081/_portalgate/logout")
	m := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindStringSubmatch(signout)
	if m == nil {
		t.Fatalf("sign-out page:\n%s", signout)
	}
	req, _ := http.NewRequest(http.MethodPost, "http://localhost:8081/_portalgate/logout", strings.NewReader("csrf="+m[1]))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", "http://localhost:8081")
	res, err := c.Do(req)
	if err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("logout: %v %v", res, err)
	}
	res.Body.Close()
	noRedirect := *c
	noRedirect.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	if res, _ := get(t, &noRedirect, "http://localhost:8081/"); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("after logout: %d", res.StatusCode)
	}

	if log := d.log.String(); !strings.Contains(log, `"user_id": "c_123"`) {
		t.Fatalf("access log lacks user_id:\n%s", log)
	}
	if strings.Contains(d.log.String(), token[len(token)-20:]) {
		t.Fatal("the link token is in Caddy's log")
	}
}

func testPortalLinkOpensEveryApp(t *testing.T, d *demo) {
	link := strings.TrimSpace(d.cli("link", "--app", "portal", "--id", "c_456", "--name", "Grace Hopper", "--email", "grace@example.com"))
	if !strings.HasPrefix(link, "http://localhost:8080/_portalgate/magic?token=") {
		t.Fatalf("portal link %q", link)
	}
	c := browserClient(t)
	res, home := get(t, c, link)
	if res.Request.URL.String() != "http://localhost:8080/" || !strings.Contains(home, "Welcome, Grace Hopper") {
		t.Fatalf("portal home at %s:\n%s", res.Request.URL, home)
	}
	for _, app := range []struct{ name, title, origin string }{
		{"courses", "Courses", "http://localhost:8081"},
		{"communities", "Communities", "http://localhost:8082"},
		{"affiliates", "Affiliates", "http://localhost:8083"},
	} {
		if !strings.Contains(home, `href="/_portalgate/launch/`+app.name+`"`) {
			t.Fatalf("home lacks %s", app.name)
		}
		// Communities asks before a link is spent, but not for the portal's
		// own launches into it.
		res, page := get(t, c, "http://localhost:8080/_portalgate/launch/"+app.name)
		d.keepCookies(c)
		if res.Request.URL.String() != app.origin+"/" || !strings.Contains(page, "<h1>"+app.title+"</h1>") ||
			!strings.Contains(page, "X-Portal-User-Id</td><td>c_456") || !strings.Contains(page, "X-Portal-App</td><td>"+app.name) {
			t.Fatalf("launch %s landed on %s:\n%s", app.name, res.Request.URL, page)
		}
	}
}

package bench

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/portalgate/portalgate/caddymodule/internal/testkit/freeport"
)

// oauth2ProxyModule is the oauth2-proxy the comparison installs when it is
// not there: the setup a Caddy user picks today for sign-in in front of
// apps, behind forward_auth.
const oauth2ProxyModule = "github.com/oauth2-proxy/oauth2-proxy/v7@v7.15.6"

// oauth2Proxy is scenario 15: Caddy's forward_auth to oauth2-proxy
// (htpasswd, cookie sessions), copying its X-Auth-Request-* identity onto
// the request to the app; the browser signed in through its form. It runs
// against the gate (scenario 3) and the bare proxy (scenario 2, the bound)
// in the same rounds, in alternating order, and reports the ratios within
// each round.
func (e *env) oauth2Proxy(ctx context.Context) error {
	bin, err := installOAuth2Proxy(ctx, e.dir)
	if err != nil {
		fmt.Fprintf(e.o.Out, "oauth2-proxy: %v; scenario 15 is skipped\n", err)
		return nil
	}
	addrs, err := freeport.Addrs(2)
	if err != nil {
		return err
	}
	proxyAddr, site := addrs[0], addrs[1]
	stop, err := startOAuth2Proxy(ctx, bin, e.dir, proxyAddr)
	if err != nil {
		return err
	}
	defer stop()
	cookie, err := signInOAuth2Proxy(proxyAddr)
	if err != nil {
		return err
	}
	path, ids, err := e.seedBolt("oauth2-proxy", 1000, 0)
	if err != nil {
		return err
	}
	// The same Caddy as the other scenarios, with one more site.
	e.extraSites = fmt.Sprintf(`http://%s {
	forward_auth %s {
		uri /oauth2/auth
		copy_headers X-Auth-Request-User X-Auth-Request-Email
	}
	reverse_proxy %s
}
`, site, proxyAddr, e.upstream)
	defer func() { e.extraSites = "" }()
	if err := e.load("store bolt "+path, "64MiB"); err != nil {
		return err
	}
	gate := "http://" + e.gate + identityPath
	peer := "http://" + site + "/"
	// The third side is the bound: a gate that cost nothing would be the
	// bare proxy (scenario 2).
	names := []string{nameGate, "Caddy forward_auth to oauth2-proxy v7.15.6 (cookie session)", nameBare}
	rounds, err := e.alternating(15, names, func(i int) (result, error) {
		switch i {
		case 0:
			return e.drive(ctx, gate, ids), nil
		case 2:
			return e.drive(ctx, "http://"+e.bare+"/", nil), nil
		}
		return e.driveWith(ctx, peer, cookie, "", func(int, int) *http.Request {
			req, _ := http.NewRequest(http.MethodGet, peer, nil)
			req.Header.Set("Cookie", cookie)
			return req
		}), nil
	})
	if err != nil {
		return err
	}
	for _, c := range []struct {
		what string
		a    int
	}{{"the gate", 0}, {"the bare proxy (the bound: a gate that cost nothing)", 2}} {
		ratios, cpu := sideRatios(rounds, c.a, 1)
		fmt.Fprintf(e.o.Out, "scenario 15: %s / forward_auth to oauth2-proxy, median of the rounds' ratios (target >= 3): %.2f (rounds: %.2f)\n",
			c.what, median(ratios), ratios)
		if cpu != nil {
			fmt.Fprintf(e.o.Out, "scenario 15: the same from CPU per request (the peer's over this side's): %.2f (rounds: %.2f)\n", median(cpu), cpu)
		}
	}
	ratios, _ := sideRatios(rounds, 0, 2)
	fmt.Fprintf(e.o.Out, "scenario 15: the gate / the bare proxy, median of the rounds' ratios: %.3f (rounds: %.3f)\n", median(ratios), ratios)
	return nil
}

// installOAuth2Proxy finds oauth2-proxy in PATH or GOPATH/bin, or installs
// it there with go install.
func installOAuth2Proxy(ctx context.Context, dir string) (string, error) {
	if p, err := exec.LookPath("oauth2-proxy"); err == nil {
		return p, nil
	}
	gobin := filepath.Join(dir, "bin")
	out, err := exec.CommandContext(ctx, "go", "env", "GOPATH").Output()
	if err == nil {
		gopath := strings.TrimSpace(strings.Split(string(out), string(os.PathListSeparator))[0])
		if p := filepath.Join(gopath, "bin", "oauth2-proxy"); fileExists(p) {
			return p, nil
		}
	}
	cmd := exec.CommandContext(ctx, "go", "install", oauth2ProxyModule)
	cmd.Env = append(os.Environ(), "GOBIN="+gobin)
	if msg, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go install %s: %w: %s", oauth2ProxyModule, err, msg)
	}
	return filepath.Join(gobin, "oauth2-proxy"), nil
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// startOAuth2Proxy runs oauth2-proxy at addr with one htpasswd user (bench,
// bench-pw) and cookie sessions, and waits until it answers.
func startOAuth2Proxy(ctx context.Context, bin, dir, addr string) (func(), error) {
	hash, err := bcrypt.GenerateFromPassword([]byte("bench-pw"), bcrypt.MinCost)
	if err != nil {
		return nil, err
	}
	htpasswd := filepath.Join(dir, "htpasswd")
	if err := os.WriteFile(htpasswd, []byte("bench:"+string(hash)+"\n"), 0o600); err != nil {
		return nil, err
	}
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, bin,
		"--http-address=http://"+addr, "--upstream=static://202", "--htpasswd-file="+htpasswd,
		"--email-domain=*", "--cookie-secret="+base64.RawURLEncoding.EncodeToString(secret), "--cookie-secure=false",
		"--provider=github", "--client-id=bench", "--client-secret=bench", "--set-xauthrequest",
		"--skip-provider-button", "--request-logging=false", "--auth-logging=false", "--standard-logging=false")
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	stop := func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }
	if !waitUntil(20*time.Second, func() bool {
		res, err := http.Get("http://" + addr + "/ping")
		if err != nil {
			return false
		}
		_ = res.Body.Close()
		return res.StatusCode == http.StatusOK
	}) {
		stop()
		return nil, errors.New("oauth2-proxy did not answer /ping within 20 s")
	}
	return stop, nil
}

// signInOAuth2Proxy signs in through oauth2-proxy's htpasswd form and
// returns the session cookie, name=value.
func signInOAuth2Proxy(addr string) (string, error) {
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := c.PostForm("http://"+addr+"/oauth2/sign_in", url.Values{"username": {"bench"}, "password": {"bench-pw"}, "rd": {"/"}})
	if err != nil {
		return "", err
	}
	_ = res.Body.Close()
	for _, k := range res.Cookies() {
		if strings.HasPrefix(k.Name, "_oauth2_proxy") {
			return k.Name + "=" + k.Value, nil
		}
	}
	return "", fmt.Errorf("oauth2-proxy's sign-in answered %d without a session cookie", res.StatusCode)
}

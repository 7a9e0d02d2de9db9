package caddymodule

import (
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRevoke_UserIDIsDecodedExactlyOnce(t *testing.T) {
	g := newGateway(t, "store memory")
	odd := g.signIn("courses", "x%41")
	bystander := g.signIn("courses", "xA")
	slash := g.signIn("courses", "org/7")
	if r := g.api(http.MethodPost, "users/"+url.PathEscape("x%41")+"/revoke", ""); r.StatusCode != http.StatusOK || !strings.Contains(r.body, `"user_id":"x%41"`) {
		t.Fatalf("revoke x%%41: %d %s", r.StatusCode, r.body)
	}
	if r := g.do(odd, http.MethodGet, "http://"+g.courses+"/"); r.StatusCode != http.StatusUnauthorized {
		t.Fatalf("x%%41 after its revocation: %d", r.StatusCode)
	}
	if h := upstreamHeaders(t, g.do(bystander, http.MethodGet, "http://"+g.courses+"/")); h.Get("X-Portal-User-Id") != "xA" {
		t.Fatal("revoking x%41 signed out xA")
	}
	if r := g.api(http.MethodPost, "users/"+url.PathEscape("org/7")+"/revoke", ""); r.StatusCode != http.StatusOK {
		t.Fatalf("revoke org/7: %d %s", r.StatusCode, r.body)
	}
	if r := g.do(slash, http.MethodGet, "http://"+g.courses+"/"); r.StatusCode != http.StatusUnauthorized {
		t.Fatalf("org/7 after its revocation: %d", r.StatusCode)
	}
}

func TestGate_IdentityTrailersAreRefused(t *testing.T) {
	g := newGateway(t, "store memory")
	c := g.signIn("courses", "c_trailer")
	before := g.upstreamHits.Load()
	pr, pw := io.Pipe()
	req, _ := http.NewRequest(http.MethodPost, "http://"+g.courses+"/upload", pr)
	req.Trailer = http.Header{"X-Portal-User-Id": nil}
	go func() {
		_, _ = pw.Write([]byte("data"))
		req.Trailer.Set("X-Portal-User-Id", "admin")
		pw.Close()
	}()
	res, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusBadRequest || g.upstreamHits.Load() != before {
		t.Fatalf("identity trailer: %d, upstream hits %d", res.StatusCode, g.upstreamHits.Load()-before)
	}
}

func TestGate_ConnectionHeaderCannotDropIdentity(t *testing.T) {
	g := newGateway(t, "store memory")
	c := g.client()
	g.do(c, http.MethodGet, g.mint(MintRequest{App: "courses", User: identityWithLocation("c_conn", "loc_9")}).URL, browser)
	h := upstreamHeaders(t, g.do(c, http.MethodGet, "http://"+g.courses+"/",
		"Connection: keep-alive, X-Portal-Location-Id, x_portal_user_type"))
	if h.Get("X-Portal-Location-Id") != "loc_9" || h.Get("X-Portal-User-Type") != "contact" {
		t.Fatalf("identity after a hostile Connection header: %v", h)
	}
}

func TestLogout_CSRFHeaderIsAccepted(t *testing.T) {
	g := newGateway(t, "store memory")
	c := g.signIn("courses", "c_hdr")
	token := csrfFrom(t, g.do(c, http.MethodGet, "http://"+g.courses+logoutPath, browser).body)
	r := g.do(c, http.MethodPost, "http://"+g.courses+logoutPath, "X-CSRF-Token: "+token, "Origin: http://"+g.courses)
	if r.StatusCode != http.StatusOK || !strings.Contains(r.body, "signed_out") {
		t.Fatalf("logout with the CSRF header: %d %s", r.StatusCode, r.body)
	}
}

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

package gateway

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/portalgate/portalgate/caddymodule/internal/testkit/web"
)

func TestRevoke_RevokedLinkIsRefused(t *testing.T) {
	t.Parallel()
	g := newTestGateway(t)
	l := g.mint(MintRequest{App: "courses", User: userOf("revokee"), Uses: 5})
	if r := g.api(http.MethodDelete, "links/"+l.ID, ""); r.StatusCode != http.StatusOK {
		t.Fatalf("revoke: %d %s", r.StatusCode, r.Body)
	}
	r := g.do(g.client(), http.MethodGet, l.URL, browser)
	if r.StatusCode != http.StatusGone || !strings.Contains(r.Body, "revoked") {
		t.Fatalf("revoked link: %d %s", r.StatusCode, r.Body)
	}
	if r := g.api(http.MethodDelete, "links/not-an-id", ""); r.StatusCode != http.StatusBadRequest {
		t.Fatalf("revoke of a malformed id: %d", r.StatusCode)
	}
	// An id of the right shape that names no live link is not "revoked":
	// a typo must not look like success.
	if r := g.api(http.MethodDelete, "links/AAAAAAAAAAAAAAAAAAAAAA", ""); r.StatusCode != http.StatusNotFound || !strings.Contains(r.Body, "link_not_found") {
		t.Fatalf("revoke of an unknown link: %d %s", r.StatusCode, r.Body)
	}
}

func TestRevoke_RevokedUserIsOutEverywhereAtOnce(t *testing.T) {
	t.Parallel()
	g := newTestGateway(t)
	courses := g.signIn("courses", "c_gone")
	community := g.signIn("communities", "c_gone")
	bystander := g.signIn("courses", "c_stays")
	unused := g.mint(MintRequest{App: "courses", User: userOf("c_gone")})
	// Warm L1: the revocation must reach the cache, not just the store.
	for _, c := range []*http.Client{courses, community} {
		g.do(c, http.MethodGet, "http://"+g.courses+"/")
	}

	r := g.api(http.MethodPost, "users/c_gone/revoke", "")
	var out struct {
		Ended int `json:"sessions_ended"`
	}
	if r.StatusCode != http.StatusOK || json.Unmarshal([]byte(r.Body), &out) != nil || out.Ended != 2 {
		t.Fatalf("revoke user: %d %s", r.StatusCode, r.Body)
	}
	for origin, c := range map[string]*http.Client{g.courses: courses, g.community: community} {
		if r := g.do(c, http.MethodGet, "http://"+origin+"/"); r.StatusCode != http.StatusUnauthorized {
			t.Fatalf("revoked user's session on %s: %d", origin, r.StatusCode)
		}
	}
	if r := g.do(g.client(), http.MethodGet, unused.URL, browser); r.StatusCode != http.StatusGone {
		t.Fatalf("revoked user's older link: %d", r.StatusCode)
	}
	if h := web.Echoed(t, g.do(bystander, http.MethodGet, "http://"+g.courses+"/")); h.Get("X-Portal-User-Id") != "c_stays" {
		t.Fatal("another user's session ended too")
	}
	// A link issued right after the revocation, within the same second,
	// signs the user in again.
	g.clock.Advance(time.Millisecond)
	fresh := g.mint(MintRequest{App: "courses", User: userOf("c_gone")})
	if r := g.do(g.client(), http.MethodGet, fresh.URL, browser); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("new link right after the revocation: %d %s", r.StatusCode, r.Body)
	}
}

func TestRevoke_UserIDIsDecodedExactlyOnce(t *testing.T) {
	t.Parallel()
	g := newTestGateway(t)
	odd := g.signIn("courses", "x%41")
	bystander := g.signIn("courses", "xA")
	slash := g.signIn("courses", "org/7")
	if r := g.api(http.MethodPost, "users/"+url.PathEscape("x%41")+"/revoke", ""); r.StatusCode != http.StatusOK || !strings.Contains(r.Body, `"user_id":"x%41"`) {
		t.Fatalf("revoke x%%41: %d %s", r.StatusCode, r.Body)
	}
	if r := g.do(odd, http.MethodGet, "http://"+g.courses+"/"); r.StatusCode != http.StatusUnauthorized {
		t.Fatalf("x%%41 after its revocation: %d", r.StatusCode)
	}
	if h := web.Echoed(t, g.do(bystander, http.MethodGet, "http://"+g.courses+"/")); h.Get("X-Portal-User-Id") != "xA" {
		t.Fatal("revoking x%41 signed out xA")
	}
	if r := g.api(http.MethodPost, "users/"+url.PathEscape("org/7")+"/revoke", ""); r.StatusCode != http.StatusOK {
		t.Fatalf("revoke org/7: %d %s", r.StatusCode, r.Body)
	}
	if r := g.do(slash, http.MethodGet, "http://"+g.courses+"/"); r.StatusCode != http.StatusUnauthorized {
		t.Fatalf("org/7 after its revocation: %d", r.StatusCode)
	}
}

// Revoking a link used to leave the sessions it had started alive, while
// the dashboard said it signed no one in any more.
func TestRevoke_RevokedLinkEndsTheSessionsItStarted(t *testing.T) {
	t.Parallel()
	g := newTestGateway(t)
	l := g.mint(MintRequest{App: PortalName, User: userOf("c_rl"), Uses: 2})
	c := g.client()
	g.do(c, http.MethodGet, l.URL, browser)
	magic := g.do(c, http.MethodGet, "http://"+g.portal+launchPrefix+"courses", browser).Header.Get("Location")
	g.do(c, http.MethodGet, magic, browser)
	other := g.signIn("courses", "c_rl")
	if r := g.api(http.MethodDelete, "links/"+l.ID, ""); r.StatusCode != http.StatusOK {
		t.Fatalf("revoke: %d %s", r.StatusCode, r.Body)
	}
	for _, origin := range []string{g.portal, g.courses} {
		if r := g.do(c, http.MethodGet, "http://"+origin+"/", "Accept: application/json"); r.StatusCode != http.StatusUnauthorized {
			t.Errorf("http://%s after its link was revoked: %d", origin, r.StatusCode)
		}
	}
	if h := web.Echoed(t, g.do(other, http.MethodGet, "http://"+g.courses+"/")); h.Get("X-Portal-User-Id") != "c_rl" {
		t.Fatal("revoking one link ended a session another link started")
	}
}

// Sessions outlive links (12 hours against 15 minutes): a link that reached
// the wrong person is revoked after its end too, and the sessions it
// started end then.
func TestRevoke_LinkPastItsEndStillEndsItsSessions(t *testing.T) {
	t.Parallel()
	g := newTestGateway(t)
	l := g.mint(MintRequest{App: "courses", User: userOf("c_wrong_person")})
	c := web.SignIn(t, l.URL)
	g.clock.Advance(20 * time.Minute)
	if r := g.do(c, http.MethodGet, "http://"+g.courses+"/"); r.StatusCode != http.StatusOK {
		t.Fatalf("the session before the revocation: %d", r.StatusCode)
	}
	if r := g.api(http.MethodDelete, "links/"+l.ID, ""); r.StatusCode != http.StatusOK {
		t.Fatalf("revoking a link past its end: %d %s", r.StatusCode, r.Body)
	}
	if r := g.do(c, http.MethodGet, "http://"+g.courses+"/"); r.StatusCode != http.StatusUnauthorized {
		t.Fatalf("the session of a link revoked after its end: %d", r.StatusCode)
	}
}

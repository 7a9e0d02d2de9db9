package caddymodule

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

func TestRevoke_RevokedLinkIsRefused(t *testing.T) {
	g := newGateway(t, "store memory")
	for name, revoke := range map[string]func(id string) int{
		"link API": func(id string) int { return g.api(http.MethodDelete, "links/"+id, "").StatusCode },
		"admin API": func(id string) int {
			return g.do(http.DefaultClient, http.MethodDelete, "http://"+g.admin+adminPrefix+"links/"+id).StatusCode
		},
		"CLI": func(id string) int {
			if err := runCLI(t, revokeCommand(), "--address", g.admin, "--link", id); err != nil {
				t.Fatal(err)
			}
			return http.StatusOK
		},
	} {
		t.Run(name, func(t *testing.T) {
			l := g.mint(MintRequest{App: "courses", User: userOf("revokee"), Uses: 5})
			if status := revoke(l.ID); status != http.StatusOK {
				t.Fatalf("revoke: %d", status)
			}
			r := g.do(g.client(), http.MethodGet, l.URL, browser)
			if r.StatusCode != http.StatusGone || !strings.Contains(r.body, "revoked") {
				t.Fatalf("revoked link: %d %s", r.StatusCode, r.body)
			}
		})
	}
	if r := g.api(http.MethodDelete, "links/not-an-id", ""); r.StatusCode != http.StatusBadRequest {
		t.Fatalf("revoke of a malformed id: %d", r.StatusCode)
	}
}

func TestRevoke_RevokedUserIsOutEverywhereAtOnce(t *testing.T) {
	g := newGateway(t, "store memory")
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
	if r.StatusCode != http.StatusOK || json.Unmarshal([]byte(r.body), &out) != nil || out.Ended != 2 {
		t.Fatalf("revoke user: %d %s", r.StatusCode, r.body)
	}
	for origin, c := range map[string]*http.Client{g.courses: courses, g.community: community} {
		if r := g.do(c, http.MethodGet, "http://"+origin+"/"); r.StatusCode != http.StatusUnauthorized {
			t.Fatalf("revoked user's session on %s: %d", origin, r.StatusCode)
		}
	}
	if r := g.do(g.client(), http.MethodGet, unused.URL, browser); r.StatusCode != http.StatusGone {
		t.Fatalf("revoked user's older link: %d", r.StatusCode)
	}
	if h := upstreamHeaders(t, g.do(bystander, http.MethodGet, "http://"+g.courses+"/")); h.Get("X-Portal-User-Id") != "c_stays" {
		t.Fatal("another user's session ended too")
	}
	// A link issued right after the revocation (the same second, too) signs
	// the user in again.
	fresh := g.mint(MintRequest{App: "courses", User: userOf("c_gone")})
	if r := g.do(g.client(), http.MethodGet, fresh.URL, browser); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("new link right after the revocation: %d %s", r.StatusCode, r.body)
	}

	var buf bytes.Buffer
	cmd := &cobra.Command{Use: "portalgate"}
	cmd.AddCommand(revokeCommand())
	cmd.SetOut(&buf)
	cmd.SetArgs([]string{"revoke", "--address", g.admin, "--user", "c_stays"})
	if err := cmd.Execute(); err != nil || !strings.Contains(buf.String(), "1 sessions ended") {
		t.Fatalf("CLI revoke --user: %v %q", err, buf.String())
	}
	if r := g.do(bystander, http.MethodGet, "http://"+g.courses+"/"); r.StatusCode != http.StatusUnauthorized {
		t.Fatalf("after CLI revoke: %d", r.StatusCode)
	}
}

func runCLI(t *testing.T, c *cobra.Command, args ...string) error {
	t.Helper()
	root := &cobra.Command{Use: "portalgate"}
	root.AddCommand(c)
	root.SetOut(&bytes.Buffer{})
	root.SetErr(&bytes.Buffer{})
	root.SetArgs(append([]string{c.Name()}, args...))
	return root.Execute()
}

package caddymodule

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

func TestHealth_ReportsStoreAndKeys(t *testing.T) {
	g := newGateway(t, "store bolt "+t.TempDir()+"/health.db")
	r := g.do(http.DefaultClient, http.MethodGet, "http://"+g.admin+"/portalgate/health")
	var h struct {
		Status string
		Store  struct {
			Backend   string
			Reachable bool
		}
		Keys struct {
			Signing, Assertion struct {
				Kid       string
				Keys      int
				Generated bool
			}
		}
	}
	if err := json.Unmarshal([]byte(r.Body), &h); err != nil || r.StatusCode != http.StatusOK {
		t.Fatalf("health: %d %s", r.StatusCode, r.Body)
	}
	if h.Status != "ok" || h.Store.Backend != "bolt" || !h.Store.Reachable || h.Keys.Signing.Kid != "test" ||
		h.Keys.Signing.Keys != 1 || h.Keys.Signing.Generated || !h.Keys.Assertion.Generated || strings.Contains(r.Body, testKey) {
		t.Fatalf("health: %s", r.Body)
	}
}

func TestRevoke_AdminAPIAndCLIRevokeALink(t *testing.T) {
	g := newGateway(t, "store memory")
	for name, revoke := range map[string]func(id string) int{
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
			if r.StatusCode != http.StatusGone || !strings.Contains(r.Body, "revoked") {
				t.Fatalf("revoked link: %d %s", r.StatusCode, r.Body)
			}
		})
	}
}

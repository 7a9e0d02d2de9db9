package caddymodule

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"
)

func TestAPI_MintLinks(t *testing.T) {
	g := newGateway(t, "store memory")
	url := "http://" + g.portal + apiLinksPath
	post := func(body string, headers ...string) resp {
		return g.send(g.client(), http.MethodPost, url, strings.NewReader(body), headers...)
	}
	auth := "Authorization: Bearer " + testAPIKey
	good := `{"app":"courses","user":{"id":"c_123","email":"ada@example.com","name":"Ada Lovelace","type":"contact","location":"loc_1"},"path":"/","ttl":"10m","uses":1}`

	r := post(good, auth)
	if r.StatusCode != http.StatusCreated {
		t.Fatalf("mint: %d %s", r.StatusCode, r.body)
	}
	var out MintResponse
	if err := json.Unmarshal([]byte(r.body), &out); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out.URL, "http://"+g.courses+magicPath+"?token=") || len(out.ID) != 22 ||
		time.Until(out.ExpiresAt) > 10*time.Minute || time.Until(out.ExpiresAt) < 9*time.Minute {
		t.Fatalf("answer %+v", out)
	}
	if h := upstreamHeaders(t, func() resp {
		c := g.client()
		g.do(c, http.MethodGet, out.URL, browser)
		return g.do(c, http.MethodGet, "http://"+g.courses+"/")
	}()); h.Get("X-Portal-Location-Id") != "loc_1" {
		t.Fatalf("API link signs in as %v", h)
	}

	for name, tc := range map[string]struct {
		body, header string
		status       int
		want         string
	}{
		"no key":          {good, "", http.StatusUnauthorized, "invalid_api_key"},
		"wrong key":       {good, "Authorization: Bearer nope", http.StatusUnauthorized, "invalid_api_key"},
		"basic auth":      {good, "Authorization: Basic dGVzdC1hcGkta2V5", http.StatusUnauthorized, "invalid_api_key"},
		"bad JSON":        {`{"app":`, auth, http.StatusBadRequest, "cut short"},
		"not an object":   {`[1,2]`, auth, http.StatusBadRequest, "bad_request"},
		"two objects":     {good + good, auth, http.StatusBadRequest, "exactly one"},
		"unknown field":   {`{"app":"courses","usr":{"id":"x"}}`, auth, http.StatusBadRequest, `unknown field \"usr\"`},
		"unknown app":     {`{"app":"nope","user":{"id":"x"}}`, auth, http.StatusBadRequest, `unknown app \"nope\"`},
		"missing user id": {`{"app":"courses","user":{"email":"x@example.com"}}`, auth, http.StatusBadRequest, "user.id is required"},
		"bad ttl":         {`{"app":"courses","user":{"id":"x"},"ttl":"soon"}`, auth, http.StatusBadRequest, "ttl"},
		"ttl above max":   {`{"app":"courses","user":{"id":"x"},"ttl":"48h"}`, auth, http.StatusBadRequest, "ttl"},
		"bad type":        {`{"app":"courses","user":{"id":"x","type":"root"}}`, auth, http.StatusBadRequest, "user type"},
		"offsite path":    {`{"app":"courses","user":{"id":"x"},"path":"//evil.example.com"}`, auth, http.StatusBadRequest, "path"},
		"wrong type":      {`{"app":"courses","user":{"id":"x"},"uses":"one"}`, auth, http.StatusBadRequest, `field \"uses\"`},
	} {
		t.Run(name, func(t *testing.T) {
			var headers []string
			if tc.header != "" {
				headers = append(headers, tc.header)
			}
			r := post(tc.body, headers...)
			if r.StatusCode != tc.status || !strings.Contains(r.body, tc.want) {
				t.Fatalf("%d %s; want %d with %q", r.StatusCode, r.body, tc.status, tc.want)
			}
			if r.StatusCode == http.StatusUnauthorized && r.Header.Get("WWW-Authenticate") == "" {
				t.Fatal("401 without WWW-Authenticate")
			}
		})
	}
	if r := g.do(g.client(), http.MethodGet, url, auth); r.StatusCode != http.StatusMethodNotAllowed || r.Header.Get("Allow") != "POST" {
		t.Fatalf("GET: %d, Allow %q", r.StatusCode, r.Header.Get("Allow"))
	}
	if r := g.send(g.client(), http.MethodPost, "http://"+g.courses+apiLinksPath, strings.NewReader(good), auth); r.StatusCode != http.StatusNotFound {
		t.Fatalf("link API on a child app: %d", r.StatusCode)
	}
}

func TestAPI_OffWithoutKeys(t *testing.T) {
	g := newGateway(t, "store memory")
	g.globalExtra = "store memory"
	cf := strings.Replace(g.caddyfile(), "api_key_hash", "# api_key_hash", 1)
	if err := loadCaddyfile(cf); err != nil {
		t.Fatal(err)
	}
	r := g.send(g.client(), http.MethodPost, "http://"+g.portal+apiLinksPath, strings.NewReader(`{}`), "Authorization: Bearer "+testAPIKey)
	if r.StatusCode != http.StatusNotFound || !strings.Contains(r.body, "api_disabled") {
		t.Fatalf("API without keys: %d %s", r.StatusCode, r.body)
	}
}

func TestCLI_LinkPrintsAWorkingLink(t *testing.T) {
	g := newGateway(t, "store memory")
	cmd := &cobra.Command{Use: "portalgate"}
	cmd.AddCommand(linkCommand())
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetArgs([]string{"link", "--address", g.admin, "--app", "courses", "--id", "c_cli", "--email", "ada@example.com",
		"--name", "Ada Lovelace", "--type", "agency_user", "--location", "loc_7", "--path", "/welcome"})
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	link := strings.TrimSpace(out.String())
	if strings.Count(out.String(), "\n") != 1 || !strings.HasPrefix(link, "http://"+g.courses+magicPath) {
		t.Fatalf("output %q", out.String())
	}
	c := g.client()
	if land := g.do(c, http.MethodGet, link, browser).Header.Get("Location"); land != "http://"+g.courses+"/welcome" {
		t.Fatalf("lands on %q", land)
	}
	h := upstreamHeaders(t, g.do(c, http.MethodGet, "http://"+g.courses+"/welcome"))
	if h.Get("X-Portal-User-Type") != "agency_user" || h.Get("X-Portal-Location-Id") != "loc_7" {
		t.Fatalf("CLI link identity %v", h)
	}

	bad := &cobra.Command{Use: "portalgate"}
	bad.AddCommand(linkCommand())
	bad.SetOut(&bytes.Buffer{})
	bad.SetErr(&bytes.Buffer{})
	bad.SetArgs([]string{"link", "--address", g.admin, "--app", "nope", "--id", "x"})
	if err := bad.Execute(); err == nil || !strings.Contains(err.Error(), "unknown app") {
		t.Fatalf("CLI with an unknown app: %v", err)
	}
}

func TestCLI_HashKeyMatchesWhatTheAPIAccepts(t *testing.T) {
	cmd := hashKeyCommand()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetIn(strings.NewReader(testAPIKey + "\n"))
	cmd.SetArgs(nil)
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	a := &App{}
	a.APIKeyHashes = []string{strings.TrimSpace(out.String())}
	keys, err := a.apiKeyHashes()
	if err != nil {
		t.Fatal(err)
	}
	ok := func(key string) bool { return len(keys) == 1 && keys[0] == sha256.Sum256([]byte(key)) }
	if !ok(testAPIKey) || ok(testAPIKey+"x") || ok("") {
		t.Fatal("hash-key output does not verify the key it hashed")
	}
}

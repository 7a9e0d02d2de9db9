package caddymodule

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/portalgate/portalgate/caddymodule/internal/testkit/mailtest"
	"github.com/portalgate/portalgate/caddymodule/internal/testkit/web"
)

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
	h := web.Echoed(t, g.do(c, http.MethodGet, "http://"+g.courses+"/welcome"))
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

func runCLI(t *testing.T, c *cobra.Command, args ...string) error {
	t.Helper()
	root := &cobra.Command{Use: "portalgate"}
	root.AddCommand(c)
	root.SetOut(&bytes.Buffer{})
	root.SetErr(&bytes.Buffer{})
	root.SetArgs(append([]string{c.Name()}, args...))
	return root.Execute()
}

func TestCLI_RevokeUserEndsTheirSessions(t *testing.T) {
	g := newGateway(t, "store memory")
	c := g.signIn("courses", "c_stays")
	var buf bytes.Buffer
	cmd := &cobra.Command{Use: "portalgate"}
	cmd.AddCommand(revokeCommand())
	cmd.SetOut(&buf)
	cmd.SetArgs([]string{"revoke", "--address", g.admin, "--user", "c_stays"})
	if err := cmd.Execute(); err != nil || !strings.Contains(buf.String(), "1 sessions ended") {
		t.Fatalf("CLI revoke --user: %v %q", err, buf.String())
	}
	if r := g.do(c, http.MethodGet, "http://"+g.courses+"/"); r.StatusCode != http.StatusUnauthorized {
		t.Fatalf("after CLI revoke: %d", r.StatusCode)
	}
}

func TestCLI_LinkSendMailsTheLink(t *testing.T) {
	srv := mailtest.Start(t, mailtest.Options{})
	g := newGateway(t, "store memory\n\t\t"+smtpTo(srv))
	cmd := &cobra.Command{Use: "portalgate"}
	cmd.AddCommand(linkCommand())
	var out, errOut bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	cmd.SetArgs([]string{"link", "--address", g.admin, "--app", "courses", "--id", "c_clisend", "--email", "lin@example.com", "--send"})
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	if got := errOut.String(); !strings.HasSuffix(got, "\ne-mail to lin@example.com: queued\n") {
		t.Fatalf("stderr %q", got)
	}
	m := srv.WaitFor("lin@example.com", 1)[0]
	if !strings.Contains(m.Text, strings.TrimSpace(out.String())) {
		t.Fatalf("the e-mail lacks the printed link %q:\n%s", out.String(), m.Text)
	}
}

// `revoke --link` asked for an id that `link` never printed. `link` now
// says the id on stderr (and all of its answer with --json), and revoking
// it works; an id that names no link is said to be unknown, not "revoked",
// and an admin API that answers is never taken for a Caddy that is down.
func TestCLI_RevokeTheLinkThatLinkPrinted(t *testing.T) {
	g := newGateway(t, "store memory")
	run := func(cmd *cobra.Command, args ...string) (stdout, stderr string, err error) {
		root := &cobra.Command{Use: "portalgate", SilenceUsage: true, SilenceErrors: true}
		root.AddCommand(cmd)
		var out, errOut bytes.Buffer
		root.SetOut(&out)
		root.SetErr(&errOut)
		if !slices.Contains(args, "--address") {
			args = append(args, "--address", g.admin)
		}
		root.SetArgs(args)
		err = root.Execute()
		return out.String(), errOut.String(), err
	}
	link, said, err := run(linkCommand(), "link", "--app", "courses", "--id", "c_cli")
	if err != nil {
		t.Fatal(err)
	}
	id := strings.TrimSuffix(strings.Fields(said + " x x")[1], ",")
	if len(id) != 22 || !strings.Contains(said, "revoke --link "+id) {
		t.Fatalf("link said %q on stderr", said)
	}
	if out, _, err := run(revokeCommand(), "revoke", "--link", id); err != nil || !strings.Contains(out, "revoked link "+id) {
		t.Fatalf("revoke --link %s: %v %q", id, err, out)
	}
	if r := g.do(g.client(), http.MethodGet, strings.TrimSpace(link), browser); r.StatusCode != http.StatusGone {
		t.Fatalf("the revoked link: %d", r.StatusCode)
	}
	_, _, err = run(revokeCommand(), "revoke", "--link", "AAAAAAAAAAAAAAAAAAAAAA")
	if err == nil || !strings.Contains(err.Error(), "no link with id") || strings.Contains(err.Error(), "is Caddy running") {
		t.Fatalf("revoking an unknown link: %v", err)
	}
	out, _, err := run(linkCommand(), "link", "--app", "courses", "--id", "c_cli", "--json")
	var answer MintResponse
	if err != nil || json.Unmarshal([]byte(out), &answer) != nil || len(answer.ID) != 22 || !strings.HasPrefix(answer.URL, "http://") {
		t.Fatalf("link --json: %v %q", err, out)
	}
	_, _, err = run(revokeCommand(), "revoke", "--link", "x", "--address", "127.0.0.1:1")
	if err == nil || !strings.Contains(err.Error(), "is Caddy running") {
		t.Fatalf("with nothing at the address: %v", err)
	}
}

// The tenant commands add, list and remove sub-accounts through the admin
// API; a tenant added so is served at once.
func TestCLI_TenantAddListRemove(t *testing.T) {
	g := newGateway(t, "store memory")
	run := func(args ...string) (string, error) {
		cmd := &cobra.Command{Use: "portalgate"}
		cmd.AddCommand(tenantCommand())
		var out bytes.Buffer
		cmd.SetOut(&out)
		cmd.SetErr(&bytes.Buffer{})
		cmd.SetArgs(append(args, "--address", g.admin))
		err := cmd.Execute()
		return out.String(), err
	}
	out, err := run("tenant", "add", "--id", "acme", "--name", "Acme Coaching", "--portal", "https://portal.acme.example",
		"--app", "courses=https://courses.acme.example", "--color", "#0f766e", "--sender-name", "Acme")
	if err != nil || !strings.Contains(out, "tenant acme: portal https://portal.acme.example") {
		t.Fatalf("add: %q, %v", out, err)
	}
	if _, err := run("tenant", "add", "--id", "acme", "--portal", "https://portal.acme.example"); err == nil || !strings.Contains(err.Error(), "exists already") {
		t.Fatalf("adding acme twice: %v", err)
	}
	if out, err := run("tenant", "add", "--replace", "--id", "acme", "--name", "Acme Academy", "--portal", "https://portal.acme.example"); err != nil || !strings.Contains(out, "tenant acme") {
		t.Fatalf("replace: %q, %v", out, err)
	}
	out, err = run("tenant", "list")
	if err != nil || !strings.Contains(out, "acme") || !strings.Contains(out, "Acme Academy") {
		t.Fatalf("list: %q, %v", out, err)
	}
	if l := g.mint(MintRequest{Tenant: "acme", App: "portal", User: userOf("c_1")}); !strings.HasPrefix(l.URL, "https://portal.acme.example/") {
		t.Fatalf("acme's link: %s", l.URL)
	}
	if out, err := run("tenant", "remove", "--id", "acme"); err != nil || !strings.Contains(out, "removed tenant acme") {
		t.Fatalf("remove: %q, %v", out, err)
	}
	if out, err := run("tenant", "list", "--json"); err != nil || strings.TrimSpace(out) != "[]" {
		t.Fatalf("list after remove: %q, %v", out, err)
	}
}

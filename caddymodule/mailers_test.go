package caddymodule

import (
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/portalgate/portalgate/caddymodule/internal/identity"
	"github.com/portalgate/portalgate/caddymodule/internal/testkit/mailtest"
	"github.com/portalgate/portalgate/caddymodule/internal/testkit/web"
)

// smtpTo is the mailer block for a Mailpit on loopback.
func smtpTo(srv *mailtest.Server) string {
	return fmt.Sprintf("mailer smtp {\n\t\t\thost %s\n\t\t\tport %d\n\t\t\tfrom \"Acme Portal <portal@acme.example>\"\n\t\t\ttls none\n\t\t}",
		srv.Host(), srv.Port())
}

// magicURL finds the link in an e-mail's text.
var magicURL = regexp.MustCompile(`https?://\S+/_portalgate/magic\?\S+`)

func TestSend_LinkMailedThroughARealSMTPServerSignsIn(t *testing.T) {
	srv := mailtest.Start(t, mailtest.Options{})
	g := newGateway(t, "store memory\n\t\t"+smtpTo(srv))
	ada := identity.User{ID: "c_mail", Email: "ada@example.com", Name: "Ada Lovelace"}
	out := g.mint(MintRequest{App: "courses", User: ada, Send: "email"})
	if out.Delivery != "queued" {
		t.Fatalf("delivery %q, want queued", out.Delivery)
	}
	m := srv.WaitFor("ada@example.com", 1)[0]
	if m.From.Name != "Acme Portal" || m.To[0].Name != "Ada Lovelace" || !strings.Contains(m.Subject, "Courses") {
		t.Fatalf("the e-mail: from %+v to %+v, subject %q", m.From, m.To, m.Subject)
	}
	got := magicURL.FindString(m.Text)
	if got != out.URL || !strings.Contains(m.HTML, `href="`+strings.ReplaceAll(out.URL, "&", "&amp;")+`"`) {
		t.Fatalf("the e-mail carries %q (HTML %q), the link is %q", got, m.HTML, out.URL)
	}
	if r := g.do(g.client(), http.MethodGet, got, browser); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("the mailed link: %d %s", r.StatusCode, r.Body)
	}
}

func TestSend_MailServerDownDoesNotHoldTheRequest(t *testing.T) {
	addrs := freeAddrs(t, 1) // nothing listens there
	host, port, _ := strings.Cut(addrs[0], ":")
	g := newGateway(t, fmt.Sprintf("store memory\n\t\tmailer smtp {\n\t\t\thost %s\n\t\t\tport %s\n\t\t\tfrom portal@acme.example\n\t\t\ttls none\n\t\t}", host, port))
	// The answer comes at once; the queue tries behind it.
	out := g.mint(MintRequest{App: "courses", User: identity.User{ID: "c_down", Email: "ada@example.com"}, Send: "email"})
	if out.Delivery != "queued" || out.URL == "" {
		t.Fatalf("%+v", out)
	}
}

func TestSend_RefusedWithoutAMailerOrAnAddress(t *testing.T) {
	g := newGateway(t, "store memory")
	r := g.api(http.MethodPost, "links", `{"app":"courses","user":{"id":"c_x","email":"ada@example.com"},"send":"email"}`)
	if r.StatusCode != http.StatusBadRequest || !strings.Contains(r.Body, `"no_mailer"`) {
		t.Fatalf("send without a mailer: %d %s", r.StatusCode, r.Body)
	}
	if err := loadCaddyfile(strings.Replace(g.caddyfile(), "store memory", "store memory\n\t\tmailer outbox", 1)); err != nil {
		t.Fatal(err)
	}
	for body, want := range map[string]string{
		`{"app":"courses","user":{"id":"c_x"},"send":"email"}`:                                               "needs the user's e-mail address",
		`{"app":"courses","user":{"id":"c_x","email":"ada@example.com\r\nBcc: e@x.example"},"send":"email"}`: "control character",
		`{"app":"courses","user":{"id":"c_x","email":"ada@example.com"},"send":"sms"}`:                       `send is \"email\" or absent`,
	} {
		if r := g.api(http.MethodPost, "links", body); r.StatusCode != http.StatusBadRequest || !strings.Contains(r.Body, want) {
			t.Errorf("%s: %d %s", body, r.StatusCode, r.Body)
		}
	}
}

func TestSignIn_CodeFromARealMailServerSignsIn(t *testing.T) {
	srv := mailtest.Start(t, mailtest.Options{})
	g := newGateway(t, "store memory\n\t\t"+smtpTo(srv))
	g.apiCall(http.MethodPost, "contacts", `{"id":"c_code","email":"grace@example.com","name":"Grace Hopper"}`, http.StatusOK)
	c := g.client()
	form := g.do(c, http.MethodGet, "http://"+g.portal+"/_portalgate/signin?app=courses&next=%2Fnotes", browser)
	post := func(path string, v url.Values) resp {
		return g.send(c, http.MethodPost, "http://"+g.portal+path, strings.NewReader(v.Encode()), browser,
			"Content-Type: application/x-www-form-urlencoded", "Origin: http://"+g.portal)
	}
	page := post("/_portalgate/signin", url.Values{"csrf": {web.CSRF(t, form.Body)}, "email": {"grace@example.com"},
		"app": {"courses"}, "next": {"/notes"}})
	if page.StatusCode != http.StatusOK {
		t.Fatalf("asking: %d %s", page.StatusCode, page.Body)
	}
	m := srv.WaitFor("grace@example.com", 1)[0]
	code := regexp.MustCompile(`(?m)^\s+(\d{6})\s*$`).FindStringSubmatch(m.Text)
	if code == nil || m.From.Name != "Acme Portal" || !strings.Contains(m.Subject, "Acme Portal") {
		t.Fatalf("the sign-in e-mail: from %+v, subject %q, text %q", m.From, m.Subject, m.Text)
	}
	r := post("/_portalgate/signin/code", url.Values{"csrf": {web.CSRF(t, page.Body)}, "code": {code[1]}})
	for range 5 {
		if r.StatusCode != http.StatusSeeOther {
			break
		}
		r = g.do(c, http.MethodGet, r.Header.Get("Location"), browser)
	}
	if got := web.Echoed(t, r).Get("X-Portal-User-Id"); got != "c_code" || r.Request.URL.Path != "/notes" {
		t.Fatalf("landed on %s as %q", r.Request.URL, got)
	}
}

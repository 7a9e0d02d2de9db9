package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/portalgate/portalgate/caddymodule/internal/mail"
	"github.com/portalgate/portalgate/caddymodule/internal/store"
	"github.com/portalgate/portalgate/caddymodule/internal/testkit"
	"github.com/portalgate/portalgate/caddymodule/internal/testkit/web"
)

// newSignInGateway is a gateway that sends sign-in e-mails to its outbox,
// with the contact Ada (ada@example.com) in its directory.
func newSignInGateway(t testing.TB, opts ...option) *testGateway {
	t.Helper()
	g := newTestGateway(t, append([]option{withOutbox()}, opts...)...)
	ada := store.Contact{ID: "c_ada", Email: "ada@example.com", Name: "Ada Lovelace", Location: "loc_a"}
	if err := g.store.PutContacts(context.Background(), []store.Contact{ada}); err != nil {
		t.Fatal(err)
	}
	return g
}

// askSignIn opens the sign-in form in browser c (for app and next, when
// given) and asks for address; it returns the answer, the code page.
func (g *testGateway) askSignIn(c *http.Client, address, app, next string) resp {
	g.t.Helper()
	q := ""
	if app != "" {
		q = "?" + url.Values{"app": {app}, "next": {next}}.Encode()
	}
	form := g.do(c, http.MethodGet, "http://"+g.portal+signInPath+q, browser)
	if form.StatusCode != http.StatusOK {
		g.t.Fatalf("the sign-in form: %d %s", form.StatusCode, form.Body)
	}
	v := url.Values{"csrf": {web.CSRF(g.t, form.Body)}, "email": {address}}
	if app != "" {
		v.Set("app", app)
		v.Set("next", next)
	}
	return g.postForm(c, "http://"+g.portal+signInPath, v)
}

// postForm posts a form from the portal's own page.
func (g *testGateway) postForm(c *http.Client, to string, v url.Values) resp {
	g.t.Helper()
	return g.send(c, http.MethodPost, to, strings.NewReader(v.Encode()), browser,
		"Content-Type: application/x-www-form-urlencoded", "Origin: http://"+g.portal)
}

// typeCode posts code from the code page page in browser c.
func (g *testGateway) typeCode(c *http.Client, page resp, code string) resp {
	g.t.Helper()
	return g.postForm(c, "http://"+g.portal+signInCodePath, url.Values{"csrf": {web.CSRF(g.t, page.Body)}, "code": {code}})
}

// mails waits until address has been sent n sign-in e-mails and returns
// them, newest first.
func (g *testGateway) mails(address string, n int) []mail.Kept {
	g.t.Helper()
	var got []mail.Kept
	testkit.Eventually(g.t, 10*time.Second, "sign-in e-mails for "+address, func() bool {
		got = got[:0]
		for _, m := range g.outbox.Messages() {
			if m.To.Email == address && m.Kind == "signin" {
				got = append(got, m)
			}
		}
		return len(got) >= n
	})
	return got
}

var (
	codeIn     = regexp.MustCompile(`(?m)^\s+(\d{6})$`)
	signInLink = regexp.MustCompile(`http://\S+/_portalgate/magic\?token=\S+`)
)

func codeOf(t *testing.T, m mail.Kept) string {
	t.Helper()
	c := codeIn.FindStringSubmatch(m.Text)
	if c == nil {
		t.Fatalf("no code in %q", m.Text)
	}
	return c[1]
}

func linkOf(t *testing.T, m mail.Kept) string {
	t.Helper()
	l := signInLink.FindString(m.Text)
	if l == "" {
		t.Fatalf("no link in %q", m.Text)
	}
	return l
}

// follow follows redirects from r in c until an answer that is not one.
func (g *testGateway) follow(c *http.Client, r resp) resp {
	g.t.Helper()
	for range 10 {
		if r.StatusCode != http.StatusSeeOther && r.StatusCode != http.StatusFound {
			return r
		}
		r = g.do(c, http.MethodGet, r.Header.Get("Location"), browser)
	}
	g.t.Fatal("too many redirects")
	return r
}

func TestSignIn_CodeSignsInTheBrowserThatAskedAndGoesWhereItWasGoing(t *testing.T) {
	t.Parallel()
	g := newSignInGateway(t)
	c := g.client()
	page := g.askSignIn(c, "ada@example.com", "courses", "/lessons/3")
	if page.StatusCode != http.StatusOK || !strings.Contains(page.Body, `name="code"`) {
		t.Fatalf("after asking: %d %s", page.StatusCode, page.Body)
	}
	m := g.mails("ada@example.com", 1)[0]
	if m.To.Name != "Ada Lovelace" || !strings.Contains(m.HTML, codeOf(t, m)) {
		t.Fatalf("the e-mail: %+v", m)
	}
	r := g.typeCode(c, page, codeOf(t, m))
	if r.StatusCode != http.StatusSeeOther {
		t.Fatalf("the right code: %d %s", r.StatusCode, r.Body)
	}
	landed := g.follow(c, r)
	if got := web.Echoed(t, landed).Get("X-Portal-User-Id"); got != "c_ada" {
		t.Fatalf("signed in to courses as %q", got)
	}
	if p := landed.Request.URL.Path; p != "/lessons/3" {
		t.Fatalf("landed on %s, want /lessons/3", p)
	}
}

func TestSignIn_LinkOfTheMailSignsInToo(t *testing.T) {
	t.Parallel()
	g := newSignInGateway(t)
	g.askSignIn(g.client(), "ada@example.com", "", "")
	l := linkOf(t, g.mails("ada@example.com", 1)[0])
	// Opened in a mail program: another browser than the one that asked.
	other := g.client()
	landed := g.follow(other, g.do(other, http.MethodGet, l, browser))
	if landed.StatusCode != http.StatusOK || !strings.Contains(landed.Body, "Ada Lovelace") {
		t.Fatalf("the mailed link: %d %s", landed.StatusCode, landed.Body)
	}
}

// TestSignIn_KnownAndUnknownAddressesGetTheSameAnswer: whether an address
// is a contact shows in nothing but the mailbox.
func TestSignIn_KnownAndUnknownAddressesGetTheSameAnswer(t *testing.T) {
	t.Parallel()
	g := newSignInGateway(t)
	known := g.askSignIn(g.client(), "ada@example.com", "courses", "/")
	unknown := g.askSignIn(g.client(), "nobody@example.com", "courses", "/")
	csrf := regexp.MustCompile(`name="csrf" value="[^"]+"`)
	a, b := csrf.ReplaceAllString(known.Body, ""), csrf.ReplaceAllString(unknown.Body, "")
	if known.StatusCode != unknown.StatusCode || a != b {
		t.Fatalf("known %d, unknown %d; bodies differ:\n%s\n---\n%s", known.StatusCode, unknown.StatusCode, a, b)
	}
	for _, h := range []string{"Content-Type", "Cache-Control", "Content-Security-Policy"} {
		if known.Header.Get(h) != unknown.Header.Get(h) {
			t.Fatalf("%s differs: %q, %q", h, known.Header.Get(h), unknown.Header.Get(h))
		}
	}
	g.mails("ada@example.com", 1)
	g.gw.closeSignIns(context.Background()) // every sign-in asked for has been worked on
	for _, m := range g.outbox.Messages() {
		if m.To.Email == "nobody@example.com" {
			t.Fatal("an unknown address was sent an e-mail")
		}
	}
}

func TestSignIn_CodeBruteForceEndsAfterFiveTries(t *testing.T) {
	t.Parallel()
	g := newSignInGateway(t, withRateLimit(0))
	c := g.client()
	page := g.askSignIn(c, "ada@example.com", "", "")
	right := codeOf(t, g.mails("ada@example.com", 1)[0])
	wrong := "000000"
	if right == wrong {
		wrong = "111111"
	}
	for try := 1; try <= 4; try++ {
		r := g.typeCode(c, page, wrong)
		if r.StatusCode != http.StatusBadRequest || !strings.Contains(r.Body, "not right") {
			t.Fatalf("wrong code %d: %d %s", try, r.StatusCode, r.Body)
		}
		page = r
	}
	if r := g.typeCode(c, page, wrong); r.StatusCode != http.StatusGone {
		t.Fatalf("the fifth wrong code: %d %s", r.StatusCode, r.Body)
	}
	if r := g.typeCode(c, page, right); r.StatusCode != http.StatusGone {
		t.Fatalf("the right code after five wrong ones: %d %s", r.StatusCode, r.Body)
	}
}

func TestSignIn_CodeFromAnotherBrowserIsRefused(t *testing.T) {
	t.Parallel()
	g := newSignInGateway(t)
	g.askSignIn(g.client(), "ada@example.com", "", "")
	code := codeOf(t, g.mails("ada@example.com", 1)[0])
	// The attacker has a page of their own, with their own nonce.
	attacker := g.client()
	form := g.do(attacker, http.MethodGet, "http://"+g.portal+signInPath, browser)
	r := g.postForm(attacker, "http://"+g.portal+signInCodePath, url.Values{"csrf": {g.gw.csrfToken("signin-code", nonceOf(t, attacker, g.portal))}, "code": {code}})
	if r.StatusCode != http.StatusGone {
		t.Fatalf("a code typed in another browser: %d %s (form %d)", r.StatusCode, r.Body, form.StatusCode)
	}
}

// nonceOf is the sign-in nonce browser c holds for the portal at host.
func nonceOf(t *testing.T, c *http.Client, host string) string {
	t.Helper()
	u, _ := url.Parse("http://" + host + "/")
	for _, k := range c.Jar.Cookies(u) {
		if strings.HasSuffix(k.Name, "-signin") {
			return k.Value
		}
	}
	t.Fatal("no sign-in nonce")
	return ""
}

func TestSignIn_NewRequestVoidsTheEarlierLinkAndCode(t *testing.T) {
	t.Parallel()
	g := newSignInGateway(t)
	c := g.client()
	first := g.askSignIn(c, "ada@example.com", "", "")
	old := g.mails("ada@example.com", 1)[0]
	page := g.askSignIn(c, "ada@example.com", "", "")
	g.mails("ada@example.com", 2)
	other := g.client()
	if r := g.do(other, http.MethodGet, linkOf(t, old), browser); r.StatusCode != http.StatusGone {
		t.Fatalf("the earlier e-mail's link: %d %s", r.StatusCode, r.Body)
	}
	if r := g.typeCode(c, page, codeOf(t, old)); r.StatusCode == http.StatusSeeOther {
		t.Fatalf("the earlier e-mail's code signed in (page %d)", first.StatusCode)
	}
}

func TestSignIn_LinkAfterItsCodeWasUsedIsRefused(t *testing.T) {
	t.Parallel()
	g := newSignInGateway(t)
	c := g.client()
	page := g.askSignIn(c, "ada@example.com", "", "")
	m := g.mails("ada@example.com", 1)[0]
	if r := g.typeCode(c, page, codeOf(t, m)); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("the code: %d %s", r.StatusCode, r.Body)
	}
	if r := g.do(g.client(), http.MethodGet, linkOf(t, m), browser); r.StatusCode != http.StatusGone {
		t.Fatalf("the link after its code was used: %d %s", r.StatusCode, r.Body)
	}
}

func TestSignIn_CodeAfterItsLinkWasUsedIsRefused(t *testing.T) {
	t.Parallel()
	g := newSignInGateway(t)
	c := g.client()
	page := g.askSignIn(c, "ada@example.com", "", "")
	m := g.mails("ada@example.com", 1)[0]
	other := g.client()
	if r := g.do(other, http.MethodGet, linkOf(t, m), browser); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("the link: %d %s", r.StatusCode, r.Body)
	}
	if r := g.typeCode(c, page, codeOf(t, m)); r.StatusCode != http.StatusGone {
		t.Fatalf("the code after its link was used: %d %s", r.StatusCode, r.Body)
	}
}

func TestSignIn_PerAddressLimitIsInvisible(t *testing.T) {
	t.Parallel()
	g := newSignInGateway(t)
	var first string
	for i := range signInsPerAddress + 2 {
		// Each from a client of its own: the per-client limit is another's.
		r := g.askSignIn(g.client(), "ada@example.com", "", "")
		body := regexp.MustCompile(`name="csrf" value="[^"]+"`).ReplaceAllString(r.Body, "")
		if i == 0 {
			first = body
		}
		if r.StatusCode != http.StatusOK || body != first {
			t.Fatalf("request %d: %d, body differs", i+1, r.StatusCode)
		}
	}
	g.gw.closeSignIns(context.Background())
	if n := len(g.mails("ada@example.com", signInsPerAddress)); n != signInsPerAddress {
		t.Fatalf("%d e-mails sent, want %d", n, signInsPerAddress)
	}
}

func TestSignIn_MailGoesToTheContactsOwnAddress(t *testing.T) {
	t.Parallel()
	g := newSignInGateway(t)
	kate := store.Contact{ID: "c_kate", Email: "kate@example.com", Name: "Kate"}
	if err := g.store.PutContacts(context.Background(), []store.Contact{kate}); err != nil {
		t.Fatal(err)
	}
	// A Kelvin sign folds to k in Unicode, not in the address index.
	g.askSignIn(g.client(), "\u212Aate@example.com", "", "")
	g.askSignIn(g.client(), "KATE@example.com", "", "")
	g.gw.closeSignIns(context.Background())
	for _, m := range g.outbox.Messages() {
		if m.To.Email != "kate@example.com" {
			t.Fatalf("an e-mail went to %q", m.To.Email)
		}
	}
	g.mails("kate@example.com", 1)
}

func TestSignIn_HeaderInjectionInTheAddressIsRefused(t *testing.T) {
	t.Parallel()
	g := newSignInGateway(t)
	for _, bad := range []string{"ada@example.com\r\nBcc: eve@example.com", "Ada <ada@example.com>", "ada@example.com,eve@example.com"} {
		r := g.askSignIn(g.client(), bad, "", "")
		if r.StatusCode != http.StatusBadRequest || !strings.Contains(r.Body, "not an e-mail address") {
			t.Fatalf("%q: %d %s", bad, r.StatusCode, r.Body)
		}
	}
	g.gw.closeSignIns(context.Background())
	if n := len(g.outbox.Messages()); n != 0 {
		t.Fatalf("%d e-mails sent", n)
	}
}

func TestSignIn_FormPostedFromAnotherSiteIsRefused(t *testing.T) {
	t.Parallel()
	g := newSignInGateway(t)
	c := g.client()
	form := g.do(c, http.MethodGet, "http://"+g.portal+signInPath, browser)
	v := url.Values{"csrf": {web.CSRF(t, form.Body)}, "email": {"ada@example.com"}}
	r := g.send(c, http.MethodPost, "http://"+g.portal+signInPath, strings.NewReader(v.Encode()), browser,
		"Content-Type: application/x-www-form-urlencoded", "Origin: http://evil.example")
	if r.StatusCode != http.StatusForbidden {
		t.Fatalf("a cross-site post: %d", r.StatusCode)
	}
	v.Set("csrf", "forged")
	if r := g.postForm(c, "http://"+g.portal+signInPath, v); r.StatusCode != http.StatusForbidden {
		t.Fatalf("a forged token: %d", r.StatusCode)
	}
}

func TestSignIn_JSONClientGetsTheSameAcceptedAnswer(t *testing.T) {
	t.Parallel()
	g := newSignInGateway(t)
	for _, address := range []string{"ada@example.com", "nobody@example.com"} {
		r := g.send(http.DefaultClient, http.MethodPost, "http://"+g.portal+signInPath, strings.NewReader(`{"email":"`+address+`"}`),
			"Content-Type: application/json", "Accept: application/json")
		if r.StatusCode != http.StatusAccepted || strings.TrimSpace(r.Body) != `{"status":"sent"}` {
			t.Fatalf("%s: %d %s", address, r.StatusCode, r.Body)
		}
	}
	m := g.mails("ada@example.com", 1)[0]
	if codeIn.MatchString(m.Text) || linkOf(t, m) == "" {
		t.Fatalf("an API client's e-mail has a code, or no link: %q", m.Text)
	}
}

func TestSignIn_SignedOutPortalShowsTheFormKeepingWhereTheVisitorWasGoing(t *testing.T) {
	t.Parallel()
	g := newSignInGateway(t)
	r := g.do(g.client(), http.MethodGet, "http://"+g.portal+"/?app=courses&next=%2Flessons%2F3", browser)
	if r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != "http://"+g.portal+signInPath+"?app=courses&next=%2Flessons%2F3" {
		t.Fatalf("signed out on the portal: %d %s", r.StatusCode, r.Header.Get("Location"))
	}
}

func TestSignIn_OffWithoutAMailer(t *testing.T) {
	t.Parallel()
	g := newTestGateway(t)
	if r := g.do(g.client(), http.MethodGet, "http://"+g.portal+signInPath, browser); r.StatusCode != http.StatusNotFound {
		t.Fatalf("the sign-in form without a mailer: %d", r.StatusCode)
	}
}

func TestDashboard_OutboxShowsAgencyUsersWhatWasSent(t *testing.T) {
	t.Parallel()
	g := newSignInGateway(t, withStaff())
	g.askSignIn(g.client(), "ada@example.com", "", "")
	code := codeOf(t, g.mails("ada@example.com", 1)[0])
	agency := g.staff("agency")
	if !strings.Contains(agency.get(DashboardPath).Body, `href="/dashboard/outbox"`) {
		t.Fatal("the dashboard does not lead to the outbox")
	}
	page := agency.get(DashboardPath + "outbox")
	if page.StatusCode != http.StatusOK || !strings.Contains(page.Body, code) || !strings.Contains(page.Body, "Ada Lovelace") {
		t.Fatalf("the outbox: %d %s", page.StatusCode, page.Body)
	}
	sub := g.staff("sub")
	if strings.Contains(sub.get(DashboardPath).Body, `href="/dashboard/outbox"`) {
		t.Fatal("a sub-account user is shown the outbox")
	}
	if r := sub.get(DashboardPath + "outbox"); r.StatusCode != http.StatusForbidden || strings.Contains(r.Body, code) {
		t.Fatalf("a sub-account user reading every location's mail: %d", r.StatusCode)
	}
}

func TestDashboard_NoOutboxWithoutTheOutboxMailer(t *testing.T) {
	t.Parallel()
	g := newTestGateway(t, withStaff())
	if r := g.staff("agency").get(DashboardPath + "outbox"); r.StatusCode != http.StatusNotFound {
		t.Fatalf("the outbox without an outbox mailer: %d", r.StatusCode)
	}
}

// FuzzSignInForm posts arbitrary sign-in forms and codes: every answer is
// the code page, a form error or a refusal (never a server error), nothing
// typed reaches a page as markup, and a guessed code never signs in.
func FuzzSignInForm(f *testing.F) {
	for _, seed := range [][4]string{
		{"ada@example.com", "courses", "/lessons/3", "123456"},
		{"ada@example.com\r\nBcc: eve@example.com", "", "", ""},
		{"<script>alert(1)</script>@example.com", "courses", "//evil.example", "<b>"},
		{"\u212Aate@example.com", "portal", "/?token=x", "１２３４５６"},
		{"", "../..", "\x00", "000000000000000"},
	} {
		f.Add(seed[0], seed[1], seed[2], seed[3])
	}
	g := newSignInGateway(f, withRateLimit(0))
	f.Fuzz(func(t *testing.T, email, app, next, code string) {
		g.t = t
		c := g.client()
		form := g.do(c, http.MethodGet, "http://"+g.portal+signInPath, browser)
		page := g.postForm(c, "http://"+g.portal+signInPath, url.Values{"csrf": {web.CSRF(t, form.Body)},
			"email": {email}, "app": {app}, "next": {next}})
		switch page.StatusCode {
		case http.StatusOK, http.StatusBadRequest, http.StatusTooManyRequests:
		default:
			t.Fatalf("asking with %q: %d %s", email, page.StatusCode, page.Body)
		}
		// The sign-in pages run no script: one in a page came from what
		// was typed.
		if lower := strings.ToLower(page.Body); strings.Contains(lower, "<script") || strings.Contains(lower, "javascript:") {
			t.Fatalf("what was typed (%q, %q, %q) reached the page as markup:\n%s", email, app, next, page.Body)
		}
		if page.StatusCode != http.StatusOK {
			return
		}
		r := g.typeCode(c, page, code)
		switch r.StatusCode {
		case http.StatusBadRequest, http.StatusGone, http.StatusTooManyRequests:
		case http.StatusSeeOther:
			// One guess in a million is right: then an e-mail carries it.
			typed := strings.Join(strings.Fields(code), "")
			testkit.Eventually(t, 10*time.Second, "an e-mail with the code "+typed+" that signed in", func() bool {
				for _, m := range g.outbox.Messages() {
					if c := codeIn.FindStringSubmatch(m.Text); c != nil && c[1] == typed {
						return true
					}
				}
				return false
			})
		default:
			t.Fatalf("the code %q: %d %s", code, r.StatusCode, r.Body)
		}
	})
}

func TestAPI_InviteMailsALinkIntoThePortalThatLivesAWeek(t *testing.T) {
	t.Parallel()
	g := newSignInGateway(t)
	var out MintResponse
	if err := json.Unmarshal([]byte(g.apiCall(http.MethodPost, "contacts/c_ada/invite", "", http.StatusCreated)), &out); err != nil {
		t.Fatal(err)
	}
	if out.Delivery != "queued" || !out.ExpiresAt.Equal(g.clock.Now().Truncate(time.Second).Add(DefaultInviteTTL)) {
		t.Fatalf("the invitation: %+v", out)
	}
	var m mail.Kept
	testkit.Eventually(t, 10*time.Second, "the invitation e-mail", func() bool {
		for _, k := range g.outbox.Messages() {
			if k.Kind == "invite" {
				m = k
				return true
			}
		}
		return false
	})
	if m.To.Email != "ada@example.com" || linkOf(t, m) != out.URL {
		t.Fatalf("the invitation e-mail: %+v", m)
	}
	// Six days later, it still signs in, into the portal.
	g.clock.Advance(6 * 24 * time.Hour)
	c := g.client()
	if r := g.follow(c, g.do(c, http.MethodGet, out.URL, browser)); r.StatusCode != http.StatusOK || !strings.Contains(r.Body, "Ada Lovelace") {
		t.Fatalf("the invitation's link: %d %s", r.StatusCode, r.Body)
	}
}

func TestAPI_InviteRefusals(t *testing.T) {
	t.Parallel()
	g := newSignInGateway(t)
	if err := g.store.PutContacts(context.Background(), []store.Contact{{ID: "c_nomail", Name: "No Mail"}}); err != nil {
		t.Fatal(err)
	}
	for route, want := range map[string]int{
		"contacts/c_nobody/invite": http.StatusNotFound,
		"contacts/c_nomail/invite": http.StatusBadRequest,
	} {
		if r := g.api(http.MethodPost, route, ""); r.StatusCode != want {
			t.Errorf("%s: %d %s, want %d", route, r.StatusCode, r.Body, want)
		}
	}
	plain := newTestGateway(t)
	if err := plain.store.PutContacts(context.Background(), []store.Contact{{ID: "c_ada", Email: "ada@example.com"}}); err != nil {
		t.Fatal(err)
	}
	if r := plain.api(http.MethodPost, "contacts/c_ada/invite", ""); r.StatusCode != http.StatusBadRequest || !strings.Contains(r.Body, "no_mailer") {
		t.Errorf("an invitation without a mailer: %d %s", r.StatusCode, r.Body)
	}
}

// refusingMailer is a mail server that refuses every message for good.
type refusingMailer struct{}

func (refusingMailer) Send(context.Context, mail.Message) error {
	return mail.Permanent(errors.New("550 mailbox unavailable"))
}

func TestDashboard_RecentLinksSayWhatBecameOfTheirEmail(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct {
		opt  option
		want string
	}{
		"delivered": {withOutbox(), "e-mail delivered to the mail server"},
		"refused":   {withMailer(refusingMailer{}), "e-mail failed"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			g := newTestGateway(t, tc.opt, withStaff())
			g.apiCall(http.MethodPost, "links", `{"app":"courses","user":{"id":"c_d","email":"d@example.com"},"send":"email"}`, http.StatusCreated)
			g.apiCall(http.MethodPost, "links", `{"app":"courses","user":{"id":"c_d","email":"d@example.com"}}`, http.StatusCreated)
			agency := g.staff("agency")
			testkit.Eventually(t, 10*time.Second, "the dashboard to say "+tc.want, func() bool {
				return strings.Contains(agency.get(DashboardPath).Body, tc.want)
			})
			if n := strings.Count(agency.get(DashboardPath).Body, "e-mail "); n != 1 {
				t.Fatalf("%d links say what became of an e-mail, want the mailed one only", n)
			}
		})
	}
}

// mailOf waits for the outbox to hold an e-mail of kind to address.
func (g *testGateway) mailOf(kind, address string) mail.Kept {
	g.t.Helper()
	var got mail.Kept
	testkit.Eventually(g.t, 10*time.Second, kind+" e-mail for "+address, func() bool {
		for _, m := range g.outbox.Messages() {
			if m.Kind == kind && m.To.Email == address {
				got = m
				return true
			}
		}
		return false
	})
	return got
}

func TestDashboard_SendInviteAndLoginEmailMailTheContact(t *testing.T) {
	t.Parallel()
	g := newSignInGateway(t, withStaff())
	agency := g.staff("agency")
	if !strings.Contains(agency.get(DashboardPath).Body, `id="action-invite"`) {
		t.Fatal("Actions has no Invite")
	}
	// Generate and send, for a new contact.
	shown := agency.generate(url.Values{"who": {"new"}, "new_id": {"c_lin"}, "new_email": {"lin@example.com"},
		"new_name": {"Lin"}, "app": {"courses"}, "ttl": {"1h"}, "uses": {"1"}, "action": {"send"}})
	if m := g.mailOf("link", "lin@example.com"); linkOf(t, m) != shown {
		t.Fatalf("the mailed link %q is not the one shown %q", linkOf(t, m), shown)
	}
	// Invite and Login e-mail, for a contact of the directory.
	for action, kind := range map[string]string{"invite": "invite", "login": "signin"} {
		r := agency.post("/dashboard/generate", url.Values{"who": {"contact"}, "contact": {"c_ada"}, "action": {action}})
		if r.StatusCode != http.StatusOK || !strings.Contains(r.Body, "is on its way to ada@example.com") {
			t.Fatalf("%s: %d %s", action, r.StatusCode, r.Body)
		}
		m := g.mailOf(kind, "ada@example.com")
		if codeIn.MatchString(m.Text) {
			t.Fatalf("a %s e-mail staff sent carries a code nobody's browser can use", action)
		}
		c := g.client()
		if landed := g.follow(c, g.do(c, http.MethodGet, linkOf(t, m), browser)); !strings.Contains(landed.Body, "Ada Lovelace") {
			t.Fatalf("the %s link: %d %s", action, landed.StatusCode, landed.Body)
		}
	}
}

func TestDashboard_SubaccountUserCannotMailAnotherLocationsContact(t *testing.T) {
	t.Parallel()
	g := newSignInGateway(t, withStaff())
	if err := g.store.PutContacts(context.Background(), []store.Contact{{ID: "c_b", Email: "b@example.com", Location: "loc_b"}}); err != nil {
		t.Fatal(err)
	}
	sub := g.staff("sub")
	for _, action := range []string{"invite", "login"} {
		r := sub.post("/dashboard/generate", url.Values{"who": {"contact"}, "contact": {"c_b"}, "action": {action}})
		if r.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(r.Body, "no such contact among yours") {
			t.Fatalf("%s of another location's contact: %d", action, r.StatusCode)
		}
	}
	g.gw.Close(context.Background())
	for _, m := range g.outbox.Messages() {
		if m.To.Email == "b@example.com" {
			t.Fatal("another location's contact was mailed")
		}
	}
}

func TestAPI_RevokedInvitationStaysRevokedForItsWholeLife(t *testing.T) {
	t.Parallel()
	g := newSignInGateway(t)
	var inv MintResponse
	if err := json.Unmarshal([]byte(g.apiCall(http.MethodPost, "contacts/c_ada/invite", "", http.StatusCreated)), &inv); err != nil {
		t.Fatal(err)
	}
	g.apiCall(http.MethodDelete, "links/"+inv.ID, "", http.StatusOK)
	// Past link_max_ttl (24h here), within the invitation's week.
	g.clock.Advance(3 * 24 * time.Hour)
	if r := g.do(g.client(), http.MethodGet, inv.URL, browser); r.StatusCode != http.StatusGone {
		t.Fatalf("a revoked invitation three days on: %d %s", r.StatusCode, r.Body)
	}
	// Revoking the user holds as long, for an invitation sent before.
	if err := json.Unmarshal([]byte(g.apiCall(http.MethodPost, "contacts/c_ada/invite", "", http.StatusCreated)), &inv); err != nil {
		t.Fatal(err)
	}
	g.clock.Advance(time.Second)
	g.apiCall(http.MethodPost, "users/c_ada/revoke", "", http.StatusOK)
	g.clock.Advance(3 * 24 * time.Hour)
	if r := g.do(g.client(), http.MethodGet, inv.URL, browser); r.StatusCode != http.StatusGone {
		t.Fatalf("an invitation of a user revoked three days ago: %d %s", r.StatusCode, r.Body)
	}
}

// signInsCounted waits until the gateway has counted n sign-ins of result.
func (g *testGateway) signInsCounted(result string, n float64) {
	g.t.Helper()
	testkit.Eventually(g.t, 10*time.Second, "sign-ins counted "+result, func() bool {
		return testutil.ToFloat64(g.gw.metrics.SignIns.WithLabelValues(result)) >= n
	})
}

// TestSignIn_CodeStepTellsKnownFromUnknownNothing: an address that gets no
// e-mail still has a sign-in behind the code page (a decoy), so a wrong
// code is answered alike, to the fifth.
func TestSignIn_CodeStepTellsKnownFromUnknownNothing(t *testing.T) {
	t.Parallel()
	g := newSignInGateway(t, withRateLimit(0))
	known, unknown := g.client(), g.client()
	kp := g.askSignIn(known, "ada@example.com", "", "")
	up := g.askSignIn(unknown, "nobody@example.com", "", "")
	right := codeOf(t, g.mails("ada@example.com", 1)[0])
	g.signInsCounted("unknown", 1)
	wrong := "000000"
	if right == wrong {
		wrong = "111111"
	}
	csrf := regexp.MustCompile(`name="csrf" value="[^"]+"`)
	for try := 1; try <= 5; try++ {
		kr, ur := g.typeCode(known, kp, wrong), g.typeCode(unknown, up, wrong)
		if kr.StatusCode != ur.StatusCode || csrf.ReplaceAllString(kr.Body, "") != csrf.ReplaceAllString(ur.Body, "") {
			t.Fatalf("wrong code %d: known %d, unknown %d", try, kr.StatusCode, ur.StatusCode)
		}
		if kr.StatusCode == http.StatusBadRequest {
			kp, up = kr, ur
		}
	}
}

func TestSignIn_TenWrongCodesEndAnAddresssCodesForADay(t *testing.T) {
	t.Parallel()
	g := newSignInGateway(t, withRateLimit(0))
	c := g.client()
	guess := func(page resp, n int) resp {
		t.Helper()
		for range n {
			if r := g.typeCode(c, page, "000000"); r.StatusCode == http.StatusBadRequest {
				page = r
			}
		}
		return page
	}
	// Two e-mails, five wrong codes each: the address's ten for the day.
	// The sign-in is made behind the answer: each e-mail is waited for
	// first, or a code typed before its sign-in exists counts for nothing.
	for i := 1; i <= 2; i++ {
		page := g.askSignIn(c, "ada@example.com", "", "")
		g.mails("ada@example.com", i)
		guess(page, 5)
	}
	page := g.askSignIn(c, "ada@example.com", "", "")
	right := codeOf(t, g.mails("ada@example.com", 3)[0])
	if r := g.typeCode(c, page, right); r.StatusCode != http.StatusGone {
		t.Fatalf("the right code after ten wrong ones for the address: %d %s", r.StatusCode, r.Body)
	}
	// The e-mail's link still works.
	g.clock.Advance(25 * time.Hour)
	page = g.askSignIn(c, "ada@example.com", "", "")
	right = codeOf(t, g.mails("ada@example.com", 4)[0])
	if r := g.typeCode(c, page, right); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("the right code a day later: %d %s", r.StatusCode, r.Body)
	}
}

func TestClientKey_IPv6HostCannotSpreadGuessesOverItsSlash64(t *testing.T) {
	t.Parallel()
	for ip, want := range map[string]string{
		"192.0.2.7":            "192.0.2.7",
		"2001:db8:1:2:aaaa::1": "2001:db8:1:2::/64",
		"2001:db8:1:2:ffff::9": "2001:db8:1:2::/64",
		"2001:db8:1:3::1":      "2001:db8:1:3::/64",
		"::ffff:192.0.2.7":     "::ffff:192.0.2.7",
		"not an address":       "not an address",
	} {
		if got := clientKey(ip); got != want {
			t.Errorf("clientKey(%q) = %q, want %q", ip, got, want)
		}
	}
}

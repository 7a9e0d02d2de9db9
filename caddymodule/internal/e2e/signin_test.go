package e2e

import (
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/portalgate/portalgate/caddymodule/internal/testkit/browsertest"
	"github.com/portalgate/portalgate/caddymodule/internal/testkit/mailtest"
)

// A contact whose session ended gets back in on their own: Courses sends
// the signed-out browser to the portal's sign-in form, a real mail server
// (Mailpit) receives the e-mail, and the code typed in the same browser
// lands in Courses signed in. The e-mail's link, opened afterwards in
// another browser, is refused: link and code are one sign-in.
func TestBrowser_ContactSignsInWithTheCodeOfARealEmail(t *testing.T) {
	srv := mailtest.Start(t, mailtest.Options{})
	startDemoWith(t, func(caddyfile string) string {
		smtp := fmt.Sprintf("mailer smtp {\n\t\t\thost %s\n\t\t\tport %d\n\t\t\tfrom \"Demo Portal <portal@demo.example>\"\n\t\t\ttls none\n\t\t}", srv.Host(), srv.Port())
		if !strings.Contains(caddyfile, "mailer outbox") {
			t.Fatal("the demo's Caddyfile has no mailer outbox line to replace")
		}
		return strings.Replace(caddyfile, "mailer outbox", smtp, 1)
	})
	req, _ := http.NewRequest(http.MethodPost, "http://localhost:2019/portalgate/contacts",
		strings.NewReader(`{"id":"c_grace","email":"grace@example.com","name":"Grace Hopper"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Origin", "http://localhost:2019")
	res, err := http.DefaultClient.Do(req)
	if err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("syncing the contact: %v %v", res, err)
	}
	res.Body.Close()

	b := browsertest.Start(t)
	shoot := shooter(t)
	grace := b.NewContext(t)
	browsertest.Run(grace, t,
		chromedp.Navigate("http://localhost:8081/lessons/7"),
		page("signin"),
	)
	shoot(grace, "signin.png")
	browsertest.Run(grace, t,
		chromedp.SendKeys(chromedp.CSS("#email"), "grace@example.com"),
		chromedp.Click(chromedp.CSS("button[type=submit]")),
		page("signin-code"),
	)
	m := srv.WaitFor("grace@example.com", 1)[0]
	code := regexp.MustCompile(`(?m)^\s+(\d{6})\s*$`).FindStringSubmatch(m.Text)
	link := regexp.MustCompile(`http://localhost:8080/_portalgate/magic\?token=\S+`).FindString(m.Text)
	if code == nil || link == "" || m.From.Name != "Demo Portal" {
		t.Fatalf("the sign-in e-mail from %+v:\n%s", m.From, m.Text)
	}
	shoot(grace, "signin-code.png")
	browsertest.Run(grace, t,
		chromedp.SendKeys(chromedp.CSS("#code"), code[1]),
		chromedp.Click(chromedp.CSS("button[type=submit]")),
		chromedp.WaitVisible(chromedp.CSS(`body[data-app="Courses"]`)),
	)
	if url := browsertest.Get(grace, t, chromedp.Location()); url != "http://localhost:8081/lessons/7" {
		t.Fatalf("the code lands on %s", url)
	}
	if body := browsertest.Get(grace, t, chromedp.Text(chromedp.CSS("body"))); !strings.Contains(body, "Grace Hopper") {
		t.Fatalf("Courses shows:\n%s", body)
	}

	// The same e-mail's link, in another browser (the phone's mail app).
	phone := b.NewContext(t)
	browsertest.Run(phone, t, chromedp.Navigate(link), page("notice"))
	if body := browsertest.Get(phone, t, chromedp.Text(chromedp.CSS("main"))); !strings.Contains(body, "already been used") {
		t.Fatalf("the link after its code was used:\n%s", body)
	}
}

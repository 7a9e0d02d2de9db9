package e2e

import (
	"context"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/portalgate/portalgate/caddymodule/internal/testkit/browsertest"
)

// screenshots copies the browser test's screenshots into docs/, where the
// README shows them: go test ./caddymodule/internal/e2e -run Browser -screenshots
var screenshots = flag.Bool("screenshots", false, "write the browser test's screenshots into docs/")

// shooter takes a page's screenshot under a name, and with -screenshots
// copies it into docs/ for the README.
func shooter(t *testing.T) func(ctx context.Context, name string) {
	shots := t.TempDir()
	return func(ctx context.Context, name string) {
		t.Helper()
		path := filepath.Join(shots, name)
		browsertest.Screenshot(ctx, t, path)
		if *screenshots {
			png, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(repoRoot, "docs", name), png, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// After every navigation or click the browser tests wait for a marker that
// only the next page has: a gateway page's data-page, a stand-in app's
// data-app. An element the previous page also had would let a slow machine
// read the old page.

// page waits for the gateway page id.
func page(id string) chromedp.Action[chromedp.Void] {
	return chromedp.WaitVisible(chromedp.CSS(`body[data-page="` + id + `"]`))
}

// app waits for the stand-in app name.
func app(name string) chromedp.Action[chromedp.Void] {
	return chromedp.WaitVisible(chromedp.CSS(`body[data-app="` + name + `"]`))
}

// The seed flow of the README, clicked through in a real Chromium against
// the demo exactly as `go run ./cmd/caddy run` serves it.
func TestBrowser_SeedFlowFromTheDashboardToSignedInApps(t *testing.T) {
	startDemo(t)
	b := browsertest.Start(t)
	shoot := shooter(t)
	text := func(ctx context.Context, sel string) string {
		t.Helper()
		return browsertest.Get(ctx, t, chromedp.Text(chromedp.CSS(sel)))
	}

	// The agency user signs in (basic_auth, credentials as a person types
	// them into the browser's prompt) and opens Actions → Generate Magic Link.
	staff := b.NewContext(t)
	browsertest.Run(staff, t,
		chromedp.Navigate("http://agency:agency-demo@localhost:8080/dashboard/"),
		page("dashboard"),
		chromedp.Click(chromedp.CSS("details.menu summary")),
		chromedp.Click(chromedp.CSS("#action-generate")),
		page("generate"),
		// No contacts yet: a new one, for Courses.
		chromedp.Click(chromedp.CSS("#who-new")),
		chromedp.SendKeys(chromedp.CSS("#new_name"), "Ada Lovelace"),
		chromedp.SendKeys(chromedp.CSS("#new_email"), "ada@example.com"),
		chromedp.SendKeys(chromedp.CSS("#new_location"), "loc_demo"),
		// The CRM's id, under Advanced (without it, one is made up).
		chromedp.Click(chromedp.CSS("details.advanced summary")),
		chromedp.SendKeys(chromedp.CSS("#new_id"), "c_ada"),
		chromedp.SetValue(chromedp.CSS("#app"), "courses"),
		chromedp.Click(chromedp.CSS("#generate-submit")),
		chromedp.WaitVisible(chromedp.CSS("#magic-link")),
		// Copy puts the link on the clipboard and says so.
		chromedp.Click(chromedp.CSS("button[data-copy]")),
	)
	link := browsertest.Get(staff, t, chromedp.Value(chromedp.CSS("#magic-link")))
	if !strings.HasPrefix(link, "http://localhost:8081/_portalgate/magic?token=") {
		t.Fatalf("generated link %q", link)
	}
	// The button says so once the clipboard write has resolved.
	browsertest.Get(staff, t, chromedp.Poll[bool](`document.querySelector("button[data-copy]").textContent === "Copied"`,
		chromedp.WithPollingMutation()))
	shoot(staff, "generate.png")

	// Whoever opens the link, in a browser of their own, is in Courses as Ada.
	ada := b.NewContext(t)
	browsertest.Run(ada, t, chromedp.Navigate(link), app("Courses"))
	if h1, body := text(ada, "h1"), text(ada, "body"); h1 != "Courses" || !strings.Contains(body, "Signed in as Ada Lovelace") || !strings.Contains(body, "c_ada") {
		t.Fatalf("the link opens %q:\n%s", h1, body)
	}

	// Settings → Custom Links: a magic item for Communities, for contacts.
	browsertest.Run(staff, t,
		chromedp.Navigate("http://localhost:8080/dashboard/"),
		page("dashboard"),
		chromedp.Click(chromedp.CSS("details.menu:nth-of-type(2) summary")),
		chromedp.Click(chromedp.CSS("#settings-links")),
		page("settings"),
		chromedp.SendKeys(chromedp.CSS("#title"), "My community"),
		chromedp.Click(chromedp.CSS("#kind-app")),
		chromedp.SetValue(chromedp.CSS("#menu-app"), "communities"),
		chromedp.Click(chromedp.CSS("#menu-save")),
		chromedp.WaitVisible(chromedp.CSS("tr[data-item]")),
	)

	// generateForAda generates a link for Ada, now a known contact, to app.
	generateForAda := func(app string) string {
		t.Helper()
		browsertest.Run(staff, t,
			chromedp.Navigate("http://localhost:8080/dashboard/generate?q=ada"),
			page("generate"),
			chromedp.Click(chromedp.CSS("#who-contact")),
			chromedp.SetValue(chromedp.CSS("#contact"), "c_ada"),
			chromedp.SetValue(chromedp.CSS("#app"), app),
			chromedp.Click(chromedp.CSS("#generate-submit")),
			chromedp.WaitVisible(chromedp.CSS("#magic-link")),
		)
		return browsertest.Get(staff, t, chromedp.Value(chromedp.CSS("#magic-link")))
	}
	portalLink := generateForAda("portal")

	// Ada's portal home lists her apps and the custom links for contacts;
	// the magic item opens Communities signed in.
	home := b.NewContext(t)
	browsertest.Run(home, t, chromedp.Navigate(portalLink), page("home"))
	menu := text(home, "nav[aria-label=Menu]")
	for _, want := range []string{"My community", "Affiliates in the portal"} {
		if !strings.Contains(menu, want) {
			t.Fatalf("the portal menu lacks %q:\n%s", want, menu)
		}
	}
	// Communities asks before a link is spent (redeem confirm), but not
	// for the link the portal mints for its own signed-in browser.
	browsertest.Run(home, t,
		chromedp.Click(`//a[normalize-space()="My community"]`),
		app("Communities"),
	)
	if h1, body := text(home, "h1"), text(home, "body"); h1 != "Communities" || !strings.Contains(body, "Signed in as Ada Lovelace") {
		t.Fatalf("the magic menu item opens %q:\n%s", h1, body)
	}
	// A Communities link sent to Ada: the page names her account, and
	// Continue signs her in.
	communityLink := generateForAda("communities")
	browsertest.Run(ada, t, chromedp.Navigate(communityLink), page("confirm"))
	if body := text(ada, "main"); !strings.Contains(body, "as Ada Lovelace <ada@example.com>") {
		t.Fatalf("the Continue page does not name the account:\n%s", body)
	}
	browsertest.Run(ada, t, chromedp.Click(chromedp.CSS("button[type=submit]")), app("Communities"))
	if body := text(ada, "body"); !strings.Contains(body, "Signed in as Ada Lovelace") {
		t.Fatalf("Continue opens:\n%s", body)
	}

	// Sign out of Courses: the portal says so, and Courses asks again.
	browsertest.Run(ada, t,
		chromedp.Navigate("http://localhost:8081/_portalgate/logout"),
		page("signout"),
		chromedp.Click(chromedp.CSS("button[type=submit]")),
		page("notice"),
	)
	if url := browsertest.Get(ada, t, chromedp.Location()); !strings.HasPrefix(url, "http://localhost:8080/_portalgate/logout?") {
		t.Fatalf("signing out ends on %s", url)
	}
	if body := text(ada, "main"); !strings.Contains(body, "You are signed out") {
		t.Fatalf("the sign-out ends on:\n%s", body)
	}

	// The iframe item shows Affiliates inside the portal page, signed in.
	browsertest.Run(home, t,
		chromedp.Navigate("http://localhost:8080/"),
		page("home"),
		chromedp.Click(`//a[normalize-space()="Affiliates in the portal"]`),
		chromedp.WaitVisible(chromedp.CSS("iframe")),
	)
	// The frame goes through launch and the magic link before the app.
	if body := browsertest.FrameText(home, t, "iframe", `body[data-app="Affiliates"]`); !strings.Contains(body, "X-Portal-User-Name") || !strings.Contains(body, "Ada Lovelace") {
		t.Fatalf("the framed app shows:\n%s", body)
	}
	shoot(home, "portal-home.png")

	// Staff "Open": Affiliates as the agency user, no further step.
	browsertest.Run(staff, t,
		chromedp.Navigate("http://localhost:8080/dashboard/"),
		page("dashboard"),
	)
	shoot(staff, "dashboard.png")
	browsertest.Run(staff, t,
		chromedp.Click(chromedp.CSS(`button[data-open="affiliates"]`)),
		app("Affiliates"),
	)
	if h1, body := text(staff, "h1"), text(staff, "body"); h1 != "Affiliates" || !strings.Contains(body, "agency_user") {
		t.Fatalf("Open leads to %q:\n%s", h1, body)
	}
}

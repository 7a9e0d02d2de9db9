package e2e

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"

	"github.com/portalgate/portalgate/caddymodule/internal/testkit/browsertest"
)

// pageCheck finds what makes a page hard to use, in the page itself:
// anything that scrolls it sideways, a form control without a label, an
// action off the screen's edge (one inside a closed menu counts once its
// menu opens), a focused control that does not show it has focus, and
// text with less contrast than WCAG AA asks. At a desktop's size the test
// also presses Tab through each page (unreachedByTab).
const pageCheck = `(() => {
	const out = [], w = window.innerWidth;
	if (document.documentElement.scrollWidth > w + 1) {
		out.push("the page scrolls sideways: " + document.documentElement.scrollWidth + "px wide in " + w);
	}
	for (const el of document.querySelectorAll("input,select,textarea")) {
		if (el.type === "hidden") continue;
		if (!(el.labels && el.labels.length) && !el.getAttribute("aria-label") && !el.getAttribute("aria-labelledby")) {
			out.push("no label: " + el.outerHTML.slice(0, 80));
		}
	}
	let focusChecked = false;
	for (const el of document.querySelectorAll("a[href],button,input,select,textarea,summary")) {
		if (el.type === "hidden" || el.closest(".sr")) continue;
		const closed = el.closest("details:not([open])");
		if (closed && el.tagName !== "SUMMARY") continue;
		const r = el.getBoundingClientRect();
		if (r.width === 0 && r.height === 0) continue;
		if (r.right > w + 1 || r.left < -1) {
			out.push("off the screen: " + (el.id || el.textContent.trim().slice(0, 40)) + " at " + Math.round(r.left) + "-" + Math.round(r.right) + "px");
		}
		if (!focusChecked && el.tagName !== "SUMMARY") {
			focusChecked = true;
			el.focus();
			const s = getComputedStyle(el);
			if (document.activeElement === el && s.outlineStyle === "none" && s.boxShadow === "none") {
				out.push("focus does not show on " + (el.id || el.tagName));
			}
			el.blur();
		}
	}
	// Text against what is behind it: WCAG AA, 4.5:1 (3:1 for large text).
	const lum = c => {
		const [r, g, b] = c.match(/[\d.]+/g).slice(0, 3).map(v => {
			v = v / 255;
			return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4);
		});
		return 0.2126 * r + 0.7152 * g + 0.0722 * b;
	};
	const behind = el => {
		for (let e = el; e; e = e.parentElement) {
			const bg = getComputedStyle(e).backgroundColor;
			const m = bg.match(/[\d.]+/g);
			if (m && (m.length < 4 || +m[3] > 0)) return bg;
		}
		return "rgb(255, 255, 255)";
	};
	for (const el of document.querySelectorAll("body *")) {
		if (![...el.childNodes].some(n => n.nodeType === 3 && n.textContent.trim())) continue;
		const r = el.getBoundingClientRect();
		if (r.width === 0 || el.closest(".sr") || el.closest("details:not([open]) > :not(summary)")) continue;
		const s = getComputedStyle(el);
		const [a, b] = [lum(s.color), lum(behind(el))];
		const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
		const size = parseFloat(s.fontSize), bold = +s.fontWeight >= 700;
		const need = size >= 24 || (bold && size >= 18.66) ? 3 : 4.5;
		if (ratio < need) out.push("contrast " + ratio.toFixed(2) + " < " + need + ": " + el.textContent.trim().slice(0, 40));
	}
	return out;
})()`

// The pages were checked by eye on a desktop: at 390 pixels wide Recent
// links hid Status and Revoke off the screen, and Custom Links broke
// words mid-word. Every page a staff member, a contact and a visitor sees
// is walked at a desktop's size and a phone's, and checked: nothing
// scrolls sideways, every action is on the screen, every control is
// labelled and shows its focus, and every error page offers a way on.
// Screenshots of each (-screenshots writes them into docs/).
func TestBrowser_EveryPageAtDesktopAndPhoneSizes(t *testing.T) {
	startDemo(t)
	b := browsertest.Start(t)
	shoot := shooter(t)
	staff, contact, visitor := b.NewContext(t), b.NewContext(t), b.NewContext(t)

	// A contact to show: Ada, with a portal link she opens.
	portalLink := newContactsPortalLink(staff, t, "http://agency:agency-demo@localhost:8080", "Ada Lovelace", "ada@example.com", "loc_demo")

	browsertest.Run(contact, t, chromedp.Navigate(portalLink), page("home"))
	browsertest.Run(staff, t, chromedp.Navigate("http://localhost:8080/dashboard/contacts?q=ada"), page("contacts"))
	adaPage := browsertest.Get(staff, t, chromedp.AttributeValue(chromedp.CSS(`tr[data-contact] a`), "href")).Value
	// And a Communities link (redeem confirm) for her, from her Generate:
	// its Continue page, opened as often as need be, spends nothing.
	generate := browsertest.Get(staff, t, chromedp.AttributeValue(chromedp.CSS(`tr[data-contact] a.button`), "href")).Value
	browsertest.Run(staff, t,
		chromedp.Navigate("http://localhost:8080"+generate),
		page("generate"),
		chromedp.SetValue(chromedp.CSS("#app"), "communities"),
		chromedp.Click(chromedp.CSS("#generate-submit")),
		chromedp.WaitVisible(chromedp.CSS("#magic-link")),
	)
	communitiesLink := browsertest.Get(staff, t, chromedp.Value(chromedp.CSS("#magic-link")))

	// The second sub-account, in its own brand on its own host: Grace,
	// Acme's contact, signed in to Acme's portal.
	acme := b.NewContext(t)
	acmeLink := newContactsPortalLink(staff, t, "http://agency:agency-demo@portal.acme.localhost:8080", "Grace Hopper", "grace@example.com", "")
	if !strings.HasPrefix(acmeLink, "http://portal.acme.localhost:8080/") {
		t.Fatalf("acme's link: %s", acmeLink)
	}
	browsertest.Run(acme, t, chromedp.Navigate(acmeLink), page("home"))

	type visit struct {
		ctx        context.Context
		name, url  string
		id         string
		errorPage  bool
		openMenuOn bool
	}
	visits := []visit{
		{ctx: staff, name: "dashboard", url: "http://localhost:8080/dashboard/", id: "dashboard", openMenuOn: true},
		{ctx: staff, name: "generate", url: "http://localhost:8080/dashboard/generate", id: "generate"},
		{ctx: staff, name: "contacts", url: "http://localhost:8080/dashboard/contacts", id: "contacts"},
		{ctx: staff, name: "contact", url: "http://localhost:8080" + adaPage, id: "contact"},
		{ctx: staff, name: "signout-everywhere", url: "http://localhost:8080" + adaPage + "/signout", id: "signout-everywhere"},
		{ctx: staff, name: "custom-links", url: "http://localhost:8080/dashboard/settings/links", id: "settings"},
		{ctx: staff, name: "outbox", url: "http://localhost:8080/dashboard/outbox", id: "outbox"},
		{ctx: contact, name: "portal-home", url: "http://localhost:8080/", id: "home"},
		{ctx: visitor, name: "signin", url: "http://localhost:8080/_portalgate/signin", id: "signin"},
		{ctx: staff, name: "subaccounts", url: "http://localhost:8080/dashboard/subaccounts", id: "subaccounts"},
		{ctx: acme, name: "acme-portal-home", url: "http://portal.acme.localhost:8080/", id: "home"},
		{ctx: visitor, name: "acme-signin", url: "http://portal.acme.localhost:8080/_portalgate/signin", id: "signin"},
		{ctx: visitor, name: "confirm", url: communitiesLink, id: "confirm"},
		{ctx: visitor, name: "logout-not-signed-in", url: "http://localhost:8081/_portalgate/logout", id: "notice", errorPage: true},
		{ctx: visitor, name: "bad-link", url: "http://localhost:8081/_portalgate/magic?token=not.a.link", id: "notice", errorPage: true},
		{ctx: visitor, name: "not-signed-in", url: "http://localhost:8080/_portalgate/launch/courses", id: "notice", errorPage: true},
	}
	// A contact signs in with the keyboard alone: the form has the focus,
	// the address and Enter send it, the code and Enter sign in.
	keyboard := b.NewContext(t)
	browsertest.Run(keyboard, t,
		chromedp.EmulateViewport(390, 844),
		chromedp.Navigate("http://localhost:8080/_portalgate/signin"),
		page("signin"),
		chromedp.KeyEvent("ada@example.com\r"),
		page("signin-code"),
	)
	browsertest.Run(staff, t, chromedp.Navigate("http://localhost:8080/dashboard/outbox"), page("outbox"))
	code := regexp.MustCompile(`\b\d{6}\b`).FindString(browsertest.Get(staff, t, chromedp.Text(chromedp.CSS("article.mail pre"))))
	if code == "" {
		t.Fatal("no code in the sign-in e-mail")
	}
	shoot(keyboard, "signin-code-phone.png")
	// The code page gone first: a wait begun on it may hold on to its
	// document while the browser leaves it.
	browsertest.Run(keyboard, t, chromedp.KeyEvent(code+"\r"), page("home"))

	for _, size := range []struct {
		name          string
		width, height int64
	}{{"desktop", 1280, 900}, {"phone", 390, 844}} {
		for _, v := range visits {
			browsertest.Run(v.ctx, t,
				focused,
				chromedp.EmulateViewport(size.width, size.height),
				chromedp.Navigate(v.url),
				page(v.id),
			)
			if v.openMenuOn {
				// The Actions menu open: its items must be on the screen too.
				browsertest.Run(v.ctx, t, chromedp.Click(chromedp.CSS("details.menu summary")),
					chromedp.WaitVisible(chromedp.CSS("#action-generate")))
			}
			problems := browsertest.Get(v.ctx, t, chromedp.Evaluate[[]string](pageCheck))
			if size.name == "desktop" {
				problems = append(problems, unreachedByTab(v.ctx, t)...)
			}
			if len(problems) > 0 {
				t.Errorf("%s at %dx%d:\n  %s", v.name, size.width, size.height, strings.Join(problems, "\n  "))
			}
			if v.errorPage {
				ways := browsertest.Get(v.ctx, t, chromedp.Evaluate[int](`document.querySelectorAll("[data-action]").length`))
				if ways == 0 {
					t.Errorf("%s at %s size: an error page with no way on", v.name, size.name)
				}
			}
			shoot(v.ctx, fmt.Sprintf("%s-%s.png", v.name, size.name))
		}
	}
}

// focused makes the tab behave as the one window a person looks at: only
// one of the test's tabs has the browser's focus, and without it no page
// shows focus (:focus matches in a focused page alone).
var focused = chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
	_, err := cdp.Call(ctx, t, emulation.SetFocusEmulationEnabled, emulation.SetFocusEmulationEnabledParams{Enabled: true})
	return err
})

// tabbable marks every action a person can see (one inside a closed menu
// once its menu is open) and says how many there are.
const tabbable = `(() => {
	let n = 0;
	for (const el of document.querySelectorAll("a[href],button,input,select,textarea,summary")) {
		if (el.type === "hidden" || el.closest(".sr") || el.disabled) continue;
		if (el.closest("details:not([open])") && el.tagName !== "SUMMARY") continue;
		if (el.type === "radio") {
			// Tab reaches a radio group once (its checked choice, or its
			// first); the arrow keys move within it.
			const group = [...document.querySelectorAll('input[type=radio][name="' + el.name + '"]')];
			if (el !== (group.find(g => g.checked) || group[0])) continue;
		}
		const r = el.getBoundingClientRect();
		if (r.width === 0 && r.height === 0) continue;
		el.dataset.kb = n++;
	}
	// Tab goes on from where focus last was: from the top, then, as on a
	// page just opened.
	const start = document.createElement("span");
	start.tabIndex = -1;
	document.body.prepend(start);
	start.focus();
	return n;
})()`

// unreachedByTab presses Tab through the page, as a person with a
// keyboard alone does, and names the actions it never reaches.
func unreachedByTab(ctx context.Context, t *testing.T) []string {
	t.Helper()
	n := browsertest.Get(ctx, t, chromedp.Evaluate[int](tabbable))
	// n presses reach n actions in order, and never leave the page: past
	// its last, the focus would go to the browser, and no page of this
	// tab would show focus again.
	reached := map[string]bool{}
	for range n {
		browsertest.Run(ctx, t, chromedp.KeyEvent("\t"))
		reached[browsertest.Get(ctx, t, chromedp.Evaluate[string](`(document.activeElement && document.activeElement.dataset.kb) || ""`))] = true
	}
	var out []string
	for i := range n {
		if !reached[fmt.Sprint(i)] {
			what := browsertest.Get(ctx, t, chromedp.Evaluate[string](fmt.Sprintf(`(e => e.id || e.textContent.trim().slice(0, 40) || e.outerHTML.slice(0, 60))(document.querySelector('[data-kb="%d"]'))`, i)))
			out = append(out, "not reached by Tab: "+what)
		}
	}
	return out
}

// newContactsPortalLink generates, on the dashboard of the portal at
// origin (credentials and all), a portal link for a new contact, and
// returns the link; a location "" is the dashboard's own (a tenant's) or
// none.
func newContactsPortalLink(staff context.Context, t *testing.T, origin, name, email, location string) string {
	t.Helper()
	steps := []chromedp.Action[chromedp.Void]{
		chromedp.Navigate(origin + "/dashboard/generate"),
		page("generate"),
		chromedp.Click(chromedp.CSS("#who-new")),
		chromedp.SendKeys(chromedp.CSS("#new_name"), name),
		chromedp.SendKeys(chromedp.CSS("#new_email"), email),
	}
	if location != "" {
		steps = append(steps, chromedp.SendKeys(chromedp.CSS("#new_location"), location))
	}
	steps = append(steps,
		chromedp.SetValue(chromedp.CSS("#app"), "portal"),
		chromedp.Click(chromedp.CSS("#generate-submit")),
		chromedp.WaitVisible(chromedp.CSS("#magic-link")),
	)
	browsertest.Run(staff, t, steps...)
	return browsertest.Get(staff, t, chromedp.Value(chromedp.CSS("#magic-link")))
}

package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/portalgate/portalgate/caddymodule/internal/testkit/browsertest"
)

// pageCheck finds what makes a page hard to use, in the page itself:
// anything that scrolls it sideways, a form control without a label, an
// action off the screen's edge (one inside a closed menu counts once its
// menu opens), and a focused control that does not show it has focus.
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
	page := func(id string) chromedp.Action[chromedp.Void] {
		return chromedp.WaitVisible(chromedp.CSS(`body[data-page="` + id + `"]`))
	}
	staff, contact, visitor := b.NewContext(t), b.NewContext(t), b.NewContext(t)

	// A contact to show: Ada, with a portal link she opens.
	browsertest.Run(staff, t,
		chromedp.Navigate("http://agency:agency-demo@localhost:8080/dashboard/generate"),
		page("generate"),
		chromedp.Click(chromedp.CSS("#who-new")),
		chromedp.SendKeys(chromedp.CSS("#new_name"), "Ada Lovelace"),
		chromedp.SendKeys(chromedp.CSS("#new_email"), "ada@example.com"),
		chromedp.SendKeys(chromedp.CSS("#new_location"), "loc_demo"),
		chromedp.SetValue(chromedp.CSS("#app"), "portal"),
		chromedp.Click(chromedp.CSS("#generate-submit")),
		chromedp.WaitVisible(chromedp.CSS("#magic-link")),
	)
	portalLink := browsertest.Get(staff, t, chromedp.Value(chromedp.CSS("#magic-link")))
	browsertest.Run(contact, t, chromedp.Navigate(portalLink), page("home"))
	browsertest.Run(staff, t, chromedp.Navigate("http://localhost:8080/dashboard/contacts?q=ada"), page("contacts"))
	adaPage := browsertest.Get(staff, t, chromedp.AttributeValue(chromedp.CSS(`tr[data-contact] a`), "href")).Value

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
		{ctx: visitor, name: "bad-link", url: "http://localhost:8081/_portalgate/magic?token=not.a.link", id: "notice", errorPage: true},
		{ctx: visitor, name: "not-signed-in", url: "http://localhost:8080/_portalgate/launch/courses", id: "notice", errorPage: true},
	}
	for _, size := range []struct {
		name          string
		width, height int64
	}{{"desktop", 1280, 900}, {"phone", 390, 844}} {
		for _, v := range visits {
			browsertest.Run(v.ctx, t,
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

package portal

import (
	"crypto/sha256"
	"encoding/base64"
	"regexp"
	"strings"
	"testing"
)

func render(t *testing.T, name string, data any) string {
	t.Helper()
	var b strings.Builder
	if err := Render(&b, name, data); err != nil {
		t.Fatalf("rendering %s: %v", name, err)
	}
	return b.String()
}

const attack = `<script>alert(1)</script>"'><img src=x onerror=alert(1)>`

// Names, titles and URLs come from contacts, a CRM and staff: none of them
// may become markup or script on a page.
func TestRender_StoredScriptInjectionIsEscaped(t *testing.T) {
	staff := StaffInfo{Name: attack, Role: "agency_user", Agency: true, CSRF: "t"}
	pages := map[string]any{
		"dashboard.html": Dashboard{Staff: staff, Notice: attack, Apps: []AppEntry{{Name: attack, Title: attack}},
			Links: []LinkRow{{ID: attack, For: attack, Type: attack, Target: attack, Path: attack, Status: attack, State: attack, Revocable: true}}},
		"generate.html": Generate{Staff: staff, Query: attack, Contacts: []Option{{Value: attack, Label: attack}}, Who: "new",
			NewID: attack, NewEmail: attack, NewName: attack, NewLocation: attack, Path: attack, Uses: attack,
			Errors: map[string]string{"form": attack, "new_id": attack},
			Result: &Generated{URL: attack, For: attack, Target: attack, Expires: attack}},
		"settings.html": Settings{Staff: staff, Items: []MenuRow{{ID: attack, Title: attack, Target: attack, Open: attack, Roles: []string{attack}}},
			Form: MenuForm{Title: attack, URL: attack, Kind: "url"}, Errors: map[string]string{"title": attack}},
		"home.html": Home{UserName: attack, UserEmail: attack, CSRF: "t",
			Links: []MenuLink{{ID: attack, Title: attack, Href: "javascript:alert(1)", Src: "javascript:alert(1)", Open: "new_tab"}},
			Frame: &MenuLink{ID: attack, Title: attack, Src: "javascript:alert(1)"}},
	}
	for name, data := range pages {
		page := render(t, name, data)
		for _, bad := range []string{"<script>alert", "<img src=x", `href="javascript:`, `src="javascript:`} {
			if strings.Contains(page, bad) {
				t.Errorf("%s contains %q", name, bad)
			}
		}
	}
}

func TestQR_IsInlineSVGOfNumbersOnly(t *testing.T) {
	svg, err := QR("http://localhost:8081/_portalgate/magic?token=" + strings.Repeat("a", 400))
	if err != nil {
		t.Fatal(err)
	}
	d := regexp.MustCompile(` d="([^"]*)"`).FindStringSubmatch(string(svg))
	if !strings.HasPrefix(string(svg), "<svg ") || d == nil || strings.Trim(d[1], "0123456789 Mhvz-") != "" || len(d[1]) < 1000 {
		t.Fatalf("QR code: %.300s", svg)
	}
}

// The CSP hashes must be of exactly what the pages inline, or the browser
// drops the style and the Copy button.
func TestCSPHashes_MatchTheInlinedStyleAndScript(t *testing.T) {
	page := render(t, "generate.html", Generate{Result: &Generated{URL: "http://x/"}})
	for name, c := range map[string]struct{ re, hash string }{
		"style":  {`(?s)<style>(.*?)</style>`, StyleHash},
		"script": {`(?s)<script>(.*?)</script>`, ScriptHash},
	} {
		m := regexp.MustCompile(c.re).FindStringSubmatch(page)
		if m == nil {
			t.Fatalf("no inline %s", name)
		}
		sum := sha256.Sum256([]byte(m[1]))
		if got := "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"; got != c.hash {
			t.Errorf("%s hash %s, CSP says %s", name, got, c.hash)
		}
	}
}

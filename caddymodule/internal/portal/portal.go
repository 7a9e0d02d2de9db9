// Package portal renders the pages people see: the portal home, the staff
// dashboard, sign-out and error pages. Templates are embedded; nothing is
// loaded from the network.
package portal

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"html/template"
	"io"
	"strings"
)

//go:embed templates
var files embed.FS

// css is the one style sheet, inlined in every page.
var css = func() string {
	b, err := files.ReadFile("templates/style.css")
	if err != nil {
		panic(err)
	}
	return string(b)
}()

// script is the dashboard's one script (the Copy button), inlined.
var script = func() string {
	b, err := files.ReadFile("templates/copy.js")
	if err != nil {
		panic(err)
	}
	return string(b)
}()

var pages = template.Must(template.New("").Funcs(template.FuncMap{
	// Our own embedded style sheet and script, not input: safe to mark.
	"css":    func() template.CSS { return template.CSS(css) },  //nolint:gosec // constant, embedded
	"script": func() template.JS { return template.JS(script) }, //nolint:gosec // constant, embedded
	"join":   strings.Join,
	"list":   func(xs ...string) []string { return xs },
	// page names a page for the layout: its data-page marker (what a
	// browser test waits for after a navigation) and its title.
	// and, for a portal's own pages, its look (the brand's colour).
	"page": func(id, title string, look ...Look) pageHead {
		h := pageHead{ID: id, Title: title}
		if len(look) > 0 {
			h.Look = look[0]
		}
		return h
	},
}).ParseFS(files, "templates/*.html"))

// pageHead is what the layout's head needs of a page.
type pageHead struct {
	ID, Title string
	Look      Look
}

// Look is how a portal's pages show it: its name, its logo, and its
// brand's colour as a style sheet of its own (LookStyleHash).
type Look struct {
	Title, Logo string
	Style       template.CSS
}

// NewLook is the look of a portal of brand b (checked: its colour a hex
// colour, its logo an https URL), and the CSP source of its style sheet.
func NewLook(b Brand) (Look, string) {
	l := Look{Title: b.Title, Logo: b.Logo}
	if b.Color == "" || b.Color == DefaultColor || !hexColor.MatchString(b.Color) {
		return l, ""
	}
	style := ":root{--brand:" + b.Color + "}"
	l.Style = template.CSS(style) //nolint:gosec // a checked hex colour
	return l, cspHash(style)
}

// StyleHash is the CSP source of the inline style sheet, so pages can forbid
// every other style.
var StyleHash = cspHash(css)

// ScriptHash is the CSP source of the dashboard's inline script, so it can
// forbid every other script.
var ScriptHash = cspHash(script)

func cspHash(s string) string {
	sum := sha256.Sum256([]byte(s))
	return "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
}

// AppEntry is one app on the portal home.
type AppEntry struct {
	Name, Title, LaunchURL string
	// Description is a line about the app; Icon an https URL of its image
	// (without one, the tile shows the title's first letter).
	Description, Icon string
}

// Initial is the first letter of the app's title, for a tile without an
// icon.
func (a AppEntry) Initial() string {
	for _, r := range a.Title {
		return strings.ToUpper(string(r))
	}
	return ""
}

// Home is the data of the portal home page.
type Home struct {
	Portal                      Look
	UserName, UserEmail, UserID string
	Apps                        []AppEntry
	// Links are the custom menu items for the user.
	Links []MenuLink
	// Frame, when set, is the iframe item shown inside the page.
	Frame *MenuLink
	// CSRF is the token of the sign-out form.
	CSRF string
}

// MenuLink is a custom menu item on the portal home. Href is where the
// menu entry goes (the home page itself for an iframe item); Src is what
// an iframe item shows.
type MenuLink struct {
	ID, Title, Href, Src, Open string
	// Magic is true for an item that launches a child app; another site
	// shown in an iframe gets a sandbox.
	Magic bool
	// Icon is an https URL of the item's image, or "".
	Icon string
}

// Form is the data of a one-button page that posts back to itself: the
// confirmation before a link is used, and sign-out.
type Form struct {
	Portal   Look
	AppTitle string
	CSRF     string
}

// Confirm is the data of the page that asks before a link is spent.
type Confirm struct {
	Portal         Look
	AppTitle, CSRF string
	// Account names whom the link signs in.
	Account string
	// Current names the account this browser is signed in to the app as
	// now, when the link is another's: continuing signs it out.
	Current string
}

// SignIn is the data of the sign-in form.
type SignIn struct {
	Portal       Look
	Action, CSRF string
	// App and Next are where the visitor was going, kept through the form.
	App, Next string
	// Email is what was typed; Error what is wrong with it.
	Email, Error string
}

// SignInCode is the data of the page that asks for the code.
type SignInCode struct {
	Portal       Look
	Action, CSRF string
	// Again is the address of the sign-in form, to ask again.
	Again string
	// Error says what was wrong with the last code typed.
	Error   string
	Minutes int
}

// Notice is the data of a page that tells a person what happened and what
// to do next: errors, signed out, not signed in.
type Notice struct {
	// Portal names the portal at the top of the page.
	Portal  Look
	Title   string
	Message string
	// Hint says what to do next, when there is something to do.
	Hint string
	// Actions are the ways on, the first the one most people want.
	Actions []Action
	// Support is the address to write to for help, when one is configured.
	Support string
}

// Action is a way on from a page: a link a person can follow next.
type Action struct {
	URL, Text string
}

// Icon is the portal's icon, an SVG image in color (a hex colour that
// Brand.Check accepts; DefaultColor when empty): a rounded square behind a
// keyhole.
func Icon(color string) []byte {
	if color == "" {
		color = DefaultColor
	}
	return []byte(`<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32">` +
		`<rect width="32" height="32" rx="7" fill="` + color + `"/>` +
		`<circle cx="16" cy="13" r="5" fill="#fff"/><path d="M13.5 16h5l1.5 9h-8z" fill="#fff"/></svg>`)
}

// Render writes the named page. It renders to a buffer first so a template
// error never leaves half a page behind.
func Render(w io.Writer, name string, data any) error {
	var buf bytes.Buffer
	if err := pages.ExecuteTemplate(&buf, name, data); err != nil {
		return err
	}
	_, err := buf.WriteTo(w)
	return err
}

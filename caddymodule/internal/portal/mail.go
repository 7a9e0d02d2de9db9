package portal

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	htmltemplate "html/template"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	texttemplate "text/template"
	"unicode"

	"github.com/portalgate/portalgate/caddymodule/internal/mail"
)

// The e-mails' templates: for each kind, its subject and plain-text body
// (kind.subject, kind.text in kind.txt; text/template: nothing in them is
// HTML) and its HTML body (kind.html in kind.html; html/template, escaped in
// context like the pages).
var (
	mailText = texttemplate.Must(texttemplate.New("").ParseFS(files, "templates/mail/*.txt"))
	mailHTML = htmltemplate.Must(htmltemplate.New("").ParseFS(files, "templates/mail/*.html"))
)

// MailKinds are the e-mails the gateway sends, as templates name them.
var MailKinds = []string{"link", "signin", "invite"}

// Brand is how the e-mails look and sign: the portal's name, the colour of
// their button, a logo, and where to write with questions.
type Brand struct {
	Title string
	// Color is a CSS hex colour (#0f766e).
	Color string
	// Logo is an https URL of an image, shown instead of the name.
	Logo string
	// Support is an e-mail address.
	Support string
	// Sender, when set, names the sender of the e-mails (the address is
	// the mailer's).
	Sender string
}

// CheckImageURL says what is wrong with raw as the address of an image a
// page or an e-mail shows: an https URL with a host, nothing that could
// leave an attribute.
func CheckImageURL(raw string) error {
	u, err := url.Parse(raw)
	// The host goes into a page's CSP (img-src): host characters only, so
	// that it can add no directive (;), no policy (,) and no wildcard (*).
	if err != nil || u.Scheme != "https" || !imageHost.MatchString(u.Host) || u.User != nil || len(raw) > 2048 ||
		strings.ContainsAny(raw, " \"'<>\\") {
		return fmt.Errorf("%q is not an https URL of an image", raw)
	}
	return nil
}

// imageHost is a host name (ASCII: an IDN in its punycode form) with an
// optional port.
var imageHost = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?(:[0-9]{1,5})?$`)

// DefaultColor is the brand colour when none is configured.
const DefaultColor = "#1d4ed8"

var hexColor = regexp.MustCompile(`^#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6})$`)

// Check says what is wrong with b, if anything.
func (b Brand) Check() error {
	if b.Color != "" && !hexColor.MatchString(b.Color) {
		return fmt.Errorf("brand color %q is not a hex colour such as #0f766e", b.Color)
	}
	if b.Logo != "" && CheckImageURL(b.Logo) != nil {
		return fmt.Errorf("brand logo %q is not an https URL", b.Logo)
	}
	if len(b.Sender) > 100 || strings.ContainsFunc(b.Title+b.Sender, unicode.IsControl) {
		return errors.New("a brand's name and sender name are on one line, the sender name at most 100 bytes")
	}
	if b.Support != "" {
		if _, err := mail.ParseEmail(b.Support); err != nil {
			return fmt.Errorf("brand support: %w", err)
		}
	}
	return nil
}

// Mails renders the e-mails under one brand, from the embedded templates
// or, kind by kind, the operator's.
type Mails struct {
	brand Brand
	text  *texttemplate.Template
	html  *htmltemplate.Template
}

// NewMails checks brand and loads the templates: the embedded ones, each
// replaced by dir/<kind>.txt or dir/<kind>.html where the operator has
// one (dir "" for none). A file must define what it replaces.
func NewMails(dir string, brand Brand) (*Mails, error) {
	if err := brand.Check(); err != nil {
		return nil, err
	}
	if brand.Title == "" {
		brand.Title = "Portal"
	}
	if brand.Color == "" {
		brand.Color = DefaultColor
	}
	m := &Mails{brand: brand, text: texttemplate.Must(mailText.Clone()), html: htmltemplate.Must(mailHTML.Clone())}
	if dir == "" {
		return m, nil
	}
	operator := os.DirFS(dir)
	for _, kind := range MailKinds {
		if err := m.override(operator, dir, kind); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// override loads the operator's templates of kind, if dir (as fsys) has
// them.
func (m *Mails) override(fsys fs.FS, dir, kind string) error {
	txt, html := filepath.Join(dir, kind+".txt"), filepath.Join(dir, kind+".html")
	if b, err := fs.ReadFile(fsys, kind+".txt"); err == nil {
		if _, err := m.text.New(kind + ".txt").Parse(string(b)); err != nil {
			return fmt.Errorf("mail template %s: %w", txt, err)
		}
		for _, name := range []string{kind + ".subject", kind + ".text"} {
			if m.text.Lookup(name) == nil || !strings.Contains(string(b), `define "`+name+`"`) {
				return fmt.Errorf("mail template %s must define %q", txt, name)
			}
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if b, err := fs.ReadFile(fsys, kind+".html"); err == nil {
		if _, err := m.html.New(kind + ".html.file").Parse(string(b)); err != nil {
			return fmt.Errorf("mail template %s: %w", html, err)
		}
		if !strings.Contains(string(b), `define "`+kind+`.html"`) {
			return fmt.Errorf("mail template %s must define %q", html, kind+".html")
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// WithBrand is m under another brand (a sub-account's), with the same
// templates.
func (m *Mails) WithBrand(brand Brand) (*Mails, error) {
	if err := brand.Check(); err != nil {
		return nil, err
	}
	brand.Title = cmp.Or(brand.Title, m.brand.Title)
	brand.Color = cmp.Or(brand.Color, DefaultColor)
	return &Mails{brand: brand, text: m.text, html: m.html}, nil
}

// Brand is the brand the e-mails carry.
func (m *Mails) Brand() Brand { return m.brand }

// LinkMail is the data of the e-mail that delivers a link staff sent.
type LinkMail struct {
	Brand
	// Name is the recipient's name, if known.
	Name     string
	AppTitle string
	URL      string
	// Uses is how often the link works; Expires when it stops, as people
	// read it.
	Uses    int
	Expires string
}

// SignInMail is the data of a sign-in e-mail.
type SignInMail struct {
	Brand
	Name string
	// Code is the 6-digit code ("" when no browser asked), URL the link;
	// both work Minutes minutes.
	Code, URL string
	Minutes   int
}

// InviteMail is the data of the welcome e-mail with a link into the portal.
type InviteMail struct {
	Brand
	Name, URL, Expires string
}

// Rendered is an e-mail's subject and bodies.
type Rendered struct {
	Subject, Text, HTML string
}

// Link renders the e-mail of a link.
func (m *Mails) Link(d LinkMail) (Rendered, error) {
	d.Brand = m.brand
	return m.render("link", d)
}

// SignIn renders a sign-in e-mail.
func (m *Mails) SignIn(d SignInMail) (Rendered, error) {
	d.Brand = m.brand
	return m.render("signin", d)
}

// Invite renders an invitation.
func (m *Mails) Invite(d InviteMail) (Rendered, error) {
	d.Brand = m.brand
	return m.render("invite", d)
}

func (m *Mails) render(kind string, data any) (Rendered, error) {
	var subject, text, html bytes.Buffer
	if err := m.text.ExecuteTemplate(&subject, kind+".subject", data); err != nil {
		return Rendered{}, err
	}
	if err := m.text.ExecuteTemplate(&text, kind+".text", data); err != nil {
		return Rendered{}, err
	}
	if err := m.html.ExecuteTemplate(&html, kind+".html", data); err != nil {
		return Rendered{}, err
	}
	// A subject is one header line, whatever a title held.
	oneLine := strings.Join(strings.Fields(subject.String()), " ")
	return Rendered{Subject: oneLine, Text: text.String(), HTML: html.String()}, nil
}

package portal

import (
	"bytes"
	htmltemplate "html/template"
	"strings"
	texttemplate "text/template"
)

// The e-mails' templates: for each kind, its subject and plain-text body
// (kind.subject, kind.text in kind.txt; text/template: nothing in them is
// HTML) and its HTML body (kind.html in kind.html; html/template, escaped in
// context like the pages).
var (
	mailText = texttemplate.Must(texttemplate.New("").ParseFS(files, "templates/mail/*.txt"))
	mailHTML = htmltemplate.Must(htmltemplate.New("").ParseFS(files, "templates/mail/*.html"))
)

// LinkMail is the data of the e-mail that delivers a link staff sent.
type LinkMail struct {
	PortalTitle string
	// Name is the recipient's name, if known.
	Name     string
	AppTitle string
	URL      string
	// Uses is how often the link works; Expires when it stops, as people
	// read it.
	Uses    int
	Expires string
	// Color is the button's colour (a CSS colour the configuration set).
	Color string
}

// SignInMail is the data of the e-mail a person asked for to sign in.
type SignInMail struct {
	PortalTitle, Name string
	// Code is the 6-digit code, URL the link; both work Minutes minutes.
	Code, URL string
	Minutes   int
	Color     string
}

// RenderSignInMail renders the sign-in e-mail.
func RenderSignInMail(d SignInMail) (Rendered, error) {
	if d.Color == "" {
		d.Color = DefaultColor
	}
	return renderMail("signin", d)
}

// InviteMail is the data of the welcome e-mail with a link into the portal.
type InviteMail struct {
	PortalTitle, Name, URL, Expires, Color string
}

// RenderInviteMail renders the invitation.
func RenderInviteMail(d InviteMail) (Rendered, error) {
	if d.Color == "" {
		d.Color = DefaultColor
	}
	return renderMail("invite", d)
}

// Rendered is an e-mail's subject and bodies.
type Rendered struct {
	Subject, Text, HTML string
}

// RenderLinkMail renders the e-mail of a link.
func RenderLinkMail(d LinkMail) (Rendered, error) {
	if d.Color == "" {
		d.Color = DefaultColor
	}
	return renderMail("link", d)
}

// DefaultColor is the brand colour when none is configured.
const DefaultColor = "#1d4ed8"

func renderMail(kind string, data any) (Rendered, error) {
	var subject, text, html bytes.Buffer
	if err := mailText.ExecuteTemplate(&subject, kind+".subject", data); err != nil {
		return Rendered{}, err
	}
	if err := mailText.ExecuteTemplate(&text, kind+".text", data); err != nil {
		return Rendered{}, err
	}
	if err := mailHTML.ExecuteTemplate(&html, kind+".html", data); err != nil {
		return Rendered{}, err
	}
	// A subject is one header line, whatever a title held.
	oneLine := strings.Join(strings.Fields(subject.String()), " ")
	return Rendered{Subject: oneLine, Text: text.String(), HTML: html.String()}, nil
}

// Package portal renders the pages people see: the portal home, sign-out and
// error pages. Templates are embedded; nothing is loaded from the network.
package portal

import (
	"bytes"
	"embed"
	"html/template"
	"io"
)

//go:embed templates/*.html
var files embed.FS

var pages = template.Must(template.ParseFS(files, "templates/*.html"))

// AppEntry is one app on the portal home.
type AppEntry struct {
	Name, Title, LaunchURL string
}

// Home is the data of the portal home page.
type Home struct {
	UserName, UserEmail, UserID string
	Apps                        []AppEntry
}

// Notice is the data of a page that tells a person what happened and what
// to do next: errors, signed out, not signed in.
type Notice struct {
	Title   string
	Message string
	// Hint says what to do next, when there is something to do.
	Hint string
	// LinkURL and LinkText, when set, offer a way on.
	LinkURL, LinkText string
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

package caddymodule

import (
	"net/http"
	"strings"

	"github.com/caddyserver/caddy/v2"

	"github.com/portalgate/portalgate/caddymodule/internal/store"
)

// The identity headers a child app receives.
const (
	headerUserID   = "X-Portal-User-Id"
	headerEmail    = "X-Portal-User-Email"
	headerName     = "X-Portal-User-Name"
	headerType     = "X-Portal-User-Type"
	headerLocation = "X-Portal-Location-Id"
	headerApp      = "X-Portal-App"
)

// stripIdentityHeaders deletes every header a client sent that an app could
// read as ours: any letter case, and with underscores for dashes too, since
// CGI-style servers (PHP, WSGI, Rack) fold X_Portal_User_Id and
// X-Portal-User-Id into the same variable.
func stripIdentityHeaders(h http.Header) {
	for name := range h {
		if len(name) >= len("X-Portal-") && isPortalPrefix(name[:len("X-Portal-")]) {
			delete(h, name)
		}
	}
}

func isPortalPrefix(p string) bool {
	const want = "x-portal-"
	for i := 0; i < len(want); i++ {
		c := p[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c == '_' {
			c = '-'
		}
		if c != want[i] {
			return false
		}
	}
	return true
}

// setIdentity hands the session's user to the app as headers and to the rest
// of Caddy as {http.auth.user.*} placeholders (the access log's user_id).
func setIdentity(r *http.Request, s *store.Session) {
	h := r.Header
	u := &s.User
	h[headerUserID] = []string{u.ID}
	h[headerEmail] = []string{u.Email}
	h[headerName] = []string{u.Name}
	h[headerType] = []string{string(u.Type)}
	if u.Location != "" {
		h[headerLocation] = []string{u.Location}
	}
	h[headerApp] = []string{s.App}
	if repl, ok := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer); ok {
		repl.Set("http.auth.user.id", u.ID)
		repl.Set("http.auth.user.email", u.Email)
		repl.Set("http.auth.user.name", u.Name)
		repl.Set("http.auth.user.type", string(u.Type))
		repl.Set("http.auth.user.location", u.Location)
	}
}

// cookieValue returns the value of the named cookie without parsing every
// cookie of the request (the hot path reads one).
func cookieValue(h http.Header, name string) string {
	for _, line := range h["Cookie"] {
		for line != "" {
			var part string
			part, line, _ = strings.Cut(line, ";")
			part = strings.TrimLeft(part, " ")
			if k, v, ok := strings.Cut(part, "="); ok && k == name {
				return strings.Trim(v, `"`)
			}
		}
	}
	return ""
}

// stripSessionCookies removes every gateway session cookie from what is sent
// upstream. Apps get identity headers; a session id they never see they
// cannot leak, and on plain-HTTP localhost every port shares cookies, so one
// app would otherwise receive the others' sessions too.
func stripSessionCookies(h http.Header) {
	lines := h["Cookie"]
	out := lines[:0]
	for _, line := range lines {
		if !strings.Contains(line, cookiePrefix) {
			out = append(out, line)
			continue
		}
		var kept []string
		for part := range strings.SplitSeq(line, ";") {
			part = strings.TrimSpace(part)
			if name, _, _ := strings.Cut(part, "="); !isSessionCookie(name) && part != "" {
				kept = append(kept, part)
			}
		}
		if len(kept) > 0 {
			out = append(out, strings.Join(kept, "; "))
		}
	}
	if len(out) == 0 {
		delete(h, "Cookie")
		return
	}
	h["Cookie"] = out
}

// cookiePrefix starts the name of every session cookie (after __Host-).
const cookiePrefix = "portalgate-"

func isSessionCookie(name string) bool {
	return strings.HasPrefix(strings.TrimPrefix(name, "__Host-"), cookiePrefix)
}

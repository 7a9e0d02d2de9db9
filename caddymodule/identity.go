package caddymodule

import (
	"net/http"
	"strings"

	"github.com/caddyserver/caddy/v2"

	"github.com/portalgate/portalgate/caddymodule/internal/session"
)

// The identity headers a child app receives.
const (
	headerUserID   = "X-Portal-User-Id"
	headerEmail    = "X-Portal-User-Email"
	headerName     = "X-Portal-User-Name"
	headerType     = "X-Portal-User-Type"
	headerLocation = "X-Portal-Location-Id"
	headerApp      = "X-Portal-App"
	headerCSP      = "Content-Security-Policy"
	// headerAssertion carries the signed identity assertion, when on.
	headerAssertion = "X-Portal-Assertion"
)

// stripIdentityHeaders deletes every header a client sent that an app could
// read as ours: any letter case, and with underscores for dashes too, since
// CGI-style servers (PHP, WSGI, Rack) fold X_Portal_User_Id and
// X-Portal-User-Id into the same variable.
//
// A client could also name our headers in Connection, so that a proxy drops
// them as hop-by-hop after we set them: those tokens are removed too.
func stripIdentityHeaders(h http.Header) {
	for name := range h {
		if isIdentityHeader(name) {
			delete(h, name)
		}
	}
	for i, v := range h["Connection"] {
		if strings.Contains(strings.ToLower(strings.ReplaceAll(v, "_", "-")), "x-portal-") {
			var kept []string
			for token := range strings.SplitSeq(v, ",") {
				if token = strings.TrimSpace(token); token != "" && !isIdentityHeader(token) {
					kept = append(kept, token)
				}
			}
			h["Connection"][i] = strings.Join(kept, ", ")
		}
	}
}

// identityTrailer reports whether the request declares a trailer that an app
// could read as ours: trailers arrive after the body, past any stripping.
func identityTrailer(r *http.Request) bool {
	for name := range r.Trailer {
		if isIdentityHeader(name) {
			return true
		}
	}
	return false
}

// isIdentityHeader reports whether name starts with X-Portal-, in any letter
// case, with _ for -.
func isIdentityHeader(name string) bool {
	const want = "x-portal-"
	if len(name) < len(want) {
		return false
	}
	for i := 0; i < len(want); i++ {
		c := name[i]
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
// of Caddy as {http.auth.user.*} placeholders (the access log's user_id),
// and adds frameAncestors to the response's Content-Security-Policy.
func setIdentity(r *http.Request, s *session.Entry, resp http.Header, frameAncestors string) {
	h := r.Header
	u := &s.User
	// One backing array for all values: this runs on every gated request.
	v := [...]string{u.ID, u.Email, u.Name, string(u.Type), s.App, u.Location, frameAncestors}
	vals := v[:]
	h[headerUserID] = vals[0:1:1]
	h[headerEmail] = vals[1:2:2]
	h[headerName] = vals[2:3:3]
	h[headerType] = vals[3:4:4]
	h[headerApp] = vals[4:5:5]
	if u.Location != "" {
		h[headerLocation] = vals[5:6:6]
	}
	if csp := resp[headerCSP]; len(csp) > 0 {
		resp[headerCSP] = append(csp, frameAncestors)
	} else {
		resp[headerCSP] = vals[6:7:7]
	}
	if repl, ok := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer); ok {
		// Resolved only when something asks, instead of five map writes.
		repl.Map(func(key string) (any, bool) {
			switch key {
			case "http.auth.user.id":
				return u.ID, true
			case "http.auth.user.email":
				return u.Email, true
			case "http.auth.user.name":
				return u.Name, true
			case "http.auth.user.type":
				return string(u.Type), true
			case "http.auth.user.location":
				return u.Location, true
			}
			return nil, false
		})
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
	// Rewritten in place: the request's header slice is its own (the server
	// made it for this request), and the hot path saves an allocation.
	lines := h["Cookie"]
	out := lines[:0]
	for _, line := range lines {
		if !strings.Contains(line, cookiePrefix) {
			out = append(out, line)
			continue
		}
		var b strings.Builder
		b.Grow(len(line))
		for part := range strings.SplitSeq(line, ";") {
			part = strings.TrimSpace(part)
			if name, _, _ := strings.Cut(part, "="); part == "" || isSessionCookie(name) {
				continue
			}
			if b.Len() > 0 {
				b.WriteString("; ")
			}
			b.WriteString(part)
		}
		if b.Len() > 0 {
			out = append(out, b.String())
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

package gateway

import (
	"net/http"
	"strings"
	"time"
)

// cookie builds one of this app's cookies; maxAge < 0 deletes it.
func (s *Site) cookie(name, value string, maxAge time.Duration) *http.Cookie {
	// Secure follows the app's configured scheme: only a plain-HTTP origin
	// (a localhost demo) gets a cookie without it; HTTPS gets __Host-.
	c := &http.Cookie{ //nolint:gosec // see above
		Name:     name,
		Value:    value,
		Path:     "/",
		HttpOnly: true,
		Secure:   s.app.secure,
		SameSite: http.SameSiteLaxMode,
		MaxAge:   int(maxAge / time.Second),
	}
	if maxAge < 0 {
		c.MaxAge = -1
	}
	return c
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
		if line = withoutSessionCookies(line); line != "" {
			out = append(out, line)
		}
	}
	if len(out) == 0 {
		delete(h, "Cookie")
		return
	}
	h["Cookie"] = out
}

// withoutSessionCookies is a Cookie line without the gateway's session
// cookies: "" when none other is left.
func withoutSessionCookies(line string) string {
	if !strings.Contains(line, cookiePrefix) {
		return line
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
	return b.String()
}

func isSessionCookie(name string) bool {
	return strings.HasPrefix(strings.TrimPrefix(name, "__Host-"), cookiePrefix)
}

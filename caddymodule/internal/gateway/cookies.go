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
// app would otherwise receive the others' sessions too. (The gate does the
// same for the usual single line without allocating: gatedCookies.)
func stripSessionCookies(h http.Header) {
	// Rewritten in place: the request's header slice is its own (the server
	// made it for this request).
	lines := h["Cookie"]
	out := lines[:0]
	for _, line := range lines {
		kept, n := cutSessionCookies(line)
		if n > 0 {
			kept = string(keptCookies(make([]byte, 0, n), line))
		}
		if kept != "" {
			out = append(out, kept)
		}
	}
	if len(out) == 0 {
		delete(h, "Cookie")
		return
	}
	h["Cookie"] = out
}

// cutSessionCookies is what is left of a Cookie line without the gateway's
// session cookies when that needs no new string: the line itself, or the
// run of it between the first and the last cookie kept, when no session
// cookie lies between them (n is 0 then; "" when nothing is left).
// Otherwise the kept cookies must be joined anew, in n bytes (keptCookies).
func cutSessionCookies(line string) (kept string, n int) {
	if !strings.Contains(line, cookiePrefix) {
		return line, 0
	}
	first, last := -1, 0 // where the kept cookies begin and end in line
	dropped, gap := false, false
	for at := 0; at <= len(line); {
		raw, part, session := nextCookie(line[at:])
		switch {
		case part == "":
		case session:
			dropped = true
		default:
			if n > 0 {
				n += len("; ")
			}
			n += len(part)
			begin := at + strings.Index(raw, part)
			if first < 0 {
				first = begin
			} else if dropped {
				gap = true
			}
			last, dropped = begin+len(part), false
		}
		at += len(raw) + 1
	}
	switch {
	case first < 0:
		return "", 0
	case !gap:
		return line[first:last], 0
	}
	return "", n
}

// keptCookies appends the cookies of line that are not the gateway's
// session cookies to dst, joined by "; ".
func keptCookies(dst []byte, line string) []byte {
	for at := 0; at <= len(line); {
		raw, part, session := nextCookie(line[at:])
		if part != "" && !session {
			if len(dst) > 0 {
				dst = append(dst, "; "...)
			}
			dst = append(dst, part...)
		}
		at += len(raw) + 1
	}
	return dst
}

// nextCookie reads the first cookie of line, for the two walks above,
// which must agree on every cookie: raw is it as written, up to the next
// ";" or the end, part it trimmed ("" for an empty one), session whether
// it is one of the gateway's session cookies.
func nextCookie(line string) (raw, part string, session bool) {
	raw, _, _ = strings.Cut(line, ";")
	part = strings.TrimSpace(raw)
	name, _, _ := strings.Cut(part, "=")
	return raw, part, part != "" && isSessionCookie(name)
}

func isSessionCookie(name string) bool {
	return strings.HasPrefix(strings.TrimPrefix(name, "__Host-"), cookiePrefix)
}

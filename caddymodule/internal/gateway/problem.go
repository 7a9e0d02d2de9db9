package gateway

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/portalgate/portalgate/caddymodule/internal/portal"
)

// Problem is a failure as people (a page) and API clients (JSON) see it,
// and an error: a flow returns one and the site answers with it. Messages
// are fixed text: nothing from the request, least of all a token, is ever
// echoed.
type Problem struct {
	Status int
	Code   string
	Title  string
	Detail string
	Hint   string
	// Reason names the failure in metrics and the audit log, where it can
	// be finer than Code (a client needs no more than "invalid_link").
	Reason string
	// allow is the Allow header of a 405.
	allow string
	// way is the way on a page offers first, besides the portal (none:
	// the portal alone).
	way wayOn
}

// wayOn is what a failure's page offers a person to do next.
type wayOn int

const (
	// toPortal, the default: go to the portal (its home, or its sign-in
	// form).
	_ wayOn = iota
	// signInAgain: a link or a session that does not work any more; a
	// new sign-in is the way on.
	signInAgain
	// tryAgain: the same page again, in a moment.
	tryAgain
)

// then is p with the way on its page offers first.
func (p *Problem) then(way wayOn) *Problem {
	p.way = way
	return p
}

func (p *Problem) Error() string { return p.Code + ": " + p.Detail }

// why is the failure's name for metrics and the audit log.
func (p *Problem) why() string {
	if p.Reason != "" {
		return p.Reason
	}
	return p.Code
}

// badRequest is a 400 whose detail says what is wrong with the input.
func badRequest(detail string) *Problem {
	return &Problem{Status: http.StatusBadRequest, Code: "bad_request", Title: "Bad request", Detail: detail}
}

// asProblem is err's Problem, if it is one.
func asProblem(err error) (*Problem, bool) {
	var p *Problem
	return p, errors.As(err, &p)
}

func newProblem(status int, code, title, detail, hint, reason string) *Problem {
	return &Problem{Status: status, Code: code, Title: title, Detail: detail, Hint: hint, Reason: reason}
}

var (
	problemNotFound         = newProblem(http.StatusNotFound, "not_found", "Not found", "There is nothing at this address.", "", "")
	problemMethod           = newProblem(http.StatusMethodNotAllowed, "method_not_allowed", "Method not allowed", "This address does not take that kind of request.", "", "")
	problemMalformed        = newProblem(http.StatusBadRequest, "invalid_link", "This link is not valid", "The sign-in link is incomplete or damaged.", "Copy the whole link from your message, or ask for a new one.", "malformed").then(signInAgain)
	problemSignature        = newProblem(http.StatusBadRequest, "invalid_link", "This link is not valid", "The sign-in link could not be verified.", "Ask for a new link.", "bad_signature").then(signInAgain)
	problemWrongApp         = newProblem(http.StatusForbidden, "wrong_app", "This link is for another app", "The sign-in link you opened belongs to a different app than this one.", "Open the link exactly as you received it.", "").then(signInAgain)
	problemExpired          = newProblem(http.StatusGone, "link_expired", "This link has expired", "Sign-in links work for a short time only, and this one is past it.", "Ask for a new link.", "expired").then(signInAgain)
	problemUsed             = newProblem(http.StatusGone, "link_used", "This link has already been used", "Each sign-in link works only once, and this one has been used.", "If you did not use it yourself, tell whoever sent it. Ask for a new link to sign in.", "used").then(signInAgain)
	problemBeforeStore      = newProblem(http.StatusGone, "link_predates_store", "This link can no longer be used", "The sign-in service has no record of this link: its records began again after the link was sent, so it cannot tell whether the link was used.", "Ask for a new link.", "before_store").then(signInAgain)
	problemCodeGone         = newProblem(http.StatusGone, "code_expired", "This code cannot be used", "The code is past its time, was typed wrong too often, or a newer e-mail replaced it.", "Ask for a new sign-in e-mail.", "code_gone").then(signInAgain)
	problemRevoked          = newProblem(http.StatusGone, "link_revoked", "This link has been revoked", "Whoever sent this sign-in link has withdrawn it.", "Ask for a new link.", "revoked").then(signInAgain)
	problemNoSession        = newProblem(http.StatusUnauthorized, "no_session", "You are not signed in", "You need to sign in before you can open this page.", "Open the sign-in link you were sent, or ask for a new one.", "").then(signInAgain)
	problemNotAllowed       = newProblem(http.StatusForbidden, "app_not_allowed", "You cannot open this app", "Your sign-in does not include this app.", "Ask whoever sent your link for access.", "")
	problemStore            = newProblem(http.StatusServiceUnavailable, "store_unavailable", "Sign-in is unavailable", "The sign-in service cannot reach its session store right now.", "Try again in a minute.", "").then(tryAgain)
	problemCSRF             = newProblem(http.StatusForbidden, "csrf_failed", "This form has expired", "The page you sent this from is not valid any more.", "Go back, reload the page and try again.", "").then(tryAgain)
	problemRateLimit        = newProblem(http.StatusTooManyRequests, "rate_limited", "Too many attempts", "There have been too many failed attempts from your network.", "Wait a minute and try again.", "").then(tryAgain)
	problemBadHeaders       = newProblem(http.StatusBadRequest, "bad_request", "Bad request", "The request declares identity headers as trailers.", "", "")
	problemAPIOff           = newProblem(http.StatusNotFound, "api_disabled", "Not found", "The link API is off: no api_key_hash is configured.", "", "")
	problemNoStaffAuth      = newProblem(http.StatusUnauthorized, "staff_sign_in_required", "Staff sign-in required", "The dashboard is for staff, and no staff sign-in came with this request.", "The site must put a sign-in such as basic_auth in front of /dashboard.", "")
	problemNotStaff         = newProblem(http.StatusForbidden, "not_staff", "Not a staff member", "You are signed in, but not listed as staff of this portal.", "Ask an agency admin to add you.", "")
	problemOtherTenant      = newProblem(http.StatusForbidden, "other_tenant", "Another sub-account's", "This portal acts for its own sub-account only.", "Use that sub-account's portal.", "")
	problemOutboxAgencyOnly = newProblem(http.StatusForbidden, "agency_only", "Agency users only", "The outbox holds every location's e-mail: only agency users can read it.", "Ask an agency user.", "")
	problemAgencyOnly       = newProblem(http.StatusForbidden, "agency_only", "Agency users only", "Only agency users can change the custom links.", "Ask an agency user to make the change.", "")
	problemBadForm          = newProblem(http.StatusBadRequest, "bad_request", "Bad request", "The form sent does not ask for anything this page does.", "Go back, reload the page and try again.", "")
	problemAPIKey           = newProblem(http.StatusUnauthorized, "invalid_api_key", "Unauthorized", "A valid API key is required: Authorization: Bearer <key>.", "", "")
	problemNoSuchCall       = newProblem(http.StatusNotFound, "not_found", "Not found", "no such API call", "", "")
)

// tooMany refuses a client past its failure budget for wait.
type tooMany struct{ wait time.Duration }

func (e tooMany) Error() string { return problemRateLimit.Error() }

// wantsHTML tells a browser (which asks for text/html) from an API client.
func wantsHTML(r *http.Request) bool {
	return strings.Contains(r.Header.Get("Accept"), "text/html")
}

// noStore marks a gateway response as private and never cached, and keeps
// the address (which may hold a token) out of any Referer.
func noStore(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Content-Type-Options", "nosniff")
}

// answer finishes a request whose flow failed: a Problem as it says, a
// rate limit with Retry-After, anything else as a store failure (logged,
// never shown).
func (s *Site) answer(w http.ResponseWriter, r *http.Request, err error) {
	var limited tooMany
	if errors.As(err, &limited) {
		w.Header().Set("Retry-After", strconv.Itoa(int(limited.wait.Round(time.Second)/time.Second)))
		s.fail(w, r, problemRateLimit)
		return
	}
	p, ok := asProblem(err)
	if !ok {
		s.g.log.Error("serving "+r.URL.Path, zap.String("app", s.app.name), zap.Error(err))
		p = problemStore
	}
	s.fail(w, r, p)
}

// fail answers with p: a small page for people, JSON for everything else.
func (s *Site) fail(w http.ResponseWriter, r *http.Request, p *Problem) {
	noStore(w)
	if p.allow != "" {
		w.Header().Set("Allow", p.allow)
	}
	if wantsHTML(r) {
		s.page(w, p.Status, "notice.html", portal.Notice{Portal: s.g.look, Title: p.Title, Message: p.Detail, Hint: p.Hint,
			Actions: s.waysOn(r, p.way), Support: s.g.cfg.Mails.Brand().Support})
		return
	}
	writeJSON(w, p.Status, map[string]string{"error": p.Detail, "code": p.Code})
}

// waysOn are the links a page about a failure offers, so that none is a
// dead end: first what way names (a new sign-in, the same page again), then
// the portal, which shows its home to a signed-in person and its sign-in
// form to anyone else. Never a link that holds a token, and never one back
// to the page itself.
func (s *Site) waysOn(r *http.Request, way wayOn) []portal.Action {
	var out []portal.Action
	switch {
	case way == signInAgain && s.g.signIns != nil:
		to := s.g.portal.origin + signInPath
		if !s.isPortal() {
			to += "?" + url.Values{"app": {s.app.name}}.Encode()
		}
		out = append(out, portal.Action{URL: to, Text: "Sign in with your e-mail"})
	case way == tryAgain && (r.Method == http.MethodGet || r.URL.Path == signInPath):
		// A form's address shows the form again; a GET is the page itself,
		// on this site's own origin (a path such as //evil.example stays
		// here), and without its query when that holds a secret.
		again := s.app.origin + r.URL.EscapedPath()
		if q := r.URL.Query(); r.URL.RawQuery != "" && !q.Has("token") && !q.Has("ticket") {
			again += "?" + r.URL.RawQuery
		}
		out = append(out, portal.Action{URL: again, Text: "Try again"})
	}
	if strings.HasPrefix(r.URL.Path, DashboardPath) && r.Method != http.MethodGet {
		out = append(out, portal.Action{URL: DashboardPath, Text: "Back to the dashboard"})
	}
	// The portal's home signed out, without sign-in by e-mail, has no way
	// on but the support address: a link to itself would be none.
	if !s.isPortal() || r.URL.Path != "/" || way != signInAgain || len(out) > 0 {
		out = append(out, portal.Action{URL: s.g.portal.origin + "/", Text: "Go to your portal"})
	}
	return out
}

// page renders a template as a complete HTML response.
func (s *Site) page(w http.ResponseWriter, status int, name string, data any) {
	s.pageWithCSP(w, status, name, data, s.csp)
}

// pageWithCSP is page with its own Content-Security-Policy.
func (s *Site) pageWithCSP(w http.ResponseWriter, status int, name string, data any, csp string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Security-Policy", csp)
	w.WriteHeader(status)
	if err := portal.Render(w, name, data); err != nil {
		// The status is sent; all that is left is to say so in the log.
		s.g.log.Error("rendering page", zap.String("page", name), zap.Error(err))
	}
}

// writeJSON answers with v. Once the status is sent, a client that hung up
// can be told nothing more: the write's error has nowhere to go.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

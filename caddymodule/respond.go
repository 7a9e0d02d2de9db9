package caddymodule

import (
	"encoding/json"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"go.uber.org/zap"

	"github.com/portalgate/portalgate/caddymodule/internal/portal"
)

// problem is a failure as people (a page) and API clients (JSON) see it.
// Messages are fixed text: nothing from the request, least of all a token,
// is ever echoed.
type problem struct {
	status int
	code   string
	title  string
	detail string
	hint   string
	// reason names the failure in metrics and the audit log, where it can
	// be finer than code (a client needs no more than "invalid_link").
	reason string
}

// why is the failure's name for metrics and the audit log.
func (p problem) why() string {
	if p.reason != "" {
		return p.reason
	}
	return p.code
}

var (
	problemNotFound    = problem{http.StatusNotFound, "not_found", "Not found", "There is nothing at this address.", "", ""}
	problemMethod      = problem{http.StatusMethodNotAllowed, "method_not_allowed", "Method not allowed", "This address does not take that kind of request.", "", ""}
	problemMalformed   = problem{http.StatusBadRequest, "invalid_link", "This link is not valid", "The sign-in link is incomplete or damaged.", "Copy the whole link from your message, or ask for a new one.", "malformed"}
	problemSignature   = problem{http.StatusBadRequest, "invalid_link", "This link is not valid", "The sign-in link could not be verified.", "Ask for a new link.", "bad_signature"}
	problemWrongApp    = problem{http.StatusForbidden, "wrong_app", "This link is for another app", "The sign-in link you opened belongs to a different app than this one.", "Open the link exactly as you received it.", ""}
	problemExpired     = problem{http.StatusGone, "link_expired", "This link has expired", "Sign-in links work for a short time only, and this one is past it.", "Ask for a new link.", "expired"}
	problemUsed        = problem{http.StatusGone, "link_used", "This link has already been used", "Each sign-in link works only once, and this one has been used.", "If you did not use it yourself, tell whoever sent it. Ask for a new link to sign in.", "used"}
	problemRevoked     = problem{http.StatusGone, "link_revoked", "This link has been revoked", "Whoever sent this sign-in link has withdrawn it.", "Ask for a new link.", "revoked"}
	problemNoSession   = problem{http.StatusUnauthorized, "no_session", "You are not signed in", "You need to sign in before you can open this page.", "Open the sign-in link you were sent, or ask for a new one.", ""}
	problemNotAllowed  = problem{http.StatusForbidden, "app_not_allowed", "You cannot open this app", "Your sign-in does not include this app.", "Ask whoever sent your link for access.", ""}
	problemStore       = problem{http.StatusServiceUnavailable, "store_unavailable", "Sign-in is unavailable", "The sign-in service cannot reach its session store right now.", "Try again in a minute.", ""}
	problemCSRF        = problem{http.StatusForbidden, "csrf_failed", "This form has expired", "The page you sent this from is not valid any more.", "Go back, reload the page and try again.", ""}
	problemRateLimit   = problem{http.StatusTooManyRequests, "rate_limited", "Too many attempts", "There have been too many failed attempts from your network.", "Wait a minute and try again.", ""}
	problemBadHeaders  = problem{http.StatusBadRequest, "bad_request", "Bad request", "The request declares identity headers as trailers.", "", ""}
	problemAPIOff      = problem{http.StatusNotFound, "api_disabled", "Not found", "The link API is off: no api_key_hash is configured.", "", ""}
	problemNoStaffAuth = problem{http.StatusUnauthorized, "staff_sign_in_required", "Staff sign-in required", "The dashboard is for staff, and no staff sign-in came with this request.", "The site must put a sign-in such as basic_auth in front of /dashboard.", ""}
	problemNotStaff    = problem{http.StatusForbidden, "not_staff", "Not a staff member", "You are signed in, but not listed as staff of this portal.", "Ask an agency admin to add you.", ""}
	problemAgencyOnly  = problem{http.StatusForbidden, "agency_only", "Agency users only", "Only agency users can change the custom links.", "Ask an agency user to make the change.", ""}
	problemBadForm     = problem{http.StatusBadRequest, "bad_request", "Bad request", "The form sent does not ask for anything this page does.", "Go back, reload the page and try again.", ""}
	problemAPIKey      = problem{http.StatusUnauthorized, "invalid_api_key", "Unauthorized", "A valid API key is required: Authorization: Bearer <key>.", "", ""}
)

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

// fail answers with p: a small page for people, JSON for everything else.
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, p problem) error {
	return h.failWith(w, r, p, "", "")
}

// failWith is fail with a way on for people (a link and its text).
func (h *Handler) failWith(w http.ResponseWriter, r *http.Request, p problem, linkURL, linkText string) error {
	noStore(w)
	if p.status == http.StatusMethodNotAllowed {
		w.Header().Set("Allow", allowFor(r.URL.Path))
	}
	if wantsHTML(r) {
		return h.page(w, p.status, "notice.html", portal.Notice{
			Title: p.title, Message: p.detail, Hint: p.hint, LinkURL: linkURL, LinkText: linkText,
		})
	}
	return writeJSON(w, p.status, map[string]string{"error": p.detail, "code": p.code})
}

func allowFor(path string) string {
	switch {
	case path == magicPath:
		return "GET, HEAD, POST, OPTIONS"
	case path == logoutPath:
		return "GET, HEAD, POST"
	case strings.HasPrefix(path, launchPrefix):
		return http.MethodGet
	case path == dashboardPath+"open" || path == dashboardPath+"revoke":
		return http.MethodPost
	case path == dashboardPath+"generate" || path == dashboardPath+"settings/links":
		return "GET, HEAD, POST"
	}
	return "GET, HEAD"
}

// tooMany refuses a client past its failure budget.
func (h *Handler) tooMany(w http.ResponseWriter, r *http.Request, wait time.Duration) error {
	w.Header().Set("Retry-After", strconv.Itoa(int(wait.Round(time.Second)/time.Second)))
	return h.fail(w, r, problemRateLimit)
}

// page renders a template as a complete HTML response.
func (h *Handler) page(w http.ResponseWriter, status int, name string, data any) error {
	return h.pageWithCSP(w, status, name, data, h.csp)
}

// pageWithCSP is page with its own Content-Security-Policy.
func (h *Handler) pageWithCSP(w http.ResponseWriter, status int, name string, data any, csp string) error {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Security-Policy", csp)
	w.WriteHeader(status)
	if err := portal.Render(w, name, data); err != nil {
		// The status is sent; all that is left is to say so in the log.
		h.logger.Error("rendering page", zap.String("page", name), zap.Error(err))
	}
	return nil
}

func writeJSON(w http.ResponseWriter, status int, v any) error {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	return json.NewEncoder(w).Encode(v)
}

// clientIP is the client's address as Caddy resolved it: the connection's
// peer, or a forwarded address only from a configured trusted proxy. A raw
// X-Forwarded-For is never read here.
func clientIP(r *http.Request) string {
	if ip, ok := caddyhttp.GetVar(r.Context(), caddyhttp.ClientIPVarKey).(string); ok && ip != "" {
		return ip
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

func redeemKey(ip string) string { return "redeem|" + ip }

func apiKeyKey(ip string) string { return "apikey|" + ip }

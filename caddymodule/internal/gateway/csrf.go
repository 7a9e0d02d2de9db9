package gateway

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// csrfToken binds a form to what it acts on (purpose and binding, e.g. a
// session id or a link id): a page of another site cannot know it.
func (g *Gateway) csrfToken(purpose, binding string) string {
	mac := hmac.New(sha256.New, g.cfg.CSRFKey)
	mac.Write([]byte(purpose + "\x00" + binding))
	return base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

// checkCSRF compares a submitted token with the expected one in constant time.
func (g *Gateway) checkCSRF(purpose, binding, got string) bool {
	return got != "" && hmac.Equal([]byte(got), []byte(g.csrfToken(purpose, binding)))
}

// signOutTicket lets the portal end a user's portal session in the browser
// that just signed out of an app: it names the user and when it was issued,
// and is good for a minute.
func (g *Gateway) signOutTicket(userID string) string {
	at := strconv.FormatInt(g.now().UnixMicro(), 10)
	return base64.RawURLEncoding.EncodeToString([]byte(userID)) + "." + at + "." + g.csrfToken("signout", userID+"\x00"+at)
}

// checkSignOutTicket returns the user a good, fresh ticket names, and when
// it was issued: only sessions of before then may it end.
func (g *Gateway) checkSignOutTicket(ticket string) (string, time.Time, bool) {
	enc, rest, _ := strings.Cut(ticket, ".")
	at, mac, _ := strings.Cut(rest, ".")
	user, err := base64.RawURLEncoding.DecodeString(enc)
	us, perr := strconv.ParseInt(at, 10, 64)
	issued := time.UnixMicro(us)
	if err != nil || perr != nil || !g.now().Before(issued.Add(time.Minute)) ||
		!g.checkCSRF("signout", string(user)+"\x00"+at, mac) {
		return "", time.Time{}, false
	}
	return string(user), issued, true
}

// sameOrigin reports whether a state-changing request comes from this app's
// own pages. Browsers send Origin (or at least Sec-Fetch-Site) with a POST; a
// client that sends neither is not a browser, and not a CSRF vector. Our
// pages set Referrer-Policy: no-referrer, under which a browser sends
// "Origin: null" even from the same origin: Sec-Fetch-Site decides then.
func (s *Site) sameOrigin(r *http.Request) bool {
	o := r.Header.Get("Origin")
	if o != "" && o != "null" {
		return o == s.app.origin
	}
	if f := r.Header.Get("Sec-Fetch-Site"); f != "" {
		return f == "same-origin" || f == "none"
	}
	// An opaque origin (a sandboxed frame, a data: page) with nothing else.
	return o == ""
}

// formValue reads one field of a small form body.
func formValue(w http.ResponseWriter, r *http.Request, name string) string {
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	return r.PostFormValue(name)
}

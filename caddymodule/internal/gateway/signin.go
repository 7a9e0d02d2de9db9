package gateway

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/portalgate/portalgate/caddymodule/internal/backlog"
	"github.com/portalgate/portalgate/caddymodule/internal/link"
	"github.com/portalgate/portalgate/caddymodule/internal/mail"
	"github.com/portalgate/portalgate/caddymodule/internal/portal"
	"github.com/portalgate/portalgate/caddymodule/internal/ratelimit"
	"github.com/portalgate/portalgate/caddymodule/internal/session"
	"github.com/portalgate/portalgate/caddymodule/internal/store"
)

// Who may ask for a sign-in e-mail.
const (
	// SignInDirectory: the contacts of the directory, found by address.
	SignInDirectory = "directory"
	// SignInOpen: anyone; an unknown address becomes a new contact.
	SignInOpen = "open"
	// SignInOff: nobody; the portal has no sign-in form.
	SignInOff = "off"
)

// Paths of the sign-in flow, on the portal.
const (
	signInPath     = gatewayPrefix + "signin"
	signInCodePath = signInPath + "/code"
)

const (
	// DefaultSignInTTL is the life of a sign-in e-mail's link and code.
	DefaultSignInTTL = 10 * time.Minute
	// codeTries is how many codes a sign-in takes before it dies.
	codeTries = 5
	// signInsPerAddress an hour is how many e-mails one address may be
	// sent: past it the answer is the same, and nothing is sent.
	signInsPerAddress = 5
	// signInsPerClient a minute is how many sign-ins one client IP may ask
	// for.
	signInsPerClient = 10
	// signInBacklog bounds the sign-ins waiting to be worked on.
	signInBacklog = 1000
	// codeFailuresPerAddress wrong codes in codeFailureWindow, counted in
	// the store for every instance, end the codes of an address until the
	// window is out (its links still work): at most that many guesses of
	// one in a million, whatever the e-mails and browsers they come through.
	codeFailuresPerAddress = 10
	codeFailureWindow      = 24 * time.Hour
)

// signInRequest is one asked-for sign-in e-mail, worked on behind the
// answer so that the answer is the same, at the same speed, whether the
// address is a contact or not.
type signInRequest struct {
	address string
	// browser keys the code to the asking browser; "" for an API client,
	// whose e-mail then has no code.
	browser   string
	app, next string
	// g is the gateway of the portal it was asked on (a tenant's).
	g *Gateway
}

// signIns works on the asked-for sign-ins.
type signIns struct {
	mode       string
	ttl        time.Duration
	backlog    *backlog.Backlog[signInRequest]
	perAddress *ratelimit.Limiter
	perClient  *ratelimit.Limiter
}

// startSignIns starts the sign-in workers, when the portal can send mail
// and the configuration lets anyone ask.
func (g *Gateway) startSignIns() error {
	mode := g.cfg.SignIn
	switch mode {
	case "":
		mode = SignInDirectory
	case SignInDirectory, SignInOpen, SignInOff:
	default:
		return fmt.Errorf("portalgate: signin must be directory, open or off, not %q", mode)
	}
	if mode == SignInOff || g.mail == nil {
		return nil
	}
	if g.cfg.SignIns == nil {
		return errors.New("portalgate: sign-in by e-mail needs a store that keeps sign-ins")
	}
	ttl := g.signInTTL()
	if ttl < time.Minute || ttl > g.cfg.Codec.MaxTTL {
		return fmt.Errorf("portalgate: signin_ttl %s must be between 1m and link_max_ttl %s", ttl, g.cfg.Codec.MaxTTL)
	}
	perAddress, err := ratelimit.New(signInsPerAddress, time.Hour, 100_000, g.now)
	if err != nil {
		return err
	}
	// rate_limit off turns off every limit per client IP; an address's
	// limit stays: it guards a mailbox, not the gateway.
	var perClient *ratelimit.Limiter
	if g.cfg.Limiter != nil {
		if perClient, err = ratelimit.New(signInsPerClient, time.Minute, 100_000, g.now); err != nil {
			return err
		}
	}
	g.signIns = &signIns{mode: mode, ttl: ttl, perAddress: perAddress, perClient: perClient,
		backlog: backlog.New(signInBacklog, 2, g.startSignIn)}
	return nil
}

// closeSignIns lets the workers finish what was asked until ctx ends, then
// drops the rest (counted).
func (g *Gateway) closeSignIns(ctx context.Context) {
	if g.signIns != nil {
		g.signIns.backlog.Close(ctx)
	}
}

// askSignIn queues a sign-in; a full backlog, or a closing config, drops
// it (counted), as a full mail queue would.
func (g *Gateway) askSignIn(req signInRequest) {
	req.g = g
	if g.signIns.backlog.Add(req, nil) != nil {
		g.metrics.SignIns.WithLabelValues("dropped").Inc()
	}
}

// startSignIn sends the sign-in e-mail a request asked for, if the address
// may sign in: to the contact's own address, which the one typed only
// matches.
func (g *Gateway) startSignIn(stop context.Context, req signInRequest) {
	if stop.Err() != nil {
		// The config closed before this one's turn came.
		g.metrics.SignIns.WithLabelValues("dropped").Inc()
		return
	}
	ctx, cancel := context.WithTimeout(stop, 30*time.Second)
	defer cancel()
	result, err := req.g.signInFor(ctx, req)
	if err != nil {
		g.log.Error("starting a sign-in", zap.Error(err))
		result = "store_error"
	}
	g.metrics.SignIns.WithLabelValues(result).Inc()
}

// signInFor does startSignIn's work and names its result for the metric.
func (g *Gateway) signInFor(ctx context.Context, req signInRequest) (string, error) {
	key := store.AddressKey(req.address)
	if _, blocked := g.signIns.perAddress.Spend(key); blocked {
		return "address_limited", g.decoySignIn(ctx, req.browser, key)
	}
	contacts, err := g.cfg.Directory.ContactsByEmail(ctx, req.address)
	if err != nil {
		return "", err
	}
	// The same address may be a contact of two tenants, as two people:
	// this portal signs in its own.
	contacts = slices.DeleteFunc(contacts, func(c store.Contact) bool { return !g.ownsLocation(c.Location) })
	var c store.Contact
	switch {
	case len(contacts) > 0:
		c = contacts[0]
	case g.signIns.mode == SignInOpen:
		id, err := link.NewID()
		if err != nil {
			return "", err
		}
		c = store.Contact{ID: "c_" + id[:16], Email: req.address, Location: g.tenant}
	default:
		return "unknown", g.decoySignIn(ctx, req.browser, key)
	}
	if _, err := g.sendSignIn(ctx, c, req.browser, req.app, req.next, "signin"); err != nil {
		if errors.Is(err, mail.ErrQueueFull) || errors.Is(err, mail.ErrClosed) {
			return "mail_failed", nil
		}
		return "", err
	}
	return "sent", nil
}

// signInTTL is the life of a sign-in e-mail's link and code.
func (g *Gateway) signInTTL() time.Duration {
	if g.cfg.SignInTTL > 0 {
		return g.cfg.SignInTTL
	}
	return DefaultSignInTTL
}

// sendSignIn mails contact c a sign-in e-mail: a portal link that goes on
// to app and next, and, for a browser that asked, a code bound to it. It
// voids the address's last sign-in. by names who asked (the audit log).
// The error of a full or closed mail queue comes after the link is minted.
func (g *Gateway) sendSignIn(ctx context.Context, c store.Contact, browser, app, next, by string) (MintResponse, error) {
	user := contactUser(c)
	path := "/"
	if t := g.apps[app]; t != nil && t.name != PortalName {
		path = "/?" + url.Values{"app": {t.name}, "next": {next}}.Encode()
	}
	ttl := g.signInTTL()
	lr := link.Request{App: PortalName, User: user, Path: path, TTL: ttl, Apps: g.AppNames()}
	if err := g.claimID(ctx, user); err != nil {
		return MintResponse{}, err
	}
	l, err := g.issue(ctx, by, lr)
	if err != nil {
		return MintResponse{}, err
	}
	if err := g.remember(ctx, by, l, store.DeliverySending); err != nil {
		return MintResponse{}, err
	}
	code := ""
	if browser != "" {
		if code, err = newCode(); err != nil {
			return MintResponse{}, err
		}
	} else {
		// Nobody's browser asked (an API client, staff): no code, and the
		// sign-in is kept under a key nobody holds, to void the last one.
		browser = "nobrowser-" + l.ID
	}
	replaced, err := g.cfg.SignIns.PutSignIn(ctx, store.SignIn{
		Browser: browser, Address: store.AddressKey(c.Email), CodeHash: g.codeHash(browser, code),
		Link: GrantOf(l),
	})
	if err != nil {
		return MintResponse{}, err
	}
	if replaced != "" {
		if err := g.cfg.Store.RevokeLink(ctx, replaced); err != nil && !errors.Is(err, store.ErrNotFound) {
			return MintResponse{}, fmt.Errorf("voiding the address's last sign-in link: %w", err)
		}
	}
	resp := MintResponse{URL: g.portal.magicURL(l.Token), ID: l.ID, ExpiresAt: l.ExpiresAt, Delivery: deliveryFailed}
	r, err := g.cfg.Mails.SignIn(portal.SignInMail{Name: c.Name, Code: code,
		URL: resp.URL, Minutes: int(ttl / time.Minute)})
	if err != nil {
		return MintResponse{}, err
	}
	if err := g.mailLink("signin", l, c.Name, c.Email, r); err != nil {
		return resp, err
	}
	resp.Delivery = deliveryQueued
	return resp, nil
}

// LoginEmail mails contact id a sign-in e-mail now (staff's Login e-mail):
// its link signs in from any browser, and voids the last one.
func (g *Gateway) LoginEmail(ctx context.Context, id, by string) (MintResponse, error) {
	t, err := g.contactsTenant(ctx, id)
	if err != nil {
		return MintResponse{}, err
	}
	return t.loginEmail(ctx, id, by)
}

func (g *Gateway) loginEmail(ctx context.Context, id, by string) (MintResponse, error) {
	c, _, err := g.mailableContact(ctx, id)
	if err != nil {
		return MintResponse{}, err
	}
	resp, err := g.sendSignIn(ctx, c, "", "", "", by)
	if errors.Is(err, mail.ErrQueueFull) || errors.Is(err, mail.ErrClosed) {
		return resp, nil
	}
	return resp, err
}

// decoySignIn gives a browser that asked for an address that gets no
// e-mail (unknown, or asked too often) a sign-in whose code never matches:
// its codes are then answered, and counted against the address, as any
// other's, so that the code step tells nothing the first page did not.
func (g *Gateway) decoySignIn(ctx context.Context, browser, address string) error {
	if browser == "" {
		return nil
	}
	id, err := link.NewID()
	if err != nil {
		return err
	}
	hash := make([]byte, 32)
	if _, err := rand.Read(hash); err != nil {
		return err
	}
	_, err = g.cfg.SignIns.PutSignIn(ctx, store.SignIn{Browser: browser, Address: address, CodeHash: hash, Decoy: true,
		Link: store.Grant{ID: "decoy-" + id, Tenant: g.tenant, Expires: g.now().Add(g.signInTTL() + link.Leeway)}})
	return err
}

// newCode is a uniformly random 6-digit code.
func newCode() (string, error) {
	n, err := rand.Int(rand.Reader, big.NewInt(1_000_000))
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("%06d", n.Int64()), nil
}

// codeHash keys a code to its browser: the store keeps only this.
func (g *Gateway) codeHash(browser, code string) []byte {
	return []byte(g.csrfToken("signin-code", browser+"\x00"+code))
}

// browserKey is what the store knows a browser's sign-in nonce by.
func browserKey(nonce string) string {
	sum := sha256.Sum256([]byte(nonce))
	return hex.EncodeToString(sum[:])
}

// signInCookie is the portal's cookie holding the browser's sign-in nonce:
// the forms' CSRF tokens and the code are bound to it.
func (s *Site) signInCookie() string { return s.app.cookie + "-signin" }

// signInNonce returns the browser's sign-in nonce, making one (and setting
// its cookie) when it has none.
func (s *Site) signInNonce(w http.ResponseWriter, r *http.Request) (string, error) {
	if n := cookieValue(r.Header, s.signInCookie()); len(n) == 43 {
		return n, nil
	}
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	n := base64.RawURLEncoding.EncodeToString(b)
	s.keepSignInNonce(w, n)
	return n, nil
}

// keepSignInNonce (re)sets the nonce's cookie to outlive the code of a
// sign-in asked for now, with an hour to spare for the form.
func (s *Site) keepSignInNonce(w http.ResponseWriter, nonce string) {
	http.SetCookie(w, s.cookie(s.signInCookie(), nonce, s.g.signInTTL()+time.Hour))
}

// signInForm shows the sign-in form; a browser signed in here already goes
// on to where it was going.
func (s *Site) signInForm(w http.ResponseWriter, r *http.Request, _ routeHit) error {
	if s.g.signIns == nil {
		return problemNotFound
	}
	q := r.URL.Query()
	if _, _, err := s.session(r); err == nil {
		noStore(w)
		http.Redirect(w, r, s.app.origin+"/?"+url.Values{"app": {q.Get("app")}, "next": {q.Get("next")}}.Encode(), http.StatusSeeOther) //nolint:gosec // configured origins and our own values: the host only chose the site
		return nil
	}
	nonce, err := s.signInNonce(w, r)
	if err != nil {
		return err
	}
	noStore(w)
	s.page(w, http.StatusOK, "signin.html", s.signInData(nonce, q.Get("app"), q.Get("next"), "", ""))
	return nil
}

func (s *Site) signInData(nonce, app, next, email, problem string) portal.SignIn {
	if s.g.apps[app] == nil || app == PortalName {
		app, next = "", ""
	}
	return portal.SignIn{Portal: s.g.look, Action: signInPath, CSRF: s.g.csrfToken("signin", nonce),
		App: app, Next: next, Email: email, Error: problem}
}

// askForSignIn takes an address and answers the same whatever it is: a
// page that asks for the code (a browser), or 202 (an API client).
func (s *Site) askForSignIn(w http.ResponseWriter, r *http.Request, _ routeHit) error {
	if s.g.signIns == nil {
		return problemNotFound
	}
	ip := s.g.clientIP(r)
	if ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); ct == "application/json" {
		// A browser cannot send JSON across sites without asking first
		// (CORS), so this needs no CSRF token; it has no code either.
		var body struct {
			Email string `json:"email"`
		}
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 16<<10))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&body); err != nil {
			return badRequest(`the body must be {"email": "..."}`)
		}
		address, err := mail.ParseEmail(body.Email)
		if err != nil {
			return badRequest(err.Error())
		}
		if wait, blocked := s.g.signIns.perClient.Spend(clientKey(ip)); blocked {
			return tooMany{wait}
		}
		s.g.askSignIn(signInRequest{address: address})
		noStore(w)
		writeJSON(w, http.StatusAccepted, map[string]string{"status": "sent"})
		return nil
	}
	nonce := cookieValue(r.Header, s.signInCookie())
	if !s.sameOrigin(r) || nonce == "" || !s.g.checkCSRF("signin", nonce, formValue(w, r, "csrf")) {
		return problemCSRF
	}
	app, next := r.PostFormValue("app"), r.PostFormValue("next")
	address, err := mail.ParseEmail(r.PostFormValue("email"))
	if err != nil {
		noStore(w)
		s.page(w, http.StatusBadRequest, "signin.html", s.signInData(nonce, app, next, r.PostFormValue("email"),
			"That is not an e-mail address: check it and try again."))
		return nil
	}
	if wait, blocked := s.g.signIns.perClient.Spend(clientKey(ip)); blocked {
		return tooMany{wait}
	}
	if s.g.apps[app] == nil {
		app, next = "", ""
	}
	s.g.askSignIn(signInRequest{address: address, browser: browserKey(nonce), app: app, next: next})
	s.keepSignInNonce(w, nonce)
	noStore(w)
	s.page(w, http.StatusOK, "signin_code.html", s.codeData(nonce, app, next, ""))
	return nil
}

func (s *Site) codeData(nonce, app, next, problem string) portal.SignInCode {
	again := signInPath
	if app != "" {
		again += "?" + url.Values{"app": {app}, "next": {next}}.Encode()
	}
	return portal.SignInCode{Portal: s.g.look, Action: signInCodePath, CSRF: s.g.csrfToken("signin-code", nonce), Again: again,
		Error: problem, Minutes: int(s.g.signIns.ttl / time.Minute)}
}

// signInWithCode signs in the browser that asked, with the code of its
// e-mail: the e-mail's link is spent, as opening it would.
func (s *Site) signInWithCode(w http.ResponseWriter, r *http.Request, _ routeHit) error {
	if s.g.signIns == nil {
		return problemNotFound
	}
	ip := s.g.clientIP(r)
	nonce := cookieValue(r.Header, s.signInCookie())
	if !s.sameOrigin(r) || nonce == "" || !s.g.checkCSRF("signin-code", nonce, formValue(w, r, "csrf")) {
		return problemCSRF
	}
	if wait, blocked := s.g.cfg.Limiter.Blocked(signInKey(ip)); blocked {
		return tooMany{wait}
	}
	code := strings.Join(strings.Fields(r.PostFormValue("code")), "")
	browser := browserKey(nonce)
	ctx := context.WithoutCancel(r.Context())
	si, err := s.g.cfg.SignIns.TrySignIn(ctx, browser, codeTries)
	if errors.Is(err, store.ErrNotFound) {
		s.g.metrics.SignIns.WithLabelValues("code_unknown").Inc()
		return problemCodeGone
	}
	if err != nil {
		return err
	}
	// An address whose codes were guessed at too often takes no code,
	// whichever e-mail or browser it comes through, until the day is out.
	failures, err := s.g.cfg.SignIns.CodeFailures(ctx, si.Address)
	if err != nil {
		return err
	}
	if failures >= codeFailuresPerAddress {
		return s.g.endGuessedSignIn(ctx, browser)
	}
	// A sign-in asked on another tenant's portal is not this one's: its
	// code is wrong here, answered as any wrong code is.
	if !hmac.Equal(s.g.codeHash(browser, code), si.CodeHash) || len(code) != 6 || si.Link.Tenant != s.g.tenant {
		s.g.metrics.SignIns.WithLabelValues("code_wrong").Inc()
		s.g.audit.codeRejected(si.Link.User.ID, si.Link.ID, ip, si.Tries)
		n, err := s.g.cfg.SignIns.AddCodeFailure(ctx, si.Address, s.g.now().Add(codeFailureWindow))
		if err != nil {
			return err
		}
		if wait, blocked := s.g.cfg.Limiter.Spend(signInKey(ip)); blocked {
			return tooMany{wait}
		}
		if n >= codeFailuresPerAddress {
			return s.g.endGuessedSignIn(ctx, browser)
		}
		if si.Tries >= codeTries {
			return problemCodeGone
		}
		noStore(w)
		left := codeTries - si.Tries
		s.page(w, http.StatusBadRequest, "signin_code.html", s.codeData(nonce, "", "",
			fmt.Sprintf("That code is not right. You can try %d more %s.", left, plural(left, "time", "times"))))
		return nil
	}
	spend := store.Spend{ID: si.Link.ID, UserID: si.Link.User.ID, Expires: si.Link.Expires}
	created, _, err := s.g.cfg.Sessions.Redeem(ctx, spend, s.g.tenant, PortalName)
	var unsettled *session.Unsettled
	switch {
	case errors.Is(err, store.ErrLinkUsed):
		return problemUsed
	case spendRefusal(err) != nil:
		return spendRefusal(err)
	case errors.As(err, &unsettled):
		http.SetCookie(w, s.cookie(s.app.cookie, unsettled.SessionID, s.g.cfg.SessionTTL))
		return problemStore
	case err != nil:
		return err
	}
	if err := s.g.cfg.SignIns.EndSignIn(ctx, browser); err != nil {
		s.g.log.Error("ending a used sign-in", zap.Error(err))
	}
	s.endReplacedSession(ctx, r)
	s.g.metrics.SignIns.WithLabelValues("code_ok").Inc()
	s.g.audit.linkRedeemed(PortalName, created.User.ID, si.Link.ID, created.ID, ip)
	http.SetCookie(w, s.cookie(s.app.cookie, created.ID, s.g.cfg.SessionTTL))
	http.SetCookie(w, s.cookie(s.signInCookie(), "", -1))
	noStore(w)
	http.Redirect(w, r, s.app.origin+si.Link.Path, http.StatusSeeOther) //nolint:gosec // origin from config, path built by sendSignIn
	return nil
}

// endGuessedSignIn ends the sign-in of a browser whose address's codes
// were guessed at too often, and says the code is gone.
func (g *Gateway) endGuessedSignIn(ctx context.Context, browser string) error {
	if err := g.cfg.SignIns.EndSignIn(ctx, browser); err != nil {
		return err
	}
	g.metrics.SignIns.WithLabelValues("address_guessed").Inc()
	return problemCodeGone
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

func signInKey(ip string) string { return "signin|" + clientKey(ip) }

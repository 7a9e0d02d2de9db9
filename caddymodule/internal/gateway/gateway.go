// Package gateway is the HTTP product: magic-link redemption, the gate in
// front of every app, the portal home and launches, the link API and the
// staff dashboard. It is plain net/http and imports nothing of Caddy: the
// caddymodule package builds a Config from the Caddyfile and hands each
// site's requests to a Site.
package gateway

import (
	"cmp"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/portalgate/portalgate/caddymodule/internal/assertion"
	"github.com/portalgate/portalgate/caddymodule/internal/link"
	"github.com/portalgate/portalgate/caddymodule/internal/mail"
	"github.com/portalgate/portalgate/caddymodule/internal/portal"
	"github.com/portalgate/portalgate/caddymodule/internal/ratelimit"
	"github.com/portalgate/portalgate/caddymodule/internal/session"
	"github.com/portalgate/portalgate/caddymodule/internal/store"
)

// PortalName is the name of the portal itself among the apps.
const PortalName = "portal"

const (
	// launchTTL is the life of the link the portal mints to move a signed-in
	// user into an app: it is used at once, by a redirect.
	launchTTL = time.Minute
	// AssertionTTL is the life of a signed identity assertion.
	AssertionTTL = time.Minute
	// linkRecordKeep is how long the dashboard lists a link after it expired.
	linkRecordKeep = 7 * 24 * time.Hour
	// launchesPerMinute is how many apps one portal session may launch a
	// minute, in a burst and then refilled.
	launchesPerMinute = 60
)

// Config is everything the gateway serves with. caddymodule fills it at
// provision; tests fill it directly.
type Config struct {
	// Portal is the public origin of the default portal's home. Without
	// it (and without Apps and MenuLinks) only tenants are served.
	Portal string
	// Apps are the child apps, in the order the portal lists them.
	Apps []AppURL

	// Codec signs and verifies link tokens. Required.
	Codec *link.Codec
	// Sessions is the session lifecycle (L1 over the store). Required.
	Sessions *session.Manager
	// Store is the authority on sessions and link uses; Directory keeps the
	// dashboard's contacts, link records and menu. Required.
	Store     store.Sessions
	Directory store.Directory
	// SignIns keeps the codes of sign-in e-mails. Required for sign-in by
	// e-mail.
	SignIns store.SignIns
	// Asserter signs identity assertions for apps that want them. Required.
	Asserter *assertion.Signer
	// Limiter bounds failures per client; nil turns the limit off.
	Limiter *ratelimit.Limiter
	// CSRFKey keys the tokens of every form. Required.
	CSRFKey []byte
	// APIKeys are the SHA-256 hashes of the keys the link API takes; none
	// turns the API off.
	APIKeys [][sha256.Size]byte
	// Staff are the dashboard's users; MenuLinks the menu items fixed by
	// the configuration.
	Staff     []Staff
	MenuLinks []MenuLink
	// SessionTTL is the absolute life of a session (the cookie's Max-Age).
	SessionTTL time.Duration
	// LinkMaxTTL is the longest life of a link.
	LinkMaxTTL time.Duration
	// Mailer delivers the e-mails the gateway sends, behind a queue; nil
	// sends none. MailTimeout bounds one delivery attempt (default 30s).
	Mailer      mail.Sender
	MailTimeout time.Duration
	// Outbox, when the mailer is the demo's outbox, is what the dashboard
	// shows staff.
	Outbox *mail.Outbox
	// Mails renders the e-mails (the brand, the operator's templates).
	// Default: the embedded templates, the portal named Portal.
	Mails *portal.Mails
	// SignIn says who may ask the portal for a sign-in e-mail:
	// SignInDirectory (default), SignInOpen or SignInOff; without a
	// Mailer, nobody. SignInTTL is the life of its link and code
	// (default DefaultSignInTTL).
	SignIn    string
	SignInTTL time.Duration
	// InviteTTL is the life of an invitation's link, which may outlive
	// LinkMaxTTL. Default: DefaultInviteTTL.
	InviteTTL time.Duration

	// Tenants are the sub-accounts of the configuration, served besides
	// the default one (Portal and Apps) by the catch-all sites (Router).
	Tenants []Tenant
	// HostPattern, such as https://{app}.{tenant}.portals.example.com,
	// gives the URLs of the tenants' sites that name none of their own.
	HostPattern string
	// TenantPoll is how often the store is asked whether tenants changed
	// (on another instance, through its API); 0 never asks, after the
	// first read at start.
	TenantPoll time.Duration

	// Now is the clock. Default: time.Now.
	Now func() time.Time
	// Logger logs failures; Audit gets one event per security fact.
	// Default: no logging.
	Logger, Audit *zap.Logger
	// Metrics counts what happens. Default: counters nobody reads.
	Metrics *Metrics
	// Health describes the store and keys for the health check.
	Health HealthInfo

	// ClientIP is the client's address as the server in front resolved it
	// (trusted proxies applied). Default: the connection's peer.
	ClientIP func(*http.Request) string
	// AuthUser is the user id an authenticator in front of the dashboard
	// signed in, or "". Default: nobody is signed in.
	AuthUser func(*http.Request) string
	// SetUser, when set, hands the session's user to the server on each
	// request the gate lets through (Caddy's {http.auth.user.*}
	// placeholders, from the session's Placeholders).
	SetUser func(*http.Request, *session.Entry)
}

// AppURL declares one child app: its name and public origin.
type AppURL struct {
	Name, URL string
	// Title, Description and Icon show the app on the portal home (see
	// caddymodule.AppURL).
	Title, Description, Icon string
}

// Gateway is the state every site shares: one per configuration.
type Gateway struct {
	cfg     Config
	log     *zap.Logger
	audit   audit
	now     func() time.Time
	metrics *Metrics
	portal  *servedApp
	// apps are the portal and the child apps, by name.
	apps map[string]*servedApp
	// appNames are the declared child apps, in declaration order.
	appNames []string
	staff    map[string]Staff
	// fixedMenu are the configuration's menu links as menu items.
	fixedMenu []store.MenuItem
	clientIP  func(*http.Request) string
	authUser  func(*http.Request) string
	// api is the link API's route table, for the portal and the admin API.
	api table[apiHandler]
	// launches bounds the launches of each portal session.
	launches *ratelimit.Limiter
	// icon is the portal's icon (Site.icon).
	icon []byte
	// look is how the portal's pages show it, lookHash the CSP source of
	// its style ("" for none).
	look     portal.Look
	lookHash string
	// mail sends behind the requests that ask; nil without a mailer.
	mail *mail.Queue
	// signIns works on asked-for sign-in e-mails; nil when there is no
	// sign-in by e-mail.
	signIns *signIns
	// tenant is the id of the tenant this gateway serves ("" for the
	// default one); since is when that tenant was added (zero: it was
	// always there).
	tenant string
	since  time.Time
	// tenants are every tenant's views, shared by the root gateway (the
	// default tenant's) and the views.
	tenants *tenants
}

// servedApp is an app (or the portal) as the gateway serves it.
type servedApp struct {
	name, title string
	// description and icon are how the portal home shows the app.
	description, icon string
	// origin is the configured public origin, without a trailing slash.
	origin string
	cookie string
	secure bool
}

var appNamePattern = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)

// New checks cfg and builds the gateway.
func New(cfg Config) (*Gateway, error) {
	if cfg.Codec == nil || cfg.Sessions == nil || cfg.Store == nil || cfg.Directory == nil || cfg.Asserter == nil || len(cfg.CSRFKey) == 0 {
		return nil, errors.New("portalgate: the gateway needs a codec, sessions, a store, a directory, an asserter and a CSRF key")
	}
	g := &Gateway{cfg: cfg, now: cfg.Now, log: cfg.Logger, metrics: cfg.Metrics, clientIP: cfg.ClientIP, authUser: cfg.AuthUser}
	if g.now == nil {
		g.now = time.Now
	}
	if g.log == nil {
		g.log = zap.NewNop()
	}
	g.audit = audit{cfg.Audit}
	if g.audit.l == nil {
		g.audit.l = zap.NewNop()
	}
	if g.metrics == nil {
		g.metrics = NewMetrics()
	}
	if g.clientIP == nil {
		g.clientIP = PeerIP
	}
	if g.authUser == nil {
		g.authUser = func(*http.Request) string { return "" }
	}
	if err := g.buildApps(); err != nil {
		return nil, err
	}
	if err := g.buildStaff(); err != nil {
		return nil, err
	}
	g.api = apiRoutes()
	var err error
	if g.launches, err = ratelimit.New(launchesPerMinute, time.Minute, 100_000, g.now); err != nil {
		return nil, err
	}
	if g.cfg.Mails == nil {
		if g.cfg.Mails, err = portal.NewMails("", portal.Brand{}); err != nil {
			return nil, err
		}
	}
	g.icon = portal.Icon(g.cfg.Mails.Brand().Color)
	g.look, g.lookHash = portal.NewLook(g.cfg.Mails.Brand())
	if cfg.Mailer != nil {
		g.mail = mail.NewQueue(cfg.Mailer, mail.QueueConfig{Timeout: cfg.MailTimeout, Report: g.delivered, Now: g.now})
	}
	if err := g.startSignIns(); err != nil {
		g.Close(context.Background())
		return nil, err
	}
	// The tenants' gateways share the default one's parts: it is whole.
	if err := g.startTenants(); err != nil {
		g.Close(context.Background())
		return nil, err
	}
	return g, nil
}

// Idle reports whether the gateway has no work of its own in hand: no
// sign-in or e-mail waiting or under way.
func (g *Gateway) Idle() bool {
	if g.signIns != nil && !g.signIns.backlog.Idle() {
		return false
	}
	return g.mail == nil || g.mail.Idle()
}

// Close finishes the sign-ins asked for, sends the e-mails still queued
// until ctx ends, and gives up on the rest.
func (g *Gateway) Close(ctx context.Context) {
	g.stopTenants()
	g.closeSignIns(ctx)
	if g.mail != nil {
		g.mail.Close(ctx)
	}
}

func (g *Gateway) buildApps() error {
	if g.cfg.Portal == "" && g.tenant == "" && len(g.cfg.Apps) == 0 && len(g.cfg.MenuLinks) == 0 {
		// Tenants alone: there is no default portal, and no app of its own.
		g.apps = map[string]*servedApp{}
		return nil
	}
	var err error
	if g.portal, err = newPortal(g.cfg.Portal); err != nil {
		return err
	}
	g.apps = make(map[string]*servedApp, len(g.cfg.Apps)+1)
	g.apps[PortalName] = g.portal
	add := func(name, raw string) error {
		if _, dup := g.apps[name]; dup {
			return fmt.Errorf("portalgate: app %q is declared twice", name)
		}
		t, err := newServedApp(name, raw)
		if err != nil {
			return err
		}
		// One origin is one app: its cookie, its sessions and its routes.
		for _, other := range g.apps {
			if other.origin != t.origin {
				continue
			}
			what := fmt.Sprintf("app %q", other.name)
			if other.name == PortalName {
				what = "the portal"
			}
			return fmt.Errorf("portalgate: app %q has the URL of %s (%s): each app needs its own origin", name, what, t.origin)
		}
		g.apps[name] = t
		return nil
	}
	for _, app := range g.cfg.Apps {
		if app.Name == PortalName {
			return fmt.Errorf("portalgate: %q is the portal's own name; choose another app name", PortalName)
		}
		if !appNamePattern.MatchString(app.Name) {
			return fmt.Errorf("portalgate: app name %q must be lowercase letters, digits and dashes", app.Name)
		}
		if err := add(app.Name, app.URL); err != nil {
			return err
		}
		t := g.apps[app.Name]
		t.title = cmp.Or(app.Title, t.title)
		t.description = app.Description
		if app.Icon != "" {
			if err := portal.CheckImageURL(app.Icon); err != nil {
				return fmt.Errorf("portalgate: app %q: icon: %w", app.Name, err)
			}
			t.icon = app.Icon
		}
		if len(t.title) > 80 || len(t.description) > 200 {
			return fmt.Errorf("portalgate: app %q: a title is at most 80 bytes and a description 200", app.Name)
		}
		g.appNames = append(g.appNames, app.Name)
	}
	return nil
}

// PortalOrigin checks the portal URL as New does and returns its origin.
func PortalOrigin(raw string) (string, error) {
	t, err := newPortal(raw)
	if err != nil {
		return "", err
	}
	return t.origin, nil
}

func newPortal(raw string) (*servedApp, error) {
	if raw == "" {
		return nil, errors.New("portalgate: the portal URL is required (portal https://portal.example.com)")
	}
	return newServedApp(PortalName, raw)
}

// cookiePrefix starts the name of every session cookie (after __Host-).
const cookiePrefix = "portalgate-"

func newServedApp(name, raw string) (*servedApp, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
		(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return nil, fmt.Errorf("portalgate: the URL of %q must be an absolute http(s) origin such as https://%s.example.com, not %q", name, name, raw)
	}
	t := &servedApp{
		name:   name,
		title:  strings.ToUpper(name[:1]) + strings.ReplaceAll(name[1:], "-", " "),
		origin: u.Scheme + "://" + u.Host,
		secure: u.Scheme == "https",
		cookie: cookiePrefix + name,
	}
	if t.secure {
		// __Host- makes the browser insist on Secure, Path=/ and no Domain,
		// so no sibling subdomain can plant or overwrite the cookie.
		t.cookie = "__Host-" + t.cookie
	}
	return t, nil
}

// iconSources are the origins of the apps' icons, each after a space, for
// the portal home's img-src.
func (g *Gateway) iconSources() string {
	var out string
	seen := map[string]bool{}
	for _, name := range g.appNames {
		if icon := g.apps[name].icon; icon != "" {
			if o := originOf(icon); !seen[o] {
				seen[o] = true
				out += " " + o
			}
		}
	}
	return out
}

func (t *servedApp) magicURL(token string) string {
	return t.origin + magicPath + "?token=" + url.QueryEscape(token)
}

func (t *servedApp) allowed(apps []string) bool { return slices.Contains(apps, t.name) }

// appTitle is how pages name an app, or the portal.
func (g *Gateway) appTitle(name string) string {
	if name == PortalName {
		return "Portal home"
	}
	if t := g.apps[name]; t != nil {
		return t.title
	}
	return name
}

// AppNames lists the declared child apps, in declaration order.
func (g *Gateway) AppNames() []string { return slices.Clone(g.appNames) }

// Origin is the public origin of an app ("" when it is not declared).
func (g *Gateway) Origin(app string) string {
	if t := g.apps[app]; t != nil {
		return t.origin
	}
	return ""
}

// revocationHold is how long a revocation must be remembered: until every
// link it refuses has expired, invitations (which outlive link_max_ttl)
// included.
func (g *Gateway) revocationHold() time.Time {
	return g.now().Add(max(g.cfg.LinkMaxTTL, g.inviteTTL()) + link.Leeway)
}

// PeerIP is the connection's peer address, without the port: the client's
// address when no proxy is trusted to name another.
func PeerIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

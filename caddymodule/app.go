// Package caddymodule wires Portalgate into Caddy: the portalgate app, the
// http.handlers.portalgate handler, the admin API and the CLI commands.
package caddymodule

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/portalgate/portalgate/caddymodule/internal/assertion"
	"github.com/portalgate/portalgate/caddymodule/internal/identity"
	"github.com/portalgate/portalgate/caddymodule/internal/link"
	"github.com/portalgate/portalgate/caddymodule/internal/ratelimit"
	"github.com/portalgate/portalgate/caddymodule/internal/session"
	"github.com/portalgate/portalgate/caddymodule/internal/store"
)

func init() {
	caddy.RegisterModule(App{})
}

// PortalName is the name of the portal itself among the apps.
const PortalName = "portal"

// Defaults of the app's settings.
const (
	DefaultLinkTTL       = 15 * time.Minute
	DefaultLinkMaxTTL    = 24 * time.Hour
	DefaultSessionTTL    = 12 * time.Hour
	DefaultSessionIdle   = 2 * time.Hour
	DefaultCacheMaxBytes = 64 << 20
	// launchTTL is the life of the link the portal mints to move a signed-in
	// user into an app: it is used at once, by a redirect.
	launchTTL = time.Minute
	// purgeEvery is how often expired sessions and link records are removed.
	purgeEvery = 10 * time.Minute
	// assertionTTL is the life of a signed identity assertion.
	assertionTTL = time.Minute
)

// App is the portalgate app: the apps behind the gateway, the signing keys,
// the session store and lifetimes. Handlers (one per site) share it.
type App struct {
	// Portal is the public URL of the portal home, where links for "portal"
	// land and where signed-out browsers are sent. Required.
	Portal string `json:"portal,omitempty"`

	// Apps are the child apps and their public URLs. Links and redirects are
	// built from these URLs only, never from a request's Host header.
	// Default: none (the portal alone).
	Apps []AppURL `json:"apps,omitempty"`

	// SigningKeys sign and verify link tokens: the first signs, all verify.
	// Secrets may be placeholders such as {env.PORTALGATE_KEY}. Default: one
	// key generated once and kept in Caddy's storage.
	SigningKeys []SigningKey `json:"signing_keys,omitempty"`

	// AssertionKeys sign the identity assertions of apps with `assertion on`
	// (Ed25519; the secret is the 32-byte seed in base64url): the first signs,
	// all are published at /_portalgate/jwks.json. Default: one key generated
	// once and kept in Caddy's storage.
	AssertionKeys []SigningKey `json:"assertion_keys,omitempty"`

	// StoreRaw is the session store module. Default: bolt, a file in Caddy's
	// data directory.
	StoreRaw json.RawMessage `json:"store,omitempty" caddy:"namespace=portalgate.stores inline_key=backend"`

	// Issuer is the "iss" of link tokens. Default: the portal URL.
	Issuer string `json:"issuer,omitempty"`

	// LinkTTL is the life of a link when the minter names none. Default: 15m.
	LinkTTL caddy.Duration `json:"link_ttl,omitempty"`

	// LinkMaxTTL is the longest life a minter may ask for. Default: 24h.
	LinkMaxTTL caddy.Duration `json:"link_max_ttl,omitempty"`

	// SessionTTL is the absolute life of a session. Default: 12h.
	SessionTTL caddy.Duration `json:"session_ttl,omitempty"`

	// SessionIdle ends a session unused for this long. Default: 2h.
	SessionIdle caddy.Duration `json:"session_idle,omitempty"`

	// APIKeyHashes are SHA-256 hashes (hex) of the keys that may call the
	// link API on the portal; `caddy portalgate hash-key` makes one. The API
	// is off when there is none. Default: none.
	APIKeyHashes []string `json:"api_key_hashes,omitempty"`

	// CacheMaxBytes bounds the in-memory session cache (L1). Default: 64 MiB.
	CacheMaxBytes int64 `json:"cache_max_bytes,omitempty"`

	// RateLimit bounds failed redemptions and failed API-key checks per
	// client IP (as Caddy resolves it, after trusted_proxies). Default: 10
	// failures per minute.
	RateLimit *RateLimit `json:"rate_limit,omitempty"`

	// Staff are the dashboard's users and their roles. Default: none (the
	// dashboard refuses everyone).
	Staff []Staff `json:"staff,omitempty"`

	// MenuLinks are custom menu items fixed by the config, shown before
	// those added on the dashboard. Default: none.
	MenuLinks []MenuLink `json:"menu_links,omitempty"`

	ctx      caddy.Context
	logger   *zap.Logger
	now      func() time.Time
	targets  map[string]*target
	codec    *link.Codec
	store    store.Store
	sessions *session.Manager
	apiKeys  [][sha256.Size]byte
	csrfKey  []byte
	limiter  *ratelimit.Limiter
	asserter *assertion.Signer
	metrics  *metrics
	audit    audit
	inner    store.Store
	backend  string
	// staff by username, and the menu links of the config as menu items.
	staff     map[string]Staff
	fixedMenu []store.MenuItem
}

// RateLimit is a budget of failures per client IP; past it the client gets
// 429 with Retry-After until the budget refills.
type RateLimit struct {
	// Off turns the limit off. Default: false.
	Off bool `json:"off,omitempty"`
	// Failures a client may have in a burst. Default: 10.
	Failures int `json:"failures,omitempty"`
	// Per is the time in which Failures refill. Default: 1m.
	Per caddy.Duration `json:"per,omitempty"`
	// MaxClients bounds the clients tracked at once (least recently seen
	// are forgotten first). Default: 100000.
	MaxClients int `json:"max_clients,omitempty"`
}

// AppURL declares one child app.
type AppURL struct {
	// Name is how links, directives and the API call the app: lowercase
	// letters, digits and dashes. Required.
	Name string `json:"name"`
	// URL is the app's public origin, e.g. https://courses.example.com.
	// Required.
	URL string `json:"url"`
}

// SigningKey is one named HMAC secret of at least 32 bytes.
type SigningKey struct {
	// ID names the key in tokens ("kid"). Required.
	ID string `json:"id"`
	// Secret is the key itself, or a placeholder such as {env.KEY}.
	// Required.
	Secret string `json:"secret"`
}

// target is an app (or the portal) as the gateway serves it.
type target struct {
	name, title string
	// origin is the configured public origin, without a trailing slash.
	origin string
	cookie string
	secure bool
}

// CaddyModule returns the Caddy module information.
func (App) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "portalgate",
		New: func() caddy.Module { return new(App) },
	}
}

var appName = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)

// Provision fills defaults, loads the keys and the store, and builds the
// session manager.
func (a *App) Provision(ctx caddy.Context) error {
	a.ctx = ctx
	a.logger = ctx.Logger()
	a.audit = audit{a.logger.Named("audit")}
	if a.now == nil {
		a.now = time.Now
	}
	setDefault(&a.LinkTTL, DefaultLinkTTL)
	setDefault(&a.LinkMaxTTL, DefaultLinkMaxTTL)
	setDefault(&a.SessionTTL, DefaultSessionTTL)
	setDefault(&a.SessionIdle, DefaultSessionIdle)
	if a.CacheMaxBytes == 0 {
		a.CacheMaxBytes = DefaultCacheMaxBytes
	}
	if err := a.provisionTargets(); err != nil {
		return err
	}
	if err := a.provisionStaff(); err != nil {
		return err
	}
	if a.Issuer == "" {
		a.Issuer = a.targets[PortalName].origin
	}
	if err := a.provisionAPIKeys(); err != nil {
		return err
	}
	ring, err := a.loadKeyRing()
	if err != nil {
		return err
	}
	a.csrfKey = ring.Derive("csrf")
	a.codec = &link.Codec{
		Ring:       ring,
		Issuer:     a.Issuer,
		DefaultTTL: time.Duration(a.LinkTTL),
		MaxTTL:     time.Duration(a.LinkMaxTTL),
		Now:        a.now,
	}
	akeys, err := a.loadAssertionKeys()
	if err != nil {
		return err
	}
	if a.asserter, err = assertion.NewSigner(a.Issuer, assertionTTL, a.now, akeys...); err != nil {
		return fmt.Errorf("portalgate: %w", err)
	}
	if err := a.provisionRateLimit(); err != nil {
		return err
	}
	if a.StoreRaw == nil {
		a.StoreRaw = json.RawMessage(`{"backend":"bolt"}`)
	}
	mod, err := ctx.LoadModule(a, "StoreRaw")
	if err != nil {
		return fmt.Errorf("loading session store: %w", err)
	}
	backend := string(mod.(caddy.Module).CaddyModule().ID.Name())
	a.inner = mod.(storeModule).inner()
	a.metrics = newMetrics()
	a.store = instrument(mod.(store.Store), backend, a.metrics.storeOps)
	a.sessions, err = session.NewManager(a.store, session.Config{
		TTL:           time.Duration(a.SessionTTL),
		Idle:          time.Duration(a.SessionIdle),
		CacheMaxBytes: a.CacheMaxBytes,
		Now:           a.now,
	})
	if err != nil {
		return err
	}
	a.backend = backend
	return a.registerMetrics(ctx, backend, a.inner)
}

// storeModule is a store module: it gives access to the store it wraps
// (optional abilities such as counting sessions or a ping live there).
type storeModule interface {
	inner() store.Store
}

func (a *App) provisionRateLimit() error {
	rl := a.RateLimit
	if rl == nil {
		rl = new(RateLimit)
		a.RateLimit = rl
	}
	if rl.Off {
		return nil
	}
	if rl.Failures == 0 {
		rl.Failures = 10
	}
	setDefault(&rl.Per, time.Minute)
	if rl.MaxClients == 0 {
		rl.MaxClients = 100_000
	}
	if rl.Failures < 0 || rl.Per < 0 || rl.MaxClients < 0 {
		return errors.New("portalgate: rate_limit values must be positive")
	}
	var err error
	a.limiter, err = ratelimit.New(rl.Failures, time.Duration(rl.Per), rl.MaxClients, a.now)
	return err
}

func setDefault(d *caddy.Duration, v time.Duration) {
	if *d == 0 {
		*d = caddy.Duration(v)
	}
}

func (a *App) provisionTargets() error {
	if a.Portal == "" {
		return errors.New("portalgate: the portal URL is required (portal https://portal.example.com)")
	}
	a.targets = make(map[string]*target, len(a.Apps)+1)
	add := func(name, raw string) error {
		if _, dup := a.targets[name]; dup {
			return fmt.Errorf("portalgate: app %q is declared twice", name)
		}
		t, err := newTarget(name, raw)
		if err != nil {
			return err
		}
		a.targets[name] = t
		return nil
	}
	if err := add(PortalName, a.Portal); err != nil {
		return err
	}
	for _, app := range a.Apps {
		if app.Name == PortalName {
			return fmt.Errorf("portalgate: %q is the portal's own name; choose another app name", PortalName)
		}
		if !appName.MatchString(app.Name) {
			return fmt.Errorf("portalgate: app name %q must be lowercase letters, digits and dashes", app.Name)
		}
		if err := add(app.Name, app.URL); err != nil {
			return err
		}
	}
	return nil
}

func newTarget(name, raw string) (*target, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
		(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return nil, fmt.Errorf("portalgate: the URL of %q must be an absolute http(s) origin such as https://%s.example.com, not %q", name, name, raw)
	}
	t := &target{
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

func (a *App) provisionAPIKeys() error {
	repl := caddy.NewReplacer()
	for _, h := range a.APIKeyHashes {
		h = repl.ReplaceKnown(h, "")
		b, err := hex.DecodeString(strings.TrimSpace(h))
		if err != nil || len(b) != sha256.Size {
			return errors.New("portalgate: api_key_hash must be a SHA-256 hash in hex (64 characters); make one with `caddy portalgate hash-key`")
		}
		a.apiKeys = append(a.apiKeys, [sha256.Size]byte(b))
	}
	return nil
}

// Validate rejects settings that cannot work together.
func (a *App) Validate() error {
	for name, d := range map[string]caddy.Duration{
		"link_ttl": a.LinkTTL, "link_max_ttl": a.LinkMaxTTL, "session_ttl": a.SessionTTL, "session_idle": a.SessionIdle,
	} {
		if d <= 0 {
			return fmt.Errorf("portalgate: %s must be positive", name)
		}
	}
	if a.LinkTTL > a.LinkMaxTTL {
		return fmt.Errorf("portalgate: link_ttl %s is above link_max_ttl %s", time.Duration(a.LinkTTL), time.Duration(a.LinkMaxTTL))
	}
	if a.CacheMaxBytes < 0 {
		return errors.New("portalgate: cache_max_bytes must be positive")
	}
	return nil
}

// Start runs the purge of expired records and, with a shared store, the
// watch that keeps L1 in step with other instances.
func (a *App) Start() error {
	go a.purgeLoop()
	a.sessions.Watch(a.ctx)
	return nil
}

// Stop is a no-op: the purge loop ends with the app's context.
func (a *App) Stop() error { return nil }

// Cleanup releases the session cache; Caddy cleans up the store module.
func (a *App) Cleanup() error {
	if a.sessions != nil {
		a.sessions.Close()
	}
	return nil
}

func (a *App) purgeLoop() {
	tick := time.NewTicker(purgeEvery)
	defer tick.Stop()
	for {
		select {
		case <-a.ctx.Done():
			return
		case <-tick.C:
			n, err := a.store.Purge(a.ctx)
			if err != nil {
				a.logger.Error("purging expired sessions and links", zap.Error(err))
				continue
			}
			a.logger.Debug("purged expired sessions and links", zap.Int("count", n))
		}
	}
}

// checkAPIKey reports whether key hashes to a configured API key hash, and
// which (the hash's first 8 hex digits, for the audit log). Every hash is
// compared, in constant time, so timing tells nothing.
func (a *App) checkAPIKey(key string) (string, bool) {
	if key == "" {
		return "", false
	}
	sum := sha256.Sum256([]byte(key))
	ok := 0
	for i := range a.apiKeys {
		ok |= subtle.ConstantTimeCompare(sum[:], a.apiKeys[i][:])
	}
	return hex.EncodeToString(sum[:4]), ok == 1
}

// appNames lists the declared child apps, in declaration order.
func (a *App) appNames() []string {
	names := make([]string, len(a.Apps))
	for i, app := range a.Apps {
		names[i] = app.Name
	}
	return names
}

// MintRequest is the JSON the link API and the admin API take.
type MintRequest struct {
	// App is the target: an app name or "portal". Required.
	App string `json:"app"`
	// User is who the link signs in; user.id is required.
	User identity.User `json:"user"`
	// Path is where the link lands inside the app. Default: "/".
	Path string `json:"path,omitempty"`
	// TTL is a duration such as "10m" or "1d". Default: link_ttl.
	TTL string `json:"ttl,omitempty"`
	// Uses is how many times the link works. Default: 1.
	Uses int `json:"uses,omitempty"`
	// Apps limits which apps a portal session may launch. Default: all.
	Apps []string `json:"apps,omitempty"`
}

// MintResponse is the JSON answer to a mint.
type MintResponse struct {
	URL       string    `json:"url"`
	ID        string    `json:"id"`
	ExpiresAt time.Time `json:"expires_at"`
}

// errInput marks errors caused by the request, as opposed to the gateway.
var errInput = errors.New("invalid request")

// linkRecordKeep is how long the dashboard lists a link after it expired.
const linkRecordKeep = 7 * 24 * time.Hour

// Mint signs a link for req and returns where it lands; by says who asked
// (for the audit log). The dashboard lists the link, and a contact it is
// for joins the contacts directory.
func (a *App) Mint(ctx context.Context, req MintRequest, by string) (MintResponse, error) {
	in := func(format string, args ...any) (MintResponse, error) {
		return MintResponse{}, fmt.Errorf("%w: "+format, append([]any{errInput}, args...)...)
	}
	t, ok := a.targets[req.App]
	if req.App == "" {
		return in("app is required")
	}
	if !ok {
		return in("unknown app %q (declared: %s)", req.App, strings.Join(append([]string{PortalName}, a.appNames()...), ", "))
	}
	if req.User.ID == "" {
		return in("user.id is required")
	}
	var ttl time.Duration
	if req.TTL != "" {
		d, err := caddy.ParseDuration(req.TTL)
		if err != nil || d <= 0 {
			return in("ttl %q is not a positive duration such as 10m", req.TTL)
		}
		ttl = d
	}
	apps := req.Apps
	for _, name := range apps {
		if name == PortalName || a.targets[name] == nil {
			return in("apps: unknown app %q", name)
		}
	}
	if t.name == PortalName && apps == nil {
		apps = a.appNames()
	}
	lr := link.Request{App: t.name, User: req.User, Path: req.Path, TTL: ttl, Uses: req.Uses, Apps: apps}
	l, err := a.issue(by, lr)
	if err != nil {
		return in("%v", err)
	}
	if err := a.remember(ctx, by, lr, l); err != nil {
		return MintResponse{}, err
	}
	return MintResponse{URL: t.magicURL(l.Token), ID: l.ID, ExpiresAt: l.ExpiresAt}, nil
}

// issue signs a link, and counts and audits it.
func (a *App) issue(by string, req link.Request) (link.Link, error) {
	l, err := a.codec.Mint(req)
	if err != nil {
		return link.Link{}, err
	}
	a.metrics.minted.WithLabelValues(req.App).Inc()
	a.audit.linkMinted(by, req.App, req.User.ID, l.ID, l.ExpiresAt)
	return l, nil
}

// remember records a minted link for the dashboard and, when it is for a
// contact, keeps the contact in the directory.
func (a *App) remember(ctx context.Context, by string, req link.Request, l link.Link) error {
	u := req.User
	if u.Type == "" {
		u.Type = identity.Contact
	}
	if u.Type == identity.Contact {
		// A mint adds a contact the directory lacks; it never rewrites a known
		// one (the CRM's sync does): a link's fields are not the record.
		_, err := a.store.Contact(ctx, u.ID)
		if errors.Is(err, store.ErrNotFound) {
			c := store.Contact{ID: u.ID, Email: u.Email, Name: u.Name, Location: u.Location}
			err = a.store.PutContacts(ctx, []store.Contact{c})
		}
		if err != nil {
			return fmt.Errorf("keeping contact: %w", err)
		}
	}
	uses := req.Uses
	if uses == 0 {
		uses = 1
	}
	path := req.Path
	if path == "" {
		path = "/"
	}
	r := store.LinkRecord{
		ID: l.ID, App: req.App, Path: path, User: u, Uses: uses, By: by,
		IssuedAt: a.now(), ExpiresAt: l.ExpiresAt, Keep: l.ExpiresAt.Add(linkRecordKeep),
	}
	if err := a.store.RecordLink(ctx, r); err != nil {
		return fmt.Errorf("recording link: %w", err)
	}
	return nil
}

func (t *target) magicURL(token string) string {
	return t.origin + magicPath + "?token=" + url.QueryEscape(token)
}

func (t *target) allowed(apps []string) bool { return slices.Contains(apps, t.name) }

// Interface guards.
var (
	_ caddy.App          = (*App)(nil)
	_ caddy.Provisioner  = (*App)(nil)
	_ caddy.Validator    = (*App)(nil)
	_ caddy.CleanerUpper = (*App)(nil)
)

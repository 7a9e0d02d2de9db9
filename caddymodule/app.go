// Package caddymodule wires Portalgate into Caddy: the portalgate app, the
// http.handlers.portalgate handler, the admin API and the CLI commands.
package caddymodule

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/portalgate/portalgate/caddymodule/internal/assertion"
	"github.com/portalgate/portalgate/caddymodule/internal/gateway"
	"github.com/portalgate/portalgate/caddymodule/internal/identity"
	"github.com/portalgate/portalgate/caddymodule/internal/link"
	"github.com/portalgate/portalgate/caddymodule/internal/portal"
	"github.com/portalgate/portalgate/caddymodule/internal/ratelimit"
	"github.com/portalgate/portalgate/caddymodule/internal/session"
	"github.com/portalgate/portalgate/caddymodule/internal/store"
)

func init() {
	caddy.RegisterModule(App{})
}

// PortalName is the name of the portal itself among the apps.
const PortalName = gateway.PortalName

// MintRequest is the link API's request, also the CLI's.
type MintRequest = gateway.MintRequest

// MintResponse is the link API's answer to a mint.
type MintResponse = gateway.MintResponse

// Defaults of the app's settings.
const (
	DefaultLinkTTL     = 15 * time.Minute
	DefaultLinkMaxTTL  = 24 * time.Hour
	DefaultSessionTTL  = 12 * time.Hour
	DefaultSessionIdle = 2 * time.Hour
	// minSessionTime is the least session_ttl and session_idle may be.
	minSessionTime       = time.Minute
	DefaultCacheMaxBytes = 64 << 20
	// purgeEvery is how often expired sessions and link records are removed.
	purgeEvery = 10 * time.Minute
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

	// Tenants are the sub-accounts served besides the default portal, each
	// on hosts of its own, by sites whose portalgate directive names no
	// app. Default: none.
	Tenants []TenantConfig `json:"tenants,omitempty"`

	// HostPattern, such as https://{app}.{tenant}.portals.example.com,
	// gives the URLs of the tenants' sites that name none. Default: none.
	HostPattern string `json:"host_pattern,omitempty"`

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

	// MailerRaw is the mailer module that delivers the gateway's e-mails
	// (links staff send). Default: none, and nothing is sent.
	MailerRaw json.RawMessage `json:"mailer,omitempty" caddy:"namespace=portalgate.mailers inline_key=mailer"`

	// SignIn says who may ask the portal for a sign-in e-mail (with a
	// mailer): directory (the directory's contacts), open (anyone; an
	// unknown address becomes a contact) or off. Default: directory.
	SignIn string `json:"signin,omitempty"`

	// SignInTTL is the life of a sign-in e-mail's link and code. Default:
	// 10m.
	SignInTTL caddy.Duration `json:"signin_ttl,omitempty"`

	// Brand is how the e-mails look and sign: the portal's name (default:
	// the mailer's sender name), a colour, a logo, a support address.
	Brand *Brand `json:"brand,omitempty"`

	// MailTemplates is a folder of the operator's e-mail templates
	// (link.txt, link.html, signin.txt, signin.html, invite.txt,
	// invite.html), each replacing the embedded one. Default: none.
	MailTemplates string `json:"mail_templates,omitempty"`

	// InviteTTL is the life of an invitation's link (it may outlive
	// LinkMaxTTL). Default: 7d.
	InviteTTL caddy.Duration `json:"invite_ttl,omitempty"`

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
	codec    *link.Codec
	store    store.Store
	sessions *session.Manager
	metrics  *metrics
	gateway  *gateway.Gateway
	// requests are the requests this config's handlers serve; the store
	// and the session cache outlive the config until they are done.
	requests *inFlight
}

// Brand is how the portal's e-mails look and sign.
type Brand struct {
	// Title is the portal's name. Default: the mailer's sender name, or
	// Portal.
	Title string `json:"title,omitempty"`
	// Color is the buttons' colour, #rgb or #rrggbb. Default: #1d4ed8.
	Color string `json:"color,omitempty"`
	// Logo is an https URL of an image shown in place of the name.
	Logo string `json:"logo,omitempty"`
	// Support is an address people may write to with questions.
	Support string `json:"support,omitempty"`
	// SenderName names the sender of the e-mails (the address is the
	// mailer's). Default: the mailer's sender name.
	SenderName string `json:"sender_name,omitempty"`
}

// portal is b as the gateway takes it.
func (b *Brand) portal() portal.Brand {
	if b == nil {
		return portal.Brand{}
	}
	return portal.Brand{Title: b.Title, Color: b.Color, Logo: b.Logo, Support: b.Support, Sender: b.SenderName}
}

// TenantConfig is a sub-account of the configuration: its portal and apps
// on hosts of their own, served by a site with a portalgate directive
// that names no app. More come from the tenants API at run time.
type TenantConfig struct {
	// ID is the sub-account's location id: its contacts and sub-account
	// users are those of this location. Required.
	ID string `json:"id"`
	// Name is the portal's name on its pages and e-mails. Default: the id.
	Name string `json:"name,omitempty"`
	// Portal is the public origin of its portal. Default: from
	// host_pattern.
	Portal string `json:"portal,omitempty"`
	// Apps are its apps; one without a URL is at host_pattern's host, one
	// named as a configured app shows as it does. Default: the configured
	// apps, at host_pattern's hosts.
	Apps []AppURL `json:"apps,omitempty"`
	// Brand is its brand. Default: the portal's colours, under its name.
	Brand *Brand `json:"brand,omitempty"`
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
	// Title, Description and Icon are how the portal home shows the app:
	// its name (default: from Name), a line about it, and an https URL of
	// an image. Optional.
	Title       string `json:"title,omitempty"`
	Description string `json:"description,omitempty"`
	Icon        string `json:"icon,omitempty"`
}

// defaultIssuer names the links of a gateway without a default portal
// (tenants alone) and without an issuer of its own.
const defaultIssuer = "portalgate"

// tenantPoll is how often the store is asked whether tenants changed.
const tenantPoll = 250 * time.Millisecond

// SigningKey is one named HMAC secret of at least 32 bytes.
type SigningKey struct {
	// ID names the key in tokens ("kid"). Required.
	ID string `json:"id"`
	// Secret is the key itself, or a placeholder such as {env.KEY}.
	// Required.
	Secret string `json:"secret"`
}

// CaddyModule returns the Caddy module information.
func (App) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "portalgate",
		New: func() caddy.Module { return new(App) },
	}
}

// Provision fills defaults, loads the keys and the store, and builds the
// gateway every site of this config serves with.
func (a *App) Provision(ctx caddy.Context) error {
	a.ctx = ctx
	if a.logger == nil {
		a.logger = ctx.Logger()
	}
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
	// The portal URL is checked before anything is opened; link tokens
	// name its origin as their issuer unless issuer says otherwise. A
	// gateway of tenants alone (tenant lines or a host_pattern, no portal
	// and no app of its own) has no default portal.
	tenantsOnly := a.Portal == "" && len(a.Apps) == 0 && (len(a.Tenants) > 0 || a.HostPattern != "")
	if !tenantsOnly {
		portalOrigin, err := gateway.PortalOrigin(a.Portal)
		if err != nil {
			return err
		}
		a.Issuer = cmp.Or(a.Issuer, portalOrigin)
	}
	a.Issuer = cmp.Or(a.Issuer, defaultIssuer)
	apiKeys, err := a.apiKeyHashes()
	if err != nil {
		return err
	}
	ring, err := a.loadKeyRing()
	if err != nil {
		return err
	}
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
	asserter, err := assertion.NewSigner(a.Issuer, gateway.AssertionTTL, a.now, akeys...)
	if err != nil {
		return fmt.Errorf("portalgate: %w", err)
	}
	limiter, err := a.rateLimiter()
	if err != nil {
		return err
	}
	if a.StoreRaw == nil {
		a.StoreRaw = json.RawMessage(`{"backend":"bolt"}`)
	}
	mod, err := ctx.LoadModule(a, "StoreRaw")
	if err != nil {
		return fmt.Errorf("loading session store: %w", err)
	}
	a.requests = newInFlight()
	if d, ok := mod.(drainer); ok {
		d.releaseAfter(a.requests)
	}
	backend := string(mod.(caddy.Module).CaddyModule().ID.Name())
	a.metrics = newMetrics()
	a.store = a.metrics.timed(mod.(storeConverter).Store(), backend)
	a.sessions, err = session.NewManager(a.store, session.Config{
		TTL:           time.Duration(a.SessionTTL),
		Idle:          time.Duration(a.SessionIdle),
		CacheMaxBytes: a.CacheMaxBytes,
		Now:           a.now,
		Placeholders:  userPlaceholders,
	})
	if err != nil {
		return err
	}
	cfg := gateway.Config{
		Portal:     a.Portal,
		Codec:      a.codec,
		Sessions:   a.sessions,
		Store:      a.store,
		Directory:  a.store,
		SignIns:    a.store,
		SignIn:     a.SignIn,
		SignInTTL:  time.Duration(a.SignInTTL),
		InviteTTL:  time.Duration(a.InviteTTL),
		Asserter:   asserter,
		Limiter:    limiter,
		CSRFKey:    ring.Derive("csrf"),
		APIKeys:    apiKeys,
		SessionTTL: time.Duration(a.SessionTTL),
		LinkMaxTTL: time.Duration(a.LinkMaxTTL),
		Now:        a.now,
		Logger:     a.logger,
		Audit:      a.logger.Named("audit"),
		Metrics:    a.metrics.gateway,
		Health: gateway.HealthInfo{Backend: backend,
			GeneratedSigningKey: len(a.SigningKeys) == 0, GeneratedAssertionKey: len(a.AssertionKeys) == 0},
		ClientIP: clientIP,
		AuthUser: authUser,
		SetUser:  setUserPlaceholders,
	}
	if err := a.loadMailer(ctx, &cfg); err != nil {
		return err
	}
	for _, app := range a.Apps {
		cfg.Apps = append(cfg.Apps, gateway.AppURL{Name: app.Name, URL: app.URL, Title: app.Title, Description: app.Description, Icon: app.Icon})
	}
	cfg.HostPattern = a.HostPattern
	// Tenants added on another instance sharing the store are served here
	// within a second.
	cfg.TenantPoll = tenantPoll
	for _, t := range a.Tenants {
		gt := gateway.Tenant{ID: t.ID, Name: t.Name, Portal: t.Portal, Brand: t.Brand.portal()}
		for _, app := range t.Apps {
			gt.Apps = append(gt.Apps, gateway.AppURL{Name: app.Name, URL: app.URL, Title: app.Title, Description: app.Description, Icon: app.Icon})
		}
		cfg.Tenants = append(cfg.Tenants, gt)
	}
	for _, s := range a.Staff {
		cfg.Staff = append(cfg.Staff, gateway.Staff{Username: s.Username, Role: s.Role, Location: s.Location})
	}
	for _, m := range a.MenuLinks {
		cfg.MenuLinks = append(cfg.MenuLinks, gateway.MenuLink{Title: m.Title, Target: m.Target, Open: m.Open, Roles: m.Roles})
	}
	if a.gateway, err = gateway.New(cfg); err != nil {
		return err
	}
	// The gateway's own work behind requests (sign-ins, e-mails) counts
	// as one request in flight until Cleanup closes it: the store outlives
	// it.
	a.requests.enter()
	return a.metrics.register(ctx, backend, a.sessions, a.store)
}

// loadMailer loads the mailer module, if any, into cfg (its sender, its
// bound on one try, the outbox the dashboard shows), and the e-mails'
// templates and brand (the portal's name defaults to the sender's).
func (a *App) loadMailer(ctx caddy.Context, cfg *gateway.Config) error {
	var brand portal.Brand
	if a.Brand != nil {
		brand = a.Brand.portal()
	}
	if a.MailerRaw != nil {
		mod, err := ctx.LoadModule(a, "MailerRaw")
		if err != nil {
			return fmt.Errorf("loading mailer: %w", err)
		}
		cfg.Mailer = mod.(mailerConverter).Sender()
		if t, ok := mod.(timedMailer); ok {
			cfg.MailTimeout = t.timeout()
		}
		if o, ok := mod.(*OutboxMailer); ok {
			cfg.Outbox = o.Outbox()
		}
		if s, ok := mod.(*SMTPMailer); ok && brand.Title == "" {
			brand.Title = s.sender.From().Name
		}
	}
	mails, err := portal.NewMails(a.MailTemplates, brand)
	if err != nil {
		return fmt.Errorf("portalgate: %w", err)
	}
	cfg.Mails = mails
	return nil
}

// drainer is a store module that can hold its backend open past its
// Cleanup until the config's requests in flight are done.
type drainer interface {
	releaseAfter(*inFlight)
}

// storeConverter is a store module: configuration that opens (or joins) a
// backend at provision and hands it over, like Caddy's StorageConverter.
type storeConverter interface {
	Store() store.Store
}

// clientIP is the client's address as Caddy resolved it: the connection's
// peer, or a forwarded address only from a configured trusted proxy. A raw
// X-Forwarded-For is never read here.
func clientIP(r *http.Request) string {
	if ip, ok := caddyhttp.GetVar(r.Context(), caddyhttp.ClientIPVarKey).(string); ok && ip != "" {
		return ip
	}
	return gateway.PeerIP(r)
}

// authUser is the user an authenticator in front (basic_auth, forward_auth
// with copy_headers, ...) signed in: {http.auth.user.id}.
func authUser(r *http.Request) string {
	repl, ok := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
	if !ok {
		return ""
	}
	name, _ := repl.GetString("http.auth.user.id")
	return name
}

// userPlaceholders builds, once for each session L1 keeps, what resolves
// the gate's user as {http.auth.user.*} placeholders (the access log's
// user_id): only when something asks, instead of five map writes.
func userPlaceholders(u *identity.User) func(string) (any, bool) {
	return func(key string) (any, bool) {
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
	}
}

// setUserPlaceholders hands the session's user to the rest of Caddy: its
// resolver joins the request's replacer, in the room Caddy's server leaves
// there, so a request allocates nothing for it.
func setUserPlaceholders(r *http.Request, e *session.Entry) {
	if repl, ok := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer); ok && e.Placeholders != nil {
		repl.Map(e.Placeholders)
	}
}

// rateLimiter builds the failure budget per client; nil when it is off.
func (a *App) rateLimiter() (*ratelimit.Limiter, error) {
	rl := a.RateLimit
	if rl == nil {
		rl = new(RateLimit)
		a.RateLimit = rl
	}
	if rl.Off {
		return nil, nil
	}
	if rl.Failures == 0 {
		rl.Failures = 10
	}
	setDefault(&rl.Per, time.Minute)
	if rl.MaxClients == 0 {
		rl.MaxClients = 100_000
	}
	if rl.Failures < 0 || rl.Per < 0 || rl.MaxClients < 0 {
		return nil, errors.New("portalgate: rate_limit values must be positive")
	}
	return ratelimit.New(rl.Failures, time.Duration(rl.Per), rl.MaxClients, a.now)
}

func setDefault(d *caddy.Duration, v time.Duration) {
	if *d == 0 {
		*d = caddy.Duration(v)
	}
}

// apiKeyHashes reads the configured API key hashes.
func (a *App) apiKeyHashes() ([][sha256.Size]byte, error) {
	var keys [][sha256.Size]byte
	repl := caddy.NewReplacer()
	for _, h := range a.APIKeyHashes {
		h = repl.ReplaceKnown(h, "")
		b, err := hex.DecodeString(strings.TrimSpace(h))
		if err != nil || len(b) != sha256.Size {
			return nil, errors.New("portalgate: api_key_hash must be a SHA-256 hash in hex (64 characters); make one with `caddy portalgate hash-key`")
		}
		keys = append(keys, [sha256.Size]byte(b))
	}
	return keys, nil
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
	for name, d := range map[string]caddy.Duration{"session_ttl": a.SessionTTL, "session_idle": a.SessionIdle} {
		if time.Duration(d) < minSessionTime {
			return fmt.Errorf("portalgate: %s must be at least %v, not %v", name, minSessionTime, time.Duration(d))
		}
	}
	if a.SessionIdle > a.SessionTTL {
		return fmt.Errorf("portalgate: session_idle %v is longer than session_ttl %v: a session ends at its ttl whatever its use",
			time.Duration(a.SessionIdle), time.Duration(a.SessionTTL))
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
	if err := checkPlacement(a.ctx); err != nil {
		return err
	}
	go a.purgeLoop()
	a.sessions.Watch(a.ctx)
	startedOnce.Do(a.logWhereToStart)
	return nil
}

// startedOnce logs where to start once a process, not at every reload.
var startedOnce sync.Once

// logWhereToStart tells whoever started Caddy which addresses to open: the
// portal and the dashboard, and who may sign in to the dashboard.
func (a *App) logWhereToStart() {
	portal := strings.TrimSuffix(a.Portal, "/")
	if portal == "" {
		a.logger.Info("portalgate is ready: serving the sub-accounts (tenants) by host", zap.Int("tenants", len(a.Tenants)))
		return
	}
	names := make([]string, 0, len(a.Staff))
	for _, st := range a.Staff {
		names = append(names, st.Username+" ("+string(st.Role)+")")
	}
	msg := "portalgate is ready: contacts sign in at " + portal + "/, staff open " + portal + gateway.DashboardPath
	tenants := make([]string, 0, len(a.Tenants))
	for _, t := range a.Tenants {
		if o := a.gateway.TenantOrigin(t.ID); o != "" {
			tenants = append(tenants, t.ID+" "+o+"/")
		}
	}
	if len(tenants) > 0 {
		msg += "; sub-accounts: " + strings.Join(tenants, ", ")
	}
	a.logger.Info(msg, zap.String("portal", portal+"/"), zap.String("dashboard", portal+gateway.DashboardPath),
		zap.Strings("staff", names), zap.Strings("tenants", tenants))
}

// Stop is a no-op: the purge loop ends with the app's context.
func (a *App) Stop() error { return nil }

// Cleanup releases the session cache once the config's last requests are
// done; Caddy cleans up the store module, which waits for them too.
func (a *App) Cleanup() error {
	if a.gateway != nil {
		// The sign-ins asked for and the e-mails queued are sent, for up
		// to a minute, behind the next config's start; then the gateway's
		// hold on the store ends. With nothing in hand (the usual case) it
		// ends now, before the session cache's release is asked for: that
		// and the store then go with the config's last request.
		drain := func(limit time.Duration) {
			defer a.requests.leave()
			ctx, cancel := context.WithTimeout(context.Background(), limit)
			defer cancel()
			a.gateway.Close(ctx)
		}
		if a.gateway.Idle() {
			drain(time.Second)
		} else {
			go drain(mailDrain)
		}
	}
	if a.sessions != nil {
		a.requests.after(a.sessions.Close)
	}
	return nil
}

// mailDrain is how long a replaced config keeps sending the e-mails it
// queued.
const mailDrain = time.Minute

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

// Interface guards.
var (
	_ caddy.App          = (*App)(nil)
	_ caddy.Provisioner  = (*App)(nil)
	_ caddy.Validator    = (*App)(nil)
	_ caddy.CleanerUpper = (*App)(nil)
)

package caddymodule

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/dustin/go-humanize"

	"github.com/portalgate/portalgate/caddymodule/internal/identity"
)

func init() {
	httpcaddyfile.RegisterGlobalOption("portalgate", parseGlobalOption)
	httpcaddyfile.RegisterDirective("portalgate", parseHandlerDirective)
	// After basic_auth, so a site can put its own sign-in in front of ours
	// (the staff dashboard), and before anything that serves content.
	httpcaddyfile.RegisterDirectiveOrder("portalgate", httpcaddyfile.After, "basic_auth")
}

func parseGlobalOption(d *caddyfile.Dispenser, existing any) (any, error) {
	if existing != nil {
		d.Next() // its name, for the file and line
		return nil, d.Err("portalgate: the global option may appear only once")
	}
	app := new(App)
	if err := app.UnmarshalCaddyfile(d); err != nil {
		return nil, err
	}
	return httpcaddyfile.App{Name: "portalgate", Value: caddyconfig.JSON(app, nil)}, nil
}

// UnmarshalCaddyfile sets up the app from the global option.
//
// Syntax:
//
//	portalgate {
//		portal <url>
//		app <name> <url>                # repeatable
//		signing_key <kid> <secret>      # repeatable; the first signs
//		assertion_key <kid> <seed>      # repeatable; Ed25519, base64url
//		store bolt [<path>] | memory | redis ...
//		mailer smtp { host … from … } | outbox
//		brand title|color|logo|support|sender_name <value>  # repeatable; color 0f766e or "#0f766e"
//		tenant <id> {                   # repeatable: a sub-account with hosts of its own
//			name <name>
//			portal <url>
//			app <name> [<url>]          # no URL: the host pattern's
//			brand color|logo|support|sender_name <value>
//		}
//		host_pattern <url pattern>      # https://{app}.{tenant}.portals.example.com
//		mail_templates <dir>
//		signin directory|open|off
//		signin_ttl <duration>
//		invite_ttl <duration>
//		issuer <iss>
//		link_ttl <duration>
//		link_max_ttl <duration>
//		session_ttl <duration>
//		session_idle <duration>
//		api_key_hash <sha256-hex>       # repeatable
//		cache_max_bytes <size>
//		rate_limit <failures> <per> | off
//		staff <username> agency_user    # repeatable
//		staff <username> subaccount_user location <id>
//		menu_link <title> <url|app:NAME> [iframe|new_tab|current_tab] [<role>...]
//	}
func (a *App) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // option name
	if d.NextArg() {
		return d.ArgErr()
	}
	for d.NextBlock(0) {
		opt := d.Val()
		if opt == "store" {
			if err := a.unmarshalStore(d); err != nil {
				return err
			}
			continue
		}
		if opt == "mailer" {
			if err := a.unmarshalMailer(d); err != nil {
				return err
			}
			continue
		}
		args := d.RemainingArgs()
		switch opt {
		case "portal":
			if len(args) != 1 {
				return d.Errf("portal takes one URL, got %d arguments", len(args))
			}
			a.Portal = args[0]
		case "app":
			app, err := parseApp(d, args)
			if err != nil {
				return err
			}
			a.Apps = append(a.Apps, app)
		case "tenant":
			t, err := parseTenant(d, args)
			if err != nil {
				return err
			}
			a.Tenants = append(a.Tenants, t)
		case "host_pattern":
			if len(args) != 1 {
				return d.Errf("host_pattern takes one URL pattern: host_pattern https://{app}.{tenant}.portals.example.com")
			}
			a.HostPattern = args[0]
		case "signing_key":
			if len(args) != 2 {
				return d.Errf("signing_key takes a key id and a secret: signing_key k1 {env.PORTALGATE_KEY}")
			}
			a.SigningKeys = append(a.SigningKeys, SigningKey{ID: args[0], Secret: args[1]})
		case "issuer":
			if len(args) != 1 {
				return d.ArgErr()
			}
			a.Issuer = args[0]
		case "brand":
			if a.Brand == nil {
				a.Brand = new(Brand)
			}
			if err := parseBrand(d, args, a.Brand); err != nil {
				return err
			}
		case "mail_templates":
			if len(args) != 1 {
				return d.Errf("mail_templates takes one folder")
			}
			a.MailTemplates = args[0]
		case "signin":
			if len(args) != 1 || (args[0] != "directory" && args[0] != "open" && args[0] != "off") {
				return d.Errf("signin takes directory, open or off")
			}
			a.SignIn = args[0]
		case "link_ttl", "link_max_ttl", "session_ttl", "session_idle", "signin_ttl", "invite_ttl":
			if len(args) != 1 {
				return d.Errf("%s takes one duration such as 15m", opt)
			}
			dur, err := caddy.ParseDuration(args[0])
			if err != nil {
				return d.Errf("%s: %v", opt, err)
			}
			if dur <= 0 {
				return d.Errf("%s must be positive, not %s", opt, args[0])
			}
			if (opt == "session_ttl" || opt == "session_idle") && dur < minSessionTime {
				return d.Errf("%s must be at least %v, not %s: sessions would end while people use them", opt, minSessionTime, args[0])
			}
			*map[string]*caddy.Duration{
				"link_ttl": &a.LinkTTL, "link_max_ttl": &a.LinkMaxTTL,
				"session_ttl": &a.SessionTTL, "session_idle": &a.SessionIdle,
				"signin_ttl": &a.SignInTTL, "invite_ttl": &a.InviteTTL,
			}[opt] = caddy.Duration(dur)
		case "api_key_hash":
			if len(args) != 1 {
				return d.Errf("api_key_hash takes one SHA-256 hash in hex")
			}
			a.APIKeyHashes = append(a.APIKeyHashes, args[0])
		case "assertion_key":
			if len(args) != 2 {
				return d.Errf("assertion_key takes a key id and a base64url Ed25519 seed")
			}
			a.AssertionKeys = append(a.AssertionKeys, SigningKey{ID: args[0], Secret: args[1]})
		case "rate_limit":
			switch {
			case len(args) == 1 && args[0] == "off":
				a.RateLimit = &RateLimit{Off: true}
			case len(args) == 2:
				n, err := strconv.Atoi(args[0])
				if err != nil || n <= 0 {
					return d.Errf("rate_limit: %q is not a positive number of failures", args[0])
				}
				per, err := caddy.ParseDuration(args[1])
				if err != nil || per <= 0 {
					return d.Errf("rate_limit: %q is not a positive duration", args[1])
				}
				a.RateLimit = &RateLimit{Failures: n, Per: caddy.Duration(per)}
			default:
				return d.Errf("rate_limit takes failures and a period (rate_limit 10 1m), or off")
			}
		case "cache_max_bytes":
			if len(args) != 1 {
				return d.ArgErr()
			}
			n, err := humanize.ParseBytes(args[0])
			if err != nil || n == 0 || n > 1<<40 {
				return d.Errf("cache_max_bytes: %q is not a size such as 64MiB", args[0])
			}
			a.CacheMaxBytes = int64(n)
		case "staff":
			s, err := parseStaff(args)
			if err != nil {
				return d.Errf("%v", err)
			}
			a.Staff = append(a.Staff, s)
		case "menu_link":
			m, err := parseMenuLink(args)
			if err != nil {
				return d.Errf("%v", err)
			}
			a.MenuLinks = append(a.MenuLinks, m)
		default:
			return d.Errf("unknown portalgate option %q", opt)
		}
	}
	return nil
}

// parseApp reads app <name> <url> [{ title, description, icon }].
func parseApp(d *caddyfile.Dispenser, args []string) (AppURL, error) {
	if len(args) != 2 {
		return AppURL{}, d.Errf("app takes a name and a URL: app courses https://courses.example.com")
	}
	app := AppURL{Name: args[0], URL: args[1]}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		field := map[string]*string{"title": &app.Title, "description": &app.Description, "icon": &app.Icon}[d.Val()]
		if field == nil || !d.NextArg() {
			return AppURL{}, d.Errf("an app's block takes title, description and icon, each with a value, not %q", d.Val())
		}
		*field = d.Val()
		if d.NextArg() {
			return AppURL{}, d.ArgErr()
		}
	}
	return app, nil
}

// parseBrand reads brand <field> <value> into b.
func parseBrand(d *caddyfile.Dispenser, args []string, b *Brand) error {
	if len(args) == 1 && args[0] == "color" {
		return d.Errf(`brand color needs its value: a bare # starts a Caddyfile comment, so write brand color 0f766e or brand color "#0f766e"`)
	}
	if len(args) != 2 {
		return d.Errf("brand takes a field and a value: brand title|color|logo|support|sender_name <value>")
	}
	field := map[string]*string{"title": &b.Title, "color": &b.Color, "logo": &b.Logo, "support": &b.Support,
		"support_email": &b.Support, "sender_name": &b.SenderName}[args[0]]
	if field == nil {
		return d.Errf("brand takes title, color, logo, support or sender_name, not %q", args[0])
	}
	*field = args[1]
	if args[0] == "color" && !strings.HasPrefix(args[1], "#") {
		// A bare # starts a Caddyfile comment: 0f766e is #0f766e.
		*field = "#" + args[1]
	}
	return nil
}

// parseTenant reads a tenant <id> { name, portal, app, brand } block.
func parseTenant(d *caddyfile.Dispenser, args []string) (TenantConfig, error) {
	if len(args) != 1 {
		return TenantConfig{}, d.Errf("tenant takes its id (the sub-account's location id) and a block: tenant acme { portal https://... }")
	}
	t := TenantConfig{ID: args[0]}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		opt := d.Val()
		args := d.RemainingArgs()
		switch opt {
		case "name", "portal":
			if len(args) != 1 {
				return t, d.Errf("a tenant's %s takes one value", opt)
			}
			*map[string]*string{"name": &t.Name, "portal": &t.Portal}[opt] = args[0]
		case "app":
			if len(args) == 1 {
				// app courses: at the host pattern's host.
				args = append(args, "")
			}
			app, err := parseApp(d, args)
			if err != nil {
				return t, err
			}
			t.Apps = append(t.Apps, app)
		case "brand":
			if t.Brand == nil {
				t.Brand = new(Brand)
			}
			if err := parseBrand(d, args, t.Brand); err != nil {
				return t, err
			}
		default:
			return t, d.Errf("a tenant's block takes name, portal, app and brand, not %q", opt)
		}
	}
	return t, nil
}

func parseStaff(args []string) (Staff, error) {
	const usage = "staff takes a username and a role: staff <username> agency_user, or staff <username> subaccount_user location <id>"
	switch {
	case len(args) == 2 && args[1] == string(identity.AgencyUser):
		return Staff{Username: args[0], Role: identity.AgencyUser}, nil
	case len(args) == 4 && args[1] == string(identity.SubaccountUser) && args[2] == "location":
		return Staff{Username: args[0], Role: identity.SubaccountUser, Location: args[3]}, nil
	}
	return Staff{}, errors.New(usage)
}

func parseMenuLink(args []string) (MenuLink, error) {
	if len(args) < 2 {
		return MenuLink{}, errors.New(`menu_link takes a title and a target: menu_link "Help" https://help.example.com [iframe|new_tab|current_tab] [roles...]`)
	}
	m := MenuLink{Title: args[0], Target: args[1]}
	rest := args[2:]
	if len(rest) > 0 && (rest[0] == OpenIframe || rest[0] == OpenNewTab || rest[0] == OpenCurrentTab) {
		m.Open, rest = rest[0], rest[1:]
	}
	for _, r := range rest {
		t := identity.Type(r)
		if !slices.Contains(allRoles, t) {
			return MenuLink{}, fmt.Errorf("menu_link %q: %q is neither an open mode (iframe, new_tab, current_tab) nor a role (contact, subaccount_user, agency_user)", m.Title, r)
		}
		m.Roles = append(m.Roles, t)
	}
	return m, nil
}

// unmarshalStore reads `store <name> [args] [{ block }]` into StoreRaw; the
// store module parses its own segment.
func (a *App) unmarshalStore(d *caddyfile.Dispenser) (err error) {
	a.StoreRaw, err = unmarshalInline(d, "store", "portalgate.stores", "backend", "bolt, memory or redis")
	return err
}

// unmarshalMailer reads `mailer <name> [{ block }]` into MailerRaw.
func (a *App) unmarshalMailer(d *caddyfile.Dispenser) (err error) {
	if a.MailerRaw != nil {
		return d.Err("mailer is set twice")
	}
	a.MailerRaw, err = unmarshalInline(d, "mailer", "portalgate.mailers", "mailer", "smtp or outbox")
	return err
}

// unmarshalInline reads option's module name and lets the module of that
// name in namespace parse its own segment, into the JSON of an inline
// module (the name under key).
func unmarshalInline(d *caddyfile.Dispenser, option, namespace, key, names string) (json.RawMessage, error) {
	if !d.NextArg() {
		return nil, d.Errf("%s takes a name: %s", option, names)
	}
	name := d.Val()
	unm, err := caddyfile.UnmarshalModule(d, namespace+"."+name)
	if err != nil {
		return nil, err
	}
	return caddyconfig.JSONModuleObject(unm, key, name, nil), nil
}

// parseHandlerDirective refuses a matcher: a gate that covers part of a
// site lets the rest through unauthenticated, and misses its own paths.
func parseHandlerDirective(h httpcaddyfile.Helper) ([]httpcaddyfile.ConfigValue, error) {
	h.Next() // directive name
	if _, isMatcher, err := h.MatcherToken(); err != nil || isMatcher {
		return nil, h.Errf("portalgate gates a whole site and takes no matcher; put it in its own site block")
	}
	h.Reset()
	handler := new(Handler)
	if err := handler.UnmarshalCaddyfile(h.Dispenser); err != nil {
		return nil, err
	}
	return h.NewRoute(nil, handler), nil
}

// UnmarshalCaddyfile sets up the handler from the directive.
//
// Syntax:
//
//	portalgate [<app>] {            # no app: every tenant's sites, by host
//		redeem auto|confirm
//		assertion on|off
//	}
func (h *Handler) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // directive name
	if d.NextArg() {
		// Without an app, the site is the tenants' catch-all.
		h.AppName = d.Val()
	}
	if d.NextArg() {
		return d.ArgErr()
	}
	for d.NextBlock(0) {
		switch d.Val() {
		case "redeem":
			if !d.NextArg() {
				return d.ArgErr()
			}
			h.RedeemMode = d.Val()
			if h.RedeemMode != RedeemAuto && h.RedeemMode != RedeemConfirm {
				return d.Errf("redeem must be auto or confirm, not %q", h.RedeemMode)
			}
			if d.NextArg() {
				return d.ArgErr()
			}
		case "assertion":
			if !d.NextArg() {
				return d.ArgErr()
			}
			switch d.Val() {
			case "on":
				h.Assertion = true
			case "off":
				h.Assertion = false
			default:
				return d.Errf("assertion must be on or off, not %q", d.Val())
			}
			if d.NextArg() {
				return d.ArgErr()
			}
		default:
			return d.Errf("unknown portalgate subdirective %q", d.Val())
		}
	}
	return nil
}

// Interface guards.
var (
	_ caddyfile.Unmarshaler = (*App)(nil)
	_ caddyfile.Unmarshaler = (*Handler)(nil)
)

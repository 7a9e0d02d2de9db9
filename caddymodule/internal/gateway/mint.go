package gateway

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/portalgate/portalgate/caddymodule/internal/identity"
	"github.com/portalgate/portalgate/caddymodule/internal/link"
	"github.com/portalgate/portalgate/caddymodule/internal/store"
)

// MintRequest is the JSON the link API and the admin API take.
type MintRequest struct {
	// Tenant is the sub-account whose app the link opens. Default: the
	// tenant of the portal the request came to or, on the default one,
	// the tenant of user.location when that names one.
	Tenant string `json:"tenant,omitempty"`
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
	// Send "email" mails the link to user.email through the mailer, behind
	// the request. Default: nothing is sent.
	Send string `json:"send,omitempty"`
}

// MintResponse is the JSON answer to a mint.
type MintResponse struct {
	URL       string    `json:"url"`
	ID        string    `json:"id"`
	ExpiresAt time.Time `json:"expires_at"`
	// Delivery, for a mint that sends, is "queued" or "failed" (the mail
	// queue was full): the link stands either way.
	Delivery string `json:"delivery,omitempty"`
}

// Mint signs a link for req and returns where it lands; by says who asked
// (for the audit log). The dashboard lists the link, and a contact it is
// for joins the contacts directory. A request that cannot be minted is a
// 400 Problem saying why.
func (g *Gateway) Mint(ctx context.Context, req MintRequest, by string) (MintResponse, error) {
	target, err := g.mintTarget(&req)
	if err != nil {
		return MintResponse{}, err
	}
	return target.mint(ctx, req, by)
}

// mintTarget is the gateway of the tenant a link of req is for, with
// req.User's location made the tenant's when it named none. A tenant's
// portal mints for that tenant alone, and a tenant's links are for its
// own people.
func (g *Gateway) mintTarget(req *MintRequest) (*Gateway, error) {
	id := req.Tenant
	switch {
	case g.tenant != "" && id != "" && id != g.tenant:
		return nil, problemOtherTenant
	case g.tenant != "":
		id = g.tenant
	case id == "" && req.User.Location != "":
		if _, ok := g.tenants.registry.Tenant(req.User.Location); ok {
			id = req.User.Location
		}
	}
	if id == "" {
		if g.portal == nil {
			return nil, badRequest(`no default portal is configured: name the tenant ("tenant") whose link this is`)
		}
		if !g.ownsLocation(req.User.Location) {
			return nil, badRequest(fmt.Sprintf("user.location %q is a tenant's: its links are that tenant's (tenant %q)", req.User.Location, req.User.Location))
		}
		return g, nil
	}
	target, ok := g.viewOf(id)
	if !ok {
		return nil, &Problem{Status: http.StatusNotFound, Code: "tenant_not_found", Title: "No such sub-account",
			Detail: fmt.Sprintf("no tenant %q is registered", id)}
	}
	switch req.User.Location {
	case id:
	case "":
		if req.User.Type != identity.AgencyUser {
			req.User.Location = id
		}
	default:
		return nil, badRequest(fmt.Sprintf("user.location %q is not tenant %q: a tenant's links are for its own people", req.User.Location, id))
	}
	return target, nil
}

// mint is Mint on the gateway of the link's tenant.
func (g *Gateway) mint(ctx context.Context, req MintRequest, by string) (MintResponse, error) {
	in := func(format string, args ...any) (MintResponse, error) {
		return MintResponse{}, badRequest(fmt.Sprintf(format, args...))
	}
	t, ok := g.apps[req.App]
	if req.App == "" {
		return in("app is required")
	}
	if !ok {
		return in("unknown app %q (declared: %s)", req.App, strings.Join(append([]string{PortalName}, g.appNames...), ", "))
	}
	if req.User.ID == "" {
		return in("user.id is required")
	}
	var ttl time.Duration
	if req.TTL != "" {
		d, err := ParseDuration(req.TTL)
		if err != nil || d <= 0 {
			return in("ttl %q is not a positive duration such as 10m", req.TTL)
		}
		ttl = d
	}
	apps := req.Apps
	for _, name := range apps {
		if name == PortalName || g.apps[name] == nil {
			return in("apps: unknown app %q", name)
		}
	}
	if t.name == PortalName && apps == nil {
		apps = g.AppNames()
	}
	lr := link.Request{App: t.name, User: req.User, Path: req.Path, TTL: ttl, Uses: req.Uses, Apps: apps}
	if err := g.cfg.Codec.Check(lr); err != nil {
		return in("%v", err)
	}
	if err := g.checkSend(req.Send, req.User); err != nil {
		return MintResponse{}, err
	}
	if err := g.claimID(ctx, req.User); err != nil {
		return MintResponse{}, err
	}
	l, err := g.issue(ctx, by, lr)
	if err != nil {
		return MintResponse{}, err
	}
	delivery := ""
	if req.Send == SendEmail {
		delivery = store.DeliverySending
	}
	if err := g.remember(ctx, by, l, delivery); err != nil {
		return MintResponse{}, err
	}
	resp := MintResponse{URL: t.magicURL(l.Token), ID: l.ID, ExpiresAt: l.ExpiresAt}
	if req.Send == SendEmail {
		resp.Delivery = g.sendLink(t, l, resp.URL)
	}
	return resp, nil
}

// claimID makes sure that u's id names u and no one else: a staff member's
// username names that staff member only (the configuration says who), any
// other id whoever the store first recorded for it. An app then never sees
// one user id for two people. A taken id is a 409 Problem.
func (g *Gateway) claimID(ctx context.Context, u identity.User) error {
	h := store.HolderOf(u)
	if st, ok := g.staff[u.ID]; ok {
		if held := store.HolderOf(st.user()); held != h {
			return idTaken(u.ID, held)
		}
		return nil
	}
	held, err := g.cfg.Directory.ClaimID(ctx, u.ID, h)
	if errors.Is(err, store.ErrIDTaken) {
		return idTaken(u.ID, held)
	}
	return err
}

// codeIDTaken is the Problem code of an id that names someone else.
const codeIDTaken = "id_taken"

// idTaken is the 409 Problem for an id that names held already.
func idTaken(id string, held store.Holder) *Problem {
	who := "a contact"
	switch held.Type {
	case identity.AgencyUser:
		who = "an agency user"
	case identity.SubaccountUser:
		who = "a sub-account user of location " + held.Location
	}
	return idTakenProblem(fmt.Sprintf("user id %q names %s: one id is one person, so choose another", id, who))
}

// idTakenProblem is the 409 Problem of an id that names someone else,
// saying which.
func idTakenProblem(detail string) *Problem {
	return &Problem{Status: http.StatusConflict, Code: codeIDTaken, Title: "This id names someone else", Detail: detail}
}

// issue signs a link and keeps its grant in the store, and counts and
// audits it. A request the codec refuses is a 400 Problem.
func (g *Gateway) issue(ctx context.Context, by string, req link.Request) (link.Link, error) {
	return g.issueWith(ctx, g.cfg.Codec, by, req)
}

// issueWith is issue with a codec of its own (an invitation's, which
// outlives link_max_ttl).
func (g *Gateway) issueWith(ctx context.Context, codec *link.Codec, by string, req link.Request) (link.Link, error) {
	// A link is for the tenant whose gateway mints it.
	req.Tenant = g.tenant
	l, err := codec.Mint(req)
	if err != nil {
		return link.Link{}, badRequest(err.Error())
	}
	// The token names the link; the store holds what it grants, and a link
	// is handed out only once the store holds it.
	if err := g.cfg.Store.PutLink(ctx, GrantOf(l)); err != nil {
		return link.Link{}, fmt.Errorf("keeping the link's grant: %w", err)
	}
	g.metrics.Minted.WithLabelValues(req.App).Inc()
	g.audit.linkMinted(by, req.App, req.User.ID, l.ID, l.ExpiresAt)
	return l, nil
}

// GrantOf is what minted link l grants, for the store to keep until the
// link's end (its token's, with the leeway every verification allows).
func GrantOf(l link.Link) store.Grant {
	return store.Grant{
		ID: l.ID, Tenant: l.Tenant, App: l.App, User: l.User, Path: l.Path, Uses: l.Uses, Apps: l.Apps, Origin: l.Origin,
		IssuedAt: l.IssuedAt, Expires: l.ExpiresAt.Add(link.Leeway),
	}
}

// remember records a minted link for the dashboard and, when it is for a
// contact, keeps the contact in the directory.
func (g *Gateway) remember(ctx context.Context, by string, l link.Link, delivery string) error {
	dir := g.cfg.Directory
	u := l.User
	if u.Type == identity.Contact {
		// A mint adds a contact the directory lacks; it never rewrites a known
		// one (the CRM's sync does): a link's fields are not the record.
		_, err := dir.Contact(ctx, u.ID)
		if errors.Is(err, store.ErrNotFound) {
			c := store.Contact{ID: u.ID, Email: u.Email, Name: u.Name, Location: u.Location}
			err = dir.PutContacts(ctx, []store.Contact{c})
		}
		if err != nil {
			return fmt.Errorf("keeping contact: %w", err)
		}
	}
	r := store.LinkRecord{
		ID: l.ID, App: l.App, Path: l.Path, User: u, Uses: l.Uses, By: by,
		IssuedAt: l.IssuedAt, ExpiresAt: l.ExpiresAt, Keep: l.ExpiresAt.Add(linkRecordKeep), Delivery: delivery,
	}
	if err := dir.RecordLink(ctx, r); err != nil {
		return fmt.Errorf("recording link: %w", err)
	}
	return nil
}

// RevokeLink makes a link unusable before it is used (or before its last
// use), and ends the sessions it started, and those launched from them,
// however long ago: sessions outlive links, and "this link reached the
// wrong person" is asked after the link's end too. An id the gateway knows
// nothing of is a 404 Problem.
func (g *Gateway) RevokeLink(ctx context.Context, by, id string) error {
	if len(id) != 22 || strings.Trim(id, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") != "" {
		return badRequest("a link id is the 22-character id the mint returned")
	}
	if err := g.cfg.Store.RevokeLink(ctx, id); err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	userID, err := g.linkUser(ctx, id)
	if err != nil {
		return err
	}
	if userID == "" {
		return &Problem{Status: http.StatusNotFound, Code: "link_not_found", Title: "No such link",
			Detail: "no link with id " + id + " is known: it was never minted here, or so long ago that its record is gone"}
	}
	g.audit.linkRevoked(by, id)
	_, err = g.cfg.Sessions.EndWhere(ctx, userID, func(s *store.Session) bool {
		return s.LinkID == id || strings.HasPrefix(s.Origin, id+"/")
	})
	return err
}

// linkUser is the user of link id: from its grant while the link lives,
// else from the dashboard's record of it (kept days longer); "" when the
// gateway has neither.
func (g *Gateway) linkUser(ctx context.Context, id string) (string, error) {
	l, err := g.cfg.Store.Link(ctx, id)
	if err == nil {
		return l.User.ID, nil
	}
	if !errors.Is(err, store.ErrNotFound) {
		return "", err
	}
	rec, err := g.cfg.Directory.LinkRecord(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return "", nil
	}
	return rec.User.ID, err
}

// RevokeUser ends every session of a user and refuses their links issued
// until now, on this instance's L1 and in the store.
func (g *Gateway) RevokeUser(ctx context.Context, by, userID string) (int, error) {
	if userID == "" {
		return 0, badRequest("a user id is required")
	}
	n, err := g.cfg.Sessions.RevokeUser(ctx, userID, g.revocationHold())
	if err != nil {
		return n, err
	}
	g.audit.userRevoked(by, userID, n)
	return n, nil
}

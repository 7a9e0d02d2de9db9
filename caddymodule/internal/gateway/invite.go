package gateway

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/portalgate/portalgate/caddymodule/internal/identity"
	"github.com/portalgate/portalgate/caddymodule/internal/link"
	"github.com/portalgate/portalgate/caddymodule/internal/portal"
	"github.com/portalgate/portalgate/caddymodule/internal/store"
)

// DefaultInviteTTL is the life of an invitation's link.
const DefaultInviteTTL = 7 * 24 * time.Hour

// problemNoContact is the 404 of an invitation for an id the directory
// does not know.
var problemNoContact = newProblem(http.StatusNotFound, "no_such_contact", "No such contact", "The directory has no contact with this id: sync it first (POST contacts).", "", "")

// inviteTTL is the configured life of an invitation's link.
func (g *Gateway) inviteTTL() time.Duration {
	if g.cfg.InviteTTL > 0 {
		return g.cfg.InviteTTL
	}
	return DefaultInviteTTL
}

// Invite mails contact id a welcome e-mail with a one-time link into the
// portal that lives invite_ttl; by names who asked.
func (g *Gateway) Invite(ctx context.Context, id, by string) (MintResponse, error) {
	t, err := g.contactsTenant(ctx, id)
	if err != nil {
		return MintResponse{}, err
	}
	return t.invite(ctx, id, by)
}

// contactsTenant is the gateway of contact id's tenant: on the default
// tenant's gateway, the tenant of its location when that names one; on a
// tenant's, that tenant's own, whose contact it must be.
func (g *Gateway) contactsTenant(ctx context.Context, id string) (*Gateway, error) {
	if g.tenant != "" {
		return g, nil
	}
	c, err := g.cfg.Directory.Contact(ctx, id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil, problemNoContact
	case err != nil:
		return nil, err
	}
	if t, ok := g.viewOf(c.Location); ok && c.Location != "" {
		return t, nil
	}
	if g.portal == nil {
		// No default portal: a contact of no tenant has nowhere to sign in.
		return nil, problemNoContact
	}
	return g, nil
}

func (g *Gateway) invite(ctx context.Context, id, by string) (MintResponse, error) {
	c, user, err := g.mailableContact(ctx, id)
	if err != nil {
		return MintResponse{}, err
	}
	lr := link.Request{App: PortalName, User: user, TTL: g.inviteTTL(), Apps: g.AppNames()}
	// An invitation outlives link_max_ttl: its own codec bounds it.
	codec := *g.cfg.Codec
	codec.MaxTTL = max(codec.MaxTTL, lr.TTL)
	l, err := g.issueWith(ctx, &codec, by, lr)
	if err != nil {
		return MintResponse{}, err
	}
	if err := g.remember(ctx, by, l, store.DeliverySending); err != nil {
		return MintResponse{}, err
	}
	resp := MintResponse{URL: g.portal.magicURL(l.Token), ID: l.ID, ExpiresAt: l.ExpiresAt, Delivery: deliveryFailed}
	r, err := g.cfg.Mails.Invite(portal.InviteMail{Name: c.Name, URL: resp.URL, Expires: mailTime(l.ExpiresAt)})
	if err != nil {
		return MintResponse{}, err
	}
	if g.mailLink("invite", l, c.Name, c.Email, r) == nil {
		resp.Delivery = deliveryQueued
	}
	return resp, nil
}

// mailableContact is the contact id and its identity, when the gateway can
// mail it: a 404 Problem for an unknown id, a 400 without a mailer or an
// address.
func (g *Gateway) mailableContact(ctx context.Context, id string) (store.Contact, identity.User, error) {
	c, err := g.cfg.Directory.Contact(ctx, id)
	if errors.Is(err, store.ErrNotFound) || (err == nil && !g.ownsLocation(c.Location)) {
		// Another tenant's contact is not there.
		return c, identity.User{}, problemNoContact
	}
	if err != nil {
		return c, identity.User{}, err
	}
	user := contactUser(c)
	return c, user, g.checkSend(SendEmail, user)
}

// keepContact puts a contact staff just entered into the directory, once
// its id is its own.
func (g *Gateway) keepContact(ctx context.Context, u identity.User) error {
	if err := g.claimID(ctx, u); err != nil {
		return err
	}
	return g.cfg.Directory.PutContacts(ctx, []store.Contact{{ID: u.ID, Email: u.Email, Name: u.Name, Location: u.Location}})
}

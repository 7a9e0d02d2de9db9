package gateway

import (
	"context"
	"errors"
	"net/http"
	"time"

	"go.uber.org/zap"

	"github.com/portalgate/portalgate/caddymodule/internal/identity"
	"github.com/portalgate/portalgate/caddymodule/internal/link"
	"github.com/portalgate/portalgate/caddymodule/internal/mail"
	"github.com/portalgate/portalgate/caddymodule/internal/portal"
	"github.com/portalgate/portalgate/caddymodule/internal/store"
)

// SendEmail is the one delivery a mint may ask for: an e-mail to the user.
const SendEmail = "email"

// The delivery a mint reports: the e-mail is queued, or it could not be.
const (
	deliveryQueued = "queued"
	deliveryFailed = "failed"
)

// checkSend says whether a mint's send can be honoured, before anything is
// minted: a 400 Problem when it cannot.
func (g *Gateway) checkSend(send string, u identity.User) error {
	switch send {
	case "":
		return nil
	case SendEmail:
	default:
		return badRequest(`send is "email" or absent, not "` + send + `"`)
	}
	if g.mail == nil {
		return &Problem{Status: http.StatusBadRequest, Code: "no_mailer", Title: "No mailer is configured",
			Detail: "this gateway sends no e-mail: configure a mailer (mailer smtp { … }) to send links"}
	}
	if _, err := mail.ParseEmail(u.Email); err != nil {
		return badRequest("send email needs the user's e-mail address: " + err.Error())
	}
	return nil
}

// sendLink queues the e-mail that delivers a minted link to its user, and
// says whether it is queued. The link stands either way.
func (g *Gateway) sendLink(t *servedApp, l link.Link, url string) string {
	r, err := g.cfg.Mails.Link(portal.LinkMail{
		Name: l.User.Name, AppTitle: t.title, URL: url, Uses: l.Uses, Expires: mailTime(l.ExpiresAt),
	})
	if err != nil {
		g.log.Error("rendering a link e-mail", zap.String("link_id", l.ID), zap.Error(err))
		return deliveryFailed
	}
	if g.mailLink("link", l, l.User.Name, l.User.Email, r) != nil {
		return deliveryFailed
	}
	return deliveryQueued
}

// mailLink queues the rendered e-mail of kind that carries link l to name
// <email>: named by the link, and not delivered past its end.
func (g *Gateway) mailLink(kind string, l link.Link, name, email string, r portal.Rendered) error {
	return g.mail.Enqueue(mail.Message{ID: l.ID, Kind: kind, FromName: g.cfg.Mails.Brand().Sender, To: mail.Address{Name: name, Email: email},
		Subject: r.Subject, Text: r.Text, HTML: r.HTML, Expires: l.ExpiresAt})
}

// mailTime is a time as an e-mail tells it to people.
func mailTime(t time.Time) string { return t.UTC().Format("2 January 2006, 15:04 UTC") }

// contactUser is the identity of a contact of the directory.
func contactUser(c store.Contact) identity.User {
	return identity.User{ID: c.ID, Email: c.Email, Name: c.Name, Type: identity.Contact, Location: c.Location}
}

// delivered learns what became of a message: counted, audited (without the
// address or the content), and logged when it failed.
func (g *Gateway) delivered(m *mail.Message, s mail.Status, try int, err error) {
	status := string(s)
	if errors.Is(err, mail.ErrQueueFull) {
		status = "queue_full"
	}
	g.metrics.Mail.WithLabelValues(m.Kind, status).Inc()
	g.audit.mail(m.Kind, m.ID, status, try)
	if s == mail.Failed {
		// Never the error itself: go-mail's names the recipient.
		g.log.Warn("an e-mail was not delivered", zap.String("kind", m.Kind), zap.String("link_id", m.ID),
			zap.Int("tries", try), zap.String("reason", mail.Describe(err)))
	}
	if s == mail.Queued {
		// The link's record says "sending" from its mint on.
		return
	}
	delivery := store.DeliverySent
	if s == mail.Failed {
		delivery = store.DeliveryFailed
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := g.cfg.Directory.SetDelivery(ctx, m.ID, delivery, m.Expires.Add(linkRecordKeep)); err != nil {
		g.log.Error("recording what became of an e-mail", zap.String("link_id", m.ID), zap.Error(err))
	}
}

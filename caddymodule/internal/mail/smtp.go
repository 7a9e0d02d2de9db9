package mail

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/mail"
	"time"

	gomail "github.com/wneessen/go-mail"
)

// TLSMode is how an SMTP connection is secured.
type TLSMode string

// The TLS modes.
const (
	// StartTLS upgrades a plain connection (port 587), and refuses a server
	// that cannot.
	StartTLS TLSMode = "starttls"
	// ImplicitTLS speaks TLS from the first byte (port 465).
	ImplicitTLS TLSMode = "implicit"
	// NoTLS sends in the clear: for a server on loopback only.
	NoTLS TLSMode = "none"
)

// SMTPConfig is where and how an SMTP sender delivers.
type SMTPConfig struct {
	Host string
	Port int
	// From is the sender, "Name <address>" or a bare address.
	From string
	// Username and Password, when set, authenticate (the strongest
	// mechanism the server offers; never in the clear but to loopback).
	Username, Password string
	TLS                TLSMode
	// TLSConfig, when set, replaces the default (system roots, server name
	// Host), e.g. to trust a private CA.
	TLSConfig *tls.Config
	// HELO is the name the client greets with. Default: localhost.
	HELO string
}

// SMTP delivers messages to a mail server, one connection per message.
type SMTP struct {
	cfg  SMTPConfig
	from *mail.Address
}

// NewSMTP checks cfg and returns its sender.
func NewSMTP(cfg SMTPConfig) (*SMTP, error) {
	if cfg.Host == "" {
		return nil, errors.New("the SMTP host is required")
	}
	if cfg.Port < 1 || cfg.Port > 65535 {
		return nil, fmt.Errorf("the SMTP port %d is out of range", cfg.Port)
	}
	from, err := mail.ParseAddress(cfg.From)
	if err != nil {
		return nil, fmt.Errorf("the sender %q is not an address: %w", cfg.From, err)
	}
	switch cfg.TLS {
	case StartTLS, ImplicitTLS, NoTLS:
	default:
		return nil, fmt.Errorf("the SMTP TLS mode %q is not starttls, implicit or none", cfg.TLS)
	}
	if cfg.Password != "" && cfg.Username == "" {
		return nil, errors.New("an SMTP password needs a username")
	}
	return &SMTP{cfg: cfg, from: from}, nil
}

// From is the sender's address.
func (s *SMTP) From() *mail.Address { return s.from }

// Send implements Sender. A refusal the server says is final (5xx) is
// Permanent.
func (s *SMTP) Send(ctx context.Context, m Message) error {
	msg := gomail.NewMsg(gomail.WithNoDefaultUserAgent())
	from := s.from
	if m.FromName != "" {
		from = &mail.Address{Name: m.FromName, Address: s.from.Address}
	}
	msg.FromMailAddress(from)
	if err := msg.AddToFormat(m.To.Name, m.To.Email); err != nil {
		return Permanent(fmt.Errorf("recipient: %w", err))
	}
	msg.Subject(m.Subject)
	msg.SetMessageID()
	msg.SetDate()
	msg.SetBodyString(gomail.TypeTextPlain, m.Text)
	if m.HTML != "" {
		msg.AddAlternativeString(gomail.TypeTextHTML, m.HTML)
	}
	c, err := gomail.NewClient(s.cfg.Host, s.options(ctx)...)
	if err != nil {
		return Permanent(err)
	}
	if err := c.DialAndSendWithContext(ctx, msg); err != nil {
		var se *gomail.SendError
		if errors.As(err, &se) && !se.IsTemp() && se.ErrorCode() >= 500 {
			return Permanent(err)
		}
		return err
	}
	return nil
}

func (s *SMTP) options(ctx context.Context) []gomail.Option {
	opts := []gomail.Option{gomail.WithPort(s.cfg.Port), gomail.WithHELO(cmp.Or(s.cfg.HELO, "localhost"))}
	if d, ok := ctx.Deadline(); ok {
		opts = append(opts, gomail.WithTimeout(time.Until(d)))
	}
	tc := s.cfg.TLSConfig
	if tc == nil {
		tc = &tls.Config{ServerName: s.cfg.Host, MinVersion: tls.VersionTLS12}
	}
	switch s.cfg.TLS {
	case StartTLS:
		opts = append(opts, gomail.WithTLSPolicy(gomail.TLSMandatory), gomail.WithTLSConfig(tc))
	case ImplicitTLS:
		opts = append(opts, gomail.WithSSL(), gomail.WithTLSConfig(tc))
	case NoTLS:
		opts = append(opts, gomail.WithTLSPolicy(gomail.NoTLS))
	}
	if s.cfg.Username != "" {
		opts = append(opts, gomail.WithSMTPAuth(gomail.SMTPAuthAutoDiscover),
			gomail.WithUsername(s.cfg.Username), gomail.WithPassword(s.cfg.Password))
	}
	return opts
}

// Describe says why a delivery failed in words fit for a log line: the
// SMTP reply code, or the kind of failure, never the server's text or an
// address (go-mail's errors name the recipients, and servers echo them).
func Describe(err error) string {
	var se *gomail.SendError
	var ne net.Error
	switch {
	case err == nil:
		return ""
	case errors.Is(err, ErrQueueFull), errors.Is(err, ErrClosed), errors.Is(err, ErrExpired):
		return err.Error()
	case errors.As(err, &se):
		kind := "temporary"
		if !se.IsTemp() {
			kind = "permanent"
		}
		if code := se.ErrorCode(); code != 0 {
			return fmt.Sprintf("the mail server refused it (%s, reply %d %s)", kind, code, se.EnhancedStatusCode())
		}
		return "the mail server refused it (" + kind + ")"
	case errors.Is(err, context.DeadlineExceeded):
		return "the mail server did not answer in time"
	case errors.As(err, &ne):
		return "the mail server could not be reached: " + ne.Error()
	}
	return "the e-mail could not be handed over"
}

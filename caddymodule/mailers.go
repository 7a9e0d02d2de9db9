package caddymodule

import (
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/portalgate/portalgate/caddymodule/internal/mail"
)

func init() {
	caddy.RegisterModule(SMTPMailer{})
	caddy.RegisterModule(OutboxMailer{})
}

// mailerConverter is a mailer module: configuration that builds the sender
// the gateway's mail queue delivers through.
type mailerConverter interface {
	Sender() mail.Sender
}

// SMTPMailer delivers the gateway's e-mails to an SMTP server.
type SMTPMailer struct {
	// Host of the SMTP server. Required.
	Host string `json:"host,omitempty"`
	// Port of the SMTP server. Default: 587 with starttls, 465 with
	// implicit, 25 with none.
	Port int `json:"port,omitempty"`
	// From is the sender: "Acme Portal <portal@acme.example>". Required.
	From string `json:"from,omitempty"`
	// Username and Password authenticate; the password may be a placeholder
	// such as {env.SMTP_PASSWORD}. Default: no authentication.
	Username string `json:"username,omitempty"`
	Password string `json:"password,omitempty"`
	// TLS is starttls (upgrade, and refuse a server that cannot), implicit
	// (TLS from the first byte) or none (the clear, for a relay on
	// loopback). Default: starttls.
	TLS string `json:"tls,omitempty"`
	// Timeout bounds one delivery attempt. Default: 30s.
	Timeout caddy.Duration `json:"timeout,omitempty"`

	sender *mail.SMTP
}

// CaddyModule returns the Caddy module information.
func (SMTPMailer) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "portalgate.mailers.smtp",
		New: func() caddy.Module { return new(SMTPMailer) },
	}
}

// Provision checks the settings and builds the sender.
func (m *SMTPMailer) Provision(caddy.Context) error {
	setDefault(&m.Timeout, 30*time.Second)
	if m.TLS == "" {
		m.TLS = string(mail.StartTLS)
	}
	if m.Port == 0 {
		m.Port = map[string]int{string(mail.StartTLS): 587, string(mail.ImplicitTLS): 465, string(mail.NoTLS): 25}[m.TLS]
	}
	password := caddy.NewReplacer().ReplaceKnown(m.Password, "")
	if m.TLS == string(mail.NoTLS) && m.Username != "" && !isLoopback(m.Host) {
		return fmt.Errorf("portalgate: mailer smtp: tls none would send the password to %s in the clear; use starttls or implicit", m.Host)
	}
	s, err := mail.NewSMTP(mail.SMTPConfig{Host: m.Host, Port: m.Port, From: m.From,
		Username: m.Username, Password: password, TLS: mail.TLSMode(m.TLS)})
	if err != nil {
		return fmt.Errorf("portalgate: mailer smtp: %w", err)
	}
	m.sender = s
	return nil
}

// isLoopback reports whether host is a loopback address or localhost.
func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Sender implements mailerConverter.
func (m *SMTPMailer) Sender() mail.Sender { return m.sender }

// timeout implements timedMailer.
func (m *SMTPMailer) timeout() time.Duration { return time.Duration(m.Timeout) }

// timedMailer is a mailer with its own bound on one delivery attempt.
type timedMailer interface {
	timeout() time.Duration
}

// UnmarshalCaddyfile sets up the mailer from Caddyfile tokens.
//
// Syntax:
//
//	mailer smtp {
//		host     <host>
//		port     <port>
//		from     "<name> <address>"
//		username <username>
//		password <password>
//		tls      starttls|implicit|none
//		timeout  <duration>
//	}
func (m *SMTPMailer) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // mailer name
	if d.NextArg() {
		return d.ArgErr()
	}
	for d.NextBlock(0) {
		opt := d.Val()
		if !d.NextArg() {
			return d.Errf("mailer smtp option %s takes a value", opt)
		}
		v := d.Val()
		if d.NextArg() {
			return d.Errf("mailer smtp option %s takes one value", opt)
		}
		switch opt {
		case "host":
			m.Host = v
		case "port":
			p, err := strconv.Atoi(v)
			if err != nil || p < 1 || p > 65535 {
				return d.Errf("mailer smtp port %q is not a port number", v)
			}
			m.Port = p
		case "from":
			m.From = v
		case "username":
			m.Username = v
		case "password":
			m.Password = v
		case "tls":
			switch mail.TLSMode(v) {
			case mail.StartTLS, mail.ImplicitTLS, mail.NoTLS:
			default:
				return d.Errf("mailer smtp tls is starttls, implicit or none, not %q", v)
			}
			m.TLS = v
		case "timeout":
			t, err := caddy.ParseDuration(v)
			if err != nil || t <= 0 {
				return d.Errf("mailer smtp timeout %q is not a positive duration", v)
			}
			m.Timeout = caddy.Duration(t)
		default:
			return d.Errf("unknown mailer smtp option %q", opt)
		}
	}
	if m.Host == "" || m.From == "" {
		return d.Err("mailer smtp needs a host and a from address")
	}
	return nil
}

// outboxSize is how many messages the outbox keeps.
const outboxSize = 200

// outboxes shares the process's outbox across config reloads, so a reload
// does not empty what staff are reading.
var outboxes = caddy.NewUsagePool()

type pooledOutbox struct{ *mail.Outbox }

func (pooledOutbox) Destruct() error { return nil }

// OutboxMailer sends nothing: it keeps the newest 200 messages in memory,
// and staff read them on the dashboard (Outbox) as the recipient would.
// For the demo and trials.
type OutboxMailer struct {
	outbox *mail.Outbox
}

// CaddyModule returns the Caddy module information.
func (OutboxMailer) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "portalgate.mailers.outbox",
		New: func() caddy.Module { return new(OutboxMailer) },
	}
}

// Provision joins the process's outbox.
func (m *OutboxMailer) Provision(caddy.Context) error {
	v, _, err := outboxes.LoadOrNew("outbox", func() (caddy.Destructor, error) {
		return pooledOutbox{mail.NewOutbox(outboxSize, time.Now)}, nil
	})
	if err != nil {
		return err
	}
	m.outbox = v.(pooledOutbox).Outbox
	return nil
}

// Cleanup lets go of the outbox; the last config to hold it drops it.
func (m *OutboxMailer) Cleanup() error {
	_, err := outboxes.Delete("outbox")
	return err
}

// Sender implements mailerConverter.
func (m *OutboxMailer) Sender() mail.Sender { return m.outbox }

// Outbox is what the dashboard lists.
func (m *OutboxMailer) Outbox() *mail.Outbox { return m.outbox }

// UnmarshalCaddyfile sets up the mailer from Caddyfile tokens.
//
// Syntax:
//
//	mailer outbox
func (m *OutboxMailer) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	return noOptions(d, "mailer outbox")
}

// Interface guards.
var (
	_ caddy.Provisioner     = (*SMTPMailer)(nil)
	_ caddyfile.Unmarshaler = (*SMTPMailer)(nil)
	_ mailerConverter       = (*SMTPMailer)(nil)
	_ caddy.Provisioner     = (*OutboxMailer)(nil)
	_ caddy.CleanerUpper    = (*OutboxMailer)(nil)
	_ caddyfile.Unmarshaler = (*OutboxMailer)(nil)
	_ mailerConverter       = (*OutboxMailer)(nil)
)

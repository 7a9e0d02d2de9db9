// Package mail sends the gateway's e-mails: sign-in links and codes, links
// staff send, invitations. A Sender delivers one message (SMTP, or the demo's
// outbox); a Queue puts sends behind the request that asked for them,
// bounded, with retries, and reports what became of each.
//
// A message carries a live sign-in link or code: no part of one, nor its
// address, ever goes to a log line.
package mail

import (
	"context"
	"errors"
	"net/mail"
	"strings"
	"time"
)

// Address is a recipient: a display name and an e-mail address.
type Address struct {
	Name, Email string
}

// String formats a as a header value, quoting the name as RFC 5322 asks.
func (a Address) String() string {
	return (&mail.Address{Name: a.Name, Address: a.Email}).String()
}

// Message is one e-mail.
type Message struct {
	// ID names the message in what the queue reports: the id of the link
	// it carries, when it carries one.
	ID string
	// Kind is what the message is for (a metric's label): link, signin,
	// invite.
	Kind string
	// FromName, when set, names the sender (a sub-account's own name) in
	// place of the configured sender's name; the address stays the
	// configured one.
	FromName string
	To       Address
	Subject  string
	// Text is the plain-text body; HTML, when set, its alternative.
	Text, HTML string
	// Expires, when set, is when what the message carries (a link, a
	// code) stops working: the queue does not deliver it later.
	Expires time.Time
}

// Sender delivers one message: hands it to a mail server, or keeps it.
type Sender interface {
	Send(ctx context.Context, m Message) error
}

// permanent marks an error that retrying cannot mend.
type permanent struct{ err error }

func (p permanent) Error() string { return p.err.Error() }
func (p permanent) Unwrap() error { return p.err }

// Permanent marks err as one that retrying cannot mend (an address the
// server refuses, a message it will never take): the queue gives up at once.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return permanent{err}
}

// IsPermanent reports whether err was marked Permanent.
func IsPermanent(err error) bool {
	var p permanent
	return errors.As(err, &p)
}

// ParseEmail checks an address as a person typed it: trimmed, one plain
// addr-spec (no display name, no group, no comment), at most 254 bytes, and
// no control characters, so that it can reach no header but To.
//
// Mail for a contact goes to the address in the contact's record, never to
// the one typed: an address that only folds to a contact's (a Kelvin sign
// for a K) reaches nobody but the contact.
func ParseEmail(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" || len(s) > 254 {
		return "", errors.New("an e-mail address has 1 to 254 characters")
	}
	// The error never repeats what was typed: answers and logs show it.
	bad := errors.New("that is not an e-mail address")
	if strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f || strings.ContainsRune(" <>,;\"()[]\\", r) }) {
		return "", bad
	}
	a, err := mail.ParseAddress(s)
	if err != nil || a.Name != "" || a.Address != s {
		return "", bad
	}
	at := strings.LastIndexByte(s, '@')
	if at < 1 || !strings.Contains(s[at+1:], ".") && s[at+1:] != "localhost" {
		return "", bad
	}
	return s, nil
}

// Package identity describes who a magic link or a session stands for.
package identity

import (
	"errors"
	"fmt"
)

// Type is the kind of user a link or session stands for.
type Type string

// The user types a portal knows.
const (
	Contact        Type = "contact"
	SubaccountUser Type = "subaccount_user"
	AgencyUser     Type = "agency_user"
)

// ParseType returns the Type named s; the empty string means Contact.
func ParseType(s string) (Type, error) {
	switch t := Type(s); t {
	case "":
		return Contact, nil
	case Contact, SubaccountUser, AgencyUser:
		return t, nil
	}
	return "", fmt.Errorf("unknown user type %q (want contact, subaccount_user or agency_user)", s)
}

// User is the identity a session carries and a child app receives.
type User struct {
	ID       string `json:"id"`
	Email    string `json:"email,omitempty"`
	Name     string `json:"name,omitempty"`
	Type     Type   `json:"type,omitempty"`
	Location string `json:"location,omitempty"`
}

// maxField bounds every identity field: the values travel in HTTP headers.
const maxField = 256

// Validate reports whether u can be minted into a link and sent to apps as headers.
func (u User) Validate() error {
	if u.ID == "" {
		return errors.New("user id is required")
	}
	if _, err := ParseType(string(u.Type)); err != nil {
		return err
	}
	for _, f := range []struct{ name, value string }{
		{"id", u.ID}, {"email", u.Email}, {"name", u.Name}, {"location", u.Location},
	} {
		if len(f.value) > maxField {
			return fmt.Errorf("user %s is longer than %d bytes", f.name, maxField)
		}
		// Control characters would let a value split or smuggle HTTP headers.
		for _, c := range []byte(f.value) {
			if c < 0x20 || c == 0x7f {
				return fmt.Errorf("user %s contains a control character", f.name)
			}
		}
	}
	return nil
}

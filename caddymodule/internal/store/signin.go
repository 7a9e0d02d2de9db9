package store

import (
	"context"
	"strings"
	"time"
)

// SignIn is what a sign-in e-mail lets the browser that asked for it do
// with the code instead of the link: spend the same link, as the same user.
// Link and code are one: whichever is used first spends the link.
type SignIn struct {
	// Browser keys the sign-in: a hash of the nonce in the asking
	// browser's cookie (the store never sees the nonce).
	Browser string `json:"browser"`
	// Address is the contact's address as AddressKey folds it: one
	// sign-in per address is live, a new one voids the one before.
	Address string `json:"address"`
	// CodeHash is a keyed hash of the code (the store never sees the code).
	CodeHash []byte `json:"code_hash"`
	// Link is what the code spends: the grant of the same e-mail's link,
	// which says who it signs in, what the session may launch and where it
	// lands.
	Link Grant `json:"link"`
	// Tries counts the codes typed so far, this one included (TrySignIn).
	Tries int `json:"-"`
	// Decoy marks a sign-in that stands in for one never made (an address
	// that may not sign in, or asked too often): its code never matches,
	// and it takes no address's place.
	Decoy bool `json:"decoy,omitempty"`
}

// Expires is when the sign-in ends: with its link.
func (s *SignIn) Expires() time.Time { return s.Link.Expires }

// AddressKey folds an e-mail address for comparison: trimmed, ASCII lower
// case (a Unicode fold would make a Kelvin sign a K).
func AddressKey(email string) string {
	b := []byte(strings.TrimSpace(email))
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// SignIns keeps the sign-ins that sign-in e-mails started, each until its
// link's end. Implementations are safe for concurrent use.
type SignIns interface {
	// PutSignIn keeps s as the one sign-in of its browser and of its
	// address, and returns the id of the link of the address's sign-in it
	// replaced ("" for none): the caller revokes that link, so an older
	// e-mail's link and code die with it. A decoy is its browser's only.
	PutSignIn(ctx context.Context, s SignIn) (replaced string, err error)
	// TrySignIn counts a try of the code of browser's sign-in and returns
	// the sign-in with the tries so far, this one included. At the
	// maxTries-th try the sign-in is forgotten (that try is still
	// answered). ErrNotFound when there is none: never was, ended, replaced
	// or out of tries.
	TrySignIn(ctx context.Context, browser string, maxTries int) (SignIn, error)
	// EndSignIn forgets browser's sign-in, once its link is spent.
	EndSignIn(ctx context.Context, browser string) error
	// AddCodeFailure counts a wrong code typed for address (an AddressKey),
	// and returns the count since the first of them, which is kept until
	// `until` (set by the first). CodeFailures reads the count; both count
	// every instance's, so that guesses are bounded per address, whatever
	// the e-mails and browsers they come through.
	AddCodeFailure(ctx context.Context, address string, until time.Time) (int, error)
	CodeFailures(ctx context.Context, address string) (int, error)
}

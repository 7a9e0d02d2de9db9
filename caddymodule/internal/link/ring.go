package link

import (
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"strings"
	"sync"

	"github.com/golang-jwt/jwt/v5"
)

// MinSecretLen is the shortest HMAC secret a ring accepts (256 bits, the size
// of the HS256 output).
const MinSecretLen = 32

// Key is one named HMAC secret.
type Key struct {
	ID     string
	Secret []byte
}

// Ring holds the signing keys: the first signs, every key verifies, so keys
// can be rotated without breaking links already sent.
type Ring struct {
	keys []*ringKey
	// byHeader finds a key by the encoded JOSE header of the tokens it
	// signs: a token's header is one of these, byte for byte, or the token
	// is not ours.
	byHeader map[string]*ringKey
}

// ringKey is a key with what signing and verifying under it need ready.
type ringKey struct {
	Key
	// header is the encoded JOSE header of its tokens (HS256, the link
	// type, its id), as golang-jwt writes it.
	header string
	// macs keeps HMAC states keyed with the secret, so that a verification
	// neither allocates nor rekeys one.
	macs sync.Pool
}

// mac is a pooled HMAC state and room for its sum.
type mac struct {
	hash.Hash
	sum [sha256.Size]byte
}

// NewRing builds a ring from keys, first the one that signs.
func NewRing(keys ...Key) (*Ring, error) {
	if len(keys) == 0 {
		return nil, errors.New("a key ring needs at least one key")
	}
	r := &Ring{byHeader: make(map[string]*ringKey, len(keys))}
	ids := make(map[string]bool, len(keys))
	for _, k := range keys {
		if k.ID == "" {
			return nil, errors.New("a signing key needs an id")
		}
		if len(k.Secret) < MinSecretLen {
			return nil, fmt.Errorf("signing key %q is %d bytes; it must be at least %d", k.ID, len(k.Secret), MinSecretLen)
		}
		if ids[k.ID] {
			return nil, fmt.Errorf("signing key id %q is used twice", k.ID)
		}
		ids[k.ID] = true
		rk := &ringKey{Key: k}
		rk.macs.New = func() any { return &mac{Hash: hmac.New(sha256.New, rk.Secret)} }
		// The header is the part of an empty token before its claims.
		head, err := rk.token(&Claims{}).SigningString()
		if err != nil {
			return nil, fmt.Errorf("signing key %q: %w", k.ID, err)
		}
		rk.header, _, _ = strings.Cut(head, ".")
		r.keys = append(r.keys, rk)
		r.byHeader[rk.header] = rk
	}
	return r, nil
}

// token is a golang-jwt token of claims to be signed by k.
func (k *ringKey) token(claims *Claims) *jwt.Token {
	t := jwt.NewWithClaims(jwt.SigningMethodHS256, claims)
	t.Header["kid"] = k.ID
	t.Header["typ"] = TokenType
	return t
}

// sign returns the signed token of claims.
func (k *ringKey) sign(claims *Claims) (string, error) {
	return k.token(claims).SignedString(k.Secret)
}

// verify reports whether sig is k's HMAC of signed, in constant time.
func (k *ringKey) verify(signed, sig []byte) bool {
	m := k.macs.Get().(*mac)
	defer k.macs.Put(m)
	m.Reset()
	m.Write(signed) //nolint:errcheck,gosec // a hash never fails to write
	return hmac.Equal(m.Sum(m.sum[:0]), sig)
}

func (r *Ring) signing() *ringKey { return r.keys[0] }

// Derive returns a key for another purpose (label), derived from the signing
// key with HMAC, so the secret itself never leaves the ring.
func (r *Ring) Derive(label string) []byte {
	mac := hmac.New(sha256.New, r.keys[0].Secret)
	mac.Write([]byte("portalgate derive\x00" + label))
	return mac.Sum(nil)
}

// SigningID is the id of the key that signs.
func (r *Ring) SigningID() string { return r.keys[0].ID }

// Len is how many keys verify.
func (r *Ring) Len() int { return len(r.keys) }

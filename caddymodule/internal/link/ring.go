package link

import (
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
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
	keys []Key
	byID map[string][]byte
}

// NewRing builds a ring from keys, first the one that signs.
func NewRing(keys ...Key) (*Ring, error) {
	if len(keys) == 0 {
		return nil, errors.New("a key ring needs at least one key")
	}
	r := &Ring{keys: keys, byID: make(map[string][]byte, len(keys))}
	for _, k := range keys {
		if k.ID == "" {
			return nil, errors.New("a signing key needs an id")
		}
		if len(k.Secret) < MinSecretLen {
			return nil, fmt.Errorf("signing key %q is %d bytes; it must be at least %d", k.ID, len(k.Secret), MinSecretLen)
		}
		if _, dup := r.byID[k.ID]; dup {
			return nil, fmt.Errorf("signing key id %q is used twice", k.ID)
		}
		r.byID[k.ID] = k.Secret
	}
	return r, nil
}

func (r *Ring) signing() Key { return r.keys[0] }

func (r *Ring) lookup(kid string) ([]byte, bool) {
	s, ok := r.byID[kid]
	return s, ok
}

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

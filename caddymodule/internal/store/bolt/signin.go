package bolt

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"time"

	"go.etcd.io/bbolt"

	"github.com/portalgate/portalgate/caddymodule/internal/store"
)

// A sign-in is kept under its browser as tries (8 bytes) then its JSON; an
// address's last sign-in as its end (8 bytes), the browser, 0, the link id.

// PutSignIn implements store.SignIns.
func (s *Store) PutSignIn(_ context.Context, si store.SignIn) (string, error) {
	v, err := json.Marshal(si)
	if err != nil {
		return "", fmt.Errorf("encoding sign-in: %w", err)
	}
	replaced := ""
	err = s.db.Update(func(tx *bbolt.Tx) error {
		replaced = ""
		signIns, last := tx.Bucket(bucketSignIns), tx.Bucket(bucketLastSignIn)
		if si.Decoy {
			return signIns.Put([]byte(si.Browser), append(make([]byte, 8), v...))
		}
		if prev := last.Get([]byte(si.Address)); len(prev) > 8 && s.now().Before(decodeTime(prev[:8])) {
			browser, link, _ := bytes.Cut(prev[8:], []byte{0})
			replaced = string(link)
			if cur, ok := decodeSignIn(signIns.Get(browser)); ok && cur.Link.ID == replaced {
				if err := signIns.Delete(browser); err != nil {
					return err
				}
			}
		}
		if err := signIns.Put([]byte(si.Browser), append(make([]byte, 8), v...)); err != nil {
			return err
		}
		return last.Put([]byte(si.Address), bytes.Join([][]byte{encodeTime(si.Expires()), []byte(si.Browser), {0}, []byte(si.Link.ID)}, nil))
	})
	if err != nil {
		return "", fmt.Errorf("keeping sign-in: %w", err)
	}
	return replaced, nil
}

// decodeSignIn reads a kept sign-in with its tries.
func decodeSignIn(v []byte) (store.SignIn, bool) {
	var si store.SignIn
	if len(v) < 8 || json.Unmarshal(v[8:], &si) != nil {
		return si, false
	}
	si.Tries = int(binary.BigEndian.Uint64(v[:8])) //nolint:gosec // a count this package wrote
	return si, true
}

// TrySignIn implements store.SignIns.
func (s *Store) TrySignIn(_ context.Context, browser string, maxTries int) (store.SignIn, error) {
	var out store.SignIn
	missing := false
	err := s.db.Update(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketSignIns)
		si, ok := decodeSignIn(b.Get([]byte(browser)))
		if missing = !ok || !s.now().Before(si.Expires()); missing {
			return b.Delete([]byte(browser))
		}
		si.Tries++
		out = si
		if si.Tries >= maxTries {
			return b.Delete([]byte(browser))
		}
		v := append([]byte(nil), b.Get([]byte(browser))...)
		binary.BigEndian.PutUint64(v[:8], uint64(si.Tries)) //nolint:gosec // a small count
		return b.Put([]byte(browser), v)
	})
	switch {
	case err != nil:
		return store.SignIn{}, fmt.Errorf("trying a sign-in code: %w", err)
	case missing:
		return store.SignIn{}, store.ErrNotFound
	}
	return out, nil
}

// EndSignIn implements store.SignIns.
func (s *Store) EndSignIn(_ context.Context, browser string) error {
	return s.db.Update(func(tx *bbolt.Tx) error { return tx.Bucket(bucketSignIns).Delete([]byte(browser)) })
}

// purgeSignIns deletes the sign-ins that ended by now, the addresses'
// records of them, and the counts of wrong codes past their end: few, each
// lives minutes or a day, so they are scanned. It counts the sign-ins.
func (s *Store) purgeSignIns(tx *bbolt.Tx) (int, error) {
	now := s.now()
	n, err := deleteWhere(tx.Bucket(bucketSignIns), func(v []byte) bool {
		si, ok := decodeSignIn(v)
		return !ok || !now.Before(si.Expires())
	})
	if err != nil {
		return 0, err
	}
	ended := func(size int) func(v []byte) bool {
		return func(v []byte) bool { return len(v) < size || !now.Before(decodeTime(v[:8])) }
	}
	if _, err := deleteWhere(tx.Bucket(bucketLastSignIn), ended(9)); err != nil {
		return 0, err
	}
	if _, err := deleteWhere(tx.Bucket(bucketCodeFails), ended(16)); err != nil {
		return 0, err
	}
	return n, nil
}

// deleteWhere deletes the keys of b whose value gone says is to go, and
// counts them.
func deleteWhere(b *bbolt.Bucket, gone func(v []byte) bool) (int, error) {
	var keys [][]byte
	err := b.ForEach(func(k, v []byte) error {
		if gone(v) {
			keys = append(keys, append([]byte(nil), k...))
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	for _, k := range keys {
		if err := b.Delete(k); err != nil {
			return 0, err
		}
	}
	return len(keys), nil
}

// AddCodeFailure implements store.SignIns.
func (s *Store) AddCodeFailure(_ context.Context, address string, until time.Time) (int, error) {
	n := 0
	err := s.db.Update(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketCodeFails)
		v := b.Get([]byte(address))
		if len(v) == 16 && s.now().Before(decodeTime(v[:8])) {
			n = int(binary.BigEndian.Uint64(v[8:])) //nolint:gosec // a count this package wrote
		} else {
			v = encodeTime(until)
			n = 0
		}
		n++
		return b.Put([]byte(address), binary.BigEndian.AppendUint64(append([]byte(nil), v[:8]...), uint64(n))) //nolint:gosec // a small count
	})
	if err != nil {
		return 0, fmt.Errorf("counting a wrong code: %w", err)
	}
	return n, nil
}

// CodeFailures implements store.SignIns.
func (s *Store) CodeFailures(_ context.Context, address string) (int, error) {
	n := 0
	err := s.db.View(func(tx *bbolt.Tx) error {
		v := tx.Bucket(bucketCodeFails).Get([]byte(address))
		if len(v) == 16 && s.now().Before(decodeTime(v[:8])) {
			n = int(binary.BigEndian.Uint64(v[8:])) //nolint:gosec // a count this package wrote
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("reading wrong codes: %w", err)
	}
	return n, nil
}

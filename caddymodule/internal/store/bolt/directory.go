package bolt

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/portalgate/portalgate/caddymodule/internal/store"
)

// PutContacts implements store.Directory.
func (s *Store) PutContacts(_ context.Context, cs []store.Contact) error {
	if len(cs) == 0 {
		return nil
	}
	vs := make([][]byte, len(cs))
	for i, c := range cs {
		if c.ID == "" {
			return errors.New("storing contacts: a contact has no id")
		}
		v, err := json.Marshal(c)
		if err != nil {
			return fmt.Errorf("encoding contact: %w", err)
		}
		vs[i] = v
	}
	err := s.db.Update(func(tx *bbolt.Tx) error {
		for _, c := range cs {
			if h, ok, err := holder(tx, c.ID); err != nil {
				return err
			} else if ok && h != store.ContactHolder {
				return fmt.Errorf("contact %q: %w", c.ID, store.ErrIDTaken)
			}
		}
		b, index := tx.Bucket(bucketContacts), tx.Bucket(bucketByEmail)
		for i, c := range cs {
			if v := b.Get([]byte(c.ID)); v != nil {
				var old store.Contact
				if err := json.Unmarshal(v, &old); err == nil {
					if err := index.Delete(emailKey(old.Email, old.ID)); err != nil {
						return err
					}
				}
			}
			if err := b.Put([]byte(c.ID), vs[i]); err != nil {
				return err
			}
			if store.AddressKey(c.Email) != "" {
				if err := index.Put(emailKey(c.Email, c.ID), nil); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("storing contacts: %w", err)
	}
	return nil
}

// ClaimID implements store.Directory, in one transaction.
func (s *Store) ClaimID(_ context.Context, id string, h store.Holder) (store.Holder, error) {
	v, err := json.Marshal(h)
	if err != nil {
		return store.Holder{}, fmt.Errorf("encoding holder: %w", err)
	}
	held := h
	err = s.db.Update(func(tx *bbolt.Tx) error {
		old, ok, err := holder(tx, id)
		switch {
		case err != nil:
			return err
		case !ok:
			return tx.Bucket(bucketHolders).Put([]byte(id), v)
		case old != h:
			held = old
			return store.ErrIDTaken
		}
		return nil
	})
	if errors.Is(err, store.ErrIDTaken) {
		return held, err
	}
	if err != nil {
		return store.Holder{}, fmt.Errorf("claiming id: %w", err)
	}
	return held, nil
}

// holder reads who id names: its claim, or a contact record of the time
// before claims.
func holder(tx *bbolt.Tx, id string) (store.Holder, bool, error) {
	if v := tx.Bucket(bucketHolders).Get([]byte(id)); v != nil {
		var h store.Holder
		if err := json.Unmarshal(v, &h); err != nil {
			return store.Holder{}, false, fmt.Errorf("decoding holder: %w", err)
		}
		return h, true, nil
	}
	if tx.Bucket(bucketContacts).Get([]byte(id)) != nil {
		return store.ContactHolder, true, nil
	}
	return store.Holder{}, false, nil
}

// Contact implements store.Directory.
func (s *Store) Contact(_ context.Context, id string) (store.Contact, error) {
	var c store.Contact
	err := s.db.View(func(tx *bbolt.Tx) error {
		v := tx.Bucket(bucketContacts).Get([]byte(id))
		if v == nil {
			return store.ErrNotFound
		}
		return json.Unmarshal(v, &c)
	})
	if errors.Is(err, store.ErrNotFound) {
		return store.Contact{}, err
	}
	if err != nil {
		return store.Contact{}, fmt.Errorf("reading contact: %w", err)
	}
	return c, nil
}

// ScanContacts implements store.Scanner.
func (s *Store) ScanContacts(context.Context) ([]store.Contact, error) {
	var cs []store.Contact
	err := s.db.View(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketContacts)
		cs = make([]store.Contact, 0, b.Stats().KeyN)
		return b.ForEach(func(_, v []byte) error {
			var c store.Contact
			if err := json.Unmarshal(v, &c); err != nil {
				return fmt.Errorf("decoding contact: %w", err)
			}
			cs = append(cs, c)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("reading contacts: %w", err)
	}
	return cs, nil
}

// RecordLink implements store.Directory. The record and the trimming of the
// oldest beyond store.MaxLinkRecords are one transaction, batched like a
// redemption: links may be minted in bursts.
func (s *Store) RecordLink(_ context.Context, r store.LinkRecord) error {
	v, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("encoding link record: %w", err)
	}
	err = s.db.Batch(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketRecords)
		// Keyed like the expiry indexes, so a cursor walks them in issue order.
		if err := b.Put(deadlineKey(r.IssuedAt, r.ID), v); err != nil {
			return err
		}
		// Walk back over the newest; whatever lies beyond them goes.
		c := b.Cursor()
		k, _ := c.Last()
		for i := 0; i < store.MaxLinkRecords && k != nil; i++ {
			k, _ = c.Prev()
		}
		var old [][]byte
		for ; k != nil; k, _ = c.Prev() {
			old = append(old, append([]byte(nil), k...))
		}
		for _, k := range old {
			if err := b.Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("recording link: %w", err)
	}
	return nil
}

// ScanLinks implements store.Scanner: newest first, each with what its use
// record says while the link has one.
func (s *Store) ScanLinks(context.Context) ([]store.LinkRecord, error) {
	var rs []store.LinkRecord
	err := s.db.View(func(tx *bbolt.Tx) error {
		now := s.now()
		c := tx.Bucket(bucketRecords).Cursor()
		for k, v := c.Last(); k != nil; k, v = c.Prev() {
			var r store.LinkRecord
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("decoding link record: %w", err)
			}
			if !now.Before(r.Keep) {
				continue
			}
			r.Spent, r.Revoked = s.uses(tx, r.ID, now)
			if s.userCutOff(tx, r.User.ID, r.IssuedAt, now) {
				r.Revoked = true
			}
			rs = append(rs, r)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading link records: %w", err)
	}
	return rs, nil
}

// Menu implements store.Directory.
func (s *Store) Menu(_ context.Context, tenant string) (store.Menu, error) {
	var m store.Menu
	err := s.db.View(func(tx *bbolt.Tx) error {
		var err error
		m, err = readMenu(tx, tenant)
		return err
	})
	if err != nil {
		return store.Menu{}, fmt.Errorf("reading menu: %w", err)
	}
	return m, nil
}

// SetMenu implements store.Directory: the version check and the write are
// one transaction.
func (s *Store) SetMenu(_ context.Context, tenant string, items []store.MenuItem, version int64) (int64, error) {
	v, err := json.Marshal(store.Menu{Items: items, Version: version + 1})
	if err != nil {
		return 0, fmt.Errorf("encoding menu: %w", err)
	}
	err = s.db.Update(func(tx *bbolt.Tx) error {
		m, err := readMenu(tx, tenant)
		if err != nil {
			return err
		}
		if m.Version != version {
			return store.ErrConflict
		}
		return tx.Bucket(bucketMenu).Put(menuKey(tenant), v)
	})
	if err != nil {
		return 0, fmt.Errorf("storing menu: %w", err)
	}
	return version + 1, nil
}

// menuKey is where a tenant's menu is kept: the default tenant's where
// the one menu always was.
func menuKey(tenant string) []byte {
	if tenant == "" {
		return keyMenu
	}
	return []byte(string(keyMenu) + "/" + tenant)
}

// readMenu returns a tenant's stored menu, or an empty one at version 0.
func readMenu(tx *bbolt.Tx, tenant string) (store.Menu, error) {
	var m store.Menu
	v := tx.Bucket(bucketMenu).Get(menuKey(tenant))
	if v == nil {
		return m, nil
	}
	if err := json.Unmarshal(v, &m); err != nil {
		return m, fmt.Errorf("decoding menu: %w", err)
	}
	return m, nil
}

// AddTenant implements store.Directory.
func (s *Store) AddTenant(_ context.Context, t store.Tenant) error {
	return s.putTenant(t, func(old []byte) error {
		if old != nil {
			return store.ErrConflict
		}
		return nil
	})
}

// ReplaceTenant implements store.Directory.
func (s *Store) ReplaceTenant(_ context.Context, t store.Tenant) error {
	return s.putTenant(t, func(old []byte) error {
		if old == nil {
			return store.ErrNotFound
		}
		var was store.Tenant
		if err := json.Unmarshal(old, &was); err != nil {
			return fmt.Errorf("decoding tenant %s: %w", t.ID, err)
		}
		if !was.Since.Equal(t.Since) {
			return store.ErrConflict
		}
		return nil
	})
}

// putTenant writes t if may, given the record of its id (nil for none),
// allows it, in one transaction.
func (s *Store) putTenant(t store.Tenant, may func(old []byte) error) error {
	v, err := json.Marshal(t)
	if err != nil {
		return fmt.Errorf("encoding tenant: %w", err)
	}
	err = s.db.Update(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketTenants)
		if err := may(b.Get([]byte(t.ID))); err != nil {
			return err
		}
		if err := b.Put([]byte(t.ID), v); err != nil {
			return err
		}
		return tenantsChanged(tx)
	})
	if err != nil && !errors.Is(err, store.ErrConflict) && !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("storing tenant: %w", err)
	}
	return err
}

// DeleteTenant implements store.Directory.
func (s *Store) DeleteTenant(_ context.Context, id string) error {
	err := s.db.Update(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketTenants)
		if b.Get([]byte(id)) == nil {
			return store.ErrNotFound
		}
		if err := b.Delete([]byte(id)); err != nil {
			return err
		}
		return tenantsChanged(tx)
	})
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("removing tenant: %w", err)
	}
	return err
}

// tenantsChanged raises the count of the tenants' changes.
func tenantsChanged(tx *bbolt.Tx) error {
	meta := tx.Bucket(bucketMeta)
	var n uint64
	if v := meta.Get(keyTenantsChanged); len(v) == 8 {
		n = binary.BigEndian.Uint64(v)
	}
	return meta.Put(keyTenantsChanged, binary.BigEndian.AppendUint64(nil, n+1))
}

// Tenants implements store.Directory: a cursor from after, in key order.
func (s *Store) Tenants(_ context.Context, after string, limit int) ([]store.Tenant, error) {
	var out []store.Tenant
	err := s.db.View(func(tx *bbolt.Tx) error {
		c := tx.Bucket(bucketTenants).Cursor()
		k, v := c.Seek([]byte(after))
		if k != nil && string(k) == after {
			k, v = c.Next()
		}
		for ; k != nil && len(out) < store.TenantPage(limit); k, v = c.Next() {
			var t store.Tenant
			if err := json.Unmarshal(v, &t); err != nil {
				return fmt.Errorf("decoding tenant %s: %w", k, err)
			}
			out = append(out, t)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading tenants: %w", err)
	}
	return out, nil
}

// TenantsChanged implements store.Directory.
func (s *Store) TenantsChanged(context.Context) (int64, error) {
	var n int64
	err := s.db.View(func(tx *bbolt.Tx) error {
		if v := tx.Bucket(bucketMeta).Get(keyTenantsChanged); len(v) == 8 {
			n = int64(binary.BigEndian.Uint64(v)) //nolint:gosec // a count of changes
		}
		return nil
	})
	return n, err
}

// emailKey is a contact's key in the e-mail index: the address as
// store.AddressKey folds it, 0, the id.
func emailKey(email, id string) []byte {
	return []byte(store.AddressKey(email) + "\x00" + id)
}

// indexContacts puts every contact into the e-mail index.
func indexContacts(tx *bbolt.Tx) error {
	index := tx.Bucket(bucketByEmail)
	return tx.Bucket(bucketContacts).ForEach(func(_, v []byte) error {
		var c store.Contact
		if err := json.Unmarshal(v, &c); err != nil || store.AddressKey(c.Email) == "" {
			return nil //nolint:nilerr // an unreadable record is left out of the index, not the file
		}
		return index.Put(emailKey(c.Email, c.ID), nil)
	})
}

// ContactsByEmail implements store.Directory, from the index.
func (s *Store) ContactsByEmail(_ context.Context, email string) ([]store.Contact, error) {
	key := store.AddressKey(email)
	if key == "" {
		return nil, nil
	}
	prefix := []byte(key + "\x00")
	var out []store.Contact
	err := s.db.View(func(tx *bbolt.Tx) error {
		contacts := tx.Bucket(bucketContacts)
		c := tx.Bucket(bucketByEmail).Cursor()
		for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
			v := contacts.Get(k[len(prefix):])
			if v == nil {
				continue
			}
			var ct store.Contact
			if err := json.Unmarshal(v, &ct); err != nil {
				return fmt.Errorf("decoding contact: %w", err)
			}
			out = append(out, ct)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("finding contacts by e-mail: %w", err)
	}
	return out, nil
}

// SetDelivery implements store.Directory: the record is rewritten in
// place (records are at most store.MaxLinkRecords, found by a walk).
func (s *Store) SetDelivery(_ context.Context, id, delivery string, _ time.Time) error {
	err := s.db.Update(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketRecords)
		c := b.Cursor()
		for k, v := c.Last(); k != nil; k, v = c.Prev() {
			var r store.LinkRecord
			if err := json.Unmarshal(v, &r); err != nil || r.ID != id {
				continue
			}
			r.Delivery = delivery
			nv, err := json.Marshal(r)
			if err != nil {
				return err
			}
			return b.Put(append([]byte(nil), k...), nv)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("recording a delivery: %w", err)
	}
	return nil
}

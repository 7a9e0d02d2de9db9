// Package bolt is the default Store: one bbolt file, durable across restarts,
// for a single gateway instance.
package bolt

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"time"

	bbolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/portalgate/portalgate/caddymodule/internal/store"
)

var (
	bucketSessions   = []byte("sessions")             // id -> JSON session
	bucketSessionBy  = []byte("session_expiry")       // deadline|id -> nil, for Purge
	bucketUsers      = []byte("user_sessions")        // user id|0|session id -> nil
	bucketGrants     = []byte("link_grants")          // id -> JSON grant, as minted
	bucketLinks      = []byte("links")                // id -> count|expires, once spent or revoked
	bucketLinkBy     = []byte("link_expiry")          // expires|id -> nil, for Purge of both
	bucketCutoffs    = []byte("user_cutoffs")         // user id -> at|until
	bucketContacts   = []byte("contacts")             // id -> JSON contact
	bucketRecords    = []byte("link_records")         // issued at|id -> JSON link record, oldest first
	bucketMenu       = []byte("menu")                 // keyMenu[/tenant] -> JSON menu
	bucketTenants    = []byte("tenants")              // id -> JSON tenant
	bucketHolders    = []byte("id_holders")           // user id -> JSON holder
	bucketMeta       = []byte("meta")                 // keySessions -> the sessions' count
	bucketSignIns    = []byte("signins")              // browser -> tries|JSON sign-in
	bucketByEmail    = []byte("contacts_by_email")    // address key|0|contact id -> nil
	bucketCodeFails  = []byte("signin_code_failures") // address key -> until|count
	bucketLastSignIn = []byte("signin_addresses")     // address -> end|browser|0|link id

	keyMenu = []byte("menu")
	keyPing = []byte("ping")
	// keySessions counts the sessions bucket's keys, kept with every put
	// and delete: a walk of the bucket to count them reads the whole file.
	keySessions = []byte("sessions")
	// keyTenantsChanged counts the changes of the tenants bucket.
	keyTenantsChanged = []byte("tenants_changed")
)

// revokedCount marks a revoked link in place of its use count.
const revokedCount = math.MaxUint64

// batchDelay bounds how long a write waits to share an fsync.
const batchDelay = 2 * time.Millisecond

// lockWait bounds how long Open waits for another process to let go of the
// file.
const lockWait = 5 * time.Second

// Store is a store.Store in a bbolt file.
type Store struct {
	store.Local
	store.Scan
	db  *guarded
	now func() time.Time
}

// Open opens (or creates) the store at path. It fails after a few seconds
// when another process holds the file, rather than waiting forever.
func Open(path string, now func() time.Time) (*Store, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("creating directory for session store %s: %w", path, err)
	}
	db, err := open(path, &bbolt.Options{Timeout: lockWait})
	switch {
	case errors.Is(err, berrors.ErrTimeout):
		return nil, fmt.Errorf("opening session store %s: another process holds the file (after %v): "+
			"another Caddy with the same store? Stop it, or give each its own path", path, lockWait)
	case errors.Is(err, ErrDamaged):
		return nil, err
	case err != nil:
		return nil, fmt.Errorf("opening session store %s: %w", path, err)
	}
	if err := db.check(); err != nil {
		_ = db.Close()
		return nil, err
	}
	err = db.Update(func(tx *bbolt.Tx) error {
		unindexed := tx.Bucket(bucketByEmail) == nil
		for _, b := range [][]byte{
			bucketSessions, bucketSessionBy, bucketUsers, bucketGrants, bucketLinks, bucketLinkBy, bucketCutoffs,
			bucketContacts, bucketRecords, bucketMenu, bucketHolders, bucketMeta, bucketTenants,
			bucketSignIns, bucketLastSignIn, bucketByEmail, bucketCodeFails,
		} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		if unindexed {
			// A file from before the index: its contacts are indexed once.
			if err := indexContacts(tx); err != nil {
				return err
			}
		}
		meta := tx.Bucket(bucketMeta)
		if meta.Get(keySessions) == nil {
			// A file from before the count: counted once, here.
			if err := setSessionCount(meta, tx.Bucket(bucketSessions).Stats().KeyN); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("preparing session store %s: %w", path, err)
	}
	// A lone redemption waits at most this long for company before its
	// fsync; bbolt's default (10ms) favours throughput over latency more
	// than a person clicking a link needs.
	db.MaxBatchDelay = batchDelay
	s := &Store{db: db, now: now}
	s.Scan = store.Scan{Scanner: s}
	return s, nil
}

// PutLink implements store.Store. Mints share fsyncs as redemptions do. A
// grant is written once and never again: what a redemption changes is the
// link's small use record beside it, so a spend rewrites no grant's page.
func (s *Store) PutLink(_ context.Context, g store.Grant) error {
	v, err := json.Marshal(&g)
	if err != nil {
		return fmt.Errorf("encoding link: %w", err)
	}
	err = s.db.Batch(func(tx *bbolt.Tx) error {
		if err := tx.Bucket(bucketGrants).Put([]byte(g.ID), v); err != nil {
			return err
		}
		return tx.Bucket(bucketLinkBy).Put(deadlineKey(g.Expires, g.ID), nil)
	})
	if err != nil {
		return fmt.Errorf("keeping link: %w", err)
	}
	return nil
}

// Redeem implements store.Store. A grant never changes once kept, only
// its count: it is read, and the session it starts encoded, outside the
// write, which bbolt runs one at a time; the write judges the count.
func (s *Store) Redeem(ctx context.Context, sp store.Spend, sess *store.Session) (store.Grant, error) {
	l, err := s.Link(ctx, sp.ID)
	switch {
	case errors.Is(err, store.ErrNotFound) && !s.now().Before(sp.Expires):
		return store.Grant{}, store.ErrLinkExpired
	case errors.Is(err, store.ErrNotFound) || (err == nil && (l.User.ID != sp.UserID || l.App != sess.App)):
		return store.Grant{}, store.ErrLinkBeforeStore
	case err != nil:
		return store.Grant{}, fmt.Errorf("redeeming link: %w", err)
	}
	g := l.Grant
	g.Starts(sess)
	v, err := json.Marshal(sess)
	if err != nil {
		return store.Grant{}, fmt.Errorf("encoding session: %w", err)
	}
	var refused error
	err = s.db.Batch(func(tx *bbolt.Tx) error {
		// A refusal is a result, not an error: an error would make bbolt
		// rerun this function alone, outside the batch.
		refused = nil
		// The clock is read once, here, where the spend is decided: a batch
		// that waited past the link's end refuses it, and the record is
		// judged at the same instant (read again, a record could lapse
		// between the two and a spent link be spent again).
		now := s.now()
		if !now.Before(sp.Expires) || !now.Before(g.Expires) {
			refused = store.ErrLinkExpired
			return nil
		}
		spent, revoked := s.uses(tx, g.ID, now)
		switch {
		case revoked || s.userCutOff(tx, g.User.ID, g.IssuedAt, now):
			refused = store.ErrLinkRevoked
			return nil
		case spent >= g.Uses:
			refused = store.ErrLinkUsed
			return nil
		}
		if err := s.setUses(tx, g.ID, uint64(spent+1), g.Expires); err != nil { //nolint:gosec // at most the link's Uses, an int
			return err
		}
		return putSession(tx, sess, v)
	})
	if err != nil {
		return store.Grant{}, fmt.Errorf("redeeming link: %w", err)
	}
	return g, refused
}

// Link implements store.Store.
func (s *Store) Link(_ context.Context, id string) (store.LinkState, error) {
	var l store.LinkState
	var ok bool
	err := s.db.View(func(tx *bbolt.Tx) error {
		now := s.now()
		if l.Grant, ok = s.grant(tx, id, now); ok {
			l.Spent, l.Revoked = s.uses(tx, id, now)
		}
		return nil
	})
	switch {
	case err != nil:
		return store.LinkState{}, fmt.Errorf("reading link: %w", err)
	case !ok:
		return store.LinkState{}, store.ErrNotFound
	}
	return l, nil
}

// RevokeLink implements store.Store.
func (s *Store) RevokeLink(_ context.Context, id string) error {
	err := s.db.Update(func(tx *bbolt.Tx) error {
		g, ok := s.grant(tx, id, s.now())
		if !ok {
			return store.ErrNotFound
		}
		return s.setUses(tx, id, revokedCount, g.Expires)
	})
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("revoking link: %w", err)
	}
	return err
}

// RevokeUser implements store.Store.
func (s *Store) RevokeUser(_ context.Context, userID string, at, until time.Time) ([]string, error) {
	var ids []string
	err := s.db.Update(func(tx *bbolt.Tx) error {
		var v [16]byte
		binary.BigEndian.PutUint64(v[:8], uint64(at.UnixNano()))
		binary.BigEndian.PutUint64(v[8:], uint64(until.UnixNano()))
		if err := tx.Bucket(bucketCutoffs).Put([]byte(userID), v[:]); err != nil {
			return err
		}
		ids = ids[:0]
		prefix := userKey(userID, "")
		c := tx.Bucket(bucketUsers).Cursor()
		for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
			ids = append(ids, string(k[len(prefix):]))
		}
		for _, id := range ids {
			if err := deleteSession(tx, id); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("revoking a user: %w", err)
	}
	return ids, nil
}

// userCutOff reports whether a link of userID issued at issued was
// revoked with its user.
func (s *Store) userCutOff(tx *bbolt.Tx, userID string, issued, now time.Time) bool {
	v := tx.Bucket(bucketCutoffs).Get([]byte(userID))
	if len(v) != 16 {
		return false
	}
	at := decodeTime(v[:8])
	until := decodeTime(v[8:])
	return now.Before(until) && !issued.After(at)
}

// grant reads link id's grant: false for none, for one that has ended and
// awaits Purge, or for one that cannot be read.
func (s *Store) grant(tx *bbolt.Tx, id string, now time.Time) (store.Grant, bool) {
	v := tx.Bucket(bucketGrants).Get([]byte(id))
	var g store.Grant
	if v == nil || json.Unmarshal(v, &g) != nil || !now.Before(g.Expires) {
		return store.Grant{}, false
	}
	return g, true
}

// uses reads how many uses of link id are spent and whether it is revoked:
// none for a link without a record, or whose record has ended.
func (s *Store) uses(tx *bbolt.Tx, id string, now time.Time) (spent int, revoked bool) {
	v := tx.Bucket(bucketLinks).Get([]byte(id))
	if len(v) != 16 || !now.Before(decodeTime(v[8:])) {
		return 0, false
	}
	// A revoked link's record holds revokedCount in place of its count:
	// how many uses were spent before is not kept.
	count := binary.BigEndian.Uint64(v[:8])
	if count == revokedCount {
		return 0, true
	}
	return int(count), false //nolint:gosec // at most the link's Uses, an int
}

// setUses writes link id's use record, kept as long as its grant (which
// the expiry index already holds).
func (s *Store) setUses(tx *bbolt.Tx, id string, count uint64, expires time.Time) error {
	var v [16]byte
	binary.BigEndian.PutUint64(v[:8], count)
	binary.BigEndian.PutUint64(v[8:], uint64(expires.UnixNano()))
	return tx.Bucket(bucketLinks).Put([]byte(id), v[:])
}

// CreateSessions stores many sessions in few transactions: seeding a store
// for load tests, where one batch per session would take minutes.
func (s *Store) CreateSessions(_ context.Context, sessions []*store.Session) error {
	const chunk = 10_000
	for start := 0; start < len(sessions); start += chunk {
		part := sessions[start:min(start+chunk, len(sessions))]
		err := s.db.Update(func(tx *bbolt.Tx) error {
			for _, sess := range part {
				v, err := json.Marshal(sess)
				if err != nil {
					return err
				}
				if err := putSession(tx, sess, v); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("creating sessions: %w", err)
		}
	}
	return nil
}

// CreateSession implements store.Store.
func (s *Store) CreateSession(_ context.Context, sess *store.Session) error {
	v, err := json.Marshal(sess)
	if err != nil {
		return fmt.Errorf("encoding session: %w", err)
	}
	if err := s.db.Batch(func(tx *bbolt.Tx) error { return putSession(tx, sess, v) }); err != nil {
		return fmt.Errorf("creating session: %w", err)
	}
	return nil
}

func putSession(tx *bbolt.Tx, sess *store.Session, v []byte) error {
	sessions := tx.Bucket(bucketSessions)
	if sessions.Get([]byte(sess.ID)) == nil {
		if err := countSessions(tx, 1); err != nil {
			return err
		}
	}
	if err := sessions.Put([]byte(sess.ID), v); err != nil {
		return err
	}
	if err := tx.Bucket(bucketSessionBy).Put(deadlineKey(sess.Deadline(), sess.ID), nil); err != nil {
		return err
	}
	return tx.Bucket(bucketUsers).Put(userKey(sess.User.ID, sess.ID), nil)
}

// GetSession implements store.Store.
func (s *Store) GetSession(_ context.Context, id string) (*store.Session, error) {
	var sess *store.Session
	err := s.db.View(func(tx *bbolt.Tx) error {
		var err error
		sess, err = s.get(tx, id)
		return err
	})
	if err != nil {
		return nil, err
	}
	return sess, nil
}

func (s *Store) get(tx *bbolt.Tx, id string) (*store.Session, error) {
	v := tx.Bucket(bucketSessions).Get([]byte(id))
	if v == nil {
		return nil, store.ErrNotFound
	}
	return store.DecodeSession(v, s.now())
}

// UserSessions implements store.Store.
func (s *Store) UserSessions(_ context.Context, userID string) ([]store.Session, error) {
	var out []store.Session
	err := s.db.View(func(tx *bbolt.Tx) error {
		prefix := userKey(userID, "")
		c := tx.Bucket(bucketUsers).Cursor()
		for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
			sess, err := s.get(tx, string(k[len(prefix):]))
			if errors.Is(err, store.ErrNotFound) {
				continue
			}
			if err != nil {
				return err
			}
			out = append(out, *sess)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("listing a user's sessions: %w", err)
	}
	return out, nil
}

// TouchSession implements store.Store.
//
// Touches are batched like redemptions: the first request of every session
// idle for a while writes one, and alone each would wait for its own fsync.
func (s *Store) TouchSession(_ context.Context, id string, idleAt time.Time) error {
	var gone error
	err := s.db.Batch(func(tx *bbolt.Tx) error {
		// A session that is gone is a result, not an error: an error
		// would make bbolt rerun this alone, outside the batch.
		gone = nil
		sess, err := s.get(tx, id)
		if errors.Is(err, store.ErrNotFound) {
			gone = err
			return nil
		}
		if err != nil {
			return err
		}
		if err := tx.Bucket(bucketSessionBy).Delete(deadlineKey(sess.Deadline(), id)); err != nil {
			return err
		}
		sess.IdleAt = idleAt
		v, err := json.Marshal(sess)
		if err != nil {
			return fmt.Errorf("encoding session: %w", err)
		}
		if err := tx.Bucket(bucketSessions).Put([]byte(id), v); err != nil {
			return err
		}
		return tx.Bucket(bucketSessionBy).Put(deadlineKey(sess.Deadline(), id), nil)
	})
	return cmp.Or(err, gone)
}

// DeleteSession implements store.Store.
func (s *Store) DeleteSession(_ context.Context, id string) error {
	return s.db.Update(func(tx *bbolt.Tx) error { return deleteSession(tx, id) })
}

func deleteSession(tx *bbolt.Tx, id string) error {
	v := tx.Bucket(bucketSessions).Get([]byte(id))
	if v == nil {
		return nil
	}
	var sess store.Session
	if err := json.Unmarshal(v, &sess); err != nil {
		return fmt.Errorf("decoding session: %w", err)
	}
	if err := countSessions(tx, -1); err != nil {
		return err
	}
	for _, del := range []struct {
		bucket, key []byte
	}{
		{bucketSessions, []byte(id)},
		{bucketSessionBy, deadlineKey(sess.Deadline(), id)},
		{bucketUsers, userKey(sess.User.ID, id)},
	} {
		if err := tx.Bucket(del.bucket).Delete(del.key); err != nil {
			return err
		}
	}
	return nil
}

// Purge implements store.Store: it walks the expiry indexes up to now.
func (s *Store) Purge(context.Context) (int, error) {
	n := 0
	err := s.db.Update(func(tx *bbolt.Tx) error {
		n = 0
		now := s.now()
		expired := func(bucket []byte) [][]byte {
			var ids [][]byte
			c := tx.Bucket(bucket).Cursor()
			for k, _ := c.First(); len(k) > 8; k, _ = c.Next() {
				if now.Before(decodeTime(k[:8])) {
					break
				}
				ids = append(ids, append([]byte(nil), k...))
			}
			return ids
		}
		for _, k := range expired(bucketSessionBy) {
			if err := deleteSession(tx, string(k[8:])); err != nil {
				return err
			}
			// deleteSession found no session when the index was stale.
			if err := tx.Bucket(bucketSessionBy).Delete(k); err != nil {
				return err
			}
			n++
		}
		for _, k := range expired(bucketLinkBy) {
			if err := tx.Bucket(bucketGrants).Delete(k[8:]); err != nil {
				return err
			}
			if err := tx.Bucket(bucketLinks).Delete(k[8:]); err != nil {
				return err
			}
			if err := tx.Bucket(bucketLinkBy).Delete(k); err != nil {
				return err
			}
			n++
		}
		// Revoked users are few; a full scan of them is cheap.
		var done [][]byte
		err := tx.Bucket(bucketCutoffs).ForEach(func(k, v []byte) error {
			if len(v) == 16 && !now.Before(decodeTime(v[8:])) {
				done = append(done, append([]byte(nil), k...))
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, k := range done {
			if err := tx.Bucket(bucketCutoffs).Delete(k); err != nil {
				return err
			}
			n++
		}
		// Link records are ordered by issue, not by Keep, and at most
		// MaxLinkRecords: a full scan of them is cheap too.
		forgotten, err := s.forgottenRecords(tx, now)
		if err != nil {
			return err
		}
		for _, k := range forgotten {
			if err := tx.Bucket(bucketRecords).Delete(k); err != nil {
				return err
			}
			n++
		}
		signIns, err := s.purgeSignIns(tx)
		n += signIns
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("purging expired records: %w", err)
	}
	return n, nil
}

// forgottenRecords returns the keys of link records whose Keep has passed.
func (s *Store) forgottenRecords(tx *bbolt.Tx, now time.Time) ([][]byte, error) {
	var keys [][]byte
	err := tx.Bucket(bucketRecords).ForEach(func(k, v []byte) error {
		var r store.LinkRecord
		if err := json.Unmarshal(v, &r); err != nil {
			return fmt.Errorf("decoding link record: %w", err)
		}
		if !now.Before(r.Keep) {
			keys = append(keys, append([]byte(nil), k...))
		}
		return nil
	})
	return keys, err
}

// CountSessions returns how many sessions the file holds (live or awaiting
// Purge), from bbolt's key count.
func (s *Store) CountSessions(context.Context) (int, error) {
	n := 0
	err := s.db.View(func(tx *bbolt.Tx) error {
		n = sessionCount(tx.Bucket(bucketMeta))
		return nil
	})
	return n, err
}

// countSessions adds delta to the kept count of sessions.
func countSessions(tx *bbolt.Tx, delta int) error {
	meta := tx.Bucket(bucketMeta)
	return setSessionCount(meta, max(sessionCount(meta)+delta, 0))
}

// sessionCount and setSessionCount read and write the kept count of
// sessions in the meta bucket.
func sessionCount(meta *bbolt.Bucket) int {
	return int(binary.BigEndian.Uint64(meta.Get(keySessions))) //nolint:gosec // written from a non-negative int
}

func setSessionCount(meta *bbolt.Bucket, n int) error {
	return meta.Put(keySessions, binary.BigEndian.AppendUint64(nil, uint64(n))) //nolint:gosec // never negative
}

// Ping reports whether the file is usable.
//
// It writes: a store that reads but cannot write (a full disk, a file
// turned read-only) signs no one in, and says so. Damage seen once by any
// operation is reported from then on.
func (s *Store) Ping(context.Context) error {
	if err := s.db.damage.Load(); err != nil {
		return *err
	}
	now := encodeTime(s.now())
	return s.db.Update(func(tx *bbolt.Tx) error { return tx.Bucket(bucketMeta).Put(keyPing, now) })
}

// Close implements store.Store.
func (s *Store) Close() error { return s.db.Close() }

// encodeTime writes t as big-endian Unix nanoseconds, as decodeTime reads it.
func encodeTime(t time.Time) []byte {
	return binary.BigEndian.AppendUint64(nil, uint64(t.UnixNano())) //nolint:gosec // a time after 1970
}

// decodeTime reads a time this package wrote as big-endian Unix nanoseconds.
func decodeTime(b []byte) time.Time {
	return time.Unix(0, int64(binary.BigEndian.Uint64(b))) //nolint:gosec // written from an int64 by this package
}

// deadlineKey orders records by time so Purge reads only what has expired.
func deadlineKey(t time.Time, id string) []byte {
	k := make([]byte, 8+len(id))
	binary.BigEndian.PutUint64(k, uint64(t.UnixNano()))
	copy(k[8:], id)
	return k
}

// userKey indexes a session under its user; user ids never hold a NUL
// (identity.User.Validate rejects control characters).
func userKey(userID, sessionID string) []byte {
	return []byte(userID + "\x00" + sessionID)
}

var (
	_ store.Store     = (*Store)(nil)
	_ store.Directory = (*Store)(nil)
)

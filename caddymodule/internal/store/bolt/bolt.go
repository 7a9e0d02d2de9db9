// Package bolt is the default Store: one bbolt file, durable across restarts,
// for a single gateway instance.
package bolt

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/portalgate/portalgate/caddymodule/internal/store"
)

var (
	bucketSessions  = []byte("sessions")       // id -> JSON session
	bucketSessionBy = []byte("session_expiry") // deadline|id -> nil, for Purge
	bucketUsers     = []byte("user_sessions")  // user id|0|session id -> nil
	bucketLinks     = []byte("links")          // id -> count|expires
	bucketLinkBy    = []byte("link_expiry")    // expires|id -> nil, for Purge
)

// batchDelay bounds how long a write waits to share an fsync.
const batchDelay = 2 * time.Millisecond

// Store is a store.Store in a bbolt file.
type Store struct {
	db  *bbolt.DB
	now func() time.Time
}

// Open opens (or creates) the store at path. It fails after a few seconds
// when another process holds the file, rather than waiting forever.
func Open(path string, now func() time.Time) (*Store, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("creating directory for session store %s: %w", path, err)
	}
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: 5 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("opening session store %s: %w", path, err)
	}
	err = db.Update(func(tx *bbolt.Tx) error {
		for _, b := range [][]byte{bucketSessions, bucketSessionBy, bucketUsers, bucketLinks, bucketLinkBy} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
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
	return &Store{db: db, now: now}, nil
}

// ConsumeLink implements store.Store.
func (s *Store) ConsumeLink(_ context.Context, id string, uses int, expires time.Time) error {
	return s.batch("consuming link", func(tx *bbolt.Tx) (bool, error) {
		return s.consume(tx, id, uses, expires)
	})
}

// Redeem implements store.Store.
func (s *Store) Redeem(_ context.Context, id string, uses int, expires time.Time, sess *store.Session) error {
	v, err := json.Marshal(sess)
	if err != nil {
		return fmt.Errorf("encoding session: %w", err)
	}
	return s.batch("redeeming link", func(tx *bbolt.Tx) (bool, error) {
		if used, err := s.consume(tx, id, uses, expires); used || err != nil {
			return used, err
		}
		return false, putSession(tx, sess, v)
	})
}

// CreateSession implements store.Store.
func (s *Store) CreateSession(_ context.Context, sess *store.Session) error {
	v, err := json.Marshal(sess)
	if err != nil {
		return fmt.Errorf("encoding session: %w", err)
	}
	return s.batch("creating session", func(tx *bbolt.Tx) (bool, error) {
		return false, putSession(tx, sess, v)
	})
}

// batch runs fn in a bbolt batch, so concurrent writers share one fsync.
// fn reports a spent link as a result, not an error: an error would make
// bbolt rerun it alone.
func (s *Store) batch(doing string, fn func(tx *bbolt.Tx) (used bool, err error)) error {
	var used bool
	err := s.db.Batch(func(tx *bbolt.Tx) error {
		var err error
		used, err = fn(tx)
		return err
	})
	if err != nil {
		return fmt.Errorf("%s: %w", doing, err)
	}
	if used {
		return store.ErrLinkUsed
	}
	return nil
}

// consume spends one use of link id, reporting whether all were spent.
func (s *Store) consume(tx *bbolt.Tx, id string, uses int, expires time.Time) (used bool, err error) {
	links := tx.Bucket(bucketLinks)
	count, oldExp := 0, time.Time{}
	if v := links.Get([]byte(id)); len(v) == 16 {
		count = int(binary.BigEndian.Uint64(v[:8]))
		oldExp = time.Unix(0, int64(binary.BigEndian.Uint64(v[8:])))
		if !s.now().Before(oldExp) {
			count = 0 // the old record has expired; Purge has not run yet
		} else {
			expires = oldExp
		}
	}
	if count >= uses {
		return true, nil
	}
	if !oldExp.IsZero() {
		if err := tx.Bucket(bucketLinkBy).Delete(deadlineKey(oldExp, id)); err != nil {
			return false, err
		}
	}
	var v [16]byte
	binary.BigEndian.PutUint64(v[:8], uint64(count+1))
	binary.BigEndian.PutUint64(v[8:], uint64(expires.UnixNano()))
	if err := links.Put([]byte(id), v[:]); err != nil {
		return false, err
	}
	return false, tx.Bucket(bucketLinkBy).Put(deadlineKey(expires, id), nil)
}

func putSession(tx *bbolt.Tx, sess *store.Session, v []byte) error {
	if err := tx.Bucket(bucketSessions).Put([]byte(sess.ID), v); err != nil {
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
	var sess store.Session
	if err := json.Unmarshal(v, &sess); err != nil {
		return nil, fmt.Errorf("decoding session: %w", err)
	}
	if !s.now().Before(sess.Deadline()) {
		return nil, store.ErrNotFound
	}
	return &sess, nil
}

// TouchSession implements store.Store.
func (s *Store) TouchSession(_ context.Context, id string, idleAt time.Time) error {
	return s.db.Update(func(tx *bbolt.Tx) error {
		sess, err := s.get(tx, id)
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

// DeleteUserSessions implements store.Store.
func (s *Store) DeleteUserSessions(_ context.Context, userID string) ([]string, error) {
	var ids []string
	err := s.db.Update(func(tx *bbolt.Tx) error {
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
		return nil, fmt.Errorf("deleting sessions of a user: %w", err)
	}
	return ids, nil
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
			for k, _ := c.First(); k != nil && len(k) > 8; k, _ = c.Next() {
				if now.Before(time.Unix(0, int64(binary.BigEndian.Uint64(k[:8])))) {
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
			if err := tx.Bucket(bucketLinks).Delete(k[8:]); err != nil {
				return err
			}
			if err := tx.Bucket(bucketLinkBy).Delete(k); err != nil {
				return err
			}
			n++
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("purging expired records: %w", err)
	}
	return n, nil
}

// Close implements store.Store.
func (s *Store) Close() error { return s.db.Close() }

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

var _ store.Store = (*Store)(nil)

// Package redis is the Store for several gateway instances: sessions, link
// uses and revocations live in one Redis (standalone, Sentinel or Cluster),
// and ended sessions are announced over pub/sub so every instance drops
// them from its L1 cache.
package redis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/portalgate/portalgate/caddymodule/internal/store"
)

// Key layout, each under the prefix. Every script touches one key, so the
// store works on Redis Cluster without hash tags:
//
//	s:<session id>   session JSON, expiring at its deadline
//	u:<user id>      set of the user's session ids (revocation without SCAN)
//	l:<link id>      "<uses spent>:<record expiry ms>", or "-1:<ms>" when revoked
//	c:<user id>      "<revoked at ns>:<until ns>": the user's older links are refused
//	ended            pub/sub channel of ended session ids
const (
	keySession = "s:"
	keyUser    = "u:"
	keyLink    = "l:"
	keyCutoff  = "c:"
	channel    = "ended"
)

// Store is a store.Store in Redis.
type Store struct {
	rdb    goredis.UniversalClient
	prefix string
	now    func() time.Time
	// check bounds how long a broken subscription goes unnoticed.
	check time.Duration
}

// New returns a store over rdb. Keys start with prefix; now is the clock
// the store judges expiry by (Redis expires keys by its own clock too).
func New(rdb goredis.UniversalClient, prefix string, check time.Duration, now func() time.Time) *Store {
	return &Store{rdb: rdb, prefix: prefix, now: now, check: check}
}

// spendLink spends one use of a link: -2 revoked, -1 all spent, else the new
// count. Times are judged by the caller's clock (ARGV[3]); Redis only
// forgets the key after ARGV[4] milliseconds.
var spendLink = goredis.NewScript(`
local v = redis.call('GET', KEYS[1])
local count, exp = 0, tonumber(ARGV[2])
if v then
	local c, e = string.match(v, '^(%-?%d+):(%d+)$')
	if c and tonumber(e) > tonumber(ARGV[3]) then
		if c == '-1' then return -2 end
		count, exp = tonumber(c), tonumber(e)
	end
end
if count >= tonumber(ARGV[1]) then return -1 end
redis.call('SET', KEYS[1], (count + 1) .. ':' .. exp, 'PX', ARGV[4])
return count + 1
`)

// indexSession adds a session to its user's set and keeps the set alive at
// least as long as the session.
var indexSession = goredis.NewScript(`
redis.call('SADD', KEYS[1], ARGV[1])
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[2]) then
	redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 1
`)

// takeUserSessions empties a user's set and returns what it held.
var takeUserSessions = goredis.NewScript(`
local ids = redis.call('SMEMBERS', KEYS[1])
redis.call('DEL', KEYS[1])
return ids
`)

func (s *Store) key(kind, id string) string { return s.prefix + kind + id }

// ttl is how long Redis keeps a record that ends at t by the store's clock.
func (s *Store) ttl(t time.Time) time.Duration {
	return max(t.Sub(s.now()), time.Millisecond)
}

// Redeem implements store.Store in two round trips. The first reads the
// user's revocation and spends the link (one atomic script); the second
// writes and indexes the session and reads the revocation again, so a
// revocation racing the redemption is caught once the session is indexed.
// Spending a link that then turns out to be revoked loses nothing.
func (s *Store) Redeem(ctx context.Context, l store.LinkUse, sess *store.Session) error {
	v, err := json.Marshal(sess)
	if err != nil {
		return fmt.Errorf("encoding session: %w", err)
	}
	now := s.now()
	var cutoff *goredis.StringCmd
	var spent *goredis.Cmd
	_, err = s.rdb.Pipelined(ctx, func(p goredis.Pipeliner) error {
		cutoff = p.Get(ctx, s.key(keyCutoff, l.UserID))
		// EVAL, not EVALSHA: a pipeline cannot fall back after NOSCRIPT
		// (a restarted Redis has forgotten every script), and the scripts
		// are short.
		spent = spendLink.Eval(ctx, p, []string{s.key(keyLink, l.ID)},
			l.Uses, l.Expires.UnixMilli(), now.UnixMilli(), s.ttl(l.Expires).Milliseconds())
		return nil
	})
	if err != nil && !errors.Is(err, goredis.Nil) {
		return fmt.Errorf("spending link: %w", err)
	}
	if cut, err := s.cutOff(cutoff, l); err != nil || cut {
		return cmp(err, store.ErrLinkRevoked)
	}
	switch n, err := spent.Int(); {
	case err != nil:
		return fmt.Errorf("spending link: %w", err)
	case n == -2:
		return store.ErrLinkRevoked
	case n == -1:
		return store.ErrLinkUsed
	}
	_, err = s.rdb.Pipelined(ctx, func(p goredis.Pipeliner) error {
		s.putSession(ctx, p, sess, v)
		cutoff = p.Get(ctx, s.key(keyCutoff, l.UserID))
		return nil
	})
	if err != nil && !errors.Is(err, goredis.Nil) {
		return fmt.Errorf("creating session: %w", err)
	}
	if cut, err := s.cutOff(cutoff, l); err != nil || cut {
		_ = s.DeleteSession(ctx, sess.ID)
		return cmp(err, store.ErrLinkRevoked)
	}
	return nil
}

// putSession queues the session write and its index on p.
func (s *Store) putSession(ctx context.Context, p goredis.Pipeliner, sess *store.Session, v []byte) {
	p.Set(ctx, s.key(keySession, sess.ID), v, s.ttl(sess.Deadline()))
	indexSession.Eval(ctx, p, []string{s.key(keyUser, sess.User.ID)}, sess.ID, s.ttl(sess.ExpiresAt).Milliseconds())
}

// cmp returns err when there is one, else refusal.
func cmp(err, refusal error) error {
	if err != nil {
		return err
	}
	return refusal
}

// cutOff reports whether the link's user was revoked after it was issued,
// from the answer to a GET of the user's revocation record.
func (s *Store) cutOff(get *goredis.StringCmd, l store.LinkUse) (bool, error) {
	v, err := get.Result()
	if errors.Is(err, goredis.Nil) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("reading revocations: %w", err)
	}
	atStr, untilStr, _ := strings.Cut(v, ":")
	at, err1 := strconv.ParseInt(atStr, 10, 64)
	until, err2 := strconv.ParseInt(untilStr, 10, 64)
	if err1 != nil || err2 != nil {
		return false, fmt.Errorf("reading revocations: bad record %q", v)
	}
	return s.now().Before(time.Unix(0, until)) && !l.IssuedAt.After(time.Unix(0, at)), nil
}

// RevokeLink implements store.Store.
func (s *Store) RevokeLink(ctx context.Context, id string, until time.Time) error {
	v := "-1:" + strconv.FormatInt(until.UnixMilli(), 10)
	if err := s.rdb.Set(ctx, s.key(keyLink, id), v, s.ttl(until)).Err(); err != nil {
		return fmt.Errorf("revoking link: %w", err)
	}
	return nil
}

// RevokeUser implements store.Store.
func (s *Store) RevokeUser(ctx context.Context, userID string, at, until time.Time) ([]string, error) {
	v := strconv.FormatInt(at.UnixNano(), 10) + ":" + strconv.FormatInt(until.UnixNano(), 10)
	if err := s.rdb.Set(ctx, s.key(keyCutoff, userID), v, s.ttl(until)).Err(); err != nil {
		return nil, fmt.Errorf("revoking user: %w", err)
	}
	ids, err := takeUserSessions.Run(ctx, s.rdb, []string{s.key(keyUser, userID)}).StringSlice()
	if err != nil {
		return nil, fmt.Errorf("revoking user: %w", err)
	}
	return s.deleteSessions(ctx, ids)
}

// deleteSessions deletes session keys, announces them to every instance,
// and returns the ids of those that were still live.
func (s *Store) deleteSessions(ctx context.Context, ids []string) ([]string, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	gets := make([]*goredis.StringCmd, len(ids))
	_, err := s.rdb.Pipelined(ctx, func(p goredis.Pipeliner) error {
		for i, id := range ids {
			gets[i] = p.GetDel(ctx, s.key(keySession, id))
		}
		p.Publish(ctx, s.prefix+channel, strings.Join(ids, " "))
		return nil
	})
	if err != nil && !errors.Is(err, goredis.Nil) {
		return nil, fmt.Errorf("deleting sessions: %w", err)
	}
	var live []string
	now := s.now()
	for i, get := range gets {
		var sess store.Session
		if v, err := get.Bytes(); err == nil && json.Unmarshal(v, &sess) == nil && now.Before(sess.Deadline()) {
			live = append(live, ids[i])
		}
	}
	return live, nil
}

// CreateSession implements store.Store.
func (s *Store) CreateSession(ctx context.Context, sess *store.Session) error {
	v, err := json.Marshal(sess)
	if err != nil {
		return fmt.Errorf("encoding session: %w", err)
	}
	_, err = s.rdb.Pipelined(ctx, func(p goredis.Pipeliner) error {
		s.putSession(ctx, p, sess, v)
		return nil
	})
	if err != nil {
		return fmt.Errorf("creating session: %w", err)
	}
	return nil
}

// GetSession implements store.Store.
func (s *Store) GetSession(ctx context.Context, id string) (*store.Session, error) {
	v, err := s.rdb.Get(ctx, s.key(keySession, id)).Bytes()
	if errors.Is(err, goredis.Nil) {
		return nil, store.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("reading session: %w", err)
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

// TouchSession implements store.Store. SET XX never brings back a session
// deleted since it was read.
func (s *Store) TouchSession(ctx context.Context, id string, idleAt time.Time) error {
	sess, err := s.GetSession(ctx, id)
	if err != nil {
		return err
	}
	sess.IdleAt = idleAt
	v, err := json.Marshal(sess)
	if err != nil {
		return fmt.Errorf("encoding session: %w", err)
	}
	ok, err := s.rdb.SetXX(ctx, s.key(keySession, id), v, s.ttl(sess.Deadline())).Result()
	if err != nil {
		return fmt.Errorf("extending session: %w", err)
	}
	if !ok {
		return store.ErrNotFound
	}
	return nil
}

// DeleteSession implements store.Store.
func (s *Store) DeleteSession(ctx context.Context, id string) error {
	v, err := s.rdb.GetDel(ctx, s.key(keySession, id)).Bytes()
	if errors.Is(err, goredis.Nil) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("deleting session: %w", err)
	}
	var sess store.Session
	if json.Unmarshal(v, &sess) == nil {
		s.rdb.SRem(ctx, s.key(keyUser, sess.User.ID), id)
	}
	if err := s.rdb.Publish(ctx, s.prefix+channel, id).Err(); err != nil {
		return fmt.Errorf("announcing ended session: %w", err)
	}
	return nil
}

// Purge implements store.Store: Redis expires every record by itself.
func (s *Store) Purge(context.Context) (int, error) { return 0, nil }

// SelfExpiring tells the conformance suite that Purge has nothing to do.
func (s *Store) SelfExpiring() bool { return true }

// Close implements store.Store.
func (s *Store) Close() error { return s.rdb.Close() }

// Ping reports whether Redis answers.
func (s *Store) Ping(ctx context.Context) error { return s.rdb.Ping(ctx).Err() }

// Watch implements store.Watcher: it reports sessions ended by any instance,
// and whether the subscription is known to be live. A subscription that
// cannot answer a ping within the check interval counts as broken: every
// ended session since may have been missed.
func (s *Store) Watch(ctx context.Context, forget func(ids ...string), synced func(ok bool)) {
	ps := s.rdb.Subscribe(ctx, s.prefix+channel)
	defer ps.Close()
	live := false
	set := func(ok bool) {
		if ok != live {
			live = ok
			synced(ok)
		}
	}
	for {
		msg, err := ps.ReceiveTimeout(ctx, s.check)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			var netErr interface{ Timeout() bool }
			if errors.As(err, &netErr) && netErr.Timeout() && live {
				// Quiet, not necessarily broken: ask.
				if ps.Ping(ctx) == nil {
					continue
				}
			}
			set(false)
			// Do not spin while Redis is away; ReceiveTimeout reconnects.
			select {
			case <-ctx.Done():
				return
			case <-time.After(min(s.check, time.Second)):
			}
			continue
		}
		switch m := msg.(type) {
		case *goredis.Subscription:
			if m.Kind == "subscribe" {
				// (Re)subscribed: whatever was missed is dropped by the reset.
				live = false
				set(true)
			}
		case *goredis.Message:
			forget(strings.Fields(m.Payload)...)
		case *goredis.Pong:
		}
	}
}

var _ store.Store = (*Store)(nil)

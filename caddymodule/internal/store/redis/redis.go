// Package redis is the Store for several gateway instances: sessions, link
// uses and revocations live in one Redis (standalone, Sentinel or Cluster),
// and ended sessions are announced over pub/sub so every instance drops
// them from its L1 cache.
package redis

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/portalgate/portalgate/caddymodule/internal/store"
)

// Key layout, each under the prefix. Every script touches one key, so the
// store works on Redis Cluster without hash tags:
//
//	s:<session id>   session JSON, expiring at its deadline
//	u:{<user id>}    set of the user's session ids (revocation without SCAN)
//	c:{<user id>}    "<revoked at ns>:<until ns>": the user's older links are refused
//	l:<link id>      "<uses spent>:<record expiry ms>", or "-1:<ms>" when revoked
//	dc:{dir}         hash of contact id -> contact JSON
//	dl:{dir}         list of minted-link record JSON, newest first, expiring
//	                 with the last record's Keep
//	dm:{dir}         menu JSON {items, version}
//	ended            pub/sub channel of ended session ids
//
// A user's set and revocation share a hash tag, so one script can touch
// both on Redis Cluster too: indexing a session and revoking its user are
// atomic with respect to each other. The directory's keys share the tag
// {dir} for the same reason, should a script ever need two of them.
const (
	keySession  = "s:"
	keyUser     = "u:"
	keyLink     = "l:"
	keyCutoff   = "c:"
	keyContacts = "dc:"
	keyRecords  = "dl:"
	keyMenu     = "dm:"
	keyHolders  = "dh:"
	// keyByEmail is the e-mail index: a sorted set of "address key\x00id"
	// (all at score 0, read by range); keyEmailOf each id's indexed address
	// key; keyIndexed says the index holds every contact.
	keyByEmail = "de:"
	keyEmailOf = "dE:"
	keyIndexed = "dI:"
	// keyDelivery is what became of a link's e-mail, beside its record.
	keyDelivery = "dd"
	keyBegan    = "began:"
	channel     = "ended"
)

// Store is a store.Store in Redis.
type Store struct {
	store.Scan
	rdb    goredis.UniversalClient
	prefix string
	now    func() time.Time
	// check bounds how long a broken subscription goes unnoticed.
	check time.Duration
	// cluster: keys of one redemption live in different slots, so it takes
	// two round trips; elsewhere one script does it all.
	cluster bool
	// pipe carries redemptions. On one server it is go-redis's
	// autopipeliner: concurrent redemptions share round trips instead of a
	// connection each, which cuts what Redis spends per redemption by a
	// third (fewer reads, writes and event-loop turns). Each script still
	// runs whole and alone, and a command is never retried (MaxRetries -1;
	// the half-duplex pipeliner sends a batch through the client's own
	// pipeline, which honours it).
	pipe goredis.Scripter
	// replicas is how many replicas must hold a redemption or a revocation
	// (WAIT) before it counts, within replicaWait; 0: the master's word.
	replicas    int
	replicaWait time.Duration
	// indexed: the e-mail index is known to hold every contact.
	indexed atomic.Bool
}

// Replicated makes a redemption or a revocation count only once n replicas
// hold it, within wait: a Sentinel failover promotes a replica, and a write
// only the old master had is lost with it. A write the replicas did not
// acknowledge in time is an error (a 503 the person can retry), never a
// success that a failover takes back.
func (s *Store) Replicated(n int, wait time.Duration) *Store {
	s.replicas, s.replicaWait = n, wait
	return s
}

// waitFor queues WAIT on p: for the replicas to hold the writes before it
// on the same connection. (Pipeliner lacks go-redis's Wait; replicaWait is
// shorter than the read timeout, checked at provision.)
func (s *Store) waitFor(ctx context.Context, p goredis.Pipeliner) *goredis.Cmd {
	return p.Do(ctx, "WAIT", s.replicas, s.replicaWait.Milliseconds())
}

// written sends write on one connection, followed by WAIT when replicas
// are required: the answer to give acked.
func (s *Store) written(ctx context.Context, write func(goredis.Pipeliner)) (wait *goredis.Cmd, err error) {
	_, err = s.rdb.Pipelined(ctx, func(p goredis.Pipeliner) error {
		write(p)
		if s.replicas > 0 {
			wait = s.waitFor(ctx, p)
		}
		return nil
	})
	return wait, err
}

// acked turns WAIT's answer into an error unless enough replicas have the
// writes before it; no WAIT (no replicas required) is no error.
func (s *Store) acked(wait *goredis.Cmd, what string) error {
	if wait == nil {
		return nil
	}
	n, err := wait.Int64()
	switch {
	case err != nil:
		return fmt.Errorf("%s: waiting for replicas: %w", what, err)
	case n < int64(s.replicas):
		return fmt.Errorf("%s: %d of %d replicas acknowledged it within %v: it may not survive a failover", what, n, s.replicas, s.replicaWait)
	}
	return nil
}

// New returns a store over rdb. Keys start with prefix; now is the clock
// the store judges expiry by (Redis expires keys by its own clock too).
func New(rdb goredis.UniversalClient, prefix string, check time.Duration, now func() time.Time) *Store {
	_, cluster := rdb.(*goredis.ClusterClient)
	st := &Store{rdb: rdb, prefix: prefix, now: now, check: check, cluster: cluster, pipe: rdb}
	st.Scan = store.Scan{Scanner: st}
	if c, ok := rdb.(*goredis.Client); ok {
		// The blocking face with its defaults, named rather than inherited
		// from the client's options: one ordered batch at a time, half
		// duplex (full duplex may replay a command after a broken
		// connection). It fails only on invalid options; the client closes it.
		if ap, err := c.AutoPipelineWithOptions(goredis.DefaultBlockingAutoPipelineOptions()); err == nil {
			st.pipe = ap
		}
	}
	st.begin()
	return st
}

// beginTimeout bounds how long New waits to mark the beginning of a store.
const beginTimeout = 2 * time.Second

// begin records when the store's state began (beginAt): now for an empty
// Redis, before any link is minted, so none is refused for it. A Redis that
// cannot be reached now begins at the first link it records (RecordLink)
// or spends (the redemption scripts), and one that lost its state (a
// restart without persistence, a flush) begins again there, refusing every
// link from before.
func (s *Store) begin() {
	ctx, cancel := context.WithTimeout(context.Background(), beginTimeout)
	defer cancel()
	_ = beginAt.Run(ctx, s.rdb, []string{s.dirKey(keyBegan), s.dirKey(keyRecords)},
		strconv.FormatInt(s.now().Truncate(time.Microsecond).UnixNano(), 10)).Err()
}

// redeemAtOnce is a whole redemption in one script, where every key is on
// one server: refuse an ended link (-3), a request whose clock reading is
// too old (-4, see spendHead), a link issued before the store's state began
// (-5: KEYS[5]; see beginAt when it is missing), a revoked user's older link (-2),
// a revoked link (-2) or a spent one (-1); else spend it, store and index
// the session. Times in nanoseconds are compared as decimal strings (Lua
// numbers are doubles).
var redeemAtOnce = goredis.NewScript(spendHead + beginning + `
local function le(a, b)
	if #a ~= #b then return #a < #b end
	return a <= b
end
if not le(beginning(KEYS[5], KEYS[6], ARGV[6]), ARGV[5]) then return -5 end
local c = redis.call('GET', KEYS[2])
if c then
	local at, untl = string.match(c, '^(%d+):(%d+)$')
	if at and not le(untl, ARGV[6]) and le(ARGV[5], at) then return -2 end
end
local v = redis.call('GET', KEYS[1])
local count, exp = 0, tonumber(ARGV[2])
if v then
	local n, e = string.match(v, '^(%-?%d+):(%d+)$')
	if n and tonumber(e) > tonumber(ARGV[3]) then
		if n == '-1' then return -2 end
		count, exp = tonumber(n), tonumber(e)
	end
end
if count >= tonumber(ARGV[1]) then return -1 end
redis.call('SET', KEYS[1], (count + 1) .. ':' .. exp, 'PX', string.format('%d', math.max(exp + slack - server, 1)))
redis.call('SET', KEYS[4], ARGV[7], 'PX', ARGV[8])
redis.call('SADD', KEYS[3], ARGV[9])
if redis.call('PTTL', KEYS[3]) < tonumber(ARGV[10]) then
	redis.call('PEXPIRE', KEYS[3], ARGV[10])
end
return count + 1
`)

// spendHead starts the scripts that spend a link (KEYS[1]; ARGV[2] its end,
// ARGV[3] the store's clock, ARGV[4] clockSlack, all in milliseconds). A
// link is judged by the store's clock, read just before the script is sent:
// refused from its end on (-3). Redis forgets the link's record clockSlack
// after its end, by Redis's own clock, so a request whose clock reading is
// at most clockSlack old when the script runs always finds the record of
// every use accepted before; an older one is refused (-4), for the caller
// to try again.
const spendHead = `
local now, slack = tonumber(ARGV[3]), tonumber(ARGV[4])
if now >= tonumber(ARGV[2]) then return -3 end
local t = redis.call('TIME')
local server = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if server - now > slack then return -4 end
`

// spendLink spends one use of a link: -3 ended, -4 a clock reading too old,
// -2 revoked, -1 all spent, else the new count.
var spendLink = goredis.NewScript(spendHead + `
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
redis.call('SET', KEYS[1], (count + 1) .. ':' .. exp, 'PX', string.format('%d', math.max(exp + slack - server, 1)))
return count + 1
`)

// indexSession adds a session to its user's set (KEYS[1]), keeps the set
// alive at least as long as the session, and returns the user's revocation
// record (KEYS[2]) as it stands once the session is indexed.
var indexSession = goredis.NewScript(`
redis.call('SADD', KEYS[1], ARGV[1])
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[2]) then
	redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return redis.call('GET', KEYS[2])
`)

// revokeUser records a user's revocation (KEYS[2]) and returns the session
// ids in their set (KEYS[1]). The set is emptied only after the sessions
// are deleted, so a revocation interrupted half way is whole when repeated.
var revokeUser = goredis.NewScript(`
redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[2])
return redis.call('SMEMBERS', KEYS[1])
`)

func (s *Store) key(kind, id string) string { return s.prefix + kind + id }

// userKey names a per-user key, hash-tagged by the user id.
func (s *Store) userKey(kind, userID string) string { return s.prefix + kind + "{" + userID + "}" }

// ttl is how long Redis keeps a record that ends at t by the store's clock.
func (s *Store) ttl(t time.Time) time.Duration {
	return max(t.Sub(s.now()), time.Millisecond)
}

// clockSlack is how much older than Redis's clock the store's clock reading
// of a spend may be when Redis runs it: the delay of the request plus the
// instance's clock behind Redis's. A record that refuses links is kept that
// much beyond its end.
const clockSlack = 30 * time.Second

// refusalTTL is how long Redis keeps a record that refuses links until t.
func (s *Store) refusalTTL(t time.Time) time.Duration { return s.ttl(t) + clockSlack }

// spendResult turns a spend script's answer into the store's.
func spendResult(n int) error {
	switch n {
	case -1:
		return store.ErrLinkUsed
	case -2:
		return store.ErrLinkRevoked
	case -3:
		return store.ErrLinkExpired
	case -5:
		return store.ErrLinkBeforeStore
	case -4:
		return fmt.Errorf("redeeming link: the request reached Redis more than %v after this instance read its clock (a slow Redis, or this clock behind Redis's): try again", clockSlack)
	}
	return nil
}

// Redeem implements store.Store. On one server (standalone, Sentinel) it is
// one script. On Cluster it is two round trips. The first reads the
// user's revocation and spends the link (one atomic script); the second
// writes the session and indexes it with a script that also reads the
// revocation, atomically with any RevokeUser: a revocation that lands
// first is seen here, one that lands after finds the session in the set.
// Spending a link that then turns out to be revoked loses nothing.
func (s *Store) Redeem(ctx context.Context, l store.LinkUse, sess *store.Session) error {
	v, err := json.Marshal(sess)
	if err != nil {
		return fmt.Errorf("encoding session: %w", err)
	}
	// In whole microseconds, as links carry their issue time: a store that
	// begins now refuses no link issued now.
	now := s.now().Truncate(time.Microsecond)
	if !s.cluster {
		keys := []string{s.key(keyLink, l.ID), s.userKey(keyCutoff, l.UserID), s.userKey(keyUser, sess.User.ID), s.key(keySession, sess.ID),
			s.dirKey(keyBegan), s.dirKey(keyRecords)}
		args := []any{l.Uses, l.Expires.UnixMilli(), now.UnixMilli(), clockSlack.Milliseconds(),
			strconv.FormatInt(l.IssuedAt.UnixNano(), 10), strconv.FormatInt(now.UnixNano(), 10),
			v, s.ttl(sess.Deadline()).Milliseconds(), sess.ID, s.ttl(sess.ExpiresAt).Milliseconds()}
		if s.replicas > 0 {
			return s.redeemReplicated(ctx, keys, args, sess.ID)
		}
		n, err := redeemAtOnce.Run(ctx, s.pipe, keys, args...).Int()
		switch {
		case err != nil && s.ranDespiteLostAnswer(ctx, err, sess.ID):
			return nil
		case err != nil:
			return redeemFailed(err)
		}
		return spendResult(n)
	}
	if err := s.checkBegan(ctx, l, now); err != nil {
		return err
	}
	var cutoff *goredis.StringCmd
	var spent *goredis.Cmd
	_, err = s.rdb.Pipelined(ctx, func(p goredis.Pipeliner) error {
		cutoff = p.Get(ctx, s.userKey(keyCutoff, l.UserID))
		// EVAL, not EVALSHA: a pipeline cannot fall back after NOSCRIPT
		// (a restarted Redis has forgotten every script), and the scripts
		// are short.
		spent = spendLink.Eval(ctx, p, []string{s.key(keyLink, l.ID)},
			l.Uses, l.Expires.UnixMilli(), now.UnixMilli(), clockSlack.Milliseconds())
		return nil
	})
	if err != nil && !errors.Is(err, goredis.Nil) {
		return fmt.Errorf("spending link: %w", err)
	}
	if cut, err := s.cutOff(cutoff.Result()); err != nil || cut(l) {
		return cmp.Or(err, store.ErrLinkRevoked)
	}
	switch n, err := spent.Int(); {
	case err != nil:
		return redeemFailed(err)
	case n < 0:
		return spendResult(n)
	}
	var indexed *goredis.Cmd
	_, err = s.rdb.Pipelined(ctx, func(p goredis.Pipeliner) error {
		indexed = s.putSession(ctx, p, sess, v)
		return nil
	})
	if err != nil && !errors.Is(err, goredis.Nil) {
		// The link is spent: its session is there or not, and only this
		// redemption knows its id.
		return fmt.Errorf("creating session: %w: %w", store.ErrOutcomeUnknown, err)
	}
	if cut, err := s.cutOff(indexed.Text()); err != nil || cut(l) {
		_ = s.DeleteSession(ctx, sess.ID)
		return cmp.Or(err, store.ErrLinkRevoked)
	}
	return nil
}

// beginning is the Lua function that answers when the store began (the
// key began). A Redis without that record either lost its state (a restart
// without persistence, a flush), and begins now, or predates the record and
// still holds the records of the links it knows (the key records), and has
// always begun (0): an upgrade refuses no link.
const beginning = `
local function beginning(began, records, now)
	local v = redis.call('GET', began)
	if not v then
		if redis.call('EXISTS', records) == 1 then v = '0' else v = now end
		redis.call('SET', began, v)
	end
	return v
end
`

// beginAt answers when the store began (KEYS[1]; KEYS[2] its link
// records; ARGV[1] now): see beginning.
var beginAt = goredis.NewScript(beginning + `return beginning(KEYS[1], KEYS[2], ARGV[1])`)

// checkBegan refuses a link issued before the store's state began, on
// Cluster, where the beginning lives in another slot than the link: one
// round trip before the spend. A Redis that lost its beginning begins now.
func (s *Store) checkBegan(ctx context.Context, l store.LinkUse, now time.Time) error {
	began, err := beginAt.Run(ctx, s.rdb, []string{s.dirKey(keyBegan), s.dirKey(keyRecords)}, strconv.FormatInt(now.UnixNano(), 10)).Text()
	if err != nil {
		return fmt.Errorf("reading when the store began: %w", err)
	}
	at, err := strconv.ParseInt(began, 10, 64)
	if err != nil {
		return fmt.Errorf("reading when the store began: bad record %q", began)
	}
	if l.IssuedAt.Before(time.Unix(0, at)) {
		return store.ErrLinkBeforeStore
	}
	return nil
}

// redeemReplicated runs the redemption script and WAIT on one connection
// (WAIT counts the writes of its own connection): the session counts only
// once the replicas hold it. Unacknowledged, it is an error whose outcome
// is open: the write may yet reach the replicas, or be lost in a failover,
// and then the link is unspent on the new master.
func (s *Store) redeemReplicated(ctx context.Context, keys []string, args []any, sessionID string) error {
	var spent *goredis.Cmd
	wait, err := s.written(ctx, func(p goredis.Pipeliner) { spent = redeemAtOnce.Eval(ctx, p, keys, args...) })
	n, spendErr := spent.Int()
	switch {
	case spendErr != nil && s.ranDespiteLostAnswer(ctx, spendErr, sessionID):
		// Ran, but its acknowledgement is as unknown as its answer was.
		return fmt.Errorf("redeeming link: %w: %w", store.ErrOutcomeUnknown, cmp.Or(err, spendErr))
	case spendErr != nil:
		return redeemFailed(spendErr)
	case n < 0:
		return spendResult(n)
	}
	if err := s.acked(wait, "redeeming link"); err != nil {
		return fmt.Errorf("%w: %w", store.ErrOutcomeUnknown, err)
	}
	return nil
}

// ranDespiteLostAnswer reports whether a redemption whose answer was lost (a broken
// connection or a timeout, not an error from Redis) ran all the same: its
// session, under an id no one else has, is in Redis. The script is atomic,
// so then the link was spent by this redemption and the session indexed.
// A batch of redemptions sharing a connection fails together when the
// connection does, including those whose answers had arrived; this keeps
// those users signed in instead of turning their spent link into a 503.
func (s *Store) ranDespiteLostAnswer(ctx context.Context, err error, sessionID string) bool {
	if !mayHaveRun(err) {
		return false // refused, or never sent: no need to ask a Redis that is away
	}
	n, err := s.rdb.Exists(context.WithoutCancel(ctx), s.key(keySession, sessionID)).Result()
	return err == nil && n == 1
}

// mayHaveRun reports whether a command that failed with err may have run
// all the same: its answer was lost (a timeout, a broken connection), it
// was neither refused by Redis nor never sent.
func mayHaveRun(err error) bool {
	var fromRedis goredis.Error
	var op *net.OpError
	switch {
	case errors.As(err, &fromRedis):
		return false
	case errors.Is(err, goredis.ErrClosed), errors.Is(err, goredis.ErrPoolTimeout),
		errors.As(err, &op) && op.Op == "dial":
		return false
	}
	return true
}

// redeemFailed describes a redemption that failed with err, marked
// store.ErrOutcomeUnknown when it may have run.
func redeemFailed(err error) error {
	if mayHaveRun(err) {
		return fmt.Errorf("redeeming link: %w: %w", store.ErrOutcomeUnknown, err)
	}
	return fmt.Errorf("redeeming link: %w", err)
}

// putSession queues the session write and its index on p; the index
// script answers with the user's revocation record.
func (s *Store) putSession(ctx context.Context, p goredis.Pipeliner, sess *store.Session, v []byte) *goredis.Cmd {
	p.Set(ctx, s.key(keySession, sess.ID), v, s.ttl(sess.Deadline()))
	return indexSession.Eval(ctx, p, []string{s.userKey(keyUser, sess.User.ID), s.userKey(keyCutoff, sess.User.ID)},
		sess.ID, s.ttl(sess.ExpiresAt).Milliseconds())
}

// cutOff reads a user's revocation record (the answer to a GET of it) and
// returns whether it refuses a given link: one issued at or before it.
func (s *Store) cutOff(v string, err error) (func(store.LinkUse) bool, error) {
	if errors.Is(err, goredis.Nil) || (err == nil && v == "") {
		return func(store.LinkUse) bool { return false }, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading revocations: %w", err)
	}
	atStr, untilStr, _ := strings.Cut(v, ":")
	at, err1 := strconv.ParseInt(atStr, 10, 64)
	until, err2 := strconv.ParseInt(untilStr, 10, 64)
	if err1 != nil || err2 != nil {
		return nil, fmt.Errorf("reading revocations: bad record %q", v)
	}
	live := s.now().Before(time.Unix(0, until))
	return func(l store.LinkUse) bool { return live && !l.IssuedAt.After(time.Unix(0, at)) }, nil
}

// LinkUses implements store.Store.
func (s *Store) LinkUses(ctx context.Context, id string) (int, bool, error) {
	v, err := s.rdb.Get(ctx, s.key(keyLink, id)).Result()
	if errors.Is(err, goredis.Nil) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("reading link: %w", err)
	}
	n, e, _ := strings.Cut(v, ":")
	count, err1 := strconv.Atoi(n)
	exp, err2 := strconv.ParseInt(e, 10, 64)
	switch {
	case err1 != nil || err2 != nil:
		return 0, false, fmt.Errorf("reading link: a record %q", v)
	case !s.now().Before(time.UnixMilli(exp)):
		return 0, false, nil
	case count == -1:
		return 0, true, nil
	}
	return count, false, nil
}

// RevokeLink implements store.Store.
func (s *Store) RevokeLink(ctx context.Context, id string, until time.Time) error {
	v := "-1:" + strconv.FormatInt(until.UnixMilli(), 10)
	wait, err := s.written(ctx, func(p goredis.Pipeliner) { p.Set(ctx, s.key(keyLink, id), v, s.refusalTTL(until)) })
	if err != nil {
		return fmt.Errorf("revoking link: %w", err)
	}
	return s.acked(wait, "revoking link")
}

// RevokeUser implements store.Store.
func (s *Store) RevokeUser(ctx context.Context, userID string, at, until time.Time) ([]string, error) {
	v := strconv.FormatInt(at.UnixNano(), 10) + ":" + strconv.FormatInt(until.UnixNano(), 10)
	var revoked *goredis.Cmd
	wait, err := s.written(ctx, func(p goredis.Pipeliner) {
		revoked = revokeUser.Eval(ctx, p, []string{s.userKey(keyUser, userID), s.userKey(keyCutoff, userID)},
			v, s.refusalTTL(until).Milliseconds())
	})
	ids, idsErr := revoked.StringSlice()
	if err := cmp.Or(idsErr, err); err != nil {
		return nil, fmt.Errorf("revoking user: %w", err)
	}
	// The sessions end whatever the replicas say: an unacknowledged
	// revocation is reported once they are gone, never left half done.
	unacked := s.acked(wait, "revoking user")
	live, err := s.deleteSessions(ctx, ids)
	if err != nil {
		return live, err
	}
	if len(ids) > 0 {
		members := make([]any, len(ids))
		for i, id := range ids {
			members[i] = id
		}
		if err := s.rdb.SRem(ctx, s.userKey(keyUser, userID), members...).Err(); err != nil {
			return live, fmt.Errorf("revoking user: %w", err)
		}
	}
	return live, unacked
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
	if err != nil && !errors.Is(err, goredis.Nil) {
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
	return store.DecodeSession(v, s.now())
}

// UserSessions implements store.Store. The user's set may name sessions
// Redis has already forgotten: they are skipped. One GET per session in one
// pipeline: on Cluster the sessions lie in other slots than the set.
func (s *Store) UserSessions(ctx context.Context, userID string) ([]store.Session, error) {
	ids, err := s.rdb.SMembers(ctx, s.userKey(keyUser, userID)).Result()
	if err != nil {
		return nil, fmt.Errorf("listing a user's sessions: %w", err)
	}
	if len(ids) == 0 {
		return nil, nil
	}
	cmds := make([]*goredis.StringCmd, len(ids))
	_, err = s.rdb.Pipelined(ctx, func(p goredis.Pipeliner) error {
		for i, id := range ids {
			cmds[i] = p.Get(ctx, s.key(keySession, id))
		}
		return nil
	})
	if err != nil && !errors.Is(err, goredis.Nil) {
		return nil, fmt.Errorf("reading a user's sessions: %w", err)
	}
	out := make([]store.Session, 0, len(ids))
	for _, cmd := range cmds {
		v, err := cmd.Bytes()
		if errors.Is(err, goredis.Nil) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("reading a user's sessions: %w", err)
		}
		sess, err := store.DecodeSession(v, s.now())
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, *sess)
	}
	return out, nil
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
	var sess store.Session
	if err == nil && json.Unmarshal(v, &sess) == nil {
		s.rdb.SRem(ctx, s.userKey(keyUser, sess.User.ID), id)
	}
	// Announced whatever GETDEL said (a late reply may hide a delete that
	// happened): other instances may hold the session in L1. Announcing
	// after the delete, never before, so no instance re-reads it meanwhile.
	pubErr := s.rdb.Publish(ctx, s.prefix+channel, id).Err()
	if err != nil && !errors.Is(err, goredis.Nil) {
		return fmt.Errorf("deleting session: %w", err)
	}
	if pubErr != nil {
		return fmt.Errorf("announcing ended session: %w", pubErr)
	}
	return nil
}

// Purge implements store.Store: Redis expires every record by itself.
func (s *Store) Purge(context.Context) (int, error) { return 0, nil }

// SelfExpiring tells the conformance suite that Purge has nothing to do.
func (s *Store) SelfExpiring() bool { return true }

// Close implements store.Store.
func (s *Store) Close() error { return s.rdb.Close() }

// Shared implements store.Sessions: every instance on this Redis shares it.
func (s *Store) Shared() bool { return true }

// CountSessions implements store.Sessions: Redis keeps no count, and
// counting keys would scan them all.
func (s *Store) CountSessions(context.Context) (int, error) { return 0, errors.ErrUnsupported }

// Ping reports whether Redis answers and takes writes.
//
// It writes: a Redis that answers but cannot write (out of memory, a replica
// that the client still takes for the master, a failed disk under
// persistence) signs no one in, and says so.
func (s *Store) Ping(ctx context.Context) error {
	return s.rdb.Set(ctx, s.prefix+"ping", s.now().UnixMilli(), time.Minute).Err()
}

// Watch implements store.Sessions: it reports sessions ended by any instance,
// and whether the subscription is known to be live. A subscription that
// cannot answer a ping within the check interval counts as broken: every
// ended session since may have been missed.
func (s *Store) Watch(ctx context.Context, forget func(ids ...string), synced func(ok bool)) {
	live := false
	set := func(ok bool) {
		if ok != live {
			live = ok
			synced(ok)
		}
	}
	for ctx.Err() == nil {
		s.watch(ctx, forget, set)
		set(false)
		// Do not spin while Redis is away.
		select {
		case <-ctx.Done():
		case <-time.After(min(s.check, time.Second)):
		}
	}
}

// watch runs one subscription until it breaks or goes silent: a quiet
// interval is answered with a ping, and a second one without any reply
// means the connection is dead even if TCP has not noticed.
func (s *Store) watch(ctx context.Context, forget func(ids ...string), set func(bool)) {
	ps := s.rdb.Subscribe(ctx, s.prefix+channel)
	defer ps.Close()
	pinged := false
	for {
		msg, err := ps.ReceiveTimeout(ctx, s.check)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			var netErr interface{ Timeout() bool }
			if !errors.As(err, &netErr) || !netErr.Timeout() || pinged {
				return
			}
			if ps.Ping(ctx) != nil {
				return
			}
			pinged = true
			continue
		}
		pinged = false
		switch m := msg.(type) {
		case *goredis.Subscription:
			if m.Kind == "subscribe" {
				// (Re)subscribed: whatever was missed is dropped by the reset.
				set(false)
				set(true)
			}
		case *goredis.Message:
			forget(strings.Fields(m.Payload)...)
		}
	}
}

var _ store.Store = (*Store)(nil)

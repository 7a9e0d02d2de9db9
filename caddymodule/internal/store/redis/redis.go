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
//	lg:<link id>     hash: the link's grant and its uses spent (see putLink),
//	                 expiring 30 s after the link's end
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
	keySession = "s:"
	keyUser    = "u:"
	// keyLink is a link's record, a hash (see putLink). The string use
	// records of versions before grants were kept ("l:") are left to expire.
	keyLink     = "lg:"
	keyCutoff   = "c:"
	keyContacts = "dc:"
	keyRecords  = "dl:"
	keyMenu     = "dm:" // + tenant id
	// keyTenants holds the tenants (id → JSON), keyTenantIDs their ids in
	// order (a sorted set at score 0), keyTenantsChanged the count of
	// their changes.
	keyTenants        = "dt:"
	keyTenantIDs      = "dT:"
	keyTenantsChanged = "dn:"
	keyHolders        = "dh:"
	// keyByEmail is the e-mail index: a sorted set of "address key\x00id"
	// (all at score 0, read by range); keyEmailOf each id's indexed address
	// key; keyIndexed says the index holds every contact.
	keyByEmail = "de:"
	keyEmailOf = "dE:"
	keyIndexed = "dI:"
	// keyDelivery is what became of a link's e-mail, beside its record.
	keyDelivery = "dd"
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
	return st
}

// A link's record (keyLink) is a hash: its grant as JSON ("grant"), the
// fields of it that the scripts judge by ("user", "app", "uses", "issued"
// in nanoseconds), what the session it starts takes from it ("starts",
// store.Grant.StartsJSON, and "origin" when that holds an origin), its end
// ("exp", milliseconds) and the uses spent ("n", -1 once revoked).
// PutLink writes it; Redis forgets it clockSlack after the link's end.

// putLink keeps a link's record (KEYS[1]: ARGV[1] the grant, ARGV[2] the
// user id, ARGV[3] the app, ARGV[4] the uses, ARGV[5] the issue time in
// nanoseconds, ARGV[6] the end in milliseconds, ARGV[7] its life in
// milliseconds, ARGV[8] what a session takes from it, ARGV[9] "1" when
// that has an origin).
var putLink = goredis.NewScript(`
redis.call('HSET', KEYS[1], 'grant', ARGV[1], 'user', ARGV[2], 'app', ARGV[3], 'uses', ARGV[4],
	'issued', ARGV[5], 'exp', ARGV[6], 'n', 0, 'starts', ARGV[8])
if ARGV[9] == '1' then redis.call('HSET', KEYS[1], 'origin', 1) end
redis.call('PEXPIRE', KEYS[1], ARGV[7])
return 1
`)

// spendHead starts the scripts that spend a link (KEYS[1]; ARGV[1] the
// user its token names, ARGV[2] its end, ARGV[3] the store's clock, ARGV[4]
// clockSlack, all in milliseconds; ARGV[5] the app). A link is judged by
// the store's clock, read just before the script is sent: refused from
// its end on (-3). Redis forgets the link's record clockSlack after its
// end, by Redis's own clock, so a request whose clock reading is at most
// clockSlack old when the script runs always finds the record of every
// use accepted before; an older one is refused (-4), for the caller to try
// again. Then the record is read (f): without one for that user and app
// the link is refused (-5); past the grant's own end, -3 too (a token's
// end is the grant's, unless the token was signed elsewhere); revoked, it
// is -2; spent, -1. A refusal comes with the grant when there is one.
const spendHead = `
local now, slack = tonumber(ARGV[3]), tonumber(ARGV[4])
if now >= tonumber(ARGV[2]) then return {-3} end
local t = redis.call('TIME')
local server = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if server - now > slack then return {-4} end
local f = redis.call('HMGET', KEYS[1], 'n', 'user', 'app', 'uses', 'issued', 'grant', 'starts', 'origin', 'exp')
if not f[7] or f[2] ~= ARGV[1] or f[3] ~= ARGV[5] or tonumber(f[1]) == nil then return {-5} end
if now >= tonumber(f[9]) then return {-3} end
if f[1] == '-1' then return {-2, f[6]} end
local count = tonumber(f[1])
if count >= tonumber(f[4]) then return {-1, f[6]} end
`

// redeemAtOnce is a whole redemption in one script, where every key is on
// one server: spendHead, then a revoked user's older link is refused (-2:
// KEYS[2], the user's revocation); else one use is spent, and the session
// stored (KEYS[4], for ARGV[7] ms) and indexed (KEYS[3]: ARGV[8] its id,
// ARGV[9] the set's life). Its JSON is its own members (ARGV[6]; for a
// grant with an origin, without its own origin, the members before byte
// ARGV[11]: see store.Session.OwnJSON), then what it takes from the grant,
// joined as written. It answers the new count and the grant. Times in nanoseconds
// are compared as decimal strings (Lua numbers are doubles).
var redeemAtOnce = goredis.NewScript(spendHead + `
local function le(a, b)
	if #a ~= #b then return #a < #b end
	return a <= b
end
local c = redis.call('GET', KEYS[2])
if c then
	local at, untl = string.match(c, '^(%d+):(%d+)$')
	if at and not le(untl, ARGV[10]) and le(f[5], at) then return {-2, f[6]} end
end
redis.call('HINCRBY', KEYS[1], 'n', 1)
local own = ARGV[6]
if f[8] then own = string.sub(own, 1, tonumber(ARGV[11])) end
redis.call('SET', KEYS[4], own .. f[7] .. '}', 'PX', ARGV[7])
redis.call('SADD', KEYS[3], ARGV[8])
if redis.call('PTTL', KEYS[3]) < tonumber(ARGV[9]) then
	redis.call('PEXPIRE', KEYS[3], ARGV[9])
end
return {count + 1, f[6]}
`)

// spendLink spends one use of a link (spendHead), on Cluster, where the
// session lives in another slot: the new count and the grant.
var spendLink = goredis.NewScript(spendHead + `
redis.call('HINCRBY', KEYS[1], 'n', 1)
return {count + 1, f[6]}
`)

// revokeLink marks a link's record (KEYS[1]) revoked: 0 when there is none.
var revokeLink = goredis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'n', -1)
return 1
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

// spendResult turns a spend script's answer (the new count, or a
// refusal's negative code, then the grant) into the grant when the link
// has one, and the store's refusal.
func spendResult(v []any) (store.Grant, error) {
	if len(v) == 0 {
		return store.Grant{}, errors.New("redeeming link: an empty answer")
	}
	n, _ := v[0].(int64)
	var g store.Grant
	if len(v) > 1 {
		raw, _ := v[1].(string)
		if err := json.Unmarshal([]byte(raw), &g); err != nil {
			return store.Grant{}, fmt.Errorf("decoding link: %w", err)
		}
	}
	switch n {
	case -1:
		return g, store.ErrLinkUsed
	case -2:
		return g, store.ErrLinkRevoked
	case -3:
		return g, store.ErrLinkExpired
	case -5:
		return g, store.ErrLinkBeforeStore
	case -4:
		return g, fmt.Errorf("redeeming link: the request reached Redis more than %v after this instance read its clock (a slow Redis, or this clock behind Redis's): try again", clockSlack)
	}
	return g, nil
}

// PutLink implements store.Store.
func (s *Store) PutLink(ctx context.Context, g store.Grant) error {
	v, err := json.Marshal(&g)
	if err != nil {
		return fmt.Errorf("encoding link: %w", err)
	}
	starts, err := g.StartsJSON()
	if err != nil {
		return err
	}
	origin := "0"
	if g.Origin != "" {
		origin = "1"
	}
	wait, err := s.written(ctx, func(p goredis.Pipeliner) {
		putLink.Eval(ctx, p, []string{s.key(keyLink, g.ID)}, v, g.User.ID, g.App, g.Uses,
			strconv.FormatInt(g.IssuedAt.UnixNano(), 10), g.Expires.UnixMilli(), s.refusalTTL(g.Expires).Milliseconds(),
			starts, origin)
	})
	if err != nil {
		return fmt.Errorf("keeping link: %w", err)
	}
	return s.acked(wait, "keeping link")
}

// Redeem implements store.Store. On one server (standalone, Sentinel) it is
// one script. On Cluster it is two round trips. The first reads the
// user's revocation and spends the link (one atomic script); the second
// writes the session and indexes it with a script that also reads the
// revocation, atomically with any RevokeUser: a revocation that lands
// first is seen here, one that lands after finds the session in the set.
// Spending a link that then turns out to be revoked loses nothing.
func (s *Store) Redeem(ctx context.Context, l store.Spend, sess *store.Session) (store.Grant, error) {
	now := s.now()
	if !s.cluster {
		// The script gives the session what it takes from the grant; so
		// does Go, once the script has answered with the grant.
		own, withoutOrigin, err := sess.OwnJSON()
		if err != nil {
			return store.Grant{}, err
		}
		keys := []string{s.key(keyLink, l.ID), s.userKey(keyCutoff, l.UserID), s.userKey(keyUser, l.UserID), s.key(keySession, sess.ID)}
		args := []any{l.UserID, l.Expires.UnixMilli(), now.UnixMilli(), clockSlack.Milliseconds(), sess.App,
			own, s.ttl(sess.Deadline()).Milliseconds(), sess.ID, s.ttl(sess.ExpiresAt).Milliseconds(),
			strconv.FormatInt(now.UnixNano(), 10), withoutOrigin}
		var g store.Grant
		if s.replicas > 0 {
			g, err = s.redeemReplicated(ctx, keys, args, sess.ID)
		} else {
			var res []any
			res, err = redeemAtOnce.Run(ctx, s.pipe, keys, args...).Slice()
			switch {
			case err != nil && s.ranDespiteLostAnswer(ctx, err, sess.ID):
				g, err = s.grant(ctx, l.ID)
			case err != nil:
				err = redeemFailed(err)
			default:
				g, err = spendResult(res)
			}
		}
		if err == nil {
			g.Starts(sess)
		}
		return g, err
	}
	var cutoff *goredis.StringCmd
	var spent *goredis.Cmd
	_, err := s.rdb.Pipelined(ctx, func(p goredis.Pipeliner) error {
		cutoff = p.Get(ctx, s.userKey(keyCutoff, l.UserID))
		// EVAL, not EVALSHA: a pipeline cannot fall back after NOSCRIPT
		// (a restarted Redis has forgotten every script), and the scripts
		// are short.
		spent = spendLink.Eval(ctx, p, []string{s.key(keyLink, l.ID)},
			l.UserID, l.Expires.UnixMilli(), now.UnixMilli(), clockSlack.Milliseconds(), sess.App)
		return nil
	})
	if err != nil && !errors.Is(err, goredis.Nil) {
		return store.Grant{}, fmt.Errorf("spending link: %w", err)
	}
	res, err := spent.Slice()
	if err != nil {
		return store.Grant{}, redeemFailed(err)
	}
	g, err := spendResult(res)
	if err != nil {
		return g, err
	}
	if cut, err := s.cutOff(cutoff.Result()); err != nil || cut(g.IssuedAt) {
		return g, cmp.Or(err, store.ErrLinkRevoked)
	}
	g.Starts(sess)
	v, err := json.Marshal(sess)
	if err != nil {
		return store.Grant{}, fmt.Errorf("encoding session: %w", err)
	}
	var indexed *goredis.Cmd
	_, err = s.rdb.Pipelined(ctx, func(p goredis.Pipeliner) error {
		indexed = s.putSession(ctx, p, sess, v)
		return nil
	})
	if err != nil && !errors.Is(err, goredis.Nil) {
		// The link is spent: its session is there or not, and only this
		// redemption knows its id.
		return store.Grant{}, fmt.Errorf("creating session: %w: %w", store.ErrOutcomeUnknown, err)
	}
	if cut, err := s.cutOff(indexed.Text()); err != nil || cut(g.IssuedAt) {
		_ = s.DeleteSession(ctx, sess.ID)
		return g, cmp.Or(err, store.ErrLinkRevoked)
	}
	return g, nil
}

// grant reads link id's grant after a redemption whose answer was lost
// but whose session is there.
func (s *Store) grant(ctx context.Context, id string) (store.Grant, error) {
	l, err := s.Link(context.WithoutCancel(ctx), id)
	if err != nil {
		return store.Grant{}, fmt.Errorf("redeeming link: %w: reading its grant: %w", store.ErrOutcomeUnknown, err)
	}
	return l.Grant, nil
}

// redeemReplicated runs the redemption script and WAIT on one connection
// (WAIT counts the writes of its own connection): the session counts only
// once the replicas hold it. Unacknowledged, it is an error whose outcome
// is open: the write may yet reach the replicas, or be lost in a failover,
// and then the link is unspent on the new master.
func (s *Store) redeemReplicated(ctx context.Context, keys []string, args []any, sessionID string) (store.Grant, error) {
	var spent *goredis.Cmd
	wait, err := s.written(ctx, func(p goredis.Pipeliner) { spent = redeemAtOnce.Eval(ctx, p, keys, args...) })
	res, spendErr := spent.Slice()
	switch {
	case spendErr != nil && s.ranDespiteLostAnswer(ctx, spendErr, sessionID):
		// Ran, but its acknowledgement is as unknown as its answer was.
		return store.Grant{}, fmt.Errorf("redeeming link: %w: %w", store.ErrOutcomeUnknown, cmp.Or(err, spendErr))
	case spendErr != nil:
		return store.Grant{}, redeemFailed(spendErr)
	}
	g, refused := spendResult(res)
	if refused != nil {
		return g, refused
	}
	if err := s.acked(wait, "redeeming link"); err != nil {
		return store.Grant{}, fmt.Errorf("%w: %w", store.ErrOutcomeUnknown, err)
	}
	return g, nil
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
func (s *Store) cutOff(v string, err error) (func(issued time.Time) bool, error) {
	if errors.Is(err, goredis.Nil) || (err == nil && v == "") {
		return func(time.Time) bool { return false }, nil
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
	return func(issued time.Time) bool { return live && !issued.After(time.Unix(0, at)) }, nil
}

// Link implements store.Store.
func (s *Store) Link(ctx context.Context, id string) (store.LinkState, error) {
	f, err := s.rdb.HMGet(ctx, s.key(keyLink, id), "n", "exp", "grant").Result()
	if err != nil {
		return store.LinkState{}, fmt.Errorf("reading link: %w", err)
	}
	raw, _ := f[2].(string)
	if raw == "" {
		return store.LinkState{}, store.ErrNotFound
	}
	n, _ := f[0].(string)
	exp, _ := f[1].(string)
	spent, revoked, live := linkUses(n, exp, s.now())
	if !live {
		return store.LinkState{}, store.ErrNotFound
	}
	l := store.LinkState{Spent: spent, Revoked: revoked}
	if err := json.Unmarshal([]byte(raw), &l.Grant); err != nil {
		return store.LinkState{}, fmt.Errorf("decoding link: %w", err)
	}
	return l, nil
}

// RevokeLink implements store.Store.
func (s *Store) RevokeLink(ctx context.Context, id string) error {
	var revoked *goredis.Cmd
	wait, err := s.written(ctx, func(p goredis.Pipeliner) {
		revoked = revokeLink.Eval(ctx, p, []string{s.key(keyLink, id)})
	})
	if err != nil {
		return fmt.Errorf("revoking link: %w", err)
	}
	if n, err := revoked.Int(); err != nil || n == 0 {
		return cmp.Or(err, store.ErrNotFound)
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

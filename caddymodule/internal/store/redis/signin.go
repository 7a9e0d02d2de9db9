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

// A sign-in is a hash under its browser (v: the JSON, link: its link id,
// tries: the codes typed), and an address's last sign-in a string "browser
// link end" (end in Unix nanoseconds); both expire with the link, and live
// in the directory's slot, so one script may touch them all. The hash tag
// comes first: an address may hold braces of its own.
func (s *Store) signInKey(browser string) string { return s.prefix + "signin{dir}:" + browser }
func (s *Store) lastSignInKey(address string) string {
	return s.prefix + "signin-last{dir}:" + address
}

// putSignIn replaces an address's last sign-in if it is still what the
// caller read (ARGV[1]; else -1, and the caller reads again), dropping the
// sign-in it names (KEYS[3]) when that is still the same link's.
var putSignIn = goredis.NewScript(`
local cur = redis.call('GET', KEYS[1]) or ''
if cur ~= ARGV[1] then return -1 end
if ARGV[2] ~= '' and redis.call('HGET', KEYS[3], 'link') == ARGV[2] then
	redis.call('DEL', KEYS[3])
end
redis.call('DEL', KEYS[2])
redis.call('HSET', KEYS[2], 'v', ARGV[3], 'link', ARGV[4], 'tries', 0)
redis.call('PEXPIRE', KEYS[2], ARGV[5])
redis.call('SET', KEYS[1], ARGV[6], 'PX', ARGV[5])
return 1
`)

// trySignIn counts a try and answers the sign-in and the tries so far,
// forgetting it at the last try.
var trySignIn = goredis.NewScript(`
local v = redis.call('HGET', KEYS[1], 'v')
if not v then return false end
local n = redis.call('HINCRBY', KEYS[1], 'tries', 1)
if n >= tonumber(ARGV[1]) then redis.call('DEL', KEYS[1]) end
return {v, n}
`)

// PutSignIn implements store.SignIns.
func (s *Store) PutSignIn(ctx context.Context, si store.SignIn) (string, error) {
	v, err := json.Marshal(si)
	if err != nil {
		return "", fmt.Errorf("encoding sign-in: %w", err)
	}
	if si.Decoy {
		ttl := s.ttl(si.Expires())
		_, err := s.rdb.TxPipelined(ctx, func(p goredis.Pipeliner) error {
			key := s.signInKey(si.Browser)
			p.Del(ctx, key)
			p.HSet(ctx, key, "v", v, "link", si.Link.ID, "tries", 0)
			p.PExpire(ctx, key, ttl)
			return nil
		})
		if err != nil {
			return "", fmt.Errorf("keeping sign-in: %w", err)
		}
		return "", nil
	}
	lastKey := s.lastSignInKey(si.Address)
	next := si.Browser + " " + si.Link.ID + " " + strconv.FormatInt(si.Expires().UnixNano(), 10)
	ttl := strconv.FormatInt(s.ttl(si.Expires()).Milliseconds(), 10)
	for {
		cur, err := s.rdb.Get(ctx, lastKey).Result()
		if err != nil && !errors.Is(err, goredis.Nil) {
			return "", fmt.Errorf("reading an address's last sign-in: %w", err)
		}
		prevBrowser, replaced := si.Browser, ""
		if f := strings.Fields(cur); len(f) == 3 {
			if end, err := strconv.ParseInt(f[2], 10, 64); err == nil && s.now().Before(time.Unix(0, end)) {
				prevBrowser, replaced = f[0], f[1]
			}
		}
		n, err := putSignIn.Run(ctx, s.rdb, []string{lastKey, s.signInKey(si.Browser), s.signInKey(prevBrowser)},
			cur, replaced, v, si.Link.ID, ttl, next).Int()
		if err != nil {
			return "", fmt.Errorf("keeping sign-in: %w", err)
		}
		if n == 1 {
			return replaced, nil
		}
	}
}

// TrySignIn implements store.SignIns.
func (s *Store) TrySignIn(ctx context.Context, browser string, maxTries int) (store.SignIn, error) {
	res, err := trySignIn.Run(ctx, s.rdb, []string{s.signInKey(browser)}, maxTries).Slice()
	if errors.Is(err, goredis.Nil) {
		return store.SignIn{}, store.ErrNotFound
	}
	if err != nil {
		return store.SignIn{}, fmt.Errorf("trying a sign-in code: %w", err)
	}
	v, _ := res[0].(string)
	tries, _ := res[1].(int64)
	var si store.SignIn
	if err := json.Unmarshal([]byte(v), &si); err != nil {
		return store.SignIn{}, fmt.Errorf("decoding sign-in: %w", err)
	}
	if !s.now().Before(si.Expires()) {
		return store.SignIn{}, store.ErrNotFound
	}
	si.Tries = int(tries)
	return si, nil
}

// EndSignIn implements store.SignIns.
func (s *Store) EndSignIn(ctx context.Context, browser string) error {
	if err := s.rdb.Del(ctx, s.signInKey(browser)).Err(); err != nil {
		return fmt.Errorf("ending sign-in: %w", err)
	}
	return nil
}

// addCodeFailure counts a wrong code for an address (KEYS[1], a hash of
// n and until, in ms by the store's clock): a count whose until has passed
// by ARGV[1] starts again, kept until ARGV[2] (Redis forgets it ARGV[3] ms
// on).
var addCodeFailure = goredis.NewScript(`
local ends = tonumber(redis.call('HGET', KEYS[1], 'until') or '0')
if ends <= tonumber(ARGV[1]) then
	redis.call('DEL', KEYS[1])
	redis.call('HSET', KEYS[1], 'until', ARGV[2])
	redis.call('PEXPIRE', KEYS[1], ARGV[3])
end
return redis.call('HINCRBY', KEYS[1], 'n', 1)
`)

func (s *Store) codeFailuresKey(address string) string { return s.prefix + "codefail{dir}:" + address }

// AddCodeFailure implements store.SignIns.
func (s *Store) AddCodeFailure(ctx context.Context, address string, until time.Time) (int, error) {
	n, err := addCodeFailure.Run(ctx, s.rdb, []string{s.codeFailuresKey(address)},
		s.now().UnixMilli(), until.UnixMilli(), s.ttl(until).Milliseconds()).Int()
	if err != nil {
		return 0, fmt.Errorf("counting a wrong code: %w", err)
	}
	return n, nil
}

// CodeFailures implements store.SignIns.
func (s *Store) CodeFailures(ctx context.Context, address string) (int, error) {
	v, err := s.rdb.HMGet(ctx, s.codeFailuresKey(address), "n", "until").Result()
	if err != nil {
		return 0, fmt.Errorf("reading wrong codes: %w", err)
	}
	ns, _ := v[0].(string)
	us, _ := v[1].(string)
	n, _ := strconv.Atoi(ns)
	until, _ := strconv.ParseInt(us, 10, 64)
	if s.now().UnixMilli() >= until {
		return 0, nil
	}
	return n, nil
}

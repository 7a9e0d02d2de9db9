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

// recordLink pushes a link record (ARGV[1]) onto the list (KEYS[1]), keeps
// only the newest ARGV[2], and keeps the list alive at least ARGV[3]
// milliseconds: as long as the longest-kept record in it.
var recordLink = goredis.NewScript(`
redis.call('LPUSH', KEYS[1], ARGV[1])
redis.call('LTRIM', KEYS[1], 0, tonumber(ARGV[2]) - 1)
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[3]) then
	redis.call('PEXPIRE', KEYS[1], ARGV[3])
end
return 1
`)

// setMenu replaces the menu (KEYS[1]) with ARGV[2] if it is still at
// version ARGV[1], and returns the new version; -1 when it is not.
var setMenu = goredis.NewScript(`
local v = redis.call('GET', KEYS[1])
local version = 0
if v then version = cjson.decode(v).version end
if version ~= tonumber(ARGV[1]) then return -1 end
redis.call('SET', KEYS[1], ARGV[2])
return version + 1
`)

// dirKey names a directory key; they all share one hash tag.
func (s *Store) dirKey(kind string) string { return s.prefix + kind + "{dir}" }

// PutContacts implements store.Directory, in one HSET.
func (s *Store) PutContacts(ctx context.Context, cs []store.Contact) error {
	if len(cs) == 0 {
		return nil
	}
	fields := make([]any, 0, 2*len(cs))
	for _, c := range cs {
		if c.ID == "" {
			return errors.New("storing contacts: a contact has no id")
		}
		v, err := json.Marshal(c)
		if err != nil {
			return fmt.Errorf("encoding contact: %w", err)
		}
		fields = append(fields, c.ID, v)
	}
	if err := s.rdb.HSet(ctx, s.dirKey(keyContacts), fields...).Err(); err != nil {
		return fmt.Errorf("storing contacts: %w", err)
	}
	return nil
}

// Contact implements store.Directory.
func (s *Store) Contact(ctx context.Context, id string) (store.Contact, error) {
	v, err := s.rdb.HGet(ctx, s.dirKey(keyContacts), id).Result()
	if errors.Is(err, goredis.Nil) {
		return store.Contact{}, store.ErrNotFound
	}
	if err != nil {
		return store.Contact{}, fmt.Errorf("reading contact: %w", err)
	}
	var c store.Contact
	if err := json.Unmarshal([]byte(v), &c); err != nil {
		return store.Contact{}, fmt.Errorf("decoding contact: %w", err)
	}
	return c, nil
}

// ScanContacts implements store.Scanner.
func (s *Store) ScanContacts(ctx context.Context) ([]store.Contact, error) {
	all, err := s.rdb.HGetAll(ctx, s.dirKey(keyContacts)).Result()
	if err != nil {
		return nil, fmt.Errorf("reading contacts: %w", err)
	}
	cs := make([]store.Contact, 0, len(all))
	for _, v := range all {
		var c store.Contact
		if err := json.Unmarshal([]byte(v), &c); err != nil {
			return nil, fmt.Errorf("decoding contact: %w", err)
		}
		cs = append(cs, c)
	}
	return cs, nil
}

// RecordLink implements store.Directory: the push and the trim are one
// script.
func (s *Store) RecordLink(ctx context.Context, r store.LinkRecord) error {
	v, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("encoding link record: %w", err)
	}
	err = recordLink.Run(ctx, s.rdb, []string{s.dirKey(keyRecords)},
		v, store.MaxLinkRecords, s.ttl(r.Keep).Milliseconds()).Err()
	if err != nil {
		return fmt.Errorf("recording link: %w", err)
	}
	return nil
}

// ScanLinks implements store.Scanner. Records whose Keep has passed are
// skipped here: Redis forgets the list only once the last of them has.
// The use records are read in one pipeline of GETs, not one MGET: on
// Redis Cluster they live in different slots, and the client splits a
// pipeline by slot.
func (s *Store) ScanLinks(ctx context.Context) ([]store.LinkRecord, error) {
	vs, err := s.rdb.LRange(ctx, s.dirKey(keyRecords), 0, -1).Result()
	if err != nil {
		return nil, fmt.Errorf("reading link records: %w", err)
	}
	now := s.now()
	rs := make([]store.LinkRecord, 0, len(vs))
	for _, v := range vs {
		var r store.LinkRecord
		if err := json.Unmarshal([]byte(v), &r); err != nil {
			return nil, fmt.Errorf("decoding link record: %w", err)
		}
		if now.Before(r.Keep) {
			rs = append(rs, r)
		}
	}
	if len(rs) == 0 {
		return rs, nil
	}
	uses := make([]*goredis.StringCmd, len(rs))
	cutoffs := make([]*goredis.StringCmd, len(rs))
	_, err = s.rdb.Pipelined(ctx, func(p goredis.Pipeliner) error {
		for i, r := range rs {
			uses[i] = p.Get(ctx, s.key(keyLink, r.ID))
			cutoffs[i] = p.Get(ctx, s.userKey(keyCutoff, r.User.ID))
		}
		return nil
	})
	if err != nil && !errors.Is(err, goredis.Nil) {
		return nil, fmt.Errorf("reading link uses: %w", err)
	}
	for i := range rs {
		cut, err := s.cutOff(cutoffs[i].Result())
		if err != nil {
			return nil, err
		}
		v, err := uses[i].Result()
		if err != nil && !errors.Is(err, goredis.Nil) {
			return nil, fmt.Errorf("reading link uses: %w", err)
		}
		if err == nil {
			rs[i].Spent, rs[i].Revoked = linkUses(v, now)
		}
		if cut(store.LinkUse{UserID: rs[i].User.ID, IssuedAt: rs[i].IssuedAt}) {
			rs[i].Revoked = true
		}
	}
	return rs, nil
}

// linkUses reads a link's use record, "<uses spent>:<expiry ms>" or
// "-1:<expiry ms>" when revoked (which keeps no count). A record that has
// expired by now, or that cannot be read, says nothing: the scripts that
// spend links treat it the same.
func linkUses(v string, now time.Time) (spent int, revoked bool) {
	countStr, expStr, _ := strings.Cut(v, ":")
	count, err1 := strconv.Atoi(countStr)
	exp, err2 := strconv.ParseInt(expStr, 10, 64)
	if err1 != nil || err2 != nil || exp <= now.UnixMilli() {
		return 0, false
	}
	if count == -1 {
		return 0, true
	}
	return count, false
}

// Menu implements store.Directory.
func (s *Store) Menu(ctx context.Context) (store.Menu, error) {
	v, err := s.rdb.Get(ctx, s.dirKey(keyMenu)).Bytes()
	if errors.Is(err, goredis.Nil) {
		return store.Menu{}, nil
	}
	if err != nil {
		return store.Menu{}, fmt.Errorf("reading menu: %w", err)
	}
	var m store.Menu
	if err := json.Unmarshal(v, &m); err != nil {
		return store.Menu{}, fmt.Errorf("decoding menu: %w", err)
	}
	return m, nil
}

// SetMenu implements store.Directory: a script compares the version and
// writes, so two instances cannot both win.
func (s *Store) SetMenu(ctx context.Context, items []store.MenuItem, version int64) (int64, error) {
	v, err := json.Marshal(store.Menu{Items: items, Version: version + 1})
	if err != nil {
		return 0, fmt.Errorf("encoding menu: %w", err)
	}
	n, err := setMenu.Run(ctx, s.rdb, []string{s.dirKey(keyMenu)}, version, v).Int64()
	switch {
	case err != nil:
		return 0, fmt.Errorf("storing menu: %w", err)
	case n == -1:
		return 0, store.ErrConflict
	}
	return n, nil
}

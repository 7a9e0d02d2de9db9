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

// putContacts stores contacts (ARGV: id, JSON, address key, id, ...) in
// the hash KEYS[1], and their addresses in the e-mail index (KEYS[3], each
// id's indexed address in KEYS[4]), unless an id is held in KEYS[2] by
// someone other than a contact (ARGV[1] first, the contact holder): then it
// answers that id.
var putContacts = goredis.NewScript(`
for i = 2, #ARGV, 3 do
	local h = redis.call('HGET', KEYS[2], ARGV[i])
	if h and h ~= ARGV[1] then return ARGV[i] end
end
for i = 2, #ARGV, 3 do
	local id, addr = ARGV[i], ARGV[i + 2]
	redis.call('HSET', KEYS[1], id, ARGV[i + 1])
	local old = redis.call('HGET', KEYS[4], id)
	if old then redis.call('ZREM', KEYS[3], old .. '\0' .. id) end
	if addr ~= '' then
		redis.call('ZADD', KEYS[3], 0, addr .. '\0' .. id)
		redis.call('HSET', KEYS[4], id, addr)
	elseif old then
		redis.call('HDEL', KEYS[4], id)
	end
end
return false
`)

// indexEmails puts contacts (ARGV: id, address key, ...) into the e-mail
// index (KEYS[1], KEYS[2]) unless they are there, and marks it complete
// (KEYS[3]).
var indexEmails = goredis.NewScript(`
for i = 1, #ARGV, 2 do
	if redis.call('HSETNX', KEYS[2], ARGV[i], ARGV[i + 1]) == 1 then
		redis.call('ZADD', KEYS[1], 0, ARGV[i + 1] .. '\0' .. ARGV[i])
	end
end
redis.call('SET', KEYS[3], '1')
return 1
`)

// claimID records in the hash KEYS[2] that the id ARGV[1] names the holder
// ARGV[2] and answers false, or answers who holds it if another does: its
// claim, or the contact holder ARGV[3] if a contact record in KEYS[1] has
// it.
var claimID = goredis.NewScript(`
local h = redis.call('HGET', KEYS[2], ARGV[1])
if not h and redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then h = ARGV[3] end
if not h then
	redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
	return false
end
if h == ARGV[2] then return false end
return h
`)

// contactHolder is the claim of a contact's id, as the scripts compare it.
var contactHolder = func() string {
	v, _ := json.Marshal(store.ContactHolder)
	return string(v)
}()

// dirKey names a directory key; they all share one hash tag.
func (s *Store) dirKey(kind string) string { return s.prefix + kind + "{dir}" }

// PutContacts implements store.Directory, in one HSET.
func (s *Store) PutContacts(ctx context.Context, cs []store.Contact) error {
	if len(cs) == 0 {
		return nil
	}
	fields := make([]any, 1, 1+2*len(cs))
	fields[0] = contactHolder
	for _, c := range cs {
		if c.ID == "" {
			return errors.New("storing contacts: a contact has no id")
		}
		v, err := json.Marshal(c)
		if err != nil {
			return fmt.Errorf("encoding contact: %w", err)
		}
		fields = append(fields, c.ID, v, store.AddressKey(c.Email))
	}
	keys := []string{s.dirKey(keyContacts), s.dirKey(keyHolders), s.dirKey(keyByEmail), s.dirKey(keyEmailOf)}
	taken, err := putContacts.Run(ctx, s.rdb, keys, fields...).Text()
	if errors.Is(err, goredis.Nil) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("storing contacts: %w", err)
	}
	return fmt.Errorf("storing contact %q: %w", taken, store.ErrIDTaken)
}

// ClaimID implements store.Directory, in one script.
func (s *Store) ClaimID(ctx context.Context, id string, h store.Holder) (store.Holder, error) {
	v, err := json.Marshal(h)
	if err != nil {
		return store.Holder{}, fmt.Errorf("encoding holder: %w", err)
	}
	keys := []string{s.dirKey(keyContacts), s.dirKey(keyHolders)}
	held, err := claimID.Run(ctx, s.rdb, keys, id, v, contactHolder).Text()
	if errors.Is(err, goredis.Nil) {
		return h, nil
	}
	if err != nil {
		return store.Holder{}, fmt.Errorf("claiming id: %w", err)
	}
	var old store.Holder
	if err := json.Unmarshal([]byte(held), &old); err != nil {
		return store.Holder{}, fmt.Errorf("decoding holder: %w", err)
	}
	return old, store.ErrIDTaken
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
	uses := make([]*goredis.SliceCmd, len(rs))
	cutoffs := make([]*goredis.StringCmd, len(rs))
	deliveries := make([]*goredis.StringCmd, len(rs))
	_, err = s.rdb.Pipelined(ctx, func(p goredis.Pipeliner) error {
		for i, r := range rs {
			uses[i] = p.HMGet(ctx, s.key(keyLink, r.ID), "n", "exp")
			cutoffs[i] = p.Get(ctx, s.userKey(keyCutoff, r.User.ID))
			if r.Delivery != "" {
				deliveries[i] = p.Get(ctx, s.deliveryKey(r.ID))
			}
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
		f, err := uses[i].Result()
		if err != nil && !errors.Is(err, goredis.Nil) {
			return nil, fmt.Errorf("reading link uses: %w", err)
		}
		if len(f) == 2 {
			n, _ := f[0].(string)
			exp, _ := f[1].(string)
			rs[i].Spent, rs[i].Revoked, _ = linkUses(n, exp, now)
		}
		if cut(rs[i].IssuedAt) {
			rs[i].Revoked = true
		}
		if deliveries[i] != nil {
			if d, err := deliveries[i].Result(); err == nil {
				rs[i].Delivery = d
			}
		}
	}
	return rs, nil
}

// deliveryKey names the delivery of link id, in the directory's slot.
func (s *Store) deliveryKey(id string) string { return s.prefix + keyDelivery + "{dir}:" + id }

// SetDelivery implements store.Directory: kept beside the record (the list
// holds records as written), as long as the record.
func (s *Store) SetDelivery(ctx context.Context, id, delivery string, keep time.Time) error {
	if err := s.rdb.Set(ctx, s.deliveryKey(id), delivery, s.ttl(keep)).Err(); err != nil {
		return fmt.Errorf("recording a delivery: %w", err)
	}
	return nil
}

// linkUses reads a link record's count ("n": the uses spent, or -1 when
// revoked, which keeps no count) and end ("exp", in milliseconds). A
// record that has ended by now, or that cannot be read, says nothing
// (live is false): the scripts that spend links treat it the same.
func linkUses(n, exp string, now time.Time) (spent int, revoked, live bool) {
	count, err1 := strconv.Atoi(n)
	end, err2 := strconv.ParseInt(exp, 10, 64)
	switch {
	case err1 != nil || err2 != nil || end <= now.UnixMilli():
		return 0, false, false
	case count == -1:
		return 0, true, true
	}
	return count, false, true
}

// Menu implements store.Directory.
func (s *Store) Menu(ctx context.Context, tenant string) (store.Menu, error) {
	v, err := s.rdb.Get(ctx, s.dirKey(keyMenu+tenant)).Bytes()
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
func (s *Store) SetMenu(ctx context.Context, tenant string, items []store.MenuItem, version int64) (int64, error) {
	v, err := json.Marshal(store.Menu{Items: items, Version: version + 1})
	if err != nil {
		return 0, fmt.Errorf("encoding menu: %w", err)
	}
	n, err := setMenu.Run(ctx, s.rdb, []string{s.dirKey(keyMenu + tenant)}, version, v).Int64()
	switch {
	case err != nil:
		return 0, fmt.Errorf("storing menu: %w", err)
	case n == -1:
		return 0, store.ErrConflict
	}
	return n, nil
}

// putTenant writes a tenant, its id in the index and the count of
// changes in one step, if the record of its id allows: ARGV[3] "add"
// when there is none, "replace" when it is there and was added at ARGV[4]
// (its since, as the JSON spells it).
var putTenant = goredis.NewScript(`
local old = redis.call('HGET', KEYS[1], ARGV[1])
if ARGV[3] == 'add' and old then return 'conflict' end
if ARGV[3] == 'replace' then
	if not old then return 'not_found' end
	if (cjson.decode(old)['since'] or '') ~= ARGV[4] then return 'conflict' end
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[2], 0, ARGV[1])
redis.call('INCR', KEYS[3])
return 'ok'`)

// AddTenant implements store.Directory.
func (s *Store) AddTenant(ctx context.Context, t store.Tenant) error {
	return s.putTenant(ctx, t, "add")
}

// ReplaceTenant implements store.Directory.
func (s *Store) ReplaceTenant(ctx context.Context, t store.Tenant) error {
	return s.putTenant(ctx, t, "replace")
}

func (s *Store) putTenant(ctx context.Context, t store.Tenant, mode string) error {
	v, err := json.Marshal(t)
	if err != nil {
		return fmt.Errorf("encoding tenant: %w", err)
	}
	var since []byte
	if !t.Since.IsZero() {
		// As the tenant's JSON spells it (omitted when zero).
		if since, err = json.Marshal(t.Since); err != nil {
			return fmt.Errorf("encoding tenant: %w", err)
		}
	}
	keys := []string{s.dirKey(keyTenants), s.dirKey(keyTenantIDs), s.dirKey(keyTenantsChanged)}
	res, err := putTenant.Run(ctx, s.rdb, keys, t.ID, v, mode, strings.Trim(string(since), `"`)).Text()
	switch {
	case err != nil:
		return fmt.Errorf("storing tenant: %w", err)
	case res == "conflict":
		return store.ErrConflict
	case res == "not_found":
		return store.ErrNotFound
	}
	return nil
}

// deleteTenant removes a tenant and its id, and counts the change when
// there was one.
var deleteTenant = goredis.NewScript(`
if redis.call('HDEL', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('INCR', KEYS[3])
return 1`)

// DeleteTenant implements store.Directory.
func (s *Store) DeleteTenant(ctx context.Context, id string) error {
	keys := []string{s.dirKey(keyTenants), s.dirKey(keyTenantIDs), s.dirKey(keyTenantsChanged)}
	n, err := deleteTenant.Run(ctx, s.rdb, keys, id).Int()
	switch {
	case err != nil:
		return fmt.Errorf("removing tenant: %w", err)
	case n == 0:
		return store.ErrNotFound
	}
	return nil
}

// Tenants implements store.Directory: a range of the ids after after, and
// one HMGET.
func (s *Store) Tenants(ctx context.Context, after string, limit int) ([]store.Tenant, error) {
	from := "-"
	if after != "" {
		from = "(" + after
	}
	ids, err := s.rdb.ZRangeByLex(ctx, s.dirKey(keyTenantIDs), &goredis.ZRangeBy{Min: from, Max: "+", Count: int64(store.TenantPage(limit))}).Result()
	if err != nil || len(ids) == 0 {
		return nil, err
	}
	vs, err := s.rdb.HMGet(ctx, s.dirKey(keyTenants), ids...).Result()
	if err != nil {
		return nil, fmt.Errorf("reading tenants: %w", err)
	}
	out := make([]store.Tenant, 0, len(vs))
	for i, v := range vs {
		raw, ok := v.(string)
		if !ok {
			continue // removed between the two reads
		}
		var t store.Tenant
		if err := json.Unmarshal([]byte(raw), &t); err != nil {
			return nil, fmt.Errorf("decoding tenant %s: %w", ids[i], err)
		}
		out = append(out, t)
	}
	return out, nil
}

// TenantsChanged implements store.Directory.
func (s *Store) TenantsChanged(ctx context.Context) (int64, error) {
	n, err := s.rdb.Get(ctx, s.dirKey(keyTenantsChanged)).Int64()
	if errors.Is(err, goredis.Nil) {
		return 0, nil
	}
	return n, err
}

// ContactsByEmail implements store.Directory, from the e-mail index: one
// range read and one HMGET.
func (s *Store) ContactsByEmail(ctx context.Context, email string) ([]store.Contact, error) {
	key := store.AddressKey(email)
	if key == "" {
		return nil, nil
	}
	if err := s.indexEmails(ctx); err != nil {
		return nil, err
	}
	members, err := s.rdb.ZRangeByLex(ctx, s.dirKey(keyByEmail), &goredis.ZRangeBy{Min: "[" + key + "\x00", Max: "(" + key + "\x01"}).Result()
	if err != nil {
		return nil, fmt.Errorf("finding contacts by e-mail: %w", err)
	}
	if len(members) == 0 {
		return nil, nil
	}
	ids := make([]string, len(members))
	for i, m := range members {
		ids[i] = m[len(key)+1:]
	}
	vs, err := s.rdb.HMGet(ctx, s.dirKey(keyContacts), ids...).Result()
	if err != nil {
		return nil, fmt.Errorf("reading contacts: %w", err)
	}
	out := make([]store.Contact, 0, len(vs))
	for _, v := range vs {
		str, ok := v.(string)
		if !ok {
			continue
		}
		var c store.Contact
		if err := json.Unmarshal([]byte(str), &c); err != nil {
			return nil, fmt.Errorf("decoding contact: %w", err)
		}
		out = append(out, c)
	}
	return out, nil
}

// indexEmails makes sure the e-mail index holds the contacts stored before
// it existed: once per store (a Redis that says it is complete is
// believed), contacts read in one HGETALL.
func (s *Store) indexEmails(ctx context.Context) error {
	if s.indexed.Load() {
		return nil
	}
	n, err := s.rdb.Exists(ctx, s.dirKey(keyIndexed)).Result()
	if err != nil {
		return fmt.Errorf("reading the e-mail index: %w", err)
	}
	if n == 0 {
		cs, err := s.ScanContacts(ctx)
		if err != nil {
			return err
		}
		args := make([]any, 0, 2*len(cs))
		for _, c := range cs {
			if key := store.AddressKey(c.Email); key != "" {
				args = append(args, c.ID, key)
			}
		}
		keys := []string{s.dirKey(keyByEmail), s.dirKey(keyEmailOf), s.dirKey(keyIndexed)}
		if err := indexEmails.Run(ctx, s.rdb, keys, args...).Err(); err != nil {
			return fmt.Errorf("building the e-mail index: %w", err)
		}
	}
	s.indexed.Store(true)
	return nil
}

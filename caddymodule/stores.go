package caddymodule

import (
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	goredis "github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/portalgate/portalgate/caddymodule/internal/store"
	"github.com/portalgate/portalgate/caddymodule/internal/store/bolt"
	"github.com/portalgate/portalgate/caddymodule/internal/store/memory"
	redisstore "github.com/portalgate/portalgate/caddymodule/internal/store/redis"
)

func init() {
	caddy.RegisterModule(MemoryStore{})
	caddy.RegisterModule(BoltStore{})
	caddy.RegisterModule(RedisStore{})
}

// openStores shares open stores across config reloads: a reload provisions
// the new config before the old one is cleaned up, and both must see the
// same sessions (and bbolt allows one opener of a file per process).
var openStores = caddy.NewUsagePool()

// pooledStore lets the usage pool close a store when its last user is gone.
type pooledStore struct{ store.Store }

func (p pooledStore) Destruct() error { return p.Close() }

// pooled is the piece every store module shares: the backend it opened or
// joined under its key in the pool, handed over by Store and released by
// Cleanup.
type pooled struct {
	key     string
	backend store.Store
	// requests, when set, are the config's requests in flight: Cleanup
	// lets go of the backend only after them.
	requests *inFlight
}

// releaseAfter implements drainer.
func (p *pooled) releaseAfter(f *inFlight) { p.requests = f }

// open joins the store under key, opening it with open the first time.
func (p *pooled) open(key string, open func() (store.Store, error)) error {
	v, _, err := openStores.LoadOrNew(key, func() (caddy.Destructor, error) {
		s, err := open()
		if err != nil {
			return nil, err
		}
		return pooledStore{s}, nil
	})
	if err != nil {
		return err
	}
	p.key, p.backend = key, v.(pooledStore).Store
	return nil
}

// Store returns the backend the module opened at provision.
func (p *pooled) Store() store.Store { return p.backend }

// Cleanup releases this config's hold on the store; the last one closes it.
func (p *pooled) Cleanup() error {
	if p.key == "" {
		return nil
	}
	if p.requests == nil {
		_, err := openStores.Delete(p.key)
		return err
	}
	key := p.key
	p.requests.after(func() {
		if _, err := openStores.Delete(key); err != nil {
			caddy.Log().Named("portalgate").Error("closing a replaced session store", zap.Error(err))
		}
	})
	return nil
}

// MemoryStore keeps sessions in process memory: they survive a config reload
// but not a restart. For tests and trials.
type MemoryStore struct {
	pooled
}

// CaddyModule returns the Caddy module information.
func (MemoryStore) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "portalgate.stores.memory",
		New: func() caddy.Module { return new(MemoryStore) },
	}
}

// Provision opens (or joins) the process's memory store.
func (m *MemoryStore) Provision(caddy.Context) error {
	return m.open("memory", func() (store.Store, error) { return memory.New(time.Now), nil })
}

// UnmarshalCaddyfile sets up the store from Caddyfile tokens.
//
// Syntax:
//
//	store memory
func (m *MemoryStore) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	return noOptions(d, "store memory")
}

// noOptions parses the segment of a module that takes no arguments and no
// block: what, as the Caddyfile names it.
func noOptions(d *caddyfile.Dispenser, what string) error {
	d.Next() // the module's name
	if d.NextArg() {
		return d.ArgErr()
	}
	for d.NextBlock(0) {
		return d.Errf("%s takes no options, not %q", what, d.Val())
	}
	return nil
}

// BoltStore keeps sessions and link uses in a bbolt file: durable across
// restarts, for one instance.
type BoltStore struct {
	// Path of the database file. Default: portalgate/portalgate.db in
	// Caddy's data directory.
	Path string `json:"path,omitempty"`

	pooled
}

// CaddyModule returns the Caddy module information.
func (BoltStore) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "portalgate.stores.bolt",
		New: func() caddy.Module { return new(BoltStore) },
	}
}

// Provision opens the file, or joins the config that has it open.
func (b *BoltStore) Provision(caddy.Context) error {
	path := b.Path
	if path == "" {
		path = filepath.Join(caddy.AppDataDir(), "portalgate", "portalgate.db")
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return fmt.Errorf("resolving session store path %s: %w", path, err)
	}
	return b.open("bolt:"+abs, func() (store.Store, error) { return bolt.Open(abs, time.Now) })
}

// UnmarshalCaddyfile sets up the store from Caddyfile tokens.
//
// Syntax:
//
//	store bolt [<path>] {
//		path <path>
//	}
func (b *BoltStore) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // store name
	if d.NextArg() {
		b.Path = d.Val()
	}
	if d.NextArg() {
		return d.ArgErr()
	}
	for d.NextBlock(0) {
		if d.Val() != "path" {
			return d.Errf("unknown store bolt option %q", d.Val())
		}
		if !d.NextArg() {
			return d.ArgErr()
		}
		b.Path = d.Val()
		if d.NextArg() {
			return d.ArgErr()
		}
	}
	return nil
}

// RedisStore keeps sessions, link uses and revocations in Redis, so several
// Caddy instances behind a load balancer share them: a link minted anywhere
// is redeemable on any instance exactly once, and a logout or revocation
// holds on all of them at once.
type RedisStore struct {
	// URL of a standalone server: redis://[user:password@]host:port/db, or
	// rediss:// for TLS. Default: redis://127.0.0.1:6379/0 when Addrs is
	// empty.
	URL string `json:"url,omitempty"`
	// Addrs are the Sentinel addresses (with MasterName) or the Cluster
	// seed addresses (with Cluster). Default: none.
	Addrs []string `json:"addrs,omitempty"`
	// MasterName selects Sentinel: the name of the monitored master.
	// Default: none.
	MasterName string `json:"master_name,omitempty"`
	// Cluster selects Redis Cluster over Addrs. Default: false.
	Cluster bool `json:"cluster,omitempty"`
	// Username for Addrs-based setups (the URL carries its own).
	// Default: none.
	Username string `json:"username,omitempty"`
	// Password for Addrs-based setups; placeholders such as
	// {env.REDIS_PASSWORD} work. Default: none.
	Password string `json:"password,omitempty"`
	// DB is the database for Sentinel setups. Default: 0.
	DB int `json:"db,omitempty"`
	// TLS turns on TLS for Addrs-based setups. Default: false.
	TLS bool `json:"tls,omitempty"`
	// Prefix starts every key. Default: "portalgate:".
	Prefix string `json:"prefix,omitempty"`
	// PoolSize is the connections per node. Default: go-redis's, 10 per CPU.
	PoolSize int `json:"pool_size,omitempty"`
	// DialTimeout bounds a connection attempt, so a Redis that is down
	// turns into a fast 503. Default: 2s.
	DialTimeout caddy.Duration `json:"dial_timeout,omitempty"`
	// ReadTimeout bounds waiting for an answer. Default: 1s.
	ReadTimeout caddy.Duration `json:"read_timeout,omitempty"`
	// WriteTimeout bounds sending a command. Default: 1s.
	WriteTimeout caddy.Duration `json:"write_timeout,omitempty"`
	// PubSubCheck bounds how long a broken invalidation channel goes
	// unnoticed; meanwhile and until it is back, the L1 cache is bypassed.
	// Default: 2s.
	PubSubCheck caddy.Duration `json:"pubsub_check,omitempty"`
	// MinReplicas is how many replicas must hold a redemption or a
	// revocation (Redis WAIT) before it counts: a failover promotes a
	// replica, and what only the old master held is lost. Unacknowledged
	// within ReplicaTimeout, it is answered 503. Default: 1 with Sentinel
	// (MasterName), 0 otherwise.
	MinReplicas *int `json:"min_replicas,omitempty"`
	// ReplicaTimeout bounds the wait for MinReplicas; shorter than
	// ReadTimeout. Default: half of ReadTimeout (500ms).
	ReplicaTimeout caddy.Duration `json:"replica_timeout,omitempty"`

	pooled
}

// CaddyModule returns the Caddy module information.
func (RedisStore) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "portalgate.stores.redis",
		New: func() caddy.Module { return new(RedisStore) },
	}
}

// Provision connects (lazily: go-redis dials on first use and reconnects by
// itself), or joins the config that already has this store.
func (r *RedisStore) Provision(caddy.Context) error {
	repl := caddy.NewReplacer()
	r.URL = repl.ReplaceKnown(r.URL, "")
	r.Password = repl.ReplaceKnown(r.Password, "")
	if r.URL == "" && len(r.Addrs) == 0 {
		r.URL = "redis://127.0.0.1:6379/0"
	}
	if r.Prefix == "" {
		r.Prefix = "portalgate:"
	}
	setDefault(&r.DialTimeout, 2*time.Second)
	setDefault(&r.ReadTimeout, time.Second)
	setDefault(&r.WriteTimeout, time.Second)
	setDefault(&r.PubSubCheck, 2*time.Second)
	setDefault(&r.ReplicaTimeout, time.Duration(r.ReadTimeout)/2)
	if r.MinReplicas == nil {
		n := 0
		if r.MasterName != "" {
			n = 1
		}
		r.MinReplicas = &n
	}
	// Stores with the same settings are one store; the key is a hash of the
	// settings, so the password is not kept in it.
	cfg, err := json.Marshal(r) //nolint:gosec // hashed at once, never stored or logged
	if err != nil {
		return err
	}
	sum := sha256.Sum256(cfg)
	return r.open("redis:"+hex.EncodeToString(sum[:]), func() (store.Store, error) {
		rdb, err := r.client()
		if err != nil {
			return nil, err
		}
		return redisstore.New(rdb, r.Prefix, time.Duration(r.PubSubCheck), time.Now).
			Replicated(*r.MinReplicas, time.Duration(r.ReplicaTimeout)), nil
	})
}

// client builds the go-redis client for the configured topology.
func (r *RedisStore) client() (goredis.UniversalClient, error) {
	dial, read, write := time.Duration(r.DialTimeout), time.Duration(r.ReadTimeout), time.Duration(r.WriteTimeout)
	var tlsConfig *tls.Config
	if r.TLS {
		tlsConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	switch {
	case r.URL != "":
		opts, err := goredis.ParseURL(r.URL)
		if err != nil {
			// ParseURL's error may quote the URL, password and all.
			return nil, errors.New("portalgate: store redis: the URL is not a valid redis:// or rediss:// URL")
		}
		opts.PoolSize, opts.DialTimeout, opts.ReadTimeout, opts.WriteTimeout = r.PoolSize, dial, read, write
		opts.MaxRetries = noRetries
		return goredis.NewClient(opts), nil
	case r.Cluster:
		return goredis.NewClusterClient(&goredis.ClusterOptions{
			Addrs: r.Addrs, Username: r.Username, Password: r.Password, TLSConfig: tlsConfig,
			PoolSize: r.PoolSize, DialTimeout: dial, ReadTimeout: read, WriteTimeout: write, MaxRetries: noRetries,
		}), nil
	case r.MasterName != "":
		return goredis.NewFailoverClient(&goredis.FailoverOptions{
			MasterName: r.MasterName, SentinelAddrs: r.Addrs, Username: r.Username, Password: r.Password,
			DB: r.DB, TLSConfig: tlsConfig,
			PoolSize: r.PoolSize, DialTimeout: dial, ReadTimeout: read, WriteTimeout: write, MaxRetries: noRetries,
		}), nil
	}
	return goredis.NewClient(&goredis.Options{
		Addr: r.Addrs[0], Username: r.Username, Password: r.Password, DB: r.DB, TLSConfig: tlsConfig,
		PoolSize: r.PoolSize, DialTimeout: dial, ReadTimeout: read, WriteTimeout: write, MaxRetries: noRetries,
	}), nil
}

// noRetries turns off go-redis's retries: a command whose reply came late
// may already have run, and running a spend or a revocation twice is wrong.
// A failed operation is an error the caller sees (503) instead.
const noRetries = -1

// Validate rejects topologies that cannot work.
func (r *RedisStore) Validate() error {
	switch {
	case r.URL != "" && len(r.Addrs) > 0:
		return errors.New("portalgate: store redis takes a URL or addrs, not both")
	case r.URL != "" && (r.Username != "" || r.Password != "" || r.TLS || r.DB != 0):
		return errors.New("portalgate: store redis: with a URL, put user, password, database and TLS (rediss://) in the URL")
	case len(r.Addrs) > 1 && !r.Cluster && r.MasterName == "":
		return errors.New("portalgate: store redis: several addrs need cluster or master_name")
	case r.DialTimeout < 0 || r.ReadTimeout < 0 || r.WriteTimeout < 0 || r.PubSubCheck < 0 || r.ReplicaTimeout < 0:
		return errors.New("portalgate: store redis: timeouts must be positive")
	case r.Cluster && r.MinReplicas != nil && *r.MinReplicas > 0:
		return errors.New("portalgate: store redis: min_replicas is for Sentinel; on Redis Cluster a write and its WAIT may reach different nodes")
	case r.MinReplicas != nil && *r.MinReplicas < 0:
		return errors.New("portalgate: store redis: min_replicas must be 0 or more")
	case r.MinReplicas != nil && *r.MinReplicas > 0 && r.ReplicaTimeout >= r.ReadTimeout:
		return fmt.Errorf("portalgate: store redis: replica_timeout (%v) must be shorter than read_timeout (%v)",
			time.Duration(r.ReplicaTimeout), time.Duration(r.ReadTimeout))
	case r.Cluster && r.MasterName != "":
		return errors.New("portalgate: store redis is either cluster or sentinel (master_name), not both")
	case (r.Cluster || r.MasterName != "") && len(r.Addrs) == 0:
		return errors.New("portalgate: store redis: cluster and sentinel need addrs")
	}
	return nil
}

// UnmarshalCaddyfile sets up the store from Caddyfile tokens.
//
// Syntax:
//
//	store redis [<url>] {
//		addrs <host:port>...
//		master_name <name>
//		cluster
//		username <user>
//		password <password>
//		db <n>
//		tls
//		prefix <prefix>
//		pool_size <n>
//		dial_timeout <duration>
//		read_timeout <duration>
//		write_timeout <duration>
//		pubsub_check <duration>
//		min_replicas <n>
//		replica_timeout <duration>
//	}
func (r *RedisStore) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // store name
	if d.NextArg() {
		r.URL = d.Val()
	}
	if d.NextArg() {
		return d.ArgErr()
	}
	for d.NextBlock(0) {
		opt := d.Val()
		args := d.RemainingArgs()
		one := func() (string, error) {
			if len(args) != 1 {
				return "", d.Errf("%s takes one value", opt)
			}
			return args[0], nil
		}
		var err error
		switch opt {
		case "addrs":
			if len(args) == 0 {
				return d.Errf("addrs takes one or more host:port")
			}
			r.Addrs = append(r.Addrs, args...)
		case "cluster", "tls":
			if len(args) != 0 {
				return d.Errf("%s takes no value", opt)
			}
			if opt == "cluster" {
				r.Cluster = true
			} else {
				r.TLS = true
			}
		case "master_name":
			r.MasterName, err = one()
		case "username":
			r.Username, err = one()
		case "password":
			r.Password, err = one()
		case "prefix":
			r.Prefix, err = one()
		case "db", "pool_size", "min_replicas":
			var v string
			if v, err = one(); err == nil {
				n, convErr := strconv.Atoi(v)
				if convErr != nil || n < 0 {
					return d.Errf("%s: %q is not a number", opt, v)
				}
				switch opt {
				case "db":
					r.DB = n
				case "pool_size":
					r.PoolSize = n
				default:
					r.MinReplicas = &n
				}
			}
		case "dial_timeout", "read_timeout", "write_timeout", "pubsub_check", "replica_timeout":
			var v string
			if v, err = one(); err == nil {
				dur, convErr := caddy.ParseDuration(v)
				if convErr != nil || dur <= 0 {
					return d.Errf("%s: %q is not a positive duration", opt, v)
				}
				*map[string]*caddy.Duration{"dial_timeout": &r.DialTimeout, "read_timeout": &r.ReadTimeout,
					"write_timeout": &r.WriteTimeout, "pubsub_check": &r.PubSubCheck, "replica_timeout": &r.ReplicaTimeout}[opt] = caddy.Duration(dur)
			}
		default:
			return d.Errf("unknown store redis option %q", opt)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// Interface guards.
var (
	_ storeConverter        = (*MemoryStore)(nil)
	_ caddy.Provisioner     = (*MemoryStore)(nil)
	_ caddy.CleanerUpper    = (*MemoryStore)(nil)
	_ caddyfile.Unmarshaler = (*MemoryStore)(nil)
	_ storeConverter        = (*BoltStore)(nil)
	_ caddy.Provisioner     = (*BoltStore)(nil)
	_ caddy.CleanerUpper    = (*BoltStore)(nil)
	_ caddyfile.Unmarshaler = (*BoltStore)(nil)
	_ storeConverter        = (*RedisStore)(nil)
	_ caddy.Provisioner     = (*RedisStore)(nil)
	_ caddy.Validator       = (*RedisStore)(nil)
	_ caddy.CleanerUpper    = (*RedisStore)(nil)
	_ caddyfile.Unmarshaler = (*RedisStore)(nil)
)

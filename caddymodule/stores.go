package caddymodule

import (
	"fmt"
	"path/filepath"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/portalgate/portalgate/caddymodule/internal/store"
	"github.com/portalgate/portalgate/caddymodule/internal/store/bolt"
	"github.com/portalgate/portalgate/caddymodule/internal/store/memory"
)

func init() {
	caddy.RegisterModule(MemoryStore{})
	caddy.RegisterModule(BoltStore{})
}

// openStores shares open stores across config reloads: a reload provisions
// the new config before the old one is cleaned up, and both must see the
// same sessions (and bbolt allows one opener of a file per process).
var openStores = caddy.NewUsagePool()

// pooledStore lets the usage pool close a store when its last user is gone.
type pooledStore struct{ store.Store }

func (p pooledStore) Destruct() error { return p.Close() }

// loadPooled returns the store under key, opening it with open the first time.
func loadPooled(key string, open func() (store.Store, error)) (store.Store, error) {
	v, _, err := openStores.LoadOrNew(key, func() (caddy.Destructor, error) {
		s, err := open()
		if err != nil {
			return nil, err
		}
		return pooledStore{s}, nil
	})
	if err != nil {
		return nil, err
	}
	return v.(pooledStore).Store, nil
}

// MemoryStore keeps sessions in process memory: they survive a config reload
// but not a restart. For tests and trials.
type MemoryStore struct {
	store.Store `json:"-"`
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
	s, err := loadPooled("memory", func() (store.Store, error) { return memory.New(time.Now), nil })
	m.Store = s
	return err
}

// Cleanup releases this config's hold on the store.
func (m *MemoryStore) Cleanup() error {
	_, err := openStores.Delete("memory")
	return err
}

// UnmarshalCaddyfile sets up the store from Caddyfile tokens.
//
// Syntax:
//
//	store memory
func (m *MemoryStore) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // store name
	if d.NextArg() {
		return d.ArgErr()
	}
	return nil
}

// BoltStore keeps sessions and link uses in a bbolt file: durable across
// restarts, for one instance.
type BoltStore struct {
	// Path of the database file. Default: portalgate/portalgate.db in
	// Caddy's data directory.
	Path string `json:"path,omitempty"`

	store.Store `json:"-"`
	key         string
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
	b.key = "bolt:" + abs
	b.Store, err = loadPooled(b.key, func() (store.Store, error) { return bolt.Open(abs, time.Now) })
	return err
}

// Cleanup releases this config's hold on the file.
func (b *BoltStore) Cleanup() error {
	if b.key == "" {
		return nil
	}
	_, err := openStores.Delete(b.key)
	return err
}

// UnmarshalCaddyfile sets up the store from Caddyfile tokens.
//
// Syntax:
//
//	store bolt [<path>]
func (b *BoltStore) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // store name
	if d.NextArg() {
		b.Path = d.Val()
	}
	if d.NextArg() {
		return d.ArgErr()
	}
	return nil
}

// Interface guards.
var (
	_ store.Store           = (*BoltStore)(nil)
	_ caddy.Provisioner     = (*BoltStore)(nil)
	_ caddy.CleanerUpper    = (*BoltStore)(nil)
	_ caddyfile.Unmarshaler = (*BoltStore)(nil)
	_ store.Store           = (*MemoryStore)(nil)
	_ caddy.Provisioner     = (*MemoryStore)(nil)
	_ caddy.CleanerUpper    = (*MemoryStore)(nil)
	_ caddyfile.Unmarshaler = (*MemoryStore)(nil)
)

package caddymodule

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/certmagic"
	"github.com/gofrs/flock"
	"go.uber.org/zap"

	"github.com/portalgate/portalgate/caddymodule/internal/assertion"
	"github.com/portalgate/portalgate/caddymodule/internal/link"
)

// Where generated keys live in Caddy's storage (the data directory by
// default), so links and assertions survive restarts and instances sharing
// storage share the keys.
const (
	generatedKeyPath       = "portalgate/signing-key.json"
	generatedAssertionPath = "portalgate/assertion-key.json"
)

// storedKey is a generated key as kept in storage: an id and the secret (an
// HMAC secret, or an Ed25519 seed), base64url.
type storedKey struct {
	ID     string `json:"id"`
	Secret string `json:"secret"`
}

// loadKeyRing builds the link key ring from the configured keys, or from the
// generated key when none is configured.
func (a *App) loadKeyRing() (*link.Ring, error) {
	if len(a.SigningKeys) == 0 {
		id, secret, err := a.generatedKey(generatedKeyPath, "gen-", 32)
		if err != nil {
			return nil, fmt.Errorf("portalgate: loading the generated signing key: %w", err)
		}
		return link.NewRing(link.Key{ID: id, Secret: secret})
	}
	repl := caddy.NewReplacer()
	keys := make([]link.Key, len(a.SigningKeys))
	for i, k := range a.SigningKeys {
		keys[i] = link.Key{ID: k.ID, Secret: []byte(repl.ReplaceKnown(k.Secret, ""))}
	}
	ring, err := link.NewRing(keys...)
	if err != nil {
		return nil, fmt.Errorf("portalgate: %w", err)
	}
	return ring, nil
}

// loadAssertionKeys returns the Ed25519 keys for identity assertions: the
// configured ones (seeds, base64url), or one generated once.
func (a *App) loadAssertionKeys() ([]assertion.Key, error) {
	if len(a.AssertionKeys) == 0 {
		id, seed, err := a.generatedKey(generatedAssertionPath, "ed-", ed25519.SeedSize)
		if err != nil {
			return nil, fmt.Errorf("portalgate: loading the generated assertion key: %w", err)
		}
		return []assertion.Key{{ID: id, Private: ed25519.NewKeyFromSeed(seed)}}, nil
	}
	repl := caddy.NewReplacer()
	keys := make([]assertion.Key, len(a.AssertionKeys))
	for i, k := range a.AssertionKeys {
		seed, err := base64.RawURLEncoding.DecodeString(repl.ReplaceKnown(k.Secret, ""))
		if err != nil || len(seed) != ed25519.SeedSize {
			return nil, fmt.Errorf("portalgate: assertion_key %q must be a 32-byte Ed25519 seed in base64url", k.ID)
		}
		keys[i] = assertion.Key{ID: k.ID, Private: ed25519.NewKeyFromSeed(seed)}
	}
	return keys, nil
}

// generatedKey loads the key at path in Caddy's storage, creating it the
// first time (see generateKey).
func (a *App) generatedKey(path, prefix string, size int) (string, []byte, error) {
	id, secret, created, err := generateKey(a.ctx, a.ctx.Storage(), path, prefix, size)
	if created {
		a.logger.Info("generated a key; configure your own to manage it", zap.String("path", path), zap.String("kid", id))
	}
	return id, secret, err
}

// generateKey loads the key at path in st, creating it (size random bytes,
// id prefix+random) under the key's lock the first time, so concurrent
// instances agree on one key. created says this call made it.
func generateKey(ctx context.Context, st certmagic.Storage, path, prefix string, size int) (id string, secret []byte, created bool, err error) {
	read := func() (string, []byte, error) {
		raw, err := st.Load(ctx, path)
		if err != nil {
			return "", nil, err
		}
		var sk storedKey
		if err := json.Unmarshal(raw, &sk); err != nil {
			return "", nil, fmt.Errorf("decoding %s: %w", path, err)
		}
		secret, err := base64.RawURLEncoding.DecodeString(sk.Secret)
		if err != nil || len(secret) != size {
			return "", nil, fmt.Errorf("decoding %s: not a %d-byte key", path, size)
		}
		return sk.ID, secret, nil
	}
	if id, secret, err := read(); err == nil || !errors.Is(err, fs.ErrNotExist) {
		return id, secret, false, err
	}
	unlock, err := lockKey(ctx, st, path)
	if err != nil {
		return "", nil, false, err
	}
	defer unlock()
	if id, secret, err := read(); err == nil || !errors.Is(err, fs.ErrNotExist) {
		return id, secret, false, err
	}
	secret = make([]byte, size)
	if _, err := rand.Read(secret); err != nil {
		return "", nil, false, err
	}
	rid, err := link.NewID()
	if err != nil {
		return "", nil, false, err
	}
	id = prefix + rid[:8]
	raw, err := json.Marshal(storedKey{ID: id, Secret: base64.RawURLEncoding.EncodeToString(secret)})
	if err != nil {
		return "", nil, false, err
	}
	if err := st.Store(ctx, path, raw); err != nil {
		return "", nil, false, err
	}
	return id, secret, true, nil
}

// lockKey takes the lock under which the key at path is generated. In
// Caddy's file storage (the default) it is an OS file lock beside the key,
// which the kernel releases when its holder dies: a crash during a first
// start leaves nothing the next start must wait out, where the storage's own
// lock files count as held until 10 s pass without an update. Other storages
// (shared by instances on several machines) keep their own lock.
func lockKey(ctx context.Context, st certmagic.Storage, path string) (unlock func(), err error) {
	fst, ok := st.(*certmagic.FileStorage)
	if !ok {
		if err := st.Lock(ctx, path); err != nil {
			return nil, err
		}
		return func() { _ = st.Unlock(ctx, path) }, nil
	}
	file := filepath.Join(fst.Path, filepath.FromSlash(path)+".lock")
	if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
		return nil, err
	}
	l := flock.New(file)
	if _, err := l.TryLockContext(ctx, 10*time.Millisecond); err != nil {
		return nil, fmt.Errorf("locking %s: %w", file, err)
	}
	return func() { _ = l.Unlock() }, nil
}

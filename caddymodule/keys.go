package caddymodule

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/certmagic"
	"go.uber.org/zap"

	"github.com/portalgate/portalgate/caddymodule/internal/link"
)

// generatedKeyPath is where the generated signing key lives in Caddy's
// storage (the data directory by default), so links survive restarts and
// instances sharing storage share the key.
const generatedKeyPath = "portalgate/signing-key.json"

// loadKeyRing builds the key ring from the configured keys, or from the
// generated key when none is configured.
func (a *App) loadKeyRing() (*link.Ring, error) {
	if len(a.SigningKeys) == 0 {
		k, err := a.generatedKey()
		if err != nil {
			return nil, fmt.Errorf("portalgate: loading the generated signing key: %w", err)
		}
		return link.NewRing(k)
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

type storedKey struct {
	ID     string `json:"id"`
	Secret string `json:"secret"` // base64url
}

// generatedKey loads the generated key, creating it under Caddy's storage
// lock the first time, so concurrent instances agree on one key.
func (a *App) generatedKey() (link.Key, error) {
	st := a.ctx.Storage()
	if k, err := readKey(a.ctx, st); err == nil || !errors.Is(err, fs.ErrNotExist) {
		return k, err
	}
	if err := st.Lock(a.ctx, generatedKeyPath); err != nil {
		return link.Key{}, err
	}
	defer func() { _ = st.Unlock(a.ctx, generatedKeyPath) }()
	if k, err := readKey(a.ctx, st); err == nil || !errors.Is(err, fs.ErrNotExist) {
		return k, err
	}
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		return link.Key{}, err
	}
	id, err := link.NewID()
	if err != nil {
		return link.Key{}, err
	}
	k := link.Key{ID: "gen-" + id[:8], Secret: secret}
	raw, err := json.Marshal(storedKey{ID: k.ID, Secret: base64.RawURLEncoding.EncodeToString(secret)})
	if err != nil {
		return link.Key{}, err
	}
	if err := st.Store(a.ctx, generatedKeyPath, raw); err != nil {
		return link.Key{}, err
	}
	a.logger.Info("generated a signing key for links; set signing_key to manage keys yourself",
		zap.String("kid", k.ID))
	return k, nil
}

func readKey(ctx context.Context, st certmagic.Storage) (link.Key, error) {
	raw, err := st.Load(ctx, generatedKeyPath)
	if err != nil {
		return link.Key{}, err
	}
	var sk storedKey
	if err := json.Unmarshal(raw, &sk); err != nil {
		return link.Key{}, fmt.Errorf("decoding %s: %w", generatedKeyPath, err)
	}
	secret, err := base64.RawURLEncoding.DecodeString(sk.Secret)
	if err != nil {
		return link.Key{}, fmt.Errorf("decoding %s: %w", generatedKeyPath, err)
	}
	return link.Key{ID: sk.ID, Secret: secret}, nil
}

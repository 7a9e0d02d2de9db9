package caddymodule

import (
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

// FuzzUnmarshalCaddyfile feeds the global option and the directive arbitrary
// Caddyfile text: errors are fine, panics are not.
func FuzzUnmarshalCaddyfile(f *testing.F) {
	for _, seed := range []string{
		"portalgate {\n portal http://localhost:8080\n app courses http://localhost:8081\n}",
		"portalgate {\n signing_key k1 0123456789abcdef0123456789abcdef\n store bolt /tmp/x.db\n link_ttl 15m\n}",
		"portalgate {\n store memory\n rate_limit 10 1m\n cache_max_bytes 64MiB\n api_key_hash abc\n}",
		"portalgate {\n rate_limit off\n session_ttl 0s\n}",
		"portalgate {\n staff ann agency_user\n staff sam subaccount_user location l1\n menu_link \"Help\" https://h.example.com new_tab contact\n}",
		"portalgate {\n staff\n menu_link\n menu_link x app:courses iframe agency_user\n}",
		"portalgate courses {\n redeem confirm\n}",
		"portalgate {\n store\n}", "portalgate {\n app\n}", "portalgate", "portalgate {", "portalgate { } extra",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(_ *testing.T, input string) {
		tokens, err := caddyfile.Tokenize([]byte(input), "Caddyfile")
		if err != nil {
			return
		}
		_ = new(App).UnmarshalCaddyfile(caddyfile.NewDispenser(tokens))
		_ = new(Handler).UnmarshalCaddyfile(caddyfile.NewDispenser(tokens))
	})
}

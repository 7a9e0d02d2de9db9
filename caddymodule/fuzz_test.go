package caddymodule

import (
	"errors"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/portalgate/portalgate/caddymodule/internal/identity"
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

// FuzzDecodeMintRequest feeds the API's JSON decoder arbitrary bodies: every
// failure is an input error (a 400), never a panic.
func FuzzDecodeMintRequest(f *testing.F) {
	for _, seed := range []string{
		`{"app":"courses","user":{"id":"c_123","email":"ada@example.com","name":"Ada","type":"contact","location":"loc_1"},"path":"/","ttl":"10m","uses":1}`,
		`{"app":"portal","user":{"id":"x"},"apps":["courses"]}`,
		`{}`, `[]`, `null`, `{"app":1}`, `{"usr":{}}`, `{"app":"a"}{"app":"b"}`, `{"uses":1e99}`, "\x00", `{"user":{"id":"\u0000"}}`,
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, body string) {
		_, err := decodeMintRequest(strings.NewReader(body))
		if err != nil && !errors.Is(err, errInput) {
			t.Fatalf("decode error is not an input error: %v", err)
		}
	})
}

// FuzzDecodeContacts feeds the contacts sync arbitrary bodies: every failure
// is an input error, and every contact it accepts is a valid identity.
func FuzzDecodeContacts(f *testing.F) {
	for _, seed := range []string{
		`{"id":"c_1","email":"ada@example.com","name":"Ada","location":"loc_1"}`,
		`[{"id":"c_1"},{"id":"c_2","name":"Two"}]`,
		`[]`, `{}`, `null`, `[null]`, `"x"`, `{"id":"a"}{"id":"b"}`, `[{"id":"\n"}]`, `{"id":1}`, " [ ] ",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, body string) {
		cs, err := decodeContacts(strings.NewReader(body))
		if err != nil {
			if !errors.Is(err, errInput) {
				t.Fatalf("decode error is not an input error: %v", err)
			}
			return
		}
		if len(cs) == 0 || len(cs) > maxContactsPerCall {
			t.Fatalf("accepted %d contacts", len(cs))
		}
		for _, c := range cs {
			if err := (identity.User{ID: c.ID, Email: c.Email, Name: c.Name, Location: c.Location}).Validate(); err != nil {
				t.Fatalf("accepted an invalid contact %+v: %v", c, err)
			}
		}
	})
}

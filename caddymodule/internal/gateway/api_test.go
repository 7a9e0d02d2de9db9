package gateway

import (
	"net/http"
	"strings"
	"testing"

	"github.com/portalgate/portalgate/caddymodule/internal/identity"
)

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
		_, err := DecodeMintRequest(strings.NewReader(body))
		if p, ok := asProblem(err); err != nil && (!ok || p.Status != http.StatusBadRequest) {
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
		cs, err := DecodeContacts(strings.NewReader(body))
		if err != nil {
			if p, ok := asProblem(err); !ok || p.Status != http.StatusBadRequest {
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

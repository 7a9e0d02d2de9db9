package store

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/portalgate/portalgate/caddymodule/internal/identity"
)

// The pieces a store joins into a session's JSON make the session that
// Grant.Starts makes, field for field: a field added to Session or Grant
// without its piece fails here.
func TestSessionJSON_JoinedPiecesAreTheSessionGrantStarts(t *testing.T) {
	now := time.Date(2026, 12, 1, 10, 0, 0, 123456789, time.UTC)
	for name, g := range map[string]Grant{
		"a link":   {ID: "l1", App: "courses", User: identity.User{ID: "c_1", Email: "ada@example.com", Name: "Ada \"<&>\"", Type: identity.Contact, Location: "loc_1"}, Apps: []string{"courses"}},
		"a launch": {ID: "l2", App: "courses", User: identity.User{ID: "c_1"}, Origin: "l0/origin"},
	} {
		s := Session{ID: "s1", Tenant: "acme", App: "courses", Origin: "l1/own", CreatedAt: now, ExpiresAt: now.Add(time.Hour), IdleAt: now.Add(time.Minute)}
		own, withoutOrigin, err := s.OwnJSON()
		if err != nil {
			t.Fatal(err)
		}
		if g.Origin != "" {
			own = own[:withoutOrigin]
		}
		starts, err := g.StartsJSON()
		if err != nil {
			t.Fatal(err)
		}
		var joined Session
		if err := json.Unmarshal(append(append(own, starts...), '}'), &joined); err != nil {
			t.Fatalf("%s: %v: %s%s}", name, err, own, starts)
		}
		want := s
		g.Starts(&want)
		if !reflect.DeepEqual(joined, want) {
			t.Fatalf("%s: joined %+v, want %+v", name, joined, want)
		}
		var fields map[string]any
		b, _ := json.Marshal(want)
		_ = json.Unmarshal(b, &fields)
		var got map[string]any
		_ = json.Unmarshal(append(append(own, starts...), '}'), &got)
		if len(got) != len(fields) {
			t.Fatalf("%s: joined members %v, Session's %v", name, got, fields)
		}
	}
}

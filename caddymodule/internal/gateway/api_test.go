package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/portalgate/portalgate/caddymodule/internal/identity"
	"github.com/portalgate/portalgate/caddymodule/internal/store"
	"github.com/portalgate/portalgate/caddymodule/internal/testkit/web"
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

func TestContactsAPI_UpsertsOneOrManyAndRefusesBadInput(t *testing.T) {
	t.Parallel()
	g := newTestGateway(t, withStaff())
	g.apiCall(http.MethodPost, "contacts", `{"id":"c_1","name":"One","email":"one@example.com"}`, http.StatusOK)
	g.apiCall(http.MethodPost, "contacts", `[{"id":"c_1","name":"One Renamed"},{"id":"c_2","name":"Two"}]`, http.StatusOK)
	page := g.staff("agency").get("/dashboard/generate").Body
	if !strings.Contains(page, "One Renamed") || !strings.Contains(page, "Two") || strings.Contains(page, ">One &lt;") {
		t.Fatalf("contacts after sync:\n%s", page)
	}
	for _, bad := range []string{``, `[]`, `{"id":""}`, `{"id":"c","phone":"1"}`, `[{"id":"c\n1"}]`, `{"id":"a"}{"id":"b"}`, `"c_1"`} {
		body := g.apiCall(http.MethodPost, "contacts", bad, http.StatusBadRequest)
		var e map[string]string
		if err := json.Unmarshal([]byte(body), &e); err != nil || e["code"] != "bad_request" {
			t.Errorf("%q: %s", bad, body)
		}
	}
	many := "[" + strings.Repeat(`{"id":"x"},`, maxContactsPerCall) + `{"id":"y"}]`
	g.apiCall(http.MethodPost, "contacts", many, http.StatusBadRequest)
	g.apiCall(http.MethodGet, "contacts", "", http.StatusMethodNotAllowed)
}

func TestLinkAPI_MintNeverRewritesAKnownContact(t *testing.T) {
	t.Parallel()
	g := newTestGateway(t, withStaff())
	g.apiCall(http.MethodPost, "contacts", `{"id":"c_a","name":"Alice A","email":"alice@example.com","location":"loc_a"}`, http.StatusOK)
	g.apiCall(http.MethodPost, "links", `{"app":"courses","user":{"id":"c_a"}}`, http.StatusCreated)
	g.apiCall(http.MethodPost, "links", `{"app":"courses","user":{"id":"c_new","name":"New N","location":"loc_a"}}`, http.StatusCreated)
	page := g.staff("sub").get("/dashboard/generate").Body
	for _, want := range []string{"Alice A &lt;alice@example.com&gt; · loc_a", "New N · loc_a"} {
		if !strings.Contains(page, want) {
			t.Errorf("the directory lacks %q:\n%s", want, page)
		}
	}
}

func TestAPI_MintLinks(t *testing.T) {
	t.Parallel()
	g := newTestGateway(t)
	url := "http://" + g.portal + apiLinksPath
	post := func(body string, headers ...string) resp {
		return g.send(g.client(), http.MethodPost, url, strings.NewReader(body), headers...)
	}
	auth := "Authorization: Bearer " + testAPIKey
	good := `{"app":"courses","user":{"id":"c_123","email":"ada@example.com","name":"Ada Lovelace","type":"contact","location":"loc_1"},"path":"/","ttl":"10m","uses":1}`

	r := post(good, auth)
	if r.StatusCode != http.StatusCreated {
		t.Fatalf("mint: %d %s", r.StatusCode, r.Body)
	}
	var out MintResponse
	if err := json.Unmarshal([]byte(r.Body), &out); err != nil {
		t.Fatal(err)
	}
	if life := out.ExpiresAt.Sub(g.clock.Now()); !strings.HasPrefix(out.URL, "http://"+g.courses+magicPath+"?token=") || len(out.ID) != 22 ||
		life > 10*time.Minute || life < 9*time.Minute {
		t.Fatalf("answer %+v", out)
	}
	if h := web.Echoed(t, func() resp {
		c := g.client()
		g.do(c, http.MethodGet, out.URL, browser)
		return g.do(c, http.MethodGet, "http://"+g.courses+"/")
	}()); h.Get("X-Portal-Location-Id") != "loc_1" {
		t.Fatalf("API link signs in as %v", h)
	}

	for name, tc := range map[string]struct {
		body, header string
		status       int
		want         string
	}{
		"no key":          {good, "", http.StatusUnauthorized, "invalid_api_key"},
		"wrong key":       {good, "Authorization: Bearer nope", http.StatusUnauthorized, "invalid_api_key"},
		"basic auth":      {good, "Authorization: Basic dGVzdC1hcGkta2V5", http.StatusUnauthorized, "invalid_api_key"},
		"bad JSON":        {`{"app":`, auth, http.StatusBadRequest, "cut short"},
		"not an object":   {`[1,2]`, auth, http.StatusBadRequest, "bad_request"},
		"two objects":     {good + good, auth, http.StatusBadRequest, "exactly one"},
		"unknown field":   {`{"app":"courses","usr":{"id":"x"}}`, auth, http.StatusBadRequest, `unknown field \"usr\"`},
		"unknown app":     {`{"app":"nope","user":{"id":"x"}}`, auth, http.StatusBadRequest, `unknown app \"nope\"`},
		"missing user id": {`{"app":"courses","user":{"email":"x@example.com"}}`, auth, http.StatusBadRequest, "user.id is required"},
		"bad ttl":         {`{"app":"courses","user":{"id":"x"},"ttl":"soon"}`, auth, http.StatusBadRequest, "ttl"},
		"ttl above max":   {`{"app":"courses","user":{"id":"x"},"ttl":"48h"}`, auth, http.StatusBadRequest, "ttl"},
		"bad type":        {`{"app":"courses","user":{"id":"x","type":"root"}}`, auth, http.StatusBadRequest, "user type"},
		"offsite path":    {`{"app":"courses","user":{"id":"x"},"path":"//evil.example.com"}`, auth, http.StatusBadRequest, "path"},
		"wrong type":      {`{"app":"courses","user":{"id":"x"},"uses":"one"}`, auth, http.StatusBadRequest, `field \"uses\"`},
	} {
		t.Run(name, func(t *testing.T) {
			var headers []string
			if tc.header != "" {
				headers = append(headers, tc.header)
			}
			r := post(tc.body, headers...)
			if r.StatusCode != tc.status || !strings.Contains(r.Body, tc.want) {
				t.Fatalf("%d %s; want %d with %q", r.StatusCode, r.Body, tc.status, tc.want)
			}
			if r.StatusCode == http.StatusUnauthorized && r.Header.Get("WWW-Authenticate") == "" {
				t.Fatal("401 without WWW-Authenticate")
			}
		})
	}
	if r := g.do(g.client(), http.MethodGet, url, auth); r.StatusCode != http.StatusMethodNotAllowed || r.Header.Get("Allow") != "POST" {
		t.Fatalf("GET: %d, Allow %q", r.StatusCode, r.Header.Get("Allow"))
	}
	if r := g.send(g.client(), http.MethodPost, "http://"+g.courses+apiLinksPath, strings.NewReader(good), auth); r.StatusCode != http.StatusNotFound {
		t.Fatalf("link API on a child app: %d", r.StatusCode)
	}
}

func TestAPI_OffWithoutKeys(t *testing.T) {
	t.Parallel()
	g := newTestGateway(t, withoutAPIKeys())
	r := g.send(g.client(), http.MethodPost, "http://"+g.portal+apiLinksPath, strings.NewReader(`{}`), "Authorization: Bearer "+testAPIKey)
	if r.StatusCode != http.StatusNotFound || !strings.Contains(r.Body, "api_disabled") {
		t.Fatalf("API without keys: %d %s", r.StatusCode, r.Body)
	}
}

func TestRateLimit_APIKeyGuessingIsSlowed(t *testing.T) {
	t.Parallel()
	g := newTestGateway(t, withRateLimit(3))
	for range 3 {
		if r := apiCallWithKey(g, "guess"); r.StatusCode != http.StatusUnauthorized {
			t.Fatalf("wrong key: %d", r.StatusCode)
		}
	}
	if r := apiCallWithKey(g, "guess"); r.StatusCode != http.StatusTooManyRequests || r.Header.Get("Retry-After") == "" {
		t.Fatalf("a wrong key past the limit: %d", r.StatusCode)
	}
	// The right key is never refused for the wrong ones of others behind
	// the same address.
	if r := apiCallWithKey(g, testAPIKey); r.StatusCode != http.StatusCreated {
		t.Fatalf("the right key past the limit: %d", r.StatusCode)
	}
}

// Every way in keeps one id for one person: the link API, the contacts sync
// and staff usernames, which the configuration owns.
func TestAPI_UserIDOfAnotherTypeIsRefused(t *testing.T) {
	t.Parallel()
	g := newTestGateway(t, withStaff())
	g.apiCall(http.MethodPost, "contacts", `{"id":"c_ada","name":"Ada","location":"loc_a"}`, http.StatusOK)
	g.apiCall(http.MethodPost, "links", `{"app":"courses","user":{"id":"u_b","type":"subaccount_user","location":"loc_b"}}`, http.StatusCreated)
	for name, tc := range map[string]struct{ route, body string }{
		"agency user with a contact's id":      {"links", `{"app":"courses","user":{"id":"c_ada","type":"agency_user"}}`},
		"contact with a sub-account user's id": {"links", `{"app":"courses","user":{"id":"u_b"}}`},
		"sub-account user in another location": {"links", `{"app":"courses","user":{"id":"u_b","type":"subaccount_user","location":"loc_a"}}`},
		"contact with a staff username":        {"links", `{"app":"courses","user":{"id":"agency"}}`},
		"staff username in another location":   {"links", `{"app":"courses","user":{"id":"sub","type":"subaccount_user","location":"loc_b"}}`},
		"synced contact with a staff username": {"contacts", `[{"id":"c_new"},{"id":"sub"}]`},
		"synced contact with a user's id":      {"contacts", `[{"id":"c_new"},{"id":"u_b"}]`},
	} {
		t.Run(name, func(t *testing.T) {
			body := g.apiCall(http.MethodPost, tc.route, tc.body, http.StatusConflict)
			if !strings.Contains(body, `"code":"id_taken"`) {
				t.Fatalf("answer: %s", body)
			}
		})
	}
	if _, err := g.store.Contact(context.Background(), "c_new"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a refused sync kept part of its contacts: %v", err)
	}
	// Staff are who the configuration says: a link for them as themselves works.
	g.apiCall(http.MethodPost, "links", `{"app":"courses","user":{"id":"sub","type":"subaccount_user","location":"loc_a"}}`, http.StatusCreated)
}

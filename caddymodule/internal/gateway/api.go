package gateway

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"go.uber.org/zap"

	"github.com/portalgate/portalgate/caddymodule/internal/identity"
	"github.com/portalgate/portalgate/caddymodule/internal/store"
)

// MaxAPIBody bounds an API request: a mint is a few hundred bytes, a
// contacts sync at most maxContactsPerCall contacts.
const MaxAPIBody = 1 << 20

// maxContactsPerCall bounds one contacts sync.
const maxContactsPerCall = 1000

// apiCall is one call of the link API: who makes it, its body and the
// values of its route's pattern.
type apiCall struct {
	by     string
	body   io.Reader
	params map[string]string
	query  url.Values
}

// apiHandler answers one API call with a status and a JSON value.
type apiHandler func(g *Gateway, ctx context.Context, c apiCall) (int, any, error)

// apiRoutes is the link API, the same for the portal's HTTP API and Caddy's
// admin API. Patterns are below the API's prefix.
func apiRoutes() table[apiHandler] {
	var t table[apiHandler]
	t.on("links", (*Gateway).apiMint, http.MethodPost)
	t.on("links/{id}", (*Gateway).apiRevokeLink, http.MethodDelete)
	t.on("users/{id}/revoke", (*Gateway).apiRevokeUser, http.MethodPost)
	t.on("contacts", (*Gateway).apiContacts, http.MethodPost)
	t.on("contacts/{id}/invite", (*Gateway).apiInvite, http.MethodPost)
	t.on("tenants", (*Gateway).apiAddTenant, http.MethodPost)
	t.on("tenants", (*Gateway).apiTenants, http.MethodGet)
	t.on("tenants/{id}", (*Gateway).apiTenant, http.MethodGet)
	t.on("tenants/{id}", (*Gateway).apiReplaceTenant, http.MethodPut)
	t.on("tenants/{id}", (*Gateway).apiRemoveTenant, http.MethodDelete)
	return t
}

// CallAPI runs one call of the link API. route is the escaped path below
// the API's prefix; each segment is unescaped once, here:
//
//	POST   links               mint a link (JSON body: MintRequest)
//	DELETE links/{id}          revoke a link before it is used
//	POST   users/{id}/revoke   end every session of a user, refuse their older links
//	POST   contacts            add or update contacts (JSON: one object or an array)
//	POST   contacts/{id}/invite  mail a contact a welcome e-mail with a link into the portal
//	POST   tenants, GET tenants, GET|PUT|DELETE tenants/{id}  the sub-accounts (tenants_api.go)
//
// route may end in a query (?after=...), which the call reads.
//
// A refusal is a *Problem (400, 404, 405 with its Allow); any other error
// is the store's.
func (g *Gateway) CallAPI(ctx context.Context, by, method, route string, body io.Reader) (int, any, error) {
	route, rawQuery, _ := strings.Cut(route, "?")
	// What of the query can be read is; the calls that read one check it.
	query, _ := url.ParseQuery(rawQuery)
	m, err := g.api.lookup(method, route, true)
	switch {
	case err != nil:
		return 0, nil, badRequest("the path is not validly escaped")
	case !m.found:
		return 0, nil, problemNoSuchCall
	case !m.ok:
		p := methodNotAllowed(m.hit.allow)
		p.Detail = "method not allowed: use " + m.hit.allow
		return 0, nil, p
	}
	return m.handler(g, ctx, apiCall{by: by, body: body, params: m.hit.params, query: query})
}

func (g *Gateway) apiMint(ctx context.Context, c apiCall) (int, any, error) {
	req, err := DecodeMintRequest(c.body)
	if err != nil {
		return 0, nil, err
	}
	resp, err := g.Mint(ctx, req, c.by)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusCreated, resp, nil
}

func (g *Gateway) apiInvite(ctx context.Context, c apiCall) (int, any, error) {
	resp, err := g.Invite(ctx, c.params["id"], c.by)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusCreated, resp, nil
}

func (g *Gateway) apiRevokeLink(ctx context.Context, c apiCall) (int, any, error) {
	id := c.params["id"]
	if err := g.RevokeLink(ctx, c.by, id); err != nil {
		return 0, nil, err
	}
	return http.StatusOK, map[string]string{"status": "revoked", "id": id}, nil
}

func (g *Gateway) apiRevokeUser(ctx context.Context, c apiCall) (int, any, error) {
	userID := c.params["id"]
	n, err := g.RevokeUser(ctx, c.by, userID)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, map[string]any{"status": "revoked", "user_id": userID, "sessions_ended": n}, nil
}

func (g *Gateway) apiContacts(ctx context.Context, c apiCall) (int, any, error) {
	cs, err := DecodeContacts(c.body)
	if err != nil {
		return 0, nil, err
	}
	for i := range cs {
		// A tenant's portal syncs its own contacts; the default one (and
		// the admin API) every tenant's, each of its location's tenant.
		switch loc := &cs[i].Location; {
		case g.tenant != "" && *loc == "":
			*loc = g.tenant
		case g.tenant != "" && *loc != g.tenant:
			return 0, nil, problemOtherTenant
		}
	}
	for _, c := range cs {
		if st, ok := g.staff[c.ID]; ok {
			return 0, nil, idTaken(c.ID, store.HolderOf(st.user()))
		}
	}
	switch err := g.cfg.Directory.PutContacts(ctx, cs); {
	case errors.Is(err, store.ErrIDTaken):
		return 0, nil, idTakenProblem(err.Error() + ": one id is one person; nothing was saved")
	case err != nil:
		return 0, nil, err
	}
	g.audit.contactsSynced(c.by, len(cs))
	return http.StatusOK, map[string]any{"status": "saved", "count": len(cs)}, nil
}

// api serves the link API on the portal: /_portalgate/api/..., for a CRM or
// any backend holding an API key.
func (s *Site) api(w http.ResponseWriter, r *http.Request, _ routeHit) error {
	g := s.g
	if len(g.cfg.APIKeys) == 0 {
		return problemAPIOff
	}
	ip := g.clientIP(r)
	key, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	keyID, valid := g.checkAPIKey(key)
	if !ok || !valid {
		// Wrong keys count per client and are refused past the budget (it
		// bounds the noise and cost of guessing 256-bit keys); a right key
		// is never refused for someone else's wrong ones behind the same
		// address.
		if wait, blocked := g.cfg.Limiter.Spend(apiKeyKey(ip)); blocked {
			return tooMany{wait}
		}
		w.Header().Set("WWW-Authenticate", `Bearer realm="portalgate"`)
		g.audit.apiKeyRejected(ip)
		return problemAPIKey
	}
	// The escaped path: a user id may hold "/" or "%", decoded once, by the table.
	route := strings.TrimPrefix(r.URL.EscapedPath(), apiPrefix)
	if r.URL.RawQuery != "" {
		route += "?" + r.URL.RawQuery
	}
	// Revocations complete even if the caller hangs up.
	status, v, err := g.CallAPI(context.WithoutCancel(r.Context()), "api_key:"+keyID, r.Method, route, http.MaxBytesReader(w, r.Body, MaxAPIBody))
	noStore(w)
	if p, ok := asProblem(err); ok {
		// API clients get JSON, whatever they accept.
		if p.allow != "" {
			w.Header().Set("Allow", p.allow)
		}
		writeJSON(w, p.Status, map[string]string{"error": p.Detail, "code": p.Code})
		return nil
	}
	if err != nil {
		g.log.Error("link API", zap.String("route", route), zap.Error(err))
		return problemStore
	}
	writeJSON(w, status, v)
	return nil
}

// checkAPIKey reports whether key hashes to a configured API key hash, and
// which (the hash's first 8 hex digits, for the audit log). Every hash is
// compared, in constant time, so timing tells nothing.
func (g *Gateway) checkAPIKey(key string) (string, bool) {
	if key == "" {
		return "", false
	}
	sum := sha256.Sum256([]byte(key))
	ok := 0
	for i := range g.cfg.APIKeys {
		ok |= subtle.ConstantTimeCompare(sum[:], g.cfg.APIKeys[i][:])
	}
	return hex.EncodeToString(sum[:4]), ok == 1
}

// DecodeMintRequest reads exactly one JSON object with known fields only, so
// a typo in a field name is an error rather than a silently ignored setting.
func DecodeMintRequest(body io.Reader) (MintRequest, error) {
	var req MintRequest
	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return MintRequest{}, badRequest(fmt.Sprintf("body must be a JSON object such as {\"app\":\"courses\",\"user\":{\"id\":\"c_123\"}}: %v", jsonError(err)))
	}
	if dec.More() {
		return MintRequest{}, badRequest("body must hold exactly one JSON object")
	}
	return req, nil
}

// DecodeContacts reads one contact or an array of them, known fields only,
// each a valid identity.
func DecodeContacts(body io.Reader) ([]store.Contact, error) {
	raw, err := io.ReadAll(body)
	if err != nil {
		return nil, badRequest(jsonError(err))
	}
	raw = bytes.TrimSpace(raw)
	var cs []store.Contact
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if len(raw) > 0 && raw[0] == '{' {
		cs = make([]store.Contact, 1)
		err = dec.Decode(&cs[0])
	} else {
		err = dec.Decode(&cs)
	}
	if err != nil {
		return nil, badRequest(`body must be a contact such as {"id":"c_123","email":"ada@example.com","name":"Ada","location":"loc_1"}, or an array of them: ` + jsonError(err))
	}
	if dec.More() {
		return nil, badRequest("body must hold exactly one JSON value")
	}
	switch {
	case len(cs) == 0:
		return nil, badRequest("no contacts given")
	case len(cs) > maxContactsPerCall:
		return nil, badRequest(fmt.Sprintf("at most %d contacts per call, got %d", maxContactsPerCall, len(cs)))
	}
	for i, c := range cs {
		u := identity.User{ID: c.ID, Email: c.Email, Name: c.Name, Location: c.Location}
		if err := u.Validate(); err != nil {
			return nil, badRequest(fmt.Sprintf("contact %d: %v", i+1, err))
		}
	}
	return cs, nil
}

// jsonError describes a decoding error without quoting the input back.
func jsonError(err error) string {
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &syntax):
		return fmt.Sprintf("invalid JSON at byte %d", syntax.Offset)
	case errors.As(err, &typ):
		return fmt.Sprintf("field %q must be a %s", typ.Field, typ.Type)
	case errors.As(err, &tooBig):
		return fmt.Sprintf("body is larger than %d bytes", tooBig.Limit)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "body is empty or cut short"
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return strings.TrimPrefix(err.Error(), "json: ")
	}
	return "invalid JSON"
}

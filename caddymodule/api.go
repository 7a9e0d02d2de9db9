package caddymodule

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/portalgate/portalgate/caddymodule/internal/identity"
	"github.com/portalgate/portalgate/caddymodule/internal/link"
	"github.com/portalgate/portalgate/caddymodule/internal/store"
)

// maxAPIBody bounds an API request: a mint is a few hundred bytes, a
// contacts sync at most maxContactsPerCall contacts.
const maxAPIBody = 1 << 20

// maxContactsPerCall bounds one contacts sync.
const maxContactsPerCall = 1000

// apiError is a failed API call: its status, code and message.
type apiError struct {
	status int
	code   string
	msg    string
}

func (e *apiError) Error() string { return e.msg }

func badInput(err error) *apiError {
	return &apiError{http.StatusBadRequest, "bad_request", err.Error()}
}

// callAPI runs one call of the link API, the same for the portal's HTTP API
// and Caddy's admin API. route is the escaped path below the API's prefix;
// each segment is unescaped once, here:
//
//	POST   links               mint a link (JSON body: MintRequest)
//	DELETE links/{id}          revoke a link before it is used
//	POST   users/{id}/revoke   end every session of a user, refuse their older links
//	POST   contacts            add or update contacts (JSON: one object or an array)
func (a *App) callAPI(ctx context.Context, by, method, route string, body io.Reader) (int, any, error) {
	parts := strings.Split(route, "/")
	for i, p := range parts {
		var err error
		if parts[i], err = url.PathUnescape(p); err != nil {
			return 0, nil, badInput(errors.New("the path is not validly escaped"))
		}
	}
	switch {
	case route == "links":
		if method != http.MethodPost {
			return 0, nil, methodNotAllowed(http.MethodPost)
		}
		req, err := decodeMintRequest(body)
		if err != nil {
			return 0, nil, badInput(err)
		}
		resp, err := a.Mint(ctx, req, by)
		if errors.Is(err, errInput) {
			return 0, nil, badInput(err)
		}
		if err != nil {
			return 0, nil, err
		}
		return http.StatusCreated, resp, nil

	case route == "contacts":
		if method != http.MethodPost {
			return 0, nil, methodNotAllowed(http.MethodPost)
		}
		cs, err := decodeContacts(body)
		if err != nil {
			return 0, nil, badInput(err)
		}
		if err := a.store.PutContacts(ctx, cs); err != nil {
			return 0, nil, err
		}
		a.audit.contactsSynced(by, len(cs))
		return http.StatusOK, map[string]any{"status": "saved", "count": len(cs)}, nil

	case len(parts) == 2 && parts[0] == "links":
		if method != http.MethodDelete {
			return 0, nil, methodNotAllowed(http.MethodDelete)
		}
		if err := a.RevokeLink(ctx, by, parts[1]); err != nil {
			return 0, nil, err
		}
		return http.StatusOK, map[string]string{"status": "revoked", "id": parts[1]}, nil

	case len(parts) == 3 && parts[0] == "users" && parts[2] == "revoke":
		if method != http.MethodPost {
			return 0, nil, methodNotAllowed(http.MethodPost)
		}
		userID := parts[1]
		n, err := a.RevokeUser(ctx, by, userID)
		if err != nil {
			return 0, nil, err
		}
		return http.StatusOK, map[string]any{"status": "revoked", "user_id": userID, "sessions_ended": n}, nil
	}
	return 0, nil, &apiError{http.StatusNotFound, "not_found", "no such API call"}
}

func methodNotAllowed(allow string) *apiError {
	return &apiError{http.StatusMethodNotAllowed, "method_not_allowed", "method not allowed: use " + allow}
}

// revocationHold is how long a revocation must be remembered: until every
// link it refuses has expired.
func (a *App) revocationHold() time.Time {
	return a.now().Add(time.Duration(a.LinkMaxTTL) + link.Leeway)
}

// RevokeLink makes a link unusable before it is used (or before its last use).
func (a *App) RevokeLink(ctx context.Context, by, id string) error {
	if len(id) != 22 || strings.Trim(id, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") != "" {
		return badInput(errors.New("a link id is the 22-character id the mint returned"))
	}
	if err := a.store.RevokeLink(ctx, id, a.revocationHold()); err != nil {
		return err
	}
	a.audit.linkRevoked(by, id)
	return nil
}

// RevokeUser ends every session of a user and refuses their links issued
// until now, on this instance's L1 and in the store.
func (a *App) RevokeUser(ctx context.Context, by, userID string) (int, error) {
	if userID == "" {
		return 0, badInput(errors.New("a user id is required"))
	}
	n, err := a.sessions.RevokeUser(ctx, userID, a.revocationHold())
	if err != nil {
		return n, err
	}
	a.audit.userRevoked(by, userID, n)
	return n, nil
}

// api serves the link API on the portal: /_portalgate/api/..., for a CRM or
// any backend holding an API key.
func (h *Handler) api(w http.ResponseWriter, r *http.Request, route string) error {
	if len(h.app.apiKeys) == 0 {
		return h.fail(w, r, problemAPIOff)
	}
	ip := clientIP(r)
	if wait, blocked := h.app.limiter.Blocked(apiKeyKey(ip)); blocked {
		return h.tooMany(w, r, wait)
	}
	key, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	keyID, valid := h.app.checkAPIKey(key)
	if !ok || !valid {
		h.app.limiter.Fail(apiKeyKey(ip))
		w.Header().Set("WWW-Authenticate", `Bearer realm="portalgate"`)
		h.app.audit.apiKeyRejected(ip)
		return h.fail(w, r, problemAPIKey)
	}
	// Revocations complete even if the caller hangs up.
	status, v, err := h.app.callAPI(context.WithoutCancel(r.Context()), "api_key:"+keyID, r.Method, route, http.MaxBytesReader(w, r.Body, maxAPIBody))
	noStore(w)
	var ae *apiError
	switch {
	case errors.As(err, &ae):
		if ae.status == http.StatusMethodNotAllowed {
			w.Header().Set("Allow", strings.TrimPrefix(ae.msg, "method not allowed: use "))
		}
		return writeJSON(w, ae.status, map[string]string{"error": ae.msg, "code": ae.code})
	case err != nil:
		h.logger.Error("link API", zap.String("route", route), zap.Error(err))
		return h.fail(w, r, problemStore)
	}
	return writeJSON(w, status, v)
}

// decodeMintRequest reads exactly one JSON object with known fields only, so
// a typo in a field name is an error rather than a silently ignored setting.
func decodeMintRequest(body io.Reader) (MintRequest, error) {
	var req MintRequest
	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return MintRequest{}, fmt.Errorf("%w: body must be a JSON object such as {\"app\":\"courses\",\"user\":{\"id\":\"c_123\"}}: %v", errInput, jsonError(err))
	}
	if dec.More() {
		return MintRequest{}, fmt.Errorf("%w: body must hold exactly one JSON object", errInput)
	}
	return req, nil
}

// decodeContacts reads one contact or an array of them, known fields only,
// each a valid identity.
func decodeContacts(body io.Reader) ([]store.Contact, error) {
	raw, err := io.ReadAll(body)
	if err != nil {
		return nil, fmt.Errorf("%w: %s", errInput, jsonError(err))
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
		return nil, fmt.Errorf(`%w: body must be a contact such as {"id":"c_123","email":"ada@example.com","name":"Ada","location":"loc_1"}, or an array of them: %s`, errInput, jsonError(err))
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: body must hold exactly one JSON value", errInput)
	}
	switch {
	case len(cs) == 0:
		return nil, fmt.Errorf("%w: no contacts given", errInput)
	case len(cs) > maxContactsPerCall:
		return nil, fmt.Errorf("%w: at most %d contacts per call, got %d", errInput, maxContactsPerCall, len(cs))
	}
	for i, c := range cs {
		u := identity.User{ID: c.ID, Email: c.Email, Name: c.Name, Location: c.Location}
		if err := u.Validate(); err != nil {
			return nil, fmt.Errorf("%w: contact %d: %v", errInput, i+1, err)
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

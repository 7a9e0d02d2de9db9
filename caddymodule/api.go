package caddymodule

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"go.uber.org/zap"
)

// maxMintBody bounds a mint request; a real one is a few hundred bytes.
const maxMintBody = 64 << 10

// apiMint is POST /_portalgate/api/links on the portal: mint a link for a
// CRM or any backend holding an API key.
func (h *Handler) apiMint(w http.ResponseWriter, r *http.Request) error {
	if len(h.app.apiKeys) == 0 {
		return h.fail(w, r, problemAPIOff)
	}
	if r.Method != http.MethodPost {
		return h.fail(w, r, problemMethod)
	}
	key, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || !h.app.checkAPIKey(key) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="portalgate"`)
		h.logger.Info("link API key rejected")
		return h.fail(w, r, problemAPIKey)
	}
	req, err := decodeMintRequest(http.MaxBytesReader(w, r.Body, maxMintBody))
	if err != nil {
		return badRequest(w, err)
	}
	resp, err := h.app.Mint(req)
	if errors.Is(err, errInput) {
		return badRequest(w, err)
	}
	if err != nil {
		h.logger.Error("minting link", zap.Error(err))
		return h.fail(w, r, problemStore)
	}
	noStore(w)
	return writeJSON(w, http.StatusCreated, resp)
}

func badRequest(w http.ResponseWriter, err error) error {
	noStore(w)
	return writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error(), "code": "bad_request"})
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

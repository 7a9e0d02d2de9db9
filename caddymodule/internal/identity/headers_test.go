package identity_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/portalgate/portalgate/caddymodule/internal/identity"
)

// trailingBody ends as a chunked body does in net/http: when it reaches its
// end it adds the trailers that came after the last chunk, declared or not.
type trailingBody struct {
	io.Reader
	trailer, sent http.Header
}

func (b *trailingBody) Read(p []byte) (int, error) {
	n, err := b.Reader.Read(p)
	if err == io.EOF {
		for k, v := range b.sent {
			b.trailer[k] = v
		}
	}
	return n, err
}

func (b *trailingBody) Close() error { return nil }

func TestGuardTrailers_UndeclaredIdentityTrailersAreDeletedAtTheBodysEnd(t *testing.T) {
	t.Parallel()
	r := httptest.NewRequest(http.MethodPost, "/upload", nil)
	r.Trailer = http.Header{"X-Note": nil}
	r.Body = &trailingBody{Reader: strings.NewReader("data"), trailer: r.Trailer,
		sent: http.Header{"X-Note": {"fine"}, "X-Portal-User-Id": {"admin"}, "X_portal_user_type": {"agency_user"}}}
	identity.GuardTrailers(r)
	if b, err := io.ReadAll(r.Body); err != nil || string(b) != "data" {
		t.Fatalf("body %q, %v", b, err)
	}
	if len(r.Trailer) != 1 || r.Trailer.Get("X-Note") != "fine" {
		t.Fatalf("trailers after the body: %v", r.Trailer)
	}
}

func TestGuardTrailers_RequestWithoutTrailersIsLeftAlone(t *testing.T) {
	t.Parallel()
	r := httptest.NewRequest(http.MethodPost, "/upload", strings.NewReader("data"))
	body := r.Body
	identity.GuardTrailers(r)
	if r.Body != body {
		t.Fatal("a request that declares no trailers had its body wrapped")
	}
}

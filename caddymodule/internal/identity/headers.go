package identity

import (
	"errors"
	"io"
	"net/http"
	"strings"
)

// The identity headers a child app receives.
const (
	HeaderUserID   = "X-Portal-User-Id"
	HeaderEmail    = "X-Portal-User-Email"
	HeaderName     = "X-Portal-User-Name"
	HeaderType     = "X-Portal-User-Type"
	HeaderLocation = "X-Portal-Location-Id"
	HeaderApp      = "X-Portal-App"
	// HeaderTenant names the sub-account whose app the request is for,
	// when the gateway serves tenants.
	HeaderTenant = "X-Portal-Tenant"
	// HeaderAssertion carries the signed identity assertion, when on.
	HeaderAssertion = "X-Portal-Assertion"
)

// StripHeaders deletes every header a client sent that an app could read
// as ours: any letter case, and with underscores for dashes too, since
// CGI-style servers (PHP, WSGI, Rack) fold X_Portal_User_Id and
// X-Portal-User-Id into the same variable.
//
// A client could also name our headers in Connection, so that a proxy drops
// them as hop-by-hop after we set them: those tokens are removed too.
func StripHeaders(h http.Header) {
	for name := range h {
		if IsHeader(name) {
			delete(h, name)
		}
	}
	for i, v := range h["Connection"] {
		if strings.Contains(strings.ToLower(strings.ReplaceAll(v, "_", "-")), "x-portal-") {
			var kept []string
			for token := range strings.SplitSeq(v, ",") {
				if token = strings.TrimSpace(token); token != "" && !IsHeader(token) {
					kept = append(kept, token)
				}
			}
			h["Connection"][i] = strings.Join(kept, ", ")
		}
	}
}

// InTrailer reports whether the request declares a trailer that an app
// could read as ours: trailers arrive after the body, past any stripping.
func InTrailer(r *http.Request) bool {
	for name := range r.Trailer {
		if IsHeader(name) {
			return true
		}
	}
	return false
}

// GuardTrailers keeps client-sent X-Portal-* trailers from an app when the
// request declares trailers at all. A client may send, after the last
// chunk, trailers it never declared; net/http adds them to r.Trailer when
// the body ends, the map a proxy forwards from. So the body is wrapped: at
// its end, every identity name is deleted from that map before anything
// downstream sees the end. A request that declares none has no map to
// forward, and is left as it is.
func GuardTrailers(r *http.Request) {
	if r.Trailer == nil || r.Body == nil || r.Body == http.NoBody {
		return
	}
	r.Body = &trailerGuard{ReadCloser: r.Body, trailer: r.Trailer}
}

type trailerGuard struct {
	io.ReadCloser
	trailer http.Header
}

func (g *trailerGuard) Read(p []byte) (int, error) {
	n, err := g.ReadCloser.Read(p)
	if errors.Is(err, io.EOF) {
		StripHeaders(g.trailer)
	}
	return n, err
}

// IsHeader reports whether name starts with X-Portal-, in any letter case,
// with _ for -.
func IsHeader(name string) bool {
	const want = "x-portal-"
	if len(name) < len(want) {
		return false
	}
	for i := 0; i < len(want); i++ {
		c := name[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c == '_' {
			c = '-'
		}
		if c != want[i] {
			return false
		}
	}
	return true
}

// SetHeaders hands u to an app as headers, as the user of app of tenant
// ("" for none). Run it after StripHeaders: it sets, and never merges with
// what a client sent.
func SetHeaders(h http.Header, u *User, tenant, app string) { new(HeaderValues).Set(h, u, tenant, app) }

// HeaderValues holds the values of one request's identity headers. Set
// points the headers at its slots, so all of them cost one allocation (or
// none more, inside a caller's own). The headers share it: they must not
// outlive a reuse of it.
type HeaderValues [7]string

// Set is SetHeaders with v holding the values.
func (v *HeaderValues) Set(h http.Header, u *User, tenant, app string) {
	*v = HeaderValues{u.ID, u.Email, u.Name, string(u.Type), app, u.Location, tenant}
	h[HeaderUserID] = v[0:1:1]
	h[HeaderEmail] = v[1:2:2]
	h[HeaderName] = v[2:3:3]
	h[HeaderType] = v[3:4:4]
	h[HeaderApp] = v[4:5:5]
	if u.Location != "" {
		h[HeaderLocation] = v[5:6:6]
	}
	if tenant != "" {
		h[HeaderTenant] = v[6:7:7]
	}
}

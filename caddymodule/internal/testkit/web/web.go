// Package web is the HTTP client side of the gateway and Caddy tests: a
// browser-like client that shows every redirect, requests sent with headers
// exactly as written, and readers of what the gateway's pages and the echo
// upstream answer.
package web

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"regexp"
	"strings"
	"testing"
)

// Browser marks a request as coming from a person's browser.
const Browser = "Accept: text/html,application/xhtml+xml"

// Response is an answer with its body read.
type Response struct {
	*http.Response
	Body string
}

// Client is a browser-like client with a cookie jar that does not follow
// redirects, so every hop can be checked.
func Client() *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Transport: transport, Jar: jar,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// ClientVia is Client with every connection made to addr (host:port),
// whatever host a URL names: the sites of many hosts (tenants' names under
// .localhost) served by one loopback server.
func ClientVia(addr string) *http.Client {
	c := Client()
	t := transport.Clone()
	t.DialContext = func(ctx context.Context, network, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, addr)
	}
	c.Transport = t
	return c
}

// transport is the clients' own: closing an httptest server closes the idle
// connections of http.DefaultTransport, and a parallel test's request that
// has just taken one of them then fails ("CloseIdleConnections called").
var transport = http.DefaultTransport.(*http.Transport).Clone()

// CloseIdleConnections closes the clients' idle connections. After a Caddy
// reload the old servers close theirs as they stop, and a request on one
// races that close (EOF) as a browser's would before it retries: a test
// that goes on after a reload does so on new connections, which only the
// new servers accept.
func CloseIdleConnections() { transport.CloseIdleConnections() }

// Send sends one request and reads the answer; headers come as
// "Name: value" strings and are sent as written, without canonicalisation.
func Send(t testing.TB, c *http.Client, method, url string, body io.Reader, headers ...string) Response {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range headers {
		k, v, _ := strings.Cut(h, ": ")
		req.Header[k] = append(req.Header[k], v)
	}
	res, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return Response{res, string(b)}
}

// Cookie is the cookie r sets under name, or nil.
func Cookie(r Response, name string) *http.Cookie {
	for _, c := range r.Cookies() {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// Echoed decodes the request headers an echo upstream answered with; any
// answer but a 200 fails the test.
func Echoed(t testing.TB, r Response) http.Header {
	t.Helper()
	if r.StatusCode != http.StatusOK {
		t.Fatalf("request through the gate: %d %s", r.StatusCode, r.Body)
	}
	var h http.Header
	if err := json.Unmarshal([]byte(r.Body), &h); err != nil {
		t.Fatalf("upstream answer %q: %v", r.Body, err)
	}
	return h
}

// Echo is an upstream that answers with the request headers it got, as JSON.
func Echo(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(r.Header)
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// CSRF reads the CSRF token of a page's form.
func CSRF(t testing.TB, page string) string {
	t.Helper()
	m := csrfField.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no csrf field in:\n%s", page)
	}
	return m[1]
}

// SignIn opens a magic link in a fresh browser and returns the browser,
// holding the session; anything but the redirect into the app fails the test.
func SignIn(t testing.TB, magicURL string) *http.Client {
	t.Helper()
	c := Client()
	if r := Send(t, c, http.MethodGet, magicURL, nil, Browser); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("redeeming: %d %s", r.StatusCode, r.Body)
	}
	return c
}

// API calls the link API of the portal at host (host:port) with an API key;
// route is below /_portalgate/api/.
func API(t testing.TB, host, key, method, route, body string) Response {
	t.Helper()
	return Send(t, Client(), method, "http://"+host+"/_portalgate/api/"+route, strings.NewReader(body),
		"Authorization: Bearer "+key, "Content-Type: application/json")
}

// APICall is API that insists on a status, and returns the body.
func APICall(t testing.TB, host, key, method, route, body string, want int) string {
	t.Helper()
	r := API(t, host, key, method, route, body)
	if r.StatusCode != want {
		t.Fatalf("%s %s: %d, want %d: %s", method, route, r.StatusCode, want, r.Body)
	}
	return r.Body
}

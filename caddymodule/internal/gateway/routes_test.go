package gateway

import (
	"maps"
	"net/http"
	"strings"
	"testing"
)

// siteLikeRoutes has a pattern of every kind a site's table has, and two
// routes where the first must decide.
func siteLikeRoutes() table[string] {
	var t table[string]
	t.on("/", "home", http.MethodGet, http.MethodHead)
	t.on("/_portalgate/magic", "redeem", http.MethodGet, http.MethodHead, http.MethodPost)
	t.on("/_portalgate/magic", "options", http.MethodOptions)
	t.on("/_portalgate/launch/{app}", "launch", http.MethodGet)
	t.on("/_portalgate/api/{call...}", "api", anyMethod)
	t.on("/dashboard", "toDashboard", anyMethod)
	t.on("/dashboard/", "overview", http.MethodGet)
	t.on("/dashboard/{page...}", "dashboardNotFound", http.MethodGet)
	t.on("/users/{id}/revoke", "revoke", http.MethodPost)
	t.on("/users/{id}/{what}", "user", http.MethodGet)
	return t
}

// apiLikeRoutes is a table of escaped paths, as the link API's.
func apiLikeRoutes() table[string] {
	var t table[string]
	t.on("links", "mint", http.MethodPost)
	t.on("links/{id}", "revokeLink", http.MethodDelete)
	t.on("users/{id}/revoke", "revokeUser", http.MethodPost)
	t.on("files/{path...}", "file", http.MethodGet)
	return t
}

// lookupCase is one lookup and what it finds: the handler ("" when none
// takes the method), the captured values and the Allow; notFound for a 404.
type lookupCase struct {
	method, path string
	handler      string
	params       map[string]string
	allow        string
	notFound     bool
}

func checkLookup(t *testing.T, tab table[string], unescape bool, tc lookupCase) {
	t.Helper()
	m, err := tab.lookup(tc.method, tc.path, unescape)
	if err != nil {
		t.Fatalf("lookup %s %q: %v", tc.method, tc.path, err)
	}
	if tc.notFound {
		if m.found || m.ok || m.hit.params != nil {
			t.Fatalf("lookup %s %q = %+v, want no route", tc.method, tc.path, m)
		}
		return
	}
	if !m.found || m.ok != (tc.handler != "") || m.handler != tc.handler {
		t.Fatalf("lookup %s %q = found %v, ok %v, handler %q; want handler %q", tc.method, tc.path, m.found, m.ok, m.handler, tc.handler)
	}
	if !maps.Equal(m.hit.params, tc.params) || (m.hit.params == nil) != (tc.params == nil) {
		t.Errorf("lookup %s %q params = %#v, want %#v", tc.method, tc.path, m.hit.params, tc.params)
	}
	if m.hit.allow != tc.allow {
		t.Errorf("lookup %s %q allow = %q, want %q", tc.method, tc.path, m.hit.allow, tc.allow)
	}
}

func TestLookup_PatternSemantics(t *testing.T) {
	t.Parallel()
	const get, post = http.MethodGet, http.MethodPost
	tab := siteLikeRoutes()
	for name, tc := range map[string]lookupCase{
		"root":                             {method: get, path: "/", handler: "home", allow: "GET, HEAD"},
		"literal":                          {method: post, path: "/_portalgate/magic", handler: "redeem", allow: "GET, HEAD, POST, OPTIONS"},
		"literal, second handler":          {method: http.MethodOptions, path: "/_portalgate/magic", handler: "options", allow: "GET, HEAD, POST, OPTIONS"},
		"literal with trailing slash":      {method: get, path: "/_portalgate/magic/", notFound: true},
		"literal with leading slashes":     {method: get, path: "//_portalgate/magic", notFound: true},
		"literal prefix only":              {method: get, path: "/_portalgate/magi", notFound: true},
		"empty path":                       {method: get, path: "", notFound: true},
		"two slashes":                      {method: get, path: "//", notFound: true},
		"app path":                         {method: get, path: "/lessons/3", notFound: true},
		"gateway path of no route":         {method: get, path: "/_portalgate/nothing", notFound: true},
		"one segment":                      {method: get, path: "/_portalgate/launch/courses", handler: "launch", allow: "GET", params: map[string]string{"app": "courses"}},
		"one segment, empty":               {method: get, path: "/_portalgate/launch/", notFound: true},
		"one segment, missing":             {method: get, path: "/_portalgate/launch", notFound: true},
		"one segment, two given":           {method: get, path: "/_portalgate/launch/courses/x", notFound: true},
		"one segment, trailing slash":      {method: get, path: "/_portalgate/launch/courses/", notFound: true},
		"rest, one segment":                {method: post, path: "/_portalgate/api/links", handler: "api", params: map[string]string{"call": "links"}},
		"rest, several segments":           {method: http.MethodDelete, path: "/_portalgate/api/users/u1/revoke", handler: "api", params: map[string]string{"call": "users/u1/revoke"}},
		"rest, empty trailing segment":     {method: get, path: "/_portalgate/api/", handler: "api", params: map[string]string{"call": ""}},
		"rest, empty segments kept":        {method: get, path: "/_portalgate/api//x/", handler: "api", params: map[string]string{"call": "/x/"}},
		"rest, missing":                    {method: get, path: "/_portalgate/api", notFound: true},
		"any method, no allow":             {method: http.MethodPatch, path: "/dashboard", handler: "toDashboard"},
		"first match: literal before rest": {method: get, path: "/dashboard/", handler: "overview", allow: "GET"},
		"first match: 405 from literal":    {method: post, path: "/dashboard/", allow: "GET"},
		"rest after literal":               {method: get, path: "/dashboard/x/", handler: "dashboardNotFound", allow: "GET", params: map[string]string{"page": "x/"}},
		"literal after capture":            {method: post, path: "/users/u1/revoke", handler: "revoke", allow: "POST", params: map[string]string{"id": "u1"}},
		"first match: 405 with allow":      {method: get, path: "/users/u1/revoke", allow: "POST", params: map[string]string{"id": "u1"}},
		"second route when first fails":    {method: get, path: "/users/u1/sessions", handler: "user", allow: "GET", params: map[string]string{"id": "u1", "what": "sessions"}},
		"capture, empty segment":           {method: post, path: "/users//revoke", notFound: true},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			checkLookup(t, tab, false, tc)
		})
	}
}

func TestLookup_UnescapesEachSegmentOnce(t *testing.T) {
	t.Parallel()
	const del, post = http.MethodDelete, http.MethodPost
	tab := apiLikeRoutes()
	for name, tc := range map[string]lookupCase{
		"escaped slash is one segment":  {method: del, path: "links/a%2Fb", handler: "revokeLink", allow: "DELETE", params: map[string]string{"id": "a/b"}},
		"escaped slash, then literal":   {method: post, path: "users/a%2Fb/revoke", handler: "revokeUser", allow: "POST", params: map[string]string{"id": "a/b"}},
		"unescaped once":                {method: del, path: "links/%2525", handler: "revokeLink", allow: "DELETE", params: map[string]string{"id": "%25"}},
		"literal compared unescaped":    {method: post, path: "l%69nks", handler: "mint", allow: "POST"},
		"escaped slash in a literal":    {method: post, path: "links%2F", notFound: true},
		"two segments":                  {method: del, path: "links/a/b", notFound: true},
		"rest joins unescaped segments": {method: http.MethodGet, path: "files/a%2Fb/c", handler: "file", allow: "GET", params: map[string]string{"path": "a/b/c"}},
		"405":                           {method: http.MethodGet, path: "links/x", allow: "DELETE", params: map[string]string{"id": "x"}},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			checkLookup(t, tab, true, tc)
		})
	}
	t.Run("without unescape the path is taken as it is", func(t *testing.T) {
		t.Parallel()
		checkLookup(t, tab, false, lookupCase{method: del, path: "links/a%2Fb", handler: "revokeLink", allow: "DELETE", params: map[string]string{"id": "a%2Fb"}})
	})
}

func TestLookup_BadEscapeFails(t *testing.T) {
	t.Parallel()
	tab := apiLikeRoutes()
	for _, path := range []string{"links/%zz", "links/%", "links/%2", "nothing/%zz", "%/links"} {
		t.Run(path, func(t *testing.T) {
			t.Parallel()
			if m, err := tab.lookup(http.MethodDelete, path, true); err == nil {
				t.Fatalf("lookup %q = %+v, want an escaping error", path, m)
			}
		})
	}
}

// FuzzLookup_InPlaceAgreesWithSegments: a path without escapes finds the
// same route read in place as split into segments.
func FuzzLookup_InPlaceAgreesWithSegments(f *testing.F) {
	for _, path := range []string{
		"", "/", "//", "/lessons/3", "/_portalgate/magic", "/_portalgate/magic/", "/_portalgate/launch/", "/_portalgate/launch/a",
		"/_portalgate/launch/a/", "/_portalgate/api", "/_portalgate/api/", "/_portalgate/api//", "/dashboard", "/dashboard/",
		"/dashboard/a/b", "/users/u/revoke", "/users//revoke", "/users/u/x/", "links/x", "files/",
	} {
		f.Add(path)
	}
	tabs := []table[string]{siteLikeRoutes(), apiLikeRoutes()}
	f.Fuzz(func(t *testing.T, path string) {
		if strings.Contains(path, "%") {
			return
		}
		for _, tab := range tabs {
			inPlace, _ := tab.lookup(http.MethodGet, path, false)
			split, err := tab.lookup(http.MethodGet, path, true)
			if err != nil {
				t.Fatalf("lookup %q: %v", path, err)
			}
			if inPlace.found != split.found || inPlace.ok != split.ok || inPlace.handler != split.handler ||
				inPlace.hit.allow != split.hit.allow || !maps.Equal(inPlace.hit.params, split.hit.params) {
				t.Fatalf("lookup %q: in place %+v, split %+v", path, inPlace, split)
			}
		}
	})
}

// portalRoutes is the portal site's table, the largest a site has.
func portalRoutes() table[siteHandler] {
	return *routesOf(true)
}

func TestPortalRoutes(t *testing.T) {
	t.Parallel()
	tab := portalRoutes()
	for _, tc := range []struct {
		method, path string
		found, ok    bool
		params       map[string]string
	}{
		{http.MethodGet, "/lessons/3", false, false, nil},
		{http.MethodGet, "", false, false, nil},
		{http.MethodGet, "/", true, true, nil},
		{http.MethodGet, "/_portalgate/launch/courses", true, true, map[string]string{"app": "courses"}},
		{http.MethodPost, "/_portalgate/api/links", true, true, map[string]string{"call": "links"}},
		{http.MethodPost, "/dashboard/generate", true, true, nil},
		{http.MethodDelete, "/dashboard/generate", true, false, nil},
		{http.MethodGet, "/dashboard/nothing", true, true, map[string]string{"page": "nothing"}},
	} {
		m, err := tab.lookup(tc.method, tc.path, false)
		if err != nil || m.found != tc.found || m.ok != tc.ok || !maps.Equal(m.hit.params, tc.params) {
			t.Errorf("lookup %s %s = found %v, ok %v, params %v, err %v; want %v, %v, %v", tc.method, tc.path, m.found, m.ok, m.hit.params, err, tc.found, tc.ok, tc.params)
		}
	}
}

// BenchmarkRoutes_GatedPathMisses is the lookup every gated request makes:
// an app's path that no route matches, on an app's table (every route below
// /_portalgate/) and on the portal's.
func BenchmarkRoutes_GatedPathMisses(b *testing.B) {
	for name, tab := range map[string]table[siteHandler]{
		"app":    *routesOf(false),
		"portal": portalRoutes(),
	} {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if m, _ := tab.lookup(http.MethodGet, "/lessons/3", false); m.found {
					b.Fatal("an app path found a gateway route")
				}
			}
		})
	}
}

// BenchmarkRoutes_Hit is the lookup of a gateway route: a literal one and
// one with a capture, the latter's values in a map.
func BenchmarkRoutes_Hit(b *testing.B) {
	tab := portalRoutes()
	for _, path := range []string{"/dashboard/settings/links", "/_portalgate/launch/courses"} {
		b.Run(path, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if m, _ := tab.lookup(http.MethodGet, path, false); !m.ok {
					b.Fatal("no route")
				}
			}
		})
	}
}

// An app's table rejects every path outside /_portalgate/ at once, and
// still finds its own.
func TestAppRoutes(t *testing.T) {
	t.Parallel()
	tab := *routesOf(false)
	if tab.prefix != gatewayPrefix {
		t.Fatalf("prefix %q, want %q", tab.prefix, gatewayPrefix)
	}
	for path, found := range map[string]bool{
		"/": false, "": false, "/lessons/3": false, "/_portalgate": false, "/_portalgate/": false, "/_portalgatex/magic": false,
		magicPath: true, logoutPath: true, jwksPath: true, "/_portalgate/launch/courses": false, "/dashboard/": false,
	} {
		if m, err := tab.lookup(http.MethodGet, path, false); err != nil || m.found != found {
			t.Errorf("lookup %q: found %v, err %v; want %v", path, m.found, err, found)
		}
	}
}

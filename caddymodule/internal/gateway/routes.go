package gateway

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// A table is what a site (or the link API) serves: each route a path
// pattern and the methods it takes. Dispatch, 404, 405 and the Allow header
// all come from it, so no second list of routes can drift from the first.
//
// A pattern is a path split at "/": a segment is matched literally, "{name}"
// matches any one segment and "{name...}" (last only) the rest, one or more
// segments. Routes are tried in order; the first whose pattern matches
// decides, whether or not it takes the method.
type table[H any] struct {
	routes []route[H]
}

// route is one pattern and its handlers by method, in the order Allow
// lists them. The method "*" takes every method.
type route[H any] struct {
	pattern  string
	segments []string
	methods  []methodHandler[H]
	allow    string
}

type methodHandler[H any] struct {
	method  string
	handler H
}

// anyMethod as a route's method takes every method.
const anyMethod = "*"

// on routes methods of pattern to h. A pattern named again gains methods,
// so one route may send its methods to several handlers:
//
//	t.on("/x", read, "GET", "HEAD")
//	t.on("/x", write, "POST")
func (t *table[H]) on(pattern string, h H, methods ...string) {
	i := slices.IndexFunc(t.routes, func(r route[H]) bool { return r.pattern == pattern })
	if i < 0 {
		t.routes = append(t.routes, route[H]{pattern: pattern, segments: strings.Split(pattern, "/")})
		i = len(t.routes) - 1
	}
	r := &t.routes[i]
	var names []string
	for _, m := range methods {
		r.methods = append(r.methods, methodHandler[H]{m, h})
	}
	for _, mh := range r.methods {
		if mh.method != anyMethod {
			names = append(names, mh.method)
		}
	}
	r.allow = strings.Join(names, ", ")
}

// match is the outcome of a lookup.
type match[H any] struct {
	route   *route[H]
	handler H
	// found is false when no pattern matches (404); route is set and found
	// true but ok false when the route does not take the method (405).
	found, ok bool
	params    map[string]string
}

// lookup finds the route for method and path. With unescape, path is an
// escaped path and every segment is unescaped once before it is compared
// or captured (an id may hold "/" or "%"); it fails when one is not validly
// escaped.
func (t *table[H]) lookup(method, path string, unescape bool) (match[H], error) {
	segs := strings.Split(path, "/")
	if unescape {
		for i, s := range segs {
			var err error
			if segs[i], err = url.PathUnescape(s); err != nil {
				return match[H]{}, err
			}
		}
	}
	for i := range t.routes {
		r := &t.routes[i]
		params, ok := r.matches(segs)
		if !ok {
			continue
		}
		m := match[H]{route: r, found: true, params: params}
		for _, mh := range r.methods {
			if mh.method == method || mh.method == anyMethod {
				m.handler, m.ok = mh.handler, true
				break
			}
		}
		return m, nil
	}
	return match[H]{}, nil
}

func (r *route[H]) matches(segs []string) (map[string]string, bool) {
	var params map[string]string
	capture := func(name, value string) {
		if params == nil {
			params = map[string]string{}
		}
		params[name] = value
	}
	for i, p := range r.segments {
		if rest, ok := strings.CutSuffix(p, "...}"); ok && strings.HasPrefix(p, "{") && i == len(r.segments)-1 {
			if i >= len(segs) {
				return nil, false
			}
			capture(rest[1:], strings.Join(segs[i:], "/"))
			return params, true
		}
		if i >= len(segs) {
			return nil, false
		}
		if strings.HasPrefix(p, "{") && strings.HasSuffix(p, "}") {
			if segs[i] == "" {
				return nil, false
			}
			capture(p[1:len(p)-1], segs[i])
			continue
		}
		if p != segs[i] {
			return nil, false
		}
	}
	return params, len(segs) == len(r.segments)
}

// methodNotAllowed is the 405 of a route, with its Allow list.
func methodNotAllowed(allow string) *Problem {
	p := *problemMethod
	p.allow = allow
	return &p
}

// isSafe reports whether a method only reads.
func isSafe(method string) bool { return method == http.MethodGet || method == http.MethodHead }

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
// matches any one non-empty segment and "{name...}" (last only) the rest,
// one or more segments, empty ones too. Routes are tried in order; the
// first whose pattern matches decides, whether or not it takes the method.
type table[H any] struct {
	routes []route[H]
	// prefix is what every route's path starts with: a path read in place
	// that lacks it matches none, at one comparison (an app's site serves
	// only paths below /_portalgate/).
	prefix string
}

// route is one pattern and its handlers by method, in the order Allow
// lists them. The method "*" takes every method.
type route[H any] struct {
	pattern  string
	segments []segment
	// literal is the pattern up to its first capture, with the "/" before
	// it (all of the pattern when it captures nothing), and tail the
	// segments from that capture on.
	literal string
	tail    []segment
	// captures are the names of the pattern's captures, in order.
	captures []string
	methods  []methodHandler[H]
	allow    string
}

// A segment is one part of a pattern between slashes.
type segment struct {
	kind segmentKind
	// text is the literal, or the name of the capture.
	text string
}

type segmentKind uint8

const (
	literalSegment segmentKind = iota
	oneSegment                 // {name}
	restSegments               // {name...}, last only
)

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
		r := newRoute[H](pattern)
		if len(t.routes) == 0 {
			t.prefix = r.literal
		}
		for !strings.HasPrefix(r.literal, t.prefix) {
			t.prefix = t.prefix[:len(t.prefix)-1]
		}
		t.routes = append(t.routes, r)
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

// newRoute reads pattern into its segments.
func newRoute[H any](pattern string) route[H] {
	parts := strings.Split(pattern, "/")
	r := route[H]{pattern: pattern, literal: pattern, segments: make([]segment, len(parts))}
	offset := 0
	for i, p := range parts {
		s := segment{literalSegment, p}
		if name, ok := strings.CutPrefix(p, "{"); ok {
			if rest, ok := strings.CutSuffix(name, "...}"); ok && i == len(parts)-1 {
				s = segment{restSegments, rest}
			} else if one, ok := strings.CutSuffix(name, "}"); ok {
				s = segment{oneSegment, one}
			}
		}
		r.segments[i] = s
		if s.kind == literalSegment {
			offset += len(p) + len("/")
			continue
		}
		if r.tail == nil {
			r.literal, r.tail = pattern[:offset], r.segments[i:]
		}
		r.captures = append(r.captures, s.text)
	}
	return r
}

// match is the outcome of a lookup.
type match[H any] struct {
	handler H
	hit     routeHit
	// found is false when no pattern matches (404); found is true but ok
	// false when the route does not take the method (405).
	found, ok bool
}

// routeHit is what a handler learns of the route that matched: the values
// its pattern captured, by name (nil when it captures none), and the
// methods it takes, as its Allow header lists them.
type routeHit struct {
	params map[string]string
	allow  string
}

// lookup finds the route for method and path. With unescape, path is an
// escaped path and every segment is unescaped once before it is compared
// or captured (an id may hold "/" or "%"); it fails when one is not validly
// escaped. Without, the path is read in place: a path that no route
// matches costs no allocation.
func (t *table[H]) lookup(method, path string, unescape bool) (match[H], error) {
	var p pathSegments
	if !unescape && !strings.HasPrefix(path, t.prefix) {
		return match[H]{}, nil
	}
	if unescape {
		var err error
		if p, err = unescapeSegments(path); err != nil {
			return match[H]{}, err
		}
	}
	for i := range t.routes {
		r := &t.routes[i]
		var params map[string]string
		ok := false
		// Read in place, a path's first segments are the pattern's literal
		// ones exactly when it starts with them and the "/" after them: most
		// routes are passed over at one comparison of strings.
		switch {
		case unescape:
			params, ok = r.matches(r.segments, p)
		case r.tail == nil:
			ok = path == r.literal
		case strings.HasPrefix(path, r.literal):
			params, ok = r.matches(r.tail, pathSegments{path: path[len(r.literal):]})
		}
		if !ok {
			continue
		}
		m := match[H]{hit: routeHit{params: params, allow: r.allow}, found: true}
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

// matches reports whether the segments p reads fit pattern, the route's
// segments or its tail, with the values of the route's captures.
func (r *route[H]) matches(pattern []segment, p pathSegments) (map[string]string, bool) {
	// The values wait here until the whole pattern has matched, so a path
	// that fails late fills no map.
	var buf [4]string
	values := buf[:0]
	for _, s := range pattern {
		var v string
		var ok bool
		if s.kind == restSegments {
			v, ok = p.rest()
		} else {
			v, ok = p.next()
		}
		switch {
		case !ok:
			return nil, false
		case s.kind == literalSegment:
			if v != s.text {
				return nil, false
			}
		case s.kind == oneSegment && v == "":
			return nil, false
		default:
			values = append(values, v)
		}
	}
	if !p.done() {
		return nil, false
	}
	if len(values) == 0 {
		return nil, true
	}
	params := make(map[string]string, len(values))
	for i, v := range values {
		params[r.captures[i]] = v
	}
	return params, true
}

// pathSegments reads a path's segments in order: from the path itself,
// without splitting it, or from a list of its segments unescaped.
type pathSegments struct {
	// path is what is left to read; once its last segment is read, last
	// is true ("" is still one empty segment).
	path string
	last bool
	// With unescaped, the segments are read from list instead, each
	// unescaped once.
	unescaped bool
	list      []string
}

// unescapeSegments splits an escaped path into its segments, unescaped.
func unescapeSegments(path string) (pathSegments, error) {
	segs := strings.Split(path, "/")
	for i, s := range segs {
		var err error
		if segs[i], err = url.PathUnescape(s); err != nil {
			return pathSegments{}, err
		}
	}
	return pathSegments{unescaped: true, list: segs}, nil
}

// next reads one segment; ok is false when none is left.
func (p *pathSegments) next() (seg string, ok bool) {
	if p.unescaped {
		if len(p.list) == 0 {
			return "", false
		}
		seg, p.list = p.list[0], p.list[1:]
		return seg, true
	}
	if p.last {
		return "", false
	}
	seg, p.path, ok = strings.Cut(p.path, "/")
	p.last = !ok
	return seg, true
}

// rest reads every segment left, joined by "/"; ok is false when none is.
func (p *pathSegments) rest() (segs string, ok bool) {
	if p.unescaped {
		if len(p.list) == 0 {
			return "", false
		}
		segs, p.list = strings.Join(p.list, "/"), nil
		return segs, true
	}
	if p.last {
		return "", false
	}
	segs, p.path, p.last = p.path, "", true
	return segs, true
}

// done reports whether every segment has been read.
func (p *pathSegments) done() bool {
	if p.unescaped {
		return len(p.list) == 0
	}
	return p.last
}

// methodNotAllowed is the 405 of a route, with its Allow list.
func methodNotAllowed(allow string) *Problem {
	p := *problemMethod
	p.allow = allow
	return &p
}

// isSafe reports whether a method only reads.
func isSafe(method string) bool { return method == http.MethodGet || method == http.MethodHead }

// Package tenant resolves a request's host to the sub-account (tenant)
// whose portal or app it is. An agency's sub-accounts each have their own
// portal host (a custom domain, a CNAME to the platform) and app hosts;
// one gateway serves them all, and a host resolves to exactly one tenant
// and app, or to none.
//
// The registry is read on every gated request: a lookup reads an immutable
// snapshot without a lock, and a host already in its canonical spelling
// (lower case, no port, no trailing dot) is found without an allocation.
// Changes (a tenant added, changed or removed) build a new snapshot.
package tenant

import (
	"errors"
	"fmt"
	"maps"
	"net"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"golang.org/x/net/idna"
)

// PortalApp is the app name of a tenant's portal host.
const PortalApp = "portal"

// Tenant is one sub-account: its id (the location id), its name, and the
// hosts of its portal and apps, as Normalize spells them.
type Tenant struct {
	ID   string
	Name string
	// Portal is the host of the tenant's portal.
	Portal string
	// Apps are the hosts of its apps, by app name.
	Apps map[string]string
	// Value is what the registry's user serves the tenant with: a lookup
	// hands it back with the tenant, without a second map.
	Value any
}

// Host is what a host resolves to: the tenant, and which of its sites it
// is (PortalApp, or an app's name).
type Host struct {
	Tenant *Tenant
	App    string
}

// Registry maps hosts to tenants. Its methods are safe for concurrent use;
// Lookup never waits for a change.
type Registry struct {
	snap atomic.Pointer[snapshot]
	// mu orders changes: each builds on the snapshot before it.
	mu sync.Mutex
}

type snapshot struct {
	hosts   map[string]Host
	tenants map[string]*Tenant
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry {
	r := &Registry{}
	r.snap.Store(&snapshot{hosts: map[string]Host{}, tenants: map[string]*Tenant{}})
	return r
}

// Lookup resolves a request's host (Request.Host: a name, perhaps with a
// port) to its tenant and app.
func (r *Registry) Lookup(host string) (Host, bool) {
	s := r.snap.Load()
	if h, ok := s.hosts[host]; ok {
		return h, true
	}
	if canonical(host) {
		return Host{}, false
	}
	if name, ok := withoutPort(host); ok && canonical(name) {
		// host:port, the name canonical: found without an allocation.
		h, ok := s.hosts[name]
		return h, ok
	}
	name, err := Normalize(host)
	if err != nil {
		return Host{}, false
	}
	h, ok := s.hosts[name]
	return h, ok
}

// Tenant returns the tenant with id.
func (r *Registry) Tenant(id string) (*Tenant, bool) {
	t, ok := r.snap.Load().tenants[id]
	return t, ok
}

// All are the tenants the registry holds, of one snapshot, by id.
func (r *Registry) All() []*Tenant {
	s := r.snap.Load()
	out := make([]*Tenant, 0, len(s.tenants))
	for _, id := range slices.Sorted(maps.Keys(s.tenants)) {
		out = append(out, s.tenants[id])
	}
	return out
}

// Len is how many tenants the registry holds.
func (r *Registry) Len() int { return len(r.snap.Load().tenants) }

// ErrHostTaken means a host is another tenant's already: one host is one
// tenant's site, so no tenant can take over another's.
var ErrHostTaken = errors.New("the host is another tenant's")

// Check reports whether Put would take t now: its hosts valid, and none
// another tenant's.
func (r *Registry) Check(t Tenant) error {
	taken, err := r.takenHosts(t)
	if err != nil {
		return err
	}
	for name, held := range taken {
		return fmt.Errorf("%w: %s is a host of tenant %s", ErrHostTaken, name, held.ID)
	}
	return nil
}

// takenHosts are the hosts of t's that another tenant holds, and who
// holds each.
func (r *Registry) takenHosts(t Tenant) (map[string]*Tenant, error) {
	mine := map[string]Host{}
	if _, err := prepare(t, mine); err != nil {
		return nil, err
	}
	old := r.snap.Load()
	taken := map[string]*Tenant{}
	for name := range mine {
		if held, ok := old.hosts[name]; ok && held.Tenant.ID != t.ID {
			taken[name] = held.Tenant
		}
	}
	return taken, nil
}

// Holders are the tenants other than t that hold a host of t's.
func (r *Registry) Holders(t Tenant) []*Tenant {
	taken, _ := r.takenHosts(t)
	var out []*Tenant
	for _, held := range taken {
		if !slices.Contains(out, held) {
			out = append(out, held)
		}
	}
	return out
}

// Put adds t, or replaces the tenant with its id, with its hosts
// normalised. It refuses a host that another tenant holds, or that t
// names twice.
func (r *Registry) Put(t Tenant) error { return r.PutAll([]Tenant{t}) }

// PutAll is Put of many tenants in one change (loading a store's tenants
// at start): all of them, or none when one is refused.
func (r *Registry) PutAll(ts []Tenant) error {
	ids := make(map[string]bool, len(ts))
	mine := map[string]Host{}
	news := make([]*Tenant, 0, len(ts))
	for _, t := range ts {
		if ids[t.ID] {
			return fmt.Errorf("tenant %s is given twice", t.ID)
		}
		ids[t.ID] = true
		nt, err := prepare(t, mine)
		if err != nil {
			return err
		}
		news = append(news, nt)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	old := r.snap.Load()
	for name, h := range mine {
		if held, taken := old.hosts[name]; taken && held.Tenant.ID != h.Tenant.ID && !ids[held.Tenant.ID] {
			return fmt.Errorf("%w: %s is a host of tenant %s", ErrHostTaken, name, held.Tenant.ID)
		}
	}
	next := &snapshot{hosts: make(map[string]Host, len(old.hosts)+len(mine)), tenants: maps.Clone(old.tenants)}
	for name, h := range old.hosts {
		if !ids[h.Tenant.ID] {
			next.hosts[name] = h
		}
	}
	maps.Copy(next.hosts, mine)
	for _, nt := range news {
		next.tenants[nt.ID] = nt
	}
	r.snap.Store(next)
	return nil
}

// prepare checks t and spells its hosts as Normalize does, into hosts
// (shared by the tenants of one change, so that no two of them hold one).
func prepare(t Tenant, hosts map[string]Host) (*Tenant, error) {
	if !validID.MatchString(t.ID) {
		return nil, fmt.Errorf("tenant id %q must be letters, digits, dashes and underscores, at most 64", t.ID)
	}
	nt := &Tenant{ID: t.ID, Name: t.Name, Apps: make(map[string]string, len(t.Apps)), Value: t.Value}
	add := func(raw, app string) (string, error) {
		name, err := Normalize(raw)
		if err != nil {
			return "", fmt.Errorf("tenant %s, %s: %w", t.ID, app, err)
		}
		if other, dup := hosts[name]; dup {
			if other.Tenant.ID != t.ID {
				return "", fmt.Errorf("%w: %s is a host of tenant %s", ErrHostTaken, name, other.Tenant.ID)
			}
			return "", fmt.Errorf("tenant %s: %s and %s have one host, %s", t.ID, other.App, app, name)
		}
		hosts[name] = Host{Tenant: nt, App: app}
		return name, nil
	}
	if t.Portal == "" {
		return nil, fmt.Errorf("tenant %s needs the host of its portal", t.ID)
	}
	var err error
	if nt.Portal, err = add(t.Portal, PortalApp); err != nil {
		return nil, err
	}
	for app, raw := range t.Apps {
		if app == PortalApp || !validApp.MatchString(app) {
			return nil, fmt.Errorf("tenant %s: app name %q must be lowercase letters, digits and dashes, and not %q", t.ID, app, PortalApp)
		}
		if nt.Apps[app], err = add(raw, app); err != nil {
			return nil, err
		}
	}
	return nt, nil
}

// Remove forgets the tenant with id and its hosts; false when there was
// none.
func (r *Registry) Remove(id string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	old := r.snap.Load()
	if _, ok := old.tenants[id]; !ok {
		return false
	}
	next := &snapshot{hosts: make(map[string]Host, len(old.hosts)), tenants: maps.Clone(old.tenants)}
	for name, h := range old.hosts {
		if h.Tenant.ID != id {
			next.hosts[name] = h
		}
	}
	delete(next.tenants, id)
	r.snap.Store(next)
	return true
}

var (
	validID  = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)
	validApp = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)
)

// withoutPort is host without a :port after a name (not an IPv6
// address), if it has one.
func withoutPort(host string) (string, bool) {
	i := strings.LastIndexByte(host, ':')
	if i <= 0 || i == len(host)-1 || strings.IndexByte(host[:i], ':') >= 0 || host[0] == '[' {
		return "", false
	}
	for _, c := range []byte(host[i+1:]) {
		if c < '0' || c > '9' {
			return "", false
		}
	}
	return host[:i], true
}

// canonical reports whether host is spelled as Normalize spells a name: a
// lookup of one that is not in the map needs no second try.
func canonical(host string) bool {
	if host == "" || host[len(host)-1] == '.' {
		return false
	}
	for i := 0; i < len(host); i++ {
		c := host[i]
		if c >= 0x80 || ('A' <= c && c <= 'Z') || c == ':' || c == '[' {
			return false
		}
	}
	return true
}

// profile is IDNA's lookup profile: a host as a browser resolves it
// (UTS #46 mapping, so upper case and full-width forms fold), in its
// ASCII (punycode) form.
var profile = idna.New(idna.MapForLookup(), idna.BidiRule(), idna.StrictDomainName(true), idna.VerifyDNSLength(true))

// Normalize spells a host name one way: without a port or a trailing dot,
// in lower case, an internationalised name in its punycode form. An IP
// address, or anything that is not a host name, is an error: tenants are
// found by name.
func Normalize(host string) (string, error) {
	name := host
	if h, _, err := net.SplitHostPort(host); err == nil {
		name = h
	}
	name = strings.TrimSuffix(name, ".")
	if name == "" || net.ParseIP(strings.Trim(name, "[]")) != nil {
		return "", fmt.Errorf("%q is not a host name", host)
	}
	ascii, err := profile.ToASCII(name)
	if err != nil {
		return "", fmt.Errorf("%q is not a host name: %w", host, err)
	}
	return ascii, nil
}

package tenant

import (
	"fmt"
	"slices"
	"strings"
)

// Pattern is an operator's host pattern, such as
// {app}.{tenant}.portals.agency.example: the hosts of every tenant's sites
// that have none of their own, one label naming the app (none: the portal)
// and one the tenant. The other labels are literal. A pattern fills in
// hosts when a tenant is put: every host the registry holds is then found
// by one map lookup.
type Pattern struct {
	labels []string
	// app and tenant are the indexes of their labels; app is -1 when the
	// pattern names portals.
	app, tenant int
}

// ParsePattern reads a host pattern; it must have a {tenant} label, at
// most one {app}, and literal labels a host name may have.
func ParsePattern(raw string) (Pattern, error) {
	p := Pattern{app: -1, tenant: -1}
	for i, l := range strings.Split(raw, ".") {
		switch l {
		case "{app}":
			if p.app >= 0 {
				return Pattern{}, fmt.Errorf("host pattern %q has {app} twice", raw)
			}
			p.app = i
		case "{tenant}":
			if p.tenant >= 0 {
				return Pattern{}, fmt.Errorf("host pattern %q has {tenant} twice", raw)
			}
			p.tenant = i
		default:
			name, err := Normalize(l + ".example")
			if err != nil || strings.ContainsAny(l, "{}") {
				return Pattern{}, fmt.Errorf("host pattern %q: %q is not a label", raw, l)
			}
			l = strings.TrimSuffix(name, ".example")
		}
		p.labels = append(p.labels, l)
	}
	if p.tenant < 0 || len(p.labels) < 3 {
		return Pattern{}, fmt.Errorf("host pattern %q needs a {tenant} label and a domain of its own, such as {app}.{tenant}.portals.example.com", raw)
	}
	return p, nil
}

// Host is the host the pattern gives app (PortalApp for the portal, whose
// {app} label is "portal") of tenant id, as Normalize spells it; an error
// when the pattern names no such site (an app, in a pattern of portals) or
// the id cannot be a label of a host name (an underscore: give the tenant
// hosts of its own).
func (p Pattern) Host(id, app string) (string, error) {
	switch {
	case app == PortalApp && p.app >= 0:
		// {app}.{tenant}...: the portal is portal.{tenant}...
	case app == PortalApp:
		app = ""
	case p.app < 0:
		return "", fmt.Errorf("host pattern %s names portals only, not app %q: give the app a URL", p, app)
	}
	labels := slices.Clone(p.labels)
	labels[p.tenant] = id
	if p.app >= 0 {
		labels[p.app] = app
	}
	host, err := Normalize(strings.Join(labels, "."))
	if err != nil || strings.Count(host, ".") != len(labels)-1 {
		return "", fmt.Errorf("host pattern %s: tenant %q and app %q name no host: give the tenant hosts of its own", p, id, app)
	}
	return host, nil
}

// NamesApps reports whether the pattern has an {app} label.
func (p Pattern) NamesApps() bool { return p.app >= 0 }

// String is the pattern as written, in lower case.
func (p Pattern) String() string {
	labels := slices.Clone(p.labels)
	labels[p.tenant] = "{tenant}"
	if p.app >= 0 {
		labels[p.app] = "{app}"
	}
	return strings.Join(labels, ".")
}

package tenant

import (
	"fmt"
	"strings"
)

// Pattern is an operator's host pattern, such as
// {app}.{tenant}.portals.agency.example: every tenant's sites without a
// host of their own, one label naming the app (none: the portal) and one
// the tenant. The other labels are literal.
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

// match reads host (as Normalize spells it) against the pattern: the app
// ("" for the portal) and the tenant id it names. It allocates nothing.
func (p Pattern) match(host string) (app, tenantID string, ok bool) {
	rest := host
	for i, want := range p.labels {
		label := rest
		if i < len(p.labels)-1 {
			dot := strings.IndexByte(rest, '.')
			if dot <= 0 {
				return "", "", false
			}
			label, rest = rest[:dot], rest[dot+1:]
		} else if strings.IndexByte(rest, '.') >= 0 || rest == "" {
			return "", "", false
		}
		switch i {
		case p.app:
			app = label
		case p.tenant:
			tenantID = label
		default:
			if label != want {
				return "", "", false
			}
		}
	}
	return app, tenantID, true
}

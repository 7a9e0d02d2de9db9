package session

import "github.com/dgraph-io/ristretto/v2"

// L1 exposes a manager's cache to the tests.
func L1(m *Manager) *ristretto.Cache[string, *Entry] { return m.l1() }

// SameStripe reports whether two session ids are ordered by one stripe.
func (m *Manager) SameStripe(a, b string) bool { return m.stripe(a) == m.stripe(b) }

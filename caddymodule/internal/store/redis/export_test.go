package redis

// TwoStep makes s redeem the way it does on Redis Cluster (two round trips),
// so the conformance suite covers that path on a single server too.
func TwoStep(s *Store) *Store {
	s.cluster = true
	return s
}

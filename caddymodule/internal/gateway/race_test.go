//go:build race

package gateway

// raceEnabled: the race detector's instrumentation allocates, so counts of
// allocations are not checked under it.
const raceEnabled = true

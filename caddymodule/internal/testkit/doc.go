// Package testkit holds the helpers that tests and benchmarks share, one
// package each: clock (a fake clock, so expiry is tested without sleeping),
// freeport (free loopback ports), redistest (a real redis-server),
// browsertest (a real headless Chromium) and web (the HTTP client side of
// the gateway and Caddy tests). Eventually, here, waits for a state that
// crosses goroutines or processes.
package testkit

// Package testkit holds the helpers that tests and benchmarks share, one
// package each: clock (a fake clock, so expiry is tested without sleeping),
// freeport (free loopback ports), redistest (a real redis-server) and
// browsertest (a real headless Chromium).
package testkit

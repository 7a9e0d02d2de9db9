// Package ratelimit counts failures per client (a token bucket each) in
// bounded memory, so guessing links or API keys gets slow and then refused.
package ratelimit

import (
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"golang.org/x/time/rate"
)

// Limiter allows each key `burst` failures at once, refilled at `every`
// per failure. Keys beyond maxKeys evict the least recently seen: an
// attacker spraying addresses costs memory no one else needs.
type Limiter struct {
	buckets *lru.Cache[string, *rate.Limiter]
	limit   rate.Limit
	burst   int
	now     func() time.Time
}

// New returns a limiter of `failures` per `per` for each of up to maxKeys keys.
func New(failures int, per time.Duration, maxKeys int, now func() time.Time) (*Limiter, error) {
	buckets, err := lru.New[string, *rate.Limiter](maxKeys)
	if err != nil {
		return nil, err
	}
	return &Limiter{
		buckets: buckets,
		limit:   rate.Every(per / time.Duration(failures)),
		burst:   failures,
		now:     now,
	}, nil
}

// Blocked reports whether key has no failure left to spend, and how long
// until it has one again.
func (l *Limiter) Blocked(key string) (time.Duration, bool) {
	if l == nil {
		return 0, false
	}
	b, ok := l.buckets.Get(key)
	if !ok {
		return 0, false
	}
	return l.wait(b, l.now())
}

// wait is how long until b has a failure to spend, and whether it has none.
func (l *Limiter) wait(b *rate.Limiter, now time.Time) (time.Duration, bool) {
	tokens := b.TokensAt(now)
	if tokens >= 1 {
		return 0, false
	}
	wait := time.Duration((1 - tokens) / float64(l.limit) * float64(time.Second))
	return max(wait, time.Second), true
}

// Spend spends one of key's failures, in one step: blocked is true, with
// how long until one is left, when none was left to spend.
func (l *Limiter) Spend(key string) (wait time.Duration, blocked bool) {
	if l == nil {
		return 0, false
	}
	b, ok := l.buckets.Get(key)
	if !ok {
		b = rate.NewLimiter(l.limit, l.burst)
		if found, _ := l.buckets.ContainsOrAdd(key, b); found {
			b, _ = l.buckets.Get(key)
		}
	}
	now := l.now()
	if b.AllowN(now, 1) {
		return 0, false
	}
	return l.wait(b, now)
}

// Len is how many keys the limiter tracks.
func (l *Limiter) Len() int { return l.buckets.Len() }

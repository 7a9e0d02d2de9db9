package bench

import (
	"context"
	"net/http"
	"slices"
	"sync"
	"time"
)

// result is what one load run measured.
type result struct {
	requests, failures int
	elapsed            time.Duration
	p50, p99           time.Duration
	// cpu is what the machine worked during the run (cpuMeter), 0 where
	// it cannot tell.
	cpu time.Duration
}

func (r result) rps() float64 { return float64(r.requests-r.failures) / r.elapsed.Seconds() }

// cpuPerRequest is the CPU one request took, in microseconds, or 0.
func (r result) cpuPerRequest() float64 {
	if r.cpu == 0 || r.requests == 0 {
		return 0
	}
	return float64(r.cpu.Microseconds()) / float64(r.requests)
}

// request builds the i-th request of connection c.
type request func(c, i int) *http.Request

// load drives conns keep-alive connections for d, checking every status:
// anything but want counts as a failure (a 303 or 401 is not a success).
// At the end no new request starts and those in flight finish, so none is
// cut off half way (a redemption cut off would still be running in Caddy
// when the next scenario's config loads).
func load(ctx context.Context, conns int, d time.Duration, want int, next request) result {
	type conn struct {
		lat              []time.Duration
		failures, errors int
	}
	per := make([]conn, conns)
	start := time.Now()
	end := start.Add(d)
	var wg sync.WaitGroup
	for c := range conns {
		wg.Go(func() {
			client := &http.Client{
				// A request that hangs is a failure, not the end of the run.
				Timeout:   30 * time.Second,
				Transport: &http.Transport{MaxIdleConnsPerHost: 1, DisableCompression: true},
				CheckRedirect: func(*http.Request, []*http.Request) error {
					return http.ErrUseLastResponse
				},
			}
			defer client.CloseIdleConnections()
			lat := make([]time.Duration, 0, 1<<16)
			for i := 0; ctx.Err() == nil && time.Now().Before(end); i++ {
				req := next(c, i)
				t0 := time.Now()
				res, err := client.Do(req.WithContext(ctx))
				if err != nil {
					if ctx.Err() == nil {
						per[c].errors++
					}
					continue
				}
				drain(res)
				lat = append(lat, time.Since(t0))
				if res.StatusCode != want {
					per[c].failures++
				}
			}
			per[c].lat = lat
		})
	}
	wg.Wait()
	r := result{elapsed: time.Since(start)}
	var all []time.Duration
	for _, c := range per {
		all = append(all, c.lat...)
		// A request that got no answer is one too, and a failure.
		r.requests += c.errors
		r.failures += c.failures + c.errors
	}
	r.requests += len(all)
	if len(all) > 0 {
		slices.Sort(all)
		r.p50 = all[len(all)/2]
		r.p99 = all[len(all)*99/100]
	}
	return r
}

func drain(res *http.Response) {
	buf := make([]byte, 512)
	for {
		if _, err := res.Body.Read(buf); err != nil {
			break
		}
	}
	_ = res.Body.Close()
}

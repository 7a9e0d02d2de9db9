package bench

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"slices"
	"sync/atomic"
	"time"
)

// idleCount is how many idle sessions scenario 11 keeps in the store.
const idleCount = 100_000

// idleSessions is scenario 11: the gate on bolt with 100,000 sessions, every
// request a session L1 has not seen. In the first run each session was last
// used two minutes ago, so its first request also writes the new idle
// deadline (a touch); in the second each was just used, so it is only read;
// the third sends the first run's sessions again, now in L1 (the warm run).
// Every round seeds fresh stores: a touched session is idle no more.
func (e *env) idleSessions(ctx context.Context) error {
	runs := map[string][]result{}
	names := []string{
		"100,000 sessions idle 2 min: read and touch each",
		"100,000 sessions just used: read each",
		"the first run's sessions again (warm)",
	}
	for round := range max(1, e.o.Rounds) {
		idle, idleIDs, err := e.seedBolt(fmt.Sprintf("idle-%d", round), idleCount, 2*time.Minute)
		if err != nil {
			return err
		}
		fresh, freshIDs, err := e.seedBolt(fmt.Sprintf("fresh-%d", round), idleCount, 0)
		if err != nil {
			return err
		}
		if err := e.load("store bolt "+fresh, "64MiB"); err != nil {
			return err
		}
		runtime.GC()
		read, _ := e.eachOnce(ctx, freshIDs)
		if err := e.load("store bolt "+idle, "64MiB"); err != nil {
			return err
		}
		runtime.GC()
		touched, used := e.eachOnce(ctx, idleIDs)
		warm, _ := e.eachOnce(ctx, idleIDs[:used])
		for i, r := range []result{touched, read, warm} {
			runs[names[i]] = append(runs[names[i]], r)
			fmt.Fprintf(e.o.Out, "  round %d: 11. %-52s %8.0f req/s  p50 %-9v p99 %-9v failures %d\n",
				round+1, names[i], r.rps(), r.p50, r.p99, r.failures)
		}
	}
	for _, name := range names {
		e.rows = append(e.rows, row{n: 11, name: medianName(name, runs[name]), r: medianRPS(runs[name]), unit: "req/s"})
	}
	return nil
}

// eachOnce drives the gate with a new session from ids for every request,
// in turn (starting over if the run outlasts them), and says how many of
// ids it sent.
func (e *env) eachOnce(ctx context.Context, ids []string) (result, int) {
	var next atomic.Int64
	r := load(ctx, e.o.Connections, e.o.Duration, http.StatusOK, func(int, int) *http.Request {
		req, _ := http.NewRequest(http.MethodGet, "http://"+e.gate+identityPath, nil)
		req.Header.Set("Cookie", "portalgate-courses="+ids[int(next.Add(1)-1)%len(ids)])
		return req
	})
	return r, min(int(next.Load()), len(ids))
}

// storeDelay is how long scenario 12's store takes to answer.
const storeDelay = 200 * time.Millisecond

// distantStore is scenario 12: the gate on a Redis that answers in 200 ms
// (behind a proxy on loopback that holds every answer back), with 64
// connections on 16 sessions, four connections each. With no L1 every
// request reads the store, and the four requests of a session at a time
// show whether they share a read or queue behind one another; with L1 only
// a session's first request does.
func (e *env) distantStore(ctx context.Context) error {
	if e.redisURL == "" {
		return nil
	}
	addr, stop, err := latent(e.redisAddr, storeDelay)
	if err != nil {
		return err
	}
	defer stop()
	runs := map[string][]result{}
	type setup struct{ name, cache string }
	setups := []setup{
		{"no L1: every request reads the store", "1"},
		{"warm L1", "64MiB"},
	}
	var ids []string
	for round := range max(1, e.o.Rounds) {
		for _, s := range setups {
			if err := e.load("store redis redis://"+addr+"/0", s.cache); err != nil {
				return err
			}
			if ids == nil {
				if ids, err = e.redeemSessions(16); err != nil {
					return err
				}
			}
			runtime.GC()
			// The built-in generator: wrk would send one cookie on every connection.
			r := load(ctx, e.o.Connections, e.o.Duration, http.StatusOK, get("http://"+e.gate+identityPath, ids))
			name := fmt.Sprintf("Redis answering in %v, %s", storeDelay, s.name)
			runs[name] = append(runs[name], r)
			fmt.Fprintf(e.o.Out, "  round %d: 12. %-52s %8.0f req/s  p50 %-9v p99 %-9v failures %d\n",
				round+1, name, r.rps(), r.p50, r.p99, r.failures)
		}
	}
	for _, s := range setups {
		name := fmt.Sprintf("Redis answering in %v, %s", storeDelay, s.name)
		rs := runs[name]
		slices.SortFunc(rs, func(a, b result) int { return cmpFloat(float64(a.p99), float64(b.p99)) })
		if len(rs) > 1 {
			name += fmt.Sprintf(" (median p99 of %d)", len(rs))
		}
		e.rows = append(e.rows, row{n: 12, name: name, r: rs[len(rs)/2], unit: "req/s"})
	}
	return nil
}

// medianRPS is the run of median throughput.
func medianRPS(rs []result) result {
	rs = slices.Clone(rs)
	slices.SortFunc(rs, func(a, b result) int { return cmpFloat(a.rps(), b.rps()) })
	return rs[len(rs)/2]
}

// medianName names a row that is the median of rs.
func medianName(name string, rs []result) string {
	if len(rs) > 1 {
		return fmt.Sprintf("%s (median of %d)", name, len(rs))
	}
	return name
}

// latent forwards loopback TCP connections to target, holding back every
// answer for delay from when target sent it: a server that answers in
// delay, pipelining kept. stop closes the listener and every connection.
func latent(target string, delay time.Duration) (addr string, stop func(), err error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	done := make(chan struct{})
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go forwardLate(c, target, delay, done)
		}
	}()
	return l.Addr().String(), func() { close(done); _ = l.Close() }, nil
}

// forwardLate is one connection of latent: requests go to target at once,
// answers come back delay after target wrote them.
func forwardLate(c net.Conn, target string, delay time.Duration, done <-chan struct{}) {
	u, err := net.Dial("tcp", target)
	if err != nil {
		_ = c.Close()
		return
	}
	go func() {
		<-done
		_ = c.Close()
		_ = u.Close()
	}()
	go func() { _, _ = io.Copy(u, c); _ = u.Close() }()
	type chunk struct {
		due time.Time
		b   []byte
	}
	answers := make(chan chunk, 4096)
	go func() {
		defer c.Close()
		for a := range answers {
			time.Sleep(time.Until(a.due))
			if _, err := c.Write(a.b); err != nil {
				return
			}
		}
	}()
	defer close(answers)
	for {
		buf := make([]byte, 32<<10)
		n, err := u.Read(buf)
		if n > 0 {
			answers <- chunk{time.Now().Add(delay), buf[:n]}
		}
		if err != nil {
			return
		}
	}
}

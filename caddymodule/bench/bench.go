// Package bench measures the gate side by side with the alternatives, all on
// loopback in one process: the upstream alone, bare reverse_proxy, portalgate
// (warm and cold L1, bolt and Redis), forward_auth to an auth service that
// answers at once, redemption throughput, and latency against the number of
// live sessions; and two controls that pass the gate's identity headers to
// the app without it: reverse_proxy setting them itself, and forward_auth
// copying them from the auth service's answer. `go run ./cmd/bench` runs it.
package bench

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	_ "github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile" // the Caddyfile adapter
	_ "github.com/caddyserver/caddy/v2/modules/standard"          // reverse_proxy, forward_auth
	"golang.org/x/sync/errgroup"

	"github.com/portalgate/portalgate/caddymodule" // the gate
	"github.com/portalgate/portalgate/caddymodule/internal/gateway"
	"github.com/portalgate/portalgate/caddymodule/internal/identity"
	"github.com/portalgate/portalgate/caddymodule/internal/link"
	"github.com/portalgate/portalgate/caddymodule/internal/session"
	"github.com/portalgate/portalgate/caddymodule/internal/store"
	"github.com/portalgate/portalgate/caddymodule/internal/store/bolt"
	"github.com/portalgate/portalgate/caddymodule/internal/testkit/freeport"
)

// Options choose what runs and for how long.
type Options struct {
	// Duration of each load run.
	Duration time.Duration
	// Connections of each load run.
	Connections int
	// Scenarios to run, by number (1-16); empty runs all.
	Scenarios map[int]bool
	// SessionCounts for scenario 8.
	SessionCounts []int
	// Rounds repeats the throughput comparisons (scenarios 2, 9, 3, 5 and
	// 10) interleaved (2, 9, 3, 5, 10, 2, 9, …), the session counts of
	// scenario 8 and the runs of 11 and 12 likewise,
	// and takes each one's median, so a ratio is not one run's noise.
	// Default (0 or 1): one run each.
	Rounds int
	// Hog keeps the machine's last CPU busy with a spinning process for the
	// whole run, as other work on a shared machine would.
	Hog bool
	// Out receives the report.
	Out io.Writer
}

const benchKey = "bench-signing-secret-0123456789-abcdef"

type env struct {
	o                             Options
	dir                           string
	upstream, auth                string // host:port
	gate, bare, forward, portal   string // host:port
	admin                         string // host:port of Caddy's admin API
	bareIdentity, forwardIdentity string // host:port of scenarios 9 and 10
	tenantsSite                   string // host:port of scenario 14's catch-all
	redisURL, redisAddr           string
	rows                          []row
	rps                           map[int]float64
	// rounds holds each interleaved scenario's req/s, round by round.
	rounds map[int][]float64
	codec  *link.Codec
	// extraSites are more site blocks for load (scenario 15's).
	extraSites string
	// meter reads the CPU each run took; cpuRounds holds each interleaved
	// scenario's CPU per request, round by round.
	meter     cpuMeter
	cpuRounds map[int][]float64
}

type row struct {
	n    int
	name string
	r    result
	unit string
}

// Run runs the scenarios and writes the report.
func Run(ctx context.Context, o Options) error {
	dir, err := os.MkdirTemp("", "portalgate-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	// Caddy's data (the generated keys, if any) stays in the bench's directory.
	for _, v := range []string{"XDG_DATA_HOME", "XDG_CONFIG_HOME"} {
		if err := os.Setenv(v, dir); err != nil {
			return err
		}
	}
	// Caddy stops before redis-server: no request finds its store gone.
	var stopRedis func()
	defer func() {
		_ = caddy.Stop()
		if stopRedis != nil {
			stopRedis()
		}
	}()

	e := &env{o: o, dir: dir, rps: map[int]float64{}, rounds: map[int][]float64{}, cpuRounds: map[int][]float64{}}
	if o.Hog {
		hog, cpu, err := startHog()
		if err != nil {
			return fmt.Errorf("starting the CPU hog: %w", err)
		}
		defer stopChild(hog)
		e.meter.hog = hog.Process.Pid
		fmt.Fprintf(o.Out, "CPU hog: process %d spins on CPU %d for the whole run (its CPU is not counted in CPU per request)\n", hog.Process.Pid, cpu)
	}
	addrs, err := freeport.Addrs(9)
	if err != nil {
		return err
	}
	e.gate, e.bare, e.forward, e.portal, e.redisAddr = addrs[0], addrs[1], addrs[2], addrs[3], addrs[4]
	e.bareIdentity, e.forwardIdentity, e.admin, e.tenantsSite = addrs[5], addrs[6], addrs[7], addrs[8]
	if e.upstream, err = serve(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, identityPath) {
			for _, h := range benchIdentity {
				if len(r.Header[h.name]) == 0 || r.Header[h.name][0] == "" {
					w.WriteHeader(http.StatusInternalServerError) // a failure: the identity did not come
					return
				}
			}
		}
		_, _ = io.WriteString(w, "ok")
	})); err != nil {
		return err
	}
	if e.auth, err = serve(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/identity" {
			// What the gate would send for the bench's user, for
			// forward_auth to copy to the app (scenario 10).
			for _, h := range benchIdentity {
				w.Header()[h.name] = []string{h.value}
			}
		}
		w.WriteHeader(http.StatusOK)
	})); err != nil {
		return err
	}
	ring, _ := link.NewRing(link.Key{ID: "bench", Secret: []byte(benchKey)})
	e.codec = &link.Codec{Ring: ring, Issuer: "http://" + e.portal, DefaultTTL: 15 * time.Minute, MaxTTL: time.Hour, Now: time.Now}
	if wrkPath() != "" {
		fmt.Fprintln(o.Out, "load: wrk (redemptions: the built-in generator, one link per request)")
	} else {
		fmt.Fprintln(o.Out, "load: the built-in Go generator (install wrk to use it instead)")
	}
	if url, stop, err := startRedis(dir, e.redisAddr); err == nil {
		stopRedis = stop
		e.redisURL = url
	} else {
		fmt.Fprintf(o.Out, "redis-server: %v; scenarios on Redis are skipped\n", err)
	}

	steps := []struct {
		n  int
		fn func(context.Context) error
	}{
		{1, e.upstreamAlone},
		{2, e.proxyOnly(2)}, {9, e.proxyOnly(9)}, {3, e.warmGate}, {4, e.coldGate},
		{5, e.proxyOnly(5)}, {10, e.proxyOnly(10)},
		{6, e.redisGate}, {7, e.redemptions}, {8, e.sessionScaling},
		{11, e.idleSessions}, {12, e.distantStore}, {13, e.signInForms}, {14, e.tenantScale},
		{15, e.oauth2Proxy}, {16, e.paired},
	}
	if o.Rounds > 1 {
		if err := e.interleaved(ctx); err != nil {
			return err
		}
	}
	for _, s := range steps {
		if !e.want(s.n) || o.Rounds > 1 && e.comparison(s.n, nil) != nil {
			continue
		}
		if err := s.fn(ctx); err != nil {
			return fmt.Errorf("scenario %d: %w", s.n, err)
		}
	}
	e.report()
	return nil
}

// want reports whether scenario n is to run.
func (e *env) want(n int) bool { return len(e.o.Scenarios) == 0 || e.o.Scenarios[n] }

// target is where a throughput scenario sends its load: url, with a session
// cookie per connection from ids when the gate is in front.
type target struct {
	n         int
	url, name string
	ids       []string
}

// comparisons are the throughput scenarios that -rounds runs in turn, in
// that order; the gate's (3) uses gateIDs.
func (e *env) comparisons(gateIDs []string) []target {
	return []target{
		{2, "http://" + e.bare + "/", nameBare, nil},
		{9, "http://" + e.bareIdentity + identityPath, nameBareIdentity, nil},
		{3, "http://" + e.gate + identityPath, nameGate, gateIDs},
		{5, "http://" + e.forward + "/", nameForward, nil},
		{10, "http://" + e.forwardIdentity + identityPath, nameForwardIdentity, nil},
	}
}

// comparison returns throughput scenario n, or nil if n is not one.
func (e *env) comparison(n int, gateIDs []string) *target {
	for _, t := range e.comparisons(gateIDs) {
		if t.n == n {
			return &t
		}
	}
	return nil
}

// interleaved runs the wanted throughput comparisons in turn, Rounds times,
// against one loaded config, and keeps each scenario's median run.
func (e *env) interleaved(ctx context.Context) error {
	var targets []target
	for _, t := range e.comparisons(nil) {
		if e.want(t.n) {
			targets = append(targets, t)
		}
	}
	if len(targets) == 0 {
		return nil
	}
	path, ids, err := e.seedBolt("rounds", 1000, 0)
	if err != nil {
		return err
	}
	if err := e.load("store bolt "+path, "64MiB"); err != nil {
		return err
	}
	for i := range targets {
		if targets[i].n == 3 {
			targets[i].ids = ids
		}
	}
	runs := map[int][]result{}
	order := slices.Clone(targets)
	for round := range e.o.Rounds {
		// Each round runs in the order opposite to the one before, so that a
		// drift of the machine's speed within rounds favours none.
		if round > 0 {
			slices.Reverse(order)
		}
		for _, t := range order {
			r := e.drive(ctx, t.url, t.ids)
			runs[t.n] = append(runs[t.n], r)
			e.rounds[t.n] = append(e.rounds[t.n], r.rps())
			e.cpuRounds[t.n] = append(e.cpuRounds[t.n], r.cpuPerRequest())
			fmt.Fprintf(e.o.Out, "  round %d: %2d. %-48s %10.0f req/s  %6.1f µs CPU/request\n", round+1, t.n, t.name, r.rps(), r.cpuPerRequest())
		}
	}
	for _, t := range targets {
		rs := runs[t.n]
		slices.SortFunc(rs, func(a, b result) int { return cmpFloat(a.rps(), b.rps()) })
		med := rs[len(rs)/2]
		name := fmt.Sprintf("%s (median of %d)", t.name, len(rs))
		e.rows = append(e.rows, row{n: t.n, name: name, r: med, unit: "req/s"})
		e.rps[t.n] = med.rps()
	}
	return nil
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func serve(h http.Handler) (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	go func() { _ = (&http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}).Serve(l) }()
	return l.Addr().String(), nil
}

// startRedis starts redis-server on a free port with append-only persistence
// fsynced every second (the usual production setting).
func startRedis(dir, addr string) (string, func(), error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return "", nil, err
	}
	_, port, _ := net.SplitHostPort(addr)
	cmd := exec.Command(bin, "--bind", "127.0.0.1", "--port", port, "--dir", dir, "--appendonly", "yes",
		"--appendfsync", "everysec", "--save", "", "--protected-mode", "no")
	if err := cmd.Start(); err != nil {
		return "", nil, err
	}
	stop := func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }
	if !waitUntil(5*time.Second, func() bool {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			_ = c.Close()
		}
		return err == nil
	}) {
		stop()
		return "", nil, fmt.Errorf("redis-server did not start on %s", addr)
	}
	return "redis://" + addr + "/0", stop, nil
}

// waitUntil asks ready every 50 ms until it says yes or within has passed,
// and reports whether it said yes: the wait for a process the bench
// started to serve.
func waitUntil(within time.Duration, ready func() bool) bool {
	for deadline := time.Now().Add(within); ; time.Sleep(50 * time.Millisecond) {
		if ready() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
	}
}

// load (re)loads Caddy with the gate on the given store and L1 budget.
func (e *env) load(storeLine, cache string) error {
	var headerUp, copyHeaders strings.Builder
	for _, h := range benchIdentity {
		fmt.Fprintf(&headerUp, "\t\theader_up %s %q\n", h.name, h.value)
		copyHeaders.WriteString(" " + h.name)
	}
	cf := fmt.Sprintf(`{
	admin %[12]s
%[3]s}
http://%[1]s {
	portalgate portal
}
http://%[2]s {
	portalgate courses
	reverse_proxy %[4]s
}
http://%[5]s {
	reverse_proxy %[4]s
}
http://%[6]s {
	forward_auth %[7]s {
		uri /auth
	}
	reverse_proxy %[4]s
}
http://%[8]s {
	header Content-Security-Policy "frame-ancestors 'self' http://%[1]s"
	reverse_proxy %[4]s {
%[10]s		header_up -Cookie
	}
}
http://%[9]s {
	header Content-Security-Policy "frame-ancestors 'self' http://%[1]s"
	forward_auth %[7]s {
		uri /identity
		copy_headers%[11]s
	}
	reverse_proxy %[4]s {
		header_up -Cookie
	}
}
`, e.portal, e.gate, globalOptions(e.portal, e.gate, storeLine, cache), e.upstream, e.bare, e.forward, e.auth,
		e.bareIdentity, e.forwardIdentity, headerUp.String(), copyHeaders.String(), e.admin)
	return e.loadCaddyfile(cf + e.extraSites)
}

// globalOptions are the bench's global options but the admin address: the
// portalgate app with its portal at portal, courses at app, on the store
// storeLine ("store bolt <path>") with an L1 of cache.
func globalOptions(portal, app, storeLine, cache string) string {
	return fmt.Sprintf(`	persist_config off
	log {
		level ERROR
	}
	portalgate {
		portal http://%s
		app courses http://%s
		signing_key bench %s
		%s
		cache_max_bytes %s
		rate_limit off
	}
`, portal, app, benchKey, storeLine, cache)
}

// loadCaddyfile (re)loads Caddy with the Caddyfile cf.
func (e *env) loadCaddyfile(cf string) error {
	cfg, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(cf), nil)
	if err != nil {
		return err
	}
	return caddy.Load(cfg, true)
}

// median is the middle of xs (the upper one of an even count).
func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}

// identityPath is where scenarios that pass an identity send their requests:
// the upstream answers 500, a failure, to any that arrives without every
// header of benchIdentity.
const identityPath = "/id/"

// benchIdentity is what the gate sends the app for the bench's first user
// (c_0, a contact of courses), in the order it sets them: scenarios 9 and
// 10 pass the same headers to the app without the gate.
var benchIdentity = []struct{ name, value string }{
	{"X-Portal-User-Id", "c_0"},
	{"X-Portal-User-Email", "c_0@example.com"},
	{"X-Portal-User-Name", "Bench User"},
	{"X-Portal-User-Type", "contact"},
	{"X-Portal-App", "courses"},
}

// seedBolt writes n sessions for courses into a fresh bolt file, before
// Caddy opens it, and returns the file and the ids. The sessions were last
// used idleFor ago.
func (e *env) seedBolt(name string, n int, idleFor time.Duration) (string, []string, error) {
	path := filepath.Join(e.dir, name+".db")
	st, err := bolt.Open(path, time.Now)
	if err != nil {
		return "", nil, err
	}
	defer st.Close()
	sessions, ids := makeSessions(n, idleFor)
	return path, ids, st.CreateSessions(context.Background(), sessions)
}

func makeSessions(n int, idleFor time.Duration) ([]*store.Session, []string) {
	now := time.Now()
	used := now.Add(-idleFor)
	sessions := make([]*store.Session, n)
	ids := make([]string, n)
	for i := range sessions {
		id, _ := session.NewID()
		ids[i] = id
		sessions[i] = &store.Session{
			ID:   id,
			User: identity.User{ID: fmt.Sprintf("c_%d", i), Email: fmt.Sprintf("c_%d@example.com", i), Name: "Bench User", Type: identity.Contact},
			App:  "courses", CreatedAt: used, ExpiresAt: used.Add(caddymodule.DefaultSessionTTL), IdleAt: used.Add(caddymodule.DefaultSessionIdle),
		}
	}
	return sessions, ids
}

// drive loads url for one run: with wrk when it is installed (one session
// for every connection), else with the built-in generator (a session per
// connection).
func (e *env) drive(ctx context.Context, url string, ids []string) result {
	id := sameSizeCookie
	if len(ids) > 0 {
		id = ids[0]
	}
	return e.driveWith(ctx, url, "portalgate-courses="+id, "", get(url, ids))
}

// driveWith loads url for one run: with wrk when it is installed, sending
// the Cookie line cookie (and host as the Host, when given), else with the
// built-in generator's requests from next.
func (e *env) driveWith(ctx context.Context, url, cookie, host string, next request) (r result) {
	before, ok := e.meter.read()
	defer func() {
		if after, ok2 := e.meter.read(); ok && ok2 {
			r.cpu = after - before
		}
	}()
	if wrkPath() != "" {
		var headers []string
		if host != "" {
			headers = append(headers, "Host: "+host)
		}
		r, err := loadWrk(ctx, e.dir, e.o.Connections, e.o.Duration, http.StatusOK, url, cookie, headers...)
		if err == nil {
			return r
		}
		fmt.Fprintf(e.o.Out, "     (%v; using the built-in load generator)\n", err)
	}
	return load(ctx, e.o.Connections, e.o.Duration, http.StatusOK, next)
}

// alternating runs the sides of a comparison (scenario n) once a round,
// each round in the order opposite to the one before, so that none always
// runs first; it prints each run, adds each side's median run to the
// report, and returns each round's runs, side by side.
func (e *env) alternating(n int, names []string, run func(side int) (result, error)) ([][]result, error) {
	runs := map[string][]result{}
	var rounds [][]result
	order := make([]int, len(names))
	for i := range order {
		order[i] = i
	}
	for round := range max(1, e.o.Rounds) {
		if round > 0 {
			slices.Reverse(order)
		}
		all := make([]result, len(names))
		for _, i := range order {
			r, err := run(i)
			if err != nil {
				return nil, err
			}
			runs[names[i]] = append(runs[names[i]], r)
			all[i] = r
			fmt.Fprintf(e.o.Out, "  round %d: %2d. %-60s %8.0f req/s  %6.1f µs CPU/request  p50 %-9v p99 %-9v failures %d\n",
				round+1, n, names[i], r.rps(), r.cpuPerRequest(), r.p50, r.p99, r.failures)
		}
		rounds = append(rounds, all)
	}
	for _, name := range names {
		e.rows = append(e.rows, row{n: n, name: medianName(name, runs[name]), r: medianRPS(runs[name]), unit: "req/s"})
	}
	return rounds, nil
}

// sideRatios are, for each round of alternating, side a's throughput over
// side b's, and the same from CPU per request (b's CPU per request over
// a's; nil where a run could not tell its CPU).
func sideRatios(rounds [][]result, a, b int) (rps, cpu []float64) {
	for _, r := range rounds {
		rps = append(rps, r[a].rps()/r[b].rps())
		if ca, cb := r[a].cpuPerRequest(), r[b].cpuPerRequest(); ca > 0 && cb > 0 {
			cpu = append(cpu, cb/ca)
		}
	}
	if len(cpu) != len(rounds) {
		cpu = nil
	}
	return rps, cpu
}

// get returns a request builder for GET url, with a session cookie per
// connection when ids are given. Without ids it sends a cookie of the same
// size, so every scenario's requests weigh the same and only the gate differs.
func get(url string, ids []string) request {
	return func(c, _ int) *http.Request {
		req, _ := http.NewRequest(http.MethodGet, url, nil)
		id := sameSizeCookie
		if len(ids) > 0 {
			id = ids[c%len(ids)]
		}
		req.Header.Set("Cookie", "portalgate-courses="+id)
		return req
	}
}

// sameSizeCookie stands in for a session id where no gate reads it.
var sameSizeCookie = strings.Repeat("x", session.IDLen)

// The names of the throughput scenarios, in the table and the rounds.
// Scenario 9 is scenario 2 passing the gate's identity headers (and answer
// header) to the app, set by Caddy itself: what any gateway pays to tell
// the app who is signed in, with no session to look up. Scenario 10 is
// scenario 5 the way forward-auth gateways tell the app who is signed in:
// the auth service answers 200 at once with the identity headers, and
// forward_auth copies them onto the request; like the gate, it keeps the
// session cookie from the app and sets the answer's frame-ancestors.
const (
	nameBare            = "Caddy reverse_proxy"
	nameBareIdentity    = "Caddy reverse_proxy setting the identity headers"
	nameGate            = "portalgate, bolt, warm L1"
	nameForward         = "Caddy forward_auth to an instant 200"
	nameForwardIdentity = "Caddy forward_auth copying the identity"
)

func (e *env) run(ctx context.Context, n int, name, url string, ids []string) {
	r := e.drive(ctx, url, ids)
	e.rows = append(e.rows, row{n: n, name: name, r: r, unit: "req/s"})
	e.rps[n] = r.rps()
	fmt.Fprintf(e.o.Out, "  %2d. %-48s %10.0f req/s  p50 %-9v p99 %-9v failures %d\n", n, name, r.rps(), r.p50, r.p99, r.failures)
}

func (e *env) upstreamAlone(ctx context.Context) error {
	e.run(ctx, 1, "upstream alone", "http://"+e.upstream+"/", nil)
	return nil
}

// proxyOnly runs throughput scenario n without the gate (2, 9, 5 or 10).
func (e *env) proxyOnly(n int) func(context.Context) error {
	return func(ctx context.Context) error {
		if err := e.load("store memory", "64MiB"); err != nil {
			return err
		}
		t := e.comparison(n, nil)
		e.run(ctx, n, t.name, t.url, nil)
		return nil
	}
}

func (e *env) warmGate(ctx context.Context) error {
	path, ids, err := e.seedBolt("warm", 1000, 0)
	if err != nil {
		return err
	}
	if err := e.load("store bolt "+path, "64MiB"); err != nil {
		return err
	}
	t := e.comparison(3, ids)
	e.run(ctx, 3, t.name, t.url, t.ids)
	return nil
}

func (e *env) coldGate(ctx context.Context) error {
	path, ids, err := e.seedBolt("cold", 1000, 0)
	if err != nil {
		return err
	}
	// One byte of L1 holds nothing: every request reads the store.
	if err := e.load("store bolt "+path, "1"); err != nil {
		return err
	}
	e.run(ctx, 4, "portalgate, bolt, cold L1", "http://"+e.gate+identityPath, ids)
	return nil
}

func (e *env) redisGate(ctx context.Context) error {
	if e.redisURL == "" {
		return nil
	}
	if err := e.load("store redis "+e.redisURL, "64MiB"); err != nil {
		return err
	}
	// Sessions through the gate's own redemption: the Redis store is Caddy's.
	ids, err := e.redeemSessions(64)
	if err != nil {
		return err
	}
	e.run(ctx, 6, "portalgate, Redis, warm L1", "http://"+e.gate+identityPath, ids)
	return nil
}

// redeemSessions signs in n users through the gate and returns their ids.
func (e *env) redeemSessions(n int) ([]string, error) {
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	var ids []string
	tokens, err := e.mint(n, func(i int) identity.User {
		return identity.User{ID: fmt.Sprintf("r_%d", i), Email: fmt.Sprintf("r_%d@example.com", i), Name: "Bench User"}
	})
	if err != nil {
		return nil, err
	}
	for _, token := range tokens {
		res, err := client.Get("http://" + e.gate + "/_portalgate/magic?token=" + token)
		if err != nil {
			return nil, err
		}
		drain(res)
		for _, c := range res.Cookies() {
			if c.Name == "portalgate-courses" {
				ids = append(ids, c.Value)
			}
		}
	}
	if len(ids) != n {
		return nil, fmt.Errorf("signed in %d of %d users", len(ids), n)
	}
	return ids, nil
}

// mint signs n one-time links to courses, for user(i), and keeps their
// grants in the running config's store, as the gateway's mint does, many
// at a time: the tokens, in order.
func (e *env) mint(n int, user func(i int) identity.User) ([]string, error) {
	st, err := caddymodule.RunningStore()
	if err != nil {
		return nil, err
	}
	tokens := make([]string, n)
	var next atomic.Int64
	var g errgroup.Group
	for range 64 {
		g.Go(func() error {
			for i := int(next.Add(1) - 1); i < n; i = int(next.Add(1) - 1) {
				l, err := e.codec.Mint(link.Request{App: "courses", User: user(i)})
				if err != nil {
					return err
				}
				if err := st.PutLink(context.Background(), gateway.GrantOf(l)); err != nil {
					return err
				}
				tokens[i] = l.Token
			}
			return nil
		})
	}
	return tokens, g.Wait()
}

// redemptions measures one-time links redeemed per second, concurrently.
func (e *env) redemptions(ctx context.Context) error {
	// The memory store shows the bound: everything a redemption costs but
	// the store (HTTP, token verification, the session, the cookie, the 303).
	stores := []struct{ name, line string }{
		{"memory (bound)", "store memory"},
		{"bolt", "store bolt " + filepath.Join(e.dir, "redeem.db")},
	}
	if e.redisURL != "" {
		stores = append(stores, struct{ name, line string }{"Redis", "store redis " + e.redisURL})
	}
	for _, st := range stores {
		if err := e.load(st.line, "64MiB"); err != nil {
			return err
		}
		// Enough links for the run, signed beforehand: signing is not measured.
		n := 150_000
		if strings.HasPrefix(st.name, "memory") {
			n = 400_000
		}
		tokens, err := e.mint(n, func(i int) identity.User { return identity.User{ID: fmt.Sprintf("u_%d", i)} })
		if err != nil {
			return err
		}
		for i, token := range tokens {
			tokens[i] = "http://" + e.gate + "/_portalgate/magic?token=" + token
		}
		var next atomic.Int64
		r := load(ctx, e.o.Connections, e.o.Duration, http.StatusSeeOther, func(int, int) *http.Request {
			i := next.Add(1) - 1
			req, _ := http.NewRequest(http.MethodGet, tokens[min(int(i), len(tokens)-1)], nil)
			return req
		})
		name := "redemptions, " + st.name
		e.rows = append(e.rows, row{n: 7, name: name, r: r, unit: "links/s"})
		fmt.Fprintf(e.o.Out, "   7. %-48s %10.0f links/s p50 %-9v p99 %-9v failures %d\n", name, r.rps(), r.p50, r.p99, r.failures)
	}
	return nil
}

// sessionScaling is scenario 3 with more and more live sessions in the store.
// Every store is seeded first, then the counts run in turn, Rounds times, and
// each keeps its median-p99 run: the seeding's disk writes and one noisy run
// would otherwise land on whichever count runs next.
func (e *env) sessionScaling(ctx context.Context) error {
	type seeded struct {
		n      int
		path   string
		spread []string
	}
	var stores []seeded
	for _, n := range e.o.SessionCounts {
		start := time.Now()
		path, ids, err := e.seedBolt(fmt.Sprintf("scale-%d", n), n, 0)
		if err != nil {
			return err
		}
		fmt.Fprintf(e.o.Out, "     (seeded %d sessions in %v)\n", n, time.Since(start).Round(time.Millisecond))
		// Each connection holds one session, spread over the whole store.
		spread := make([]string, e.o.Connections)
		for c := range spread {
			spread[c] = ids[(c*len(ids))/len(spread)]
		}
		stores = append(stores, seeded{n, path, spread})
	}
	runs := make([][]result, len(stores))
	for round := range max(1, e.o.Rounds) {
		for i, st := range stores {
			if err := e.load("store bolt "+st.path, "64MiB"); err != nil {
				return err
			}
			// The seeding's and the last run's garbage must not be this
			// run's GC work: collect it now.
			runtime.GC()
			r := e.drive(ctx, "http://"+e.gate+identityPath, st.spread)
			runs[i] = append(runs[i], r)
			fmt.Fprintf(e.o.Out, "  round %d: 8. %-32s %10.0f req/s  p50 %-9v p99 %v\n", round+1,
				fmt.Sprintf("%d sessions", st.n), r.rps(), r.p50, r.p99)
		}
	}
	for i, st := range stores {
		rs := runs[i]
		slices.SortFunc(rs, func(a, b result) int { return cmpFloat(float64(a.p99), float64(b.p99)) })
		name := fmt.Sprintf("%s, %d sessions", nameGate, st.n)
		if len(rs) > 1 {
			name += fmt.Sprintf(" (median p99 of %d)", len(rs))
		}
		e.rows = append(e.rows, row{n: 8, name: name, r: rs[len(rs)/2], unit: "req/s"})
	}
	return nil
}

// withinRounds is the median and the range, in per cent, of num[i] /
// den[i] over the rounds; ok is false without two rounds of both.
func withinRounds(num, den []float64) (med, lo, hi float64, ok bool) {
	if len(num) < 2 || len(num) != len(den) {
		return 0, 0, 0, false
	}
	per := make([]float64, len(num))
	for i := range num {
		per[i] = 100 * num[i] / den[i]
	}
	slices.Sort(per)
	return (per[(len(per)-1)/2] + per[len(per)/2]) / 2, per[0], per[len(per)-1], true
}

func (e *env) report() {
	w := tabwriter.NewWriter(e.o.Out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(e.o.Out, "\n| # | scenario | throughput | p50 | p99 | failures |")
	fmt.Fprintln(e.o.Out, "|---|---|---:|---:|---:|---:|")
	for _, r := range e.rows {
		fmt.Fprintf(e.o.Out, "| %d | %s | %.0f %s | %v | %v | %d |\n", r.n, r.name, r.r.rps(), r.unit,
			r.r.p50.Round(time.Microsecond), r.r.p99.Round(time.Microsecond), r.r.failures)
	}
	_ = w.Flush()
	ratio := func(a, b int) string {
		if e.rps[a] == 0 || e.rps[b] == 0 {
			return "n/a"
		}
		s := fmt.Sprintf("%.1f%%", 100*e.rps[a]/e.rps[b])
		// Over rounds, the ratio within each round as well: the machine's
		// speed drifts between rounds more than within one.
		if med, lo, hi, ok := withinRounds(e.rounds[a], e.rounds[b]); ok {
			s += fmt.Sprintf(" (within a round: median %.1f%%, %.1f–%.1f%%)", med, lo, hi)
		}
		// And the other way round, from the CPU each request took: b's CPU
		// per request over a's, within each round.
		if ca, cb := e.cpuRounds[a], e.cpuRounds[b]; !slices.Contains(ca, 0) && !slices.Contains(cb, 0) {
			if med, lo, hi, ok := withinRounds(cb, ca); ok {
				s += fmt.Sprintf("; from CPU per request: median %.1f%%, %.1f–%.1f%%", med, lo, hi)
			}
		}
		return s
	}
	fmt.Fprintln(e.o.Out)
	fmt.Fprintf(e.o.Out, "scenario 3 / scenario 2 (gate vs bare proxy, target >= 97%%): %s\n", ratio(3, 2))
	fmt.Fprintf(e.o.Out, "scenario 3 / scenario 9 (gate vs a proxy setting the same identity headers): %s\n", ratio(3, 9))
	fmt.Fprintf(e.o.Out, "scenario 9 / scenario 2 (what passing the identity costs a bare proxy): %s\n", ratio(9, 2))
	fmt.Fprintf(e.o.Out, "scenario 3 / scenario 5 (gate vs forward_auth, target >= 150%%): %s\n", ratio(3, 5))
	fmt.Fprintf(e.o.Out, "scenario 3 / scenario 10 (gate vs forward_auth copying the identity): %s\n", ratio(3, 10))
	fmt.Fprintf(e.o.Out, "scenario 2 / scenario 5 (a gate that costs nothing vs forward_auth: the bound of 3 / 5): %s\n", ratio(2, 5))
	fmt.Fprintf(e.o.Out, "scenario 9 / scenario 10 (the same, both passing the identity: the bound of 3 / 10): %s\n", ratio(9, 10))
	fmt.Fprintf(e.o.Out, "scenario 4 / scenario 3 (cold vs warm L1): %s\n", ratio(4, 3))
	fmt.Fprintf(e.o.Out, "scenario 6 / scenario 3 (Redis vs bolt, warm L1): %s\n", ratio(6, 3))
	var first, last *row
	for i := range e.rows {
		if e.rows[i].n == 8 {
			if first == nil {
				first = &e.rows[i]
			}
			last = &e.rows[i]
		}
	}
	if first != nil && last != first {
		fmt.Fprintf(e.o.Out, "p99 %s vs %s (target within 10%%): %v vs %v (%+.0f%%)\n",
			strings.TrimPrefix(last.name, nameGate+", "), strings.TrimPrefix(first.name, nameGate+", "),
			last.r.p99.Round(time.Microsecond), first.r.p99.Round(time.Microsecond),
			100*(float64(last.r.p99)/float64(first.r.p99)-1))
	}
}

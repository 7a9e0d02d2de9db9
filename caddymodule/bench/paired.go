package bench

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/portalgate/portalgate/caddymodule/internal/testkit/freeport"
)

// paired is scenario 16: the gate (scenario 3) and the proxy that sets the
// same identity headers (scenario 9) at the same time, each in a Caddy
// process of its own with an upstream of its own, each loaded by a wrk of
// its own with half the connections. The machine's drifting speed then
// slows both alike, and the ratio of their throughputs is the ratio of
// what a request costs each: the kernel shares the cores fairly between
// the two processes' threads. The same run with a second gate in the
// proxy's place comes first: it measures the method's own error.
func (e *env) paired(ctx context.Context) error {
	if wrkPath() == "" {
		fmt.Fprintln(e.o.Out, "scenario 16 needs wrk (two load generators outside the processes measured); skipped")
		return nil
	}
	gate, err := e.startPairedGate("gate")
	if err != nil {
		return err
	}
	defer stopChild(gate.cmd)
	other, err := e.startPairedGate("other-gate")
	if err != nil {
		return err
	}
	self, err := e.pairedRounds(ctx, gate, other)
	stopChild(other.cmd)
	if err != nil {
		return err
	}
	proxy, err := e.startPairedProxy()
	if err != nil {
		return err
	}
	defer stopChild(proxy.cmd)
	vs, err := e.pairedRounds(ctx, gate, proxy)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.o.Out, "scenario 16: a gate / a second gate, at the same time (the method's own error): median %.3f (rounds: %.3f)\n", median(self), self)
	fmt.Fprintf(e.o.Out, "scenario 16: the gate / the proxy setting the same identity headers, at the same time (target >= 0.99): median %.3f (rounds: %.3f)\n", median(vs), vs)
	return nil
}

// pairedCaddy is one Caddy process of scenario 16 and how to load it.
type pairedCaddy struct {
	name, url, cookie string
	cmd               *exec.Cmd
}

// pairedRounds loads a and b at the same time, once to warm up and then
// Rounds times, and returns a's throughput over b's in each round.
func (e *env) pairedRounds(ctx context.Context, a, b *pairedCaddy) ([]float64, error) {
	var rounds [][]result
	for round := range max(1, e.o.Rounds) + 1 {
		rs, err := e.together(ctx, a, b)
		if err != nil {
			return nil, err
		}
		if round == 0 {
			continue // the warm-up
		}
		rounds = append(rounds, rs)
		for i, c := range []*pairedCaddy{a, b} {
			fmt.Fprintf(e.o.Out, "  round %d: 16. %-58s %8.0f req/s  %6.1f µs CPU/request (the process's)  p50 %-9v p99 %-9v failures %d\n",
				round, c.name, rs[i].rps(), rs[i].cpuPerRequest(), rs[i].p50, rs[i].p99, rs[i].failures)
		}
		for i, c := range []*pairedCaddy{a, b} {
			if rs[i].failures > 0 {
				return nil, fmt.Errorf("%s: %d of %d requests failed", c.name, rs[i].failures, rs[i].requests)
			}
		}
	}
	ratios, cpus := sideRatios(rounds, 0, 1)
	if cpus != nil {
		fmt.Fprintf(e.o.Out, "  CPU per request, %s's over %s's: median %.3f (rounds: %.3f)\n", b.name, a.name, median(cpus), cpus)
	}
	return ratios, nil
}

// together runs one wrk against each of a and b, at the same time, with
// half the connections each.
func (e *env) together(ctx context.Context, a, b *pairedCaddy) ([]result, error) {
	rs := make([]result, 2)
	var errs [2]error
	var before [2]int64
	for i, c := range []*pairedCaddy{a, b} {
		before[i], _ = processTicks(c.cmd.Process.Pid)
	}
	var wg sync.WaitGroup
	for i, c := range []*pairedCaddy{a, b} {
		dir := filepath.Join(e.dir, fmt.Sprintf("wrk-%d", i))
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return rs, err
		}
		wg.Go(func() {
			rs[i], errs[i] = loadWrk(ctx, dir, max(1, e.o.Connections/2), e.o.Duration, http.StatusOK, c.url, c.cookie)
		})
	}
	wg.Wait()
	for i, c := range []*pairedCaddy{a, b} {
		// A process whose CPU /proc cannot tell leaves the run's 0.
		if after, ok := processTicks(c.cmd.Process.Pid); ok && before[i] > 0 {
			rs[i].cpu = time.Duration(after-before[i]) * tick
		}
	}
	for _, err := range errs {
		if err != nil {
			return rs, err
		}
	}
	return rs, nil
}

// startPairedGate starts a Caddy process serving the gate in front of its
// own upstream, on a bolt store holding 1,000 sessions.
func (e *env) startPairedGate(name string) (*pairedCaddy, error) {
	addrs, err := freeport.Addrs(3)
	if err != nil {
		return nil, err
	}
	front, portal, upstream := addrs[0], addrs[1], addrs[2]
	global, ids, err := e.pairedGlobal(name, portal, front)
	if err != nil {
		return nil, err
	}
	cf := fmt.Sprintf(`%s
http://%s {
	portalgate courses
	reverse_proxy %s
}
%s`, global, front, upstream, pairedUpstream(upstream))
	return e.startPaired(name, nameGate+" ("+name+")", cf, front, "portalgate-courses="+ids[0])
}

// startPairedProxy starts a Caddy process serving scenario 9's proxy, which
// sets the gate's identity headers itself, in front of its own upstream.
// The process holds the same portalgate app as a gate's, serving its
// portal only: both processes then hold the same heap, and the garbage
// collector, which works more often the smaller the heap, costs both
// alike (a Caddy without the app spends about a fifth more CPU a request
// here, on a heap of a few MiB).
func (e *env) startPairedProxy() (*pairedCaddy, error) {
	addrs, err := freeport.Addrs(4)
	if err != nil {
		return nil, err
	}
	front, portal, app, upstream := addrs[0], addrs[1], addrs[2], addrs[3]
	global, _, err := e.pairedGlobal("proxy", portal, app)
	if err != nil {
		return nil, err
	}
	var headerUp strings.Builder
	for _, h := range benchIdentity {
		fmt.Fprintf(&headerUp, "\t\theader_up %s %q\n", h.name, h.value)
	}
	cf := fmt.Sprintf(`%s
http://%s {
	header Content-Security-Policy "frame-ancestors 'self' http://%s"
	reverse_proxy %s {
%s		header_up -Cookie
	}
}
%s`, global, front, portal, upstream, headerUp.String(), pairedUpstream(upstream))
	return e.startPaired("proxy", nameBareIdentity, cf, front, "portalgate-courses="+sameSizeCookie)
}

// pairedGlobal is the global options of a scenario 16 Caddy, with the
// portalgate app on a bolt store of its own that holds 1,000 sessions of
// courses (at app), and the portal's site; it returns the sessions' ids.
func (e *env) pairedGlobal(name, portal, app string) (string, []string, error) {
	path, ids, err := e.seedBolt("paired-"+name, 1000, 0)
	if err != nil {
		return "", nil, err
	}
	return fmt.Sprintf(`{
	admin off
%s}
http://%s {
	portalgate portal
}`, globalOptions(portal, app, "store bolt "+path, "64MiB"), portal), ids, nil
}

// pairedUpstream is the site block of a scenario 16 upstream: it answers
// with the user id it was sent, so a check can see the identity arrive.
func pairedUpstream(addr string) string {
	return fmt.Sprintf("http://%s {\n\trespond \"{header.X-Portal-User-Id}\"\n}\n", addr)
}

// startPaired starts a Caddy process with the Caddyfile cf and waits until
// its front answers with the bench user's identity.
func (e *env) startPaired(file, name, cf, front, cookie string) (*pairedCaddy, error) {
	path := filepath.Join(e.dir, file+".Caddyfile")
	if err := os.WriteFile(path, []byte(cf), 0o600); err != nil {
		return nil, err
	}
	cmd, err := startChild(caddyEnv, path)
	if err != nil {
		return nil, err
	}
	c := &pairedCaddy{name: name, url: "http://" + front + identityPath, cookie: cookie, cmd: cmd}
	var got string
	if !waitUntil(20*time.Second, func() bool {
		got, err = identityAt(c.url, cookie)
		return err == nil && got == benchIdentity[0].value
	}) {
		stopChild(cmd)
		return nil, fmt.Errorf("%s did not pass the identity within 20 s: %q, %v", name, got, err)
	}
	return c, nil
}

// identityAt is the user id the upstream behind url was sent.
func identityAt(url, cookie string) (string, error) {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	req.Header.Set("Cookie", cookie)
	res, err := (&http.Client{Timeout: 2 * time.Second}).Do(req)
	if err != nil {
		return "", err
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusOK {
		return "", fmt.Errorf("status %d", res.StatusCode)
	}
	return string(body), err
}

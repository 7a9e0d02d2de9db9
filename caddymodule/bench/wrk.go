package bench

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// wrkScript counts every response whose status is not WANT, and every
// request lost to a socket error, across all of wrk's threads, and prints
// one RESULT line for the harness to read.
const wrkScript = `
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) bad = 0; want = tonumber(os.getenv("WANT") or "200") end
function response(status, headers, body) if status ~= want then bad = bad + 1 end end
function done(summary, latency, requests)
	local b = 0
	for _, t in ipairs(threads) do b = b + t:get("bad") end
	local e = summary.errors
	local lost = e.connect + e.read + e.write + e.timeout
	io.write(string.format("RESULT %d %d %d %d %d\n", summary.requests + lost, b + lost, summary.duration,
		latency:percentile(50), latency:percentile(99)))
end
`

// wrkPath is wrk's path when it is installed.
func wrkPath() string {
	p, err := exec.LookPath("wrk")
	if err != nil {
		return ""
	}
	return p
}

// loadWrk drives url with wrk (a separate process, so the load generator
// does not share Go's scheduler with Caddy), sending cookie on every
// request and counting every status that is not want as a failure.
func loadWrk(ctx context.Context, dir string, conns int, d time.Duration, want int, url, cookie string, headers ...string) (result, error) {
	script := filepath.Join(dir, "status.lua")
	if err := os.WriteFile(script, []byte(wrkScript), 0o600); err != nil {
		return result{}, err
	}
	threads := min(2, conns)
	args := []string{"-t", strconv.Itoa(threads), "-c", strconv.Itoa(conns),
		"-d", fmt.Sprintf("%ds", max(1, int(d.Seconds()))), "-s", script, "-H", "Cookie: " + cookie}
	for _, h := range headers {
		args = append(args, "-H", h)
	}
	cmd := exec.CommandContext(ctx, wrkPath(), append(args, url)...)
	cmd.Env = append(os.Environ(), "WANT="+strconv.Itoa(want))
	out, err := cmd.Output()
	if err != nil {
		return result{}, fmt.Errorf("wrk: %w", err)
	}
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 6 || f[0] != "RESULT" {
			continue
		}
		var n [5]int64
		for i := range n {
			if n[i], err = strconv.ParseInt(f[i+1], 10, 64); err != nil {
				return result{}, fmt.Errorf("wrk: reading %q: %w", sc.Text(), err)
			}
		}
		return result{
			requests: int(n[0]), failures: int(n[1]), elapsed: time.Duration(n[2]) * time.Microsecond,
			p50: time.Duration(n[3]) * time.Microsecond, p99: time.Duration(n[4]) * time.Microsecond,
		}, nil
	}
	return result{}, fmt.Errorf("wrk printed no result:\n%s", out)
}

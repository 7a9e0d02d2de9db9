package redistest

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/portalgate/portalgate/caddymodule/internal/testkit"
)

// MasterName is the name the sentinels monitor their master under.
const MasterName = "portalgate"

// Sentinels are redis-server --sentinel processes watching one master.
type Sentinels struct {
	// Addrs are the sentinels' host:port.
	Addrs []string
	t     testing.TB
}

// StartSentinels starts n sentinels (a quorum of n/2+1) watching master,
// quick to act: a master is down after a second without answers.
func StartSentinels(t testing.TB, master *Server, n int) *Sentinels {
	t.Helper()
	host, port, _ := net.SplitHostPort(master.Addr)
	conf := fmt.Sprintf("sentinel monitor %[1]s %[2]s %[3]s %[4]d\n"+
		"sentinel down-after-milliseconds %[1]s 1000\n"+
		"sentinel failover-timeout %[1]s 10000\n"+
		"sentinel parallel-syncs %[1]s 1\n", MasterName, host, port, n/2+1)
	ss := &Sentinels{t: t}
	for range n {
		ss.Addrs = append(ss.Addrs, start(t, conf).Addr)
	}
	return ss
}

// Master is where the sentinels say the master is, by the first sentinel.
func (ss *Sentinels) Master() string {
	ss.t.Helper()
	c := goredis.NewSentinelClient(&goredis.Options{Addr: ss.Addrs[0]})
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	addr, err := c.GetMasterAddrByName(ctx, MasterName).Result()
	if err != nil {
		ss.t.Fatalf("asking the sentinel for the master: %v", err)
	}
	return net.JoinHostPort(addr[0], addr[1])
}

// Ready waits until the sentinels know each other, the master and its
// replicas, each in step with the master, so a failover can promote one.
func (ss *Sentinels) Ready(replicas int) {
	ss.t.Helper()
	for _, addr := range ss.Addrs {
		ss.ask(addr, "sentinel "+addr+" to know its peers and replicas", func(ctx context.Context, c *goredis.SentinelClient) bool {
			rs, err := c.Replicas(ctx, MasterName).Result()
			others, err2 := c.Sentinels(ctx, MasterName).Result()
			synced := 0
			for _, r := range rs {
				if r["master-link-status"] == "ok" && !strings.Contains(r["flags"], "down") {
					synced++
				}
			}
			return err == nil && err2 == nil && synced >= replicas && len(others) >= len(ss.Addrs)-1
		})
	}
}

// Failover makes the sentinels promote a replica now (SENTINEL FAILOVER),
// and returns once every sentinel names the new master.
func (ss *Sentinels) Failover() (from, to string) {
	ss.t.Helper()
	from = ss.Master()
	// Refused (NOGOODSLAVE, INPROG) while the sentinel's view of the
	// replicas is not fresh enough: asked again until it starts.
	ss.ask(ss.Addrs[0], "SENTINEL FAILOVER to start", func(ctx context.Context, c *goredis.SentinelClient) bool {
		return c.Failover(ctx, MasterName).Err() == nil
	})
	for _, addr := range ss.Addrs {
		ss.ask(addr, "sentinel "+addr+" to name another master than "+from, func(ctx context.Context, c *goredis.SentinelClient) bool {
			a, err := c.GetMasterAddrByName(ctx, MasterName).Result()
			if err == nil && net.JoinHostPort(a[0], a[1]) != from {
				to = net.JoinHostPort(a[0], a[1])
				return true
			}
			return false
		})
	}
	return from, to
}

// ask asks the sentinel at addr until ok says yes.
func (ss *Sentinels) ask(addr, what string, ok func(context.Context, *goredis.SentinelClient) bool) {
	ss.t.Helper()
	c := goredis.NewSentinelClient(&goredis.Options{Addr: addr})
	defer c.Close()
	testkit.Eventually(ss.t, 30*time.Second, what, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		return ok(ctx, c)
	})
}

// Package redistest starts a real redis-server for tests, on a free loopback
// port, with its data in the test's own directory.
package redistest

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/portalgate/portalgate/caddymodule/internal/testkit"
	"github.com/portalgate/portalgate/caddymodule/internal/testkit/freeport"
)

// Server is a redis-server owned by one test.
type Server struct {
	// Addr is host:port.
	Addr string
	t    testing.TB
	bin  string
	dir  string
	cmd  *exec.Cmd
	// conf and args make a server something else than a lone master: a
	// config file (a sentinel's) and more flags (a replica's).
	conf string
	args []string
}

// Start starts redis-server for t and stops it when t ends. Without the
// program the test is skipped, except under CI=true, where a missing
// dependency is a failure.
func Start(t testing.TB) *Server {
	t.Helper()
	return start(t, "")
}

// StartReplica starts a redis-server that replicates master.
func StartReplica(t testing.TB, master *Server) *Server {
	t.Helper()
	host, port, _ := net.SplitHostPort(master.Addr)
	return start(t, "", "--replicaof", host, port)
}

func start(t testing.TB, conf string, args ...string) *Server {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("redis-server is required under CI (bash .ci/test installs it): %v", err)
		}
		t.Skip("redis-server not installed; bash .ci/test installs it")
	}
	addrs, err := freeport.Addrs(1)
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{Addr: addrs[0], t: t, bin: bin, dir: t.TempDir(), args: args}
	if conf != "" {
		// A sentinel rewrites its config file: each keeps its own.
		s.conf = filepath.Join(s.dir, "sentinel.conf")
		if err := os.WriteFile(s.conf, []byte(conf), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	s.Start()
	t.Cleanup(s.Stop)
	return s
}

// Start (re)starts the server on its address with its data directory:
// append-only persistence, so a restart loses nothing.
func (s *Server) Start() {
	s.t.Helper()
	_, port, _ := net.SplitHostPort(s.Addr)
	var args []string
	if s.conf != "" {
		args = append(args, s.conf, "--sentinel")
	}
	args = append(args, "--bind", "127.0.0.1", "--port", port, "--dir", s.dir, "--protected-mode", "no")
	if s.conf == "" {
		args = append(args, "--appendonly", "yes", "--appendfsync", "always", "--save", "",
			"--enable-debug-command", "local")
	}
	s.cmd = exec.Command(s.bin, append(args, s.args...)...)
	s.cmd.Stdout, s.cmd.Stderr = nil, nil
	if err := s.cmd.Start(); err != nil {
		s.t.Fatalf("starting redis-server: %v", err)
	}
	testkit.Eventually(s.t, 10*time.Second, "redis-server to answer on "+s.Addr, s.Answers)
}

// Stop kills the server (as a crash would) and waits for it to exit.
func (s *Server) Stop() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	_ = s.cmd.Wait()
	s.cmd = nil
}

// RestartEmpty kills the server and starts it again without its files, as
// a Redis without persistence comes back from a restart: empty.
func (s *Server) RestartEmpty() {
	s.t.Helper()
	s.Stop()
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		s.t.Fatal(err)
	}
	for _, e := range entries {
		if err := os.RemoveAll(filepath.Join(s.dir, e.Name())); err != nil {
			s.t.Fatal(err)
		}
	}
	s.Start()
}

// Stall makes the server stop for d (DEBUG SLEEP), as a Redis stalls on a
// slow disk or a long command: what clients sent meanwhile runs when it
// wakes, whether or not they still wait for the answer. It returns once a
// PING has gone unanswered for a while: almost surely the stall has begun
// (a test that must know checks what it sees).
func (s *Server) Stall(d time.Duration) {
	s.t.Helper()
	c, err := net.DialTimeout("tcp", s.Addr, time.Second)
	if err != nil {
		s.t.Fatal(err)
	}
	if _, err := fmt.Fprintf(c, "DEBUG SLEEP %.3f\r\n", d.Seconds()); err != nil {
		s.t.Fatal(err)
	}
	go func() {
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(d + time.Minute))
		_, _ = bufio.NewReader(c).ReadString('\n')
	}()
	testkit.Eventually(s.t, 10*time.Second, "redis-server on "+s.Addr+" to stall", func() bool {
		return !s.answers(200 * time.Millisecond)
	})
}

// answers reports whether the server answers a PING within d.
func (s *Server) answers(d time.Duration) bool {
	c, err := net.DialTimeout("tcp", s.Addr, d)
	if err != nil {
		return false
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(d))
	if _, err := fmt.Fprint(c, "PING\r\n"); err != nil {
		return false
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	return err == nil && strings.HasPrefix(line, "+PONG")
}

// Answers reports whether the server answers a PING within a second.
func (s *Server) Answers() bool { return s.answers(time.Second) }

// URL is the server's redis:// URL for database db.
func (s *Server) URL(db int) string { return fmt.Sprintf("redis://%s/%d", s.Addr, db) }

// DataDir is where the server keeps its files.
func (s *Server) DataDir() string { return filepath.Clean(s.dir) }

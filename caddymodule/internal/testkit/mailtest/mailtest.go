// Package mailtest runs Mailpit, a real SMTP server, on free loopback ports
// for a test, and reads what it received through Mailpit's HTTP API.
package mailtest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"go/build"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/portalgate/portalgate/caddymodule/internal/testkit"
	"github.com/portalgate/portalgate/caddymodule/internal/testkit/freeport"
)

// Version is the Mailpit the test command installs.
const Version = "v1.33.1"

// Server is a running Mailpit.
type Server struct {
	// SMTP is the SMTP server's host:port; API the base URL of its HTTP API.
	SMTP, API string
	t         testing.TB
}

// Options change how Mailpit runs.
type Options struct {
	// CertFile and KeyFile, when set, offer STARTTLS with that certificate.
	CertFile, KeyFile string
	// RequireSTARTTLS refuses a client that does not upgrade.
	RequireSTARTTLS bool
	// AllowedRecipients, when set, is a regular expression: any other
	// recipient is refused (550).
	AllowedRecipients string
}

// Start starts Mailpit for t and stops it when t ends. Without the program
// the test is skipped, except under CI=true, where a missing dependency is a
// failure.
func Start(t testing.TB, o Options) *Server {
	t.Helper()
	bin := Binary()
	if bin == "" {
		const how = "go install github.com/axllent/mailpit@" + Version + " (bash .ci/test does)"
		if os.Getenv("CI") != "" {
			t.Fatalf("mailpit is required under CI: %s", how)
		}
		t.Skip("mailpit not installed: " + how)
	}
	dir := t.TempDir()
	// A port chosen free may be taken by another test's server before
	// Mailpit binds it: Mailpit then exits, and starts again on others.
	for attempt := 1; ; attempt++ {
		s, out, ok := start(t, bin, dir, o)
		if ok {
			return s
		}
		if attempt == 5 {
			t.Fatalf("mailpit exited at start, 5 times; the last time: %s", out)
		}
	}
}

// start runs Mailpit once on free ports, and says whether it answers; when
// it exited instead, what it printed.
func start(t testing.TB, bin, dir string, o Options) (*Server, string, bool) {
	t.Helper()
	addrs, err := freeport.Addrs(2)
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{SMTP: addrs[0], API: "http://" + addrs[1], t: t}
	db := filepath.Join(dir, "mailpit-"+addrs[1][len("127.0.0.1:"):]+".db")
	args := []string{"--smtp", addrs[0], "--listen", addrs[1], "--quiet",
		"--database", db, "--smtp-disable-rdns", "--disable-version-check"}
	if o.CertFile != "" {
		args = append(args, "--smtp-tls-cert", o.CertFile, "--smtp-tls-key", o.KeyFile)
	}
	if o.RequireSTARTTLS {
		args = append(args, "--smtp-require-starttls")
	}
	if o.AllowedRecipients != "" {
		args = append(args, "--smtp-allowed-recipients", o.AllowedRecipients)
	}
	cmd := exec.Command(bin, args...)
	var out bytes.Buffer // written by the process's copier until it exits
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting mailpit: %v", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	gone := false
	testkit.Eventually(t, 20*time.Second, "mailpit to answer on "+addrs[1], func() bool {
		select {
		case <-exited:
			gone = true
			return true
		default:
		}
		// Ours, and not another test's on the same port: it names our
		// database.
		res, err := http.Get(s.API + "/api/v1/info")
		if err != nil {
			return false
		}
		defer res.Body.Close()
		var info struct{ Database string }
		return res.StatusCode == http.StatusOK && json.NewDecoder(res.Body).Decode(&info) == nil && info.Database == db
	})
	if gone {
		return nil, out.String(), false
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); <-exited })
	return s, "", true
}

// Binary is the path of the mailpit program: on PATH, or where go install
// puts it.
func Binary() string {
	if p, err := exec.LookPath("mailpit"); err == nil {
		return p
	}
	dir := os.Getenv("GOBIN")
	if dir == "" {
		dir = filepath.Join(build.Default.GOPATH, "bin")
	}
	p := filepath.Join(dir, "mailpit")
	if _, err := os.Stat(p); err != nil { //nolint:gosec // Go's own bin directory, in a test
		return ""
	}
	return p
}

// Host is the SMTP server's host.
func (s *Server) Host() string {
	h, _, _ := net.SplitHostPort(s.SMTP)
	return h
}

// Port is the SMTP server's port.
func (s *Server) Port() int {
	_, p, _ := net.SplitHostPort(s.SMTP)
	n, _ := strconv.Atoi(p)
	return n
}

// Address is a sender or recipient as Mailpit reports it.
type Address struct {
	Name    string `json:"Name"`
	Address string `json:"Address"`
}

// Message is one received message.
type Message struct {
	ID      string    `json:"ID"`
	From    Address   `json:"From"`
	To      []Address `json:"To"`
	Subject string    `json:"Subject"`
	Text    string    `json:"Text"`
	HTML    string    `json:"HTML"`
}

// Messages returns every message received, newest first, with its bodies.
func (s *Server) Messages() []Message {
	s.t.Helper()
	var list struct {
		Messages []Message `json:"messages"`
	}
	s.get("/api/v1/messages?limit=1000", &list)
	for i := range list.Messages {
		s.get("/api/v1/message/"+url.PathEscape(list.Messages[i].ID), &list.Messages[i])
	}
	return list.Messages
}

// To returns the messages received for address, newest first.
func (s *Server) To(address string) []Message {
	s.t.Helper()
	var out []Message
	for _, m := range s.Messages() {
		for _, a := range m.To {
			if a.Address == address {
				out = append(out, m)
				break
			}
		}
	}
	return out
}

// WaitFor waits until n messages for address have come, and returns them,
// newest first.
func (s *Server) WaitFor(address string, n int) []Message {
	s.t.Helper()
	var got []Message
	testkit.Eventually(s.t, 30*time.Second, fmt.Sprintf("%d messages for %s", n, address), func() bool {
		got = s.To(address)
		return len(got) >= n
	})
	return got
}

func (s *Server) get(path string, into any) {
	s.t.Helper()
	res, err := http.Get(s.API + path)
	if err != nil {
		s.t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		s.t.Fatalf("mailpit %s: %s", path, res.Status)
	}
	if err := json.NewDecoder(res.Body).Decode(into); err != nil {
		s.t.Fatalf("mailpit %s: %v", path, err)
	}
}

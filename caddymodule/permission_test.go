package caddymodule

import (
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// On-demand TLS obtains certificates for the hosts of the tenants alone:
// real TLS handshakes (SNI) on loopback against Caddy's internal issuer,
// offline. A tenant added through the API gets its certificate at its
// first handshake; a removed one gets no new one; a name of no tenant
// gets none.
func TestPermission_OnDemandTLSIssuesForTenantHostsOnly(t *testing.T) {
	g := &testCaddy{t: t}
	addrs := freeAddrs(t, 5)
	g.admin, g.portal, g.courses, g.community = addrs[0], addrs[1], addrs[2], addrs[3]
	_, port, _ := net.SplitHostPort(addrs[4])
	g.caddyOptions = "skip_install_trust\n\ton_demand_tls {\n\t\tpermission portalgate\n\t}"
	g.globalExtra = fmt.Sprintf(`store memory
		tenant acme {
			portal https://portal.acme.localhost:%[1]s
			app courses https://courses.acme.localhost:%[1]s
		}`, port)
	g.sites = fmt.Sprintf(`https://:%s {
	bind 127.0.0.1
	tls internal {
		on_demand
	}
	portalgate
}`, port)
	g.start()

	handshake := func(name string) error {
		d := &net.Dialer{Timeout: 10 * time.Second}
		conn, err := tls.DialWithDialer(d, "tcp", addrs[4], &tls.Config{ServerName: name, InsecureSkipVerify: true}) //nolint:gosec // Caddy's internal CA; the name is checked below
		if err != nil {
			return err
		}
		defer conn.Close()
		if leaf := conn.ConnectionState().PeerCertificates[0]; leaf.VerifyHostname(name) != nil {
			return fmt.Errorf("the certificate is for %v, not %s", leaf.DNSNames, name)
		}
		return nil
	}
	for _, name := range []string{"portal.acme.localhost", "COURSES.acme.localhost"} {
		if err := handshake(name); err != nil {
			t.Fatalf("a tenant's host %s: %v", name, err)
		}
	}
	for _, name := range []string{"portal.nobody.localhost", "acme.localhost", "localhost"} {
		if err := handshake(name); err == nil {
			t.Fatalf("a certificate for %s, a host of no tenant", name)
		}
	}
	// Through real Caddy, a Host of another site than the TLS server name
	// is misdirected.
	get := func(serverName, host string) (int, string) {
		tr := &http.Transport{TLSClientConfig: &tls.Config{ServerName: serverName, InsecureSkipVerify: true}} //nolint:gosec // as above
		defer tr.CloseIdleConnections()
		req, _ := http.NewRequest(http.MethodGet, "https://"+addrs[4]+jwksPath, nil)
		req.Host = host
		res, err := tr.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	if status, body := get("courses.acme.localhost", "courses.acme.localhost:"+port); status != http.StatusOK || !strings.Contains(body, `"keys"`) {
		t.Fatalf("acme's courses over TLS: %d %q", status, body)
	}
	if status, _ := get("courses.acme.localhost", "portal.acme.localhost"); status != http.StatusMisdirectedRequest {
		t.Fatalf("courses' server name, the portal's host: %d, want 421", status)
	}
	// A tenant added through the API: certificates at once.
	body := fmt.Sprintf(`{"id":"gamma","portal":"https://portal.gamma.localhost:%[1]s","apps":{"courses":"https://courses.gamma.localhost:%[1]s"}}`, port)
	r := g.send(http.DefaultClient, http.MethodPost, "http://"+g.admin+"/portalgate/tenants", strings.NewReader(body), "Content-Type: application/json", "Origin: http://"+g.admin)
	if r.StatusCode != http.StatusCreated {
		t.Fatalf("adding gamma: %d %s", r.StatusCode, r.Body)
	}
	if err := handshake("portal.gamma.localhost"); err != nil {
		t.Fatalf("an added tenant's host: %v", err)
	}
	// Removed: no new certificate for its hosts.
	r = g.send(http.DefaultClient, http.MethodDelete, "http://"+g.admin+"/portalgate/tenants/gamma", nil, "Origin: http://"+g.admin)
	if r.StatusCode != http.StatusOK {
		t.Fatalf("removing gamma: %d %s", r.StatusCode, r.Body)
	}
	if err := handshake("courses.gamma.localhost"); err == nil {
		t.Fatal("a certificate for a removed tenant's host")
	}
}

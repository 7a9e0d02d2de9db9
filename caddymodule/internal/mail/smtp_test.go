package mail_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/portalgate/portalgate/caddymodule/internal/mail"
	"github.com/portalgate/portalgate/caddymodule/internal/testkit/freeport"
	"github.com/portalgate/portalgate/caddymodule/internal/testkit/mailtest"
)

func sender(t *testing.T, srv *mailtest.Server, mode mail.TLSMode, tc *tls.Config) *mail.SMTP {
	t.Helper()
	s, err := mail.NewSMTP(mail.SMTPConfig{Host: srv.Host(), Port: srv.Port(), From: "Acme Portal <portal@acme.example>", TLS: mode, TLSConfig: tc})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func send(s *mail.SMTP, m mail.Message) error {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	return s.Send(ctx, m)
}

var message = mail.Message{
	ID:      "l1",
	To:      mail.Address{Name: "Ada Lovelace", Email: "ada@example.com"},
	Subject: "Your sign-in link",
	Text:    "Open https://courses.acme.example/_portalgate/magic?t=x\nor type 123456",
	HTML:    "<p>Open <a href=\"https://courses.acme.example/_portalgate/magic?t=x\">this link</a> or type <b>123456</b></p>",
}

func TestSMTP_DeliversTextAndHTMLToARealServer(t *testing.T) {
	t.Parallel()
	srv := mailtest.Start(t, mailtest.Options{})
	if err := send(sender(t, srv, mail.NoTLS, nil), message); err != nil {
		t.Fatal(err)
	}
	got := srv.WaitFor("ada@example.com", 1)[0]
	if got.Subject != message.Subject || got.From.Address != "portal@acme.example" || got.From.Name != "Acme Portal" || got.To[0].Name != "Ada Lovelace" {
		t.Fatalf("received %+v", got)
	}
	if !strings.Contains(got.Text, "type 123456") || !strings.Contains(got.HTML, "<b>123456</b>") {
		t.Fatalf("bodies: %q / %q", got.Text, got.HTML)
	}
}

// selfSigned writes a certificate for 127.0.0.1 and its key, and returns
// their files and a pool that trusts it.
func selfSigned(t *testing.T) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "mail.test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"localhost"},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true, IsCA: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

func TestSMTP_STARTTLSToAServerWithACertificateTheClientTrusts(t *testing.T) {
	t.Parallel()
	cert, key, pool := selfSigned(t)
	srv := mailtest.Start(t, mailtest.Options{CertFile: cert, KeyFile: key, RequireSTARTTLS: true})
	tc := &tls.Config{RootCAs: pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}
	if err := send(sender(t, srv, mail.StartTLS, tc), message); err != nil {
		t.Fatal(err)
	}
	srv.WaitFor("ada@example.com", 1)
}

func TestSMTP_ServerCertificateNobodyTrustsIsRefused(t *testing.T) {
	t.Parallel()
	cert, key, _ := selfSigned(t)
	srv := mailtest.Start(t, mailtest.Options{CertFile: cert, KeyFile: key, RequireSTARTTLS: true})
	// The default: the system's roots, which never signed this certificate.
	err := send(sender(t, srv, mail.StartTLS, nil), message)
	if err == nil {
		t.Fatal("a message went to a server whose certificate nobody trusts")
	}
	if len(srv.Messages()) != 0 {
		t.Fatal("the server received the message")
	}
}

func TestSMTP_StartTLSRequiredButNotOfferedIsRefused(t *testing.T) {
	t.Parallel()
	srv := mailtest.Start(t, mailtest.Options{}) // offers no STARTTLS
	if err := send(sender(t, srv, mail.StartTLS, nil), message); err == nil || mail.IsPermanent(err) {
		t.Fatalf("a server that cannot upgrade, in starttls mode: %v", err)
	}
	if len(srv.Messages()) != 0 {
		t.Fatal("the message went in the clear")
	}
}

func TestSMTP_RefusedRecipientIsPermanent(t *testing.T) {
	t.Parallel()
	srv := mailtest.Start(t, mailtest.Options{AllowedRecipients: "@allowed\\.example$"})
	err := send(sender(t, srv, mail.NoTLS, nil), message)
	if !mail.IsPermanent(err) {
		t.Fatalf("a recipient the server refuses: %v, want a permanent error", err)
	}
}

func TestSMTP_ServerThatIsDownIsATemporaryFailure(t *testing.T) {
	t.Parallel()
	addrs, err := freeport.Addrs(1)
	if err != nil {
		t.Fatal(err)
	}
	host, port, _ := net.SplitHostPort(addrs[0])
	s, err := mail.NewSMTP(mail.SMTPConfig{Host: host, Port: mustAtoi(t, port), From: "portal@acme.example", TLS: mail.NoTLS})
	if err != nil {
		t.Fatal(err)
	}
	if err := send(s, message); err == nil || mail.IsPermanent(err) {
		t.Fatalf("nothing listening: %v, want a temporary error", err)
	}
}

func mustAtoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestNewSMTP_BadSettingsAreRefused(t *testing.T) {
	t.Parallel()
	good := mail.SMTPConfig{Host: "smtp.example", Port: 587, From: "Acme <portal@acme.example>", TLS: mail.StartTLS}
	for name, c := range map[string]func(*mail.SMTPConfig){
		"no host":              func(c *mail.SMTPConfig) { c.Host = "" },
		"port 0":               func(c *mail.SMTPConfig) { c.Port = 0 },
		"from not an address":  func(c *mail.SMTPConfig) { c.From = "Acme Portal" },
		"unknown tls":          func(c *mail.SMTPConfig) { c.TLS = "ssl" },
		"password, no user":    func(c *mail.SMTPConfig) { c.Password = "x" },
		"from header injected": func(c *mail.SMTPConfig) { c.From = "portal@acme.example\r\nBcc: eve@example.com" },
	} {
		cfg := good
		c(&cfg)
		if _, err := mail.NewSMTP(cfg); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := mail.NewSMTP(good); err != nil {
		t.Fatal(err)
	}
}

func TestDescribe_RefusalNamesNoAddress(t *testing.T) {
	t.Parallel()
	srv := mailtest.Start(t, mailtest.Options{AllowedRecipients: "@allowed\\.example$"})
	err := send(sender(t, srv, mail.NoTLS, nil), message)
	if err == nil {
		t.Fatal("the refused recipient was accepted")
	}
	got := mail.Describe(err)
	if strings.Contains(got, "ada@example.com") || strings.Contains(got, "@") || !strings.Contains(got, "permanent") {
		t.Fatalf("Describe(%v) = %q", err, got)
	}
}

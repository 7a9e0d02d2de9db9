package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"time"

	"github.com/portalgate/portalgate/caddymodule/internal/store"
	"github.com/portalgate/portalgate/caddymodule/internal/store/bolt"
)

// signInContacts is how many contacts scenario 13's directory holds: each
// request asks for another, so no address's limit is reached.
const signInContacts = 200_000

// signInForms is scenario 13: the portal's sign-in form, every request a
// contact's address, first with the demo's outbox (mail delivered at once),
// then with an SMTP server that takes connections and never answers: the
// mail queue fills, and the form must answer all the same.
func (e *env) signInForms(ctx context.Context) error {
	path := filepath.Join(e.dir, "signin.db")
	if err := seedContacts(path, signInContacts); err != nil {
		return err
	}
	hole, stop, err := blackHole()
	if err != nil {
		return err
	}
	defer stop()
	host, port, _ := net.SplitHostPort(hole)
	mailers := []struct{ name, line string }{
		{"sign-in form, outbox mailer", "mailer outbox"},
		{"sign-in form, SMTP black-holed, mail queue full", fmt.Sprintf("mailer smtp {\n\t\t\thost %s\n\t\t\tport %s\n\t\t\tfrom portal@bench.example\n\t\t\ttls none\n\t\t}", host, port)},
	}
	var next atomic.Int64
	for _, m := range mailers {
		if err := e.load("store bolt "+path+"\n\t\t"+m.line, "64MiB"); err != nil {
			return err
		}
		forms, err := e.signInPages(e.o.Connections)
		if err != nil {
			return err
		}
		ask := func(c, _ int) *http.Request {
			n := next.Add(1) % signInContacts
			body := url.Values{"csrf": {forms[c].csrf}, "email": {fmt.Sprintf("u%d@example.com", n)}}.Encode()
			req, _ := http.NewRequest(http.MethodPost, "http://"+e.portal+"/_portalgate/signin", strings.NewReader(body))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.Header.Set("Accept", "text/html")
			req.Header.Set("Origin", "http://"+e.portal)
			req.Header.Set("Cookie", forms[c].cookie)
			return req
		}
		full := strings.HasPrefix(m.line, "mailer smtp")
		if full {
			// Fill the mail queue first: its workers hang on the black hole.
			deadline := time.Now().Add(2 * time.Minute)
			for !e.mailQueueFull() {
				if time.Now().After(deadline) {
					return errors.New("the mail queue did not fill")
				}
				load(ctx, e.o.Connections, time.Second, http.StatusOK, ask)
			}
		}
		r := load(ctx, e.o.Connections, e.o.Duration, http.StatusOK, ask)
		if full && !e.mailQueueFull() {
			return errors.New("the mail queue was not full to the end of the run")
		}
		e.rows = append(e.rows, row{n: 13, name: m.name, r: r, unit: "req/s"})
		fmt.Fprintf(e.o.Out, "  13. %-52s %8.0f req/s  p50 %-9v p99 %-9v failures %d\n", m.name, r.rps(), r.p50, r.p99, r.failures)
	}
	return nil
}

// seedContacts writes n contacts (u<i>@example.com) into a fresh bolt file.
func seedContacts(path string, n int) error {
	st, err := bolt.Open(path, time.Now)
	if err != nil {
		return err
	}
	defer st.Close()
	const batch = 1000
	for i := 0; i < n; i += batch {
		cs := make([]store.Contact, 0, batch)
		for j := i; j < min(i+batch, n); j++ {
			cs = append(cs, store.Contact{ID: fmt.Sprintf("u%d", j), Email: fmt.Sprintf("u%d@example.com", j), Name: "Bench Contact"})
		}
		if err := st.PutContacts(context.Background(), cs); err != nil {
			return err
		}
	}
	return nil
}

// signInPage is one browser's sign-in form: its nonce cookie and token.
type signInPage struct{ cookie, csrf string }

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// signInPages opens the sign-in form n times, as n browsers.
func (e *env) signInPages(n int) ([]signInPage, error) {
	pages := make([]signInPage, n)
	for i := range pages {
		res, err := http.Get("http://" + e.portal + "/_portalgate/signin")
		if err != nil {
			return nil, err
		}
		body, _ := io.ReadAll(res.Body)
		_ = res.Body.Close()
		m := csrfField.FindSubmatch(body)
		if res.StatusCode != http.StatusOK || m == nil || len(res.Cookies()) == 0 {
			return nil, fmt.Errorf("the sign-in form: %s", res.Status)
		}
		c := res.Cookies()[0]
		pages[i] = signInPage{cookie: c.Name + "=" + c.Value, csrf: string(m[1])}
	}
	return pages, nil
}

// blackHole is an SMTP server that takes connections and never says a word.
func blackHole() (string, func(), error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	var held []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := l.Accept()
			if err != nil {
				for _, c := range held {
					_ = c.Close()
				}
				return
			}
			held = append(held, c)
		}
	}()
	return l.Addr().String(), func() { _ = l.Close(); <-done }, nil
}

// mailQueueFull asks the admin API's health whether the mail queue is full.
func (e *env) mailQueueFull() bool {
	res, err := http.Get("http://" + e.admin + "/portalgate/health")
	if err != nil {
		return false
	}
	defer res.Body.Close()
	var h struct {
		Mail *struct{ Waiting, Capacity int }
	}
	if json.NewDecoder(res.Body).Decode(&h) != nil || h.Mail == nil {
		return false
	}
	return h.Mail.Waiting >= h.Mail.Capacity
}

package browsertest

import (
	"fmt"
	"html"
	"image/png"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/chromedp/chromedp"
)

// TestBrowser shares one Chromium between its subtests, as a package of
// browser tests would, so the process starts once.
func TestBrowser(t *testing.T) {
	b := Start(t)

	t.Run("ClickSubmitsForm", func(t *testing.T) {
		t.Parallel()
		var posts atomic.Int32
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			switch {
			case r.Method == http.MethodGet && r.URL.Path == "/":
				writeHTML(w, `<form method="post" action="/send"><input name="who" value="ada"><button id="go">Send</button></form>`)
			case r.Method == http.MethodPost && r.URL.Path == "/send":
				if r.PostFormValue("who") == "ada" {
					posts.Add(1)
				}
				writeHTML(w, `<p id="done">sent</p>`)
			default:
				http.NotFound(w, r)
			}
		}))
		t.Cleanup(srv.Close)

		ctx := b.NewContext(t)
		Run(ctx, t,
			chromedp.Navigate(srv.URL+"/"),
			chromedp.Click(chromedp.ID("go")),
			chromedp.WaitVisible(chromedp.ID("done")),
		)
		if n := posts.Load(); n != 1 {
			t.Errorf("server saw %d POSTs of the form, want 1", n)
		}
	})

	t.Run("ContextsDoNotShareCookies", func(t *testing.T) {
		t.Parallel()
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/set" {
				http.SetCookie(w, &http.Cookie{Name: "who", Value: "first", Path: "/"})
			}
			who := "none"
			if c, err := r.Cookie("who"); err == nil {
				who = c.Value
			}
			writeHTML(w, `<p id="who">`+html.EscapeString(who)+`</p>`)
		}))
		t.Cleanup(srv.Close)

		first, second := b.NewContext(t), b.NewContext(t)
		Run(first, t, chromedp.Navigate(srv.URL+"/set"), chromedp.Navigate(srv.URL+"/show"))
		if got := Get(first, t, chromedp.Text(chromedp.ID("who"))); got != "first" {
			t.Fatalf("the context that was given the cookie sent %q, want %q", got, "first")
		}
		Run(second, t, chromedp.Navigate(srv.URL+"/show"))
		if got := Get(second, t, chromedp.Text(chromedp.ID("who"))); got != "none" {
			t.Errorf("a second context sent the first one's cookie: %q", got)
		}
	})

	t.Run("ConsoleErrorsAreLogged", func(t *testing.T) {
		t.Parallel()
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			writeHTML(w, `<p id="p">page</p><script>console.log("quiet"); console.error("bad", 42); throw new Error("kaboom");</script>`)
		}))
		t.Cleanup(srv.Close)

		// Registered first, this check runs after the context's cleanup
		// has reported.
		rec := &logRecorder{TB: t}
		t.Cleanup(func() {
			got := rec.text()
			for _, want := range []string{"console.error: bad 42", "kaboom"} {
				if !strings.Contains(got, want) {
					t.Errorf("logged %q, want it to contain %q", got, want)
				}
			}
			if strings.Contains(got, "quiet") {
				t.Errorf("logged %q, which has a console.log", got)
			}
		})
		ctx := b.NewContext(rec)
		Run(ctx, t, chromedp.Navigate(srv.URL+"/"), chromedp.WaitVisible(chromedp.ID("p")))
	})

	t.Run("ScreenshotIsWholePagePNG", func(t *testing.T) {
		t.Parallel()
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			writeHTML(w, `<body style="margin:0"><div style="height:2000px">tall</div></body>`)
		}))
		t.Cleanup(srv.Close)

		ctx := b.NewContext(t)
		Run(ctx, t, chromedp.Navigate(srv.URL+"/"))
		path := filepath.Join(t.TempDir(), "page.png")
		Screenshot(ctx, t, path)
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		cfg, err := png.DecodeConfig(f)
		if err != nil {
			t.Fatalf("screenshot is not a PNG: %v", err)
		}
		if cfg.Height < 2000 {
			t.Errorf("screenshot is %dx%d, want the whole 2000px page", cfg.Width, cfg.Height)
		}
	})
}

// writeHTML answers with a page. The type is set because Go's sniffing
// takes a page that starts with, say, <form> for plain text.
func writeHTML(w http.ResponseWriter, page string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = io.WriteString(w, page)
}

// logRecorder is a testing.TB that keeps what is logged to it.
type logRecorder struct {
	testing.TB
	mu   sync.Mutex
	logs []string
}

func (r *logRecorder) Logf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.logs = append(r.logs, fmt.Sprintf(format, args...))
}

func (r *logRecorder) text() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.Join(r.logs, "\n")
}

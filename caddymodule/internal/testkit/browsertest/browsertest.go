// Package browsertest starts a real headless Chromium for tests, through
// chromedp, with its profile in the test's own directory.
package browsertest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// ActionTimeout bounds each action of Run and Get, so that a selector that
// never matches fails the test at its own line rather than at go test's
// timeout.
const ActionTimeout = 10 * time.Second

// closeTimeout bounds the graceful close of the browser at cleanup; after it
// the process is killed.
const closeTimeout = 10 * time.Second

// Browser is a headless Chromium owned by one test.
type Browser struct {
	// ctx is the chromedp context of the browser's first tab; contexts of
	// NewContext derive from it and share the process.
	ctx context.Context
}

// Start starts Chromium for t and stops it when t ends. Without the program
// the test is skipped, except under CI=true, where a missing dependency is a
// failure.
func Start(t testing.TB) *Browser {
	t.Helper()
	bin, err := lookChromium()
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("chromium is required under CI (bash .ci/test installs it): %v", err)
		}
		t.Skip("chromium not installed; bash .ci/test installs it")
	}
	dir := t.TempDir()
	// The flags are spelled out rather than taken from
	// chromedp.DefaultExecAllocatorOptions, so that what the tests run
	// against is visible here and does not move with chromedp.
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(bin),
		chromedp.Flag("headless", true),
		// CI runs as root, where Chromium refuses its sandbox; the pages
		// are our own test servers on loopback.
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		// No requests of Chromium's own (component updates, sync,
		// background fetches): the tests run offline, and a test server
		// sees only what its page asks for.
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(filepath.Join(dir, "profile")),
		chromedp.WindowSize(1280, 900),
		// Chromium's crash handler keeps its database in the default
		// profile's place, $XDG_CONFIG_HOME/chromium, whatever
		// --user-data-dir says; this keeps it in the test's directory too.
		chromedp.Env("XDG_CONFIG_HOME="+filepath.Join(dir, "config")),
	)
	ctx, cancel := chromedp.NewContext(allocCtx)
	t.Cleanup(func() {
		// Close gracefully, so Chromium ends its own child processes,
		// then cancel, which kills what is left and waits for it.
		cctx, ccancel := context.WithTimeout(ctx, closeTimeout)
		if err := chromedp.Cancel(cctx); err != nil && !errors.Is(err, context.Canceled) {
			t.Logf("closing chromium: %v", err)
		}
		ccancel()
		cancel()
		cancelAlloc()
	})
	// The first run starts the process; it is bound to ctx, which has no
	// deadline, so a later action's timeout cannot end the browser.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("starting %s: %v", bin, err)
	}
	return &Browser{ctx: ctx}
}

// lookChromium finds Debian's chromium, or the name other distributions
// give it.
func lookChromium() (string, error) {
	bin, err := exec.LookPath("chromium")
	if err == nil {
		return bin, nil
	}
	if bin, err2 := exec.LookPath("chromium-browser"); err2 == nil {
		return bin, nil
	}
	return "", err
}

// NewContext opens a tab in a fresh browser context (like an incognito
// window: its own cookies and storage) and returns the chromedp context that
// drives it. The tab closes when t ends, and the console errors and uncaught
// exceptions of its pages are then logged to t.
func (b *Browser) NewContext(t testing.TB) context.Context {
	t.Helper()
	ctx, cancel := chromedp.NewContext(b.ctx, chromedp.WithNewBrowserContext())
	c := &console{}
	t.Cleanup(func() {
		cancel()
		c.report(t)
	})
	// Listen opens the tab here, outside any action's timeout, whose end
	// would otherwise close it. Its callback runs in the loop that reads
	// the browser's messages, before the reply to any later command, so no
	// message from before the end of the last action is missed.
	if err := chromedp.Listen(ctx, c.record); err != nil {
		t.Fatalf("opening a browser tab: %v", err)
	}
	return ctx
}

// Run runs the actions in order, each within ActionTimeout, and fails the
// test at the first that does not succeed.
func Run(ctx context.Context, t testing.TB, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	for i, a := range actions {
		if _, err := run(ctx, a); err != nil {
			t.Fatalf("browser action %d of %d%s: %v", i+1, len(actions), where(ctx), err)
		}
	}
}

// Get runs one action that returns a value, such as chromedp.Text, within
// ActionTimeout, and fails the test if it does not succeed.
func Get[T any](ctx context.Context, t testing.TB, a chromedp.Action[T]) T {
	t.Helper()
	v, err := run(ctx, a)
	if err != nil {
		t.Fatalf("browser action%s: %v", where(ctx), err)
	}
	return v
}

// Screenshot writes a PNG of the whole page, beyond the window, to path.
func Screenshot(ctx context.Context, t testing.TB, path string) {
	t.Helper()
	png := Get(ctx, t, chromedp.FullScreenshot(100)) // quality 100 is PNG
	if err := os.WriteFile(path, png, 0o600); err != nil {
		t.Fatalf("writing screenshot: %v", err)
	}
}

// run runs a within ActionTimeout and says so when that is what ended it.
func run[T any](ctx context.Context, a chromedp.Action[T]) (T, error) {
	tctx, cancel := context.WithTimeout(ctx, ActionTimeout)
	defer cancel()
	v, err := chromedp.Run(tctx, a)
	if err != nil && errors.Is(tctx.Err(), context.DeadlineExceeded) && ctx.Err() == nil {
		err = fmt.Errorf("not done within %v: %w", ActionTimeout, err)
	}
	return v, err
}

// where names the page a failed action was on, when the tab still answers.
func where(ctx context.Context) string {
	tctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	loc, err := chromedp.Run(tctx, chromedp.Location())
	if err != nil {
		return ""
	}
	return " on " + loc
}

// FrameText returns the text of sel inside the frame frameSel once it is
// there. A frame that navigates (redirects included) gets a new document,
// and a query started in the old one never sees the new: each try reads the
// frame afresh, until ActionTimeout.
func FrameText(ctx context.Context, t testing.TB, frameSel, sel string) string {
	t.Helper()
	deadline := time.Now().Add(ActionTimeout)
	var err error
	for time.Now().Before(deadline) {
		var text string
		if text, err = frameTextOnce(ctx, frameSel, sel); err == nil {
			return text
		}
	}
	t.Fatalf("browser: no %s in frame %s within %v%s: %v", sel, frameSel, ActionTimeout, where(ctx), err)
	return ""
}

func frameTextOnce(ctx context.Context, frameSel, sel string) (string, error) {
	tctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	frames, err := chromedp.Run(tctx, chromedp.Nodes(chromedp.CSS(frameSel)))
	if err != nil {
		return "", err
	}
	return chromedp.Run(tctx, chromedp.Text(chromedp.CSS(sel), chromedp.FromNode(frames[0])))
}

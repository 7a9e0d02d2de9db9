package browsertest

import (
	"encoding/json"
	"strings"
	"sync"
	"testing"

	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// console collects what a tab's pages report as errors.
type console struct {
	mu   sync.Mutex
	msgs []string
}

// record is a chromedp.Listen callback: it runs in the loop that reads the
// browser's messages, so it only formats and appends.
func (c *console) record(ev any) {
	var msg string
	switch ev := ev.(type) {
	case *runtime.EventExceptionThrown:
		if ev.ExceptionDetails == nil {
			return
		}
		msg = "uncaught " + (&chromedp.ExceptionError{ExceptionDetails: ev.ExceptionDetails}).Error()
	case *runtime.EventConsoleAPICalled:
		if ev.Type != runtime.ConsoleAPICalledTypeError && ev.Type != runtime.ConsoleAPICalledTypeAssert {
			return
		}
		msg = "console." + string(ev.Type) + ": " + argsText(ev.Args)
	case *log.EventEntryAdded:
		// The browser's own errors, such as a resource that did not load,
		// less the favicon that Chromium asks every server for.
		if ev.Entry == nil || ev.Entry.Level != log.EntryLevelError || strings.HasSuffix(ev.Entry.URL, "/favicon.ico") {
			return
		}
		msg = string(ev.Entry.Source) + ": " + ev.Entry.Text
		if ev.Entry.URL != "" {
			msg += " (" + ev.Entry.URL + ")"
		}
	default:
		return
	}
	c.mu.Lock()
	c.msgs = append(c.msgs, msg)
	c.mu.Unlock()
}

// report logs what was collected.
func (c *console) report(t testing.TB) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, m := range c.msgs {
		t.Logf("browser: %s", m)
	}
}

// argsText renders console arguments: strings as they are, other values as
// the DevTools protocol describes them.
func argsText(args []*runtime.RemoteObject) string {
	parts := make([]string, 0, len(args))
	for _, a := range args {
		var s string
		switch {
		case a.Type == runtime.RemoteObjectTypeString && json.Unmarshal(a.Value, &s) == nil:
		case a.Description != "":
			s = a.Description
		case len(a.Value) > 0:
			s = string(a.Value)
		default:
			s = string(a.Type)
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, " ")
}

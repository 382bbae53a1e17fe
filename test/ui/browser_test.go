// Package ui_test drives the web UI (package ui) in a real browser:
// Debian's chromium, headless, through chromedp, against a real server
// (internal/servertest: Raft on bbolt, the HTTP API and the UI on a
// loopback port). The tests write entries through the HTTP API, read the
// rendered page's DOM (the chain graph's SVG <text> nodes) and wait for
// changes by polling the DOM in the page with a deadline.
//
// Without chromium on PATH the tests skip, saying so; `.ci/run` installs
// it. Flags (after -args):
//
//	-screenshots DIR  TestScreenshots writes ui-chain-<w>x<h>.png into DIR
//	                  (`make ui-screenshots` passes ../../docs)
//	-url URL          use the HTTP API already serving at URL instead of
//	                  starting a server (entries are written to it)
package ui_test

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

var (
	screenshotDir = flag.String("screenshots", "", "TestScreenshots: write ui-chain-<w>x<h>.png into this directory")
	serverURL     = flag.String("url", "", "use the chainstore HTTP API at this URL instead of starting a server")
)

// pollTimeout bounds every wait for the page to show something.
const pollTimeout = 20 * time.Second

// chromium returns the browser's path, or skips the test.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Skip("chromium is not installed (apt-get install -y chromium; .ci/run does it): skipping the browser tests")
	return ""
}

// browser is one headless chromium with one tab.
type browser struct {
	t   *testing.T
	ctx context.Context

	mu         sync.Mutex
	exceptions []string // uncaught exceptions and CSP refusals of the page
}

// newBrowser starts chromium with a fresh profile and a width x height
// viewport. It stops when the test ends, and the test fails if the page
// threw an uncaught exception or the browser refused something under the
// page's Content-Security-Policy.
func newBrowser(t *testing.T, width, height int) *browser {
	t.Helper()
	path := chromium(t)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		// The machine's closed network refuses Chromium's own background
		// connections; these flags keep it from trying.
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(width, height),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	b := &browser{t: t, ctx: ctx}
	// Start the browser (the first Run allocates it) with no deadline on
	// ctx itself: a deadline there would stop the browser.
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(int64(width), int64(height))); err != nil {
		cancel()
		cancelAlloc()
		t.Fatalf("start chromium: %v", err)
	}
	messages := chromedp.Console(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for m, err := range messages {
			if err != nil {
				return
			}
			// An uncaught exception, or a resource the page's
			// Content-Security-Policy refused (something the page tried
			// to load from another origin, or inline).
			if m.IsException() || strings.Contains(m.Text, "Content Security Policy") {
				b.mu.Lock()
				b.exceptions = append(b.exceptions, fmt.Sprintf("%s (%s:%d)", m.Text, m.URL, m.Line))
				b.mu.Unlock()
			}
		}
	}()
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
		wg.Wait()
		b.mu.Lock()
		defer b.mu.Unlock()
		for _, e := range b.exceptions {
			t.Errorf("the page threw or broke its Content-Security-Policy: %s", e)
		}
	})
	return b
}

// do runs actions, bounded by pollTimeout plus a margin.
func (b *browser) do(actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, pollTimeout+10*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		b.t.Fatalf("browser: %v", err)
	}
}

// open navigates to url. A navigation that fails with
// net::ERR_NETWORK_CHANGED (Chromium saw the host's network interfaces
// change, as they do when other programs on the machine create and remove
// network namespaces) is repeated, up to 5 times.
func (b *browser) open(url string) {
	b.t.Helper()
	for attempt := 1; ; attempt++ {
		ctx, cancel := context.WithTimeout(b.ctx, pollTimeout)
		err := chromedp.Do(ctx, chromedp.Navigate(url))
		cancel()
		if err == nil {
			return
		}
		if !strings.Contains(err.Error(), "ERR_NETWORK_CHANGED") || attempt == 5 {
			b.t.Fatalf("open %s: %v", url, err)
		}
		b.t.Logf("open %s: %v; again", url, err)
	}
}

// eval evaluates a JavaScript expression in the page.
func eval[T any](b *browser, expr string) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		b.t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// waitFor polls the JavaScript expression in the page (every 25 ms) until
// it is truthy, and returns its value; it fails the test, naming what it
// waited for and the page's text, after pollTimeout.
func waitFor[T any](b *browser, what, expr string) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, pollTimeout+5*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Poll[T](expr,
		chromedp.WithPollingInterval(25*time.Millisecond), chromedp.WithPollingTimeout(pollTimeout)))
	if err != nil {
		text, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body.innerText`))
		b.t.Fatalf("waiting for %s: %v\npage text:\n%s", what, err, text)
	}
	return v
}

// screenshot captures the viewport as PNG.
func (b *browser) screenshot() []byte {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		b.t.Fatalf("screenshot: %v", err)
	}
	return png
}

// put writes an entry (Consul's JSON) with PUT /v1/config.
func put(t *testing.T, base, doc string) {
	t.Helper()
	putJSON(t, base+"/v1/config", doc)
}

// putJSON sends doc with PUT to url and fails the test unless the answer
// is 200 with the body true.
func putJSON(t *testing.T, url, doc string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, url, strings.NewReader(doc))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("PUT %s: %v", url, err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	if resp.StatusCode != http.StatusOK || !bytes.Equal(bytes.TrimSpace(body), []byte("true")) {
		t.Fatalf("PUT %s %s: %d %s", url, doc, resp.StatusCode, body)
	}
}

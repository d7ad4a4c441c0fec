package browsertest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// Path finds the Chromium binary: $PARLEY_CHROMIUM, then chromium and
// chromium-browser on PATH. It returns "" when there is none.
func Path() string {
	if p := os.Getenv("PARLEY_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// Browser is one headless Chromium process.
type Browser struct {
	t      testing.TB
	ctx    context.Context // the browser's allocator context
	cancel context.CancelFunc
	// Console collects console messages and uncaught exceptions from every tab.
	Console *Lines
}

// Option adjusts Chromium's flags.
type Option func(*[]chromedp.ExecAllocatorOption)

// Flag adds a command-line switch (value true for a bare switch).
func Flag(name string, value any) Option {
	return func(o *[]chromedp.ExecAllocatorOption) { *o = append(*o, chromedp.Flag(name, value)) }
}

// Start launches Chromium for the test and stops it at cleanup.
func Start(t testing.TB, opts ...Option) *Browser {
	t.Helper()
	path := Path()
	if path == "" {
		if os.Getenv("PARLEY_REQUIRE_PEERS") == "1" {
			t.Fatal("chromium not installed (apt-get install chromium)")
		}
		t.Skip("chromium not installed (apt-get install chromium)")
	}
	// The profile is removed after the browser stopped, with retries: its
	// helper processes can still be writing to it for a moment (t.TempDir
	// would fail the test on "directory not empty").
	profile, err := os.MkdirTemp("", "parley-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	o := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.UserDataDir(profile),
		chromedp.Headless,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("use-fake-device-for-media-stream", true),
		chromedp.Flag("use-fake-ui-for-media-stream", true),
		chromedp.Flag("autoplay-policy", "no-user-gesture-required"),
		chromedp.WindowSize(1280, 900),
	}
	for _, opt := range opts {
		opt(&o)
	}
	ctx, cancel := chromedp.NewExecAllocator(context.Background(), o...)
	b := &Browser{t: t, ctx: ctx, cancel: cancel, Console: &Lines{}}
	t.Cleanup(func() {
		cancel()
		for i := 0; i < 20; i++ {
			if os.RemoveAll(profile) == nil {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
		t.Logf("chromium profile %s left behind", profile)
	})
	return b
}

// Tab opens a new tab; it is closed at cleanup. Console output and
// exceptions of the tab are logged to the test and kept in b.Console.
func (b *Browser) Tab() context.Context {
	b.t.Helper()
	ctx, cancel := chromedp.NewContext(b.ctx)
	b.t.Cleanup(cancel)
	chromedp.ListenTarget(ctx, func(ev any) {
		switch ev := ev.(type) {
		case *runtime.EventConsoleAPICalled:
			var s string
			for _, a := range ev.Args {
				s += " " + string(a.Value)
				if a.Value == nil && a.Description != "" {
					s += " " + a.Description
				}
			}
			b.Console.add(fmt.Sprintf("console.%s:%s", ev.Type, s))
		case *runtime.EventExceptionThrown:
			b.Console.add("exception: " + ev.ExceptionDetails.Error())
		}
	})
	// Starting the tab starts the browser on first use.
	if err := chromedp.Run(ctx); err != nil {
		b.t.Fatalf("start chromium: %v", err)
	}
	return ctx
}

// Screenshot saves a full-page PNG of the tab as a test artifact under
// $PARLEY_ARTIFACTS (default $TMPDIR/parley-artifacts) and returns its path.
func Screenshot(t testing.TB, ctx context.Context, name string) string {
	t.Helper()
	var buf []byte
	if err := chromedp.Run(ctx, chromedp.FullScreenshot(&buf, 100)); err != nil { // 100: PNG (lower qualities give JPEG)
		t.Errorf("screenshot %s: %v", name, err)
		return ""
	}
	dir := os.Getenv("PARLEY_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "parley-artifacts")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Errorf("screenshot dir: %v", err)
		return ""
	}
	p := filepath.Join(dir, name+".png")
	if err := os.WriteFile(p, buf, 0o644); err != nil {
		t.Errorf("screenshot %s: %v", name, err)
		return ""
	}
	t.Logf("screenshot: %s", p)
	return p
}

// Poll evaluates a JavaScript expression in the tab until it returns true or
// the timeout passes; it fails the test with the console output on timeout.
func (b *Browser) Poll(ctx context.Context, expr string, timeout time.Duration) {
	b.t.Helper()
	deadline := time.Now().Add(timeout)
	var last error
	for time.Now().Before(deadline) {
		var ok bool
		err := chromedp.Run(ctx, chromedp.Evaluate(expr, &ok))
		if err == nil && ok {
			return
		}
		last = err
		time.Sleep(100 * time.Millisecond)
	}
	b.t.Fatalf("timed out after %v waiting for %s (last error %v)\nbrowser console:\n%s", timeout, expr, last, b.Console)
}

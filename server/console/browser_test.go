package console_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/tallyhq/tally/server/adminapi"
	"github.com/tallyhq/tally/server/servertest"
)

// The browser tests share one headless Chromium per test binary, started
// by the first of them; each test gets its own browser context (cookies),
// so the servers of different tests, all on 127.0.0.1, do not share a
// session.
var browser struct {
	once   sync.Once
	ctx    context.Context
	cancel context.CancelFunc
	err    error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if browser.cancel != nil {
		browser.cancel()
	}
	os.Exit(code)
}

// chromiumPath finds Debian's chromium (.ci/run installs it).
func chromiumPath() string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return "/usr/bin/chromium"
}

// tab opens a tab in a fresh browser context and returns it with a
// deadline for the whole test: every wait in it ends by then.
func tab(t *testing.T) context.Context {
	t.Helper()
	browser.once.Do(func() {
		opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(chromiumPath()), chromedp.NoSandbox,
			chromedp.WindowSize(1280, 900), chromedp.Flag("force-prefers-reduced-motion", true))
		actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
		bctx, cancelBrowser := chromedp.NewContext(actx)
		browser.ctx = bctx
		browser.cancel = func() { cancelBrowser(); cancelAlloc() }
		browser.err = chromedp.Do(bctx)
	})
	if browser.err != nil {
		t.Fatalf("start headless Chromium at %s (Debian package chromium; .ci/run installs it): %v", chromiumPath(), browser.err)
	}
	ctx, cancel := chromedp.NewContext(browser.ctx, chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("open a tab: %v", err)
	}
	tctx, cancelT := context.WithTimeout(ctx, 90*time.Second)
	t.Cleanup(cancelT)
	return tctx
}

// do runs browser steps and fails the test with what it was doing.
func do(t *testing.T, ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// text reads the visible text of the element a CSS selector names,
// waiting for it to be visible.
func text(t *testing.T, ctx context.Context, sel string) string {
	t.Helper()
	do(t, ctx, "wait for "+sel, chromedp.WaitVisible(chromedp.CSS(sel)))
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		t.Fatalf("read %s: %v", sel, err)
	}
	return strings.TrimSpace(s)
}

// shot saves a screenshot of the whole page in the test's temporary
// folder and, under 'make screenshots' (TALLY_SCREENSHOTS), in that folder.
func shot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	dirs := []string{screenshotDir(t)}
	if d := os.Getenv("TALLY_SCREENSHOTS"); d != "" {
		dirs = append(dirs, d)
	}
	for _, d := range dirs {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, name+".png"), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

var shotDirs sync.Map

func screenshotDir(t *testing.T) string {
	if d, ok := shotDirs.Load(t.Name()); ok {
		return d.(string)
	}
	d := filepath.Join(t.TempDir(), "screenshots")
	shotDirs.Store(t.Name(), d)
	return d
}

// signIn signs in on the console's login page with the admin token.
func signIn(t *testing.T, ctx context.Context, base, token string) {
	t.Helper()
	do(t, ctx, "sign in",
		chromedp.Navigate(base+"/login"),
		chromedp.WaitVisible(chromedp.CSS("#token")),
		chromedp.SendKeys(chromedp.CSS("#token"), token),
		chromedp.Submit(chromedp.CSS("#token")),
		chromedp.WaitVisible(chromedp.CSS(`nav a[href="/computers"]`)),
	)
}

// signInAs makes an admin with the role and signs in on the login page
// with their name and password.
func signInAs(t *testing.T, ctx context.Context, srv *servertest.Server, name, role string) {
	t.Helper()
	const password = "correct horse battery staple"
	if _, err := srv.Admin.AddAdmin(context.Background(), adminapi.AddAdminRequest{Name: name, Role: role, Password: password}); err != nil {
		t.Fatalf("add %s %s: %v", role, name, err)
	}
	do(t, ctx, "sign in as "+role,
		chromedp.Navigate(srv.Addresses().AdminURL+"/login"),
		chromedp.WaitVisible(chromedp.CSS("#name")),
		chromedp.SendKeys(chromedp.CSS("#name"), name),
		chromedp.SendKeys(chromedp.CSS("#password"), password),
		chromedp.Submit(chromedp.CSS("#password")),
		chromedp.WaitVisible(chromedp.CSS(`nav a[href="/computers"]`)),
	)
}

func mustContain(t *testing.T, what, got, want string) {
	t.Helper()
	if !strings.Contains(got, want) {
		t.Fatalf("%s: %q does not contain %q", what, got, fmt.Sprint(want))
	}
}

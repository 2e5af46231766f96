package main

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyflow-dev/keyflow/internal/testdb"

	"github.com/keyflow-dev/keyflow/apikey"
	"github.com/keyflow-dev/keyflow/middleware"
)

// The browser test drives the web UI in headless Chromium against the server
// running in this process (so -race covers the handlers): create a key in
// Settings → Langflow API, call /run with it, delete it in the UI, see the call
// refused; add a Credential variable and see its value never rendered.
// Set KEYFLOW_SCREENSHOT=path to save a screenshot of the Settings page.

// findChromium returns the browser to drive, or skips the test.
func findChromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "/usr/bin/chromium"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	testdb.SkipSuite(t, "browser tests", "no Chromium found; install it with: apt-get install -y chromium")
	return ""
}

// newBrowser starts headless Chromium with a fresh profile.
func newBrowser(t *testing.T) context.Context {
	t.Helper()
	path := findChromium(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	ctx, cancelAlloc := chromedp.NewExecAllocator(ctx,
		chromedp.ExecPath(path),
		chromedp.Flag("headless", true),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 800),
	)
	t.Cleanup(cancelAlloc)
	ctx, cancelTab := chromedp.NewContext(ctx)
	t.Cleanup(cancelTab)
	return ctx
}

// startApp runs the server's handler in this process on a fresh SQLite
// config dir, and returns it with the superuser's demo flow.
func startApp(t *testing.T, autoLogin bool) (*app, *httptest.Server, flow) {
	t.Helper()
	cfg := config{
		ConfigDir:         t.TempDir(),
		Host:              "127.0.0.1",
		Auth:              middleware.Config{AutoLogin: autoLogin},
		FallbackToEnv:     true,
		StoreEnvVariables: false,
		Getenv:            func(string) string { return "" },
	}
	ctx := context.Background()
	a, err := openApp(ctx, cfg, slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn})))
	require.NoError(t, err)
	t.Cleanup(func() { _ = a.Close() })
	echo, err := a.ensureEchoFlow(ctx)
	require.NoError(t, err)
	h, err := a.handler()
	require.NoError(t, err)
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return a, srv, echo
}

func runStatus(t *testing.T, srv *httptest.Server, flowID, key string) int {
	t.Helper()
	req, err := http.NewRequest("POST", srv.URL+"/api/v1/run/"+flowID+"?stream=false", strings.NewReader(seedBody))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("x-api-key", key)
	res, err := srv.Client().Do(req)
	require.NoError(t, err)
	_ = res.Body.Close()
	return res.StatusCode
}

// watchExceptions collects the page's uncaught exceptions.
func watchExceptions(ctx context.Context) func() []string {
	var mu sync.Mutex
	var out []string
	messages := chromedp.Console(ctx) // subscribes now
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			if m.IsException() {
				mu.Lock()
				out = append(out, m.String())
				mu.Unlock()
			}
		}
	}()
	return func() []string {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(out)
	}
}

func TestBrowserSettings(t *testing.T) {
	if testing.Short() {
		t.Skip("drives a browser")
	}
	ctx := newBrowser(t)
	a, srv, echo := startApp(t, true)
	exceptions := watchExceptions(ctx)

	const keyName = "browser key"
	key, err := chromedp.Run(ctx, func(ctx context.Context, tg *chromedp.Target) (string, error) {
		if err := chromedp.Do(ctx,
			chromedp.Navigate(srv.URL+"/"),
			chromedp.WaitVisible(chromedp.ID("keys-add")),
			chromedp.Click(chromedp.ID("keys-add")),
			chromedp.WaitVisible(chromedp.ID("key-name")),
			chromedp.SendKeys(chromedp.ID("key-name"), keyName),
			chromedp.Click(chromedp.ID("key-create")),
			chromedp.WaitVisible(chromedp.ID("key-value")),
		); err != nil {
			return "", err
		}
		return chromedp.Run(ctx, chromedp.Value(chromedp.ID("key-value")))
	})
	require.NoError(t, err)
	require.Regexp(t, keyRe, key, "the new key is shown once")
	require.NoError(t, chromedp.Do(ctx,
		chromedp.Click(chromedp.ID("key-done")),
		chromedp.WaitVisible(chromedp.CSS(`tr[data-name="`+keyName+`"]`)),
	))
	html, err := chromedp.Run(ctx, chromedp.OuterHTML(chromedp.CSS("html")))
	require.NoError(t, err)
	assert.NotContains(t, html, key, "after Done the key is gone from the page")
	assert.Contains(t, html, key[:8]+"*", "listed masked")

	assert.Equal(t, http.StatusOK, runStatus(t, srv, echo.ID, key), "the key made in the UI runs the flow")

	require.NoError(t, chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(`tr[data-name="`+keyName+`"] input[type=checkbox]`)),
		chromedp.Click(chromedp.ID("keys-delete")),
		chromedp.WaitVisible(chromedp.ID("confirm-ok")),
		chromedp.Click(chromedp.ID("confirm-ok")),
		chromedp.WaitNotPresent(chromedp.CSS(`tr[data-name="`+keyName+`"]`)),
	))
	assert.Equal(t, http.StatusForbidden, runStatus(t, srv, echo.ID, key), "deleted in the UI: refused at once")

	const secret = "browser-credential-value-0123456789"
	require.NoError(t, chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(`a[data-tab="variables"]`)),
		chromedp.WaitVisible(chromedp.ID("vars-add")),
		chromedp.Click(chromedp.ID("vars-add")),
		chromedp.WaitVisible(chromedp.ID("var-name")),
		chromedp.SendKeys(chromedp.ID("var-name"), "MY_CREDENTIAL"),
		chromedp.SendKeys(chromedp.ID("var-value"), secret),
		chromedp.SendKeys(chromedp.ID("var-fields"), "api_key"),
		chromedp.Click(chromedp.ID("var-save")),
		chromedp.WaitVisible(chromedp.CSS(`tr[data-name="MY_CREDENTIAL"]`)),
		chromedp.Click(chromedp.ID("vars-add")),
		chromedp.WaitVisible(chromedp.ID("var-name")),
		chromedp.SetValue(chromedp.ID("var-type"), "Generic"),
		chromedp.SendKeys(chromedp.ID("var-name"), "MODEL_NAME"),
		chromedp.SendKeys(chromedp.ID("var-value"), "gpt-4o-mini"),
		chromedp.Click(chromedp.ID("var-save")),
		chromedp.WaitVisible(chromedp.CSS(`tr[data-name="MODEL_NAME"]`)),
	))
	html, err = chromedp.Run(ctx, chromedp.OuterHTML(chromedp.CSS("html")))
	require.NoError(t, err)
	assert.NotContains(t, html, secret, "a Credential value is never rendered")
	assert.Contains(t, html, "gpt-4o-mini", "a Generic value is shown")
	text, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`tr[data-name="MY_CREDENTIAL"]`)))
	require.NoError(t, err)
	assert.Contains(t, text, "Credential")
	assert.Contains(t, text, "api_key")

	vars, err := a.vars.List(context.Background(), a.superuser.ID)
	require.NoError(t, err)
	require.Len(t, vars, 2)
	assert.Equal(t, []string{"api_key"}, vars[0].DefaultFields)
	assert.Empty(t, exceptions(), "the page threw")

	if path := os.Getenv("KEYFLOW_SCREENSHOT"); path != "" {
		saveScreenshot(t, ctx, a, srv, echo.ID, path)
	}
}

// saveScreenshot fills the key list and captures Settings → Langflow API.
func saveScreenshot(t *testing.T, ctx context.Context, a *app, srv *httptest.Server, flowID, path string) {
	for i, name := range []string{"CLI", "production", "staging"} {
		key, _, err := a.keys.Create(context.Background(), a.superuser.ID, name, apikey.CreateOptions{})
		require.NoError(t, err)
		for range 3 * i {
			require.Equal(t, http.StatusOK, runStatus(t, srv, flowID, key))
		}
	}
	require.NoError(t, a.keys.Flush(context.Background()))
	png, err := chromedp.Run(ctx, func(ctx context.Context, tg *chromedp.Target) ([]byte, error) {
		if err := chromedp.Do(ctx,
			chromedp.EmulateViewport(1280, 640),
			chromedp.Navigate(srv.URL+"/"), // a reload: the page was at /#variables
			chromedp.Click(chromedp.CSS(`a[data-tab="api-keys"]`)),
			chromedp.WaitVisible(chromedp.CSS(`tr[data-name="staging"]`)),
		); err != nil {
			return nil, err
		}
		return chromedp.Run(ctx, chromedp.FullScreenshot(100))
	})
	require.NoError(t, err)
	require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
	require.NoError(t, os.WriteFile(path, png, 0o644))
	t.Logf("saved %s", path)
}

// With auto-login off the UI asks for an API key and sends it as x-api-key.
func TestBrowserSignInWithKey(t *testing.T) {
	if testing.Short() {
		t.Skip("drives a browser")
	}
	ctx := newBrowser(t)
	a, srv, _ := startApp(t, false)
	key, _, err := a.keys.Create(context.Background(), a.superuser.ID, "sign-in", apikey.CreateOptions{})
	require.NoError(t, err)

	require.NoError(t, chromedp.Do(ctx,
		chromedp.Navigate(srv.URL+"/"),
		chromedp.WaitVisible(chromedp.ID("login-key")),
		chromedp.SendKeys(chromedp.ID("login-key"), "sk-wrong"),
		chromedp.Click(chromedp.CSS(`#login-form button`)),
		chromedp.WaitVisible(chromedp.ID("login-error")),
		chromedp.SendKeys(chromedp.ID("login-key"), key),
		chromedp.Click(chromedp.CSS(`#login-form button`)),
		chromedp.WaitVisible(chromedp.CSS(`tr[data-name="sign-in"]`)),
	))
	// No session cookie in this mode: the page's cookie jar is empty.
	cookies, err := chromedp.Run(ctx, chromedp.Evaluate[string]("document.cookie"))
	require.NoError(t, err)
	assert.Empty(t, cookies)
}

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

	"github.com/keyflow-dev/keyflow/examples/server/internal/config"
	"github.com/keyflow-dev/keyflow/examples/server/internal/flows"
	"github.com/keyflow-dev/keyflow/examples/server/internal/httpserver"
	"github.com/keyflow-dev/keyflow/examples/server/internal/startup"
	"github.com/keyflow-dev/keyflow/keyflowtest/dbtest"

	"github.com/keyflow-dev/keyflow/apikey"
	"github.com/keyflow-dev/keyflow/middleware"
	"github.com/keyflow-dev/keyflow/variables"
)

// The browser test drives the web UI in headless Chromium against the server
// running in this process (so -race covers the handlers): create a key in
// Settings → Langflow API, call /run with it, delete it in the UI, see the call
// refused; add a Credential variable and see its value never rendered.
// Set KEYFLOW_SCREENSHOT=path to save a screenshot of the Settings page.

// findChromium returns the browser to drive, or skips the test.
func findChromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	dbtest.SkipSuite(t, "browser tests", "no Chromium found; install it with: apt-get install -y chromium")
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
func startApp(t *testing.T, autoLogin bool) (*startup.App, *httptest.Server, flows.Flow) {
	t.Helper()
	cfg := config.Config{
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
	echo, err := ensureEcho(ctx, a)
	require.NoError(t, err)
	h, err := httpserver.Handler(a, nil)
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

	vars, err := a.Vars.List(context.Background(), a.Superuser.ID)
	require.NoError(t, err)
	require.Len(t, vars, 2)
	assert.Equal(t, []string{"api_key"}, vars[0].DefaultFields)
	assert.Empty(t, exceptions(), "the page threw")

	if path := os.Getenv("KEYFLOW_SCREENSHOT"); path != "" {
		saveScreenshot(t, ctx, a, srv, echo.ID, path)
	}
}

// waitJS waits until the page's expression is true.
func waitJS(t *testing.T, ctx context.Context, expr string) {
	t.Helper()
	_, err := chromedp.Run(ctx, chromedp.Poll[bool](expr, chromedp.WithPollingTimeout(10*time.Second)))
	require.NoError(t, err, "waiting for %s", expr)
}

// saveShot saves a screenshot of the viewport as KEYFLOW_SCREENSHOT_DIR/name
// when that variable is set, to look at the UI as a person would.
func saveShot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	dir := os.Getenv("KEYFLOW_SCREENSHOT_DIR")
	if dir == "" {
		return
	}
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	require.NoError(t, err)
	require.NoError(t, os.MkdirAll(dir, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, name), png, 0o644))
}

// Editing a variable in the UI follows the API's rules: a Credential's value
// is never shown, only replaced (left empty it is kept); a Generic's value is
// shown and edited; the name, the type and "Apply To Fields" change; a
// Credential made Generic needs a new value; the API's refusals show in the
// dialog.
func TestBrowserEditVariable(t *testing.T) {
	if testing.Short() {
		t.Skip("drives a browser")
	}
	ctx := newBrowser(t)
	a, srv, _ := startApp(t, true)
	exceptions := watchExceptions(ctx)
	bg := context.Background()
	const secret, newSecret = "browser-credential-value-0123456789", "replaced-credential-value-9876543210"
	cred, err := a.Vars.Create(bg, a.Superuser.ID, variables.CreateInput{Name: "MY_CREDENTIAL", Value: secret, Type: variables.Credential, DefaultFields: []string{"api_key"}})
	require.NoError(t, err)
	_, err = a.Vars.Create(bg, a.Superuser.ID, variables.CreateInput{Name: "MODEL_NAME", Value: "gpt-4o", Type: variables.Generic})
	require.NoError(t, err)
	stored := func(name string) (variables.Variable, string) {
		t.Helper()
		vars, err := a.Vars.List(bg, a.Superuser.ID)
		require.NoError(t, err)
		for _, v := range vars {
			if v.Name == name {
				plain, err := a.Vars.Value(bg, a.Superuser.ID, name)
				require.NoError(t, err)
				return v, plain
			}
		}
		t.Fatalf("no variable %s", name)
		return variables.Variable{}, ""
	}
	row := func(name string) string { return `tr[data-name="` + name + `"]` }
	dialogOpen := `document.getElementById("var-dialog").open`

	// A Credential: the dialog never holds its value; leaving it empty keeps
	// it while the fields change.
	require.NoError(t, chromedp.Do(ctx,
		chromedp.Navigate(srv.URL+"/#variables"),
		chromedp.WaitVisible(chromedp.CSS(row("MY_CREDENTIAL"))),
		chromedp.Click(chromedp.CSS(row("MY_CREDENTIAL")+` button.name`)),
		chromedp.WaitVisible(chromedp.ID("var-value")),
	))
	title, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID("var-title")))
	require.NoError(t, err)
	assert.Equal(t, "Update Variable", title)
	value, err := chromedp.Run(ctx, chromedp.Value(chromedp.ID("var-value")))
	require.NoError(t, err)
	assert.Empty(t, value, "a Credential's value is never shown")
	hint, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID("var-value-hint")))
	require.NoError(t, err)
	assert.Contains(t, hint, "leave this empty to keep it")
	saveShot(t, ctx, "edit-credential-1280.png")
	require.NoError(t, chromedp.Do(ctx,
		chromedp.SetValue(chromedp.ID("var-fields"), "api_key, openai_api_key"),
		chromedp.Click(chromedp.ID("var-save")),
		chromedp.WaitVisible(chromedp.CSS(row("MY_CREDENTIAL")+` .chip:nth-child(2)`)),
	))
	v, plain := stored("MY_CREDENTIAL")
	assert.Equal(t, []string{"api_key", "openai_api_key"}, v.DefaultFields)
	assert.Equal(t, secret, plain, "an empty value keeps the Credential")
	assert.Equal(t, cred.ID, v.ID)

	// A new value replaces it.
	require.NoError(t, chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(row("MY_CREDENTIAL")+` td:nth-child(3)`)), // anywhere on the row
		chromedp.WaitVisible(chromedp.ID("var-value")),
		chromedp.SendKeys(chromedp.ID("var-value"), newSecret),
		chromedp.Click(chromedp.ID("var-save")),
	))
	waitJS(t, ctx, "!"+dialogOpen)
	_, plain = stored("MY_CREDENTIAL")
	assert.Equal(t, newSecret, plain)

	// Made Generic, it needs a new value: the form does not submit without.
	require.NoError(t, chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(row("MY_CREDENTIAL")+` button.name`)),
		chromedp.WaitVisible(chromedp.ID("var-value")),
		chromedp.SetValue(chromedp.ID("var-type"), "Generic"),
		chromedp.Click(chromedp.ID("var-save")),
	))
	invalid, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.getElementById("var-value").matches(":invalid") && `+dialogOpen))
	require.NoError(t, err)
	assert.True(t, invalid, "a Credential made Generic needs a value")
	hint, err = chromedp.Run(ctx, chromedp.Text(chromedp.ID("var-value-hint")))
	require.NoError(t, err)
	assert.Contains(t, hint, "needs a new value")
	require.NoError(t, chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`#var-form .cancel`))))
	waitJS(t, ctx, "!"+dialogOpen)
	v, _ = stored("MY_CREDENTIAL")
	assert.Equal(t, variables.Credential, v.Type, "nothing changed")

	// A Generic: its value is shown and edited, and it can be renamed.
	require.NoError(t, chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(row("MODEL_NAME")+` button.name`)),
		chromedp.WaitVisible(chromedp.ID("var-value")),
	))
	value, err = chromedp.Run(ctx, chromedp.Value(chromedp.ID("var-value")))
	require.NoError(t, err)
	assert.Equal(t, "gpt-4o", value)
	require.NoError(t, chromedp.Do(ctx,
		chromedp.SetValue(chromedp.ID("var-name"), "MODEL"),
		chromedp.SetValue(chromedp.ID("var-value"), "gpt-4o-mini"),
		chromedp.Click(chromedp.ID("var-save")),
		chromedp.WaitVisible(chromedp.CSS(row("MODEL"))),
	))
	text, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(row("MODEL"))))
	require.NoError(t, err)
	assert.Contains(t, text, "gpt-4o-mini")
	_, plain = stored("MODEL")
	assert.Equal(t, "gpt-4o-mini", plain)

	// The API's refusal shows in the dialog, which stays open.
	require.NoError(t, chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(row("MODEL")+` button.name`)),
		chromedp.WaitVisible(chromedp.ID("var-name")),
		chromedp.SetValue(chromedp.ID("var-name"), "MY_CREDENTIAL"),
		chromedp.Click(chromedp.ID("var-save")),
		chromedp.WaitVisible(chromedp.ID("var-error")),
	))
	msg, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID("var-error")))
	require.NoError(t, err)
	assert.Equal(t, "Variable name already exists", msg)
	saveShot(t, ctx, "edit-error-1280.png")
	require.NoError(t, chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`#var-form .cancel`))))

	html, err := chromedp.Run(ctx, chromedp.OuterHTML(chromedp.CSS("html")))
	require.NoError(t, err)
	assert.NotContains(t, html, secret)
	assert.NotContains(t, html, newSecret, "a Credential value is never rendered")
	assert.Empty(t, exceptions(), "the page threw")
}

// At 360 px wide the sidebar turns into tabs, "Add New" is on screen and
// works, nothing widens the page; the header says who you are and why; a tab
// shows current key usage each time it is opened.
func TestBrowserNarrow(t *testing.T) {
	if testing.Short() {
		t.Skip("drives a browser")
	}
	ctx := newBrowser(t)
	a, srv, echo := startApp(t, true)
	exceptions := watchExceptions(ctx)
	key, _, err := a.Keys.Create(context.Background(), a.Superuser.ID, "phone", apikey.CreateOptions{})
	require.NoError(t, err)
	uses := `document.querySelector('tr[data-name="phone"] td.num')?.textContent`

	require.NoError(t, chromedp.Do(ctx,
		chromedp.EmulateViewport(360, 740),
		chromedp.Navigate(srv.URL+"/"),
		chromedp.WaitVisible(chromedp.CSS(`tr[data-name="phone"]`)),
	))
	waitJS(t, ctx, uses+` === "0"`)
	who, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID("who")))
	require.NoError(t, err)
	assert.Equal(t, "Signed in as langflow — auto-login", who)

	type box struct{ Left, Right, Top, Bottom float64 }
	rect := func(sel string) box {
		t.Helper()
		b, err := chromedp.Run(ctx, chromedp.Evaluate[box](`(() => { const r = document.querySelector(`+"`"+sel+"`"+`).getBoundingClientRect();
			return {Left: r.left, Right: r.right, Top: r.top, Bottom: r.bottom}; })()`))
		require.NoError(t, err)
		return b
	}
	onScreen := func(sel string) {
		t.Helper()
		r := rect(sel)
		assert.True(t, r.Left >= 0 && r.Right <= 360 && r.Top >= 0 && r.Bottom <= 740, "%s is on screen: %+v", sel, r)
	}
	noSideways := func() {
		t.Helper()
		width, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.documentElement.scrollWidth`))
		require.NoError(t, err)
		assert.LessOrEqual(t, width, 360, "nothing widens the page")
	}
	onScreen("#keys-add")
	noSideways()
	assert.Equal(t, rect(`a[data-tab="api-keys"]`).Top, rect(`a[data-tab="flows"]`).Top, "the sidebar is one row of tabs")
	assert.Less(t, rect(".sidebar").Bottom, rect("#api-keys").Top, "above the panel")
	saveShot(t, ctx, "keys-360.png")

	// Add New works at this width.
	require.NoError(t, chromedp.Do(ctx,
		chromedp.Click(chromedp.ID("keys-add")),
		chromedp.WaitVisible(chromedp.ID("key-name")),
	))
	onScreen("#key-create")
	require.NoError(t, chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`#key-form .cancel`))))

	// A key with custom limits, made at this width: the dialog's custom
	// fields fit, and the table shows what remains of the quota.
	require.NoError(t, chromedp.Do(ctx,
		chromedp.Click(chromedp.ID("keys-add")),
		chromedp.WaitVisible(chromedp.ID("key-name")),
		chromedp.SendKeys(chromedp.ID("key-name"), "metered"),
		chromedp.SetValue(chromedp.ID("key-limits"), "custom"),
	))
	_, err = chromedp.Run(ctx, chromedp.Evaluate[bool](`document.getElementById("key-limits").dispatchEvent(new Event("change"))`))
	require.NoError(t, err)
	require.NoError(t, chromedp.Do(ctx,
		chromedp.WaitVisible(chromedp.ID("key-rate")),
		chromedp.SendKeys(chromedp.ID("key-rate"), "100/1m"),
		chromedp.SendKeys(chromedp.ID("key-quota"), "5"),
	))
	onScreen("#key-refill")
	onScreen("#key-create")
	noSideways()
	saveShot(t, ctx, "key-limits-dialog-360.png")
	metered, err := chromedp.Run(ctx, func(ctx context.Context, tg *chromedp.Target) (string, error) {
		if err := chromedp.Do(ctx,
			chromedp.Click(chromedp.ID("key-create")),
			chromedp.WaitVisible(chromedp.ID("key-value")),
		); err != nil {
			return "", err
		}
		return chromedp.Run(ctx, chromedp.Value(chromedp.ID("key-value")))
	})
	require.NoError(t, err)
	require.NoError(t, chromedp.Do(ctx,
		chromedp.Click(chromedp.ID("key-done")),
		chromedp.WaitVisible(chromedp.CSS(`tr[data-name="metered"]`)),
	))
	limits := `document.querySelector('tr[data-name="metered"] td.limits')?.textContent`
	waitJS(t, ctx, limits+` === "100/1m · 5 of 5 left"`)
	noSideways()
	require.Equal(t, http.StatusOK, runStatus(t, srv, echo.ID, metered))
	require.Equal(t, http.StatusOK, runStatus(t, srv, echo.ID, metered))

	// Used meanwhile, the key's count shows when the tab is opened again.
	require.Equal(t, http.StatusOK, runStatus(t, srv, echo.ID, key))
	require.Equal(t, http.StatusOK, runStatus(t, srv, echo.ID, key))
	require.NoError(t, chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(`a[data-tab="variables"]`)),
		chromedp.WaitVisible(chromedp.ID("vars-add")),
	))
	onScreen("#vars-add")
	noSideways()
	saveShot(t, ctx, "variables-360.png")
	require.NoError(t, chromedp.Do(ctx,
		chromedp.Click(chromedp.ID("vars-add")),
		chromedp.WaitVisible(chromedp.ID("var-name")),
	))
	onScreen("#var-save")
	saveShot(t, ctx, "variable-dialog-360.png")
	require.NoError(t, chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`#var-form .cancel`))))
	require.NoError(t, chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`a[data-tab="api-keys"]`))))
	waitJS(t, ctx, uses+` === "2"`)
	waitJS(t, ctx, limits+` === "100/1m · 3 of 5 left"`)
	onScreen(`tr[data-name="metered"] td.limits`)
	saveShot(t, ctx, "keys-limits-360.png")

	// And when the same tab is clicked again.
	require.Equal(t, http.StatusOK, runStatus(t, srv, echo.ID, key))
	require.NoError(t, chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`a[data-tab="api-keys"]`))))
	waitJS(t, ctx, uses+` === "3"`)

	require.NoError(t, chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(`a[data-tab="flows"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#flows-body tr`)),
	))
	noSideways()
	saveShot(t, ctx, "flows-360.png")
	assert.Empty(t, exceptions(), "the page threw")
}

// saveScreenshot fills the key list and captures Settings → Langflow API.
func saveScreenshot(t *testing.T, ctx context.Context, a *startup.App, srv *httptest.Server, flowID, path string) {
	for i, name := range []string{"CLI", "production", "staging"} {
		key, _, err := a.Keys.Create(context.Background(), a.Superuser.ID, name, apikey.CreateOptions{})
		require.NoError(t, err)
		for range 3 * i {
			require.Equal(t, http.StatusOK, runStatus(t, srv, flowID, key))
		}
	}
	require.NoError(t, a.Keys.Flush(context.Background()))
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

// With auto-login off the UI asks for a username and password, then uses
// the login cookies (HttpOnly: the page cannot read them); Log out in the
// header ends the session.
func TestBrowserSignIn(t *testing.T) {
	if testing.Short() {
		t.Skip("drives a browser")
	}
	ctx := newBrowser(t)
	a, srv := startLoginApp(t, nil)
	_, _, err := a.Keys.Create(context.Background(), a.Superuser.ID, "sign-in", apikey.CreateOptions{})
	require.NoError(t, err)

	require.NoError(t, chromedp.Do(ctx,
		chromedp.Navigate(srv.URL+"/"),
		chromedp.WaitVisible(chromedp.ID("login-username")),
		chromedp.SendKeys(chromedp.ID("login-username"), "admin"),
		chromedp.SendKeys(chromedp.ID("login-password"), "wrong-password"),
		chromedp.Click(chromedp.ID("login-submit")),
		chromedp.WaitVisible(chromedp.ID("login-error")),
	))
	saveShot(t, ctx, "login-error-1280.png")
	require.NoError(t, chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.ID("login-password"), testPassword),
		chromedp.Click(chromedp.ID("login-submit")),
		chromedp.WaitVisible(chromedp.CSS(`tr[data-name="sign-in"]`)),
		chromedp.WaitVisible(chromedp.ID("signout")),
	))
	saveShot(t, ctx, "signed-in-1280.png")
	who, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID("who")))
	require.NoError(t, err)
	assert.Equal(t, "Signed in as admin", who)
	cookies, err := chromedp.Run(ctx, chromedp.Evaluate[string]("document.cookie"))
	require.NoError(t, err)
	assert.Empty(t, cookies, "the login cookies are HttpOnly")

	// A reload keeps the session; Log out ends it.
	require.NoError(t, chromedp.Do(ctx,
		chromedp.Reload(),
		chromedp.WaitVisible(chromedp.CSS(`tr[data-name="sign-in"]`)),
		chromedp.Click(chromedp.ID("signout")),
		chromedp.WaitVisible(chromedp.ID("login-username")),
		chromedp.Reload(),
		chromedp.WaitVisible(chromedp.ID("login-username")),
	))
	saveShot(t, ctx, "signed-out-1280.png")
}

package main

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyflow-dev/keyflow/apikey"
)

// At 360 px wide, a key's usage chart opens from the keys table, shows 24
// hourly bars (30 daily ones at the toggle) with the uses made, and fits
// the screen; the Activity tab lists what was done. Screenshots:
// usage-360.png, usage-30d-360.png, activity-360.png (KEYFLOW_SCREENSHOT_DIR).
func TestBrowserUsageAndActivity(t *testing.T) {
	if testing.Short() {
		t.Skip("drives a browser")
	}
	ctx := newBrowser(t)
	a, srv, echo := startApp(t, true)
	exceptions := watchExceptions(ctx)
	key, _, err := a.Keys.Create(context.Background(), a.Superuser.ID, "phone", apikey.CreateOptions{})
	require.NoError(t, err)
	for range 3 {
		require.Equal(t, http.StatusOK, runStatus(t, srv, echo.ID, key))
	}
	// An audited write: a variable created with the key.
	req, err := http.NewRequest("POST", srv.URL+"/api/v1/variables/", strings.NewReader(`{"name":"SEARCH_TOKEN","value":"v-123","type":"Credential","default_fields":[]}`))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("x-api-key", key)
	res, err := srv.Client().Do(req)
	require.NoError(t, err)
	_ = res.Body.Close()
	require.Contains(t, []int{200, 201}, res.StatusCode)
	require.NoError(t, a.Keys.Flush(context.Background()), "the usage history is written at the flush")

	require.NoError(t, chromedp.Do(ctx,
		chromedp.EmulateViewport(360, 740),
		chromedp.Navigate(srv.URL+"/"),
		chromedp.WaitVisible(chromedp.CSS(`tr[data-name="phone"] td.usage button`)),
		chromedp.Click(chromedp.CSS(`tr[data-name="phone"] td.usage button`)),
		chromedp.WaitVisible(chromedp.ID("usage-chart")),
	))
	waitJS(t, ctx, `document.querySelectorAll("#usage-chart .bar").length === 24`)
	waitJS(t, ctx, `[...document.querySelectorAll("#usage-chart .bar")].some((b) => b.dataset.total === "4")`)
	summary, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID("usage-summary")))
	require.NoError(t, err)
	assert.Contains(t, summary, "4 accepted", "three runs and the variable's creation")
	width, err := chromedp.Run(ctx, chromedp.Evaluate[float64](`document.getElementById("usage-dialog").getBoundingClientRect().right`))
	require.NoError(t, err)
	assert.LessOrEqual(t, width, 360.0, "the chart fits a 360 px screen")
	saveShot(t, ctx, "usage-360.png")

	require.NoError(t, chromedp.Do(ctx, chromedp.Click(chromedp.ID("usage-30d"))))
	waitJS(t, ctx, `document.querySelectorAll("#usage-chart .bar").length === 30`)
	waitJS(t, ctx, `document.getElementById("usage-30d").getAttribute("aria-pressed") === "true"`)
	saveShot(t, ctx, "usage-30d-360.png")
	require.NoError(t, chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`#usage-dialog .cancel`))))

	require.NoError(t, chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(`a[data-tab="activity"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#activity-body tr`)),
	))
	text, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID("activity-body")))
	require.NoError(t, err)
	assert.Contains(t, text, "variable.created")
	assert.Contains(t, text, "SEARCH_TOKEN")
	assert.NotContains(t, text, "v-123", "never a value")
	scroll, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.documentElement.scrollWidth`))
	require.NoError(t, err)
	assert.LessOrEqual(t, scroll, 360, "nothing widens the page")
	saveShot(t, ctx, "activity-360.png")
	assert.Empty(t, exceptions(), "the page threw")
}

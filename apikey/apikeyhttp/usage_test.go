package apikeyhttp_test

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyflow-dev/keyflow/apikey"
	"github.com/keyflow-dev/keyflow/apikey/apikeyhttp"
	"github.com/keyflow-dev/keyflow/keyflowtest"
)

func TestUsage(t *testing.T) {
	m := keyflowtest.NewManagerConfig(t, apikey.Config{Store: apikey.NewMemoryStore(), FlushInterval: -1})
	ctx := context.Background()
	key, rec, err := m.Create(ctx, "user-1", "k", apikey.CreateOptions{})
	require.NoError(t, err)
	_, other, err := m.Create(ctx, "user-2", "theirs", apikey.CreateOptions{})
	require.NoError(t, err)
	for range 3 {
		_, err := m.Verify(ctx, key)
		require.NoError(t, err)
	}
	require.NoError(t, m.SetActive(ctx, "user-1", rec.ID, false))
	_, err = m.Verify(ctx, key)
	require.ErrorIs(t, err, apikey.ErrInactive)
	require.NoError(t, m.Flush(ctx))
	h, err := apikeyhttp.New(apikeyhttp.Config{Manager: m, User: func(r *http.Request) (apikey.Principal, bool) {
		u := r.Header.Get("X-User")
		return apikey.Principal{UserID: u}, u != ""
	}})
	require.NoError(t, err)

	for _, span := range []struct {
		query string
		n     int
	}{{"", 24}, {"?span=24h", 24}, {"?span=30d", 30}} {
		w := do(h, "GET", "/"+rec.ID+"/usage"+span.query, "", "X-User", "user-1")
		require.Equal(t, http.StatusOK, w.Code, w.Body.String())
		var u apikeyhttp.Usage
		require.NoError(t, json.Unmarshal(w.Body.Bytes(), &u))
		require.Len(t, u.Buckets, span.n)
		last := u.Buckets[span.n-1]
		assert.EqualValues(t, 3, last.OK, "the current hour or day is the last bucket")
		assert.EqualValues(t, 1, last.Refused)
		assert.EqualValues(t, 1, last.Outcomes["disabled"])
		assert.Zero(t, u.Buckets[0].OK)
		assert.True(t, u.Buckets[0].Start.Before(last.Start))
	}
	for _, tc := range []struct {
		name, target, user string
		code               int
	}{
		{"another user's key", "/" + other.ID + "/usage", "user-1", 404},
		{"no user", "/" + rec.ID + "/usage", "", 401},
		{"bad span", "/" + rec.ID + "/usage?span=1y", "user-1", 422},
		{"bad id", "/nope/usage", "user-1", 422},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var hdr []string
			if tc.user != "" {
				hdr = []string{"X-User", tc.user}
			}
			w := do(h, "GET", tc.target, "", hdr...)
			assert.Equal(t, tc.code, w.Code, w.Body.String())
		})
	}
	w := do(h, "POST", "/"+rec.ID+"/usage", "", "X-User", "user-1")
	assert.Equal(t, http.StatusMethodNotAllowed, w.Code)
}

func TestUsageWithoutHistory(t *testing.T) {
	e := newEnv(t) // a store without the UsageHistory capability
	w := do(e.h, "GET", "/"+e.rec1.ID+"/usage", "", "X-User", "user-1")
	assert.Equal(t, http.StatusNotFound, w.Code)
	assert.Contains(t, w.Body.String(), apikeyhttp.MsgNoUsageHistory)
}

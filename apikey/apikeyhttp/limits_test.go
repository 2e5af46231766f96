package apikeyhttp_test

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyflow-dev/keyflow/apikey/apikeyhttp"
)

// POST takes limits as extra fields; the list and PATCH show them with what
// remains; PATCH changes them.
func TestLimitsThroughTheAPI(t *testing.T) {
	e := newEnv(t)
	w := do(e.srv, "POST", "/api/v1/api_key/", `{"name":"partner","rate_limits":["100/1m","10000/24h"],"quota":500,"refill":"10000/month"}`, "x-api-key", e.key1)
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	created := decode(t, w)
	assert.Equal(t, []any{"100/1m", "10000/1d"}, created["rate_limits"])
	assert.EqualValues(t, 500, created["quota"])
	assert.EqualValues(t, 500, created["quota_remaining"])
	assert.Equal(t, "10000/month", created["refill"])
	id := created["id"].(string)
	limited := created["api_key"].(string)

	// The limited key is charged; the listing shows what remains.
	for range 3 {
		w = do(e.srv, "GET", "/api/v1/api_key/", "", "x-api-key", limited)
		require.Equal(t, http.StatusOK, w.Code)
		assert.NotEmpty(t, w.Header().Get("RateLimit"))
	}
	require.NoError(t, e.m.Close()) // hands the servers' reserved uses back
	w = do(e.srv, "GET", "/api/v1/api_key/", "", "x-api-key", e.key1)
	require.Equal(t, http.StatusOK, w.Code)
	assert.Empty(t, w.Header().Get("RateLimit"), "an unlimited key's responses carry no RateLimit fields")
	var list struct {
		APIKeys []map[string]any `json:"api_keys"`
	}
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &list))
	require.Len(t, list.APIKeys, 2)
	assert.Nil(t, list.APIKeys[0]["rate_limits"], "unlimited keys list as before")
	assert.Nil(t, list.APIKeys[0]["quota"])
	assert.EqualValues(t, 497, list.APIKeys[1]["quota_remaining"])

	// PATCH: a new rate limit; the quota's remaining uses are kept.
	w = do(e.srv, "PATCH", "/api/v1/api_key/"+id, `{"rate_limits":["5/1s"]}`, "x-api-key", e.key1)
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	got := decode(t, w)
	assert.Equal(t, []any{"5/1s"}, got["rate_limits"])
	assert.EqualValues(t, 497, got["quota_remaining"])
	assert.NotContains(t, got["api_key"], limited[8:], "masked")
	// A new grant, and no refill.
	w = do(e.srv, "PATCH", "/api/v1/api_key/"+id, `{"quota":20,"refill":null}`, "x-api-key", e.key1)
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	got = decode(t, w)
	assert.EqualValues(t, 20, got["quota_remaining"])
	assert.Nil(t, got["refill"])
	// Everything removed.
	w = do(e.srv, "PATCH", "/api/v1/api_key/"+id, `{"rate_limits":[],"quota":null}`, "x-api-key", e.key1)
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	got = decode(t, w)
	assert.Nil(t, got["rate_limits"])
	assert.Nil(t, got["quota"])
}

func TestLimitsErrors(t *testing.T) {
	e := newEnv(t)
	w := do(e.srv, "POST", "/api/v1/api_key/", `{"name":"p","quota":3}`, "x-api-key", e.key1)
	require.Equal(t, http.StatusOK, w.Code)
	created := decode(t, w)
	limited, id := created["api_key"].(string), created["id"].(string)
	for _, tc := range []struct {
		name, method, target, body, key string
		status                          int
		detail                          string
	}{
		{"bad rate", "POST", "/", `{"name":"x","rate_limits":["100/1x"]}`, e.key1, 400, ""},
		{"rate not a list", "POST", "/", `{"name":"x","rate_limits":"100/1m"}`, e.key1, 400, `rate_limits must be a list of strings such as "100/1m"`},
		{"negative quota", "POST", "/", `{"name":"x","quota":-1}`, e.key1, 400, ""},
		{"bad refill", "POST", "/", `{"name":"x","quota":1,"refill":"1/year"}`, e.key1, 400, ""},
		{"quota not a number", "POST", "/", `{"name":"x","quota":"many"}`, e.key1, 400, "quota must be a whole number of uses"},
		{"limited caller creates", "POST", "/", `{"name":"x"}`, limited, 403, apikeyhttp.MsgLimitedCaller},
		{"limited caller patches", "PATCH", "/" + id, `{"quota":null}`, limited, 403, apikeyhttp.MsgLimitedCaller},
		{"other user's key", "PATCH", "/" + e.rec2.ID, `{"quota":5}`, e.key1, 404, apikeyhttp.MsgNotFound},
		{"not a UUID", "PATCH", "/nope", `{"quota":5}`, e.key1, 422, apikeyhttp.MsgInvalidID},
		{"not an object", "PATCH", "/" + id, `[]`, e.key1, 422, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := do(e.srv, tc.method, "/api/v1/api_key"+tc.target, tc.body, "x-api-key", tc.key)
			assert.Equal(t, tc.status, w.Code, w.Body.String())
			if tc.detail != "" {
				assert.Equal(t, tc.detail, decode(t, w)["detail"])
			}
		})
	}
	// Nothing was changed by the refusals.
	w = do(e.srv, "GET", "/api/v1/api_key/", "", "x-api-key", e.key1)
	var list struct {
		APIKeys []map[string]any `json:"api_keys"`
	}
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &list))
	assert.Len(t, list.APIKeys, 2)
}

package apikey_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyflow-dev/keyflow/apikey"
	"github.com/keyflow-dev/keyflow/internal/ids"
	"github.com/keyflow-dev/keyflow/names"
)

func TestCreateVerify(t *testing.T) {
	clock := newFakeClock()
	store := apikey.NewMemoryStore()
	m := newManager(t, apikey.Config{Store: store, Now: clock.Now})
	ctx := context.Background()

	expires := clock.Now().Add(time.Hour)
	key, rec, err := m.Create(ctx, "user-1", "my key", apikey.CreateOptions{ExpiresAt: &expires, Scopes: []string{"flows:run"}})
	require.NoError(t, err)
	require.NoError(t, apikey.Langflow.Check(key))
	assert.True(t, ids.Valid(rec.ID))
	assert.Equal(t, "user-1", rec.UserID)
	assert.Equal(t, "my key", rec.Name)
	assert.Equal(t, apikey.HashKey(key), rec.Hash)
	assert.Equal(t, key[:8], rec.Prefix)
	assert.Equal(t, 46, rec.Length)
	assert.Equal(t, key[:8]+strings.Repeat("*", 38), rec.MaskedKey())
	assert.True(t, rec.CreatedAt.Equal(clock.Now()))
	assert.True(t, rec.Active)
	assert.Nil(t, rec.LastUsedAt)
	assert.Zero(t, rec.TotalUses)
	require.NotNil(t, rec.ExpiresAt)
	assert.True(t, rec.ExpiresAt.Equal(expires))
	assert.Equal(t, []string{"flows:run"}, rec.Scopes)

	stored := record(t, store, key)
	assert.Equal(t, rec.ID, stored.ID)
	assert.True(t, stored.CreatedAt.Equal(rec.CreatedAt))

	p, err := m.Verify(ctx, key)
	require.NoError(t, err)
	assert.Equal(t, apikey.Principal{UserID: "user-1", KeyID: rec.ID, KeyName: "my key", Scopes: []string{"flows:run"}, Source: apikey.SourceDB}, p)
	// From the cache, the same answer.
	p2, err := m.Verify(ctx, key)
	require.NoError(t, err)
	assert.Equal(t, p, p2)
}

func TestCreateTimesAreMicrosecondUTC(t *testing.T) {
	local := time.FixedZone("CET", 3600)
	now := time.Date(2026, 3, 1, 13, 0, 0, 123456789, local)
	m := newManager(t, apikey.Config{Now: func() time.Time { return now }})
	exp := now.Add(time.Hour)
	_, rec := create(t, m, "u", "n", apikey.CreateOptions{ExpiresAt: &exp})
	assert.Equal(t, time.UTC, rec.CreatedAt.Location())
	assert.Equal(t, 123456000, rec.CreatedAt.Nanosecond())
	assert.Equal(t, 123456000, rec.ExpiresAt.Nanosecond())
}

func TestVerifyOutcomes(t *testing.T) {
	clock := newFakeClock()
	store := apikey.NewMemoryStore()
	m := newManager(t, apikey.Config{Store: store, Now: clock.Now})
	ctx := context.Background()
	valid, _ := create(t, m, "u", "valid", apikey.CreateOptions{})
	inactive, inactiveRec := create(t, m, "u", "inactive", apikey.CreateOptions{})
	require.NoError(t, m.SetActive(ctx, "u", inactiveRec.ID, false))
	soon := clock.Now().Add(time.Minute)
	expired, _ := create(t, m, "u", "expired", apikey.CreateOptions{ExpiresAt: &soon})
	clock.Advance(2 * time.Minute)
	unknown, err := apikey.Langflow.Generate()
	require.NoError(t, err)

	for _, tc := range []struct {
		name, key string
		want      error
	}{
		{"valid", valid, nil},
		{"empty", "", apikey.ErrMissing},
		{"malformed", "not-a-key", apikey.ErrInvalid},
		{"over-long", "sk-" + strings.Repeat("A", 1<<20), apikey.ErrInvalid},
		{"unknown", unknown, apikey.ErrInvalid},
		{"unknown, again (negative cache)", unknown, apikey.ErrInvalid},
		{"inactive", inactive, apikey.ErrInactive},
		{"expired", expired, apikey.ErrExpired},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := m.Verify(ctx, tc.key)
			if tc.want == nil {
				require.NoError(t, err)
				assert.Equal(t, "u", p.UserID)
				return
			}
			require.ErrorIs(t, err, tc.want)
			assert.Equal(t, apikey.Principal{}, p)
			assert.NotErrorIs(t, err, apikey.ErrUnavailable)
			if len(tc.key) > 8 {
				assert.NotContains(t, err.Error(), tc.key[3:])
			}
		})
	}
}

// TestExpiry uses an injected clock. Like Langflow (docs/langflow-compatibility.md#api-key-storage,
// `now(UTC) > expires_at`), a key is still valid at its expiry instant.
func TestExpiry(t *testing.T) {
	clock := newFakeClock()
	m := newManager(t, apikey.Config{Now: clock.Now, CacheTTL: time.Hour})
	ctx := context.Background()
	exp := clock.Now().Add(time.Hour)
	key, _ := create(t, m, "u", "k", apikey.CreateOptions{ExpiresAt: &exp})

	_, err := m.Verify(ctx, key) // cached from here on
	require.NoError(t, err)
	clock.Advance(time.Hour)
	_, err = m.Verify(ctx, key)
	require.NoError(t, err, "valid at the expiry instant")
	clock.Advance(time.Microsecond)
	_, err = m.Verify(ctx, key)
	require.ErrorIs(t, err, apikey.ErrExpired, "a cached entry does not outlive the key's expiry")

	never, _ := create(t, m, "u", "never", apikey.CreateOptions{})
	clock.Advance(100 * 365 * 24 * time.Hour)
	_, err = m.Verify(ctx, never)
	require.NoError(t, err)
}

func TestCreateValidation(t *testing.T) {
	clock := newFakeClock()
	m := newManager(t, apikey.Config{Now: clock.Now})
	past := clock.Now().Add(-time.Second)
	now := clock.Now()
	for _, tc := range []struct {
		name, user, keyName string
		opts                apikey.CreateOptions
	}{
		{"empty user", "", "k", apikey.CreateOptions{}},
		{"expiry in the past", "u", "k", apikey.CreateOptions{ExpiresAt: &past}},
		{"expiry now", "u", "k", apikey.CreateOptions{ExpiresAt: &now}},
		{"long name", "u", strings.Repeat("n", 256), apikey.CreateOptions{}},
		{"invalid UTF-8 name", "u", "\xff", apikey.CreateOptions{}},
		{"empty scope", "u", "k", apikey.CreateOptions{Scopes: []string{""}}},
		{"scope with space", "u", "k", apikey.CreateOptions{Scopes: []string{"a b"}}},
		{"scope with quote", "u", "k", apikey.CreateOptions{Scopes: []string{`a"`}}},
		{"long scope", "u", "k", apikey.CreateOptions{Scopes: []string{strings.Repeat("s", 129)}}},
		{"too many scopes", "u", "k", apikey.CreateOptions{Scopes: make([]string, 65)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			key, _, err := m.Create(context.Background(), tc.user, tc.keyName, tc.opts)
			require.Error(t, err)
			assert.Empty(t, key)
			assert.NotErrorIs(t, err, apikey.ErrUnavailable)
		})
	}
	// Valid extremes.
	_, _, err := m.Create(context.Background(), "u", strings.Repeat("é", 127), apikey.CreateOptions{Scopes: []string{"a:b/c!~"}})
	require.NoError(t, err)
	_, _, err = m.Create(context.Background(), "u", "", apikey.CreateOptions{})
	require.NoError(t, err, "Langflow's name is optional")
}

// TestCreateRefusesBadNames: issue 13 item 8. Names with control, invisible
// or bidi characters, or U+FFFD (what a JSON "\ud800" escape decodes to),
// are refused with ErrInvalidName, and nothing is stored.
func TestCreateRefusesBadNames(t *testing.T) {
	t.Parallel()
	m := newManager(t, apikey.Config{})
	ctx := context.Background()
	for name, bad := range map[string]string{
		"NUL":              "a\x00b",
		"ESC":              "\x1b[2Jx",
		"zero-width space": "OPENAI\u200b_API_KEY",
		"RLO":              "\u202eyek",
		"U+FFFD":           "a\ufffd",
		"invalid UTF-8":    "\xff",
		"too long":         strings.Repeat("n", 256),
	} {
		_, _, err := m.Create(ctx, "u", bad, apikey.CreateOptions{})
		require.ErrorIs(t, err, apikey.ErrInvalidName, name)
		assert.ErrorIs(t, err, names.ErrInvalid, name)
		assert.NotContains(t, err.Error(), bad, name)
		_, err = m.Import(ctx, "u", bad, "sk-"+strings.Repeat("A", 43), apikey.CreateOptions{})
		require.ErrorIs(t, err, apikey.ErrInvalidName, name)
	}
	recs, err := m.List(ctx, "u")
	require.NoError(t, err)
	assert.Empty(t, recs, "nothing stored")
}

// TestCreateScopeSubset: issue 13 item 3. A creator with scopes may only
// create keys with a non-empty subset of them; an unrestricted creator (or
// none: a trusted caller) may create anything.
func TestCreateScopeSubset(t *testing.T) {
	t.Parallel()
	m := newManager(t, apikey.Config{})
	ctx := context.Background()
	scoped := &apikey.Principal{UserID: "u", Scopes: []string{"keys", "run"}}
	open := &apikey.Principal{UserID: "u"}
	for _, tc := range []struct {
		name    string
		creator *apikey.Principal
		scopes  []string
		ok      bool
	}{
		{"scoped creator, subset", scoped, []string{"run"}, true},
		{"scoped creator, same scopes", scoped, []string{"run", "keys"}, true},
		{"scoped creator, unrestricted key", scoped, nil, false},
		{"scoped creator, other scope", scoped, []string{"run", "variables:write"}, false},
		{"unrestricted creator, unrestricted key", open, nil, true},
		{"unrestricted creator, any scope", open, []string{"anything"}, true},
		{"no creator (trusted caller)", nil, nil, true},
	} {
		key, rec, err := m.Create(ctx, "u", tc.name, apikey.CreateOptions{Scopes: tc.scopes, Creator: tc.creator})
		if tc.ok {
			require.NoError(t, err, tc.name)
			assert.Equal(t, tc.scopes, rec.Scopes, tc.name)
			continue
		}
		require.ErrorIs(t, err, apikey.ErrScopeNotAllowed, tc.name)
		assert.Empty(t, key)
	}
	recs, err := m.List(ctx, "u")
	require.NoError(t, err)
	assert.Len(t, recs, 5, "refused keys are not stored")
}

// TestZeroValueManager: issue 13 item 10. A Manager not made by NewManager
// (zero value or nil pointer) returns ErrUninitialized from every method
// instead of panicking.
func TestZeroValueManager(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for name, m := range map[string]*apikey.Manager{"zero value": {}, "nil": nil} {
		t.Run(name, func(t *testing.T) {
			require.NotPanics(t, func() {
				_, _, err := m.Create(ctx, "u", "k", apikey.CreateOptions{})
				assert.ErrorIs(t, err, apikey.ErrUninitialized)
				_, err = m.Import(ctx, "u", "k", "sk-"+strings.Repeat("A", 43), apikey.CreateOptions{})
				assert.ErrorIs(t, err, apikey.ErrUninitialized)
				_, err = m.List(ctx, "u")
				assert.ErrorIs(t, err, apikey.ErrUninitialized)
				assert.ErrorIs(t, m.Delete(ctx, "u", "id"), apikey.ErrUninitialized)
				assert.ErrorIs(t, m.SetActive(ctx, "u", "id", false), apikey.ErrUninitialized)
				_, err = m.Verify(ctx, "sk-"+strings.Repeat("A", 43))
				assert.ErrorIs(t, err, apikey.ErrUninitialized)
				assert.ErrorIs(t, m.Flush(ctx), apikey.ErrUninitialized)
				assert.ErrorIs(t, m.Close(), apikey.ErrUninitialized)
				m.Invalidate(apikey.HashKey("k"))
			})
		})
	}
}

// TestList_Reference34: the caller's keys only, oldest first, masked.
func TestList_Reference34(t *testing.T) {
	clock := newFakeClock()
	m := newManager(t, apikey.Config{Now: clock.Now})
	ctx := context.Background()
	var want []string
	for i := range 3 {
		key, _ := create(t, m, "alice", "k", apikey.CreateOptions{})
		want = append(want, key[:8]+strings.Repeat("*", 38))
		clock.Advance(time.Second)
		if i == 1 {
			create(t, m, "bob", "k", apikey.CreateOptions{})
		}
	}
	recs, err := m.List(ctx, "alice")
	require.NoError(t, err)
	var got []string
	for _, r := range recs {
		assert.Equal(t, "alice", r.UserID)
		got = append(got, r.MaskedKey())
	}
	assert.Equal(t, want, got)

	none, err := m.List(ctx, "carol")
	require.NoError(t, err)
	assert.NotNil(t, none)
	assert.Empty(t, none)
}

// TestDelete_Reference35: deleting a missing key and another user's key look
// the same (test_delete_api_key_route_unauthorized), and a deleted key stops
// working at once.
func TestDelete_Reference35(t *testing.T) {
	m := newManager(t, apikey.Config{CacheTTL: time.Hour})
	ctx := context.Background()
	key, rec := create(t, m, "alice", "k", apikey.CreateOptions{})
	_, err := m.Verify(ctx, key) // cached
	require.NoError(t, err)

	require.ErrorIs(t, m.Delete(ctx, "bob", rec.ID), apikey.ErrNotFound)
	require.ErrorIs(t, m.Delete(ctx, "alice", ids.New()), apikey.ErrNotFound)
	require.ErrorIs(t, m.Delete(ctx, "alice", "not-a-uuid"), apikey.ErrNotFound)
	_, err = m.Verify(ctx, key)
	require.NoError(t, err, "another user's Delete changed nothing")

	require.NoError(t, m.Delete(ctx, "alice", rec.ID))
	_, err = m.Verify(ctx, key)
	require.ErrorIs(t, err, apikey.ErrInvalid)
	require.ErrorIs(t, m.Delete(ctx, "alice", rec.ID), apikey.ErrNotFound)
}

func TestSetActive(t *testing.T) {
	m := newManager(t, apikey.Config{CacheTTL: time.Hour})
	ctx := context.Background()
	key, rec := create(t, m, "alice", "k", apikey.CreateOptions{})
	_, err := m.Verify(ctx, key)
	require.NoError(t, err)

	require.ErrorIs(t, m.SetActive(ctx, "bob", rec.ID, false), apikey.ErrNotFound)
	_, err = m.Verify(ctx, key)
	require.NoError(t, err)

	require.NoError(t, m.SetActive(ctx, "alice", rec.ID, false))
	_, err = m.Verify(ctx, key)
	require.ErrorIs(t, err, apikey.ErrInactive)
	recs, err := m.List(ctx, "alice")
	require.NoError(t, err)
	assert.False(t, recs[0].Active)

	require.NoError(t, m.SetActive(ctx, "alice", rec.ID, true))
	_, err = m.Verify(ctx, key)
	require.NoError(t, err)
}

// TestImport_Reference33: a plaintext key from a Langflow database is stored
// hashed, with Langflow's api_key_hash, and verifies.
func TestImport_Reference33(t *testing.T) {
	store := apikey.NewMemoryStore()
	m := newManager(t, apikey.Config{Store: store})
	ctx := context.Background()

	// Tried before the import: remembered as unknown.
	_, err := m.Verify(ctx, langflowKey)
	require.ErrorIs(t, err, apikey.ErrInvalid)

	rec, err := m.Import(ctx, "alice", "from langflow", langflowKey, apikey.CreateOptions{})
	require.NoError(t, err)
	assert.Equal(t, langflowHash, rec.Hash.String())
	assert.Equal(t, langflowMasked, rec.MaskedKey())
	assert.True(t, rec.Active)

	p, err := m.Verify(ctx, langflowKey)
	require.NoError(t, err, "Import evicts the negative cache entry")
	assert.Equal(t, rec.ID, p.KeyID)
	assert.Equal(t, "from langflow", p.KeyName)

	_, err = m.Import(ctx, "bob", "again", langflowKey, apikey.CreateOptions{})
	require.ErrorIs(t, err, apikey.ErrDuplicate)
	_, err = m.Import(ctx, "alice", "bad", "sk-short", apikey.CreateOptions{})
	require.ErrorIs(t, err, apikey.ErrInvalid)
	_, err = m.Import(ctx, "alice", "empty", "", apikey.CreateOptions{})
	require.ErrorIs(t, err, apikey.ErrInvalid)
	_, err = m.Import(ctx, "", "no user", langflowKey, apikey.CreateOptions{})
	require.Error(t, err)

	// An expired key can be imported; it verifies as expired.
	past := time.Now().Add(-time.Hour)
	key, err := apikey.Langflow.Generate()
	require.NoError(t, err)
	_, err = m.Import(ctx, "alice", "old", key, apikey.CreateOptions{ExpiresAt: &past})
	require.NoError(t, err)
	_, err = m.Verify(ctx, key)
	require.ErrorIs(t, err, apikey.ErrExpired)
}

func TestChecksumFormatManager(t *testing.T) {
	f := mustChecksum(t, "kf")
	m := newManager(t, apikey.Config{Format: f, AcceptFormats: []apikey.Format{f, apikey.Langflow}})
	ctx := context.Background()
	key, rec := create(t, m, "alice", "k", apikey.CreateOptions{})
	require.True(t, strings.HasPrefix(key, "kf_"))
	assert.Equal(t, len(key), rec.Length)
	assert.Equal(t, key[:8]+strings.Repeat("*", len(key)-8), rec.MaskedKey())
	_, err := m.Verify(ctx, key)
	require.NoError(t, err)

	_, err = m.Import(ctx, "alice", "legacy", langflowKey, apikey.CreateOptions{})
	require.NoError(t, err)
	_, err = m.Verify(ctx, langflowKey)
	require.NoError(t, err)

	bad := key[:10] + flipBase62(key[10]) + key[11:]
	_, err = m.Verify(ctx, bad)
	require.ErrorIs(t, err, apikey.ErrInvalid)
	assert.Contains(t, err.Error(), "checksum", "the reason of the format whose prefix matched")
	_, err = m.Verify(ctx, "zz_nothing")
	require.ErrorIs(t, err, apikey.ErrInvalid)

	// Only the checksum format: Langflow keys are refused before any I/O.
	store := newFaultyStore()
	strict := newManager(t, apikey.Config{Format: f, Store: store})
	_, err = strict.Verify(ctx, langflowKey)
	require.ErrorIs(t, err, apikey.ErrInvalid)
	_, err = strict.Verify(ctx, bad)
	require.ErrorIs(t, err, apikey.ErrInvalid)
	assert.Zero(t, store.calls("ByHash"))
}

func flipBase62(c byte) string {
	if c == 'a' {
		return "b"
	}
	return "a"
}

// errFormat is a third-party format whose errors do not wrap ErrInvalid.
type errFormat struct{ apikey.Format }

func (errFormat) Check(key string) error {
	if key == "ok" {
		return nil
	}
	return assert.AnError
}

func TestNewManagerConfig(t *testing.T) {
	f := mustChecksum(t, "kf")
	for _, tc := range []struct {
		name string
		cfg  apikey.Config
	}{
		{"AcceptFormats rejects Format's keys", apikey.Config{Format: f, AcceptFormats: []apikey.Format{apikey.Langflow}}},
		{"nil in AcceptFormats", apikey.Config{AcceptFormats: []apikey.Format{apikey.Langflow, nil}}},
		{"empty AcceptFormats", apikey.Config{AcceptFormats: []apikey.Format{}}},
		// Issue 13 item 10: a typed nil is refused, not panicking per call.
		{"typed-nil Store", apikey.Config{Store: (*apikey.MemoryStore)(nil)}},
		{"typed-nil Changes", apikey.Config{Changes: (*fakeFeed)(nil)}},
		{"typed-nil ChangesNotifier", apikey.Config{Changes: &fakeFeed{}, ChangesNotifier: (*fakeNotifier)(nil)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := apikey.NewManager(tc.cfg)
			assert.Error(t, err)
		})
	}

	// A third-party format's error is reported as ErrInvalid.
	m := newManager(t, apikey.Config{AcceptFormats: []apikey.Format{apikey.Langflow, errFormat{}}})
	_, err := m.Verify(context.Background(), "junk")
	require.ErrorIs(t, err, apikey.ErrInvalid)
}

func TestCacheTTLAndInvalidate(t *testing.T) {
	clock := newFakeClock()
	store := newFaultyStore()
	m := newManager(t, apikey.Config{Store: store, Now: clock.Now, CacheTTL: 5 * time.Second})
	ctx := context.Background()
	key, rec := create(t, m, "alice", "k", apikey.CreateOptions{})
	_, err := m.Verify(ctx, key)
	require.NoError(t, err)
	require.EqualValues(t, 1, store.calls("ByHash"))

	// Another instance deletes the key directly in the shared store.
	_, err = store.Store.Delete(ctx, "alice", rec.ID)
	require.NoError(t, err)
	clock.Advance(4 * time.Second)
	_, err = m.Verify(ctx, key)
	require.NoError(t, err, "served from the cache within CacheTTL")
	require.EqualValues(t, 1, store.calls("ByHash"), "a warm cache does no I/O")
	clock.Advance(time.Second)
	_, err = m.Verify(ctx, key)
	require.ErrorIs(t, err, apikey.ErrInvalid, "seen once the entry is stale")

	// With Invalidate, at once.
	key2, rec2 := create(t, m, "alice", "k2", apikey.CreateOptions{})
	_, err = m.Verify(ctx, key2)
	require.NoError(t, err)
	_, err = store.Store.SetActive(ctx, "alice", rec2.ID, false)
	require.NoError(t, err)
	m.Invalidate(rec2.Hash)
	_, err = m.Verify(ctx, key2)
	require.ErrorIs(t, err, apikey.ErrInactive)
	m.Invalidate(apikey.HashKey("never cached")) // harmless
}

func TestNegativeCache(t *testing.T) {
	clock := newFakeClock()
	store := newFaultyStore()
	m := newManager(t, apikey.Config{Store: store, Now: clock.Now})
	ctx := context.Background()
	unknown, err := apikey.Langflow.Generate()
	require.NoError(t, err)
	for range 5 {
		_, err := m.Verify(ctx, unknown)
		require.ErrorIs(t, err, apikey.ErrInvalid)
	}
	assert.EqualValues(t, 1, store.calls("ByHash"))
	clock.Advance(apikey.DefaultNegativeCacheTTL)
	_, err = m.Verify(ctx, unknown)
	require.ErrorIs(t, err, apikey.ErrInvalid)
	assert.EqualValues(t, 2, store.calls("ByHash"))
}

func TestCacheDisabled(t *testing.T) {
	for _, cfg := range []apikey.Config{
		{CacheSize: -1},
		{CacheTTL: -1, NegativeCacheTTL: -1},
	} {
		store := newFaultyStore()
		cfg.Store = store
		m := newManager(t, cfg)
		ctx := context.Background()
		key, _ := create(t, m, "u", "k", apikey.CreateOptions{})
		unknown, err := apikey.Langflow.Generate()
		require.NoError(t, err)
		for range 3 {
			_, err := m.Verify(ctx, key)
			require.NoError(t, err)
			_, err = m.Verify(ctx, unknown)
			require.ErrorIs(t, err, apikey.ErrInvalid)
		}
		assert.EqualValues(t, 6, store.calls("ByHash"))
	}
}

func TestVerifyWarmAllocs(t *testing.T) {
	for _, f := range []apikey.Format{apikey.Langflow, mustChecksum(t, "kf")} {
		m := newManager(t, apikey.Config{Format: f})
		ctx := context.Background()
		key, _ := create(t, m, "u", "k", apikey.CreateOptions{Scopes: []string{"a", "b"}})
		_, err := m.Verify(ctx, key)
		require.NoError(t, err)
		allocs := testing.AllocsPerRun(1000, func() {
			if _, err := m.Verify(ctx, key); err != nil {
				t.Fatal(err)
			}
		})
		assert.Zero(t, allocs, "allocations per warm Verify")
		bad := key[:len(key)-1] + "!"
		allocs = testing.AllocsPerRun(1000, func() { _, _ = m.Verify(ctx, bad) })
		assert.Zero(t, allocs, "allocations per malformed key")
	}
}

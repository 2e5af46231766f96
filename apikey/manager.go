package apikey

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"time"

	"github.com/keyflow-dev/keyflow/internal/changefeed"
	"github.com/keyflow-dev/keyflow/internal/ids"
	"github.com/keyflow-dev/keyflow/internal/isnil"
	"github.com/keyflow-dev/keyflow/names"
	"github.com/keyflow-dev/keyflow/observe"
)

// Config configures a Manager. The zero value is useful: an in-memory store,
// Langflow's key format, a 10 000-entry cache and usage counters flushed
// every 10 seconds.
type Config struct {
	// Store keeps the records. nil: a new MemoryStore.
	Store Store

	// Format makes the keys that Create returns. nil: Langflow.
	Format Format

	// AcceptFormats are the formats Verify and Import accept, tried in
	// order. nil: {Format}. It must accept the keys Format makes.
	AcceptFormats []Format

	// CacheSize bounds the number of cached verification results, positive
	// and negative. 0: 10 000. Negative: no cache (every Verify reads the
	// store).
	CacheSize int

	// CacheTTL is how long a verified key is trusted without reading the
	// store again. Without Changes, it bounds how late this Manager sees a
	// change made by another process sharing the store (unless that change
	// is passed to Invalidate); with Changes, ChangesMaxLag does. Changes
	// made through this Manager are seen at once. 0: 5 s. Negative: verified
	// keys are not cached. A store with a CacheBound (and no Changes) caps
	// it, and NegativeCacheTTL, to its bound.
	CacheTTL time.Duration

	// NegativeCacheTTL is how long an unknown key is remembered as unknown,
	// so that repeated junk keys do not reach the store. 0: 1 s. Negative:
	// unknown keys are not cached.
	NegativeCacheTTL time.Duration

	// FlushInterval is how often usage counters are written to the store,
	// in one Store.AddUsage call. 0: 10 s. Negative: only by Flush and
	// Close.
	FlushInterval time.Duration

	// DisableUsageTracking turns off total_uses and last_used_at counting.
	// It is Langflow's LANGFLOW_DISABLE_TRACK_APIKEY_USAGE setting; the host
	// reads the variable and sets this field.
	DisableUsageTracking bool

	// Now returns the current time. nil: the system clock, read through an
	// internal millisecond clock on the verification path.
	Now func() time.Time

	// Logger receives failed usage flushes, dropped usage counts, the
	// change feed's failures and recoveries, and failed loads of the key
	// index (UnknownKeyReads). nil: slog.Default(). Keys are never logged.
	Logger *slog.Logger

	// Changes, when set, is polled (every ChangesPollInterval while keys are
	// being verified, and at once on a ChangesNotifier's signal) for keys
	// that other processes sharing the store changed, and each is dropped from
	// the cache (Invalidate), so that a key revoked, disabled or created
	// anywhere is seen here within ChangesMaxLag. nil: no feed; changes made
	// elsewhere are then seen when cached entries expire (CacheTTL,
	// NegativeCacheTTL). Ignored when the cache is off.
	Changes ChangeFeed

	// ChangesMaxLag is the bound on how late this Manager applies a change
	// made by another process, when Changes is set: a cached result is used
	// only while the feed's last successful poll began less than
	// ChangesMaxLag ago. If the feed fails for longer (for example while the
	// database is unreachable), the cache is dropped and every verification
	// reads the store (and fails with ErrUnavailable while it is down), until
	// the feed works again. 0: 1 s.
	ChangesMaxLag time.Duration

	// ChangesPollInterval is how often Changes is polled while keys are
	// being verified. 0: a fifth of ChangesMaxLag (200 ms). It must be
	// shorter than ChangesMaxLag. After 25 polls in a row without a
	// verification the poller sleeps (an idle server does not poll); the
	// next verification wakes it, and the verifications made until its
	// first poll has caught up read the store instead of the cache.
	ChangesPollInterval time.Duration

	// ChangesNotifier, when set with Changes, pushes word of changes: the
	// Manager polls Changes as soon as its subscription signals, instead of
	// at the next poll, so that changes are seen in milliseconds rather
	// than within ChangesPollInterval. The feed stays the source of truth
	// and the polls go on, so that the ChangesMaxLag bound holds when
	// notifications are lost or late. Package apikey/sqlstore/pgnotify
	// provides one for PostgreSQL (LISTEN/NOTIFY).
	ChangesNotifier ChangeNotifier

	// Hooks, when set, receives every verification (outcome, whether the
	// cache answered, duration), every usage flush and every change feed
	// poll, and opens spans around store reads (package observe; adapters
	// for Prometheus and OpenTelemetry are nested modules). nil: nothing is
	// measured, at no cost on the verification path.
	Hooks observe.Hooks

	// UsageHistoryRetention is how long the hourly usage history is kept,
	// when the store keeps one (UsageHistory). 0:
	// DefaultUsageHistoryRetention (35 days). Negative: no history is
	// written.
	UsageHistoryRetention time.Duration

	// MaxPendingUsage bounds how many keys' usage counts are kept in memory
	// while the store cannot take them (failed flushes). When a failed flush
	// leaves more, the counts of the excess keys are dropped and an error is
	// logged with their number. 0: 100 000. Negative: no bound.
	MaxPendingUsage int

	// Limiter counts the rate limits of limited keys (Limits.Rate). nil: a
	// MemoryLimiter, exact for this process alone; instances sharing a
	// store share a Limiter too (package apikey/sqlstore's Store, package
	// apikey/redislimit). Keys without limits never reach it.
	Limiter Limiter

	// UnknownKeyReads bounds how many verifications a second may read the
	// store for a key missing from the key index; the others are refused
	// as unknown (ErrInvalid) without I/O. The key index is the set of the
	// store's key hashes (up to about 40 bytes a key), which the Manager
	// keeps when Changes is set (with the cache on) and the Store lists its
	// hashes (HashLister): loaded at the feed's first poll, kept complete by
	// the feed, consulted only while the feed is trusted. It spares the
	// store a flood of made-up keys, while a key that another process
	// created since the feed's last poll is still found at once within this
	// budget (beyond it, within ChangesMaxLag). 0: DefaultUnknownKeyReads
	// (100). Negative: no index; every cache miss reads the store.
	UnknownKeyReads int

	// LimitsFailOpen admits requests of limited keys, uncounted, while the
	// Limiter or the store's quota cannot be reached. false (the default):
	// such requests fail with ErrUnavailable (503). Unlimited keys are never
	// affected either way.
	LimitsFailOpen bool
}

// CreateOptions are the optional properties of a new key.
type CreateOptions struct {
	// ExpiresAt is when the key stops working; nil: never. Create refuses a
	// time that has already passed; Import accepts it (the key then verifies
	// as ErrExpired).
	ExpiresAt *time.Time
	// Scopes restrict the key; nil or empty: unrestricted. Each scope is 1
	// to 128 printable ASCII characters without spaces (an OAuth 2.0
	// scope-token), at most 64 scopes.
	Scopes []string
	// Creator is who asks for the key, when a caller authenticated by a key
	// does (apikeyhttp sets it to the request's Principal). A creator with
	// scopes may only create a key whose scopes are a non-empty subset of
	// its own (Principal.CanGrant); otherwise Create returns
	// ErrScopeNotAllowed. nil: a trusted caller (the CLI, the host's own
	// code), no check. A creator without scopes is unrestricted, as
	// Langflow's keys are.
	Creator *Principal
	// Limits are the key's rate limits and quota; the zero value: none.
	// The quota starts with Limits.Quota.Limit uses. A store that cannot
	// keep limits (no LimitStore) makes Create fail with
	// ErrLimitsUnsupported.
	Limits Limits
}

// Defaults of Config, applied by NewManager to zero fields.
const (
	DefaultCacheSize        = 10000
	DefaultCacheTTL         = 5 * time.Second
	DefaultNegativeCacheTTL = time.Second
	DefaultFlushInterval    = 10 * time.Second
	DefaultMaxPendingUsage  = 100000
)

const (
	maxScopes    = 64
	maxScopeLen  = 128
	minFlushWait = 5 * time.Second // minimum deadline of a background flush
)

// Manager creates, lists, revokes and verifies API keys over a Store, with a
// verification cache and batched usage counters. It is safe for concurrent
// use. Close it to stop its background flusher and write pending counters.
type Manager struct {
	store  Store
	format Format
	accept []Format
	nowFn  func() time.Time
	clock  coarseClock
	log    *slog.Logger

	cache  *cache    // nil: no cache
	epoch  time.Time // the origin of the hooks' monotonic times
	posTTL int64     // nanoseconds; ≤ 0: positives not cached
	negTTL int64     // nanoseconds; ≤ 0: negatives not cached

	track      bool
	usage      usage
	maxPending int // ≤ 0: unbounded

	lim limiting // usage limits (limiting.go)

	feed        *changefeed.Follower[Hash] // follows Config.Changes (changes.go); nil: none
	index       *keyIndex                  // the key index (index.go); nil: none
	unsubscribe func()                     // ends the ChangesNotifier subscription; nil: none

	// done ends at Close (stop): it stops the background goroutines and
	// cancels a change-feed poll under way.
	done      context.Context
	stop      context.CancelFunc
	wg        sync.WaitGroup
	closeOnce sync.Once

	hooks   observe.Hooks // nil: none
	history history       // usage per key and hour (history.go)
}

// withDefaults returns cfg with every zero field set to its default.
func (cfg Config) withDefaults() Config {
	if cfg.Store == nil {
		cfg.Store = NewMemoryStore()
	}
	if cfg.Format == nil {
		cfg.Format = Langflow
	}
	if cfg.AcceptFormats == nil {
		cfg.AcceptFormats = []Format{cfg.Format}
	}
	cfg.CacheSize = orDefault(cfg.CacheSize, DefaultCacheSize)
	cfg.CacheTTL = orDefault(cfg.CacheTTL, DefaultCacheTTL)
	cfg.NegativeCacheTTL = orDefault(cfg.NegativeCacheTTL, DefaultNegativeCacheTTL)
	cfg.FlushInterval = orDefault(cfg.FlushInterval, DefaultFlushInterval)
	cfg.MaxPendingUsage = orDefault(cfg.MaxPendingUsage, DefaultMaxPendingUsage)
	cfg.ChangesMaxLag = orDefault(cfg.ChangesMaxLag, DefaultChangesMaxLag)
	cfg.ChangesPollInterval = orDefault(cfg.ChangesPollInterval, cfg.ChangesMaxLag/5)
	cfg.UnknownKeyReads = orDefault(cfg.UnknownKeyReads, DefaultUnknownKeyReads)
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return cfg
}

// orDefault returns def when v is zero.
func orDefault[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

// NewManager returns a Manager for cfg, and starts its usage flusher unless
// usage tracking is disabled or cfg.FlushInterval is negative, and its change
// feed poller when cfg.Changes is set (and the cache is on).
//
// Zero fields of cfg take their defaults:
//
//	Store                a new MemoryStore
//	Format               Langflow
//	AcceptFormats        {Format}
//	CacheSize            DefaultCacheSize          (10 000 entries)
//	CacheTTL             DefaultCacheTTL           (5 s)
//	NegativeCacheTTL     DefaultNegativeCacheTTL   (1 s)
//	FlushInterval        DefaultFlushInterval      (10 s)
//	MaxPendingUsage      DefaultMaxPendingUsage    (100 000 keys)
//	ChangesMaxLag        DefaultChangesMaxLag      (1 s)
//	ChangesPollInterval  ChangesMaxLag / 5         (200 ms)
//	UnknownKeyReads      DefaultUnknownKeyReads    (100 a second)
//	Now                  the system clock
//	Logger               slog.Default()
//
// It returns an error, and starts nothing, when Store, Changes,
// ChangesNotifier or Format holds a nil pointer (a typed nil), when AcceptFormats is empty or holds a nil
// Format, does not accept the keys Format makes, or when Changes
// is set and ChangesPollInterval is not shorter than ChangesMaxLag.
func NewManager(cfg Config) (*Manager, error) {
	// A typed nil (a nil *sqlstore.Store in the interface) is not "unset":
	// it would fail on every call, so it is refused.
	if cfg.Store != nil && isnil.Value(cfg.Store) {
		return nil, errors.New("apikey: Config.Store holds a nil pointer")
	}
	if cfg.Changes != nil && isnil.Value(cfg.Changes) {
		return nil, errors.New("apikey: Config.Changes holds a nil pointer")
	}
	if cfg.ChangesNotifier != nil && isnil.Value(cfg.ChangesNotifier) {
		return nil, errors.New("apikey: Config.ChangesNotifier holds a nil pointer")
	}
	if cfg.Format != nil && isnil.Value(cfg.Format) {
		return nil, errors.New("apikey: Config.Format holds a nil pointer")
	}
	if cfg.Limiter != nil && isnil.Value(cfg.Limiter) {
		return nil, errors.New("apikey: Config.Limiter holds a nil pointer")
	}
	cfg = cfg.withDefaults()
	m := &Manager{
		store:      cfg.Store,
		format:     cfg.Format,
		nowFn:      cfg.Now,
		log:        cfg.Logger,
		track:      !cfg.DisableUsageTracking,
		hooks:      cfg.Hooks,
		maxPending: cfg.MaxPendingUsage,
		epoch:      time.Now(),
	}
	m.lim.init(cfg, m.store)
	if len(cfg.AcceptFormats) == 0 {
		return nil, errors.New("apikey: Config.AcceptFormats is empty")
	}
	for _, f := range cfg.AcceptFormats {
		if isnil.Value(f) {
			return nil, errors.New("apikey: Config.AcceptFormats holds a nil Format")
		}
	}
	m.accept = append([]Format(nil), cfg.AcceptFormats...)
	sample, err := m.format.Generate()
	if err != nil {
		return nil, fmt.Errorf("apikey: Config.Format cannot generate a key: %w", err)
	}
	if m.checkFormat(sample) != nil {
		return nil, errors.New("apikey: Config.AcceptFormats rejects the keys of Config.Format")
	}

	if b, ok := m.store.(CacheBound); ok && cfg.Changes == nil {
		// The store's rows change behind the Manager's back and nothing
		// reports it: cached verdicts must not outlive the store's bound.
		if limit := b.MaxCacheAge(); limit > 0 {
			cfg.CacheTTL, cfg.NegativeCacheTTL = min(cfg.CacheTTL, limit), min(cfg.NegativeCacheTTL, limit)
		}
	}
	m.posTTL, m.negTTL = int64(cfg.CacheTTL), int64(cfg.NegativeCacheTTL)
	if cfg.CacheSize > 0 && (cfg.CacheTTL > 0 || cfg.NegativeCacheTTL > 0) {
		m.cache = newCache(cfg.CacheSize)
	}
	maxLag, poll := cfg.ChangesMaxLag, cfg.ChangesPollInterval
	if cfg.Changes != nil && (maxLag < 0 || poll <= 0 || poll >= maxLag) {
		return nil, errors.New("apikey: Config.ChangesPollInterval must be positive and shorter than Config.ChangesMaxLag")
	}

	m.initHistory(cfg)
	m.done, m.stop = context.WithCancel(context.Background())
	if m.track && cfg.FlushInterval > 0 {
		m.wg.Add(1)
		go m.flushLoop(cfg.FlushInterval)
	}
	if cfg.Changes != nil && m.cache != nil {
		var notes <-chan struct{}
		if cfg.ChangesNotifier != nil {
			notes, m.unsubscribe = cfg.ChangesNotifier.Subscribe()
		}
		if l, ok := m.store.(HashLister); ok && cfg.UnknownKeyReads >= 0 {
			m.index = newKeyIndex(m.done, l, cfg.UnknownKeyReads, m.log.Warn)
		}
		m.startFeed(cfg.Changes, poll, maxLag, notes) // nothing cached is trusted before its first poll
	}
	return m, nil
}

// ready returns ErrUninitialized unless m was made by NewManager, so that
// misuse (a nil or zero-value Manager) fails every call instead of
// panicking.
func (m *Manager) ready() error {
	if m == nil || m.store == nil {
		return ErrUninitialized
	}
	return nil
}

// Create makes a new key for userID and stores its record. It returns the key
// (the only time it is available: only its hash is stored) and the record.
// Errors: invalid arguments (ErrInvalidName for a name that package names
// refuses, others with a reason); ErrScopeNotAllowed when opts.Creator may
// not grant the scopes asked for; ErrUnavailable if the store fails;
// ErrUninitialized for a Manager not made by NewManager. Nothing is stored
// on error.
func (m *Manager) Create(ctx context.Context, userID, name string, opts CreateOptions) (key string, rec Record, err error) {
	if err := m.ready(); err != nil {
		return "", Record{}, err
	}
	now := m.now()
	if err := validate(userID, name, opts); err != nil {
		return "", Record{}, err
	}
	if err := m.checkLimits(opts.Limits); err != nil {
		return "", Record{}, err
	}
	if opts.Creator != nil && !opts.Creator.CanGrant(opts.Scopes) {
		return "", Record{}, ErrScopeNotAllowed
	}
	if opts.ExpiresAt != nil && !opts.ExpiresAt.After(now) {
		return "", Record{}, errors.New("apikey: expiry time is not in the future")
	}
	key, err = m.format.Generate()
	if err != nil {
		return "", Record{}, fmt.Errorf("apikey: generate key: %w", err)
	}
	rec = newRecord(userID, name, key, now, opts)
	if err := m.insert(ctx, "create", rec, key); err != nil {
		return "", Record{}, err
	}
	return key, rec.clone(), nil
}

// Import stores an existing plaintext key, for example one read from a
// Langflow database (its api_key column, decrypted if needed), so that it is
// stored hashed and verifies as before. The key must be accepted by one of
// Config.AcceptFormats. Errors: ErrInvalid if it is not; ErrDuplicate if the
// key is already stored; invalid arguments; ErrUnavailable.
//
// To carry over a Langflow row's counters and dates as well, insert a Record
// into the Store directly, with Hash set to HashKey(key), then call
// Invalidate(HashKey(key)).
func (m *Manager) Import(ctx context.Context, userID, name, key string, opts CreateOptions) (Record, error) {
	if err := m.ready(); err != nil {
		return Record{}, err
	}
	if err := validate(userID, name, opts); err != nil {
		return Record{}, err
	}
	if err := m.checkLimits(opts.Limits); err != nil {
		return Record{}, err
	}
	if key == "" {
		return Record{}, errEmpty
	}
	if err := m.checkFormat(key); err != nil {
		return Record{}, err
	}
	rec := newRecord(userID, name, key, m.now(), opts)
	if err := m.insert(ctx, "import", rec, key); err != nil {
		return Record{}, err
	}
	return rec.clone(), nil
}

// insert stores rec, whose key is key, through the store's InsertKey when
// it has one (KeyInserter), else Insert.
func (m *Manager) insert(ctx context.Context, op string, rec Record, key string) error {
	var err error
	if ki, ok := m.store.(KeyInserter); ok {
		err = ki.InsertKey(ctx, rec, key)
	} else {
		err = m.store.Insert(ctx, rec)
	}
	// Drop a negative entry for this key (an Import of a key tried before).
	m.Invalidate(rec.Hash)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ErrDuplicate):
		return ErrDuplicate
	default:
		return unavailable(op, err)
	}
}

func newRecord(userID, name, key string, now time.Time, opts CreateOptions) Record {
	rec := Record{
		ID:        ids.New(),
		UserID:    userID,
		Name:      name,
		Hash:      HashKey(key),
		Prefix:    displayPrefix(key),
		Length:    len(key),
		CreatedAt: now,
		Active:    true,
	}
	if opts.ExpiresAt != nil {
		t := normTime(*opts.ExpiresAt)
		rec.ExpiresAt = &t
	}
	if len(opts.Scopes) > 0 {
		rec.Scopes = append([]string(nil), opts.Scopes...)
	}
	if !opts.Limits.IsZero() {
		rec.Limits = grantLimits(opts.Limits.Normalize(), now)
	}
	return rec
}

func validate(userID, name string, opts CreateOptions) error {
	if err := names.Check(name); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidName, err)
	}
	switch {
	case userID == "":
		return errors.New("apikey: user ID is empty")
	case len(opts.Scopes) > maxScopes:
		return fmt.Errorf("apikey: more than %d scopes", maxScopes)
	}
	for _, s := range opts.Scopes {
		if s == "" || len(s) > maxScopeLen {
			return fmt.Errorf("apikey: a scope must be 1 to %d characters", maxScopeLen)
		}
		for i := 0; i < len(s); i++ {
			if c := s[i]; c <= ' ' || c > '~' || c == '"' || c == '\\' {
				return errors.New("apikey: a scope may hold only printable ASCII characters other than space, \" and \\")
			}
		}
	}
	return nil
}

// List returns the keys of userID, oldest first, with Langflow's masking
// available through Record.MaskedKey; an empty slice when there are none.
// TotalUses and LastUsedAt are as last flushed, so they can lag by up to
// Config.FlushInterval. Errors: ErrUnavailable.
func (m *Manager) List(ctx context.Context, userID string) ([]Record, error) {
	if err := m.ready(); err != nil {
		return nil, err
	}
	recs, err := m.listByUser(ctx, userID)
	if err != nil {
		return nil, unavailable("list", err)
	}
	if recs == nil {
		recs = []Record{}
	}
	m.presentLimits(recs, m.now())
	return recs, nil
}

// Delete revokes key id of userID by deleting its record. It returns
// ErrNotFound if there is no such key or it belongs to another user (the two
// look the same), and ErrUnavailable if the store fails. Once Delete returns
// nil, no Verify on this Manager accepts the key. When it returns an error
// the key's cached verdict is dropped too, so that a deletion whose reply
// was lost is not undone by the cache.
func (m *Manager) Delete(ctx context.Context, userID, id string) error {
	if err := m.ready(); err != nil {
		return err
	}
	rec, err := m.store.Delete(ctx, userID, id)
	if err != nil {
		return m.mutationError("delete", id, err)
	}
	m.Invalidate(rec.Hash)
	return nil
}

// SetActive enables or disables key id of userID (Langflow's is_active); a
// disabled key verifies as ErrInactive. Errors and cache eviction as for
// Delete.
func (m *Manager) SetActive(ctx context.Context, userID, id string, active bool) error {
	if err := m.ready(); err != nil {
		return err
	}
	rec, err := m.store.SetActive(ctx, userID, id, active)
	if err != nil {
		return m.mutationError("set active", id, err)
	}
	m.Invalidate(rec.Hash)
	return nil
}

// mutationError maps a failed Delete or SetActive. The store may have made
// the change and lost the reply (a timeout after commit), and a retry then
// finds nothing; either way the key's cached verdict can no longer be
// trusted, so it is dropped (found by key ID: the hash is unknown here).
func (m *Manager) mutationError(op, id string, err error) error {
	if m.cache != nil {
		m.cache.invalidateKeyID(id)
	}
	if errors.Is(err, ErrNotFound) {
		return ErrNotFound
	}
	return unavailable(op, err)
}

var errWrongRecord = errors.New("store returned a record with another hash")

// Verify checks key and returns who it acts for.
//
// It returns ErrMissing for an empty key, an error wrapping ErrInvalid for a
// malformed or unknown key (a malformed one is refused without I/O; a key
// over MaxKeyLength is not even hashed), ErrInactive for a disabled key, ErrExpired for an expired one, and an
// error wrapping ErrUnavailable and the cause when the store fails; only a nil
// error authenticates. A store failure is never cached.
//
// On a cache hit Verify does no I/O and allocates nothing; the returned
// Principal's Scopes are shared and must not be modified. Nor does it for a
// key that the key index refuses (Config.UnknownKeyReads). A successful
// verification counts one use of the key (unless usage tracking is off).
// Verify does not log.
//
// A key with limits (Record.Limits) is charged one unit; over its budget,
// Verify returns a *LimitError wrapping ErrRateLimited or ErrQuotaExhausted.
// Its verification does I/O only when its lease of units runs out (see the
// package documentation, "Usage limits"); a failure then is ErrUnavailable.
// VerifyCharge charges another cost and returns what a response needs.
func (m *Manager) Verify(ctx context.Context, key string) (Principal, error) {
	return m.verify(ctx, key, 1, nil, nil)
}

// verify is Verify charging cost to a limited key and reporting the charge
// in c (when not nil). With Config.Hooks set, it is called again by
// verifyObserved with obs, where it times a cache miss.
func (m *Manager) verify(ctx context.Context, key string, cost int64, c *Charge, obs *verifyObs) (Principal, error) {
	if m == nil || m.store == nil {
		return Principal{}, ErrUninitialized
	}
	if obs == nil && m.hooks != nil {
		return m.verifyObserved(ctx, key, cost, c)
	}
	if key == "" {
		return Principal{}, ErrMissing
	}
	if len(key) > MaxKeyLength {
		return Principal{}, errTooLong
	}
	h := HashKey(key)
	now := m.nowNano()
	var gen uint64
	if m.cache != nil {
		if m.feed != nil {
			m.feed.Use()
		}
		var e *entry
		// Only keys that passed checkFormat are cached (lookup), so a hit
		// is a well-formed key: its format need not be checked again.
		if e, gen = m.cache.get(&h, now); e != nil && m.trusted() {
			if e.lim == nil && e.valid(now) { // admit's success, without copying the Principal twice
				if m.track {
					m.usage.count(e, now)
				}
				return e.principal, nil
			}
			return m.admit(ctx, e, now, true, cost, c)
		}
	}
	if err := m.checkFormat(key); err != nil {
		return Principal{}, err
	}
	if m.index != nil && m.trusted() && m.index.refuses(&h, now) {
		return Principal{}, errUnknown
	}
	if obs != nil {
		obs.missAt = time.Since(m.epoch)
	}
	return m.lookup(ctx, &h, now, gen, cost, c)
}

// lookup is Verify's cache miss: read the store, cache the result unless the
// shard was invalidated since gen (or cached results are not trusted now, see
// Config.ChangesMaxLag: it would not be served), and judge it.
func (m *Manager) lookup(ctx context.Context, h *Hash, now int64, gen uint64, cost int64, c *Charge) (Principal, error) {
	rec, err := m.byHash(ctx, *h)
	var (
		e   *entry
		ttl int64
	)
	switch {
	case err == nil && rec.Hash == *h:
		e, ttl = newEntry(rec), m.posTTL
		e.lim = m.lim.forRecord(rec)
	case err == nil:
		return Principal{}, unavailable("verify", errWrongRecord)
	case errors.Is(err, ErrNotFound):
		e, ttl = &entry{h: *h, unknown: true}, m.negTTL
	default:
		return Principal{}, unavailable("verify", err)
	}
	shared := false
	if m.cache != nil && ttl > 0 && m.trusted() {
		e.until = now + ttl
		shared = m.cache.put(e, gen, now)
	}
	return m.admit(ctx, e, now, shared, cost, c)
}

func newEntry(rec Record) *entry {
	e := &entry{
		h:         rec.Hash,
		principal: Principal{UserID: rec.UserID, KeyID: rec.ID, KeyName: rec.Name, Source: SourceDB},
		active:    rec.Active,
	}
	if len(rec.Scopes) > 0 {
		e.principal.Scopes = rec.Scopes // rec is the store's copy, owned here
	}
	if rec.ExpiresAt != nil {
		e.hasExpiry, e.expires = true, rec.ExpiresAt.UnixNano()
	}
	return e
}

// admit judges an entry at time now, charges a limited key cost (reported
// in c when not nil) and counts a successful use. shared tells whether e is
// in the cache (its counters are then used).
func (m *Manager) admit(ctx context.Context, e *entry, now int64, shared bool, cost int64, c *Charge) (Principal, error) {
	switch {
	case e.unknown:
		return Principal{}, errUnknown
	case !e.active:
		m.refuse(e, observe.Disabled, now)
		return Principal{}, ErrInactive
	case e.hasExpiry && now > e.expires:
		m.refuse(e, observe.Expired, now)
		return Principal{}, ErrExpired
	}
	if e.lim != nil {
		if err := m.charge(ctx, e.lim, now, cost, c); err != nil {
			if isLimited(err) {
				m.refuse(e, observe.RateLimited, now)
			}
			return Principal{}, err
		}
	}
	if m.track {
		if shared {
			m.usage.count(e, now)
		} else {
			m.usage.countLoose(e.principal.KeyID, now)
		}
	}
	return e.principal, nil
}

// checkFormat runs the length cap and the accepted formats' checks.
func (m *Manager) checkFormat(key string) error {
	if len(key) > MaxKeyLength {
		return errTooLong
	}
	if len(m.accept) == 1 {
		if err := m.accept[0].Check(key); err != nil {
			return asInvalid(err)
		}
		return nil
	}
	var first error
	for _, f := range m.accept {
		err := f.Check(key)
		if err == nil {
			return nil
		}
		// Prefer the reason of a format whose prefix matched.
		if first == nil || first == errPrefix {
			first = err
		}
	}
	return asInvalid(first)
}

// asInvalid makes sure a (third-party) format's error wraps ErrInvalid.
func asInvalid(err error) error {
	if errors.Is(err, ErrInvalid) {
		return err
	}
	return fmt.Errorf("%w: %w", ErrInvalid, err)
}

// Invalidate drops the cached result for h, so that the next Verify of that
// key reads the store, and makes sure that no verification already under way
// caches what it read before. Call it when a record changed outside this
// Manager: another process deleted, disabled, enabled or imported the key
// (Config.Changes does this from a ChangeFeed). The Manager calls it
// itself for its own changes.
//
// With a key index (Config.UnknownKeyReads), h is added to it too: the key
// may exist now.
//
// It is cheap (a lock or two, no I/O), safe for concurrent use, and harmless
// for hashes that are not cached. Pending usage counts of the key are kept.
func (m *Manager) Invalidate(h Hash) {
	if m != nil && m.cache != nil {
		m.cache.invalidate(&h)
	}
	if m != nil && m.index != nil {
		m.index.add(&h)
	}
}

// now is the precise current time, UTC, truncated to microseconds.
func (m *Manager) now() time.Time {
	if m.nowFn != nil {
		return normTime(m.nowFn())
	}
	return normTime(time.Now())
}

// trusted reports whether cached results may be served: always without a
// change feed; with one, while the last successful poll began less than
// ChangesMaxLag ago. That deadline is kept on the monotonic clock (about
// 20 ns to read; with Config.Now, a test's clock), not on the coarse clock of
// the verification path, whose goroutine can be held up on a busy machine
// and would then stretch the bound by as long.
func (m *Manager) trusted() bool {
	return m.feed == nil || m.feed.Trusted()
}

// nowNano is the verification path's clock, in Unix nanoseconds.
func (m *Manager) nowNano() int64 {
	if m.nowFn != nil {
		return m.nowFn().UnixNano()
	}
	return m.clock.Now()
}

// normTime drops the monotonic reading, moves t to UTC and truncates it to
// microseconds, the precision of every store.
func normTime(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

// Close stops the background flusher and the change feed poller, and writes
// pending usage counters, returning the flush's error. The final flush has no
// deadline of its own (it uses context.Background); to bound it, call Flush
// with a deadline first.
// Verify still works after Close, but its counts are written only by explicit
// Flush calls. Close may be called more than once; each call flushes.
func (m *Manager) Close() error {
	if err := m.ready(); err != nil {
		return err
	}
	m.closeOnce.Do(func() {
		m.stop()
		m.wg.Wait()
		if m.feed != nil {
			m.feed.Stop()
		}
		if m.index != nil {
			m.index.wait()
		}
		if m.unsubscribe != nil {
			m.unsubscribe()
		}
		m.clock.close()
		m.returnLeases(context.Background(), math.MaxInt64)
	})
	return m.Flush(context.Background())
}

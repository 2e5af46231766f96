package variables

import (
	"context"
	"errors"
	"hash/maphash"
	"slices"
	"sync"
	"time"

	"github.com/keyflow-dev/keyflow/internal/changefeed"
)

// ChangeFeed reports whose variables changed in a store shared by several
// processes, so that each process's Service drops what it cached for them.
// It is an optional capability of a store: set ServiceConfig.Changes to use
// it. Package variables/sqlstore implements it on PostgreSQL and SQLite with
// a change-log table written by triggers in the transaction of every change
// (so that changes made by any writer are reported: another process, the
// CLI, rotation, an operator's SQL).
//
// Implementations must be safe for concurrent use.
type ChangeFeed interface {
	// Changes returns the IDs of the users whose variables were created,
	// updated or deleted after the position cursor, and the position to pass
	// to the next call.
	//
	// cursor "" asks for the current position: Changes then returns no
	// users. Every change committed before the call began must be reported
	// by this call or an earlier one (since cursor), including changes whose
	// transactions commit out of order; a user may be reported more than
	// once.
	//
	// If the changes since cursor cannot all be listed (the log was pruned
	// past it), Changes returns an error wrapping ErrChangesLost together
	// with a fresh, valid position. Any other error is a failure; the caller
	// retries with the same cursor.
	Changes(ctx context.Context, cursor string) (users []string, next string, err error)
}

// ChangeNotifier pushes word that a ChangeFeed may have changes to report,
// so that a Service reads the feed at once instead of at its next poll
// (ServiceConfig.ChangesNotifier). A notification is only a hint: the feed
// stays the source of truth and the polls go on, so a lost notification
// costs latency, never correctness. It has the shape of
// apikey.ChangeNotifier: package apikey/sqlstore/pgnotify's Listener
// implements both (LISTEN on the channel that variables/sqlstore's
// Store.Notification names).
//
// Implementations must be safe for concurrent use.
type ChangeNotifier interface {
	// Subscribe returns a channel that receives a value whenever changes
	// may have been committed since the subscriber last received one.
	// Signals are coalesced; cancel ends the subscription.
	Subscribe() (signals <-chan struct{}, cancel func())
}

// ErrChangesLost is returned (wrapped) by ChangeFeed.Changes when the changes
// since the given cursor are no longer all available. A Service then drops
// its whole cache.
var ErrChangesLost = errors.New("variables: changes since the cursor are no longer available")

// Defaults of the cache settings in ServiceConfig.
const (
	DefaultChangesMaxLag = time.Second
	DefaultCacheSize     = 10000
)

// varCache keeps each user's variables as the store listed them, for the
// Resolver, behind a change feed (changefeed.Follower): an entry is served
// only while the feed is trusted, dropped when the feed reports its user,
// and dropped at once when this process changes the user's variables
// (forget). A fill that raced an invalidation is not kept: each shard has a
// generation, read before the store and checked before the fill.
type varCache struct {
	seed   maphash.Seed
	shards [cacheShards]varShard
	per    int // entries per shard
	feed   *changefeed.Follower[string]
}

const cacheShards = 64

type varShard struct {
	mu    sync.RWMutex
	gen   uint64
	users map[string]*userVars // shared, read-only
}

// userVars is one user's variables as the Resolver reads them: cached and
// shared (opened set), or read for one run (opened nil).
type userVars struct {
	vars []Variable
	// opened memoises the plaintext of each of vars (same index), opened
	// on first use: a cached entry decrypts each Credential once, not on
	// every run. It goes with the entry, so a changed or deleted variable
	// is never answered from it.
	opened []openedValue
}

type openedValue struct {
	once  sync.Once
	plain string
	err   error
}

// open returns the plaintext of v, one of uv.vars, through svc.open, once
// per cached entry.
func (uv *userVars) open(svc *Service, v *Variable) (string, error) {
	if uv.opened != nil {
		for i := range uv.vars {
			if &uv.vars[i] == v {
				o := &uv.opened[i]
				o.once.Do(func() { o.plain, o.err = svc.open(v) })
				return o.plain, o.err
			}
		}
	}
	return svc.open(v)
}

func newVarCache(size int) *varCache {
	c := &varCache{seed: maphash.MakeSeed(), per: max(size/cacheShards, 1)}
	for i := range c.shards {
		c.shards[i].users = map[string]*userVars{}
	}
	return c
}

func (c *varCache) shard(userID string) *varShard {
	return &c.shards[maphash.String(c.seed, userID)%cacheShards]
}

// get returns the user's cached variables (nil when not cached or not
// trusted now) and the shard's generation, to pass to put.
func (c *varCache) get(userID string) (*userVars, uint64) {
	c.feed.Use()
	s := c.shard(userID)
	s.mu.RLock()
	uv := s.users[userID]
	gen := s.gen
	s.mu.RUnlock()
	if uv != nil && !c.feed.Trusted() {
		return nil, gen
	}
	return uv, gen
}

// put caches vars for the user unless the shard changed since gen or the
// feed is not trusted (the entry would not be served).
func (c *varCache) put(userID string, uv *userVars, gen uint64) {
	if !c.feed.Trusted() {
		return
	}
	s := c.shard(userID)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.gen != gen {
		return
	}
	if _, ok := s.users[userID]; !ok && len(s.users) >= c.per {
		for u := range s.users { // an arbitrary entry makes room
			delete(s.users, u)
			break
		}
	}
	s.users[userID] = uv
}

// forget drops the user's entry and bumps the shard's generation.
func (c *varCache) forget(userID string) {
	s := c.shard(userID)
	s.mu.Lock()
	delete(s.users, userID)
	s.gen++
	s.mu.Unlock()
}

// forgetAll forgets each of users (what the change feed reported).
func (c *varCache) forgetAll(users []string) {
	for _, u := range users {
		c.forget(u)
	}
}

// clear drops every entry.
func (c *varCache) clear() {
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		clear(s.users)
		s.gen++
		s.mu.Unlock()
	}
}

// forgetfulStore is the Store the Service writes through when it caches:
// every write drops the user's cache entry once it returns, whatever its
// outcome (a write that failed may have committed), so that this process
// sees its own changes at once. SwapCiphertext does not name the user: it
// drops the whole cache.
type forgetfulStore struct {
	Store
	c *varCache
}

func (f forgetfulStore) Create(ctx context.Context, v Variable) error {
	defer f.c.forget(v.UserID)
	return f.Store.Create(ctx, v)
}

func (f forgetfulStore) Update(ctx context.Context, prev, next Variable) error {
	defer f.c.forget(next.UserID)
	return f.Store.Update(ctx, prev, next)
}

func (f forgetfulStore) Delete(ctx context.Context, userID, id string) error {
	defer f.c.forget(userID)
	return f.Store.Delete(ctx, userID, id)
}

func (f forgetfulStore) SwapCiphertext(ctx context.Context, id, oldToken, newToken string) (bool, error) {
	defer f.c.clear()
	return f.Store.SwapCiphertext(ctx, id, oldToken, newToken)
}

// listForRun returns the user's variables for the Resolver: from the cache
// when the Service has one and it holds the user (shared: read only), else
// from the store (then cached).
func (s *Service) listForRun(ctx context.Context, userID string) (*userVars, error) {
	if s.cache == nil {
		vars, err := s.store.ListByUser(ctx, userID)
		if err != nil {
			return nil, err
		}
		return &userVars{vars: vars}, nil
	}
	uv, gen := s.cache.get(userID)
	if uv != nil {
		return uv, nil
	}
	vars, err := s.store.ListByUser(ctx, userID)
	if err != nil {
		return nil, err
	}
	uv = &userVars{vars: slices.Clip(vars), opened: make([]openedValue, len(vars))}
	s.cache.put(userID, uv, gen)
	return uv, nil
}

package flows

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"time"

	"github.com/keyflow-dev/keyflow/variables"
)

// A user's flows are cached for the list and run APIs, so that a warm
// request reads no table: a user's flows, once read, are served for the
// Store's cache TTL (the server's --change-max-lag, 1 s by default) without
// reading the flows table again. A flow created through this Store is seen
// at once (the creation drops the user's entry); one created by another
// instance, or by SQL, within the TTL, the bound that key revocations and
// variable changes across instances have too. Flows are never changed in
// place, and a user's flows go only with the user (whose requests are
// refused once the user is inactive or gone), so nothing a request could
// still be served from outlives that bound. Reads that miss the cache (an
// unknown id or endpoint name) always read the table. A TTL of 0 turns the
// cache off: every request reads the table.

// maxCachedUsers bounds the cache; when it is full it starts afresh.
const maxCachedUsers = 100_000

// userFlows is what is cached for one user: the flows, ready to run, and
// the body of GET /api/v1/flows/.
type userFlows struct {
	flows []*runnable // oldest first
	list  []byte      // the JSON list, as httpjson.Write writes it
	until time.Time
}

// runnable is a flow with what every run of it needs worked out once.
type runnable struct {
	Flow
	componentID string
	fields      []variables.Field // the Resolver's input without tweaks (read-only)
}

func newRunnable(f Flow) *runnable {
	return &runnable{Flow: f, componentID: ComponentID(f), fields: resolverFields(f.Fields)}
}

// flowCache maps user IDs to their cached flows. It is safe for concurrent
// use.
type flowCache struct {
	mu    sync.RWMutex
	gen   uint64 // counts the changes made through the Store
	users map[string]*userFlows
}

// forget drops the user's entry, and makes fills begun before it keep
// nothing.
func (c *flowCache) forget(userID string) {
	c.mu.Lock()
	delete(c.users, userID)
	c.gen++
	c.mu.Unlock()
}

// cached returns the user's flows: from the cache while fresh, else read
// from the table (and cached, unless the Store changed meanwhile or the
// cache is off).
func (s *Store) cached(ctx context.Context, userID string) (*userFlows, error) {
	now := time.Now()
	s.cache.mu.RLock()
	uf, gen := s.cache.users[userID], s.cache.gen
	s.cache.mu.RUnlock()
	if uf != nil && now.Before(uf.until) {
		return uf, nil
	}
	flows, err := s.ByUser(ctx, userID)
	if err != nil {
		return nil, err
	}
	uf = &userFlows{flows: make([]*runnable, len(flows)), until: now.Add(s.cacheTTL)}
	out := make([]FlowRead, len(flows))
	for i, f := range flows {
		uf.flows[i] = newRunnable(f)
		out[i] = toFlowJSON(f)
	}
	if uf.list, err = json.Marshal(out); err != nil {
		return nil, err
	}
	uf.list = append(uf.list, '\n')
	if s.cacheTTL <= 0 {
		return uf, nil
	}
	s.cache.mu.Lock()
	if s.cache.gen == gen {
		if s.cache.users == nil || len(s.cache.users) >= maxCachedUsers {
			s.cache.users = make(map[string]*userFlows)
		}
		s.cache.users[userID] = uf
	}
	s.cache.mu.Unlock()
	return uf, nil
}

// byID returns the user's flow with that id (lower case), or nil.
func (uf *userFlows) byID(id string) *runnable {
	for _, f := range uf.flows {
		if f.ID == id {
			return f
		}
	}
	return nil
}

// byEndpointName returns the user's flow with that endpoint name, or nil.
func (uf *userFlows) byEndpointName(name string) *runnable {
	for _, f := range uf.flows {
		if f.EndpointName != "" && f.EndpointName == name {
			return f
		}
	}
	return nil
}

// lowerID is strings.ToLower for an id, without allocating when it is lower
// case already (as every id the server makes is).
func lowerID(id string) string {
	for i := 0; i < len(id); i++ {
		if c := id[i]; 'A' <= c && c <= 'Z' {
			return strings.ToLower(id)
		}
	}
	return id
}

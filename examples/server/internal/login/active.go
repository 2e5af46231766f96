package login

import (
	"errors"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/keyflow-dev/keyflow/examples/server/internal/accounts"
	"github.com/keyflow-dev/keyflow/examples/server/internal/httpapi"
	"github.com/keyflow-dev/keyflow/httpjson"
	"github.com/keyflow-dev/keyflow/middleware"
)

// A deactivated user's API keys stop working as login tokens do: a request
// authenticated by a key reads the key's user (on a Langflow database, from
// Langflow's own table: accounts.Service.Fresh), unless that user was found
// active less than ActiveUserTTL ago. A deactivation through this process
// counts at once (accounts.Store.Changes drops what was cached); one made
// elsewhere (another instance, Langflow's UI, SQL) within ActiveUserTTL, the
// bound that revocations across instances have too. Inactive and missing
// users are never cached, so a reactivation counts at once.

// ActiveUserTTL is how long a user found active is trusted without reading
// it again.
const ActiveUserTTL = time.Second

// maxActiveUsers bounds the cache; when it is full it starts afresh.
const maxActiveUsers = 100_000

// activeUsers remembers until when each user is known to be active. It is
// safe for concurrent use.
type activeUsers struct {
	mu    sync.Mutex
	gen   uint64               // accounts.Store.Changes when until was started
	until map[string]time.Time // user ID → trusted until
}

// known reports whether id was found active recently enough, as of the
// store's change count gen.
func (c *activeUsers) known(id string, gen uint64, now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen != gen {
		return false
	}
	return now.Before(c.until[id])
}

// remember trusts id as active until now+ActiveUserTTL, if the store has
// not changed users since gen was read.
func (c *activeUsers) remember(id string, gen uint64, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen != gen || c.until == nil || len(c.until) >= maxActiveUsers {
		c.gen, c.until = gen, make(map[string]time.Time)
	}
	c.until[id] = now.Add(ActiveUserTTL)
}

// MsgKeyUserInactive answers an API key whose user is inactive or gone
// (the newest Langflow's message).
const MsgKeyUserInactive = "User account is inactive"

// ActiveUsers is the check that an API key's user is active, with its
// cache. It is safe for concurrent use.
type ActiveUsers struct {
	Users *accounts.Service
	Log   *slog.Logger
	cache activeUsers
}

// Require lets through a request authenticated by an API key
// (apikey.SourceDB, or LANGFLOW_API_KEY) or by auto-login (the UI session,
// LANGFLOW_SKIP_AUTH_AUTO_LOGIN) only while its user exists and is active
// (403 MsgKeyUserInactive otherwise), as the newest Langflow does; the keys
// themselves are left as they are, so they work again if the user is
// reactivated. Requests without a principal, and those of login tokens
// (which Authenticate checks), pass unchanged. A database failure is 503
// (fail closed).
func (a *ActiveUsers) Require(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, ok := middleware.FromContext(r.Context())
		if !ok || p.Source == Source {
			next.ServeHTTP(w, r)
			return
		}
		gen, now := a.Users.Store.Changes(), time.Now()
		if a.cache.known(p.UserID, gen, now) {
			next.ServeHTTP(w, r)
			return
		}
		u, err := a.Users.Fresh(r.Context(), p.UserID)
		switch {
		case errors.Is(err, accounts.ErrNotFound) || err == nil && !u.IsActive:
			httpjson.Detail(w, http.StatusForbidden, MsgKeyUserInactive)
		case err != nil:
			httpapi.StoreUnavailable(a.Log, w, r, "check key user", err)
		default:
			// The store's count as read before the user was: a change
			// meanwhile leaves nothing trusted.
			a.cache.remember(p.UserID, gen, now)
			next.ServeHTTP(w, r)
		}
	})
}

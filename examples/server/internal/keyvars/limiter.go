package keyvars

import (
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/keyflow-dev/keyflow/apikey"
	"github.com/keyflow-dev/keyflow/apikey/redislimit"
	keysql "github.com/keyflow-dev/keyflow/apikey/sqlstore"
	"github.com/keyflow-dev/keyflow/examples/server/internal/config"
	"github.com/keyflow-dev/keyflow/examples/server/internal/sqldb"
)

// newLimiter returns the Limiter of keys' rate limits that cfg.Limiter
// names (see config.ParseLimiter): the database (the key store's
// "<table>_rate" table: instances sharing the database share the counts),
// in process (exact for this instance alone), or Redis. The default is the
// database on PostgreSQL, where several instances may share the keys, and
// in process on SQLite, which one server process uses at a time. close
// releases what it opened.
func newLimiter(cfg config.Config, addr sqldb.Address, keyStore *keysql.Store) (lim apikey.Limiter, close func(), err error) {
	kind := cfg.Limiter
	if kind == "" {
		kind = config.LimiterMemory
		if addr.Postgres {
			kind = config.LimiterDatabase
		}
	}
	switch {
	case kind == config.LimiterMemory:
		return nil, func() {}, nil
	case kind == config.LimiterDatabase:
		return keyStore, func() {}, nil
	case strings.HasPrefix(kind, "redis://"), strings.HasPrefix(kind, "rediss://"):
		opts, err := redis.ParseURL(kind)
		if err != nil {
			return nil, nil, fmt.Errorf("KEYFLOW_LIMITER: %w", redisURLError(err))
		}
		rdb := redis.NewClient(opts)
		lim, err := redislimit.New(rdb, redislimit.Config{})
		if err != nil {
			_ = rdb.Close()
			return nil, nil, err
		}
		return lim, func() { _ = rdb.Close() }, nil
	}
	return nil, nil, fmt.Errorf("KEYFLOW_LIMITER: unknown limiter %q", kind)
}

// redisURLError is err from redis.ParseURL without the URL's password: a
// *url.Error repeats the whole URL, so only its reason is kept, and not
// even that for a bad %-escape, which quotes part of the password.
func redisURLError(err error) error {
	var uerr *url.Error
	if !errors.As(err, &uerr) {
		return err // go-redis's own errors name an option or the path, never the password
	}
	var esc url.EscapeError
	if errors.As(uerr.Err, &esc) {
		return errors.New("not a valid URL: a bad %-escape")
	}
	return fmt.Errorf("not a valid URL: %w", uerr.Err)
}

// Package pgnotify pushes PostgreSQL's notifications of key changes to
// apikey Managers: a [Listener] is an apikey.ChangeNotifier that LISTENs, on
// a connection of its own, for the notification that apikey/sqlstore's
// change-log trigger sends in the transaction of every key change
// (sqlstore.Store.Notification). A Manager configured with it
// (apikey.Config.ChangesNotifier) polls its change feed as soon as a change
// commits, instead of at its next poll.
//
// The same Listener serves variables' caches: variables/sqlstore's trigger
// notifies on a channel of its own (its Store.Notification), and a Listener
// on that channel is a variables.ChangeNotifier
// (variables.ServiceConfig.ChangesNotifier).
//
// It is an opt-in adapter, apart from apikey/sqlstore so that the store
// stays on database/sql and imports no driver: this package imports pgx
// (github.com/jackc/pgx/v5) to hold the listening connection.
//
// Notifications are hints. The change log stays the source of truth, and the
// Manager keeps polling it while keys are being verified, so a notification
// lost (while the connection was down, or before it was established) costs
// latency, never correctness: the Manager's ChangesMaxLag bound holds
// without any notification. After every (re)connection the Listener signals
// its subscribers, because it may have missed notifications meanwhile.
//
// Costs: one connection per Listener (share one Listener among the Managers
// of a process), and nothing while nothing changes except a round trip when
// the connection has been quiet for Config.PingInterval (1 minute), which
// finds a connection that died silently. PostgreSQL keeps undelivered
// notifications in a queue of 8 GB; a listener that stops reading would fill
// it and then make every transaction that notifies fail, so the Listener
// reads continuously and drops its connection when it closes.
//
// Connect it to PostgreSQL directly, or through a pooler in session mode: a
// pooler in transaction mode (PgBouncer's default) does not keep a LISTEN,
// and the Managers then learn of changes by polling alone.
package pgnotify

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgconn/ctxwatch"

	"github.com/keyflow-dev/keyflow/apikey"
	"github.com/keyflow-dev/keyflow/variables"
)

// Config configures a Listener.
type Config struct {
	// ConnString is the database's PostgreSQL URL or keyword/value string,
	// as pgx.ParseConfig reads it: the database of the store whose
	// notifications to receive. Required.
	ConnString string
	// Channel and Payload are those of sqlstore.Store.Notification: the
	// Listener listens on Channel and signals only notifications whose
	// payload is Payload (the schema of the store's table), or every
	// notification on Channel when Payload is "". Channel is required.
	Channel, Payload string
	// Logger receives the connection's failures and recoveries (never the
	// connection string). nil: slog.Default().
	Logger *slog.Logger
	// PingInterval is how long the connection may stay quiet before the
	// Listener checks it with an empty query. 0: 1 minute.
	PingInterval time.Duration
}

// DefaultPingInterval is the default Config.PingInterval.
const DefaultPingInterval = time.Minute

// Reconnection backoff bounds, and how often a connection that keeps failing
// is logged. maxBackoff is what bounds the time from the database's return
// to listening again: a Listener tries at least once a second (one cheap
// connection attempt a second while the database is down), so pushes resume
// within 1 s of recovery (plus the connection's own set-up), not up to 5 s
// later as with a longer backoff.
const (
	minBackoff = 100 * time.Millisecond
	maxBackoff = time.Second
	failureLog = time.Minute
	pingWait   = 10 * time.Second
)

// Listener holds one PostgreSQL connection that LISTENs on a channel, and
// signals its subscribers when a notification arrives and after every
// (re)connection. It reconnects by itself, with backoff (100 ms doubling to
// at most 1 s, jittered), when the connection fails or is terminated, so it
// listens again within 1 s of the database's return. It is safe for concurrent use; Close it to drop
// the connection. Make one with New; the zero value is not usable.
type Listener struct {
	cfg     *pgx.ConnConfig
	channel string
	payload string
	ping    time.Duration
	log     *slog.Logger

	mu   sync.Mutex
	subs map[*subscriber]struct{}

	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}
}

var (
	_ apikey.ChangeNotifier    = (*Listener)(nil)
	_ variables.ChangeNotifier = (*Listener)(nil)
)

type subscriber struct{ c chan struct{} }

// New checks cfg and starts a Listener, which connects in the background (a
// database that is down at start is retried, and logged). Errors: a
// malformed ConnString (the error does not repeat it), an empty Channel.
func New(cfg Config) (*Listener, error) {
	if cfg.Channel == "" {
		return nil, errors.New("pgnotify: Config.Channel is empty")
	}
	cc, err := pgx.ParseConfig(cfg.ConnString)
	if err != nil {
		return nil, errors.New("pgnotify: Config.ConnString is not a valid PostgreSQL connection string")
	}
	// A deadline, not PostgreSQL's cancel request, ends a wait: a cancel
	// request sent as the wait ends could cancel the next statement.
	cc.BuildContextWatcherHandler = func(pc *pgconn.PgConn) ctxwatch.Handler {
		return &pgconn.DeadlineContextWatcherHandler{Conn: pc.Conn()}
	}
	l := &Listener{
		cfg:     cc,
		channel: cfg.Channel,
		payload: cfg.Payload,
		ping:    cfg.PingInterval,
		log:     cfg.Logger,
		subs:    map[*subscriber]struct{}{},
		done:    make(chan struct{}),
	}
	if l.ping <= 0 {
		l.ping = DefaultPingInterval
	}
	if l.log == nil {
		l.log = slog.Default()
	}
	l.ctx, l.cancel = context.WithCancel(context.Background())
	go l.run()
	return l, nil
}

// Subscribe implements apikey.ChangeNotifier: the channel receives a value
// (coalesced, never blocking the Listener) after every notification on the
// Listener's channel with its payload, and after every (re)connection.
func (l *Listener) Subscribe() (<-chan struct{}, func()) {
	s := &subscriber{c: make(chan struct{}, 1)}
	l.mu.Lock()
	l.subs[s] = struct{}{}
	l.mu.Unlock()
	return s.c, func() {
		l.mu.Lock()
		delete(l.subs, s)
		l.mu.Unlock()
	}
}

// Close stops the Listener and closes its connection. Subscribers receive no
// more signals; their channels are not closed. Close may be called more than
// once.
func (l *Listener) Close() error {
	l.cancel()
	<-l.done
	return nil
}

func (l *Listener) signal() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for s := range l.subs {
		select {
		case s.c <- struct{}{}:
		default:
		}
	}
}

// run connects, listens and reconnects until Close.
func (l *Listener) run() {
	defer close(l.done)
	var (
		backoff   = minBackoff
		failing   bool
		failSince time.Time
		lastLog   time.Time
	)
	for l.ctx.Err() == nil {
		conn, err := l.connect()
		if err == nil {
			// Whatever was notified before LISTEN took effect is lost:
			// subscribers read the log now.
			l.signal()
			if failing {
				l.log.Info("pgnotify: listening again", "channel", l.channel, "down_for", time.Since(failSince).Round(time.Millisecond))
			}
			failing, backoff = false, minBackoff
			err = l.listen(conn)
			closeCtx, cancel := context.WithTimeout(context.Background(), time.Second)
			_ = conn.Close(closeCtx)
			cancel()
			if l.ctx.Err() != nil {
				return
			}
		}
		now := time.Now()
		if !failing {
			failing, failSince, lastLog = true, now, now
			l.log.Warn("pgnotify: notification connection failed; reconnecting (changes are still seen by polling)", "channel", l.channel, "err", err)
		} else if now.Sub(lastLog) >= failureLog {
			lastLog = now
			l.log.Warn("pgnotify: notification connection still failing", "channel", l.channel, "down_for", now.Sub(failSince).Round(time.Second), "err", err)
		}
		wait := backoff/2 + rand.N(backoff/2+1)
		backoff = min(2*backoff, maxBackoff)
		select {
		case <-l.ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

// connect opens the connection and LISTENs.
func (l *Listener) connect() (*pgx.Conn, error) {
	ctx, cancel := context.WithTimeout(l.ctx, pingWait)
	defer cancel()
	conn, err := pgx.ConnectConfig(ctx, l.cfg)
	if err != nil {
		return nil, fmt.Errorf("connect: %w", err)
	}
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{l.channel}.Sanitize()); err != nil {
		_ = conn.Close(ctx)
		return nil, fmt.Errorf("listen: %w", err)
	}
	return conn, nil
}

// listen receives notifications until the connection fails or Close.
func (l *Listener) listen(conn *pgx.Conn) error {
	for {
		ctx, cancel := context.WithTimeout(l.ctx, l.ping)
		n, err := conn.WaitForNotification(ctx)
		cancel()
		switch {
		case err == nil:
			if l.payload == "" || n.Payload == l.payload {
				l.signal()
			}
			continue
		case l.ctx.Err() != nil:
			return l.ctx.Err()
		case !errors.Is(err, context.DeadlineExceeded) && !pgconn.Timeout(err):
			return err
		}
		// Quiet for PingInterval: check that the connection still works.
		ctx, cancel = context.WithTimeout(l.ctx, pingWait)
		err = conn.Ping(ctx)
		cancel()
		if err != nil {
			return fmt.Errorf("ping: %w", err)
		}
	}
}

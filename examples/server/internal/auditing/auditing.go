// Package auditing is the reference server's side of the audit trail
// (package audit): it fills an event's client address and user agent from
// the request, names actors and targets the same way everywhere, never puts
// a secret in an event, and runs the `audit verify` command.
//
// Every write of keys, variables and users is audited, and a failure to
// record its event fails the action: handlers call Record before they
// acknowledge (and answer 503 when it fails), or, for actions that cannot
// be undone once made, before making them.
package auditing

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"strconv"
	"strings"

	"github.com/keyflow-dev/keyflow/apikey"
	"github.com/keyflow-dev/keyflow/audit"
	"github.com/keyflow-dev/keyflow/variables"
)

// Auditor records the server's events in Log.
type Auditor struct {
	Log    *audit.Log
	Logger *slog.Logger // failures to record; nil: slog.Default()
}

// ClientAddr is the client's IP address without the port. Behind a proxy it
// is the proxy's: no forwarding header is trusted.
func ClientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// Record appends e, with its client address and user agent taken from r
// when r is not nil and e has none. A failure is logged and returned
// (wrapping audit.ErrUnavailable): the caller must then not report the
// action as done.
func (a *Auditor) Record(r *http.Request, e audit.Event) error {
	ctx := context.Background()
	if r != nil {
		ctx = r.Context()
		if e.ClientIP == "" {
			e.ClientIP = ClientAddr(r)
		}
		if e.UserAgent == "" {
			e.UserAgent = r.UserAgent()
		}
	}
	return a.RecordContext(ctx, e)
}

// RecordContext is Record for an action that no request made (the CLI, the
// environment import).
func (a *Auditor) RecordContext(ctx context.Context, e audit.Event) error {
	if e.Outcome == "" {
		e.Outcome = audit.Success
	}
	if _, err := a.Log.Record(ctx, e); err != nil {
		a.log().ErrorContext(ctx, "audit: event not recorded; the action is refused", "action", e.Action, "err", err)
		return err
	}
	return nil
}

func (a *Auditor) log() *slog.Logger {
	if a.Logger != nil {
		return a.Logger
	}
	return slog.Default()
}

// SessionID names a login token in an event without being a credential: the
// first 16 hex digits of its SHA-256, prefixed "token:".
func SessionID(token string) string {
	if token == "" {
		return ""
	}
	sum := sha256.Sum256([]byte(token))
	return "token:" + hex.EncodeToString(sum[:8])
}

// Actor is the actor of a request authenticated as p, whose username is
// username: the key ID for a stored API key, "env-key" or "auto-login" for
// those sources, session (a SessionID) otherwise.
func Actor(p apikey.Principal, username, session string) audit.Actor {
	a := audit.Actor{UserID: p.UserID, Username: username, Session: session}
	switch p.Source {
	case apikey.SourceDB:
		a.KeyID, a.Session = p.KeyID, ""
	case apikey.SourceEnv:
		a.Session = "env-key"
	case apikey.SourceAutoLogin:
		a.Session = "auto-login"
	}
	return a
}

// KeyTarget is an API key as a target: its ID, name and owner, and its
// 8-character display prefix in details (never more of the key).
func KeyTarget(rec apikey.Record) (audit.Target, map[string]string) {
	d := map[string]string{}
	if p := rec.Prefix; p != "" {
		d["prefix"] = p[:min(len(p), audit.PrefixLen)]
	}
	if len(rec.Scopes) > 0 {
		d["scopes"] = strings.Join(rec.Scopes, " ")
	}
	if rec.ExpiresAt != nil {
		d["expires_at"] = rec.ExpiresAt.UTC().Format("2006-01-02T15:04:05Z")
	}
	maps.Copy(d, LimitDetails(rec.Limits))
	return audit.Target{Type: "api_key", ID: rec.ID, Name: rec.Name, OwnerID: rec.UserID}, d
}

// LimitDetails are a key's usage limits as event details: "rate_limits"
// ("100/1m 10000/24h"), "quota" and "refill"; none for an unlimited key.
func LimitDetails(l apikey.Limits) map[string]string {
	d := map[string]string{}
	if len(l.Rate) > 0 {
		rates := make([]string, len(l.Rate))
		for i, r := range l.Rate {
			rates[i] = r.String()
		}
		d["rate_limits"] = strings.Join(rates, " ")
	}
	if l.Quota != nil {
		d["quota"] = strconv.FormatInt(l.Quota.Limit, 10)
		if r := l.Quota.Refill.String(); r != "" {
			d["refill"] = r
		}
	}
	return d
}

// VariableTarget is a variable as a target: its ID, name and owner, and its
// type in details. Never its value.
func VariableTarget(v variables.Variable) (audit.Target, map[string]string) {
	return audit.Target{Type: "variable", ID: v.ID, Name: v.Name, OwnerID: v.UserID}, map[string]string{"type": string(v.Type)}
}

// UserTarget is a user as a target.
func UserTarget(id, username string) audit.Target {
	return audit.Target{Type: "user", ID: id, Name: username}
}

// Verify is the `audit verify` command: it walks the chain and writes what
// it found. Exit status 0 when the chain is intact; 1, naming the first
// broken event on stderr, when it is not; 2 when the store cannot be read.
func Verify(ctx context.Context, l *audit.Log, stdout, stderr io.Writer) int {
	r, err := l.Verify(ctx)
	var broken *audit.BrokenError
	switch {
	case errors.As(err, &broken):
		_, _ = fmt.Fprintf(stderr, "audit trail BROKEN: %v\n", err)
		return 1
	case err != nil:
		_, _ = fmt.Fprintf(stderr, "audit verify: %v\n", err)
		return 2
	}
	if r.Events == 0 {
		_, _ = fmt.Fprintf(stdout, "audit trail intact: no events (head %d)\n", r.Head.Last.Seq)
		return 0
	}
	_, _ = fmt.Fprintf(stdout, "audit trail intact: %d events, %d to %d; head hash %s\n", r.Events, r.First, r.Head.Last.Seq, r.Head.Last.Hash)
	return 0
}

// Package audithttp serves an audit trail (package audit) over HTTP, as an
// http.Handler a host mounts behind its own authentication:
//
//	h, err := audithttp.New(audithttp.Config{Log: auditLog, User: middleware.FromRequest, SeesAll: isSuperuser})
//	mux.Handle("/api/v1/audit/", auth(http.StripPrefix("/api/v1/audit", h)))
//
// Relative to where it is mounted it serves GET / (and HEAD): the events,
// newest first, as
//
//	{"events": [Event…], "next_cursor": "1234" | null}
//
// Query parameters, all optional:
//
//	action   an action to keep ("key.created"); repeat it, or separate with commas, for several
//	actor    keep the events of this acting user ID
//	since    keep events at or after this time (RFC 3339)
//	until    keep events before this time (RFC 3339)
//	cursor   the next_cursor of the previous page
//	limit    page size, 1 to 1000 (default 50)
//
// A caller for whom Config.SeesAll is true (a superuser) sees every event; any
// other caller sees only the events they acted in (actor is forced to them;
// asking for another actor answers 403). Every answer is JSON: no caller →
// 401; a malformed parameter → 422 naming it; a store failure → 503 with no
// internals (the cause is logged); another method → 405; another path → 404.
package audithttp

import (
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/keyflow-dev/keyflow/audit"
	"github.com/keyflow-dev/keyflow/httpjson"
	"github.com/keyflow-dev/keyflow/middleware"
)

// Messages answered by the handler.
const (
	MsgNotAuthenticated = "Not authenticated"
	MsgForbidden        = "Only a superuser can read the events of other users"
	MsgUnavailable      = "Audit store unavailable"
)

// Config configures New. Log and User are required.
type Config struct {
	// Log is the audit trail read (required).
	Log *audit.Log
	// User tells the handler who the caller is (required).
	User middleware.UserFunc
	// SeesAll reports whether the caller of r may read every user's events
	// (a superuser). nil: nobody may; each caller sees their own.
	SeesAll func(r *http.Request) bool
	// Logger receives store failures (answered 503). nil: slog.Default().
	Logger *slog.Logger
}

// New returns the handler. It returns an error when Log or User is nil. The
// handler is safe for concurrent use.
func New(cfg Config) (http.Handler, error) {
	if cfg.Log == nil {
		return nil, errors.New("audithttp: Config.Log is required")
	}
	if cfg.User == nil {
		return nil, errors.New("audithttp: Config.User is required")
	}
	return &handler{cfg: cfg}, nil
}

type handler struct{ cfg Config }

// Event is the JSON form of an audit.Event.
type Event struct {
	Seq       int64             `json:"seq"`
	ID        string            `json:"id"`
	Time      time.Time         `json:"time"`
	Action    audit.Action      `json:"action"`
	Actor     audit.Actor       `json:"actor"`
	Target    audit.Target      `json:"target"`
	ClientIP  string            `json:"client_ip,omitempty"`
	UserAgent string            `json:"user_agent,omitempty"`
	Outcome   audit.Outcome     `json:"outcome"`
	Reason    string            `json:"reason,omitempty"`
	Details   map[string]string `json:"details,omitempty"`
	PrevHash  string            `json:"prev_hash"`
	Hash      string            `json:"hash"`
}

// FromEvent returns the JSON form of e.
func FromEvent(e audit.Event) Event {
	return Event{Seq: e.Seq, ID: e.ID, Time: e.Time, Action: e.Action, Actor: e.Actor, Target: e.Target,
		ClientIP: e.ClientIP, UserAgent: e.UserAgent, Outcome: e.Outcome, Reason: e.Reason, Details: e.Details,
		PrevHash: e.PrevHash, Hash: e.Hash}
}

// Page is the body of a listing.
type Page struct {
	Events     []Event `json:"events"`
	NextCursor *string `json:"next_cursor"`
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/" && r.URL.Path != "" {
		httpjson.Detail(w, http.StatusNotFound, "Not Found")
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		httpjson.Detail(w, http.StatusMethodNotAllowed, "Method Not Allowed")
		return
	}
	p, ok := h.cfg.User(r)
	if !ok || p.UserID == "" {
		httpjson.Detail(w, http.StatusUnauthorized, MsgNotAuthenticated)
		return
	}
	f, bad := ParseFilter(r)
	if bad != "" {
		httpjson.Detail(w, http.StatusUnprocessableEntity, bad)
		return
	}
	if h.cfg.SeesAll == nil || !h.cfg.SeesAll(r) {
		if f.ActorID != "" && f.ActorID != p.UserID {
			httpjson.Detail(w, http.StatusForbidden, MsgForbidden)
			return
		}
		f.ActorID = p.UserID
	}
	evs, next, err := h.cfg.Log.List(r.Context(), f)
	if err != nil {
		h.log().ErrorContext(r.Context(), "audithttp: list events failed; answering 503", "err", err)
		httpjson.Detail(w, http.StatusServiceUnavailable, MsgUnavailable)
		return
	}
	page := Page{Events: make([]Event, 0, len(evs))}
	for _, e := range evs {
		page.Events = append(page.Events, FromEvent(e))
	}
	if next > 0 {
		c := strconv.FormatInt(next, 10)
		page.NextCursor = &c
	}
	httpjson.Write(w, http.StatusOK, page)
}

// ParseFilter reads the listing's query parameters (see the package
// documentation) into a Filter. bad names the first malformed parameter ("" when
// all are well-formed).
func ParseFilter(r *http.Request) (f audit.Filter, bad string) {
	q := r.URL.Query()
	for _, v := range q["action"] {
		for a := range strings.SplitSeq(v, ",") {
			if a = strings.TrimSpace(a); a != "" {
				f.Actions = append(f.Actions, audit.Action(a))
			}
		}
	}
	f.ActorID = q.Get("actor")
	var err error
	for _, t := range []struct {
		name string
		dst  *time.Time
	}{{"since", &f.Since}, {"until", &f.Until}} {
		if v := q.Get(t.name); v != "" {
			if *t.dst, err = time.Parse(time.RFC3339Nano, v); err != nil {
				return audit.Filter{}, "Query parameter " + t.name + " must be an RFC 3339 time"
			}
		}
	}
	if v := q.Get("cursor"); v != "" {
		if f.Before, err = strconv.ParseInt(v, 10, 64); err != nil || f.Before <= 0 {
			return audit.Filter{}, "Query parameter cursor must be a cursor returned as next_cursor"
		}
	}
	if v := q.Get("limit"); v != "" {
		if f.Limit, err = strconv.Atoi(v); err != nil || f.Limit < 1 || f.Limit > audit.MaxLimit {
			return audit.Filter{}, "Query parameter limit must be a number from 1 to " + strconv.Itoa(audit.MaxLimit)
		}
	}
	return f, ""
}

func (h *handler) log() *slog.Logger {
	if h.cfg.Logger != nil {
		return h.cfg.Logger
	}
	return slog.Default()
}

package apikeyhttp

import (
	"errors"
	"net/http"
	"slices"
	"time"

	"github.com/keyflow-dev/keyflow/apikey"
	"github.com/keyflow-dev/keyflow/httpjson"
	"github.com/keyflow-dev/keyflow/internal/ids"
	"github.com/keyflow-dev/keyflow/observe"
)

// MsgNoUsageHistory answers (404) a usage request when the key store keeps
// no usage history (apikey.ErrNoUsageHistory).
const MsgNoUsageHistory = "This key store keeps no usage history"

// Usage is the body of GET /{id}/usage: the key's verifications in the
// last 24 hours (span "24h": 24 hourly buckets) or 30 days (span "30d": 30
// daily buckets, UTC days), oldest first, every bucket present (zeros
// included).
type Usage struct {
	KeyID   string        `json:"key_id"`
	Span    string        `json:"span"`
	Buckets []UsageBucket `json:"buckets"`
}

// UsageBucket is one hour or day of a key's verifications.
type UsageBucket struct {
	Start time.Time `json:"start"`
	// OK is the number of successful verifications.
	OK int64 `json:"ok"`
	// Refused is the number of verifications refused for the key's state
	// (disabled, expired, over a limit).
	Refused int64 `json:"refused"`
	// Outcomes counts every outcome seen, by name ("ok", "disabled"…).
	Outcomes map[string]int64 `json:"outcomes,omitempty"`
}

// usage serves GET /{id}/usage?span=24h|30d for the caller's key id: 404
// {"detail": MsgNotFound} for a key that is not theirs (as DELETE answers
// 400 for it, a missing key must not be told from another user's).
func (h *handler) usage(w http.ResponseWriter, r *http.Request, userID, id string) {
	span := r.URL.Query().Get("span")
	var (
		step  time.Duration
		count int
	)
	switch span {
	case "", "24h":
		span, step, count = "24h", time.Hour, 24
	case "30d":
		step, count = 24*time.Hour, 30
	default:
		httpjson.Detail(w, http.StatusUnprocessableEntity, `Query parameter span must be "24h" or "30d"`)
		return
	}
	if !ids.Valid(id) {
		httpjson.Detail(w, http.StatusUnprocessableEntity, MsgInvalidID)
		return
	}
	keys, err := h.m.List(r.Context(), userID)
	if err != nil {
		h.unavailable(w, r, "list keys", err)
		return
	}
	if !slices.ContainsFunc(keys, func(k apikey.Record) bool { return k.ID == id }) {
		httpjson.Detail(w, http.StatusNotFound, MsgNotFound)
		return
	}
	end := time.Now().UTC().Truncate(step).Add(step) // the end of the current hour or day
	start := end.Add(-time.Duration(count) * step)
	bs, err := h.m.UsageHistory(r.Context(), id, start, end)
	switch {
	case errors.Is(err, apikey.ErrNoUsageHistory):
		httpjson.Detail(w, http.StatusNotFound, MsgNoUsageHistory)
		return
	case err != nil:
		h.unavailable(w, r, "usage history", err)
		return
	}
	out := Usage{KeyID: id, Span: span, Buckets: make([]UsageBucket, count)}
	for i := range out.Buckets {
		out.Buckets[i].Start = start.Add(time.Duration(i) * step)
	}
	for _, b := range bs {
		i := int(b.Hour.Sub(start) / step)
		if i < 0 || i >= count {
			continue
		}
		ob := &out.Buckets[i]
		if b.Outcome == observe.OK {
			ob.OK += b.Count
		} else {
			ob.Refused += b.Count
		}
		if ob.Outcomes == nil {
			ob.Outcomes = make(map[string]int64)
		}
		ob.Outcomes[b.Outcome.String()] += b.Count
	}
	httpjson.Write(w, http.StatusOK, out)
}

// serveUsage checks the method and the caller, then serves usage.
func (h *handler) serveUsage(w http.ResponseWriter, r *http.Request, id string) {
	if r.Method != http.MethodGet {
		methodNotAllowed(w, "GET")
		return
	}
	p, ok := h.user(r)
	if !ok || p.UserID == "" {
		httpjson.Detail(w, http.StatusUnauthorized, MsgNotAuthenticated)
		return
	}
	h.usage(w, r, p.UserID, id)
}

package apikeyhttp

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"github.com/keyflow-dev/keyflow/apikey"
	"github.com/keyflow-dev/keyflow/httpjson"
	"github.com/keyflow-dev/keyflow/internal/ids"
)

// limitsRead is how a key's limits are shown (omitted when it has none):
//
//	"rate_limits": ["100/1m", "10000/1d"],
//	"quota": 10000, "quota_remaining": 9876, "refill": "10000/month"
//
// quota_remaining is what the store holds (refills that are due applied);
// uses that running servers reserved in advance are already deducted.
type limitsRead struct {
	RateLimits     []string `json:"rate_limits,omitempty"`
	Quota          *int64   `json:"quota,omitempty"`
	QuotaRemaining *int64   `json:"quota_remaining,omitempty"`
	Refill         string   `json:"refill,omitempty"`
}

func readLimits(l apikey.Limits) limitsRead {
	var out limitsRead
	for _, r := range l.Rate {
		out.RateLimits = append(out.RateLimits, r.String())
	}
	if q := l.Quota; q != nil {
		limit, remaining := q.Limit, q.Remaining
		out.Quota, out.QuotaRemaining, out.Refill = &limit, &remaining, q.Refill.String()
	}
	return out
}

// limitsRequest is the limits part of POST and PATCH bodies: "rate_limits"
// (a list of "N/WINDOW"), "quota" (uses granted) and "refill"
// ("N/PERIOD"). In a PATCH, a field that is absent is left as it is, and
// null (or an empty list) removes it.
type limitsRequest struct {
	RateLimits json.RawMessage `json:"rate_limits"`
	Quota      json.RawMessage `json:"quota"`
	Refill     json.RawMessage `json:"refill"`
}

// present reports whether a field was sent, and null reports whether it
// was sent as null.
func present(m json.RawMessage) bool { return len(m) > 0 }
func null(m json.RawMessage) bool    { return string(m) == "null" }

// limits returns the limits of a POST body.
func (q limitsRequest) limits() (apikey.Limits, error) {
	l, _, err := q.apply(apikey.Limits{})
	return l, err
}

// apply returns cur changed by the fields present, and whether the quota is
// a new grant (its "quota" was sent).
func (q limitsRequest) apply(cur apikey.Limits) (apikey.Limits, bool, error) {
	l := cur
	if present(q.RateLimits) {
		l.Rate = nil
		var specs []string
		if !null(q.RateLimits) {
			if err := json.Unmarshal(q.RateLimits, &specs); err != nil {
				return apikey.Limits{}, false, errors.New(`rate_limits must be a list of strings such as "100/1m"`)
			}
		}
		for _, s := range specs {
			r, err := apikey.ParseRateLimit(s)
			if err != nil {
				return apikey.Limits{}, false, err
			}
			l.Rate = append(l.Rate, r)
		}
	}
	grant := false
	if present(q.Quota) {
		if null(q.Quota) {
			l.Quota = nil
		} else {
			var n int64
			if err := json.Unmarshal(q.Quota, &n); err != nil {
				return apikey.Limits{}, false, errors.New("quota must be a whole number of uses")
			}
			nq := apikey.Quota{Limit: n}
			if l.Quota != nil {
				nq.Refill = l.Quota.Refill
			}
			l.Quota, grant = &nq, true
		}
	}
	if present(q.Refill) {
		var f apikey.Refill
		if !null(q.Refill) {
			var s string
			if err := json.Unmarshal(q.Refill, &s); err != nil {
				return apikey.Limits{}, false, errors.New(`refill must be a string such as "10000/month"`)
			}
			var err error
			if f, err = apikey.ParseRefill(s); err != nil {
				return apikey.Limits{}, false, err
			}
		}
		switch {
		case l.Quota != nil:
			nq := *l.Quota
			nq.Refill = f
			l.Quota = &nq
		case f.Amount > 0:
			// A refill alone: a quota starting with one refill's worth.
			l.Quota, grant = &apikey.Quota{Limit: f.Amount, Refill: f}, true
		}
	}
	return l, grant, nil
}

// patch changes the limits of key id: PATCH /{id} with a limitsRequest
// body. 200 with the key as the list shows it; 404 {"detail": MsgNotFound}
// for a missing or another user's key; 403 MsgLimitedCaller for a caller
// authenticated by a limited key; 400 for limits the Manager refuses.
func (h *handler) patch(w http.ResponseWriter, r *http.Request, p apikey.Principal, id string) {
	if !ids.Valid(id) {
		httpjson.Detail(w, http.StatusUnprocessableEntity, MsgInvalidID)
		return
	}
	id = strings.ToLower(id)
	var req *limitsRequest
	if !httpjson.Decode(w, r, &req) {
		return
	}
	if req == nil {
		httpjson.Detail(w, http.StatusUnprocessableEntity, "Request body must be a JSON object")
		return
	}
	if h.m.KeyLimited(p.KeyID) {
		httpjson.Detail(w, http.StatusForbidden, MsgLimitedCaller)
		return
	}
	recs, err := h.m.List(r.Context(), p.UserID)
	if err != nil {
		h.unavailable(w, r, "list", err)
		return
	}
	var cur *apikey.Record
	for i := range recs {
		if recs[i].ID == id {
			cur = &recs[i]
		}
	}
	if cur == nil {
		httpjson.Detail(w, http.StatusNotFound, MsgNotFound)
		return
	}
	l, grant, err := req.apply(cur.Limits)
	if err != nil {
		httpjson.Detail(w, http.StatusBadRequest, err.Error())
		return
	}
	rec, err := h.m.SetLimits(r.Context(), p.UserID, id, l, grant)
	switch {
	case err == nil:
		httpjson.Write(w, http.StatusOK, apiKeyRead{keyRead(rec, rec.MaskedKey()), isoTime(rec.CreatedAt)})
	case errors.Is(err, apikey.ErrNotFound):
		httpjson.Detail(w, http.StatusNotFound, MsgNotFound)
	case errors.Is(err, apikey.ErrUnavailable), errors.Is(err, apikey.ErrUninitialized):
		h.unavailable(w, r, "set limits", err)
	default:
		httpjson.Detail(w, http.StatusBadRequest, err.Error())
	}
}

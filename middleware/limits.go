package middleware

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/keyflow-dev/keyflow/apikey"
	"github.com/keyflow-dev/keyflow/httpjson"
)

// Charger is a Verifier that charges usage limits: *apikey.Manager. When
// Config.Verifier is one, the middleware charges each request Config.Cost
// units, sets the RateLimit header fields on every response to a limited
// key, and refunds the quota of requests the server fails (5xx).
type Charger interface {
	Verifier
	// VerifyCharge verifies key as Verify does and charges a limited key
	// cost units: apikey.Manager.VerifyCharge.
	VerifyCharge(ctx context.Context, key string, cost int64) (apikey.Principal, apikey.Charge, error)
	// Refund gives back the quota of a request the server failed:
	// apikey.Manager.Refund.
	Refund(c *apikey.Charge)
}

// The answers to a limited key over its budget (429).
const (
	msgRateLimited    = "API key rate limit exceeded"
	msgQuotaExhausted = "API key quota exhausted"
)

// noRefillRetry is the Retry-After of a quota that is never refilled: only
// raising the quota helps, so clients that honour the field are asked to
// wait a day rather than retry at once.
const noRefillRetry = 24 * time.Hour

// serveLimited serves a limited key's request: the RateLimit header fields
// first, and the quota refunded when the handler fails: a status of 500 or
// more, or a panic (passed on) before any answer. A panic after a 2xx–4xx
// status is not refunded: the client had its answer, and a client that
// hangs up mid-answer (which makes httputil.ReverseProxy panic with
// http.ErrAbortHandler) must not get its use back.
func (h *handler) serveLimited(w http.ResponseWriter, r *http.Request, c *principalCtx, key string, ch apikey.Charge) {
	SetRateLimitHeaders(w.Header(), ch.Status())
	sw := &statusWriter{ResponseWriter: w}
	finished := false
	defer func() {
		if (!finished && sw.status == 0) || sw.status >= http.StatusInternalServerError {
			h.a.charger.Refund(&ch)
		}
	}()
	h.serve(sw, r, c, key)
	finished = true
}

// statusWriter records the status a handler answers.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 && code >= 200 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Flush flushes the underlying writer when it can (streaming responses).
func (w *statusWriter) Flush() {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	_ = http.NewResponseController(w.ResponseWriter).Flush()
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// SetRateLimitHeaders sets the RateLimit-Policy and RateLimit header fields
// of draft-ietf-httpapi-ratelimit-headers (structured-field lists, one item
// per limit) from a key's status, e.g. for 100 a minute and a monthly quota:
//
//	RateLimit-Policy: "minute";q=100;w=60, "quota";q=10000;w=2678400
//	RateLimit: "minute";r=42;t=17, "quota";r=9958;t=1234567
//
// q is the limit, w the window in seconds (for a quota, the current refill
// period's length; absent when it is never refilled), r what remains, t the
// seconds until the window ends or the quota is refilled (rounded up; absent
// for a quota never refilled). Nothing is set for an empty status. The
// fields are set under Go's canonical keys, so net/http writes them as
// "Ratelimit-Policy" and "Ratelimit" (field names are case-insensitive, and
// HTTP/2 lower-cases them); Header.Get finds them under either spelling.
func SetRateLimitHeaders(h http.Header, status []apikey.LimitStatus) {
	if len(status) == 0 {
		return
	}
	buf := make([]byte, 0, 64*len(status))
	for i, s := range status {
		if i > 0 {
			buf = append(buf, ", "...)
		}
		// Names are letters, digits, '_', '-' and '.': a valid sf-string as is.
		buf = append(buf, '"')
		buf = append(buf, s.Name...)
		buf = append(buf, `";q=`...)
		buf = strconv.AppendInt(buf, s.Limit, 10)
		if s.Window > 0 {
			buf = append(buf, ";w="...)
			buf = strconv.AppendInt(buf, seconds(s.Window), 10)
		}
	}
	h["Ratelimit-Policy"] = []string{string(buf)}
	buf = buf[:0]
	for i, s := range status {
		if i > 0 {
			buf = append(buf, ", "...)
		}
		buf = append(buf, '"')
		buf = append(buf, s.Name...)
		buf = append(buf, `";r=`...)
		buf = strconv.AppendInt(buf, max(s.Remaining, 0), 10)
		if s.Reset > 0 {
			buf = append(buf, ";t="...)
			buf = strconv.AppendInt(buf, seconds(s.Reset), 10)
		}
	}
	h["Ratelimit"] = []string{string(buf)}
}

// seconds rounds d up to whole seconds.
func seconds(d time.Duration) int64 { return int64((d + time.Second - 1) / time.Second) }

// limitAnswer answers a limited key over its budget: 429, {"detail": …},
// Retry-After and the RateLimit header fields. It reports false when err is
// not such a refusal.
func limitAnswer(w http.ResponseWriter, err error) bool {
	var le *apikey.LimitError
	if !errors.As(err, &le) {
		return false
	}
	SetRateLimitHeaders(w.Header(), le.Status)
	retry := le.RetryAfter
	if retry <= 0 {
		retry = noRefillRetry
	}
	w.Header().Set("Retry-After", strconv.FormatInt(max(seconds(retry), 1), 10))
	msg := msgRateLimited
	if errors.Is(err, apikey.ErrQuotaExhausted) {
		msg = msgQuotaExhausted
	}
	httpjson.Detail(w, http.StatusTooManyRequests, msg)
	return true
}

// IsLimited reports whether err refuses a limited key over its budget
// (apikey.ErrRateLimited or apikey.ErrQuotaExhausted): answered 429.
func IsLimited(err error) bool {
	return errors.Is(err, apikey.ErrRateLimited) || errors.Is(err, apikey.ErrQuotaExhausted)
}

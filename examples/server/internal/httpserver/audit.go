package httpserver

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"maps"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/keyflow-dev/keyflow/apikey"
	"github.com/keyflow-dev/keyflow/audit"
	"github.com/keyflow-dev/keyflow/audit/audithttp"
	"github.com/keyflow-dev/keyflow/examples/server/internal/auditing"
	"github.com/keyflow-dev/keyflow/examples/server/internal/httpapi"
	"github.com/keyflow-dev/keyflow/examples/server/internal/startup"
	"github.com/keyflow-dev/keyflow/middleware"
	"github.com/keyflow-dev/keyflow/variables"
)

// The management handlers of keys and variables are keyflow's (apikeyhttp,
// variableshttp); the server audits them from the outside, so that no write
// goes unrecorded:
//
//   - a creation is recorded once it is made, before the answer is sent; if
//     the record fails, the key or variable is deleted again and the answer
//     is 503;
//   - an update or deletion is recorded before it is made (it cannot be
//     undone afterwards); if the record fails, nothing is changed and the
//     answer is 503; if the change then fails, a Failure event follows.

// recorder buffers a handler's answer, so that it is sent only once the
// action's event is recorded.
type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func newRecorder() *recorder { return &recorder{header: http.Header{}, status: http.StatusOK} }

func (r *recorder) Header() http.Header         { return r.header }
func (r *recorder) Write(b []byte) (int, error) { return r.body.Write(b) }
func (r *recorder) WriteHeader(status int)      { r.status = status }

// send writes the buffered answer to w.
func (r *recorder) send(w http.ResponseWriter) {
	maps.Copy(w.Header(), r.header)
	w.WriteHeader(r.status)
	_, _ = w.Write(r.body.Bytes())
}

func (r *recorder) ok() bool { return r.status >= 200 && r.status < 300 }

// auditor is what the audit wrappers need from the app.
type auditor struct{ a *startup.App }

// actor names the caller of r.
func (au auditor) actor(r *http.Request) (apikey.Principal, audit.Actor) {
	p, _ := middleware.FromRequest(r)
	username := ""
	if acct, err := au.a.Users.Fresh(r.Context(), p.UserID); err == nil {
		username = acct.Username
	}
	return p, auditing.Actor(p, username, string(p.Source))
}

// refuse answers an action whose event could not be recorded.
func (au auditor) refuse(w http.ResponseWriter, r *http.Request, err error) {
	httpapi.StoreUnavailable(au.a.Log, w, r, "record audit event", err)
}

// failed records that an action recorded beforehand did not take place.
func (au auditor) failed(r *http.Request, e audit.Event, rec *recorder) {
	e.Outcome, e.Reason = audit.Failure, "answered "+strconv.Itoa(rec.status)
	_ = au.a.Auditor.Record(r, e) // logged; the action did not happen
}

// auditKeys audits apikeyhttp's POST /, PATCH /{id} and DELETE /{id}.
func (au auditor) auditKeys(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, actor := au.actor(r)
		switch {
		case r.Method == http.MethodPost && (r.URL.Path == "/" || r.URL.Path == ""):
			au.keyCreated(w, r, next, actor)
		case (r.Method == http.MethodDelete || r.Method == http.MethodPatch) && strings.Count(r.URL.Path, "/") == 1:
			au.keyChanged(w, r, next, p, actor)
		default:
			next.ServeHTTP(w, r)
		}
	})
}

// keyCreated serves a key creation and records it; a key whose record
// fails is deleted again.
func (au auditor) keyCreated(w http.ResponseWriter, r *http.Request, next http.Handler, actor audit.Actor) {
	rec := newRecorder()
	next.ServeHTTP(rec, r)
	if !rec.ok() {
		rec.send(w)
		return
	}
	var k struct {
		ID        string     `json:"id"`
		Name      *string    `json:"name"`
		UserID    string     `json:"user_id"`
		APIKey    string     `json:"api_key"`
		Scopes    []string   `json:"scopes"`
		ExpiresAt *time.Time `json:"expires_at"`
	}
	if err := json.Unmarshal(rec.body.Bytes(), &k); err != nil || k.ID == "" {
		au.refuse(w, r, errors.New("unexpected answer of the key handler"))
		return
	}
	kr := apikey.Record{ID: k.ID, UserID: k.UserID, Prefix: k.APIKey[:min(len(k.APIKey), audit.PrefixLen)], Scopes: k.Scopes, ExpiresAt: k.ExpiresAt}
	if k.Name != nil {
		kr.Name = *k.Name
	}
	target, details := auditing.KeyTarget(kr)
	if err := au.a.Auditor.Record(r, audit.Event{Action: audit.KeyCreated, Actor: actor, Target: target, Details: details}); err != nil {
		// No key without its record: take it back.
		if derr := au.a.Keys.Delete(context.WithoutCancel(r.Context()), k.UserID, k.ID); derr != nil {
			au.a.Log.ErrorContext(r.Context(), "a key created without its audit record could not be deleted", "key_id", k.ID, "err", derr)
		}
		au.refuse(w, r, err)
		return
	}
	rec.send(w)
}

// keyChanged records a deletion or a change of limits of one of the
// caller's keys, then serves it (a Failure event follows if it fails).
func (au auditor) keyChanged(w http.ResponseWriter, r *http.Request, next http.Handler, p apikey.Principal, actor audit.Actor) {
	id := r.URL.Path[1:]
	keys, err := au.a.Keys.List(r.Context(), p.UserID)
	if err != nil {
		httpapi.StoreUnavailable(au.a.Log, w, r, "list keys", err)
		return
	}
	action := audit.KeyDeleted
	if r.Method == http.MethodPatch {
		action = audit.KeyLimitsChanged
	}
	var e *audit.Event
	for _, k := range keys {
		if k.ID == id {
			target, details := auditing.KeyTarget(k)
			e = &audit.Event{Action: action, Actor: actor, Target: target, Details: details}
		}
	}
	if e == nil { // not the caller's key: the handler answers, nothing changes
		next.ServeHTTP(w, r)
		return
	}
	if action == audit.KeyLimitsChanged {
		if err := limitsAsked(r, e); err != nil {
			httpapi.StoreUnavailable(au.a.Log, w, r, "read the request", err)
			return
		}
	}
	if err := au.a.Auditor.Record(r, *e); err != nil {
		au.refuse(w, r, err)
		return
	}
	rec := newRecorder()
	next.ServeHTTP(rec, r)
	if !rec.ok() {
		au.failed(r, *e, rec)
	}
	rec.send(w)
}

// limitsAsked adds to e the limits a PATCH asks for, besides those the key
// has (its details), and leaves r's body for the handler to read.
func limitsAsked(r *http.Request, e *audit.Event) error {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxPatchBody+1)) // +1: the handler still sees a body too large
	if err != nil {
		return err
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	var in map[string]json.RawMessage
	if json.Unmarshal(body, &in) == nil {
		for _, f := range []string{"rate_limits", "quota", "refill"} {
			if v, ok := in[f]; ok && len(v) <= 256 {
				e.Details["new_"+f] = string(v)
			}
		}
	}
	return nil
}

// maxPatchBody bounds the PATCH body read for the event; the handler
// refuses bodies over 1 MiB itself.
const maxPatchBody = 1 << 20

// auditVariables audits variableshttp's POST /, PATCH /{id} and DELETE
// /{id}: names and types, never a value.
func (au auditor) auditVariables(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, actor := au.actor(r)
		switch {
		case r.Method == http.MethodPost && (r.URL.Path == "/" || r.URL.Path == ""):
			rec := newRecorder()
			next.ServeHTTP(rec, r)
			if !rec.ok() {
				rec.send(w)
				return
			}
			var v struct {
				ID     string `json:"id"`
				Name   string `json:"name"`
				Type   string `json:"type"`
				UserID string `json:"user_id"`
			}
			if err := json.Unmarshal(rec.body.Bytes(), &v); err != nil || v.ID == "" {
				au.refuse(w, r, errors.New("unexpected answer of the variables handler"))
				return
			}
			target, details := auditing.VariableTarget(variables.Variable{ID: v.ID, Name: v.Name, Type: variables.Type(v.Type), UserID: p.UserID})
			if err := au.a.Auditor.Record(r, audit.Event{Action: audit.VariableCreated, Actor: actor, Target: target, Details: details}); err != nil {
				if derr := au.a.Vars.Delete(context.WithoutCancel(r.Context()), p.UserID, v.ID); derr != nil {
					au.a.Log.ErrorContext(r.Context(), "a variable created without its audit record could not be deleted", "variable_id", v.ID, "err", derr)
				}
				au.refuse(w, r, err)
				return
			}
			rec.send(w)
		case (r.Method == http.MethodPatch || r.Method == http.MethodDelete) && strings.Count(r.URL.Path, "/") == 1:
			v, err := au.a.Vars.Get(r.Context(), p.UserID, r.URL.Path[1:])
			if err != nil { // not found, malformed, or the store: the handler answers
				next.ServeHTTP(w, r)
				return
			}
			action := audit.VariableUpdated
			if r.Method == http.MethodDelete {
				action = audit.VariableDeleted
			}
			target, details := auditing.VariableTarget(v)
			e := audit.Event{Action: action, Actor: actor, Target: target, Details: details}
			if err := au.a.Auditor.Record(r, e); err != nil {
				au.refuse(w, r, err)
				return
			}
			rec := newRecorder()
			next.ServeHTTP(rec, r)
			if !rec.ok() {
				au.failed(r, e, rec)
			}
			rec.send(w)
		default:
			next.ServeHTTP(w, r)
		}
	})
}

// auditAPI serves GET /api/v1/audit/ (package audithttp): a superuser sees
// every event, a user their own.
func (au auditor) auditAPI() (http.Handler, error) {
	return audithttp.New(audithttp.Config{
		Log:  au.a.Audit,
		User: middleware.FromRequest,
		SeesAll: func(r *http.Request) bool {
			p, _ := middleware.FromRequest(r)
			acct, err := au.a.Users.Fresh(r.Context(), p.UserID)
			return err == nil && acct.IsSuperuser
		},
		Logger: au.a.Log,
	})
}

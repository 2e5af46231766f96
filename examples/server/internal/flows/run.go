package flows

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/keyflow-dev/keyflow/examples/internal/ids"
	"github.com/keyflow-dev/keyflow/examples/server/internal/httpapi"
	"github.com/keyflow-dev/keyflow/httpjson"
	"github.com/keyflow-dev/keyflow/middleware"
	"github.com/keyflow-dev/keyflow/variables"
)

// POST /api/v1/run/{flow_id_or_name}: Langflow's simplified run API
// (docs/langflow-compatibility.md#run-api).
//
// A keyflow flow is one component: its display name is the flow's name, its
// id ComponentID(flow), its fields the flow's fields. Running it echoes the
// input as the component's chat message and resolves every field (flow value
// or tweak > X-LANGFLOW-GLOBAL-VAR-* header > stored variable >
// environment); the response reports where each value came from in the
// top-level "fields" object, never the value.

// runRequest is Langflow's SimplifiedAPIRequest, plus the seed's
// {"inputs": {"text": …}}.
type runRequest struct {
	InputValue      *string         `json:"input_value"`
	InputType       *string         `json:"input_type"`
	OutputType      *string         `json:"output_type"`
	OutputComponent *string         `json:"output_component"`
	Tweaks          json.RawMessage `json:"tweaks"`
	SessionID       *string         `json:"session_id"`
	Inputs          *struct {
		Text       *string `json:"text"`
		InputValue *string `json:"input_value"`
	} `json:"inputs"`
}

// input returns the run's input text and whether there is one:
// input_value, else inputs.text (or inputs.input_value).
func (in *runRequest) input() (string, bool) {
	switch {
	case in.InputValue != nil:
		return *in.InputValue, true
	case in.Inputs != nil && in.Inputs.Text != nil:
		return *in.Inputs.Text, true
	case in.Inputs != nil && in.Inputs.InputValue != nil:
		return *in.Inputs.InputValue, true
	}
	return "", false
}

// tweak is one field's new value; clear means null (the field is emptied).
type tweak struct {
	value string
	clear bool
}

// tweakEntry is one top-level key of "tweaks", in request order: a field
// tweak (fields has one entry, keyed "") or a component tweak.
type tweakEntry struct {
	key       string
	component bool
	field     tweak
	fields    []namedTweak
}

type namedTweak struct {
	name string
	tweak
}

// errTweaks is a malformed "tweaks" value; its message says where.
type errTweaks struct{ msg string }

func (e *errTweaks) Error() string { return e.msg }

// parseTweaks reads "tweaks": an object whose values are a field's new
// value (a string, number, boolean or null) or an object of such values for
// one component. The order of the keys is kept: Langflow applies tweaks in
// the request's order.
func parseTweaks(raw json.RawMessage) ([]tweakEntry, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil, &errTweaks{"Invalid type for field 'tweaks': expected an object"}
	}
	var out []tweakEntry
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil, &errTweaks{"Malformed 'tweaks'"}
		}
		key := t.(string)
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, &errTweaks{"Malformed 'tweaks'"}
		}
		e := tweakEntry{key: key}
		if len(v) > 0 && v[0] == '{' {
			e.component = true
			if e.fields, err = parseComponentTweaks(v); err != nil {
				return nil, err
			}
		} else if e.field, err = scalarTweak(v); err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, nil
}

func parseComponentTweaks(raw json.RawMessage) ([]namedTweak, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	_, _ = dec.Token() // '{', checked by the caller
	var out []namedTweak
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil, &errTweaks{"Malformed 'tweaks'"}
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, &errTweaks{"Malformed 'tweaks'"}
		}
		tw, err := scalarTweak(v)
		if err != nil {
			return nil, err
		}
		out = append(out, namedTweak{t.(string), tw})
	}
	return out, nil
}

// scalarTweak turns a JSON string, number, boolean or null into a field
// value. Numbers keep their JSON spelling; booleans are "true"/"false".
func scalarTweak(v json.RawMessage) (tweak, error) {
	var x any
	dec := json.NewDecoder(bytes.NewReader(v))
	dec.UseNumber()
	if err := dec.Decode(&x); err != nil {
		return tweak{}, &errTweaks{"Malformed 'tweaks'"}
	}
	switch x := x.(type) {
	case nil:
		return tweak{clear: true}, nil
	case string:
		return tweak{value: x}, nil
	case json.Number:
		return tweak{value: x.String()}, nil
	case bool:
		return tweak{value: strconv.FormatBool(x)}, nil
	}
	return tweak{}, &errTweaks{"Invalid tweak: a value must be a string, number, boolean or null, or an object of them for one component"}
}

// ComponentID is the id of a flow's one component, in Langflow's
// "<Type>-<5 characters>" form: the flow's name without spaces or symbols,
// and the start of the flow's id.
func ComponentID(f Flow) string {
	var b strings.Builder
	for _, r := range f.Name {
		if r < unicode.MaxASCII && (unicode.IsLetter(r) || unicode.IsDigit(r)) {
			b.WriteRune(r)
		}
	}
	if b.Len() == 0 {
		b.WriteString("Component")
	}
	return b.String() + "-" + strings.ReplaceAll(f.ID, "-", "")[:5]
}

// applyTweaks returns the flow's fields with the tweaks applied, in
// Langflow's manner (process_tweaks): an object keyed by the component's id
// or display name sets those of its fields; a value keyed by a field name
// sets that field, after every component tweak; tweaks for other
// components and for fields the flow lacks are ignored. A tweak makes the
// field a literal (source "flow"); null empties it.
func applyTweaks(f Flow, tweaks []tweakEntry) map[string]Field {
	fields := maps.Clone(f.Fields)
	if fields == nil {
		fields = map[string]Field{}
	}
	set := func(name string, t tweak) {
		if _, ok := fields[name]; !ok {
			return
		}
		if t.clear {
			fields[name] = Field{}
			return
		}
		fields[name] = Field{Value: t.value}
	}
	cid := ComponentID(f)
	for _, e := range tweaks {
		if e.component && (e.key == cid || e.key == f.Name) {
			for _, t := range e.fields {
				set(t.name, t.tweak)
			}
		}
	}
	for _, e := range tweaks {
		if !e.component {
			set(e.key, e.field)
		}
	}
	return fields
}

// resolverFields turns fields into the Resolver's input, sorted by name. An
// empty field is filled by the user's variable whose "Apply To Fields" name
// it (Langflow does that only in its editor, issue #11781; here at every
// run).
func resolverFields(fields map[string]Field) []variables.Field {
	out := make([]variables.Field, 0, len(fields))
	for _, name := range slices.Sorted(maps.Keys(fields)) {
		fld := fields[name]
		out = append(out, variables.Field{Name: name, Variable: fld.Variable, Value: fld.Value})
	}
	return out
}

// endpointNameRe is Langflow's rule for a flow's endpoint_name.
var endpointNameRe = regexp.MustCompile(`^[a-zA-Z0-9_-]+$`)

// maxEndpointName bounds an endpoint name (Langflow has no bound; a URL
// path segment of more is a mistake).
const maxEndpointName = 255

const msgEndpointCharset = "Endpoint name must contain only letters, numbers, hyphens, and underscores"

// lookupRunFlow finds /run/{x}'s flow: by id when x is a UUID, else (or
// when no flow has that id) among the caller's flows by endpoint name.
// It answers 404 "Flow identifier <x> not found" (x is echoed only when it
// is a UUID or a valid endpoint name), 403 for another user's flow (by id),
// 503 for a store failure, and reports false.
func (a *API) lookupRunFlow(w http.ResponseWriter, r *http.Request, userID string) (*runnable, bool) {
	x := r.PathValue("flow_id_or_name")
	ctx := r.Context()
	// The caller's own flows first, from the cache (cache.go); anything
	// else is read from the table.
	uf, err := a.Flows.cached(ctx, userID)
	if err != nil {
		httpapi.StoreUnavailable(a.Log, w, r, "read flow", err)
		return nil, false
	}
	if ids.Valid(x) {
		if f := uf.byID(lowerID(x)); f != nil {
			return f, true
		}
		f, err := a.Flows.ByID(ctx, strings.ToLower(x))
		switch {
		case err == nil && f.UserID != userID: // superusers are not exempt
			httpjson.Detail(w, http.StatusForbidden, "You do not have permission to run this flow")
			return nil, false
		case err == nil:
			return newRunnable(f), true
		case !errors.Is(err, ErrNotFound):
			httpapi.StoreUnavailable(a.Log, w, r, "read flow", err)
			return nil, false
		}
	}
	if len(x) <= maxEndpointName && endpointNameRe.MatchString(x) {
		if f := uf.byEndpointName(x); f != nil {
			return f, true
		}
		f, err := a.Flows.ByEndpointName(ctx, userID, x)
		switch {
		case err == nil:
			return newRunnable(f), true
		case !errors.Is(err, ErrNotFound):
			httpapi.StoreUnavailable(a.Log, w, r, "read flow", err)
			return nil, false
		}
		httpjson.Detail(w, http.StatusNotFound, "Flow identifier "+x+" not found")
		return nil, false
	}
	httpjson.Detail(w, http.StatusNotFound, "Flow identifier not found")
	return nil, false
}

// Run is POST /api/v1/run/{flow_id_or_name}[?stream=true].
func (a *API) Run(w http.ResponseWriter, r *http.Request) {
	caller, _ := middleware.FromRequest(r)
	userID := caller.UserID
	stream, ok := streamParam(w, r)
	if !ok {
		return
	}
	f, ok := a.lookupRunFlow(w, r, userID)
	if !ok {
		return
	}
	var in runRequest
	if !decodeRunRequest(w, r, &in) {
		return
	}
	tweaks, err := parseTweaks(in.Tweaks)
	if err != nil {
		httpapi.ValidationError(w, "dict_type", []string{"body", "tweaks"}, err.Error())
		return
	}
	for _, v := range []struct {
		name    string
		value   *string
		allowed []string
	}{
		{"input_type", in.InputType, []string{"chat", "text", "any"}},
		{"output_type", in.OutputType, []string{"chat", "text", "any", "debug"}},
	} {
		if v.value != nil && !slices.Contains(v.allowed, *v.value) {
			httpapi.ValidationError(w, "literal_error", []string{"body", v.name},
				"Input should be '"+strings.Join(v.allowed[:len(v.allowed)-1], "', '")+"' or '"+v.allowed[len(v.allowed)-1]+"'")
			return
		}
	}
	cid := f.componentID
	if in.OutputComponent != nil && *in.OutputComponent != "" && *in.OutputComponent != cid {
		httpjson.Detail(w, http.StatusNotFound, "Output component not found in this flow")
		return
	}
	sessionID := f.ID // Langflow's fallback: the flow's id
	if in.SessionID != nil && *in.SessionID != "" {
		sessionID = *in.SessionID
	}
	run := flowRun{flow: f, sessionID: sessionID, started: time.Now()}
	run.input, run.hasInput = in.input()

	if stream {
		a.streamRun(w, r, userID, run, tweaks)
		return
	}
	resp, rerr := a.executeRun(r, userID, run, tweaks)
	if rerr != nil {
		a.answerRunError(w, r, rerr)
		return
	}
	writeRunResponse(w, &resp)
}

// streamParam reads ?stream= as FastAPI reads a bool.
func streamParam(w http.ResponseWriter, r *http.Request) (bool, bool) {
	if r.URL.RawQuery == "" {
		return false, true // no query to parse (and allocate)
	}
	v := r.URL.Query().Get("stream")
	switch strings.ToLower(v) {
	case "", "0", "false", "f", "no", "n", "off":
		return false, true
	case "1", "true", "t", "yes", "y", "on":
		return true, true
	}
	httpapi.ValidationError(w, "bool_parsing", []string{"query", "stream"}, "Input should be a valid boolean, unable to interpret input")
	return false, false
}

// decodeRunRequest reads the optional JSON body (an empty body is an empty
// request, as in Langflow).
func decodeRunRequest(w http.ResponseWriter, r *http.Request, in *runRequest) bool {
	if r.ContentLength == 0 {
		return true
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, httpjson.MaxBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			httpjson.Detail(w, http.StatusRequestEntityTooLarge, "Request body too large")
		} else {
			httpjson.Detail(w, http.StatusBadRequest, "Could not read the request body")
		}
		return false
	}
	if len(bytes.TrimSpace(body)) == 0 || decodeSimpleRunRequest(body, in) {
		return true
	}
	return httpjson.DecodeBytes(w, body, in)
}

// flowRun is one run being answered.
type flowRun struct {
	flow      *runnable // shared with the cache: read only
	sessionID string
	input     string
	hasInput  bool
	started   time.Time
}

// fieldResult tells which source gave a field its value, never the value.
type fieldResult struct {
	Variable string          `json:"variable"`
	Source   variables.Layer `json:"source"`
}

// runResponse is Langflow's RunResponse plus keyflow's "fields". A run has
// one output, of the flow's one component: the lists are arrays of one.
type runResponse struct {
	SessionID string        `json:"session_id"`
	Outputs   [1]runOutputs `json:"outputs"`
	Fields    fieldSources  `json:"fields"`
}

// runOutputs is Langflow's RunOutputs.
type runOutputs struct {
	Inputs  runInputs     `json:"inputs"`
	Outputs [1]resultData `json:"outputs"`
}

// runInputs is {"input_value": …}, or {} for a run without input.
type runInputs struct {
	InputValue *string `json:"input_value,omitempty"`
}

// The response's objects are structs rather than maps: encoding/json writes
// a map's keys sorted and a struct's fields in order, so the fields are in
// key order and the bytes are the same, for a fraction of the allocations.

// noFiles is Langflow's empty "files" list: an empty array encodes as [].
type noFiles [0]int

// resultData is Langflow's ResultData for the flow's one component.
type resultData struct {
	Results              results        `json:"results"`
	Artifacts            artifacts      `json:"artifacts"`
	Outputs              outputs        `json:"outputs"`
	Logs                 logs           `json:"logs"`
	Messages             [1]chatMessage `json:"messages"`
	Timedelta            float64        `json:"timedelta"`
	Duration             string         `json:"duration"`
	ComponentDisplayName string         `json:"component_display_name"`
	ComponentID          string         `json:"component_id"`
	UsedFrozenResult     bool           `json:"used_frozen_result"`
}

type results struct {
	Message message `json:"message"`
}

type artifacts struct {
	Files      noFiles `json:"files"`
	Message    string  `json:"message"`
	Sender     string  `json:"sender"`
	SenderName string  `json:"sender_name"`
	Type       string  `json:"type"`
}

type outputs struct {
	Message struct {
		Message string `json:"message"`
		Type    string `json:"type"`
	} `json:"message"`
}

type logs struct {
	Message noFiles `json:"message"`
}

// chatMessage is an entry of ResultData's "messages".
type chatMessage struct {
	ComponentID string  `json:"component_id"`
	Files       noFiles `json:"files"`
	Message     string  `json:"message"`
	Sender      string  `json:"sender"`
	SenderName  string  `json:"sender_name"`
	SessionID   string  `json:"session_id"`
	StreamURL   *string `json:"stream_url"` // always null
	Type        string  `json:"type"`
}

// message is the component's chat message (Langflow's Message, the fields a
// client reads).
type message struct {
	Category   string      `json:"category"`
	Data       messageData `json:"data"`
	Edit       bool        `json:"edit"`
	Error      bool        `json:"error"`
	Files      noFiles     `json:"files"`
	FlowID     string      `json:"flow_id"`
	Sender     string      `json:"sender"`
	SenderName string      `json:"sender_name"`
	SessionID  string      `json:"session_id"`
	Text       string      `json:"text"`
	TextKey    string      `json:"text_key"`
	Timestamp  string      `json:"timestamp"`
}

type messageData struct {
	Text string `json:"text"`
}

// runError is a run that could not resolve its fields: the status and
// message to answer, and the cause (logged, never answered).
type runError struct {
	status int
	msg    string
	cause  error
}

// executeRun resolves the fields and builds the response.
func (a *API) executeRun(r *http.Request, userID string, run flowRun, tweaks []tweakEntry) (runResponse, *runError) {
	fields := run.flow.fields // sorted once per fill of the cache
	if len(tweaks) > 0 {
		fields = resolverFields(applyTweaks(run.flow.Flow, tweaks))
	}
	res, err := a.Resolver.Resolve(r.Context(), userID, fields, variables.OverridesFromRequest(r))
	var verr *variables.ValidationError
	switch {
	case errors.As(err, &verr):
		return runResponse{}, &runError{http.StatusBadRequest, verr.Message, nil}
	case errors.Is(err, variables.ErrUnavailable):
		return runResponse{}, &runError{http.StatusServiceUnavailable, httpapi.MsgStoreUnavailable, err}
	case err != nil: // e.g. a Credential that no secret decrypts
		return runResponse{}, &runError{http.StatusInternalServerError, "Internal server error", err}
	}
	// The Resolver answers in the order of its input, sorted by name.
	sources := make(fieldSources, len(res))
	for i, rr := range res {
		sources[i] = fieldSource{rr.Field, fieldResult{Variable: rr.Variable, Source: rr.Layer}}
	}
	if !slices.IsSortedFunc(sources, compareFieldSources) {
		slices.SortFunc(sources, compareFieldSources)
	}
	return run.response(sources), nil
}

// answerRunError writes a run error as JSON, logging its cause.
func (a *API) answerRunError(w http.ResponseWriter, r *http.Request, e *runError) {
	switch e.status {
	case http.StatusServiceUnavailable:
		httpapi.StoreUnavailable(a.Log, w, r, "resolve variables", e.cause)
	case http.StatusInternalServerError:
		httpapi.InternalError(a.Log, w, r, e.cause)
	default:
		httpjson.Detail(w, e.status, e.msg)
	}
}

// message is the component's output message.
func (run flowRun) message() message {
	return message{
		Category:   "message",
		Data:       messageData{Text: run.input},
		FlowID:     run.flow.ID,
		Sender:     "Machine",
		SenderName: "AI",
		SessionID:  run.sessionID,
		Text:       run.input,
		TextKey:    "text",
		Timestamp:  run.started.UTC().Format("2006-01-02 15:04:05 UTC"),
	}
}

// response builds the RunResponse of a run whose fields resolved.
func (run flowRun) response(fields fieldSources) runResponse {
	var inputs runInputs
	if run.hasInput {
		inputs.InputValue = &run.input
	}
	elapsed := time.Since(run.started)
	out := resultData{
		Results:   results{Message: run.message()},
		Artifacts: artifacts{Message: run.input, Sender: "Machine", SenderName: "AI", Type: "object"},
		Messages: [1]chatMessage{{
			ComponentID: run.flow.componentID, Message: run.input, Sender: "Machine", SenderName: "AI",
			SessionID: run.sessionID, Type: "text",
		}},
		Timedelta:            elapsed.Seconds(),
		Duration:             formatDuration(elapsed),
		ComponentDisplayName: run.flow.Name,
		ComponentID:          run.flow.componentID,
	}
	out.Outputs.Message.Message, out.Outputs.Message.Type = run.input, "text"
	return runResponse{
		SessionID: run.sessionID,
		Outputs:   [1]runOutputs{{Inputs: inputs, Outputs: [1]resultData{out}}},
		Fields:    fields,
	}
}

// formatDuration is Langflow's format_elapsed_time: "< 1 ms", "N ms", then
// seconds with one decimal.
func formatDuration(d time.Duration) string {
	switch ms := d.Milliseconds(); {
	case ms < 1:
		return "< 1 ms"
	case ms < 1000:
		return fmt.Sprintf("%d ms", ms)
	}
	return fmt.Sprintf("%.1f seconds", d.Seconds())
}

// streamContentType is the content type of Langflow's run event stream: its
// body is newline-delimited JSON events, each followed by a blank line.
const streamContentType = "text/event-stream"

// streamRun answers ?stream=true with Langflow's events: add_message for
// the input and for the output, then {"event": "end", "data": {"result":
// <the RunResponse>}}; a run that fails sends {"event": "error", "data":
// {"error": <message>}} instead of end, as Langflow does.
func (a *API) streamRun(w http.ResponseWriter, r *http.Request, userID string, run flowRun, tweaks []tweakEntry) {
	h := w.Header()
	h.Set("Content-Type", streamContentType)
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	flusher, _ := w.(http.Flusher)
	send := func(event string, data any) {
		b, err := json.Marshal(map[string]any{"event": event, "data": data})
		if err != nil { // only plain maps and strings are sent
			a.Log.ErrorContext(r.Context(), "encode run event", "err", err)
			return
		}
		_, _ = w.Write(append(b, '\n', '\n'))
		if flusher != nil {
			flusher.Flush()
		}
	}
	if run.hasInput {
		in := run.message()
		in.Sender, in.SenderName = "User", "User"
		send("add_message", in)
	}
	resp, rerr := a.executeRun(r, userID, run, tweaks)
	if rerr != nil {
		if rerr.cause != nil {
			a.Log.ErrorContext(r.Context(), "run failed", "method", r.Method, "path", r.URL.Path, "err", rerr.cause)
		}
		send("error", map[string]string{"error": rerr.msg})
		return
	}
	send("add_message", run.message())
	send("end", map[string]any{"result": resp})
}

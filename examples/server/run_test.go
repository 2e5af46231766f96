package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyflow-dev/keyflow/apikey"
	"github.com/keyflow-dev/keyflow/examples/server/internal/flows"
	"github.com/keyflow-dev/keyflow/variables"
)

// postJSON sends a JSON POST with an API key and returns the status and body.
func postJSON(t *testing.T, url, key, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest("POST", url, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set("x-api-key", key)
	}
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	return res.StatusCode, string(b)
}

// TestRunRequests: Langflow's simplified run request, the seed's form and
// tweaks in every form Langflow takes, answered in Langflow's RunResponse
// shape with keyflow's fields trace.
func TestRunRequests(t *testing.T) {
	t.Parallel()
	a, srv, _ := startApp(t, false)
	ctx := context.Background()
	key, _, err := a.Keys.Create(ctx, a.Superuser.ID, "run", apikey.CreateOptions{})
	require.NoError(t, err)
	f, err := a.Flows.Create(ctx, a.Superuser.ID, "My Agent", "", map[string]flows.Field{
		"api_key":     {Variable: "OPENAI_API_KEY"},
		"model":       {Value: "literal-model-value"},
		"temperature": {Value: "literal-temperature"},
		"empty":       {},
	})
	require.NoError(t, err)
	cid := flows.ComponentID(f)
	require.Regexp(t, `^MyAgent-[0-9a-f]{5}$`, cid)

	tests := []struct {
		name, body  string
		wantText    string
		wantSession string // "" → the flow's id
		wantInputs  map[string]string
		wantSources map[string]string // field → source
	}{
		{name: "empty body", body: "", wantInputs: map[string]string{},
			wantSources: map[string]string{"api_key": "none", "model": "flow", "temperature": "flow", "empty": "none"}},
		{name: "client form", body: `{"input_type":"chat","output_type":"chat","input_value":"hi","tweaks":{},"session_id":"s-1"}`,
			wantText: "hi", wantSession: "s-1", wantInputs: map[string]string{"input_value": "hi"}},
		{name: "seed form", body: `{"inputs": {"text":"from the seed"}, "tweaks": {}}`,
			wantText: "from the seed", wantInputs: map[string]string{"input_value": "from the seed"}},
		{name: "input_value wins over inputs", body: `{"input_value":"a","inputs":{"text":"b"}}`,
			wantText: "a", wantInputs: map[string]string{"input_value": "a"}},
		{name: "null tweaks and session", body: `{"input_value":"x","tweaks":null,"session_id":null,"input_type":null}`,
			wantText: "x", wantInputs: map[string]string{"input_value": "x"}},
		{name: "tweak by field name", body: `{"tweaks":{"api_key":"sk-tweaked-literal"}}`,
			wantSources: map[string]string{"api_key": "flow"}},
		{name: "tweak by component id", body: `{"tweaks":{"` + cid + `":{"api_key":"sk-tweaked-literal"}}}`,
			wantSources: map[string]string{"api_key": "flow"}},
		{name: "tweak by display name", body: `{"tweaks":{"My Agent":{"api_key":"sk-tweaked-literal"}}}`,
			wantSources: map[string]string{"api_key": "flow"}},
		{name: "tweak for another component is ignored", body: `{"tweaks":{"OpenAI-abcde":{"api_key":"sk-tweaked-literal"}}}`,
			wantSources: map[string]string{"api_key": "none"}},
		{name: "tweak for an unknown field is ignored", body: `{"tweaks":{"nope":"x","My Agent":{"nope2":"y"}}}`,
			wantSources: map[string]string{"api_key": "none", "model": "flow"}},
		{name: "number, boolean and null tweaks", body: `{"tweaks":{"temperature":0.5,"empty":true,"model":null}}`,
			wantSources: map[string]string{"temperature": "flow", "empty": "flow", "model": "none"}},
		{name: "a field tweak applies after a component tweak", body: `{"tweaks":{"model":null,"My Agent":{"model":"sk-tweaked-literal"}}}`,
			wantSources: map[string]string{"model": "none"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body := postJSON(t, srv.URL+"/api/v1/run/"+f.ID, key, tt.body)
			require.Equal(t, http.StatusOK, code, body)
			for _, secret := range []string{"literal-model-value", "literal-temperature", "sk-tweaked-literal", "0.5"} {
				assert.NotContains(t, body, secret, "a literal never appears in a response")
			}
			var rr runResult
			require.NoError(t, json.Unmarshal([]byte(body), &rr))
			wantSession := tt.wantSession
			if wantSession == "" {
				wantSession = f.ID
			}
			assert.Equal(t, wantSession, rr.SessionID)
			require.Len(t, rr.Outputs, 1)
			assert.Equal(t, orEmpty(tt.wantInputs), orEmpty(rr.Outputs[0].Inputs))
			assert.Equal(t, tt.wantText, rr.text())
			assert.Equal(t, "text", rr.Outputs[0].Outputs[0].Outputs.Message.Type)
			for field, src := range tt.wantSources {
				assert.Equal(t, src, rr.Fields[field].Source, field)
			}

			// The whole shape, as Langflow's RunResponse has it.
			var raw map[string]any
			require.NoError(t, json.Unmarshal([]byte(body), &raw))
			out := raw["outputs"].([]any)[0].(map[string]any)["outputs"].([]any)[0].(map[string]any)
			for _, k := range []string{"results", "outputs", "artifacts", "logs", "messages", "component_display_name",
				"component_id", "used_frozen_result", "timedelta", "duration"} {
				assert.Contains(t, out, k)
			}
			assert.Equal(t, "My Agent", out["component_display_name"])
			assert.Equal(t, cid, out["component_id"])
			assert.Equal(t, tt.wantText, out["results"].(map[string]any)["message"].(map[string]any)["text"])
		})
	}
}

func orEmpty(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

// TestRunBadRequests: malformed requests get 4xx with a message, never 500.
func TestRunBadRequests(t *testing.T) {
	t.Parallel()
	a, srv, echo := startApp(t, false)
	key, _, err := a.Keys.Create(context.Background(), a.Superuser.ID, "run", apikey.CreateOptions{})
	require.NoError(t, err)
	tests := []struct {
		name, query, body string
		want              int
	}{
		{"tweaks a list", "", `{"tweaks":[1]}`, 422},
		{"tweaks a string", "", `{"tweaks":"x"}`, 422},
		{"tweak value a list", "", `{"tweaks":{"api_key":[1]}}`, 422},
		{"nested object in a component tweak", "", `{"tweaks":{"Echo":{"api_key":{"a":1}}}}`, 422},
		{"input_value a number", "", `{"input_value":1}`, 422},
		{"unknown input_type", "", `{"input_type":"video"}`, 422},
		{"unknown output_type", "", `{"output_type":"video"}`, 422},
		{"unknown output component", "", `{"output_component":"ChatOutput-xyz"}`, 404},
		{"malformed JSON", "", `{"input_value":`, 422},
		{"bad stream flag", "?stream=maybe", `{}`, 422},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body := postJSON(t, srv.URL+"/api/v1/run/"+echo.ID+tt.query, key, tt.body)
			assert.Equal(t, tt.want, code, body)
			assert.Contains(t, body, `"detail"`)
		})
	}
}

// TestRunStream: ?stream=true answers Langflow's event stream, ending with
// the end event that carries the RunResponse.
func TestRunStream(t *testing.T) {
	t.Parallel()
	a, srv, echo := startApp(t, false)
	key, _, err := a.Keys.Create(context.Background(), a.Superuser.ID, "run", apikey.CreateOptions{})
	require.NoError(t, err)
	req, err := http.NewRequest("POST", srv.URL+"/api/v1/run/"+echo.ID+"?stream=true",
		strings.NewReader(`{"input_value":"streamed","session_id":"s-9"}`))
	require.NoError(t, err)
	req.Header.Set("x-api-key", key)
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	require.Equal(t, http.StatusOK, res.StatusCode)
	assert.Equal(t, "text/event-stream", res.Header.Get("Content-Type"))

	var events []map[string]json.RawMessage
	sc := bufio.NewScanner(res.Body)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		var ev map[string]json.RawMessage
		require.NoError(t, json.Unmarshal([]byte(line), &ev), "every non-blank line is one JSON event: %q", line)
		events = append(events, ev)
	}
	require.NoError(t, sc.Err())
	require.NotEmpty(t, events)
	names := []string{}
	for _, ev := range events {
		var name string
		require.NoError(t, json.Unmarshal(ev["event"], &name))
		names = append(names, name)
	}
	assert.Equal(t, []string{"add_message", "add_message", "end"}, names)
	var end struct {
		Result runResult `json:"result"`
	}
	require.NoError(t, json.Unmarshal(events[len(events)-1]["data"], &end))
	assert.Equal(t, "streamed", end.Result.text())
	assert.Equal(t, "s-9", end.Result.SessionID)
	assert.Equal(t, "none", end.Result.Fields["api_key"].Source)
}

// TestRunByEndpointName: Langflow's endpoint names: its character set,
// unique per user, /run/{x} by id then by the caller's endpoint name, 404
// with Langflow's message otherwise.
func TestRunByEndpointName(t *testing.T) {
	t.Parallel()
	a, srv, echo := startApp(t, false)
	ctx := context.Background()
	suKey, _, err := a.Keys.Create(ctx, a.Superuser.ID, "su", apikey.CreateOptions{})
	require.NoError(t, err)
	bob, err := a.Users.Ensure(ctx, "bob", false)
	require.NoError(t, err)
	bobKey, _, err := a.Keys.Create(ctx, bob.ID, "bob", apikey.CreateOptions{})
	require.NoError(t, err)
	assert.Equal(t, "echo", echo.EndpointName, "the demo flow has an endpoint name")

	create := func(key, body string) (int, string) {
		return postJSON(t, srv.URL+"/api/v1/flows/", key, body)
	}
	code, body := create(suKey, `{"name":"Named","endpoint_name":"my-flow_1","fields":{"k":{}}}`)
	require.Equal(t, 201, code, body)
	named := decode[flows.FlowRead](t, body)
	require.NotNil(t, named.EndpointName)
	assert.Equal(t, "my-flow_1", *named.EndpointName)

	code, body = create(suKey, `{"name":"Again","endpoint_name":"my-flow_1"}`)
	assert.Equal(t, 400, code)
	assert.JSONEq(t, `{"detail":"Endpoint name must be unique"}`, body)
	code, body = create(suKey, `{"name":"Bad","endpoint_name":"my flow"}`)
	assert.Equal(t, 422, code)
	assert.JSONEq(t, `{"detail":"Endpoint name must contain only letters, numbers, hyphens, and underscores"}`, body)
	code, body = create(bobKey, `{"name":"Bob's","endpoint_name":"my-flow_1"}`)
	require.Equal(t, 201, code, "unique per user only: %s", body)
	bobs := decode[flows.FlowRead](t, body)

	run := func(key, x string) (int, string) {
		return postJSON(t, srv.URL+"/api/v1/run/"+x, key, `{"input_value":"n"}`)
	}
	code, body = run(suKey, "my-flow_1")
	require.Equal(t, 200, code, body)
	assert.Equal(t, named.ID, decode[runResult](t, body).SessionID, "the caller's flow of that name")
	code, body = run(bobKey, "my-flow_1")
	require.Equal(t, 200, code, body)
	assert.Equal(t, bobs.ID, decode[runResult](t, body).SessionID)
	code, _ = run(suKey, "echo")
	assert.Equal(t, 200, code)

	code, body = run(bobKey, "echo")
	assert.Equal(t, 404, code, "another user's endpoint name is not found")
	assert.JSONEq(t, `{"detail":"Flow identifier echo not found"}`, body)
	code, body = run(suKey, "not-a-uuid")
	assert.Equal(t, 404, code)
	assert.JSONEq(t, `{"detail":"Flow identifier not-a-uuid not found"}`, body)
	code, body = run(suKey, "00000000-0000-4000-8000-000000000000")
	assert.Equal(t, 404, code)
	assert.JSONEq(t, `{"detail":"Flow identifier 00000000-0000-4000-8000-000000000000 not found"}`, body)
	code, body = run(suKey, "a%20b")
	assert.Equal(t, 404, code)
	assert.JSONEq(t, `{"detail":"Flow identifier not found"}`, body, "an identifier that cannot be a name is not echoed")
	code, body = run(bobKey, echo.ID)
	assert.Equal(t, 403, code, "another user's flow by id")
	assert.JSONEq(t, `{"detail":"You do not have permission to run this flow"}`, body)
	code, _ = run("", "echo")
	assert.Equal(t, 403, code, "no key: refused before any lookup")
}

// TestRunErrors: a run whose fields cannot resolve answers 400 with the
// resolver's message, and in a stream an error event instead of end.
func TestRunErrors(t *testing.T) {
	t.Parallel()
	a, srv, _ := startApp(t, false)
	ctx := context.Background()
	key, _, err := a.Keys.Create(ctx, a.Superuser.ID, "run", apikey.CreateOptions{})
	require.NoError(t, err)
	_, err = a.Vars.Create(ctx, a.Superuser.ID, variables.CreateInput{Name: "SECRET_SESSION", Value: "credential-value", Type: variables.Credential})
	require.NoError(t, err)
	f, err := a.Flows.Create(ctx, a.Superuser.ID, "Bad", "bad", map[string]flows.Field{"session_id": {Variable: "SECRET_SESSION"}})
	require.NoError(t, err)

	code, body := postJSON(t, srv.URL+"/api/v1/run/"+f.ID, key, `{"input_value":"x"}`)
	assert.Equal(t, http.StatusBadRequest, code, body)
	assert.NotContains(t, body, "credential-value")

	code, body = postJSON(t, srv.URL+"/api/v1/run/bad?stream=true", key, `{"input_value":"x"}`)
	require.Equal(t, http.StatusOK, code, "a stream has begun before the run fails")
	assert.NotContains(t, body, "credential-value")
	events := strings.Split(strings.TrimSpace(body), "\n\n")
	var last struct {
		Event string            `json:"event"`
		Data  map[string]string `json:"data"`
	}
	require.NoError(t, json.Unmarshal([]byte(events[len(events)-1]), &last))
	assert.Equal(t, "error", last.Event)
	assert.NotEmpty(t, last.Data["error"])
}

package flows

import (
	"bytes"
	"encoding/json"
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyflow-dev/keyflow/variables"
)

// marshalRun is what httpjson.Write sent for a run response before the
// response was written by hand: encoding/json, with "fields" a map of
// pointers.
func marshalRun(t testing.TB, resp runResponse) []byte {
	fields := make(map[string]*fieldResult, len(resp.Fields))
	for i := range resp.Fields {
		fields[resp.Fields[i].name] = &resp.Fields[i].fieldResult
	}
	var buf bytes.Buffer
	require.NoError(t, json.NewEncoder(&buf).Encode(struct {
		SessionID string                  `json:"session_id"`
		Outputs   [1]runOutputs           `json:"outputs"`
		Fields    map[string]*fieldResult `json:"fields"`
	}{resp.SessionID, resp.Outputs, fields}))
	return buf.Bytes()
}

func handRun(resp runResponse) []byte {
	return append(resp.appendJSON(nil), '\n')
}

func testRun(input, session, name string, hasInput bool, started time.Time) flowRun {
	f := Flow{ID: "0b9c3f5e-8d2a-4c1b-9e7f-123456789abc", Name: name}
	return flowRun{flow: newRunnable(f), sessionID: session, input: input, hasInput: hasInput, started: started}
}

func TestRunResponseBytesAreEncodingJSONs(t *testing.T) {
	t.Parallel()
	strs := []string{"", "Hello, floor", `quo"te \back\slash`, "<script>&amp;</script>", "tab\tnl\ncr\rbs\bff\f\x00\x1f\x7f",
		"é 日本 🙂", "\u2028\u2029", "bad \xff\xfe utf8 \xc3", "sk-not-a-key"}
	fieldSets := []fieldSources{
		nil,
		{},
		{{"api_key", fieldResult{"OPENAI_API_KEY", variables.LayerStored}}, {"base_url", fieldResult{"BASE_URL", variables.LayerEnvironment}}, {"model", fieldResult{"", variables.LayerFlow}}},
		{{"<&>", fieldResult{"\u2028", variables.LayerNone}}, {"\xff", fieldResult{`"`, variables.LayerRequest}}},
	}
	started := time.Date(2026, 12, 7, 8, 30, 0, 0, time.UTC)
	for _, s := range strs {
		for _, hasInput := range []bool{false, true} {
			for _, fs := range fieldSets {
				resp := testRun(s, s, s, hasInput, started).response(fs)
				assert.Equal(t, string(marshalRun(t, resp)), string(handRun(resp)), "input %q", s)
				stream, err := json.Marshal(resp) // the end event's encoding
				require.NoError(t, err)
				assert.Equal(t, string(bytes.TrimSuffix(marshalRun(t, resp), []byte("\n"))), string(stream))
			}
		}
	}
	resp := testRun("x", "s", "Flow", true, started).response(nil)
	resp.Outputs[0].Outputs[0].Messages[0].StreamURL = &strs[3]
	resp.Outputs[0].Outputs[0].UsedFrozenResult = true
	resp.Outputs[0].Outputs[0].Results.Message.Edit = true
	for _, d := range []float64{0, 1e-7, 1.5e-6, 0.000123, 0.5, 1, 12.345678901234, 1e20, 1e21, 3e-300, math.SmallestNonzeroFloat64, -2.5e-8} {
		resp.Outputs[0].Outputs[0].Timedelta = d
		assert.Equal(t, string(marshalRun(t, resp)), string(handRun(resp)), "timedelta %v", d)
	}
}

func FuzzRunResponseBytes(f *testing.F) {
	f.Add("Hello, floor", "session", "field", int64(1500))
	f.Add("<\u2028\xff\"\\", "", "", int64(0))
	f.Fuzz(func(t *testing.T, input, session, name string, nanos int64) {
		run := testRun(input, session, "Flow "+name, true, time.Unix(0, nanos))
		resp := run.response(fieldSources{{name, fieldResult{input, variables.Layer(session)}}})
		resp.Outputs[0].Outputs[0].Timedelta = float64(nanos) / 1e9
		if got, want := handRun(resp), marshalRun(t, resp); !bytes.Equal(got, want) {
			t.Fatalf("hand-written %q\nencoding/json %q", got, want)
		}
	})
}

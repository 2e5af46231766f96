package flows

import (
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"
)

// The RunResponse is written by hand rather than by encoding/json's
// reflection: its shape is fixed, and a run is the server's hottest route.
// The bytes are encoding/json's exactly (runjson_test.go compares the two,
// and fuzzes the strings): fields in declaration order, map keys sorted,
// strings escaped as json.Marshal escapes them (HTML characters, U+2028,
// U+2029, invalid UTF-8 as \ufffd), floats as its float64 encoder writes
// them, and a newline at the end, as json.Encoder writes.

// fieldSource is one entry of the response's "fields" object.
type fieldSource struct {
	name string
	fieldResult
}

// fieldSources is the "fields" object, sorted by name with no name twice.
type fieldSources []fieldSource

// MarshalJSON writes the object as encoding/json writes a
// map[string]*fieldResult (the stream's end event encodes the response by
// reflection).
func (s fieldSources) MarshalJSON() ([]byte, error) {
	return s.appendJSON(nil), nil
}

func (s fieldSources) appendJSON(b []byte) []byte {
	b = append(b, '{')
	for i, f := range s {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, f.name)
		b = append(b, `:{"variable":`...)
		b = appendJSONString(b, f.Variable)
		b = append(b, `,"source":`...)
		b = appendJSONString(b, string(f.Source))
		b = append(b, '}')
	}
	return append(b, '}')
}

// runBufs holds the buffers responses are written into.
var runBufs = sync.Pool{New: func() any { b := make([]byte, 0, 2048); return &b }}

// maxPooledBuf is the largest buffer put back in runBufs: a response with
// a huge input must not keep its memory alive.
const maxPooledBuf = 64 << 10

// writeRunResponse answers 200 with resp, as httpjson.Write would.
func writeRunResponse(w http.ResponseWriter, resp *runResponse) {
	bp := runBufs.Get().(*[]byte)
	b := resp.appendJSON((*bp)[:0])
	b = append(b, '\n')
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
	if cap(b) <= maxPooledBuf {
		*bp = b[:0]
		runBufs.Put(bp)
	}
}

func (r *runResponse) appendJSON(b []byte) []byte {
	b = append(b, `{"session_id":`...)
	b = appendJSONString(b, r.SessionID)
	b = append(b, `,"outputs":[`...)
	for i := range r.Outputs {
		if i > 0 {
			b = append(b, ',')
		}
		b = r.Outputs[i].appendJSON(b)
	}
	b = append(b, `],"fields":`...)
	b = r.Fields.appendJSON(b)
	return append(b, '}')
}

func (o *runOutputs) appendJSON(b []byte) []byte {
	b = append(b, `{"inputs":{`...)
	if o.Inputs.InputValue != nil {
		b = append(b, `"input_value":`...)
		b = appendJSONString(b, *o.Inputs.InputValue)
	}
	b = append(b, `},"outputs":[`...)
	for i := range o.Outputs {
		if i > 0 {
			b = append(b, ',')
		}
		b = o.Outputs[i].appendJSON(b)
	}
	return append(b, "]}"...)
}

func (d *resultData) appendJSON(b []byte) []byte {
	b = append(b, `{"results":{"message":`...)
	b = d.Results.Message.appendJSON(b)
	a := &d.Artifacts
	b = append(b, `},"artifacts":{"files":[],"message":`...)
	b = appendJSONString(b, a.Message)
	b = append(b, `,"sender":`...)
	b = appendJSONString(b, a.Sender)
	b = append(b, `,"sender_name":`...)
	b = appendJSONString(b, a.SenderName)
	b = append(b, `,"type":`...)
	b = appendJSONString(b, a.Type)
	b = append(b, `},"outputs":{"message":{"message":`...)
	b = appendJSONString(b, d.Outputs.Message.Message)
	b = append(b, `,"type":`...)
	b = appendJSONString(b, d.Outputs.Message.Type)
	b = append(b, `}},"logs":{"message":[]},"messages":[`...)
	for i := range d.Messages {
		if i > 0 {
			b = append(b, ',')
		}
		b = d.Messages[i].appendJSON(b)
	}
	b = append(b, `],"timedelta":`...)
	b = appendJSONFloat(b, d.Timedelta)
	b = append(b, `,"duration":`...)
	b = appendJSONString(b, d.Duration)
	b = append(b, `,"component_display_name":`...)
	b = appendJSONString(b, d.ComponentDisplayName)
	b = append(b, `,"component_id":`...)
	b = appendJSONString(b, d.ComponentID)
	b = append(b, `,"used_frozen_result":`...)
	b = strconv.AppendBool(b, d.UsedFrozenResult)
	return append(b, '}')
}

func (m *chatMessage) appendJSON(b []byte) []byte {
	b = append(b, `{"component_id":`...)
	b = appendJSONString(b, m.ComponentID)
	b = append(b, `,"files":[],"message":`...)
	b = appendJSONString(b, m.Message)
	b = append(b, `,"sender":`...)
	b = appendJSONString(b, m.Sender)
	b = append(b, `,"sender_name":`...)
	b = appendJSONString(b, m.SenderName)
	b = append(b, `,"session_id":`...)
	b = appendJSONString(b, m.SessionID)
	b = append(b, `,"stream_url":`...)
	if m.StreamURL == nil {
		b = append(b, "null"...)
	} else {
		b = appendJSONString(b, *m.StreamURL)
	}
	b = append(b, `,"type":`...)
	b = appendJSONString(b, m.Type)
	return append(b, '}')
}

func (m *message) appendJSON(b []byte) []byte {
	b = append(b, `{"category":`...)
	b = appendJSONString(b, m.Category)
	b = append(b, `,"data":{"text":`...)
	b = appendJSONString(b, m.Data.Text)
	b = append(b, `},"edit":`...)
	b = strconv.AppendBool(b, m.Edit)
	b = append(b, `,"error":`...)
	b = strconv.AppendBool(b, m.Error)
	b = append(b, `,"files":[],"flow_id":`...)
	b = appendJSONString(b, m.FlowID)
	b = append(b, `,"sender":`...)
	b = appendJSONString(b, m.Sender)
	b = append(b, `,"sender_name":`...)
	b = appendJSONString(b, m.SenderName)
	b = append(b, `,"session_id":`...)
	b = appendJSONString(b, m.SessionID)
	b = append(b, `,"text":`...)
	b = appendJSONString(b, m.Text)
	b = append(b, `,"text_key":`...)
	b = appendJSONString(b, m.TextKey)
	b = append(b, `,"timestamp":`...)
	b = appendJSONString(b, m.Timestamp)
	return append(b, '}')
}

// appendJSONFloat writes f as encoding/json writes a float64 (f is finite:
// a duration in seconds).
func appendJSONFloat(b []byte, f float64) []byte {
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' { // e-09 is written e-9
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b
}

const hexDigits = "0123456789abcdef"

// appendJSONString writes s quoted as json.Marshal does (HTML-escaped).
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '\\', '"':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default: // other control characters, <, > and &
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

func compareFieldSources(a, b fieldSource) int { return strings.Compare(a.name, b.name) }

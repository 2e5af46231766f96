package flows

import "unicode/utf8"

// decodeSimpleRunRequest decodes the run requests clients send most, an
// object of string members without escapes (e.g. {"input_value": "hi"}),
// without encoding/json's reflection. It reports false, leaving in
// untouched, for anything else (another key, another type of value, an
// escape, a key differing from a field's tag in case, a syntax error):
// such a body goes through httpjson, which decodes it, or refuses it, with
// its own messages. For the bodies it accepts the result is encoding/json's.
func decodeSimpleRunRequest(data []byte, in *runRequest) bool {
	if !utf8.Valid(data) {
		return false
	}
	var out runRequest
	i := skipJSONSpace(data, 0)
	if i >= len(data) || data[i] != '{' {
		return false
	}
	i = skipJSONSpace(data, i+1)
	if i < len(data) && data[i] == '}' {
		*in = out
		return skipJSONSpace(data, i+1) == len(data)
	}
	for {
		key, next, ok := plainJSONString(data, i)
		if !ok {
			return false
		}
		i = skipJSONSpace(data, next)
		if i >= len(data) || data[i] != ':' {
			return false
		}
		i = skipJSONSpace(data, i+1)
		value, next, ok := plainJSONString(data, i)
		if !ok {
			return false
		}
		if !out.set(string(key), string(value)) {
			return false
		}
		i = skipJSONSpace(data, next)
		if i >= len(data) {
			return false
		}
		switch data[i] {
		case ',':
			i = skipJSONSpace(data, i+1)
			continue
		case '}':
			if skipJSONSpace(data, i+1) != len(data) {
				return false
			}
			*in = out
			return true
		}
		return false
	}
}

// set sets the string field whose JSON name is key to value; it reports
// false for any other key.
func (in *runRequest) set(key, value string) bool {
	switch key {
	case "input_value":
		in.InputValue = &value
	case "input_type":
		in.InputType = &value
	case "output_type":
		in.OutputType = &value
	case "output_component":
		in.OutputComponent = &value
	case "session_id":
		in.SessionID = &value
	default:
		return false
	}
	return true
}

// plainJSONString reads the JSON string at data[i:] when it holds no escape
// and no control character: its contents, and the index after it.
func plainJSONString(data []byte, i int) ([]byte, int, bool) {
	if i >= len(data) || data[i] != '"' {
		return nil, 0, false
	}
	for j := i + 1; j < len(data); j++ {
		switch c := data[j]; {
		case c == '"':
			return data[i+1 : j], j + 1, true
		case c == '\\' || c < 0x20:
			return nil, 0, false
		}
	}
	return nil, 0, false
}

// skipJSONSpace returns the index of the first byte at or after i that is
// not JSON white space.
func skipJSONSpace(data []byte, i int) int {
	for i < len(data) {
		switch data[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

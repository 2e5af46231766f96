// Package httpjson answers and reads JSON the way keyflow's HTTP handlers
// (apikeyhttp, variableshttp) and middleware do, so that a server's own
// handlers mounted beside them answer alike: FastAPI-shaped {"detail": ...}
// errors, as Langflow's clients expect, and bounded, strict body decoding
// (at most MaxBody bytes, valid UTF-8, one JSON value, 413 or 422 with a
// message that never repeats the body).
//
//	var in struct{ Name string `json:"name"` }
//	if !httpjson.Decode(w, r, &in) {
//		return // Decode has answered
//	}
//	httpjson.Write(w, http.StatusCreated, result)
package httpjson

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"unicode/utf8"
)

// MaxBody is the largest request body the handlers read (1 MiB).
const MaxBody = 1 << 20

// Write sends v as JSON with the given status code.
func Write(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// Detail sends {"detail": msg} with the given status code, as FastAPI does.
func Detail(w http.ResponseWriter, status int, msg string) {
	Write(w, status, struct {
		Detail string `json:"detail"`
	}{msg})
}

// Decode reads one JSON value of at most MaxBody bytes from r's body into v.
// On failure it has already answered: 413 for a body over the limit, 422 for
// malformed JSON, invalid UTF-8 (which encoding/json would silently replace
// with U+FFFD, storing something other than what the client sent) or a wrong
// field type (the message names the position or field, never the body's
// content), and it reports false.
func Decode(w http.ResponseWriter, r *http.Request, v any) bool {
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBody))
	return decode(w, data, err, v)
}

// DecodeBytes is Decode for a body already read (at most MaxBody bytes, by
// the caller): it decodes data into v with Decode's checks, answers 422 on
// failure as Decode does, and reports whether it succeeded.
func DecodeBytes(w http.ResponseWriter, data []byte, v any) bool {
	return decode(w, data, nil, v)
}

func decode(w http.ResponseWriter, data []byte, err error, v any) bool {
	if err == nil && !utf8.Valid(data) {
		Detail(w, http.StatusUnprocessableEntity, "Malformed JSON body: not valid UTF-8")
		return false
	}
	if err == nil && hasLoneSurrogate(data) {
		Detail(w, http.StatusUnprocessableEntity, "Malformed JSON body: a \\u escape is an unpaired UTF-16 surrogate")
		return false
	}
	var dec *json.Decoder
	if err == nil {
		dec = json.NewDecoder(bytes.NewReader(data))
		err = dec.Decode(v)
	}
	if err == nil {
		// Only white space may follow the value. (dec.More would let a
		// stray "]" or "}" through.)
		if _, next := dec.Token(); next != io.EOF {
			err = errors.New("unexpected data after the JSON value")
		}
	}
	if err == nil {
		return true
	}
	var tooBig *http.MaxBytesError
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &tooBig):
		Detail(w, http.StatusRequestEntityTooLarge, "Request body too large")
	case errors.As(err, &syntax):
		Detail(w, http.StatusUnprocessableEntity, "Malformed JSON body: "+syntax.Error())
	case errors.As(err, &typ):
		field := typ.Field
		if field == "" {
			field = "body"
		}
		Detail(w, http.StatusUnprocessableEntity, "Invalid type for field '"+field+"': expected "+typ.Type.String())
	case strings.Contains(err.Error(), "EOF"):
		Detail(w, http.StatusUnprocessableEntity, "Malformed JSON body: unexpected end of input")
	default:
		Detail(w, http.StatusUnprocessableEntity, "Malformed JSON body: "+err.Error())
	}
	return false
}

// hasLoneSurrogate reports whether data holds a \u escape of a UTF-16
// surrogate that is not part of a high-low pair (e.g. "\ud800" alone), which
// encoding/json would silently decode to U+FFFD. Only string contents can hold
// escapes in valid JSON; an escaped backslash ("\\") is skipped whole, so
// "\\ud800" (a backslash, then the text ud800) is not an escape.
func hasLoneSurrogate(data []byte) bool {
	for i := 0; i < len(data); i++ {
		if data[i] != '\\' || i+1 >= len(data) {
			continue
		}
		if data[i+1] != 'u' {
			i++ // skip the escaped character
			continue
		}
		r, ok := hex4(data, i+2)
		if !ok {
			i++
			continue
		}
		switch {
		case r >= 0xdc00 && r <= 0xdfff: // a low surrogate not after a high one
			return true
		case r >= 0xd800 && r <= 0xdbff:
			lo, ok := -1, false
			if i+11 < len(data) && data[i+6] == '\\' && data[i+7] == 'u' {
				lo, ok = hex4(data, i+8)
			}
			if !ok || lo < 0xdc00 || lo > 0xdfff {
				return true
			}
			i += 11 // the pair
		default:
			i += 5
		}
	}
	return false
}

// hex4 decodes the four hex digits at data[at:].
func hex4(data []byte, at int) (int, bool) {
	if at+4 > len(data) {
		return 0, false
	}
	v := 0
	for _, c := range data[at : at+4] {
		switch {
		case '0' <= c && c <= '9':
			v = v<<4 | int(c-'0')
		case 'a' <= c && c <= 'f':
			v = v<<4 | int(c-'a'+10)
		case 'A' <= c && c <= 'F':
			v = v<<4 | int(c-'A'+10)
		default:
			return 0, false
		}
	}
	return v, true
}

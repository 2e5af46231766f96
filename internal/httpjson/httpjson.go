// Package httpjson holds the small JSON helpers shared by keyflow's HTTP
// handlers and middleware: FastAPI-shaped {"detail": ...} errors and bounded
// body decoding.
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
	if err == nil && !utf8.Valid(data) {
		Detail(w, http.StatusUnprocessableEntity, "Malformed JSON body: not valid UTF-8")
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

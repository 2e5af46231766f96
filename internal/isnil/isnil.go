// Package isnil tells whether an interface value is nil or holds a nil
// pointer (a "typed nil"), so that constructors can refuse both: a typed nil
// such as (*apikey.Manager)(nil) passes a plain v == nil check and then fails
// on every call.
package isnil

import "reflect"

// Value reports whether v is nil or holds a nil pointer, map, slice,
// function, channel or interface.
func Value(v any) bool {
	if v == nil {
		return true
	}
	switch rv := reflect.ValueOf(v); rv.Kind() {
	case reflect.Pointer, reflect.Map, reflect.Slice, reflect.Func, reflect.Chan, reflect.Interface:
		return rv.IsNil()
	}
	return false
}

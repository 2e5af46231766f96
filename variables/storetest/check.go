package storetest

import (
	"errors"
	"fmt"
	"reflect"
	"testing"
)

// The suite's assertions: a few lines each, so that the package needs the
// standard library only. Those named must… end the subtest on failure; the
// others report it and let the subtest go on. msgAndArgs is an optional
// format string and its arguments.

func message(msgAndArgs []any) string {
	if len(msgAndArgs) == 0 {
		return ""
	}
	if format, ok := msgAndArgs[0].(string); ok {
		return ": " + fmt.Sprintf(format, msgAndArgs[1:]...)
	}
	return ": " + fmt.Sprint(msgAndArgs...)
}

func mustNoError(t *testing.T, err error, msgAndArgs ...any) {
	t.Helper()
	if err != nil {
		t.Fatalf("unexpected error %v%s", err, message(msgAndArgs))
	}
}

func noError(t *testing.T, err error, msgAndArgs ...any) {
	t.Helper()
	if err != nil {
		t.Errorf("unexpected error %v%s", err, message(msgAndArgs))
	}
}

func errorIs(t *testing.T, err, target error, msgAndArgs ...any) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Errorf("error %v, want one matching %v%s", err, target, message(msgAndArgs))
	}
}

func equal(t *testing.T, want, got any, msgAndArgs ...any) {
	t.Helper()
	if !reflect.DeepEqual(want, got) {
		t.Errorf("got %#v, want %#v%s", got, want, message(msgAndArgs))
	}
}

func isTrue(t *testing.T, ok bool, msgAndArgs ...any) {
	t.Helper()
	if !ok {
		t.Errorf("condition false%s", message(msgAndArgs))
	}
}

func isFalse(t *testing.T, ok bool, msgAndArgs ...any) {
	t.Helper()
	if ok {
		t.Errorf("condition true%s", message(msgAndArgs))
	}
}

// empty reports unless v is nil or has length 0.
func empty(t *testing.T, v any, msgAndArgs ...any) {
	t.Helper()
	if v != nil && reflect.ValueOf(v).Len() != 0 {
		t.Errorf("got %#v, want it empty%s", v, message(msgAndArgs))
	}
}

// notNil reports if v, a slice, is nil.
func notNil(t *testing.T, v any, msgAndArgs ...any) {
	t.Helper()
	if v == nil || reflect.ValueOf(v).IsNil() {
		t.Errorf("got nil%s", message(msgAndArgs))
	}
}

func hasLen(t *testing.T, v any, n int, msgAndArgs ...any) bool {
	t.Helper()
	if l := reflect.ValueOf(v).Len(); l != n {
		t.Errorf("length %d, want %d%s", l, n, message(msgAndArgs))
		return false
	}
	return true
}

func mustLen(t *testing.T, v any, n int, msgAndArgs ...any) {
	t.Helper()
	if !hasLen(t, v, n, msgAndArgs...) {
		t.FailNow()
	}
}

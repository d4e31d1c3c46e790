// Package isnil tells a nil interface value, or one holding a nil
// pointer, map, slice, func or channel, from a usable one: the check the
// public API's misuse messages start with.
package isnil

import "reflect"

// IsNil reports whether v is nil or holds a nil pointer, map, slice,
// func, channel or interface: a typed nil *T is as unusable as a nil
// interface.
func IsNil(v any) bool {
	if v == nil {
		return true
	}
	switch rv := reflect.ValueOf(v); rv.Kind() {
	case reflect.Pointer, reflect.Map, reflect.Slice, reflect.Func, reflect.Chan, reflect.Interface:
		return rv.IsNil()
	}
	return false
}

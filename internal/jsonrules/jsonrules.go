// Package jsonrules holds the rules of encoding/json that Sluice's own
// encoders (kubepod's YAML renderer, pipeline's input encoder) follow, so
// that what they write is what encoding/json would.
package jsonrules

import "reflect"

// Empty reports whether v is empty as encoding/json's omitempty means it:
// a zero-length array, map, slice or string, false, zero, or a nil
// interface or pointer.
func Empty(v reflect.Value) bool {
	switch v.Kind() {
	case reflect.Array, reflect.Map, reflect.Slice, reflect.String:
		return v.Len() == 0
	case reflect.Bool,
		reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr,
		reflect.Float32, reflect.Float64,
		reflect.Interface, reflect.Pointer:
		return v.IsZero()
	}
	return false
}

package pipeline

import (
	"encoding/json"
	"reflect"
)

// textParam reports whether a parameter of type t, with default def and
// value val, is text (backends.Param.Text): its kind is string and its
// values encode as JSON strings (a custom MarshalJSON might not).
func textParam(t reflect.Type, def, val json.RawMessage) bool {
	var s string
	return t.Kind() == reflect.String && json.Unmarshal(def, &s) == nil && json.Unmarshal(val, &s) == nil
}

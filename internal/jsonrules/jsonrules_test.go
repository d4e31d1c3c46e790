package jsonrules

import (
	"encoding/json"
	"reflect"
	"testing"
)

// Empty leaves out exactly what encoding/json's omitempty leaves out: each
// value is put in a struct field of its own type tagged omitempty.
func TestEmptyAsEncodingJSON(t *testing.T) {
	zero := 0
	for _, v := range []any{
		"", "x", 0, 1, 0.0, 1.5, false, true, uint8(0), uint(3),
		[]int{}, []int(nil), []int{1}, map[string]int{}, map[string]int{"a": 1},
		[0]int{}, [1]int{}, (*int)(nil), &zero, struct{ A int }{},
	} {
		typ := reflect.StructOf([]reflect.StructField{{Name: "V", Type: reflect.TypeOf(v), Tag: `json:"v,omitempty"`}})
		s := reflect.New(typ).Elem()
		s.Field(0).Set(reflect.ValueOf(v))
		b, err := json.Marshal(s.Interface())
		if err != nil {
			t.Fatal(err)
		}
		if got, omitted := Empty(s.Field(0)), string(b) == "{}"; got != omitted {
			t.Errorf("%#v: Empty = %v, encoding/json omits it: %v", v, got, omitted)
		}
	}
}

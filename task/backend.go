package task

import (
	"reflect"

	"github.com/sluice-ml/sluice/internal/placeholder"
)

// This file holds the helpers for backend authors: see "For backend
// authors" in the package documentation. Pipeline authors do not need them.

// FieldByName finds the exported field of struct type t (or pointer to
// struct) whose Go or JSON name is name, returning its JSON name and type;
// ok is false when there is none.
//
// For backend authors: values cross task boundaries as JSON objects keyed
// by JSON names, while a {{.Field}} placeholder, [Output].Field or a
// field reference may use the Go name. A backend that maps these onto its
// own parameters (as backends/argo does) resolves them with FieldByName
// against [Spec].InputType or [Spec].OutputType.
func FieldByName(t reflect.Type, name string) (jsonName string, typ reflect.Type, ok bool) {
	for _, f := range jsonFields(t) {
		if f.json == name || f.goName == name {
			return f.json, f.typ, true
		}
	}
	return "", nil, false
}

// Placeholders returns the field names referenced by {{.Field}} in s, in
// order of appearance.
//
// For backend authors: a backend that starts containers itself fills the
// placeholders of a container task's command, arguments and environment
// with backends.RenderCommand. A backend that compiles to a workflow
// engine's own parameter syntax instead (as backends/argo does) lists them
// with Placeholders and maps each name with [FieldByName]. The steps of a
// backends.Plan have passed [Spec.Validate], so their command, arguments
// and environment use no other template syntax and every name is a field
// of the input.
func Placeholders(s string) []string { return placeholder.Names(s) }

package pipeline

import (
	"encoding"
	"encoding/json"
	"fmt"
	"github.com/sluice-ml/sluice/task"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"github.com/sluice-ml/sluice/internal/field"
	"github.com/sluice-ml/sluice/internal/suggest"
)

// This file checks parameter overrides (-p name=value) against the
// parameter's Go type before encoding/json sees them, so that a wrong
// value is reported with the parameter, the type wanted and the value
// given, and never decoded loosely: null is not a zero value, keys of a
// struct must be its JSON names exactly, numbers must fit.

// checkParam parses s, the override of parameter name of type t, and
// returns its JSON value, or the problems found, at pp or below it
// (pipeline.params[cfg].epochs for a key of a struct parameter).
func checkParam(pp *field.Path, name string, t reflect.Type, s string) (json.RawMessage, []*field.Error) {
	given := "-p " + name + "=" + s
	if t.Kind() == reflect.String {
		v, err := parseParam(t, s)
		if err != nil {
			return nil, []*field.Error{field.Invalid(pp, s, "%s: want %s: %v", given, wantParam(t), err)}
		}
		return v, nil
	}
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil || dec.More() || !json.Valid([]byte(s)) {
		return nil, []*field.Error{field.Invalid(pp, s, "%s: want %s, got %q, which is not JSON%s", given, wantParam(t), s, syntaxHint(t, s))}
	}
	if v == nil && t.Kind() != reflect.Pointer && t.Kind() != reflect.Interface {
		return nil, []*field.Error{field.Invalid(pp, s, "%s: want %s, got null; null is no value of %v (leave the parameter out to use its default)", given, wantParam(t), t)}
	}
	if errs := checkParamValue(pp, given, v, t); len(errs) > 0 {
		return nil, errs
	}
	raw, err := parseParam(t, s)
	if err != nil {
		return nil, []*field.Error{field.Invalid(pp, s, "%s: want %s: %v", given, wantParam(t), err)}
	}
	return raw, nil
}

var (
	jsonUnmarshaler = reflect.TypeFor[json.Unmarshaler]()
	textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()
)

// checkParamValue checks the decoded JSON value v against t. Types that
// decode themselves are left to encoding/json.
func checkParamValue(p *field.Path, given string, v any, t reflect.Type) []*field.Error {
	if pt := reflect.PointerTo(t); pt.Implements(jsonUnmarshaler) || pt.Implements(textUnmarshaler) {
		return nil
	}
	bad := func() []*field.Error {
		return []*field.Error{field.Invalid(p, describeJSON(v), "%s: want %s, got %s", given, wantParam(t), describeJSON(v))}
	}
	if v == nil {
		switch t.Kind() {
		case reflect.Pointer, reflect.Interface, reflect.Slice, reflect.Map:
			return nil // a nil pointer, interface, slice or map
		}
		return bad()
	}
	switch t.Kind() {
	case reflect.Pointer:
		return checkParamValue(p, given, v, t.Elem())
	case reflect.Interface:
		return nil
	case reflect.Bool:
		if _, ok := v.(bool); !ok {
			return bad()
		}
	case reflect.String:
		if _, ok := v.(string); !ok {
			return bad()
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, ok := v.(json.Number)
		if !ok {
			return bad()
		}
		i, err := strconv.ParseInt(n.String(), 10, 64)
		if err != nil || reflect.Zero(t).OverflowInt(i) {
			return bad()
		}
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		n, ok := v.(json.Number)
		if !ok {
			return bad()
		}
		u, err := strconv.ParseUint(n.String(), 10, 64)
		if err != nil || reflect.Zero(t).OverflowUint(u) {
			return bad()
		}
	case reflect.Float32, reflect.Float64:
		n, ok := v.(json.Number)
		if !ok {
			return bad()
		}
		if f, err := strconv.ParseFloat(n.String(), t.Bits()); err != nil || math.IsInf(f, 0) {
			return bad()
		}
	case reflect.Slice, reflect.Array:
		if t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Uint8 {
			if _, ok := v.(string); !ok { // []byte is base64 text in JSON
				return bad()
			}
			return nil
		}
		list, ok := v.([]any)
		if !ok {
			return bad()
		}
		if t.Kind() == reflect.Array && len(list) > t.Len() {
			return []*field.Error{field.Invalid(p, describeJSON(v), "%s: want %s, got a list of %d", given, wantParam(t), len(list))}
		}
		var errs []*field.Error
		for i, e := range list {
			errs = append(errs, checkParamValue(p.Index(i), given, e, t.Elem())...)
		}
		return errs
	case reflect.Map:
		obj, ok := v.(map[string]any)
		if !ok {
			return bad()
		}
		var errs []*field.Error
		for _, k := range slices.Sorted(mapKeys(obj)) {
			errs = append(errs, checkParamValue(p.Key(k), given, obj[k], t.Elem())...)
		}
		return errs
	case reflect.Struct:
		obj, ok := v.(map[string]any)
		if !ok {
			return bad()
		}
		keys := task.JSONFields(t)
		names := make([]string, len(keys))
		for i, k := range keys {
			names[i] = k.Name
		}
		var errs []*field.Error
		for _, k := range slices.Sorted(mapKeys(obj)) {
			i := slices.IndexFunc(keys, func(f task.JSONField) bool { return f.Name == k })
			if i < 0 {
				errs = append(errs, field.NotFound(p.Child(k), k, "%s: %v has no key %q; its keys are %s%s", given, t, k, suggest.Quote(names), suggest.DidYouMean(k, names)))
				continue
			}
			errs = append(errs, checkParamValue(p.Child(k), given, obj[k], keys[i].Type)...)
		}
		return errs
	}
	return nil
}

func mapKeys(m map[string]any) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// wantParam says in words what a value of t looks like on the command line.
func wantParam(t reflect.Type) string {
	if pt := reflect.PointerTo(t); pt.Implements(jsonUnmarshaler) || pt.Implements(textUnmarshaler) {
		return fmt.Sprintf("a %v in its JSON form", t)
	}
	switch t.Kind() {
	case reflect.Pointer:
		return wantParam(t.Elem()) + " or null"
	case reflect.Interface:
		return "any JSON value"
	case reflect.Bool:
		return fmt.Sprintf("a %v: true or false", t)
	case reflect.String:
		return fmt.Sprintf("a %v (a JSON string)", t)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		if bits := t.Bits(); bits < 64 {
			return fmt.Sprintf("an integer (%v, from %d to %d)", t, int64(-1)<<(bits-1), int64(1)<<(bits-1)-1)
		}
		return fmt.Sprintf("an integer (%v)", t)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		if t.Bits() < 64 {
			return fmt.Sprintf("a non-negative integer (%v, at most %d)", t, ^uint64(0)>>(64-t.Bits()))
		}
		return fmt.Sprintf("a non-negative integer (%v)", t)
	case reflect.Float32, reflect.Float64:
		return fmt.Sprintf("a number (%v)", t)
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 {
			return fmt.Sprintf("base64 text in quotes (%v)", t)
		}
		return fmt.Sprintf("a JSON list (%v), such as [%s]", t, example(t.Elem()))
	case reflect.Array:
		return fmt.Sprintf("a JSON list of at most %d (%v)", t.Len(), t)
	case reflect.Map:
		return fmt.Sprintf("a JSON object (%v)", t)
	case reflect.Struct:
		var names []string
		for _, k := range task.JSONFields(t) {
			names = append(names, k.Name)
		}
		return fmt.Sprintf("a JSON object (%v) with the keys %s", t, suggest.Quote(names))
	}
	return t.String()
}

// example is a short sample value of t for messages.
func example(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return `"a", "b"`
	case reflect.Bool:
		return "true, false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "1, 2"
	case reflect.Float32, reflect.Float64:
		return "0.1, 0.2"
	}
	return "…"
}

// syntaxHint explains the commonest way text fails to be JSON: a word that
// was meant as a string.
func syntaxHint(t reflect.Type, s string) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Slice, reflect.Array, reflect.Map, reflect.Struct:
		if !strings.HasPrefix(strings.TrimSpace(s), "[") && !strings.HasPrefix(strings.TrimSpace(s), "{") {
			return "; quote the whole value for the shell, such as -p 'name=[\"a\", \"b\"]'"
		}
		return "; strings inside need double quotes"
	}
	return ""
}

// describeJSON renders a decoded JSON value for a message.
func describeJSON(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case bool:
		return strconv.FormatBool(x)
	case json.Number:
		return x.String()
	case string:
		return strconv.Quote(x)
	case []any:
		return fmt.Sprintf("a list of %d", len(x))
	case map[string]any:
		return "an object"
	}
	return fmt.Sprint(v)
}

// unknownParam is the detail of an override that names no parameter.
func unknownParam(name string, known []string) string {
	return fmt.Sprintf("the pipeline declares no such parameter; it has: %s%s", strings.Join(known, ", "), suggest.DidYouMean(name, known))
}

// fieldSuggestion is `; did you mean "x"?` for name, a misspelled field
// (Go or JSON name) of struct type t, or "".
func fieldSuggestion(t reflect.Type, name string) string {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil || t.Kind() != reflect.Struct {
		return ""
	}
	var cands []string
	for _, k := range task.JSONFields(t) {
		cands = append(cands, k.Name)
		if k.GoName != k.Name {
			cands = append(cands, k.GoName)
		}
	}
	return suggest.DidYouMean(name, cands)
}

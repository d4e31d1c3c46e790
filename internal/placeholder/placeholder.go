// Package placeholder finds, checks and fills the placeholders of
// container tasks' commands, arguments and environment values: {{.Field}}
// for a field of the input and {{outputs.Field}} for the file an output
// field is written to. It is the one definition of that syntax: package
// task validates with it and exposes [Names] and [Outputs] to backend
// authors as task.Placeholders and task.OutputPlaceholders; package
// backends fills placeholders with [Render] and [RenderOutputs] in
// backends.RenderCommand.
//
// The two forms cannot be confused: as in text/template, a leading dot
// means "a field of the data", which is the task's input, so every
// {{.Name}} names an input field, whatever the input's fields are called;
// {{outputs.Name}} has no leading dot, so it is never an input field,
// even of an input that has a field named "outputs".
package placeholder

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
)

// re matches {{.Field}} with optional inner spaces.
var re = regexp.MustCompile(`\{\{\s*\.([A-Za-z_][A-Za-z0-9_]*)\s*\}\}`)

// outRe matches {{outputs.Field}} with optional inner spaces.
var outRe = regexp.MustCompile(`\{\{\s*outputs\.([A-Za-z_][A-Za-z0-9_]*)\s*\}\}`)

// Names returns the field names referenced by {{.Field}} in s, in order of
// appearance; nil when there are none.
func Names(s string) []string { return names(re, s) }

// Outputs returns the output field names referenced by {{outputs.Field}}
// in s, in order of appearance; nil when there are none.
func Outputs(s string) []string { return names(outRe, s) }

func names(re *regexp.Regexp, s string) []string {
	var out []string
	for _, m := range re.FindAllStringSubmatch(s, -1) {
		out = append(out, m[1])
	}
	return out
}

// Check reports template syntax other than {{.Field}} and
// {{outputs.Field}} in s.
func Check(s string) error {
	rest := outRe.ReplaceAllString(re.ReplaceAllString(s, ""), "")
	if strings.Contains(rest, "{{") || strings.Contains(rest, "}}") {
		return fmt.Errorf("only {{.Field}} (an input field) and {{outputs.Field}} (an output's file) placeholders are allowed")
	}
	return nil
}

// anyRe matches either placeholder: group 1 is an input field, group 2
// an output field.
var anyRe = regexp.MustCompile(`\{\{\s*(?:\.([A-Za-z_][A-Za-z0-9_]*)|outputs\.([A-Za-z_][A-Za-z0-9_]*))\s*\}\}`)

// Render replaces each {{.Field}} in s by the field's value in input, a
// JSON object keyed by JSON field names. Fields may be named by their JSON
// name; goNames maps Go names to JSON names for the rest. A JSON string is
// inserted without quotes, any other value as compact JSON. A field that
// input lacks is an error; its placeholder is then left as it is.
// {{outputs.Field}} placeholders are left as they are.
func Render(s string, input map[string]json.RawMessage, goNames map[string]string) (string, error) {
	return RenderAll(s, input, goNames, nil)
}

// RenderOutputs replaces each {{outputs.Field}} in s by path(Field), the
// path the output's file is written to. A name path does not know (ok
// false) is an error; its placeholder is then left as it is. {{.Field}}
// placeholders are left as they are.
func RenderOutputs(s string, path func(name string) (p string, ok bool)) (string, error) {
	return RenderAll(s, nil, nil, path)
}

// RenderAll is [Render] and [RenderOutputs] in one pass over s, so that
// no inserted value is read again as a placeholder. A nil input leaves
// the {{.Field}} placeholders as they are, a nil path the
// {{outputs.Field}} ones.
func RenderAll(s string, input map[string]json.RawMessage, goNames map[string]string, path func(name string) (p string, ok bool)) (string, error) {
	var err error
	out := anyRe.ReplaceAllStringFunc(s, func(m string) string {
		sub := anyRe.FindStringSubmatch(m)
		if name := sub[2]; name != "" {
			if path == nil {
				return m
			}
			p, ok := path(name)
			if !ok {
				err = fmt.Errorf("task: no output %q", name)
				return m
			}
			return p
		}
		if input == nil {
			return m
		}
		name := sub[1]
		v, ok := input[name]
		if !ok {
			v, ok = input[goNames[name]]
		}
		if !ok {
			err = fmt.Errorf("task: input has no field %q", name)
			return m
		}
		var str string
		if json.Unmarshal(v, &str) == nil {
			return str
		}
		return string(v)
	})
	return out, err
}

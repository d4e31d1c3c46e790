// Package placeholder finds, checks and fills the {{.Field}} placeholders
// of container tasks' commands, arguments and environment values. It is
// the one definition of that syntax: package task validates with it and
// exposes [Names] to backend authors as task.Placeholders; package
// backends fills placeholders with [Render] in backends.RenderCommand.
package placeholder

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
)

// re matches {{.Field}} with optional inner spaces.
var re = regexp.MustCompile(`\{\{\s*\.([A-Za-z_][A-Za-z0-9_]*)\s*\}\}`)

// Names returns the field names referenced by {{.Field}} in s, in order of
// appearance; nil when there are none.
func Names(s string) []string {
	var out []string
	for _, m := range re.FindAllStringSubmatch(s, -1) {
		out = append(out, m[1])
	}
	return out
}

// Check reports template syntax other than {{.Field}} in s.
func Check(s string) error {
	rest := re.ReplaceAllString(s, "")
	if strings.Contains(rest, "{{") || strings.Contains(rest, "}}") {
		return fmt.Errorf("only {{.Field}} placeholders are allowed")
	}
	return nil
}

// Render replaces each {{.Field}} in s by the field's value in input, a
// JSON object keyed by JSON field names. Fields may be named by their JSON
// name; goNames maps Go names to JSON names for the rest. A JSON string is
// inserted without quotes, any other value as compact JSON. A field that
// input lacks is an error; its placeholder is then left as it is.
func Render(s string, input map[string]json.RawMessage, goNames map[string]string) (string, error) {
	var err error
	out := re.ReplaceAllStringFunc(s, func(m string) string {
		name := re.FindStringSubmatch(m)[1]
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

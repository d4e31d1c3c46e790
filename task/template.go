package task

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
)

// placeholder matches {{.Field}} with optional inner spaces.
var placeholder = regexp.MustCompile(`\{\{\s*\.([A-Za-z_][A-Za-z0-9_]*)\s*\}\}`)

// Placeholders returns the field names referenced by {{.Field}} in s, in
// order of appearance.
func Placeholders(s string) []string {
	var out []string
	for _, m := range placeholder.FindAllStringSubmatch(s, -1) {
		out = append(out, m[1])
	}
	return out
}

// checkTemplate reports template syntax other than {{.Field}}.
func checkTemplate(s string) error {
	rest := placeholder.ReplaceAllString(s, "")
	if strings.Contains(rest, "{{") || strings.Contains(rest, "}}") {
		return fmt.Errorf("only {{.Field}} placeholders are allowed")
	}
	return nil
}

// Render replaces each {{.Field}} in s by the field's value in input, a JSON
// object keyed by JSON field names. Fields may be named by their JSON name;
// goNames maps Go names to JSON names for the rest. A JSON string is
// inserted without quotes, any other value as compact JSON.
func Render(s string, input map[string]json.RawMessage, goNames map[string]string) (string, error) {
	var err error
	out := placeholder.ReplaceAllStringFunc(s, func(m string) string {
		name := placeholder.FindStringSubmatch(m)[1]
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

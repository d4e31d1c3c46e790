package task

import (
	"github.com/sluice-ml/sluice/internal/field"
	"github.com/sluice-ml/sluice/internal/placeholder"
)

// This file holds the {{outputs.Field}} placeholder of container tasks:
// the path of the file an output field is written to, which differs by
// backend (a path in the container on Kubernetes, a host path under the
// attempt's output directory locally), so that a command never has to
// hard-code it.

// OutputPlaceholders returns the output field names referenced by
// {{outputs.Field}} in s, in order of appearance.
//
// For backend authors: such a placeholder stands for the path the output
// field's file must be written to, [Spec.OutputPath] in the container.
// backends.RenderCommand fills them with that path; a backend whose
// process sees the file elsewhere (a host process) passes its own path
// to backends.RenderCommandWith. A backend that rewrites {{.Field}}
// placeholders into its engine's parameters fills these in at compile
// time, as they do not depend on the input.
func OutputPlaceholders(s string) []string { return placeholder.Outputs(s) }

// OutputPath returns the path in the container of the file that output
// field name (Go or JSON name) is read from, and whether s has such an
// output.
func (s Spec) OutputPath(name string) (string, bool) {
	j, _, ok := FieldByName(s.OutputType, name)
	if !ok {
		j = name
	}
	for _, o := range s.Outputs {
		if o.Field == j {
			return o.Path, true
		}
	}
	return "", false
}

// checkOutputPlaceholders reports {{outputs.Field}} placeholders in str
// that name no output field of s.
func checkOutputPlaceholders(p *field.Path, str string, s Spec) *field.Error {
	for _, name := range placeholder.Outputs(str) {
		if _, _, ok := FieldByName(s.OutputType, name); !ok {
			return field.NotFound(p, str, "placeholder {{outputs.%s}}: %s", name, noField(s.OutputType, name))
		}
	}
	return nil
}

package backends

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"

	"github.com/sluice-ml/sluice/internal/placeholder"
	"github.com/sluice-ml/sluice/task"
)

// RenderCommand returns a container task's command, args and environment
// with their {{.Field}} placeholders filled from the resolved input, which
// must then be a JSON object, and their {{outputs.Field}} placeholders
// with the output's path in the container ([task.Spec.OutputPath]).
// Placeholders name fields by Go or JSON name. Every backend that starts
// containers itself uses it (or [RenderCommandWith]).
func RenderCommand(t task.Spec, input json.RawMessage) (command, args []string, env []task.EnvVar, err error) {
	return RenderCommandWith(t, input, nil)
}

// RenderCommandWith is [RenderCommand] for a backend whose process finds
// the output files elsewhere than at their container paths (the local
// backend's host processes): outputPath maps an output's path in the
// container to where the process must write it. nil keeps the container
// path.
func RenderCommandWith(t task.Spec, input json.RawMessage, outputPath func(containerPath string) string) (command, args []string, env []task.EnvVar, err error) {
	command, args, env = slices.Clone(t.Command), slices.Clone(t.Args), slices.Clone(t.Env)
	var fields map[string]json.RawMessage
	goNames := map[string]string{}
	path := func(name string) (string, bool) {
		p, ok := t.OutputPath(name)
		if ok && outputPath != nil {
			p = outputPath(p)
		}
		return p, ok
	}
	fill := func(s *string) error {
		names := task.Placeholders(*s)
		if len(names) == 0 && len(task.OutputPlaceholders(*s)) == 0 {
			return nil
		}
		if len(names) > 0 && fields == nil {
			if err := json.Unmarshal(input, &fields); err != nil || fields == nil {
				return fmt.Errorf("placeholders need an object input, got %s", input)
			}
		}
		for _, n := range names {
			if j, _, ok := task.FieldByName(t.InputType, n); ok {
				goNames[n] = j
			}
		}
		in := fields
		if in == nil {
			in = map[string]json.RawMessage{} // no input placeholder here
		}
		out, err := placeholder.RenderAll(*s, in, goNames, path)
		*s = out
		return err
	}
	for i := range command {
		if err := fill(&command[i]); err != nil {
			return nil, nil, nil, err
		}
	}
	for i := range args {
		if err := fill(&args[i]); err != nil {
			return nil, nil, nil, err
		}
	}
	for i := range env {
		if err := fill(&env[i].Value); err != nil {
			return nil, nil, nil, err
		}
	}
	return command, args, env, nil
}

// AssembleOutput builds a container task's output object from the
// contents of the files it wrote, keyed by [task.Output].Field: a string
// field takes the file's text without one trailing "\n" (as Argo's
// executor reads an output parameter; a "\r" before it stays), any other
// field parses it as JSON.
func AssembleOutput(t task.Spec, files map[string][]byte) (json.RawMessage, error) {
	obj := make(map[string]json.RawMessage, len(t.Outputs))
	for _, o := range t.Outputs {
		data, ok := files[o.Field]
		if !ok {
			return nil, fmt.Errorf("the container wrote no output %q (to %s)", o.Field, o.Path)
		}
		v, err := outputValue(t.OutputType, o.Field, data)
		if err != nil {
			return nil, err
		}
		obj[o.Field] = v
	}
	return json.Marshal(obj)
}

func outputValue(outType reflect.Type, field string, data []byte) (json.RawMessage, error) {
	_, ft, ok := task.FieldByName(outType, field)
	for ok && ft.Kind() == reflect.Pointer {
		ft = ft.Elem()
	}
	if ok && ft.Kind() == reflect.String {
		// One trailing line break off, as Argo's executor reads an
		// output parameter's file: the same text on every backend.
		text := strings.TrimSuffix(string(data), "\n")
		return json.Marshal(text)
	}
	var b bytes.Buffer
	if err := json.Compact(&b, bytes.TrimSpace(data)); err != nil {
		return nil, fmt.Errorf("output %q: %s is not JSON", field, bytes.TrimSpace(data))
	}
	return b.Bytes(), nil
}

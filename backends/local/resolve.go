package local

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/sluice-ml/sluice/backends"
)

// errUnknown is a value that exists only at run time, asked for during a
// dry run.
var errUnknown = errors.New("local: known only at run time")

// resolver gives refs their JSON values.
type resolver struct {
	params map[string]json.RawMessage
	// output returns an ended step's output; nil in a dry run, where
	// outputs, elements and the run's outcome are unknown.
	output  func(step string) (json.RawMessage, bool)
	item    json.RawMessage // the fan-out element, when hasItem
	hasItem bool
	info    *backends.RunInfo // the run's outcome, for the exit handler
}

func (rv resolver) withItem(item json.RawMessage) resolver {
	rv.item, rv.hasItem = item, true
	return rv
}

// value resolves ref, then selects ref.Path in the value.
func (rv resolver) value(ref backends.Ref) (json.RawMessage, error) {
	v, err := rv.whole(ref)
	if err != nil {
		return nil, err
	}
	return backends.Select(v, ref.Path)
}

func (rv resolver) whole(ref backends.Ref) (json.RawMessage, error) {
	dry := rv.output == nil
	switch ref.Kind {
	case backends.RefConst:
		return ref.Value, nil
	case backends.RefParam:
		v, ok := rv.params[ref.Param]
		if !ok {
			return nil, fmt.Errorf("local: no parameter %q", ref.Param)
		}
		return v, nil
	case backends.RefCollect:
		return rv.collect(ref.Elems)
	case backends.RefStep:
		if dry {
			return nil, errUnknown
		}
		v, ok := rv.output(ref.Step)
		if !ok {
			return nil, fmt.Errorf("local: the output of step %q is not available", ref.Step)
		}
		return v, nil
	case backends.RefItem:
		switch {
		case rv.hasItem:
			return rv.item, nil
		case dry:
			return nil, errUnknown
		}
		return nil, errors.New("local: the fan-out element is used outside a fan-out instance")
	case backends.RefRun:
		switch {
		case rv.info != nil:
			return json.Marshal(rv.info)
		case dry:
			return nil, errUnknown
		}
		return nil, errors.New("local: the run's outcome is used outside the exit handler")
	}
	return nil, fmt.Errorf("local: unknown ref kind %q", ref.Kind)
}

func (rv resolver) collect(elems []backends.Ref) (json.RawMessage, error) {
	parts := make([]string, len(elems))
	for i, e := range elems {
		v, err := rv.value(e)
		if err != nil {
			return nil, err
		}
		parts[i] = string(v)
	}
	return json.RawMessage("[" + strings.Join(parts, ",") + "]"), nil
}

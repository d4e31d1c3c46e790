package backends

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// ErrUnknown is returned by [Values.Value] for a value that exists only at
// run time (a step's output, a fan-out element, the run's outcome) when
// Values does not have it: a dry run.
var ErrUnknown = errors.New("backends: known only at run time")

// Values gives a run's [Ref]s their JSON values. Every backend that
// resolves inputs and conditions itself (rather than translating them for
// an engine) uses it, so refs mean the same everywhere.
type Values struct {
	// Params are the parameters' values by name (see [ParamValues]).
	Params map[string]json.RawMessage
	// Output returns an ended step's output (a fan-out's: the JSON list
	// of its instances' outputs). Nil means outputs are unknown (a dry
	// run): refs to them fail with ErrUnknown.
	Output func(step string) (json.RawMessage, bool)
	// Item is the fan-out element, when HasItem.
	Item    json.RawMessage
	HasItem bool
	// Info is the run's outcome, for the exit handler.
	Info *RunInfo
}

// ParamValues returns the plan's parameters' values by name.
func ParamValues(p *Plan) map[string]json.RawMessage {
	m := make(map[string]json.RawMessage, len(p.Params))
	for _, prm := range p.Params {
		v := prm.Value
		if v == nil {
			v = prm.Default
		}
		m[prm.Name] = v
	}
	return m
}

// WithItem returns v with item as the fan-out element.
func (v Values) WithItem(item json.RawMessage) Values {
	v.Item, v.HasItem = item, true
	return v
}

// Value resolves ref, then selects ref.Path in the value.
func (v Values) Value(ref Ref) (json.RawMessage, error) {
	w, err := v.whole(ref)
	if err != nil {
		return nil, err
	}
	return Select(w, ref.Path)
}

func (v Values) whole(ref Ref) (json.RawMessage, error) {
	dry := v.Output == nil
	switch ref.Kind {
	case RefConst:
		return ref.Value, nil
	case RefParam:
		p, ok := v.Params[ref.Param]
		if !ok {
			return nil, fmt.Errorf("no parameter %q", ref.Param)
		}
		return p, nil
	case RefCollect:
		parts := make([]string, len(ref.Elems))
		for i, e := range ref.Elems {
			ev, err := v.Value(e)
			if err != nil {
				return nil, err
			}
			parts[i] = string(ev)
		}
		return json.RawMessage("[" + strings.Join(parts, ",") + "]"), nil
	case RefStep:
		if dry {
			return nil, ErrUnknown
		}
		out, ok := v.Output(ref.Step)
		if !ok {
			return nil, fmt.Errorf("the output of step %q is not available", ref.Step)
		}
		return out, nil
	case RefItem:
		switch {
		case v.HasItem:
			return v.Item, nil
		case dry:
			return nil, ErrUnknown
		}
		return nil, errors.New("the fan-out element is used outside a fan-out instance")
	case RefRun:
		switch {
		case v.Info != nil:
			return json.Marshal(v.Info)
		case dry:
			return nil, ErrUnknown
		}
		return nil, errors.New("the run's outcome is used outside the exit handler")
	}
	return nil, fmt.Errorf("unknown ref kind %q", ref.Kind)
}

// Items resolves the list a ForEach step iterates over.
func (v Values) Items(s *Step) ([]json.RawMessage, error) {
	w, err := v.Value(s.ForEach.Items)
	if err != nil {
		return nil, fmt.Errorf("forEach items %s: %w", s.ForEach.Items, err)
	}
	var items []json.RawMessage
	if err := json.Unmarshal(w, &items); err != nil {
		return nil, fmt.Errorf("forEach items %s: not a list: %s", s.ForEach.Items, w)
	}
	return items, nil
}

package backends

import (
	"encoding/json"
	"errors"
	"fmt"
	"github.com/sluice-ml/sluice/artifact"
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
	// Meta is what RefMeta refs read; nil in a dry run, where they fail
	// with ErrUnknown.
	Meta *RunMeta
	// Resolve, if set, restores a value a task stored out of band
	// because it was too large to travel in-band (artifact.Promote):
	// Value calls it when a ref's path leads into one, and Items when the
	// list is one. Nil leaves such values as they are: a path into one
	// is then an error that says so.
	Resolve func(json.RawMessage) (json.RawMessage, error)
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
	if len(ref.Path) == 0 {
		return w, nil
	}
	for i, p := range ref.Path {
		if artifact.IsValue(w) {
			if v.Resolve == nil {
				return nil, fmt.Errorf("%s: %s was stored out of band, being too large to travel in-band, and this backend cannot look inside it; take the whole value as the input and select %s in the task",
					ref, strings.Join(ref.Path[:i], "."), strings.Join(ref.Path[i:], "."))
			}
			if w, err = v.Resolve(w); err != nil {
				return nil, fmt.Errorf("%s: %w", ref, err)
			}
		}
		if w, err = Select(w, []string{p}); err != nil {
			return nil, err
		}
	}
	return w, nil
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
	case RefMeta:
		if v.Meta == nil {
			return nil, ErrUnknown
		}
		return v.Meta.Value(ref.Meta)
	}
	return nil, fmt.Errorf("unknown ref kind %q", ref.Kind)
}

// Items resolves the list a ForEach step iterates over.
func (v Values) Items(s *Step) ([]json.RawMessage, error) {
	w, err := v.Value(s.ForEach.Items)
	if err != nil {
		return nil, fmt.Errorf("forEach items %s: %w", s.ForEach.Items, err)
	}
	if artifact.IsValue(w) {
		if v.Resolve == nil {
			return nil, fmt.Errorf("forEach items %s: the list was stored out of band, being too large to travel in-band, and this backend cannot read it", s.ForEach.Items)
		}
		if w, err = v.Resolve(w); err != nil {
			return nil, fmt.Errorf("forEach items %s: %w", s.ForEach.Items, err)
		}
	}
	var items []json.RawMessage
	if err := json.Unmarshal(w, &items); err != nil {
		return nil, fmt.Errorf("forEach items %s: not a list: %s", s.ForEach.Items, w)
	}
	return items, nil
}

package pipeline_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sluice-ml/sluice/backends"
	"github.com/sluice-ml/sluice/pipeline"
	"github.com/sluice-ml/sluice/task"
)

// Identifiers in this file start with "tp" because package pipeline_test
// is shared with other test files.

type tpOut struct {
	V int `json:"v"`
}

// tpHidden hides a Ref from the walk for Refs (an unexported field) but
// not from the JSON (its own MarshalJSON).
type tpHidden struct{ r pipeline.Ref[tpOut] }

func (h tpHidden) MarshalJSON() ([]byte, error) { return json.Marshal(h.r) }

type tpIn struct {
	Refs   []pipeline.Ref[tpOut] `json:"refs"`
	Skip   pipeline.Ref[tpOut]   `json:"-"`
	Meta   map[string]any        `json:"meta,omitempty"`
	Hidden *tpHidden             `json:"hidden,omitempty"`
}

func tpPlan(t *testing.T, in func(a, b pipeline.Ref[tpOut]) tpIn) (*backends.Plan, error) {
	t.Helper()
	p := pipeline.New("p", nil)
	mk := func(name string) task.Task[tpIn, tpOut] {
		return task.New(name, func(context.Context, tpIn) (tpOut, error) { return tpOut{}, nil })
	}
	a := pipeline.Add(p, mk("a"), tpIn{})
	b := pipeline.Add(p, mk("b"), tpIn{})
	pipeline.Add(p, mk("c"), in(a.Output(), b.Output()))
	return p.Plan(nil)
}

// An input's template has a placeholder for each occurrence of a Ref and
// one Ref per source, in the order of their first placeholder; a Ref the
// JSON leaves out is still a dependency.
func TestInputTemplates(t *testing.T) {
	plan, err := tpPlan(t, func(a, b pipeline.Ref[tpOut]) tpIn {
		return tpIn{Refs: []pipeline.Ref[tpOut]{b, a, b, pipeline.Const(tpOut{V: 7})}, Skip: a, Meta: map[string]any{"$sluicey": 1, "k": "<v>"}}
	})
	require.NoError(t, err)
	c := plan.Steps[2]
	assert.Equal(t, `{"refs":[{"$sluice":0},{"$sluice":1},{"$sluice":0},{"v":7}],"meta":{"$sluicey":1,"k":"\u003cv\u003e"}}`, string(c.Input.Template))
	require.Len(t, c.Input.Refs, 2)
	assert.Equal(t, "b", c.Input.Refs[0].Step)
	assert.Equal(t, "a", c.Input.Refs[1].Step)
	assert.Equal(t, []string{"a", "b"}, c.DependsOn)
}

// Keys that Sluice reserves for references, and a Ref that only the JSON
// shows, are problems of the input.
func TestInputTemplateProblems(t *testing.T) {
	const (
		reserved = `holds the object key "$sluice", which Sluice reserves for references; rename the key`
		unseen   = "holds a Ref that Sluice cannot see (in an unexported field or behind a custom MarshalJSON); make the field exported"
	)
	for _, c := range []struct {
		name   string
		in     func(a, b pipeline.Ref[tpOut]) tpIn
		detail string
	}{
		{"placeholder key", func(a, _ pipeline.Ref[tpOut]) tpIn {
			return tpIn{Refs: []pipeline.Ref[tpOut]{a}, Meta: map[string]any{"$sluice": 0}}
		}, reserved},
		{"ref key", func(a, _ pipeline.Ref[tpOut]) tpIn {
			// Its value is no source the walk found.
			return tpIn{Refs: []pipeline.Ref[tpOut]{a}, Meta: map[string]any{"$sluice.ref": 1}}
		}, unseen},
		{"hidden ref", func(a, b pipeline.Ref[tpOut]) tpIn {
			return tpIn{Refs: []pipeline.Ref[tpOut]{a}, Hidden: &tpHidden{r: b}}
		}, unseen},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := tpPlan(t, c.in)
			require.Error(t, err)
			fes := pipeline.FieldErrors(err)
			require.Len(t, fes, 1, err.Error())
			assert.Equal(t, "pipeline.tasks[c].input", fes[0].Field)
			assert.Equal(t, pipeline.ErrorTypeInvalid, fes[0].Type)
			assert.Equal(t, "pipeline_test.tpIn", fes[0].BadValue)
			assert.Equal(t, c.detail, fes[0].Detail)
		})
	}
}

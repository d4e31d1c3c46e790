package pipeline_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sluice-ml/sluice/pipeline"
	"github.com/sluice-ml/sluice/task"
)

// Identifiers in this file start with "path" because package pipeline_test
// is shared with other test files.

type pathLeaf struct {
	Refs []pipeline.Ref[int]
	ByID map[int]*pipeline.Ref[int]
}

type PathEmbedded struct {
	Inner *pathLeaf
}

// pathIn nests Refs deeper than the few elements a field.Lazy holds, and
// through every kind of value the walk for Refs goes through.
type pathIn struct {
	A struct {
		B []map[string]*struct {
			C any
		}
	}
	PathEmbedded
	Arr [2]pipeline.Ref[int]
}

// Problems deep in an input are reported at their full path, as built
// field by field: past a Lazy's capacity, through maps (keys in order),
// interfaces, pointers, arrays and embedded structs.
func TestInputProblemPaths(t *testing.T) {
	other := pipeline.New("other", nil)
	foreign := pipeline.Add(other, task.New("o", func(context.Context, struct{}) (int, error) { return 0, nil }), struct{}{}).Output()

	var in pathIn
	in.A.B = []map[string]*struct{ C any }{
		nil,
		{
			"y": {C: []any{pathLeaf{Refs: []pipeline.Ref[int]{{}, foreign}}}},
			"x": {C: &pathLeaf{ByID: map[int]*pipeline.Ref[int]{10: &foreign, 9: nil, 2: &foreign}}},
		},
	}
	in.Inner = &pathLeaf{Refs: []pipeline.Ref[int]{foreign}}
	in.Arr[1] = foreign

	p := pipeline.New("p", nil)
	pipeline.Add(p, task.New("b", func(context.Context, pathIn) (int, error) { return 0, nil }), in)
	err := p.Validate()
	require.Error(t, err)
	var got []string
	for _, fe := range pipeline.FieldErrors(err) {
		got = append(got, fe.Field)
		assert.Equal(t, pipeline.ErrorTypeInvalid, fe.Type)
	}
	assert.Equal(t, []string{
		"pipeline.tasks[b].input.A.B[1][x].C.ByID[10]",
		"pipeline.tasks[b].input.A.B[1][x].C.ByID[2]",
		"pipeline.tasks[b].input.A.B[1][y].C[0].Refs[1]",
		"pipeline.tasks[b].input.Inner.Refs[0]",
		"pipeline.tasks[b].input.Arr[1]",
	}, got)
}

// A step's DNS-1123 name is its name sanitized, whether or not the name
// is one already.
func TestStepNames(t *testing.T) {
	p := pipeline.New("p", nil)
	names := []string{"train", "train-2", "a-b-c", "x9", "Train Model", "-lead", "trail-", "dou--ble", "ünï", "9"}
	for _, name := range names {
		pipeline.Add(p, task.New(name, func(context.Context, struct{}) (int, error) { return 0, nil }), struct{}{})
	}
	plan, err := p.Plan(nil)
	require.NoError(t, err)
	var got []string
	for _, s := range plan.Steps {
		got = append(got, s.Name)
	}
	assert.Equal(t, []string{"train", "train-2", "a-b-c", "x9", "train-model", "lead", "trail", "dou-ble", "n", "9"}, got, fmt.Sprint(names))
}

// Two steps of one name, and two whose DNS-1123 names are one, are
// reported at the later step, naming the first.
func TestDuplicateStepNames(t *testing.T) {
	p := pipeline.New("p", nil)
	for _, name := range []string{"a", "x y", "b", "x-y", "x-y", "X Y", "a", "x y", "c", "c", "C"} {
		pipeline.Add(p, task.New(name, func(context.Context, struct{}) (int, error) { return 0, nil }), struct{}{})
	}
	err := p.Validate()
	require.Error(t, err)
	assert.Equal(t, `pipeline.tasks[x-y].name: Duplicate "x-y": becomes "x-y", as "x y" does; rename one
pipeline.tasks[x-y].name: Duplicate "x-y": task 3 has the same name; give one a new name with WithName
pipeline.tasks[X Y].name: Duplicate "X Y": becomes "x-y", as "x y" does; rename one
pipeline.tasks[a].name: Duplicate "a": task 0 has the same name; give one a new name with WithName
pipeline.tasks[x y].name: Duplicate "x y": task 1 has the same name; give one a new name with WithName
pipeline.tasks[c].name: Duplicate "c": task 8 has the same name; give one a new name with WithName
pipeline.tasks[C].name: Duplicate "C": becomes "c", as "c" does; rename one`, err.Error())
}

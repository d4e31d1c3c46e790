package pipeline_test

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/sluice-ml/sluice/internal/field"
	"github.com/sluice-ml/sluice/pipeline"
	"github.com/sluice-ml/sluice/task"
)

func TestCheckReportsUnderTheStep(t *testing.T) {
	p := pipeline.New("p", nil)
	a := pipeline.Add(p, task.New("a", func(context.Context, struct{}) (int, error) { return 0, nil }), struct{}{})
	a.Check(func() error {
		var l field.List
		l.Add(field.Invalid(field.NewPath("space").Child("LR"), "x", "bad"))
		l.Add(field.Required(field.NewPath("maxTrials"), "say how many"))
		return l.Err()
	}).Check(func() error { return errors.New("not a field error") }).
		Check(func() error { return nil })
	pipeline.Add(p, task.New("", func(context.Context, struct{}) (int, error) { return 0, nil }), struct{}{})

	var got []string
	for _, fe := range pipeline.FieldErrors(p.Validate()) {
		got = append(got, fe.Field+" "+string(fe.Type))
	}
	assert.Equal(t, []string{
		"pipeline.tasks[a].space.LR Invalid",
		"pipeline.tasks[a].maxTrials Required",
		"pipeline.tasks[a] Invalid",
		"pipeline.tasks[1].name Required",
	}, got)
}

func TestCheckMisusePanics(t *testing.T) {
	p := pipeline.New("p", nil)
	a := pipeline.Add(p, task.New("a", func(context.Context, struct{}) (int, error) { return 0, nil }), struct{}{})
	assert.PanicsWithValue(t, "pipeline: Step.Check with a nil func", func() { a.Check(nil) })
	assert.Panics(t, func() { pipeline.Step[int]{}.Check(func() error { return nil }) })
}

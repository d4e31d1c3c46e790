package task_test

import (
	"context"
	"reflect"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/sluice-ml/sluice/pipeline"
	"github.com/sluice-ml/sluice/task"
)

type pcIn struct {
	Data string `json:"data"`
}

type pcOut struct {
	Model string  `json:"model"`
	Score float64 `json:"score"`
}

// Spec is plain data, so a Spec written by hand (or by another tool) is
// checked as thoroughly as one built with the With methods.
func TestSpecValidatePod(t *testing.T) {
	ctr := func() task.Spec {
		return task.Container[pcIn, pcOut]("c", "registry.example/c:1").WithCommand("run").Spec()
	}
	with := func(f func(*task.Spec)) task.Spec { s := ctr(); f(&s); return s }
	type key struct {
		Field string
		Type  pipeline.ErrorType
	}
	for _, tc := range []struct {
		name string
		spec task.Spec
		want []key
	}{
		{"Valid", ctr(), nil},
		{"OutputFieldWithoutFile", with(func(s *task.Spec) { s.Outputs = s.Outputs[:1] }), []key{{"outputs", pipeline.ErrorTypeRequired}}},
		{"NoOutputsAtAll", with(func(s *task.Spec) { s.Outputs = nil }), []key{{"outputs", pipeline.ErrorTypeRequired}, {"outputs", pipeline.ErrorTypeRequired}}},
		{"OutputFieldTwice", with(func(s *task.Spec) {
			s.Outputs = append(s.Outputs, task.Output{Field: "model", Path: task.OutputDir + "/m2"})
		}), []key{{"outputs[2].field", pipeline.ErrorTypeDuplicate}}},
		{"OutputFieldByGoName", with(func(s *task.Spec) {
			s.Outputs = []task.Output{{Field: "Model", Path: task.OutputDir + "/model"}, {Field: "score", Path: task.OutputDir + "/score"}}
		}), nil},
		{"GoTaskImageChecked", func() task.Spec {
			return task.New("g", func(context.Context, pcIn) (pcOut, error) { return pcOut{}, nil }).WithImage("team/Train").Spec()
		}(), []key{{"image", pipeline.ErrorTypeInvalid}}},
		{"GoTaskOutputType", func() task.Spec {
			return task.New("g", func(context.Context, pcIn) (chan int, error) { return nil, nil }).Spec()
		}(), []key{{"outputType", pipeline.ErrorTypeInvalid}}},
		{"EnvSetTwiceByHand", with(func(s *task.Spec) { s.Env = []task.EnvVar{{Name: "A", Value: "1"}, {Name: "A", Value: "2"}} }), []key{{"env[1].name", pipeline.ErrorTypeDuplicate}}},
		{"NilOutputType", with(func(s *task.Spec) { s.OutputType = nil; s.Outputs = nil }), nil},
		{"OutputTypeOfMapWithTextKeys", func() task.Spec {
			s := task.New("g", func(context.Context, pcIn) (map[reflect.Kind]int, error) { return nil, nil }).Spec()
			return s
		}(), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.spec.Validate()
			var got []key
			for _, fe := range pipeline.FieldErrors(err) {
				got = append(got, key{fe.Field, fe.Type})
			}
			assert.Equal(t, tc.want, got, "%v", err)
		})
	}
}

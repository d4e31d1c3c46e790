package argo_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sluice-ml/sluice/backends/argo"
	"github.com/sluice-ml/sluice/backends/kubepod"
	"github.com/sluice-ml/sluice/pipeline"
)

type lintKey struct {
	Field string
	Type  pipeline.ErrorType
	Value any
}

// Lint reports what Argo cannot run as field errors, all at once; Compile
// returns the same errors and lint prints them, one per line.
func TestLintReportsTaskNameCollisions(t *testing.T) {
	dup := func(name string) lintKey {
		return lintKey{"pipeline.tasks[" + name + "].name", pipeline.ErrorTypeDuplicate, name}
	}
	for _, tc := range []struct {
		name  string
		build func(p *pipeline.Pipeline)
		want  []lintKey // nil: lint passes
	}{
		{"RenamedLikeAnotherStep", func(p *pipeline.Pipeline) {
			pipeline.Add(p, inc.WithName("1a"), one{})
			pipeline.Add(p, inc.WithName("s-1a"), one{})
		}, []lintKey{dup("1a")}},
		{"RenamedLikeTheExitHandler", func(p *pipeline.Pipeline) {
			pipeline.Add(p, inc.WithName("2b"), one{})
			pipeline.OnExit(p, inc.WithName("s-2b"), one{})
		}, []lintKey{dup("2b")}},
		{"EveryCollisionAtOnce", func(p *pipeline.Pipeline) {
			pipeline.Add(p, inc.WithName("s-1a"), one{})
			pipeline.Add(p, inc.WithName("1a"), one{})
			pipeline.Add(p, inc.WithName("s-9"), one{})
			pipeline.OnExit(p, inc.WithName("9"), one{})
		}, []lintKey{dup("1a"), dup("9")}},
		{"NoStep", func(*pipeline.Pipeline) {}, []lintKey{{"pipeline.tasks", pipeline.ErrorTypeRequired, nil}}},
		{"OnlyAnExitHandler", func(p *pipeline.Pipeline) {
			pipeline.OnExit(p, inc.WithName("1a"), one{})
		}, []lintKey{{"pipeline.tasks", pipeline.ErrorTypeRequired, nil}}},
		{"RenamedAlone", func(p *pipeline.Pipeline) {
			pipeline.Add(p, inc.WithName("1a"), one{})
			pipeline.Add(p, inc.WithName("s-1b"), one{})
		}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := pipeline.New("u", nil)
			tc.build(p)
			be := argo.New(nil, &argo.Options{Pod: kubepod.Options{Image: testImage, Command: testCommand}})
			plan, err := p.Plan(nil)
			require.NoError(t, err)

			lerr := be.Lint(plan)
			_, cerr := pipeline.Compile(t.Context(), p, be, nil)
			var out, errb bytes.Buffer
			code := pipeline.Exec(t.Context(), p, []string{"lint"}, &out, &errb, be)
			if tc.want == nil {
				assert.NoError(t, lerr)
				assert.NoError(t, cerr)
				assert.Equal(t, pipeline.ExitOK, code, errb.String())
				return
			}
			var got []lintKey
			for _, fe := range pipeline.FieldErrors(lerr) {
				got = append(got, lintKey{fe.Field, fe.Type, fe.BadValue})
				assert.Contains(t, fe.Detail, "on argo")
			}
			assert.Equal(t, tc.want, got, "%v", lerr)
			assert.ErrorIs(t, lerr, errors.ErrUnsupported)
			assert.Equal(t, pipeline.FieldErrors(lerr), pipeline.FieldErrors(cerr), "compile reports what lint does")

			assert.Equal(t, pipeline.ExitInvalid, code)
			assert.Equal(t, lerr.Error()+"\n", errb.String(), "lint prints one field error per line")
			assert.Empty(t, out.String())
		})
	}
}

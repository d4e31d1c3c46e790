package pipeline_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/sluice-ml/sluice/backends"
	"github.com/sluice-ml/sluice/pipeline"
)

// lintPicky is a backend whose Compile rejects steps with a given name,
// as a backend with its own naming rules does.
type lintPicky struct {
	name, reject string
	calls        int
}

func (b *lintPicky) Name() string { return b.name }

func (b *lintPicky) Compile(_ context.Context, plan *backends.Plan, opts *backends.CompileOptions) (backends.Artifact, error) {
	b.calls++
	if opts == nil {
		return nil, errors.New("nil options")
	}
	for _, s := range plan.Steps {
		if s.Name == b.reject {
			return nil, fmt.Errorf("%s: step %q: its name is reserved here: %w", b.name, s.Name, errors.ErrUnsupported)
		}
	}
	return fakeArtifact{}, nil
}

func TestExecLintCompilesForEveryLinkedBackend(t *testing.T) {
	for _, tc := range []struct {
		name     string
		bs       []*lintPicky
		args     []string
		wantCode int
		wantErr  []string // one line each, in order
	}{
		{"NoBackend", nil, []string{"lint"}, pipeline.ExitOK, nil},
		{"AllAccept", []*lintPicky{{name: "a", reject: "x"}, {name: "b", reject: "y"}}, []string{"lint"}, pipeline.ExitOK, nil},
		{"OneRejects", []*lintPicky{{name: "a", reject: "x"}, {name: "b", reject: "train"}}, []string{"lint"}, pipeline.ExitInvalid,
			[]string{`churn lint: pipeline: compile "churn" with b: b: step "train": its name is reserved here`}},
		{"EachRejects", []*lintPicky{{name: "a", reject: "prep"}, {name: "b", reject: "train"}}, []string{"lint"}, pipeline.ExitInvalid,
			[]string{`with a: a: step "prep"`, `with b: b: step "train"`}},
		{"InvalidStopsBeforeBackends", []*lintPicky{{name: "a", reject: "prep"}}, []string{"lint", "-p", "lr=fast"}, pipeline.ExitInvalid,
			[]string{"pipeline.params[lr]: Invalid"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var bs []backends.Backend
			for _, b := range tc.bs {
				bs = append(bs, b)
			}
			code, out, errs := exec(t, validPipeline(), tc.args, bs...)
			assert.Equal(t, tc.wantCode, code, errs)
			if tc.wantCode == pipeline.ExitOK {
				assert.Equal(t, "churn: valid, 2 steps\n", out)
				assert.Empty(t, errs)
				for _, b := range tc.bs {
					assert.Equal(t, 1, b.calls, "backend %s compiled once", b.name)
				}
				return
			}
			assert.Empty(t, out)
			lines := strings.Split(strings.TrimSpace(errs), "\n")
			assert.Len(t, lines, len(tc.wantErr), errs)
			for i, w := range tc.wantErr {
				if i < len(lines) {
					assert.Contains(t, lines[i], w)
				}
			}
			if tc.name == "InvalidStopsBeforeBackends" {
				assert.Zero(t, tc.bs[0].calls, "an invalid pipeline is not compiled")
			}
		})
	}
}

// lintFields is a backend that implements backends.Linter: it reports
// every step whose name starts with "x" as a field error, and its Compile
// does not check (package pipeline asks Lint first).
type lintFields struct{ name string }

func (b *lintFields) Name() string { return b.name }

func (b *lintFields) Lint(plan *backends.Plan) error {
	var errs []*pipeline.FieldError
	for i := range plan.Steps {
		s := &plan.Steps[i]
		if strings.HasPrefix(s.Name, "x") {
			errs = append(errs, &pipeline.FieldError{Type: pipeline.ErrorTypeForbidden, Field: backends.TaskField(s, "name").String(), BadValue: s.DisplayName,
				Detail: "on " + b.name + " a name cannot start with x; rename the step"})
		}
	}
	return backends.LintErrors(errs...)
}

func (b *lintFields) Compile(context.Context, *backends.Plan, *backends.CompileOptions) (backends.Artifact, error) {
	return fakeArtifact{docs: [][]byte{[]byte("doc: 1\n")}}, nil
}

// lint and compile print a Linter's problems as field errors, every one,
// one per line, with the field path, the value and the backend's fix.
func TestLintPrintsBackendFieldErrors(t *testing.T) {
	p := pipeline.New("churn", nil)
	pipeline.Add(p, prep.WithName("xprep"), PrepIn{})
	pipeline.Add(p, prep.WithName("ok"), PrepIn{})
	pipeline.Add(p, prep.WithName("xtrain"), PrepIn{})
	want := "pipeline.tasks[xprep].name: Forbidden \"xprep\": on picky a name cannot start with x; rename the step\n" +
		"pipeline.tasks[xtrain].name: Forbidden \"xtrain\": on picky a name cannot start with x; rename the step\n"

	code, out, errs := exec(t, p, []string{"lint"}, &lintFields{name: "fine"}, &lintFields{name: "picky"})
	assert.Equal(t, pipeline.ExitInvalid, code)
	assert.Empty(t, out)
	assert.Equal(t, strings.ReplaceAll(want, "picky", "fine")+want, errs, "each backend's problems, all of them")

	code, out, errs = exec(t, p, []string{"compile", "-backend", "picky"}, &lintFields{name: "picky"})
	assert.Equal(t, pipeline.ExitInvalid, code)
	assert.Empty(t, out)
	assert.Equal(t, want, errs, "compile prints what lint does")

	_, err := pipeline.Compile(t.Context(), p, &lintFields{name: "picky"}, nil)
	var keys []string
	for _, fe := range pipeline.FieldErrors(err) {
		keys = append(keys, fe.Field+" "+string(fe.Type))
	}
	assert.Equal(t, []string{"pipeline.tasks[xprep].name Forbidden", "pipeline.tasks[xtrain].name Forbidden"}, keys)
	assert.ErrorIs(t, err, errors.ErrUnsupported)

	q := pipeline.New("churn", nil)
	pipeline.Add(q, prep.WithName("ok"), PrepIn{})
	code, out, errs = exec(t, q, []string{"lint"}, &lintFields{name: "picky"})
	assert.Equal(t, pipeline.ExitOK, code, errs)
	assert.Equal(t, "churn: valid, 1 steps\n", out)
}

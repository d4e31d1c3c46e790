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

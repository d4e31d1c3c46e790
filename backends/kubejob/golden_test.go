package kubejob_test

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sluice-ml/sluice/backends/backendtest"
	"github.com/sluice-ml/sluice/backends/kubejob"
	"github.com/sluice-ml/sluice/internal/golden"
	"github.com/sluice-ml/sluice/pipeline"
)

// Every canonical pipeline compiles to documents that decode strictly,
// whose Jobs pass Pod Security "restricted", in the order ServiceAccount,
// Role, RoleBinding, Jobs, and that match the golden file. (The
// quickstart example is a main package and cannot be imported here.)
func TestCompileGolden(t *testing.T) {
	for _, c := range backendtest.Cases() {
		t.Run(c.Name, func(t *testing.T) {
			p := c.Build()
			plan, err := p.Plan(nil)
			require.NoError(t, err)
			art, got := compile(t, p, testOptions(), nil)

			want := []string{"ServiceAccount", "Role", "RoleBinding"}
			n := len(plan.Steps)
			if plan.Exit != nil {
				n++
			}
			for range n {
				want = append(want, "Job")
			}
			assert.Equal(t, want, got.kinds)
			for i, s := range plan.Steps {
				assert.Equal(t, s.Name, got.jobs[i].Labels[kubejob.LabelStep], "Jobs in plan order")
			}
			if plan.Exit != nil {
				last := got.jobs[len(got.jobs)-1]
				assert.Equal(t, plan.Exit.Name, last.Labels[kubejob.LabelStep], "exit handler last")
				assert.Equal(t, "true", last.Annotations[kubejob.AnnotationExitHandler])
			}

			// Deterministic: a second compile gives the same bytes.
			again, err := pipeline.Compile(t.Context(), c.Build(), kubejob.New(nil, testOptions()), nil)
			require.NoError(t, err)
			assert.Equal(t, art.Documents(), again.Documents())

			golden.Assert(t, bytes.Join(art.Documents(), []byte("---\n")))
		})
	}
}

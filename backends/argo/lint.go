package argo

import (
	"github.com/sluice-ml/sluice/backends"
	"github.com/sluice-ml/sluice/internal/field"
)

var _ backends.Linter = (*Backend)(nil)

// Lint reports, as field errors, every problem of plan that Argo cannot
// run: a pipeline without a step (a Workflow's DAG needs a task), and a
// step whose name starts with a digit when its DAG task's name, the step
// name after "s-", is another step's name ("1a" next to "s-1a"). Compile
// returns the same error (see [backends.Linter]). It does not contact a
// cluster.
func (b *Backend) Lint(plan *backends.Plan) error {
	var errs []*field.Error
	if len(plan.Steps) == 0 {
		errs = append(errs, field.Required(field.NewPath("pipeline", "tasks"),
			"on argo a Workflow's DAG needs at least one task, and this pipeline has no step (an exit handler alone is none); add one with pipeline.Add"))
	}
	c := &compiler{b: b, plan: plan}
	errs = append(errs, c.taskNames()...)
	return backends.LintErrors(errs...)
}

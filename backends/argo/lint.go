package argo

import (
	"math"

	"github.com/sluice-ml/sluice/backends"
	"github.com/sluice-ml/sluice/backends/kubepod"
	"github.com/sluice-ml/sluice/internal/field"
)

var _ backends.Linter = (*Backend)(nil)

// Lint reports, as field errors, every problem of plan that Argo cannot
// run: a pipeline without a step (a Workflow's DAG needs a task); a step
// whose name starts with a digit when its DAG task's name, the step name
// after "s-", is another step's name ("1a" next to "s-1a"); the failure
// tolerance of a container fan-out without an output field (see
// "failure tolerance" in the package doc); a retry's pending timeout; a
// backoff factor that is not whole; a task.Access naming another
// namespace when Options.Pod.Namespace is empty (see "# Steps' API
// access" in the package doc). Compile returns the same error (see
// [backends.Linter]). It does not contact a cluster.
func (b *Backend) Lint(plan *backends.Plan) error {
	var errs []*field.Error
	if len(plan.Steps) == 0 {
		errs = append(errs, field.Required(field.NewPath("pipeline", "tasks"),
			"on argo a Workflow's DAG needs at least one task, and this pipeline has no step (an exit handler alone is none); add one with pipeline.Add"))
	}
	c := &compiler{b: b, plan: plan}
	errs = append(errs, c.taskNames()...)
	for _, s := range plan.AllSteps() {
		errs = append(errs, lintStep(s)...)
	}
	_, accessErrs := kubepod.AccessOf("argo", &b.opts.Pod, plan, nil)
	errs = append(errs, accessErrs...)
	return backends.LintErrors(errs...)
}

// lintStep reports what of step s Argo cannot honor.
func lintStep(s *backends.Step) []*field.Error {
	var errs []*field.Error
	if tolerant(s) && isContainer(s) && len(s.Task.Outputs) == 0 {
		// The wrapper counts the succeeded instances by the values Argo
		// aggregates from an output parameter (see tolerate).
		p, v := backends.TaskField(s, "forEach", "maxFailed"), any(s.ForEach.MaxFailed)
		if s.ForEach.MaxFailed == 0 {
			p, v = backends.TaskField(s, "forEach", "maxFailedFraction"), s.ForEach.MaxFailedFraction
		}
		errs = append(errs, field.Invalid(p, v, "on argo a container fan-out's failure tolerance (Tolerate, TolerateFraction) needs an output field "+
			"to count the instances that succeeded; declare one (task.Outputs), run it on kubejob or local, or drop the tolerance"))
	}
	r := s.Task.Retry
	if r == nil {
		return errs
	}
	if r.PendingTimeout > 0 {
		// Silently waiting forever for spot capacity that never comes is
		// what the user set the timeout to prevent.
		errs = append(errs, field.Invalid(backends.TaskField(s, "retry", "pendingTimeout"), r.PendingTimeout.String(),
			"on argo (v3.7) there is no timeout for a pod that stays Pending "+
				"(a template's timeout also counts the time it runs, and activeDeadlineSeconds starts once the pod runs); leave it unset for Argo"))
	}
	if f := r.Backoff.Factor; r.App+r.Infra > 0 && r.Backoff.Initial > 0 && f != 0 && (f != math.Trunc(f) || f < 1) {
		errs = append(errs, field.Invalid(backends.TaskField(s, "retry", "backoff", "factor"), f,
			"on argo retries back off by whole factors; use a whole Factor such as 2"))
	}
	return errs
}

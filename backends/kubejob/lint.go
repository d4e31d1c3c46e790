package kubejob

import (
	"github.com/sluice-ml/sluice/backends"
	"github.com/sluice-ml/sluice/backends/kubepod"
)

var _ backends.Linter = (*Backend)(nil)

// Lint reports every step of plan whose Job name kubejob cannot use, as
// field errors at "pipeline.tasks[<step>].name": a name that collides
// with another step's Job, or with an instance or retry Job the
// orchestrator creates for another step ("train-r1" next to a step
// "train" whose retries need Jobs of their own, "square-0" next to a
// fan-out "square"); and a task.Access naming another namespace when
// Options.Pod.Namespace is empty (see "# Steps' API access" in the package
// doc). Compile returns the same error (see
// [backends.Linter]). It does not contact a cluster.
func (b *Backend) Lint(plan *backends.Plan) error {
	run, err := runID(plan.Name, b.opts.RunID)
	if err != nil {
		return err
	}
	_, errs := jobNames(run, plan.AllSteps())
	_, accessErrs := kubepod.AccessOf("kubejob", &b.opts.Pod, plan, nil)
	errs = append(errs, accessErrs...)
	return backends.LintErrors(errs...)
}

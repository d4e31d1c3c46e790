package pipeline

import (
	"github.com/sluice-ml/sluice/internal/field"
)

// Check adds a validation check to s and returns s. [Pipeline.Validate]
// (and so Compile and Run) calls check once and reports every FieldError
// in the error it returns under the step's path, with every other
// problem of the pipeline: a FieldError at "space.LR" is reported at
// "pipeline.tasks[search].space.LR". An error that holds no FieldError
// is reported as Invalid at the step itself.
//
// It is for packages that add steps with settings of their own, such as
// package hpo's search space and budgets: builders never fail, so such
// settings are checked with the rest of the pipeline, all at once. Check
// panics if check is nil, or on a zero Step.
func (s Step[Out]) Check(check func() error) Step[Out] {
	mustAdded(s.n, "Step.Check")
	if check == nil {
		panic("pipeline: Step.Check with a nil func")
	}
	s.n.checks = append(s.n.checks, check)
	return s
}

// runChecks reports the problems the checks of n find.
func (b *builder) runChecks(n *node, at *field.Lazy) {
	for _, check := range n.checks {
		err := check()
		if err == nil {
			continue
		}
		if len(field.Errors(err)) == 0 {
			b.errs.Add(field.Invalid(at.Path(), nil, "%s", err.Error()))
			continue
		}
		b.errs.AddUnder(at.Path(), err)
	}
}

package backends

import (
	"errors"

	"github.com/sluice-ml/sluice/internal/field"
)

// Linter is implemented by backends that cannot compile every plan that
// Validate accepts: names that collide on this backend only (kubejob's
// retry and instance Jobs, Argo's renamed tasks), shapes the engine
// rejects. Lint reports every such problem of plan at once, each as a
// field error like Validate's: the field path of the step the program
// wrote ("pipeline.tasks[train-r1].name", see [TaskField]), a type, the
// value and a detail that names the backend and the fix. It must not
// contact a cluster, like Compile, and Compile returns the same error
// for the same plan, so that a program's lint and compile commands say
// the same.
//
// Lint returns nil or an error made by [LintErrors]. Package pipeline's
// FieldErrors gets the problems back.
type Linter interface {
	Lint(plan *Plan) error
}

// LintErrors returns nil for no errors, or one error that holds each of
// errs (pipeline.FieldErrors gets them back, in order), prints one per
// line, and wraps errors.ErrUnsupported: the plan is valid, and this
// backend cannot compile it.
func LintErrors(errs ...*field.Error) error {
	var l field.List
	l.Add(errs...)
	if l.Len() == 0 {
		return nil
	}
	return &lintError{errs: l.Err()}
}

type lintError struct{ errs error }

func (e *lintError) Error() string   { return e.errs.Error() }
func (e *lintError) Unwrap() []error { return []error{e.errs, errors.ErrUnsupported} }

// TaskField returns the field path of step s as Validate reports it,
// "pipeline.tasks[<name>]" with the name the program gave the step,
// followed by children ("name", "retry").
func TaskField(s *Step, children ...string) *field.Path {
	name := s.DisplayName
	if name == "" {
		name = s.Name
	}
	p := field.NewPath("pipeline", "tasks").Key(name)
	for _, c := range children {
		p = p.Child(c)
	}
	return p
}

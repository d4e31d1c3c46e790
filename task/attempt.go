package task

import "context"

// Attempt describes the attempt a running task is part of. Executors put
// it in the task's context; read it with [AttemptFrom].
type Attempt struct {
	// Step is the plan name of the step being run.
	Step string
	// Instance is the element index within a dynamic fan-out, or -1.
	Instance int
	// Number counts attempts of this step (or instance) from 1.
	Number int
	// OnDemand is true when this attempt fell back to on-demand capacity.
	OnDemand bool
	// InProcess is true when the task runs in the process that runs the
	// pipeline (the local backend, pipelinetest), not in a pod of its
	// own: a deploy step then serves its model in that process.
	InProcess bool
}

type attemptKey struct{}

// WithAttempt returns a copy of ctx carrying a. Executors call it before
// invoking a task.
func WithAttempt(ctx context.Context, a Attempt) context.Context {
	return context.WithValue(ctx, attemptKey{}, a)
}

// AttemptFrom returns the attempt ctx carries, and whether it carries one.
func AttemptFrom(ctx context.Context) (Attempt, bool) {
	a, ok := ctx.Value(attemptKey{}).(Attempt)
	return a, ok
}

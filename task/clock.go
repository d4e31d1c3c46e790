package task

import (
	"context"
	"time"
)

// Clock tells a running task the time. An executor whose time is not
// the wall clock (the local backend with a virtual clock, as in
// pipelinetest) puts its clock in the task's context with [WithClock],
// so that what a task measures (how long a trial ran) follows that
// clock and repeats in tests.
type Clock interface {
	Now() time.Time
}

type clockKey struct{}

// WithClock returns a copy of ctx carrying c. Executors call it before
// invoking a task; a nil c leaves ctx as it is.
func WithClock(ctx context.Context, c Clock) context.Context {
	if c == nil {
		return ctx
	}
	return context.WithValue(ctx, clockKey{}, c)
}

// Now returns the time on the clock ctx carries, or time.Now when it
// carries none.
func Now(ctx context.Context) time.Time {
	if c, ok := ctx.Value(clockKey{}).(Clock); ok {
		return c.Now()
	}
	return time.Now()
}

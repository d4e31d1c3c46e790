package pipelinetest

import (
	"fmt"
	"strings"

	"github.com/sluice-ml/sluice/backends"
	"github.com/sluice-ml/sluice/internal/isnil"
)

// Misuse of the test kit fails the test with a message that names the
// call, what was wrong with it and the fix, and lists the steps where a
// step was wrong. Where there is no test to fail (a nil *testing.T, a
// nil or zero Env, Result or Clock), the call panics with such a message
// instead of dereferencing nil.

// isNil reports whether v is nil or holds a nil pointer, map, func….
func isNil(v any) bool { return isnil.IsNil(v) }

func misuse(format string, args ...any) {
	panic("pipelinetest: " + fmt.Sprintf(format, args...))
}

// usable panics if e cannot be used: nil, or not made by NewEnv.
func (e *Env) usable(call string) {
	switch {
	case e == nil:
		misuse("%s on a nil *Env; create one with pipelinetest.NewEnv(t)", call)
	case e.t == nil:
		misuse("%s on a zero Env; create one with pipelinetest.NewEnv(t)", call)
	}
}

// usable panics if r cannot be used: nil, or not returned by a run.
func (r *Result) usable(call string) {
	switch {
	case r == nil:
		misuse("%s on a nil *Result; use the Result that Env.Run returns", call)
	case r.t == nil:
		misuse("%s on a zero Result; use the Result that Env.Run returns", call)
	}
}

// usable panics for a nil *Clock.
func (c *Clock) usable(call string) {
	if c == nil {
		misuse("Clock.%s on a nil *Clock; use Env.Clock or pipelinetest.NewClock", call)
	}
}

// handleProblem says what is wrong with step handle n, or "" if nothing
// is: nil, or a zero pipeline.Step or pipeline.Fan (or an Instance of
// one), which names no step.
func handleProblem(n Named) string {
	switch {
	case isNil(n):
		return "a nil step handle; pass the pipeline.Step or pipeline.Fan that pipeline.Add, ForEach or FanOut returned, or pipelinetest.Instance(fan, i)"
	case targetOf(n).step == "":
		return "a zero step handle names no step; pass the pipeline.Step or pipeline.Fan that pipeline.Add, ForEach or FanOut returned"
	}
	return ""
}

// stepList lists plan's steps for a message, or says there is no plan.
func stepList(plan *backends.Plan) string {
	if plan == nil {
		return "(the pipeline did not run)"
	}
	return strings.Join(stepNames(plan), ", ")
}

package runstate

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/sluice-ml/sluice/backends"
	"github.com/sluice-ml/sluice/task"
)

// The words of outcomes that carry no detail.
const (
	// MsgNotStarted is the message of a step or instance that Cancel
	// ended before it started.
	MsgNotStarted = "canceled before it started"
	// MsgCanceled is the message of a task that Cancel stopped while it
	// ran, and of a run that was canceled.
	MsgCanceled = "canceled"
)

// Verdict is what [Gate] decides for a step whose dependencies have ended.
type Verdict struct {
	// Run is true when the step runs; Phase and Message are then empty.
	Run bool
	// Phase is how the step ends without running: Canceled, Skipped or
	// Failed (a condition that cannot be evaluated).
	Phase backends.Phase
	// Message says why, in the words every backend reports.
	Message string
}

// Gate decides whether step s, whose DependsOn have all ended, runs.
// upstream(k) returns the phase of s.DependsOn[k]; canceled is whether
// Cancel came before the last of them ended (the moment a step is
// decided: a step whose dependencies ended before Cancel was decided
// then, and Cancel stops it only if it runs); values resolves the refs of
// s's condition. See "Starting a step" in the package doc.
func Gate(s *backends.Step, upstream func(k int) backends.Phase, canceled bool, values func(backends.Ref) (json.RawMessage, error)) Verdict {
	if v, decided := Upstream(s, upstream, canceled); decided {
		return v
	}
	return Condition(s, values)
}

// Upstream is the part of [Gate] that upstream outcomes and Cancel decide.
// It reports false when they let s run, its condition still to be
// evaluated.
func Upstream(s *backends.Step, upstream func(k int) backends.Phase, canceled bool) (Verdict, bool) {
	if canceled {
		return Verdict{Phase: backends.PhaseCanceled, Message: MsgNotStarted}, true
	}
	failed, skipped := "", ""
	for k, d := range s.DependsOn {
		switch upstream(k) {
		case backends.PhaseCanceled:
			return Verdict{Phase: backends.PhaseCanceled, Message: MsgNotStarted}, true
		case backends.PhaseFailed:
			if failed == "" {
				failed = d
			}
		case backends.PhaseSkipped:
			if skipped == "" {
				skipped = d
			}
		}
	}
	switch {
	case failed != "":
		return Verdict{Phase: backends.PhaseSkipped, Message: UpstreamFailed(failed)}, true
	case skipped != "":
		return Verdict{Phase: backends.PhaseSkipped, Message: UpstreamSkipped(skipped)}, true
	}
	return Verdict{}, false
}

// UpstreamFailed is the message of a step skipped because step up failed.
func UpstreamFailed(up string) string { return "upstream step " + strconv.Quote(up) + " failed" }

// UpstreamSkipped is the message of a step skipped because step up was
// skipped.
func UpstreamSkipped(up string) string {
	return "upstream step " + strconv.Quote(up) + " was skipped"
}

// Condition evaluates the When condition of s, whose upstream outcomes let
// it run, with values resolving its refs.
func Condition(s *backends.Step, values func(backends.Ref) (json.RawMessage, error)) Verdict {
	if s.When == nil {
		return Verdict{Run: true}
	}
	ok, why, err := s.When.Explain(values)
	switch {
	case err != nil:
		return Verdict{Phase: backends.PhaseFailed, Message: ConditionError(s.When.String(), err)}
	case !ok:
		return Verdict{Phase: backends.PhaseSkipped, Message: ConditionFalse(s.When.String(), why)}
	}
	return Verdict{Run: true}
}

// ConditionFalse is the message of a step skipped because its condition,
// written cond (backends.Condition.String), is false; why gives the values
// that made it so (backends.Condition.Explain): "condition cond is false:
// why". A backend that cannot know those values passes why "", and the
// message ends after "is false".
func ConditionFalse(cond, why string) string {
	if why == "" {
		return "condition " + cond + " is false"
	}
	return "condition " + cond + " is false: " + why
}

// ConditionError is the message of a step failed because its condition,
// written cond, could not be evaluated.
func ConditionError(cond string, err error) string {
	return "condition " + cond + ": " + err.Error()
}

// InputError is the message of a task failed because its input could not
// be resolved.
func InputError(err error) string { return "resolve input: " + err.Error() }

// Retry is what follows a failed attempt, as [AfterFailure] decides.
type Retry struct {
	// Again is true when another attempt follows.
	Again bool
	// Delay is how long to wait before it.
	Delay time.Duration
	// OnDemand is true when it runs on on-demand capacity rather than the
	// step's preemptible placement.
	OnDemand bool
	// Message is the task's message when it fails (Again is false).
	Message string
}

// AfterFailure decides what follows the failure of the last of attempts,
// the attempts a task of step s made so far (the last one Failed, with
// its Reason and Message). permanent says the failure is one no retry can
// mend. See "Attempts and retries" in the package doc.
func AfterFailure(s *backends.Step, attempts []backends.Attempt, permanent bool) Retry {
	r := policy(s)
	last := attempts[len(attempts)-1]
	app, infra := Used(attempts)
	switch {
	case permanent:
	case last.Reason == backends.ReasonInfra && infra <= r.Infra:
		return Retry{Again: true, Delay: r.Backoff.Delay(last.Number), OnDemand: OnDemand(s, infra)}
	case last.Reason != backends.ReasonInfra && app <= r.App:
		return Retry{Again: true, Delay: r.Backoff.Delay(last.Number), OnDemand: OnDemand(s, infra)}
	}
	return Retry{Message: Exhausted(last, r.Infra, permanent)}
}

// Exhausted is the message of a task that failed for good with attempt
// last, under a retry policy with an Infra budget of infra retries:
// last's message, and for an infrastructure failure that a retry could
// have mended, that the budget is used up.
func Exhausted(last backends.Attempt, infra int, permanent bool) string {
	if last.Reason == backends.ReasonInfra && !permanent {
		return fmt.Sprintf("%s (the Infra budget of %d retries is used up)", last.Message, infra)
	}
	return last.Message
}

// Used counts the failed attempts of each reason among attempts.
func Used(attempts []backends.Attempt) (app, infra int) {
	for _, a := range attempts {
		if a.Phase != backends.PhaseFailed {
			continue
		}
		if a.Reason == backends.ReasonInfra {
			infra++
		} else {
			app++
		}
	}
	return app, infra
}

// OnDemand reports whether the next attempt of a task of step s, after
// infra infrastructure failures, runs on on-demand capacity: with
// OnDemandFallback on a preemptible step, once the Infra budget is used
// up.
func OnDemand(s *backends.Step, infra int) bool {
	r := policy(s)
	return r.OnDemandFallback && s.Resolved.OnDemand != nil && r.Infra > 0 && infra >= r.Infra
}

// CanceledInBackoff is the message of a task that Cancel ended while it
// waited to retry after the failed attempt last.
func CanceledInBackoff(last backends.Attempt) string {
	return "canceled while waiting to retry after: " + last.Message
}

// Unschedulable is the message of a task whose pod the scheduler cannot
// place, saying why (the scheduler's words), while it waits.
func Unschedulable(why string) string { return "unschedulable: " + why }

// PendingTimedOut is the message of the attempt that Retry.PendingTimeout
// d ended, an infrastructure failure: its pod stayed unschedulable.
func PendingTimedOut(d time.Duration, why string) string {
	return "unschedulable for " + d.String() + ": " + why
}

// Waiting is the message of a task whose container cannot start yet,
// saying why (an image that cannot be pulled, a missing ConfigMap…).
func Waiting(why string) string { return "waiting: " + why }

// Waits reports whether msg is the message of a task whose pod waits:
// [Unschedulable] or [Waiting].
func Waits(msg string) bool {
	return strings.HasPrefix(msg, Unschedulable("")) || strings.HasPrefix(msg, Waiting(""))
}

// CanceledWaiting is the message of a task, and of its attempt, that
// Cancel ended while its pod waited, with waiting the message it waited
// with ([Unschedulable] or [Waiting]): "canceled while unschedulable:
// <the scheduler's words>".
func CanceledWaiting(waiting string) string { return "canceled while " + waiting }

// TimedOut is the message of an attempt stopped by its step's timeout d.
func TimedOut(d time.Duration) string { return "timed out after " + d.String() }

func policy(s *backends.Step) task.Retry {
	if s.Task.Retry != nil {
		return *s.Task.Retry
	}
	return task.Retry{}
}

// Tolerated is how many of n instances of fan-out step s may fail with s
// still succeeding: ForEach.MaxFailed, or the fraction
// ForEach.MaxFailedFraction of n rounded down, whichever is larger.
func Tolerated(s *backends.Step, n int) int {
	fe := s.ForEach
	if fe == nil {
		return 0
	}
	k := fe.MaxFailed
	if f := fe.MaxFailedFraction; f > 0 {
		k = max(k, int(math.Floor(f*float64(n)+1e-9)))
	}
	return k
}

// Outcome is how a step, a fan-out or a run ends.
type Outcome struct {
	Phase   backends.Phase
	Message string
	// Output is a fan-out's list of outputs.
	Output json.RawMessage
}

// FanOutEnd decides how fan-out step s ends once all of insts, the
// statuses of its instances in element order, have ended. See "Fan-outs"
// in the package doc.
func FanOutEnd(s *backends.Step, insts []backends.StepStatus) Outcome {
	var failed []int
	canceled, allCached := false, len(insts) > 0
	for i := range insts {
		switch insts[i].Phase {
		case backends.PhaseFailed:
			failed = append(failed, i)
		case backends.PhaseCanceled:
			canceled = true
		case backends.PhaseSucceeded:
			allCached = false
		}
	}
	tol := Tolerated(s, len(insts))
	if len(failed) > tol {
		first := failed[0]
		msg := fmt.Sprintf("instance %d failed: %s", first, insts[first].Message)
		if tol > 0 {
			msg = fmt.Sprintf("%d of %d instances failed, more than the %d tolerated; first: %s", len(failed), len(insts), tol, msg)
		}
		return Outcome{Phase: backends.PhaseFailed, Message: msg}
	}
	if canceled {
		return Outcome{Phase: backends.PhaseCanceled, Message: MsgCanceled}
	}
	out := make([]json.RawMessage, 0, len(insts)-len(failed))
	for i := range insts {
		if insts[i].Phase != backends.PhaseFailed {
			out = append(out, insts[i].Output)
		}
	}
	b, err := json.Marshal(out)
	if err != nil {
		return Outcome{Phase: backends.PhaseFailed, Message: fmt.Sprintf("collect instance outputs: %v", err)}
	}
	o := Outcome{Phase: backends.PhaseSucceeded, Output: b}
	switch {
	case len(failed) > 0:
		o.Message = toleratedMessage(failed, insts, tol)
	case allCached:
		o.Phase = backends.PhaseCached
	}
	return o
}

func toleratedMessage(failed []int, insts []backends.StepStatus, tol int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d of %d instances failed (at most %d tolerated), left out of the output: ", len(failed), len(insts), tol)
	for k, i := range failed {
		if k > 0 {
			b.WriteString("; ")
		}
		fmt.Fprintf(&b, "instance %d failed: %s", i, insts[i].Message)
	}
	return b.String()
}

// Info is what the exit handler learns about the run: steps are the
// ended statuses of the plan's steps in plan order (without the exit
// handler) and canceled whether Cancel came before they ended.
func Info(steps []backends.StepStatus, canceled bool) backends.RunInfo {
	info := backends.RunInfo{Phase: backends.PhaseSucceeded}
	for i := range steps {
		if steps[i].Phase == backends.PhaseFailed {
			info.Failed = append(info.Failed, steps[i].Name)
		}
	}
	switch {
	case canceled:
		info.Phase = backends.PhaseCanceled
	case len(info.Failed) > 0:
		info.Phase = backends.PhaseFailed
	}
	return info
}

// End decides how a run ends: steps are the statuses of the plan's steps
// in plan order, the exit handler last, and canceled whether Cancel came
// before the steps ended. See "The end of a run" in the package doc.
func End(steps []backends.StepStatus, canceled bool) Outcome {
	var failed []string
	first := ""
	for i := range steps {
		if steps[i].Phase != backends.PhaseFailed {
			continue
		}
		failed = append(failed, steps[i].Name)
		if first == "" {
			first = fmt.Sprintf("step %q failed: %s", steps[i].Name, steps[i].Message)
		}
	}
	switch {
	case canceled:
		return Outcome{Phase: backends.PhaseCanceled, Message: MsgCanceled}
	case len(failed) > 1:
		return Outcome{Phase: backends.PhaseFailed, Message: fmt.Sprintf("steps %s failed; first: %s", strings.Join(failed, ", "), first)}
	case len(failed) == 1:
		return Outcome{Phase: backends.PhaseFailed, Message: first}
	}
	return Outcome{Phase: backends.PhaseSucceeded}
}

// Package runstate holds the rules of a run as pure functions: when a step
// starts, is skipped or canceled, how a failed attempt is retried, how a
// fan-out ends, what the exit handler learns and how the run ends — and
// the words each outcome is reported with. Every backend asks it rather
// than deciding for itself: backends/local and backends/kubejob call these
// functions as they observe their tasks and Jobs, and backends/argo
// compiles the same rules into Argo expressions, held to these functions
// by a property test, and reports an Argo run's outcome through them. The
// functions do no I/O, read no clock and start no goroutines; their only
// inputs are the Plan's steps and what a backend observed.
//
// This text is the normative definition of how a Sluice run behaves.
//
// # Starting a step
//
// A step is considered once every step in its DependsOn has ended. [Gate]
// then decides, in this order of precedence:
//
//  1. Cancel came before that moment, or an upstream step was canceled:
//     the step ends Canceled, "canceled before it started"
//     ([MsgNotStarted]);
//  2. an upstream step failed: Skipped, `upstream step "a" failed` (the
//     first failed step in DependsOn order);
//  3. an upstream step was skipped: Skipped, `upstream step "a" was
//     skipped`, without evaluating the step's condition;
//  4. the step's When condition is false: Skipped, "condition
//     eval.ndcg >= params.min_ndcg is false: eval.ndcg = 0.463 <
//     params.min_ndcg = 0.9" ([ConditionFalse]) — the condition as
//     written, then the values that decided it as
//     [backends.Condition.Explain] gives them: each comparison that
//     decided with the relation that holds ("==" or "!=" for == and !=,
//     "<", "==" or ">" for the orderings), a run-time value as "ref =
//     value", a constant as the value alone, a bool as "ref = false";
//     of an "and", its first false operand, of an "or", every operand,
//     of a "not", its operand (the rule for each outcome is on
//     Explain); facts joined by "; ", values as compact JSON cut to 40 characters
//     with "…". A backend that evaluates conditions in its engine
//     (Argo) evaluates them again over the values the engine reports,
//     and only where a value is out of its reach (stored out of band,
//     see artifact.Promote) says "condition … is false" alone. A
//     condition that cannot be evaluated fails the step, "condition …:
//     <why>";
//  5. otherwise the step runs.
//
// Steps that do not depend on a failed step keep running. A step whose
// input cannot be resolved fails, "resolve input: <why>" ([InputError]).
//
// # Attempts and retries
//
// A task (a step, or one instance of a fan-out) runs in attempts. An
// attempt ends Succeeded, Failed with a [backends.Reason], or Canceled
// (stopped by Cancel: it consumes no budget). An infrastructure failure
// (preemption, eviction, node loss, a pod that stayed unschedulable past
// the retry policy's PendingTimeout, an error wrapping
// task.ErrInfrastructure) consumes the Infra budget; any other failure, a
// timeout ("timed out after 1m0s") included, consumes the App budget.
// [AfterFailure] decides what follows a failed attempt: another attempt
// while the budget of the way it failed lasts, after Backoff.Delay(n)
// where n is the number of the attempt that failed; else the task fails
// with the attempt's message (an infrastructure failure adds that the
// Infra budget is used up). A failure the task's own code cannot mend —
// a Go task invoked wrongly, an image that cannot be pulled, a pod the
// API server refuses — is permanent and never retried. With
// OnDemandFallback on a preemptible step, the attempts made once the
// Infra budget is used up run on on-demand capacity ([Retry.OnDemand]).
// While a task's pod waits, its message says why: "unschedulable: <the
// scheduler's words>" ([Unschedulable]) or "waiting: <why the container
// cannot start>" ([Waiting]); a pod unschedulable past the retry policy's
// PendingTimeout fails its attempt, "unschedulable for 1m0s: …"
// ([PendingTimedOut]).
//
// Cancel during the wait for a retry ends the task Canceled, "canceled
// while waiting to retry after: <message>" ([CanceledInBackoff]); Cancel
// during an attempt ends the attempt and the task Canceled, both
// "canceled" ([MsgCanceled]), or, when the attempt's pod was waiting,
// both "canceled while " and the message it waited with: "canceled while
// unschedulable: <the scheduler's words>" ([CanceledWaiting]; on Argo,
// whose Workflow drops the scheduler's words on Cancel, when the Watch
// saw the pod wait). The message a step ends with — these, a pending
// timeout's, a failure's, a skip's — is what the run's summary
// (pipeline.WriteSummary) shows on the step's line.
//
// # Fan-outs
//
// A ForEach step resolves its items to a JSON list and runs one instance
// per element, at most ForEach.Parallelism at once. [FanOutEnd] decides
// how it ends once every instance has: Failed when more instances failed
// than its failure tolerance allows (ForEach.MaxFailed instances, or the
// fraction ForEach.MaxFailedFraction of them, whichever allows more; by
// default none); else Canceled when one was canceled; else Cached when
// every instance was; else Succeeded. Its output is the list of the
// successful instances' outputs in element order; a tolerated failure
// leaves its element out of the list and is named in the step's message.
// An empty list succeeds with the output [].
//
// # The end of a run
//
// Once every step has ended, the exit handler (if any) runs with the
// [backends.RunInfo] of [Info]: Canceled if the run was canceled, else
// Failed if a step failed, else Succeeded, and the failed steps in plan
// order. Cancel does not stop the exit handler; its timeout does. [End]
// then gives the run's phase and message, counting the exit handler's
// failure as a step's: Canceled ("canceled") if Cancel came before the
// steps ended, else Failed (`step "a" failed: <message>`, or for several
// `steps a, b failed; first: step "a" failed: <message>`), else
// Succeeded.
//
// # Where a backend differs
//
// A backend that cannot honour a rule says so where users look: in its
// package doc, in the capability table of package backends and, when the
// difference shows in a compiled manifest, in the manifest itself. Argo
// keeps one retry count per step, so an attempt that fails for a reason
// other than the previous attempts' may get one retry fewer or more than
// [AfterFailure] gives it (see backends/argo).
package runstate

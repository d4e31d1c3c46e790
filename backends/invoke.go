package backends

import (
	"context"
	"slices"
	"time"

	"go.opentelemetry.io/otel/propagation"
)

// The task-invocation protocol: how a backend runs one Go task of a
// pipeline program inside a container. Every pipeline program ends with
// pipeline.Main, so the user's image holding that program also understands:
//
//	prog task -step NAME [-input JSON | -input-file PATH] [-output-file PATH]
//
// The program rebuilds its pipeline, finds the step NAME (the Plan's
// Step.Name), decodes the input (a JSON document: the step's Input with
// every ref already resolved by the backend; "{}" when neither flag is
// given), runs the task once and writes its output as JSON to PATH
// (default [DefaultOutputFile]), creating parent directories. Exit status:
//
//   - 0: the task succeeded and its output was written;
//   - 1: the task returned an error (an application failure: it consumes
//     the App retry budget);
//   - 2: the invocation was wrong (unknown step, undecodable input, output
//     not writable): no retry can mend it;
//   - 3 ([ExitInfrastructure]): the task returned an error wrapping
//     task.ErrInfrastructure (it lost a resource it depends on, not a bug
//     of its own): the failure counts against the Infra retry budget, like
//     a preemption;
//   - 143 ([ExitTerminated], 128+SIGTERM): the process got SIGTERM or
//     SIGINT while the task ran and the task then ended with an error, or
//     did not return within [StopGrace] of its context being canceled:
//     the task was stopped from outside (eviction, preemption of a spot
//     node, node drain, pod deletion), an infrastructure failure like 3.
//     A task that ends on its own after the signal keeps its status: 0
//     with its output, 1 or 3 when it failed before the signal. A pod
//     that runs out of time (activeDeadlineSeconds) is also stopped with
//     SIGTERM, so backends tell a timeout apart by what the cluster says
//     (the pod's reason DeadlineExceeded, Argo's "longer than the
//     specified deadline"): a timeout stays an application failure.
//
// On failure the program prints the error on stderr, prefixed with the
// program and step, for the logs, and writes the error's text alone
// (exactly err.Error() for a task's error, so the message is the one the
// local backend reports) to the container's termination-message file,
// where Kubernetes intends a container to say why it ended: the file
// named by the environment variable [TerminationLogEnv], else
// [TerminationLog], and only when that file exists (the kubelet creates
// it; the program never creates it). Backends that run Go tasks in pods
// set TerminationLogEnv to the container's terminationMessagePath, and so
// report that text as the failed attempt's message.
//
// The environment variable TRACEPARENT, when set, carries the trace context
// of the run into the task (W3C Trace Context).
//
// Artifacts (package artifact): when [ArtifactsEnv] names the run's store,
// the task's context carries it, with the producer made of the pipeline's
// name, [RunIDEnv], the step, [InstanceEnv] (a fan-out instance's index)
// and [AttemptEnv]; the store is reached only when the task first reads or
// writes an artifact. Promoted values in the input (artifact.Resolve) are
// restored before it is decoded. When [InlineMaxEnv] gives a limit, an
// output whose JSON is longer is made to fit by storing its largest parts
// out of band (artifact.Promote); with no store, such an output fails the
// invocation with status 2 and a message that says to set one. A store
// that cannot be reached then is an infrastructure failure (status 3).
const (
	// InvokeCommand is the subcommand that runs one task.
	InvokeCommand = "task"
	// DefaultOutputFile is where the output goes without -output-file.
	DefaultOutputFile = "/tmp/sluice/output.json"
	// TerminationLog is the Kubernetes termination message file, the
	// default terminationMessagePath of a container; a backend that reads
	// outputs from the pod status passes it as -output-file.
	TerminationLog = "/dev/termination-log"
	// TerminationLogEnv is the environment variable that names the
	// termination-message file a failed task's error goes to, when it is
	// not TerminationLog (see the protocol above).
	TerminationLogEnv = "SLUICE_TERMINATION_LOG"
)

// ExitInfrastructure is the exit status of a task invocation whose task
// reported an infrastructure failure (an error wrapping
// task.ErrInfrastructure). Backends count it against the Infra budget.
const ExitInfrastructure = 3

// ExitTerminated is the exit status of a task invocation that was stopped
// by SIGTERM or SIGINT (128+SIGTERM, what a shell reports for a process
// killed by SIGTERM). Backends count it against the Infra budget, unless
// the cluster says the attempt ran out of time.
const ExitTerminated = 143

// StopGrace is how long the task-invocation mode waits, after SIGTERM or
// SIGINT canceled the task's context, for the task to return before it
// exits with [ExitTerminated] anyway. It is shorter than the grace period
// Kubernetes gives a pod by default (30s), so a task that ignores its
// context still ends as stopped rather than killed (137).
const StopGrace = 10 * time.Second

// InvokeArgs returns the arguments (after the program name) that run step
// with the given resolved input and output file. Empty outputFile means the
// default.
func InvokeArgs(step, input, outputFile string) []string {
	args := []string{InvokeCommand, "-step", step, "-input", input}
	if outputFile != "" {
		args = append(args, "-output-file", outputFile)
	}
	return slices.Clip(args)
}

// The environment variables of the task mode's artifacts (see the protocol
// above).
const (
	// ArtifactsEnv is the root URL of the run's artifact store.
	ArtifactsEnv = "SLUICE_ARTIFACTS"
	// RunIDEnv is the run's id.
	RunIDEnv = "SLUICE_RUN_ID"
	// InstanceEnv is a fan-out instance's index.
	InstanceEnv = "SLUICE_INSTANCE"
	// AttemptEnv is the attempt's number, from 1.
	AttemptEnv = "SLUICE_ATTEMPT"
	// InlineMaxEnv is the most bytes of output JSON the backend carries
	// in-band.
	InlineMaxEnv = "SLUICE_INLINE_MAX"
)

// TraceParentEnv is the environment variable that carries the run's trace
// context into a task's container, in W3C Trace Context form.
const TraceParentEnv = "TRACEPARENT"

// TraceParent returns the W3C traceparent of the span in ctx, or "" when
// ctx carries no valid span. Backends put it into containers as
// [TraceParentEnv] when they submit a run.
func TraceParent(ctx context.Context) string {
	c := propagation.MapCarrier{}
	propagation.TraceContext{}.Inject(ctx, c)
	return c.Get("traceparent")
}

// ContextWithTraceParent returns ctx carrying the remote span context that
// traceparent describes; an empty or malformed value leaves ctx as it is.
// The task-invocation mode calls it with the value of [TraceParentEnv].
func ContextWithTraceParent(ctx context.Context, traceparent string) context.Context {
	if traceparent == "" {
		return ctx
	}
	return propagation.TraceContext{}.Extract(ctx, propagation.MapCarrier{"traceparent": traceparent})
}

package backends

import (
	"context"
	"slices"

	"go.opentelemetry.io/otel/propagation"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"
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
//   - 1: the task returned an error, printed on stderr (an application
//     failure: it consumes the App retry budget);
//   - 2: the invocation was wrong (unknown step, undecodable input, output
//     not writable), printed on stderr;
//   - 3 ([ExitInfrastructure]): the task returned an error wrapping
//     task.ErrInfrastructure (it lost a resource it depends on, not a bug
//     of its own): the failure counts against the Infra retry budget, like
//     a preemption.
//
// The environment variable TRACEPARENT, when set, carries the trace context
// of the run into the task (W3C Trace Context).
const (
	// InvokeCommand is the subcommand that runs one task.
	InvokeCommand = "task"
	// DefaultOutputFile is where the output goes without -output-file.
	DefaultOutputFile = "/tmp/sluice/output.json"
	// TerminationLog is the Kubernetes termination message file; a backend
	// that reads outputs from the pod status passes it as -output-file.
	TerminationLog = "/dev/termination-log"
)

// ExitInfrastructure is the exit status of a task invocation whose task
// reported an infrastructure failure (an error wrapping
// task.ErrInfrastructure). Backends count it against the Infra budget.
const ExitInfrastructure = 3

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

// RestrictedPodSecurityContext returns the pod security context that
// Kubernetes backends use by default: non-root with the RuntimeDefault
// seccomp profile, as Pod Security "restricted" requires.
func RestrictedPodSecurityContext() *corev1.PodSecurityContext {
	return &corev1.PodSecurityContext{
		RunAsNonRoot:   ptr.To(true),
		SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
	}
}

// RestrictedSecurityContext returns the container security context that
// Kubernetes backends use by default: no privilege escalation, every
// capability dropped, non-root, RuntimeDefault seccomp (Pod Security
// "restricted").
func RestrictedSecurityContext() *corev1.SecurityContext {
	return &corev1.SecurityContext{
		AllowPrivilegeEscalation: ptr.To(false),
		Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
		RunAsNonRoot:             ptr.To(true),
		SeccompProfile:           &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
	}
}

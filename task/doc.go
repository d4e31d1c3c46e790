// Package task defines the units of work of a Sluice pipeline.
//
// # Go tasks
//
// A Go task is a function from a typed input to a typed output:
//
//	var train = task.New("train", func(ctx context.Context, in TrainIn) (TrainOut, error) {
//		…
//	})
//
// In and Out are inferred from the function. Values cross task boundaries
// as JSON, so In and Out are structs (or other types) that encoding/json
// can encode. Locally the function is called in process; on a cluster it
// runs inside the pipeline's own binary, built into an image ([Task.WithImage],
// else the cluster backend's Options.Pod.Image), started in the
// task-invocation mode of pipeline.Main.
//
// # Container tasks
//
// A container task runs any image:
//
//	var evalTask = task.Container[EvalIn, EvalOut]("eval", "registry.example/eval:1.4").
//		WithCommand("python", "-m", "eval").
//		WithArgs("--model={{.Model}}", "--threshold={{.Threshold}}").
//		WithOutput("Accuracy", "/tmp/sluice/outputs/acc.json")
//
// {{.Field}} placeholders in the command, arguments and environment are
// replaced by fields of the input (strings as is, other values as JSON); no
// other template syntax is allowed, so every backend can render them. Each
// exported field of Out is read from a file the container writes: by
// default [OutputDir]/<json name>, JSON or, for a string field, raw text.
//
// # Immutability
//
// Task values are immutable: every With method returns a modified copy
// and never shares slices or maps with the original or with the caller, so
// a base definition can be a package-level variable that pipelines
// specialise freely.
//
// # Retries, timeouts and caching
//
// [Retry] has two budgets: App for failures of the task itself (an error,
// a non-zero exit, a timeout) and Infra for failures of the infrastructure
// (preemption, eviction, node loss; an error wrapping [ErrInfrastructure]).
// A spot preemption therefore never uses up the retries meant for bugs.
// [Backoff] spaces attempts; OnDemandFallback moves the last attempt the
// Infra budget allows from spot to on-demand capacity; PendingTimeout
// turns a pod that the scheduler cannot place for that long into an
// infrastructure failure, so that the fall-back applies to spot capacity
// that never comes (on backends that support it). A timeout
// ([Task.WithTimeout]) bounds each attempt. [Cache] reuses a result when
// the task, its image, its version and its inputs (minus excluded ones)
// are unchanged.
//
// # Ranges
//
// Every numeric field has a range that every backend can represent, and
// Validate reports a value outside it at the field, with the range:
// Retry.App and Retry.Infra 0 to [MaxRetries] (and their sum at most
// MaxRetries); Backoff.Initial and Backoff.Max 0 to [MaxBackoffDelay];
// Backoff.Factor 1 to [MaxBackoffFactor] (0 means 2); Timeout and
// Retry.PendingTimeout 0 to [MaxTimeout]. See [ValidateTimeout].
//
// # For backend authors
//
// [Spec] is the non-generic, plain-data description of a task, and
// [Invoker] its implementation as JSON in, JSON out. Backends use only
// these; generics stop at this package's edge.
//
// Two helpers exist for backends only; pipeline authors never need them.
// [FieldByName] maps a field's Go or JSON name to its JSON name and type,
// for placeholders, outputs and field references. [Placeholders] lists the
// {{.Field}} placeholders of a string, for a backend that translates them
// into its engine's own parameter syntax. A backend that starts
// containers itself fills them with backends.RenderCommand instead.
package task

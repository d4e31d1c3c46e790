// Package backends defines the seam between Sluice's portable layer and the
// systems that run pipelines. Application code uses package pipeline; only
// backend authors import this package.
//
// # The Plan
//
// Package pipeline validates a pipeline, lowers it to a [Plan] and hands
// the Plan to a [Backend]. The Plan is plain, non-generic data with the
// guarantees written on its type: topological order, DNS-1123 names,
// inherited and resolved resource profiles, effective retry policies. Every
// backend compiles the same Plan, so local and remote runs cannot drift
// apart.
//
// Values cross step boundaries as JSON. A step's [Input] is a JSON template
// with placeholders for run-time values ([Ref]): another step's output (or a
// field of it), a parameter, the current element of a fan-out, a collected
// list, or the run's outcome (exit handler only). A backend resolves them
// with [Input.Resolve] or splices in its own expressions with
// [Input.Render]. Conditions are data too ([Condition]), so they can be
// evaluated in process or rendered as a workflow engine's expression.
//
// # Writing a backend
//
// A backend implements [Backend], a single Compile method that must not
// contact a cluster. Further capabilities are optional interfaces found by
// type assertion, as in database/sql/driver: [Submitter] starts a run,
// [Watcher] follows it, [Canceler] stops it, [Namer] names the backend for
// the program entrypoint. Constructors return the concrete type and assert
// conformance at compile time:
//
//	var _ backends.Backend = (*Backend)(nil)
//
// The escape hatch to backend-native objects is [Artifact.As] and
// [CompileOptions.BeforeEmit]; each backend lists its types in a "# As"
// section of its package doc. A requirement a backend cannot honor is an
// error wrapping errors.ErrUnsupported, never silently dropped.
//
// # Run status
//
// Every backend reports runs in the same model: a [RunStatus] with a
// [StepStatus] per step (Pending, Running, Succeeded, Failed, Skipped,
// Cached, Canceled), each with its [Attempt]s and the [Reason] a failed
// attempt consumed: the application budget (the task failed) or the
// infrastructure budget (preemption, eviction, node loss).
//
// # Task invocation
//
// Remote backends run a Go task by starting the user's own program in the
// task-invocation mode described on [InvokeCommand]; [InvokeArgs] builds
// the arguments. The protocol is the same for every backend.
package backends

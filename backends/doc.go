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
// the program entrypoint, [Linter] reports what the backend cannot compile
// as field errors (as Validate does, every problem at once), and
// [MachineConfigurer] lets the entrypoint's
// run flags (cache directory, task output) reach a backend that runs
// tasks on the program's own machine. Constructors return the concrete type and assert
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
// # Run semantics
//
// The rules of a run — when a step starts, is skipped or canceled, how a
// failed attempt is retried, how a fan-out ends, what the exit handler
// learns, how the run ends — and the words each outcome is reported with
// are package runstate's, the normative definition. A backend asks
// runstate rather than deciding for itself, or (a workflow engine that
// runs the Plan itself) compiles the rules and holds its output to
// runstate in a test, and reports its runs through runstate's functions.
// The conformance suite in package backendtest checks it, word for word.
//
// # Capabilities
//
// Where a backend cannot honour a rule it declares so (as
// backendtest.Capabilities, and in its package doc), and the difference
// is tested, never silent. The backends of this module differ here:
//
//	                          local          kubejob             argo
//	retry counts              one per budget one per budget      one shared count (1)
//	fan-out failure tolerance yes            yes                 yes (2)
//	Retry.PendingTimeout      no effect (3)  yes                 Compile error (4)
//	on-demand fall-back       recorded (5)   yes                 yes
//	cancel                    yes            yes                 yes
//	resume a run by its id    no             yes                 no (Argo resubmits)
//	cache                     a directory    ConfigMaps          Argo memoization
//	task.Access               ignored (6)    own SA + Roles      own SA + Roles (7)
//
//	(1) an application failure after preemptions may find its App budget
//	    used, and preemptions may use App budget; the template carries
//	    sluice.dev/shared-retry-count (go doc ./backends/argo, # Retries).
//	(2) a container fan-out needs an output field to count by (a Lint
//	    field error wrapping errors.ErrUnsupported otherwise); see
//	    go doc ./backends/argo, "failure tolerance".
//	(3) a local task is never unschedulable; the policy is recorded.
//	(4) errors.ErrUnsupported: Argo v3.7 has no timeout for a Pending pod.
//	(5) local has no spot capacity to leave; Attempt.OnDemand is set.
//	(6) a local task uses the user's kubeconfig and rights.
//	(7) plus Argo's executor rule (workflowtaskresults create, patch) in
//	    the run's namespace, as the executor shares the pod's account;
//	    go doc ./backends/argo, "# Steps' API access".
//
// # Task invocation
//
// Remote backends run a Go task by starting the user's own program in the
// task-invocation mode described on [InvokeCommand]; [InvokeArgs] builds
// the arguments. The protocol is the same for every backend.
package backends

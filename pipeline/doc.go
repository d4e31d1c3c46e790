// Package pipeline defines ML pipelines as typed Go graphs, validates them
// in one pass, and compiles or runs them on any backend: Argo Workflows,
// plain Kubernetes Jobs, or in process (package backends/local).
//
// # Defining tasks
//
// A task is a unit of work; see package task. A Go task is a function,
//
//	var train = task.New("train", func(ctx context.Context, in TrainIn) (TrainOut, error) { … }).
//		WithResources(resources.Profile{GPUModel: "A100-80GB", MIG: "3g.40gb", NodePool: "gpu", Preemptible: true}).
//		WithRetry(task.Retry{App: 1, Infra: 5, OnDemandFallback: true})
//
// and a container task is an image with typed inputs rendered into its
// command line and typed outputs read from files (task.Container). Task
// values are immutable; every With method returns a copy.
//
// # Wiring data
//
// [New] starts a pipeline; [Add] adds a task with its input and returns a
// typed [Step]. step.Output() is a [Ref] to the step's result. A Ref field
// in an input struct is a data dependency, so a wiring mistake is a
// compile error:
//
//	type TrainIn struct {
//		Data pipeline.Ref[PrepOut] // from an upstream step
//		LR   pipeline.Ref[float64] // from a parameter
//	}
//
//	p := pipeline.New("churn", nil)
//	lr := pipeline.NewParam(p, "lr", 0.01)
//	data := pipeline.Add(p, prep, PrepIn{Source: "s3://bucket/raw"})
//	model := pipeline.Add(p, train, TrainIn{Data: data.Output(), LR: lr.Ref()})
//
// Inside the running task, in.Data.Get() is the upstream value. Values
// cross step boundaries as JSON. [Field] refers to one field of a
// struct-valued Ref. [Step.After] adds ordering without data.
//
// [RunID], [RunStarted] and [RunScheduled] refer to the run itself: its
// id, when it was created, and the time it is for (a CronWorkflow's
// scheduled time on Argo, [RunOptions.Scheduled] or "run -scheduled" for
// a backfill, else the start). They are Refs like any other, in a task's
// input, a condition or a container's {{.Field}} placeholder, and read
// the same on every backend: the times in UTC, to the second, as RFC 3339
// text. A daily job names its data partition from them:
//
//	type TrainIn struct {
//		Day pipeline.Ref[time.Time] // in the task: in.Day.Get().Format("2006-01-02")
//	}
//	pipeline.Add(p, train, TrainIn{Day: pipeline.RunScheduled()})
//
// # Control flow
//
//   - [Step.When] runs a step only if a [Cond] holds ([Eq], [Gt], [IsTrue],
//     [And], …, or [Compare] of two run-time values such as a metric and a
//     threshold parameter); a skipped step skips every step that depends
//     on it, and so does a failed one.
//   - [FanOut] adds one step per input (static fan-out); [Collect] gathers
//     their outputs into a Ref to a list (typed fan-in).
//   - [ForEach] runs a task once per element of a list known only at run
//     time (dynamic fan-out), at most [Fan.Limit] at a time; [Fan.Collect]
//     is the list of outputs. [Fan.Tolerate] and [Fan.TolerateFraction]
//     let some instances fail (a search that can lose a few trials): the
//     list then holds the outputs of those that succeeded.
//   - [OnExit] sets an exit handler that always runs last and reads the
//     run's outcome through [Pipeline.Status].
//   - [NewParam] declares a typed run-time parameter, overridable with
//     -p name=value.
//
// Pipeline-wide defaults (resource profile, retry policy, timeout) and
// node pools go in [Options]. The image that Go tasks run in on a cluster
// is not among them: it is the cluster backend's Options.Pod.Image (see
// package kubepod), unless a task names its own.
//
// # Validation errors
//
// Builders never fail and never panic on user content. [Pipeline.Validate]
// (also called by [Compile] and [Run]) reports every problem at once, each a
// [FieldError] with a path and a type:
//
//	pipeline.tasks[train].resources.mig: Invalid "3g.20gb": A100-80GB has no MIG profile "3g.20gb" (…); did you mean "3g.40gb"?
//	pipeline.tasks[eval].after: Invalid "eval": dependency cycle: eval -> report -> eval …
//
// Use [FieldErrors] or errors.As to inspect them, matching Type (one of the
// [ErrorType] constants, such as [ErrorTypeRequired]) and Field. A
// package that adds steps with settings of its own (package hpo's search
// space and budgets) reports their problems the same way, under the
// step's path, with [Step.Check].
//
// Parameter overrides (-p name=value, [CompileOptions.Params]) are checked
// against the parameter's type before they are decoded: null, a number
// that does not fit, a key that is not one of a struct's JSON names and a
// value of the wrong type are each reported at their key
// (pipeline.params[cfg].epochs) with the type wanted and the value given.
//
// Every numeric setting has a documented range that every backend can
// represent, and a value outside it is an Invalid error at its field,
// with the range: retries and backoff (task.MaxRetries,
// task.MaxBackoffFactor, task.MaxBackoffDelay), timeouts
// (task.MaxTimeout), GPUs and quantities (resources.MaxGPUs, 1n to 8Ei),
// and fan-out parallelism ([MaxParallelism]). So whatever Validate accepts
// compiles on every backend.
//
// Misuse of the API itself is not a validation error. A nil *Pipeline
// given to a builder ([Add], [ForEach], [NewParam], …), a nil bind
// function, or a method of a zero [Step] or [Fan] (one that Add or
// ForEach never returned) panics at the call site with a message naming
// the misuse, as task.New does for a nil function; [Compile], [Run],
// [Pipeline.Validate] and [WriteGraph] given a nil pipeline, backend,
// plan or writer return an error wrapping [ErrMisuse]. A zero Step, Fan
// or Param used as data (its Output, Collect or Ref) is reported by
// Validate where it is used.
//
// # Backends
//
// [Compile] validates the pipeline, lowers it to a backends.Plan (the
// single, non-generic description every backend consumes) and hands it to
// a backend, which returns manifests or a run record. [Run] also submits
// the result and follows the run. The escape hatch to native objects is
// [CompileOptions.BeforeEmit] and the artifact's As method.
//
// # The program entrypoint
//
// A pipeline program ends with [Main], which gives it the subcommands run,
// compile, graph, lint, artifacts and help, and the task-invocation mode
// that remote backends use to run one Go task inside a container. "help"
// and "run -h" list the pipeline's parameters with their types and
// defaults. On the local backend, run caches in the user's cache directory
// (-cache-dir, -no-cache) and streams the tasks' output to stderr (-q
// silences it). lint validates and then compiles the pipeline for every
// backend the program links, without contacting a cluster, so what only
// one backend rejects (a step named like another step's retry Job on
// kubejob) is reported before anything runs: every such problem at once,
// one per line like a validation error, with the step's field path, the
// value, the backend and the fix (see backends.Linter); compile prints the
// same. The exit status is 0 on
// success, 1 when the run failed, 2 for an invalid pipeline or usage, and
// 130 when a second interrupt stopped waiting for a run.
//
// After a run, run prints one line per step ([WriteSummary]) and below
// it what steps add with [Step.Summarize]: a step renders its own typed
// output, decoded from the run status, as a few lines (package hpo's
// table of trials); [Pipeline.WriteSummaries] does the same for a
// status that [Run] returned. Packages add subcommands to every program
// that links them with [RegisterCommand], as image.RegisterFormat adds
// image formats: package hpo adds "prog hpo -run ID", which reads a
// run's searches from its artifact store ([CommandEnv.OpenArtifacts]
// opens it as "prog artifacts" does).
//
// # Testing pipelines
//
// Package pipeline/pipelinetest runs a pipeline in process with typed stubs
// ([task.Func] signatures checked by the compiler), injected application
// failures, preemptions and timeouts, a virtual clock and a deterministic
// order, and asserts what ran, was skipped, retried or cached:
//
//	env := pipelinetest.NewEnv(t)
//	pipelinetest.Stub(env, train, func(ctx context.Context, in TrainIn) (TrainOut, error) { … })
//	env.Inject(steps.Train, 1, pipelinetest.Preemption)
//	res := env.Run(p)
//
// env.RunWith fixes the run's id, start and scheduled time
// (pipelinetest.RunOptions), so logic that depends on them is tested
// exactly.
//
// Package backends/local runs the same pipeline for real, and
// backends/backendtest holds the conformance suite every backend passes.
//
// # Telemetry
//
// Compile and Run start spans through the OpenTelemetry API, on the
// global tracer provider: a no-op until the application installs one. The
// library never configures exporters.
package pipeline

// Package local runs pipelines in process: Go tasks as function calls,
// container tasks through a [Runner] (host processes by default, stubs in
// tests). It is also the dry-run executor. The cluster backends implement
// the same semantics, so a pipeline that passes locally behaves the same
// on a cluster.
//
//	st, err := pipeline.Run(ctx, p, local.New(&local.Options{CacheDir: ".sluice-cache"}), nil)
//
// Compile returns the run record (see [Record]): one YAML document listing
// the parameters and, in plan order, each step with its task, dependencies,
// condition, fan-out, input (run-time values shown as "${prep}",
// "${params.lr}", …), resources, retry policy, timeout and cache policy.
// Submit starts a run in the background and returns its id,
// "<pipeline>-<n>" unless SubmitOptions.RunID names one (which must not be
// running). Watch follows a run and Cancel stops it. A Backend is safe for
// concurrent use; runs of one Backend share its parallelism and capacity.
//
// # Semantics
//
// local runs a plan by the rules of package runstate, the normative
// definition of a run every backend honours: when a step starts or is
// skipped or canceled, how attempts are retried, how a fan-out ends
// (failure tolerance included) and how the run ends, in the same words.
// A step starts as soon as every step in its DependsOn has ended; a
// ForEach step runs at most ForEach.Parallelism instances at once (zero:
// no cap besides Options.Parallelism), named "step[i]" in
// StepStatus.Instances.
//
// A Go task is called with its resolved input. A container task has the
// {{.Field}} placeholders of its command, args and env filled from the
// resolved input and its {{outputs.Field}} placeholders with where the
// Runner's process writes the output files (a host path under the
// attempt's output directory for [HostRunner], see [OutputPather]), runs
// through the Runner, and its output object is built
// from the files it wrote: a string field takes the file's text without
// one trailing "\n" (as on Argo), any other field parses the file as JSON. A step
// that has an Invoker runs in process even when its task is a container
// task, so test environments can stub container tasks.
//
// # Retries and timeouts
//
// An attempt whose error wraps task.ErrInfrastructure is an
// infrastructure failure; any other failure, a timeout included, an
// application failure; runstate.AfterFailure decides on the retry, and
// the wait runs on the Clock. The local backend has no spot capacity to
// leave, so an on-demand fall-back is only recorded (Attempt.OnDemand).
// Retry.PendingTimeout never fires: a local task is never unschedulable
// (a request larger than the capacity it draws from is a Compile error,
// and a task waiting for capacity that other tasks hold is queued until
// they end), so it is recorded and has no effect. A Go task that panics
// fails the attempt (the stack goes to Options.Log). An attempt stopped
// by Cancel ends Canceled and consumes no budget.
//
// With a Timeout, each attempt's context is canceled when the Clock's
// AfterFunc says the timeout has passed, and the attempt fails "timed out after 1m0s",
// whatever the task returns afterwards. The attempt still ends only when
// the task returns, so a Go task should watch its context.
//
// # Caching
//
// A library call of pipeline.Run caches only with Options.CacheDir set.
// The program entrypoint's run command (pipeline.Main) caches by default:
// it calls [Backend.WithMachineConfig], which fills an empty CacheDir with
// sluice/cache under the user's cache directory, and an unset Log with
// the program's stderr; its flags -cache-dir, -no-cache and -q change
// that.
//
// With Options.CacheDir set, a step whose cache policy is enabled (each
// instance, for a fan-out) is looked up by a key: the SHA-256 of
// [KeyParts], that is the task's name, kind, image, command, args, env and
// outputs, the policy's Version, and the resolved input with the fields in
// ExcludeInputs removed (top-level fields, Go or JSON names). A hit ends
// the step Cached, with the stored output and no attempt; StepStatus.CacheKey
// holds the key either way. A success is stored as
// CacheDir/<key[:2]>/<key>.json, next to <key>.key.json holding the key's
// parts; files are written atomically, so concurrent runs may share a
// directory. On a miss the parts are compared with those of the step's
// latest stored entry, and the difference ("cache miss: input lr changed",
// see [CacheDiff]) becomes the step's message. A Go task's code is not
// part of the key: change Cache.Version when it changes.
//
// With Options.Sequential, one task runs at a time, in plan order, and
// fan-out instances in element order: the order of a run's side effects is
// the same every time (package pipelinetest relies on it). Each task sees
// a task.Attempt in its context (task.AttemptFrom).
//
// # Dry run
//
// With Options.DryRun, Submit runs no task and the run is over when Submit
// returns. Each step ends as it would as far as parameters and constants
// decide: Skipped when a condition on them is false (and steps downstream
// of it too), else Succeeded with the message "dry run", no attempt and no
// output; a condition or a fan-out list that depends on run-time values is
// noted in the message, and a fan-out over a known list gets one instance
// per element. What each step would run with (its task, inputs,
// resources) is in the Compile artifact's [Record]. No cache is read or
// written and no capacity is used.
//
// # Resources
//
// A task holds, while it runs, one of Options.Parallelism slots and its
// resolved requests of cpu, memory, nvidia.com/gpu and
// nvidia.com/mig-<profile> slices (under the single MIG strategy, slices
// are requested as nvidia.com/gpu and count as GPUs): from the capacity of
// its node pool when Options.Pools lists the pool its profile names (a
// pool has none of the accelerators it does not list), else from
// Options.Capacity when that is set. Waiting tasks are admitted in order
// (run, then plan order, then element), and a task that does not fit
// holds back the ones behind it, so large tasks are not starved by small
// ones. A request larger than the whole capacity it draws from is an error
// wrapping errors.ErrUnsupported from Compile, naming the step, the
// resource and the pool. Other requests (ephemeral storage, shared memory)
// and the other placement hints are ignored: node selectors, tolerations,
// affinity, GPU models and preemptible placement.
//
// A task's Kubernetes API access (task.Task.WithAccess) is ignored too: a
// local task runs in the user's process and reaches a cluster, if at all,
// with the user's own kubeconfig and rights.
//
// # Telemetry
//
// Each run has a span "sluice.local.run" (a child of the span in Submit's
// context) and each attempt a span "sluice.local.attempt" with the
// attributes sluice.step, sluice.attempt, sluice.instance (fan-out
// instances) and, when it failed, sluice.reason. They go through the
// OpenTelemetry API only, on Options.TracerProvider or the global one.
// Attempts have spans only when the run's span records: without a
// provider (the global one until the application installs one) they
// cost nothing.
//
// # As
//
// local exposes these types for As:
//   - Artifact: *backends.Plan (pass a **backends.Plan) and *Record (pass a
//     **Record).
//   - CompileOptions.BeforeEmit: the same; changes to the Record show in
//     Documents.
package local

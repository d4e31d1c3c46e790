// Package kubejob compiles pipelines to plain Kubernetes batch/v1 Jobs, for
// clusters without a workflow engine: one Job per step, plus the
// ServiceAccount, Role and RoleBinding of the orchestrator that creates
// each Job once its dependencies are done. Objects are built from the
// k8s.io/api types and rendered with sigs.k8s.io/yaml; output is
// deterministic.
//
//	b := kubejob.New(nil, &kubejob.Options{Image: "registry.example/prog:v1"})
//	pipeline.Main(p, local.New(nil), b) // prog compile -backend kubejob
//
// # Status
//
// Only the compile half exists. The orchestrator (Submit, Watch, Cancel:
// informers on the run's Jobs and Pods, creation of ready steps,
// conditions, fan-out, the exit handler, resuming from cluster state) is
// not built yet, so Backend implements neither [backends.Submitter] nor
// [backends.Watcher], and pipeline.Run with this backend returns an error
// wrapping errors.ErrUnsupported.
//
// The compiled Jobs are the templates of what the orchestrator will
// create, not manifests to apply as they are: a step's Job is created only
// when it is ready, with the resolved input substituted. In the compiled
// output a Go task's input argument (and, for a container task, the
// sluice.dev/input annotation) shows the step's input template with each
// run-time value as a ${REF} placeholder: ${train} for a step's output,
// ${stats.count} for a field of it, ${params.lr} for a parameter, ${item}
// for the element of a fan-out, ${run} for the exit handler's RunInfo;
// constants are inline. A container task's command, args and env keep
// their {{.Field}} placeholders, which the orchestrator fills in the same
// way. Applying the Jobs with kubectl would start every step at once with
// an unresolved input; apply only the ServiceAccount, Role and RoleBinding.
//
// The Jobs record the run's structure so that a restarted orchestrator can
// rebuild it from the cluster: sluice.dev/depends-on (a JSON list of step
// names), sluice.dev/when (the condition, for people; the orchestrator
// evaluates the Plan's), sluice.dev/for-each ({"items": REF,
// "parallelism": N}), sluice.dev/exit-handler, sluice.dev/retry,
// sluice.dev/on-demand-placement, sluice.dev/cache, and, for container
// tasks, sluice.dev/input and sluice.dev/outputs. Caching is the
// orchestrator's: Compile only records the policy.
//
// # Naming
//
// Every object of a run carries the labels sluice.dev/pipeline,
// sluice.dev/run and sluice.dev/step (the ServiceAccount, Role and
// RoleBinding only the first). The run id is Options.RunID, a DNS-1123
// label; without one, compiled output uses the placeholder
// "<pipeline>-run". A step's Job is "<run>-<step>". A dynamic fan-out
// step's Job is the template of its instances, which the orchestrator
// creates as "<run>-<step>-<i>" (i from 0, in element order); the
// template itself is never created. A step's on-demand fall-back Job is
// "<run>-<step>-od" ("<run>-<step>-<i>-od" for an instance). A name longer
// than 63 characters (a Job's name is also its pods' job-name label) keeps
// a prefix and ends with a 5-character hash of the whole name, so names
// stay unique and deterministic. A step whose Job name could be taken for
// one of those another step's orchestration creates (a step "train-0"
// next to a fan-out "train") is an error wrapping errors.ErrUnsupported,
// since Job names are what make creation idempotent when resuming.
//
// The orchestrator's ServiceAccount, Role and RoleBinding are all named
// Options.OrchestratorServiceAccount, by default
// "<pipeline>-orchestrator", and are shared by the pipeline's runs in the
// namespace. The Role grants only what the orchestrator needs in that
// namespace: batch/jobs create, delete, get, list, patch, watch and pods
// get, list, watch. Steps' pods run as Options.ServiceAccountName (the
// namespace default without one, with no API token mounted), never as the
// orchestrator.
//
// # Resources
//
// Each Job's pod carries the step's resolved requests and limits (GPUs as
// nvidia.com/gpu, MIG slices per the device plugin strategy, as
// resources.Resolve names them), node selector, tolerations and affinity,
// spot placement included. Shared memory is a memory-backed emptyDir at
// /dev/shm with the size as its limit. A timeout is the pod's
// activeDeadlineSeconds, rounded up to a whole second, so it bounds each
// attempt; a pod that runs out of time fails as an application failure.
// Pods run secure by default and pass Pod Security "restricted":
// runAsNonRoot, RuntimeDefault seccomp, no privilege escalation, all
// capabilities dropped (replace with Options.PodSecurityContext and
// Options.SecurityContext). The image must run as a non-root user.
// Finished Jobs are deleted after Options.TTLSecondsAfterFinished (a day
// by default).
//
// # Retries
//
// A Job's backoffLimit is the step's App budget: the Job controller
// retries application failures itself. Its podFailurePolicy has the rules,
// first match wins:
//
//   - Ignore a pod with the DisruptionTarget condition (preemption,
//     eviction, node drain or loss): the controller replaces it without
//     counting it against backoffLimit. The orchestrator counts those
//     disruptions against the Infra budget and fails the step (deleting
//     its Job) once they exceed it;
//   - FailJob when a Go task's container exits 2: a wrong invocation (see
//     [backends.InvokeCommand]) is never retried;
//   - any other failure counts against backoffLimit.
//
// podReplacementPolicy is Failed, so a replacement pod starts only once
// the failed one has terminated, and restartPolicy is Never, as
// podFailurePolicy requires. The Job controller spaces retries with its
// own exponential backoff (10s doubling, capped at 6 minutes); the
// step's Retry.Backoff is recorded in sluice.dev/retry but not applied
// within a Job.
//
// With OnDemandFallback on a preemptible step, the on-demand placement
// ([resources.Resolved].OnDemand) is recorded in the annotation
// sluice.dev/on-demand-placement. When the Infra budget has one attempt
// left, the orchestrator deletes the step's Job and creates the fall-back
// Job "<run>-<step>-od" from the same template with that placement and
// the rest of the App budget (a running Job's pod template cannot change).
//
// # Outputs
//
// A Go task runs the step's image (or Options.Image) with the arguments of
// [backends.InvokeArgs] (after Options.Command, if set) and writes its
// JSON output to its termination message, /dev/termination-log
// (terminationMessagePolicy File), where the orchestrator reads it from
// the pod's status. The kubelet keeps at most 4 KiB
// ([MaxTerminationMessage]), so a larger output fails the step: pass large
// data by a URI to object storage instead. A Go task's input travels as a
// command-line argument, which Linux caps at 128 KiB; Compile fails with
// an error wrapping [ErrTooLarge] when the input template alone is
// larger. A container task writes its output fields to files
// (sluice.dev/outputs), which do not leave the pod: getting them into the
// termination message is left to the orchestrator's design.
//
// # As
//
// kubejob exposes these types for As:
//   - Artifact: *[]*batchv1.Job (all the Jobs, in document order),
//     **rbacv1.Role, **rbacv1.RoleBinding, **corev1.ServiceAccount and
//     **backends.Plan.
//   - CompileOptions.BeforeEmit: the same; changes to the objects show in
//     Documents (the list of Jobs itself cannot be changed).
//
// batchv1, rbacv1 and corev1 are k8s.io/api/batch/v1, k8s.io/api/rbac/v1
// and k8s.io/api/core/v1.
//
// A Backend is safe for concurrent use.
package kubejob

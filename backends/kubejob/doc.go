// Package kubejob runs pipelines as plain Kubernetes batch/v1 Jobs, for
// clusters without a workflow engine: one Job per step, created by a
// small resumable orchestrator once the step's dependencies are done,
// plus the ServiceAccount, Role and RoleBinding that orchestrator runs
// as. Objects are built from the k8s.io/api types, each step's pod by the
// pod layer every Kubernetes backend shares ([kubepod.Spec], with the
// settings in [Options].Pod, a [kubepod.Options]), and rendered by
// [kubepod.Render]; compiled output is deterministic.
//
//	b := kubejob.New(nil, &kubejob.Options{Pod: kubepod.Options{Image: "registry.example/prog:v1"}})
//	pipeline.Main(p, local.New(nil), b) // prog compile -backend kubejob
//
// # Running
//
// With a client (or with none: the first Submit connects by the kubeconfig
// rules, $KUBECONFIG, ~/.kube/config, then a pod's service account, with
// a rate limit of [ClientQPS] requests a second when the kubeconfig sets
// none) the Backend runs what it compiles. Submit starts an orchestrator for the
// run in the calling process and returns the run id; Watch follows it;
// Cancel stops it:
//
//	prog run -backend kubejob -p lr=0.01              # orchestrates from here
//	prog run -backend kubejob -run-id churn-7         # resumes run churn-7
//
// The orchestrator is a small level-triggered controller: client-go
// shared informers on the run's Jobs, Pods and record (label
// sluice.dev/run), one rate-limited work queue, and a reconcile that
// derives every step's state from what the cluster holds and creates or
// deletes what that state calls for, asking package runstate, the rules
// every backend follows, at each decision. A step's Job is created once
// its dependencies have ended, with the step's input resolved into it
// (refs and conditions mean what they mean on the local backend: the same
// [backends.Values]); a condition that is false (the message gives the
// values that decided it, see package runstate), or an upstream step
// that failed or was skipped, skips the step without a Job. A dynamic fan-out
// creates one Job per element, "<run>-<step>-<i>", at most
// ForEach.Parallelism at once; runstate.FanOutEnd decides how it ends
// (its failure tolerance included), and its output is the list of the
// successful instances' outputs. The
// exit handler's Job is created when every other step has ended, with the
// run's outcome as its input, unless its condition (which may read that
// outcome) is false. API errors (429, 500, 409, timeouts) are
// retried with exponential backoff; a Job that the API server rejects
// (invalid, forbidden) fails its step with the server's message. A
// Forbidden error says which Role the orchestrator lacks (see Naming);
// without any RBAC it is the first call, creating the run's record.
//
// A step whose pod waits is Pending, with the reason as its message, in
// Watch's progress and in the final status: "unschedulable: " and the
// scheduler's message (PodScheduled=False, reason Unschedulable: "0/3
// nodes are available: 3 node(s) didn't match Pod's node affinity/selector
// …"), or "waiting: " and a container's waiting reason (ErrImagePull …).
// Retry.PendingTimeout bounds the first (see Retries).
//
// With Options.InCluster the orchestrator runs in the cluster instead, as
// a Job of its own (see [Options].InCluster): the submitting process only
// creates it and may exit; Watch from it derives the status read-only.
//
// # Throughput
//
// Each step is a Job, and Kubernetes' Job controller in
// kube-controller-manager makes its pod and keeps its status: the pod, a
// few status updates and the removal of the pod's tracking finalizer,
// several API writes per Job, all through the controller-manager's one
// client budget (--kube-api-qps, upstream default 20, burst 30). A run of
// many short steps is then paced by that budget, not by the orchestrator:
// on the project's test control plane, a 200-step DAG (20 layers of 10
// trivial steps) took 56 s with the upstream default and 23 s at 100 (burst
// 150), against 44 s for Argo's controller at either budget
// (BenchmarkMakespan in ./e2e). Where many short steps run at once, size
// the controller-manager's budget for it (managed control planes choose
// it themselves); long steps, the usual case for training, do not notice.
//
// # Resuming
//
// Nothing of a run lives only in the orchestrator's memory. The run's
// record, the ConfigMap "sluice-run-<run>", owns its Jobs (deleting it
// removes the whole run) and pins the run id to one pipeline and one set
// of parameters; it also keeps the attempts of the Jobs a pending timeout
// deleted (key "unschedulable.<Job>"). Every other fact is a Job, a pod or
// a cached output.
// Submit with the id of a run that exists continues it: Job names are
// deterministic, a create that finds its Job already there counts as
// done, so a killed orchestrator started again never creates a step's
// Job twice and never runs an attempt twice. A run id taken by another
// pipeline, or by this one with other parameters, is refused. Close stops
// this process's orchestrators and leaves their runs to be resumed.
//
// # Canceling
//
// Cancel records "Canceled" in the run's record, so every orchestrator
// of the run (this one, an in-cluster one, one resumed later) stops it:
// running steps' Jobs are deleted with background propagation, so their
// pods go too, after their attempts are written into the run's record
// (so the step stays Canceled, "canceled", with its attempts, once the
// Job is gone); steps not yet started end Canceled; the exit handler still
// runs, with the run's phase Canceled. A step (or fan-out instance) that
// waits out a retry's backoff ends Canceled too ("canceled while waiting
// to retry after: …"), and its retry is not started. Finished Jobs stay
// until their TTL.
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
// template itself is never created. The k-th retry that needs a Job of
// its own (an infrastructure failure, or a timeout; see Retries) is the
// Job "<run>-<step>-r<k>" ("<run>-<step>-<i>-r<k>" for an instance). The in-cluster orchestrator's Job is "sluice-run-<run>", the
// name of the run's record. A name longer
// than 63 characters (a Job's name is also its pods' job-name label) keeps
// a prefix and ends with a 5-character hash of the whole name, so names
// stay unique and deterministic. A step whose Job name could be taken for
// one of those another step's orchestration creates (a step "train-0"
// next to a fan-out "train", "train-r1" next to a step "train" with an
// Infra budget, or an App budget and a timeout) is rejected, since Job
// names are what make creation idempotent when resuming: [Backend.Lint]
// and Compile report every such step as a field error at
// "pipeline.tasks[<step>].name", in an error that wraps
// errors.ErrUnsupported (see backends.Linter).
//
// The orchestrator's ServiceAccount, Role and RoleBinding are all named
// Options.OrchestratorServiceAccount, by default
// "<pipeline>-orchestrator", and are shared by the pipeline's runs in the
// namespace. Whoever runs the orchestrator needs the Role's rules: the
// user of the kubeconfig when it runs in the submitting process (bind the
// Role to it), the ServiceAccount in the cluster (Options.InCluster, whose
// Submit creates the three when missing). An API call they refuse fails
// with the error and that hint. The Role grants only what the orchestrator needs in that
// namespace: batch/jobs create, delete, get, list, watch; pods get, list,
// watch; configmaps create, delete, get, list, patch, watch (the run's record and
// the cache). Steps' pods run as Options.Pod.ServiceAccountName (the
// namespace default without one, with no API token mounted), never as the
// orchestrator, except the steps with task.Access (see below).
//
// # Steps' API access
//
// A step whose task has task.Access (task.Task.WithAccess: a deploy
// step that applies manifests and watches them roll out) gets an account
// and rights of its own, made by [kubepod.AccessOf]: a ServiceAccount
// "<pipeline>-<step>-access" (fitted to 63 characters, see
// [kubepod.AccessName]) in the run's namespace and, in each namespace its
// Access names ("" is the run's), a Role of that name with exactly its
// rules and a RoleBinding of that Role to the ServiceAccount (whose
// subject names the run's namespace). Compile emits them after the
// orchestrator's three, ServiceAccounts, then Roles, then RoleBindings,
// each sorted by namespace and name, with the label sluice.dev/step too.
// The step's pod template, and so every Job the orchestrator makes of it
// (each fan-out instance, each retry), runs as that account with
// automountServiceAccountToken true; other steps are unchanged. An
// Access naming another namespace needs Options.Pod.Namespace, for the
// RoleBinding there to name the account with its namespace: without it,
// Lint and Compile report a field error at
// pipeline.tasks[<step>].access[<i>].namespace.
//
// Submit, in the submitting process, makes these objects before the
// orchestrator starts (in-process or in the cluster): it creates what is
// missing and brings an existing Role's rules and RoleBinding's subjects
// to the compiled ones, so a step whose Access changed between runs has
// its new rights, no more. The submitter therefore needs to create and
// update ServiceAccounts, Roles and RoleBindings in those namespaces and
// to hold the rules it grants (RBAC refuses to grant more than one has,
// without the escalate verb); a Forbidden error says so and that someone
// who may can apply them from "prog compile -backend kubejob" instead.
// The orchestrator's Role is unchanged: the in-cluster orchestrator never
// grants anything.
//
// # Resources
//
// Each Job's pod is the step's pod from [kubepod.Spec], a deep copy of
// what the Plan holds. It carries the step's resolved requests and limits (GPUs as
// nvidia.com/gpu, MIG slices per the device plugin strategy, as
// resources.Resolve names them), node selector, tolerations and affinity,
// spot placement included. Shared memory is a memory-backed emptyDir at
// /dev/shm with the size as its limit. A timeout is the pod's
// activeDeadlineSeconds, rounded up to a whole second, so it bounds each
// attempt; a pod that runs out of time fails as an application failure.
// Pods run secure by default and pass Pod Security "restricted":
// runAsNonRoot, RuntimeDefault seccomp, no privilege escalation, all
// capabilities dropped ([kubepod.RestrictedPodSecurityContext] and
// [kubepod.RestrictedSecurityContext]; replace them with
// Options.Pod.PodSecurityContext and Options.Pod.SecurityContext). The
// image must run as a non-root user, or the task must say which user it
// runs as with a security override (task.WithSecurity), set over these
// contexts on its pod. Submit refuses, before creating anything, a run
// with a task whose override fails the Pod Security level its namespace
// enforces (a task running as root in a "restricted" namespace), which
// Compile warns about (kubepod.SecurityWarnings). Finished Jobs are deleted after Options.TTLSecondsAfterFinished (a day
// by default).
//
// # Retries
//
// A Job's backoffLimit is the step's App budget: the Job controller
// retries application failures itself (a task's error, a non-zero exit).
// Its podFailurePolicy has the rules, first match wins, one rule each so
// that the rule alone says what happened:
//
//  0. FailJob for a pod with the DisruptionTarget condition (preemption,
//     eviction, node drain or loss);
//  1. FailJob when a Go task's container exits 3 (the task returned an
//     error wrapping task.ErrInfrastructure, see
//     [backends.ExitInfrastructure]);
//  2. FailJob when a Go task's container exits 2 (a wrong invocation,
//     never retried, see [backends.InvokeCommand]);
//  3. FailJob when the container exits 143 (stopped by SIGTERM, see
//     [backends.ExitTerminated]: a pod deleted, or out of time); for a
//     container task this is rule 1, and its other exit statuses are its
//     own;
//  4. any other failure counts against backoffLimit.
//
// A FailJob rule so ends the Job, and the orchestrator decides on the
// retry from the Job's Failed condition (reason PodFailurePolicy, "…
// matching FailJob rule at index N"), which names the rule and the pod:
// the decision does not need the pod, which an eviction or a deletion
// removes as soon as the Job controller has counted it. When the pod is
// still there (or a read finds it), it gives the attempt's message and
// times, and it tells a timeout from a stop: a pod past its
// activeDeadlineSeconds is stopped by SIGTERM too, but its reason is
// DeadlineExceeded, an application failure. An infrastructure failure
// (a disruption, exit status 3, or 143 without the deadline) is retried
// while the Infra budget lasts, a timeout while the App budget does: the
// orchestrator creates the step's next Job, "<run>-<step>-r<k>", after
// the step's Retry.Backoff (timed from when it saw the failure), with the
// App budget that is left as its backoffLimit. With OnDemandFallback on
// a preemptible step, the Jobs created after the Infra-th
// infrastructure failure get the on-demand placement
// ([resources.Resolved].OnDemand, also recorded in the annotation
// sluice.dev/on-demand-placement) and the label sluice.dev/on-demand,
// and their attempts are marked OnDemand.
//
// With Retry.PendingTimeout, a pod that the scheduler cannot place
// (PodScheduled=False, reason Unschedulable) for that long, timed from
// when the orchestrator first saw it so on its own clock, is an
// infrastructure failure "unschedulable for D: <the scheduler's
// message>": the orchestrator records the Job's attempts in the run's
// record, deletes the Job and, while the Infra budget lasts, creates the
// next one after the backoff, so the on-demand fall-back applies to spot
// capacity that never comes. Without Infra budget left the step fails
// with that message. A resumed orchestrator times a pod that is still
// unschedulable afresh. On a busy cluster a pod also waits unschedulable
// for capacity that other pods hold, so set the timeout above how long
// such waits take.
//
// Why not Ignore disruptions, as the Job controller allows? It would
// replace a preempted pod at once, before the orchestrator has counted the
// preemption, so neither the Infra budget nor the on-demand fall-back
// could be applied without killing a pod that is already starting.
//
// podReplacementPolicy is Failed, so a replacement pod starts only once
// the failed one has terminated, and restartPolicy is Never, as
// podFailurePolicy requires. Within a Job the controller spaces
// application retries with its own exponential backoff (10s doubling,
// capped at 6 minutes), not the step's Retry.Backoff; a timeout's retry,
// a Job of its own, waits the step's Retry.Backoff.
//
// A run's attempts are the pods of a step's Jobs, oldest first (a pod
// that is gone, from its Job's Failed condition): Reason infra for a
// disrupted pod, a Go task's exit status 3 or any task's 143, app for
// any other failure and for a pod past its deadline. The message is the
// termination message: for a Go task the task's error as the task mode
// writes it ([backends.TerminationLogEnv]), the message the local backend
// reports; for a container task what it wrote there, else the tail of
// its log (terminationMessagePolicy FallbackToLogsOnError). A disrupted
// pod's message is the condition's ("disrupted (EvictionByEvictionAPI):
// …"), a timed-out one's "timed out after D".
//
// A step succeeds as soon as its Job's pod has Succeeded (its output is
// in its termination message), without waiting for the Job's Complete
// condition, which the Job controller sets only after batching pod
// updates, about a second later: a Job of one completion whose pod
// succeeded cannot fail any more. A resumed orchestrator decides the same
// from the same pod. The run itself ends once those Jobs are marked
// Complete too, so that nothing of a finished run looks unfinished; its
// Finished time is still its last step's.
//
// # Caching
//
// A cached step's key is the one every backend computes
// ([backends.NewCacheKeyParts]); its output is kept in the ConfigMap
// "sluice-cache-<key>" (labels sluice.dev/pipeline and sluice.dev/cache),
// which no run owns, so it outlives the runs. Before creating a cached
// step's Job the orchestrator looks the key up; a hit ends the step
// Cached with that output, without a Job.
//
// # Outputs
//
// A Go task runs the step's image (or Options.Pod.Image) with the arguments of
// [backends.InvokeArgs] (after Options.Pod.Command, if set) and writes its
// JSON output to its termination message, /dev/termination-log, where
// the orchestrator reads it from the pod's status. The kubelet keeps at most 4 KiB
// ([MaxTerminationMessage]) of it, the last bytes of a longer one, so a
// larger output would lose its start. So the task mode is told the limit
// ([backends.InlineMaxEnv]) and stores the largest parts of a longer
// output in the run's artifact store (see package artifact, "Values too
// large to travel in-band"); the orchestrator reads them back where it
// must look inside (a ref to a field of one, a fan-out over one), passes
// them on as they are otherwise, never caches an output holding them, and
// deletes them when the run ends. Without a store such an output fails
// the step and says to set one. The run's final status (what Watch
// returns and its last progress) holds every output whole, as the local
// backend's does (equal as JSON; an object whose parts were stored has
// its keys sorted): the orchestrator reads the values back into it
// before deleting them, and only into it, never into a Job or the run's
// record. The statuses before the end show the outputs as they
// travelled. Watching a run orchestrated in the cluster
// (Options.InCluster), the submitter reads each step's values back as
// soon as it sees the step succeed, before the in-cluster orchestrator
// can delete them. An orchestrator keeps the values it read back (these,
// and a fan-out's items) in memory until the run ends. Values
// already deleted when an orchestrator looks (Submit resuming a run that
// had ended, or a submitter that started watching after it ended) cannot
// be read back: such an output keeps its references, which name the
// deleted artifacts, and the orchestrator logs why; a fan-out over such
// a value then fails when the run is resumed. An empty
// termination message fails the step with "the container wrote no
// output" (a Go task's program always writes one, "{}" at least; the
// message is empty when the container runs some other program), and so
// does an empty output file of a container task whose output field is not
// a string (for a string field it is ""). A Go task's input travels as a
// command-line argument, which Linux caps at 128 KiB; Compile fails with
// an error wrapping [ErrTooLarge] when the input template alone is
// larger (and the step fails when its resolved input is). A container
// task's one output file is its container's terminationMessagePath, so
// the kubelet reads it as the termination message; a container task with
// more than one output field is an error wrapping errors.ErrUnsupported
// (give it an output type with one field, which may hold an object).
//
// # Artifacts
//
// The run's artifact store (pipeline.Options.Artifacts, the -artifacts
// flag) reaches each Go task's pod as [backends.ArtifactsEnv], with the
// run's id and the fan-out instance's index, so its artifacts land at
// <root>/<pipeline>/<run>/<step>[/<instance>]/<name>. The store must be
// one every pod reaches: a bucket (a mem:// store is a Compile error).
// The pods' credentials come from their service account (EKS IRSA or Pod
// Identity, GKE or Azure Workload Identity) or from the Secret that
// Options.Pod.ArtifactSecret names, as envFrom; no value is in a Job.
// The orchestrator reaches the store too, with the credentials of its
// own environment.
//
// # Templates
//
// The compiled Jobs are templates of what the orchestrator creates:
// suspended, marked with the annotation sluice.dev/template. A Go task's
// input argument (and, for a container task, the sluice.dev/input
// annotation) shows the step's input template with each run-time value as
// a ${REF} placeholder: ${train} for a step's output, ${stats.count} for a
// field of it, ${params.lr} for a parameter, ${item} for the element of a
// fan-out, ${run} for the exit handler's RunInfo, ${runID},
// ${runStarted} and ${runScheduled} for the run's facts (the run id, the
// creation of the run's record, and the time the run is for, which the
// record keeps when Submit was given one); constants are inline. A
// container task's command, args and env keep their {{.Field}}
// placeholders, which the orchestrator fills in from the resolved input;
// their {{outputs.Field}} placeholders are the outputs' paths in the
// container.
// The Jobs also record the run's structure for people and tools:
// sluice.dev/depends-on (a JSON list of step names), sluice.dev/when,
// sluice.dev/for-each, sluice.dev/exit-handler, sluice.dev/retry,
// sluice.dev/on-demand-placement and sluice.dev/cache. Applied by hand they sit
// suspended and run nothing, and an orchestrator that finds one under a
// step's name fails the step with the command that removes it. To run a
// compiled pipeline in the cluster without this program on your machine,
// compile with Options.InCluster and apply the ServiceAccount, Role,
// RoleBinding, those of the steps with task.Access, and the
// orchestrator's Job.
//
// # As
//
// kubejob exposes these types for As:
//   - Artifact: *[]*batchv1.Job (all the Jobs, in document order),
//     **rbacv1.Role, **rbacv1.RoleBinding, **corev1.ServiceAccount (the
//     orchestrator's), **kubepod.Access (the steps' with task.Access,
//     when there are any) and **backends.Plan.
//   - CompileOptions.BeforeEmit: the same; changes to the objects show in
//     Documents (the list of Jobs itself cannot be changed).
//
// batchv1, rbacv1 and corev1 are k8s.io/api/batch/v1, k8s.io/api/rbac/v1
// and k8s.io/api/core/v1.
//
// A Backend is safe for concurrent use.
package kubejob

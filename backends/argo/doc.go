// Package argo compiles pipelines to Argo Workflows (argoproj.io/v1alpha1
// Workflow, WorkflowTemplate or CronWorkflow, built from Argo's Go types
// and rendered by [kubepod.Render]) and runs them through Argo's typed
// clientset. It is the only Sluice package that imports Argo. Output
// follows Argo v3.7 and emits only fields that v3.7 and v4 both accept
// (schedules, never schedule). Each step's container, volumes, placement
// and deadline come from the pod layer every Kubernetes backend shares,
// [kubepod.Spec], and the settings of those pods from [Options].Pod, a
// [kubepod.Options].
//
//	opts := &argo.Options{Pod: kubepod.Options{
//		Image:   "registry.example/prog:v1", // the image holding the pipeline program
//		Command: []string{"/ko-app/prog"},   // the program in the image
//	}}
//	b := argo.New(nil, opts)            // connects on the first run, by the kubeconfig
//	pipeline.Main(p, local.New(nil), b) // prog compile|run -backend argo
//
// Compiling never contacts a cluster. Without a client, the first call
// that needs one (Submit, Watch, Cancel, Schedule…) connects by the
// kubeconfig rules ($KUBECONFIG, ~/.kube/config, then a pod's service
// account), builds the Kubernetes client of the Pod Security check too and
// takes the kubeconfig context's namespace when Options.Pod.Namespace is
// empty; [NewFromKubeconfig] does the same at once, from a given file.
//
// # The workflow
//
// The entrypoint is the DAG template "main" with failFast false, so steps
// that do not depend on a failure keep running, as on the local backend.
// Each step is one DAG task. Its depends lists every upstream step X that
// has a condition as "X.Succeeded" (Argo's bare "X" also accepts a Skipped
// X) and any other as a bare "X", which is the same there: only a task
// with a condition ends Skipped. A skipped or failed upstream thus leaves
// the task Omitted (reported as Skipped). A condition becomes when: "{{=EXPR}}", an expr-lang expression
// over the decoded JSON values that Argo evaluates to true or false; the
// condition itself goes into the annotation sluice.dev/conditions, from
// which Watch words a skip with the values that decided it, evaluating
// the condition again over the upstream outputs and workflow parameters
// the Workflow holds (and the run's outcome, for the exit handler). A
// value a task stored out of band (artifact.Promote) is in the artifact
// store, which Watch does not read for this: such a skip says
// "condition … is false" without values. The exit handler is the DAG
// template "exit", named by onExit.
//
// A Go task runs the step's image (or Options.Pod.Image) with the command
// Options.Pod.Command, the path of the pipeline program in the image
// (/ko-app/prog for an image built with "ko build ./cmd/prog"), and the
// arguments of [backends.InvokeArgs]: "task -step NAME -input JSON
// -output-file /tmp/sluice/output.json", with terminationMessagePath
// /dev/termination-log and SLUICE_TERMINATION_LOG naming it
// ([backends.TerminationLogEnv]): a failed task writes its error there,
// and Argo appends it to the node's message. Every template must carry its
// command: without one, Argo's controller looks the image's entrypoint
// up in the registry before creating the pod, which fails for offline
// and private registries ("failed to look-up entrypoint/cmd for image"),
// so Compile fails when a plan has Go tasks and Options.Pod.Command is not
// set, and when a container task has no command (a Required error at
// pipeline.tasks[NAME].command), unless CompileOptions.BeforeEmit gave
// the template one. NAME is the
// template parameter "step", whose default is {{tasks.name}}, the name of
// the DAG task calling the template (Argo substitutes it into the default
// before the parameters into the template), so steps sharing a template
// pass only their input; a fan-out instance or a step renamed (see
// Naming) passes its name. The
// input is the parameter "i", a JSON document in which Argo substitutes
// the refs: a step's output is {{tasks.X.outputs.parameters.o}}, a
// parameter
// {{workflow.parameters.NAME}} ({{=toJson(workflow.parameters['NAME'])}}
// for a string parameter, see below), a field of either an expression
// {{=toJson(fromJSON(...)['Field'])}}, the exit handler's RunInfo an
// expression over workflow.status and workflow.failures. The run's facts
// are Argo's own variables: pipeline.RunID is {{workflow.name}} (the run
// id is the Workflow's name), pipeline.RunStarted
// workflow.creationTimestamp, and pipeline.RunScheduled
// workflow.scheduledTime, which Argo sets only on a Workflow that a
// CronWorkflow started (from the annotation
// workflows.argoproj.io/scheduled-time, which Submit also sets for
// SubmitOptions.Scheduled), else workflow.creationTimestamp; both times
// are converted to UTC with sprig (the controller formats them in its
// own zone, a CronWorkflow in its timezone). The output is
// the output parameter "o", read from the file (valueFrom.path). (Both
// names are one letter because every step and every ref repeats them.)
// Literal "{{" in inputs, and in the items of a fan-out, is escaped as
// "{\u007b", so compiled user data is never templated. (Argo substitutes
// a pod's spec once more before creating it, so a value computed at run
// time that holds the tag of a variable Argo knows, such as
// "{{pod.name}}", is replaced there; other "{{" pass through.)
//
// A string parameter (one whose type's kind is string) is stored as its
// text: label defaults to "base", which is what Argo's UI shows and what
// a user edits, and argo submit -p label=tuned gives the string tuned;
// the refs to it encode it as JSON where the workflow needs JSON (toJson
// in a Go task's input, the text itself in a container's placeholder and
// in a condition). Every other parameter holds JSON: give overrides as
// JSON with the argo CLI (-p lr=0.1, -p cfg='{"epochs":3}'); prog run -p
// does the encoding.
//
// A container task runs its image, command (required, see above) and
// args; each {{.Field}}
// placeholder becomes the template parameter "in-Field" (a string as is,
// anything else as JSON), which Argo fills in, each {{outputs.Field}}
// placeholder the output's path in the container, which Compile writes
// in (Argo never sees it), and each output field the output parameter
// "out-Field" read from its file. A ref to one field reads its parameter
// directly — {{tasks.X.outputs.parameters.out-Field}} for a string's text —
// and a ref to the whole output assembles the object from the parameters
// (a string field is the file's text without one trailing line break,
// which Argo's executor takes off, as the other backends do; any other
// field is parsed as JSON; the
// template's annotation sluice.dev/text-outputs names the string fields
// for Watch). A container task can be cached (see Caching) and fanned out: its
// withParam items are then objects holding each instance's placeholder
// texts, which the wrapper's task passes on with
// {{=fromJSON(item)['Field']}}, and the wrapper assembles the list of
// outputs from the aggregated "out-Field" parameters. A placeholder or
// output field whose JSON name is not a valid Argo parameter name
// (letters, digits, '-' and '_') is an error wrapping
// errors.ErrUnsupported.
//
// Steps whose templates are equal (same image, resources, retries,
// timeout, cache policy…) share one template and differ only in their
// arguments, so the document grows with the number of distinct task
// kinds, plus about 200 bytes per step (the DAG task: its name, depends,
// template and input).
//
// A dynamic fan-out is a task calling the wrapper DAG template
// "each-STEP", whose one task runs with withParam over the list of the
// instances' input documents, computed by an expression from the
// upstream list (so a 1000-wide fan-out compiles to the same size as a
// 10-wide one); the wrapper's parallelism caps how many run at once. Argo
// aggregates a loop's outputs into a JSON list, of objects when every
// output is an object or list and of strings otherwise; the wrapper's
// output expression decodes both forms into the list of outputs in
// element order that the Plan promises ([] for an empty list, where Argo
// skips the loop).
//
// A fan-out's failure tolerance (Fan.Tolerate, Fan.TolerateFraction)
// ends it as on every backend (runstate.FanOutEnd): it succeeds when at
// most the tolerated number of instances failed, computed at run time
// from the number of items as runstate.Tolerated does, with the outputs
// of the instances that succeeded, in element order; otherwise it fails
// and the steps after it are skipped. Argo v3.7 aggregates the outputs
// of a loop's Succeeded children only, so the wrapper counts them; its
// second task "tolerate" (template "noop", a suspend of duration 0, no
// pod) depends on every result of the loop, and its when is true, or
// calls sprig.fail when more instances failed than tolerated, which Argo
// turns into an Error node that fails the wrapper DAG. The wrapper
// template carries the tolerance as AnnotationTolerate, from which Watch
// writes runstate's message, naming every failed instance. A tolerated
// failure does not fail the run; the failed instances' pods still appear
// among Argo's workflow.failures (not among RunInfo.Failed). A container
// fan-out is counted by its first output field, so one without output
// fields cannot tolerate failures (a lint field error wrapping
// errors.ErrUnsupported).
//
// # Naming
//
// Objects are named after the pipeline's DNS-1123 name: a Workflow has
// generateName "<pipeline>-" (Argo makes each run unique) and the label
// sluice.dev/pipeline; a WorkflowTemplate or CronWorkflow is named
// "<pipeline>". DAG tasks are named after steps; a step name that begins
// with a digit, which Argo rejects in tasks that use depends, gets the
// prefix "s-" (the step's own name travels in the task's "step"
// argument, which Watch reports); a step whose prefixed name is another
// step's ("1a" next to "s-1a"), and a pipeline with no step but an exit
// handler (a DAG needs a task), are reported by [Backend.Lint] and
// Compile as field errors, every one at once (see backends.Linter).
// Step templates are named "t1", "t2", …
// in order of first use (every DAG task names its template, so the name
// is kept short), fan-out wrappers "each-<step>". Compiled output is
// deterministic.
//
// # Resources
//
// Each template takes its container, volumes, placement and deadline from
// the step's pod as [kubepod.Spec] builds it, a deep copy of what the Plan
// holds. It carries the step's resolved requests and limits (GPUs as
// nvidia.com/gpu, MIG slices per the device plugin strategy, as
// resources.Resolve names them), node selector, tolerations and affinity.
// Shared memory is a memory-backed emptyDir at /dev/shm with the size as
// its limit; /tmp/sluice is a writable emptyDir for outputs, in which
// the directory of each output file of a container task exists when its
// command starts (the emptyDir's subdirectory, mounted there). Pods run
// secure by default and pass Pod Security "restricted": runAsNonRoot,
// RuntimeDefault seccomp, no privilege escalation, all capabilities
// dropped ([kubepod.RestrictedPodSecurityContext] and
// [kubepod.RestrictedSecurityContext]; replace them with
// Options.Pod.PodSecurityContext and Options.Pod.SecurityContext). The
// image must run as a non-root user, or the task must say which user it
// runs as with a security override (task.WithSecurity), set over these
// contexts on its pod (the template's pod security context). Submit refuses, before creating anything, a run
// with a task whose override fails the Pod Security level its namespace
// enforces (a task running as root in a "restricted" namespace), which
// Compile warns about (kubepod.SecurityWarnings). Argo's
// own init and wait containers are configured in the controller (see Pod
// Security).
//
// # Pod Security
//
// Argo's workflow controller adds an init and a wait container (the
// executor) to every pod, with the security context of the "executor"
// entry of its ConfigMap, workflow-controller-configmap. In a namespace
// that enforces Pod Security "restricted" (the label
// pod-security.kubernetes.io/enforce=restricted) the API server refuses
// every pod unless the controller is configured with an executor security
// context that passes too. Add this entry to the ConfigMap's data (or to
// the YAML of its key "config", if it has one; [RestrictedExecutorConfig]
// holds it):
//
//	executor:
//	  securityContext:
//	    runAsNonRoot: true
//	    runAsUser: 8737
//	    allowPrivilegeEscalation: false
//	    capabilities: {drop: [ALL]}
//	    seccompProfile: {type: RuntimeDefault}
//
// Submit and Schedule check it where they can read it: with
// Options.KubeClient (NewFromKubeconfig and a Backend built from the
// kubeconfig set it), when the namespace of
// the run enforces "restricted" and the ConfigMap in
// Options.ControllerNamespace ("argo") has no executor security context
// that passes (together with the workflow's pod security context), they
// fail before creating anything, with an error that says what to add. A namespace or ConfigMap they may not read (Forbidden)
// or cannot find is not checked. [CheckExecutorConfig] is the check, on a
// ConfigMap's data.
//
// Run the controller with ARGO_POD_STATUS_CAPTURE_FINALIZER=true too: pods
// then keep a finalizer until the controller has read their final status.
// Without it, a pod evicted and removed at once can vanish before the
// controller saw it fail; Argo then resubmits it or marks the node "pod
// deleted" instead of applying the retry expression to how it ended.
//
// # Retries
//
// A retry policy becomes a retryStrategy with limit App+Infra, retryPolicy
// Always and an expression that tells the two kinds of failure apart from
// the last attempt. Infrastructure failures are a pod that Argo marks
// Error (deleted, lost with its node, or failed before its main container
// ran), a pod evicted, a main container that exited with status 3
// ([backends.ExitInfrastructure]: the task returned an error wrapping
// task.ErrInfrastructure), and one that exited with status 143
// ([backends.ExitTerminated]: SIGTERM stopped it, as deleting or evicting
// the pod, draining or preempting its node do) unless the node's message
// is the kubelet's for a pod past its deadline ("Pod was active on the
// node longer than the specified deadline"; the kubelet stops such a pod
// with SIGTERM too). Any other failure, a non-zero exit or running out of
// time (Argo marks these Failed), is an application failure.
//
// A failure no retry can mend is not retried, whatever the budgets: a Go
// task's exit status 2 (a wrong invocation, see [backends.InvokeCommand];
// for a container task 2 is an exit status like any other), and an Error
// node whose message shows a permanent error: the controller could not
// look the image's entrypoint up ("failed to look-up entrypoint/cmd"),
// the image cannot be pulled (ErrImagePull, ImagePullBackOff,
// InvalidImageName, ErrImageNeverPull) or the API server rejected the pod
// ("is invalid", "is forbidden", "violates PodSecurity"; Argo requeues
// quota and other transient refusals without failing the node). The
// expression reads Argo v3.7's lastRetry.status, lastRetry.exitCode and
// lastRetry.message. The backoff is duration
// Initial, a whole-number factor (a fractional Factor is a lint field
// error, which wraps errors.ErrUnsupported) and cap Max.
//
// Retry.PendingTimeout is a lint field error wrapping
// errors.ErrUnsupported: Argo
// v3.7 has no timeout for a pod that stays Pending (a template's timeout
// also counts the time the pod runs, and activeDeadlineSeconds starts
// only once it runs), and ignoring it would leave a run waiting forever
// for capacity the user asked to give up on. An unschedulable pod's node
// stays Pending with the scheduler's message ("Unschedulable: 0/3 nodes
// are available: …"), which Watch reports as the step's message while it
// waits. When Cancel ends such a step, Argo marks the node failed by the
// shutdown and the scheduler's words are gone from the Workflow; the
// Watch that saw the pod wait keeps them: "canceled while unschedulable:
// 0/3 nodes are available: …" (runstate.CanceledWaiting), on the step and
// its attempt. A Watch started after the run ended says "canceled".
//
// Argo keeps one retry count per step, not one per budget, so the
// semantics differ from the local backend's in one way: an application
// failure is retried only while fewer than App retries (of any kind) have
// been made, and an infrastructure failure while the limit allows. A bug
// is never retried more than App times, and preemptions get at least
// Infra retries, but an application failure after preemptions may find
// its budget used up (App: 1, Infra: 2 failing infra, app: not retried),
// and preemptions may use App budget the step did not use (App: 1, Infra:
// 1 failing infra, infra: retried). The template of such a step (both
// budgets set) carries the annotation sluice.dev/shared-retry-count. A
// property test holds the compiled expressions to package runstate's
// rules on random plans and failure scripts, and to exactly this
// difference where they part.
//
// With OnDemandFallback on a preemptible step, the template's
// podSpecPatch is an expression on the retry count that, from the
// Infra-th retry on, removes the spot node selector and tolerations and
// applies the on-demand placement. Since Argo cannot count preemptions
// alone, the fall-back may come earlier than on the local backend when
// application failures were among the retries. The attempts that fell
// back are marked OnDemand in the run status.
//
// A timeout becomes the template's activeDeadlineSeconds, rounded up to a
// whole second, and the declared timeout its annotation sluice.dev/timeout;
// a pod that runs out of time fails as an application failure, "timed out
// after 150ms" as on the local backend.
//
// # Caching
//
// A cached step's template is memoized in the ConfigMap
// Options.CacheConfigMap ("sluice-cache"). A cached container step also
// gets its whole input document as the parameter "i", for the key. The
// key is the one the local
// backend uses: the hex SHA-256 of the same key parts (task name, kind,
// image, command, args, env, outputs, cache version and the input without
// the excluded fields, object keys sorted), computed by an expression with
// sprig.sha256sum. The image is the effective one (Options.Pod.Image for a Go
// task that names none). Argo re-encodes numbers of the input through
// float64, so a number written differently (1e2 for 100) or beyond 2^53
// gives another key than on the local backend; for the usual inputs the
// keys are equal. An artifact in the input counts by its whole
// description on Argo, its URI included, where the other backends count
// its bytes (artifact.Canonical): the same data written by another run is
// a miss on Argo. Hits are reported with the phase Cached and no attempt.
//
// # Artifacts
//
// The run's artifact store (pipeline.Options.Artifacts, the -artifacts
// flag) reaches each Go task's pod as [backends.ArtifactsEnv], with the
// workflow's name as the run's id and a fan-out instance's index, so its
// artifacts land at <root>/<pipeline>/<run>/<step>[/<instance>]/<name>;
// a mem:// store is a Compile error. The pods' credentials come from the
// service account or from the Secret Options.Pod.ArtifactSecret names.
//
// A Go task's output travels in a workflow parameter; the task mode keeps
// it under [MaxInlineOutput] (16 KiB) by storing its largest parts in the
// store (package artifact, "Values too large to travel in-band"), so that
// many steps fit Argo's 1 MiB object. A step whose output a fan-out
// iterates over may keep [MaxInlineItems] (256 KiB) in-band, because Argo
// expands the list from the parameter itself; Compile warns about every
// such fan-out ([backends.Warner]). Argo evaluates refs in its
// controller, which cannot read the store: a ref into a part that was
// stored out of band fails (take the whole field as the input instead).
// Watch deletes a run's stored parts when it sees the run end, after
// reading them back into the status it returns (and gives as its last
// progress): the final status holds every output whole — a step's, a
// fan-out instance's and a fan-out's collected list — as the local
// backend's does (equal as JSON; an object whose parts were stored has
// its keys sorted), while the Workflow, and the statuses before the end,
// keep the references. The values are read only once: a later Watch of
// the run, or a second Watch racing the first, may find them deleted,
// and then returns those outputs with their references (and logs why);
// Status, which reads only the Workflow, always does.
//
// # Size budget
//
// Compile fails with an error wrapping [ErrTooLarge] when a parameter
// value is larger than Options.MaxParamSize (256 KiB), naming the
// parameter and step, and when the rendered document is larger than
// Options.MaxSize (1 MiB by default; etcd refuses objects over 1.5 MiB)
// and cannot be split into shards (see "# Large pipelines"), naming the
// five largest DAG tasks and templates with their sizes, a task's average,
// why it is not split, and the ways out. A field of a container task's output costs a plain
// {{tasks.X.outputs.parameters.out-F}} tag where a downstream step reads
// it: 374.5 bytes per container task on a random DAG of three reads per
// task (TestBytesPerContainerTask): 2,500 of them fit in the default
// 1 MiB. A Go task's whole output is a plain
// {{tasks.X.outputs.parameters.o}} tag; a field of it is an expression,
// {{=toJson(fromJSON(tasks.X.outputs.parameters.o).F)}}, which Argo's
// controller evaluates, so that the reading step's node (Argo keeps
// every pod's inputs in the Workflow's status) holds the field alone, not
// the whole output: 356 bytes per Go task reading three fields on that
// DAG, 287 reading three whole outputs (BenchmarkUserPath). The
// expression reads numbers as float64: an integer field beyond 2^53
// arrives rounded, where the other backends pass it exactly; read the
// whole output, or carry such a number as a string.
// Inputs computed at run time are not known to Compile:
// a Go task's input travels as a command-line argument, which Linux caps
// at 128 KiB.
//
// # Large pipelines
//
// A Workflow over Options.MaxSize is split into shards instead: runs of
// consecutive steps (in the order they were added, which is an order
// their dependencies allow), each about Options.ShardSize bytes (half of
// MaxSize by default, which leaves a child room for its status). Each
// shard is a WorkflowTemplate ("<pipeline>-<hash>-<k>", the hash of all
// shards, so that another version of the pipeline never runs one of
// these); the run is a parent Workflow whose DAG has a resource step per
// shard. Argo's executor in that step creates the shard's child Workflow
// (labeled [LabelRun] with the parent's name and [LabelShard] with the
// index, owned by the parent, so deleting the parent deletes it) and
// waits for it to end. A shard starts once the shards holding its steps'
// dependencies have succeeded; shards that do not depend on each other
// run at the same time.
//
// Values cross shards through the parent: a shard's DAG exports the
// outputs later shards read (one JSON object by "TASK.PARAM", in the
// child's status.outputs), its resource step reads the object back, and
// the parent passes each later shard the part it reads as a workflow
// argument. These values are in-band, as a task's outputs always are on
// Argo; they count in the parent's status and in the children's
// arguments.
//
// Documents lists, in order: the RBAC of the steps with task.Access and
// the resource steps' ServiceAccount "<pipeline>-shards" with a Role to
// create and watch Workflows in the run's namespace; the shards'
// WorkflowTemplates; the parent Workflow. Submit creates them all; a
// shard's template that exists already is the same one. Watch reports the
// steps of every child in plan order as one run (ShardedStatus); Cancel
// stops the parent and the children. 10,000 container tasks of the
// benchmarks' random DAG (3.8 MB as one Workflow) compile to 7 shards of
// 0.72–0.82 MB and a parent of 271 kB (TestShardedContainerPipeline).
//
// One way a sharded run differs from the same pipeline in one Workflow:
// a shard whose dependency shard failed does not start, so a step in it
// whose own upstream steps succeeded does not run either (its status says
// so: "not run: it is in shard K of the workflow, which did not start
// because a shard it runs after failed"); in one Workflow it runs. A
// smaller ShardSize makes such steps fewer. Not split, and kept to the
// budget: a WorkflowTemplate or CronWorkflow (Options.Kind), a pipeline
// with an exit handler, and a compile with CompileOptions.BeforeEmit,
// which edits one Workflow. The trace context Submit passes to a run's
// pods does not reach the children's.
//
// # As
//
// argo exposes these types for As:
//   - Artifact: *wfv1.Workflow (pass a **wfv1.Workflow; the parent of a
//     sharded run), or *wfv1.WorkflowTemplate / *wfv1.CronWorkflow for
//     those kinds, the shards' []*wfv1.WorkflowTemplate (pass a
//     *[]*wfv1.WorkflowTemplate) of a sharded run,
//     *kubepod.Access (pass a **kubepod.Access; the RBAC of the steps with
//     task.Access, when there are any) and *backends.Plan (pass a
//     **backends.Plan).
//   - CompileOptions.BeforeEmit: the same; changes show in Documents.
//
// wfv1 is github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1.
//
// # Steps' API access
//
// A step whose task has task.Access (task.Task.WithAccess) gets an
// account and rights of its own, made by [kubepod.AccessOf]: a
// ServiceAccount "<pipeline>-<step>-access" (fitted to 63 characters,
// [kubepod.AccessName]) in the run's namespace and, in each namespace its
// Access names ("" is the run's), a Role of that name with exactly its
// rules and a RoleBinding of it to the ServiceAccount in the run's
// namespace. Argo's executor (the init and wait containers) shares the
// pod's account, so the Role in the run's namespace also grants what it
// needs there: argoproj.io workflowtaskresults create and patch. Compile
// emits them as documents of their own before the Workflow (or
// WorkflowTemplate or CronWorkflow): ServiceAccounts, then Roles, then
// RoleBindings, each sorted by namespace and name. The step's template
// (one per such step, shared by its fan-out instances and retries) sets
// serviceAccountName to the account and automountServiceAccountToken
// true; the other templates, and the workflow's service account, are
// unchanged. An Access naming another namespace needs
// Options.Pod.Namespace (for the RoleBinding there to name the account
// with its namespace); without it, Lint and Compile report a field error
// at pipeline.tasks[<step>].access[<i>].namespace.
//
// Submit and Schedule make these objects before the Workflow or
// CronWorkflow, through the Kubernetes client (Options.KubeClient; an
// error without one): they create what is missing and bring an existing
// Role's rules and RoleBinding's subjects to the compiled ones. That
// needs the right to create and update them, and to hold the rules they
// grant (or the escalate verb); a Forbidden error says so, creates no
// Workflow, and says that someone who may can apply them from "prog
// compile -backend argo" instead. The workflow's own service account and
// the executor's RBAC of other steps stay as they are.
//
// # Schedules
//
// With Options.Kind KindCronWorkflow and Options.Cron, Compile emits a
// CronWorkflow named after the pipeline: its schedules (always the plural
// field), time zone, concurrency policy (Allow, Forbid or Replace), a
// starting deadline, history limits and a stop strategy (an expression
// such as "cronworkflow.failed >= 3" after which Argo stops scheduling).
// The workflows it starts carry the label sluice.dev/pipeline.
// [Backend.Schedule] creates it or replaces the existing one's spec;
// [Backend.SuspendSchedule] pauses and resumes it; [Backend.Unschedule]
// removes it: it deletes the CronWorkflow leaving the runs it started,
// succeeds when it is already gone, retries transient API errors and
// returns only once a read shows it gone (or being deleted), so a
// removed schedule starts nothing more.
//
// # Submitting
//
// Submit creates the Workflow (only that kind can be submitted) in
// Options.Pod.Namespace (see above; "default" otherwise) and returns its generated name as the run
// id; SubmitOptions.RunID names it instead. When Submit's context holds a
// span, every container gets its W3C traceparent as TRACEPARENT, so the
// tasks' spans (see the task-invocation mode) join the submitting
// program's trace. Watch reads the Workflow and follows it with a watch,
// reading and watching again when the watch drops and retrying transient
// API errors with backoff, and maps its nodes onto [backends.RunStatus]:
// steps in plan order and the exit handler last, in package runstate's
// words (why a step was skipped or canceled, how a step, a fan-out and the
// run failed), from the nodes and the annotations Compile leaves for it
// (sluice.dev/conditions, sluice.dev/infra-retries); Skipped and Omitted
// nodes as Skipped; memoization hits as Cached; fan-out instances as
// "step[i]";
// each retry child as an attempt whose reason is infra for an Error node,
// an eviction, exit status 3 or exit status 143 without a deadline, and
// app otherwise, and whose message, for a Go task whose main container
// failed with a termination message, is that message alone (the task's
// error, as the local backend reports it: Argo's "main: Error (exit code
// 1): " before it is left out), else Argo's; outputs from the output
// parameters. Cancel patches spec.shutdown to Stop, retrying transient API
// errors (Submit does not: a create with generateName is not idempotent):
// Argo stops running pods, starts nothing new and still runs the exit
// handler. Argo has no phase for a run that was shut down (it ends
// Failed), so Watch reports a Workflow with spec.shutdown set that did not
// succeed as Canceled, its nodes stopped by the shutdown (their message
// names the strategy) and the steps omitted after them as Canceled. The
// exit handler's RunInfo says Canceled likewise, from the messages in
// workflow.failures, and lists as failed only the steps that failed on
// their own.
//
// A Backend is safe for concurrent use.
package argo

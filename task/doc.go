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
// replaced by fields of the input (strings as is, other values as JSON).
// Each exported field of Out is read from a file the container writes: by
// default [OutputDir]/<json name>, JSON or, for a string field, raw text.
// A {{outputs.Field}} placeholder is the path of that file where the
// command must write it, which differs by backend: the path in the
// container on kubejob and Argo (Spec.Outputs), a host path under the
// attempt's output directory on the local backend, whose host runner
// runs the command as a host process. On every backend the file's
// directory exists when the command starts. So a script never hard-codes
// it:
//
//	WithCommand("/bin/sh", "-c", `train "$1" > "$2"`, "sh").
//	WithArgs("{{.Data}}", "{{outputs.Model}}")
//
// Both name a field by its Go or JSON name, and Validate reports a name
// that is no field of In (for {{.Field}}) or Out (for {{outputs.Field}}),
// with the closest one. The two cannot collide: as in text/template, the
// leading dot means "a field of the input", so {{.Outputs}} is an input
// field even of an input with a field named Outputs, and {{outputs.X}},
// without the dot, never is. No other template syntax is allowed, so every
// backend can render them (Argo fills {{.Field}} from its parameters;
// Sluice writes the output paths in when it compiles).
//
// # Security
//
// On the Kubernetes backends a task's pod runs Pod Security "restricted"
// by default: non-root, no privilege escalation, every capability dropped,
// RuntimeDefault seccomp. An image that must run as a given user, with
// given groups or a read-only root filesystem gets a per-task override,
// [Task.WithSecurity] with a [Security], set over that default one field
// at a time:
//
//	WithSecurity(task.Security{RunAsUser: ptr.To[int64](0)}) // an image that runs as root
//
// Running as root (RunAsUser 0, or RunAsNonRoot false) fails
// "restricted": the pod needs a namespace that enforces "baseline" (or
// "privileged"), and compile and lint warn about it; every other setting
// passes "restricted". Validate rejects contradictions (RunAsNonRoot true
// with RunAsUser 0) and IDs Kubernetes would reject. The local backend
// runs container tasks as host processes of the current user and ignores
// the override, as it ignores the image.
//
// # Kubernetes API access
//
// A task whose code uses the Kubernetes API of the cluster it runs in (a
// deploy step that applies a Deployment and watches it roll out) says
// what it does with it, as the rules of a namespaced Role, with
// [Task.WithAccess] and one [Access] per namespace:
//
//	WithAccess(
//		task.Access{Rules: []rbacv1.PolicyRule{ // the run's namespace
//			{APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"get", "list"}},
//		}},
//		task.Access{Namespace: "sluice-prod", Rules: []rbacv1.PolicyRule{
//			{APIGroups: []string{"apps"}, Resources: []string{"deployments"}, Verbs: []string{"get", "list", "watch", "create", "patch"}},
//		}},
//	)
//
// The Kubernetes backends then give that step's pod a ServiceAccount of
// its own with its token mounted, and emit, next to the other compiled
// objects, a Role with exactly those rules in each namespace and a
// RoleBinding to the account; Submit creates them (see "# Steps' API
// access" in the kubejob and argo package docs). Every other step runs
// as before, by default without any API token. Validate keeps the
// rights least: every rule names its apiGroups, resources and verbs, with
// no wildcard ("*") and no nonResourceURLs, and a namespace is a DNS-1123
// label; errors carry paths such as
// pipeline.tasks[deploy].access[0].rules[1].verbs. Go and container tasks
// alike may have Access. The local backend ignores it: a local task runs
// in the user's process, with the user's kubeconfig.
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
// into its engine's own parameter syntax, and [OutputPlaceholders] the
// {{outputs.Field}} ones, whose paths [Spec.OutputPath] gives. A backend
// that starts containers itself fills both with backends.RenderCommand
// instead.
package task

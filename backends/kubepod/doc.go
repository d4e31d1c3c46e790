// Package kubepod is the one layer that turns a step of a [backends.Plan]
// into a Kubernetes pod: the Kubernetes backends (argo, kubejob) build
// their pods through it, and so can a third party's backend that runs
// steps as pods (a Kueue, Ray or Volcano backend, say), with the same
// images, resources, placement, security defaults and task-mode command.
//
// It is a public package, not internal/, for two reasons. The backends'
// Options hold its [Options] (argo.Options.Pod, kubejob.Options.Pod), so
// users must be able to name the type in a struct literal, which a type
// in an internal package does not allow. And backends are meant to be
// written outside this module (see package backends), so the layer that
// makes every Kubernetes backend's pods alike belongs on the seam, next
// to the Plan it reads. It imports backends, task, Kubernetes' API types
// and apimachinery: no client-go, no Argo. Its functions are safe for
// concurrent use and do not modify their arguments.
//
// # Pods
//
// [Spec] returns the pod of one step: one container with the step's
// image, requests and limits, the task-mode command of a Go task (or a
// container task's command), a memory-backed /dev/shm when the profile
// asks for shared memory, the profile's placement (node selector,
// tolerations, affinity), the step's timeout as activeDeadlineSeconds
// and the security contexts of [Options]. What it returns is a deep copy:
// nothing in it is shared with the Plan or the Options, so a
// backends.CompileOptions.BeforeEmit hook may edit an emitted object
// without changing the Plan or the next compile. A backend takes the
// fields its target has (an Argo template has no restartPolicy of its
// own) and adds its own (Job labels, Argo parameters).
//
// # Images
//
// A Go task runs the pipeline program in task mode (see
// [backends.InvokeCommand]), so its image is the image holding that
// program. [Options.Image] is the one setting for it; a task's own image
// (task.Task.WithImage) wins. There is deliberately no pipeline-level
// default: which image holds the program, and where in it the program is
// ([Options.Command]), say how the program was built and pushed for a
// cluster, not what the pipeline computes; both belong with the backend
// that starts it, and the local backend needs neither. A Go task with no
// image is an error wrapping [ErrNoImage]. A container task always names
// its own image.
//
// # Security
//
// By default every pod passes Pod Security "restricted": the pod runs as
// non-root with the RuntimeDefault seccomp profile
// ([RestrictedPodSecurityContext]) and its container also drops every
// capability and may not escalate privileges ([RestrictedSecurityContext]).
// Options.PodSecurityContext and Options.SecurityContext replace them.
//
// # Steps' API access
//
// A step whose task has task.Access runs as a ServiceAccount of its own,
// [AccessName] of the pipeline and step, passed to [Spec] as
// Invocation.ServiceAccount, with its token mounted; [AccessOf] returns
// that account and, for each namespace the step's Access names, a Role
// with exactly its rules and a RoleBinding to the account, for a backend
// to emit and make before the step's pod starts ([Access]). A backend
// whose own machinery in the pod shares the account (Argo's executor)
// adds what that needs to the Role of the run's namespace.
//
// # YAML
//
// [Render] writes an API object as YAML deterministically (sorted keys,
// no status, no fields the Go types marshal although they are empty), so
// compiled manifests can be compared with golden files.
//
// # API calls
//
// [Transient] tells an API error worth retrying from one that is not, and
// [Retry] retries a call while its errors are transient, with backoff.
package kubepod

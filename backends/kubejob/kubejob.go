package kubejob

import (
	"context"
	"errors"
	"fmt"
	"sync"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/clock"

	"github.com/sluice-ml/sluice/backends"
	"github.com/sluice-ml/sluice/backends/kubepod"
)

// Labels and annotations on the compiled objects. The orchestrator selects
// a run's Jobs and Pods by the labels and rebuilds the run's structure from
// the annotations, so a restarted orchestrator can resume from cluster
// state.
const (
	// LabelPipeline is the pipeline's DNS-1123 name, on every object.
	LabelPipeline = "sluice.dev/pipeline"
	// LabelRun is the run id, on every Job and its pod template.
	LabelRun = "sluice.dev/run"
	// LabelStep is the step's DNS-1123 name, on every Job and its pod
	// template.
	LabelStep = "sluice.dev/step"

	// AnnotationDependsOn is the JSON list of the steps a Job waits for.
	AnnotationDependsOn = "sluice.dev/depends-on"
	// AnnotationWhen is the step's condition, as [backends.Condition.String]
	// renders it; absent when the step has none.
	AnnotationWhen = "sluice.dev/when"
	// AnnotationForEach is the JSON object {"items": REF, "parallelism": N}
	// of a dynamic fan-out step; absent otherwise.
	AnnotationForEach = "sluice.dev/for-each"
	// AnnotationExitHandler is "true" on the exit handler's Job.
	AnnotationExitHandler = "sluice.dev/exit-handler"
	// AnnotationDisplayName is the task's name as the user wrote it.
	AnnotationDisplayName = "sluice.dev/display-name"
	// AnnotationInput is the step's input template, refs rendered as
	// ${REF} (see "# Naming" and "# Outputs" in the package doc).
	AnnotationInput = "sluice.dev/input"
	// AnnotationRetry is the step's retry policy as JSON (task.Retry).
	AnnotationRetry = "sluice.dev/retry"
	// AnnotationOnDemand is the JSON placement (nodeSelector, tolerations,
	// affinity) of the on-demand fall-back Job; present only when the
	// step is preemptible and its retry policy asks for the fall-back.
	AnnotationOnDemand = "sluice.dev/on-demand-placement"
	// AnnotationCache is the step's cache policy as JSON (task.Cache);
	// present only when caching is enabled.
	AnnotationCache = "sluice.dev/cache"
	// AnnotationOutputs is the JSON list of the files a container task
	// writes its output fields to (task.Output); container tasks only.
	AnnotationOutputs = "sluice.dev/outputs"

	// AnnotationTemplate is "true" on the compiled Jobs, which are
	// templates: suspended, with unresolved inputs. The Jobs the
	// orchestrator creates from them do not carry it.
	AnnotationTemplate = "sluice.dev/template"
	// LabelRole is "orchestrator" on the in-cluster orchestrator's Job
	// and pod.
	LabelRole = "sluice.dev/role"
	// RoleOrchestrator is the value of LabelRole on the orchestrator.
	RoleOrchestrator = "orchestrator"
	// EnvOrchestrator is set to "1" in the in-cluster orchestrator's
	// container: a Backend there orchestrates in its own process even
	// when Options.InCluster is set.
	EnvOrchestrator = "SLUICE_KUBEJOB_ORCHESTRATOR"

	// ContainerName is the name of the one container of every step's pod.
	ContainerName = kubepod.ContainerName
	// DefaultTTLSecondsAfterFinished is how long finished Jobs stay.
	DefaultTTLSecondsAfterFinished = 24 * 60 * 60
	// MaxTerminationMessage is the most the kubelet keeps of a container's
	// termination message (the last bytes of a longer one), and so the
	// largest output a step can return.
	MaxTerminationMessage = 4096
	// MaxInputArg is the largest input argument Compile accepts: Linux
	// caps one command-line argument at 128 KiB.
	MaxInputArg = 128 << 10
)

// The rate limit of the client the Backend builds from the kubeconfig
// when New was given none and the kubeconfig sets none: an orchestrator
// makes about one write per step, plus cache lookups, and creates the
// Jobs of a wide layer or fan-out at once.
const (
	ClientQPS   = 50
	ClientBurst = 100
)

// ErrTooLarge is wrapped by the error Compile returns when a step's input
// template is over MaxInputArg.
var ErrTooLarge = errors.New("kubejob: over the size budget")

// Options configures a Backend. The zero value is ready to use; every
// field's zero value means the default described on it.
type Options struct {
	// Pod holds the settings every Kubernetes backend shares: the
	// namespace, the image and command of Go tasks, the steps' service
	// account, pull policy and security contexts, labels and annotations
	// (see [kubepod.Options]). Here Pod.Namespace is written into every
	// compiled object when set; Pod.ServiceAccountName is the steps'
	// account, not the orchestrator's (see OrchestratorServiceAccount);
	// Pod.Command nil leaves the image's ENTRYPOINT, which must then be
	// the pipeline program; Pod.Labels and Pod.Annotations are added to
	// every compiled object (Labels also to pod templates) and cannot
	// replace the sluice.dev ones.
	Pod kubepod.Options
	// RunID is the run the compiled Jobs belong to; "" means the
	// placeholder "<pipeline>-run" (fitted to 63 characters). It must be
	// a DNS-1123 label.
	RunID string
	// OrchestratorServiceAccount names the ServiceAccount, Role and
	// RoleBinding of the orchestrator; "" means "<pipeline>-orchestrator"
	// (fitted to 63 characters).
	OrchestratorServiceAccount string
	// TTLSecondsAfterFinished is how long a finished Job (and its pods)
	// stays before Kubernetes deletes it; zero means
	// DefaultTTLSecondsAfterFinished and a negative value keeps Jobs until
	// they are deleted by hand. The orchestrator reads outputs from
	// finished pods, so keep it longer than a run may pause.
	TTLSecondsAfterFinished int32
	// InCluster makes the orchestrator run in the cluster as a Job of its
	// own instead of in the submitting process. Compile then also emits
	// that Job ("sluice-run-<run>": this program's "run -backend kubejob
	// -run-id RUN" with the run's parameters, as the orchestrator's
	// ServiceAccount, with Pod.Image and Pod.Command). Submit creates the
	// ServiceAccount, Role and RoleBinding when missing, the run's record
	// and the orchestrator's Job, and returns; Watch follows the run from
	// the cluster without changing it, and Cancel marks the run canceled
	// for the orchestrator to stop. The submitting process may exit at
	// any time. Inside the orchestrator's pod (EnvOrchestrator is set) the
	// same program orchestrates in process.
	InCluster bool
}

// Backend compiles Plans to Kubernetes Jobs and runs them through its
// orchestrator. It implements [backends.Backend], [backends.Namer],
// [backends.Submitter], [backends.Watcher] and [backends.Canceler]. It is
// safe for concurrent use; Close stops the orchestrators it runs.
type Backend struct {
	client kubernetes.Interface
	opts   Options

	// clock is the orchestrators' time source: retry backoffs and pending
	// timeouts are timed and woken by it. nil is the real clock; tests
	// set a fake one.
	clock clock.WithDelayedExecution

	mu        sync.Mutex
	runs      map[string]*orchestrator // by run id: the runs orchestrated here
	connected bool                     // client and ns are set
	closed    bool                     // Close was called
	ns        string                   // the namespace runs use
}

var (
	_ backends.Backend = (*Backend)(nil)
	_ backends.Namer   = (*Backend)(nil)
)

// New returns a Backend. With a nil client, Compile works offline and the
// first Submit connects with the usual rules: $KUBECONFIG, then
// ~/.kube/config, then the in-cluster configuration of a pod (so the same
// program runs from a laptop and as the in-cluster orchestrator). A nil
// opts means defaults.
func New(client kubernetes.Interface, opts *Options) *Backend {
	b := &Backend{client: client}
	if opts != nil {
		b.opts = *opts
	}
	return b
}

// connect returns the Backend's client and namespace, building the client
// from the kubeconfig rules the first time when New was given none. The
// namespace is Options.Pod.Namespace, else the kubeconfig context's, else
// "default".
func (b *Backend) connect() (kubernetes.Interface, string, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.connected {
		return b.client, b.ns, nil
	}
	ns := b.opts.Pod.Namespace
	if b.client == nil {
		cc := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(clientcmd.NewDefaultClientConfigLoadingRules(), &clientcmd.ConfigOverrides{})
		cfg, err := cc.ClientConfig()
		if err != nil {
			return nil, "", fmt.Errorf("kubejob: no Kubernetes client was given and none could be configured from $KUBECONFIG, ~/.kube/config or the pod's service account: %w", err)
		}
		if cfg.QPS == 0 && cfg.Burst == 0 {
			// client-go's defaults (5 requests a second, bursts of 10)
			// would space out the Job creations of a wide layer or fan-out
			// by 200ms each.
			cfg.QPS, cfg.Burst = ClientQPS, ClientBurst
		}
		client, err := kubernetes.NewForConfig(cfg)
		if err != nil {
			return nil, "", fmt.Errorf("kubejob: %w", err)
		}
		b.client = client
		if ns == "" {
			if n, _, err := cc.Namespace(); err == nil {
				ns = n
			}
		}
	}
	if ns == "" {
		ns = "default"
	}
	b.ns, b.connected = ns, true
	return b.client, b.ns, nil
}

// Name returns "kubejob", the name the program entrypoint selects it by.
func (b *Backend) Name() string { return "kubejob" }

// Compile renders plan to a ServiceAccount, Role and RoleBinding for the
// orchestrator and one Job per step (see the package doc). It does not
// contact a cluster.
func (b *Backend) Compile(ctx context.Context, plan *backends.Plan, opts *backends.CompileOptions) (backends.Artifact, error) {
	return b.compile(plan, opts)
}

// compiled is what Compile returns.
type compiled struct {
	plan *backends.Plan
	objs objects
	docs [][]byte
	warn []string
}

// Warnings are the steps whose security override needs a namespace with
// a laxer Pod Security level than "restricted" (see [backends.Warner]).
func (a *compiled) Warnings() []string { return a.warn }

// objects are the compiled objects, in document order.
type objects struct {
	sa   *corev1.ServiceAccount
	role *rbacv1.Role
	rb   *rbacv1.RoleBinding
	// access is the RBAC of the steps with task.Access; nil for none.
	access *kubepod.Access
	jobs   []*batchv1.Job
}

func (a *compiled) Documents() [][]byte {
	out := make([][]byte, len(a.docs))
	for i, d := range a.docs {
		out[i] = append([]byte(nil), d...)
	}
	return out
}

func (a *compiled) As(target any) bool { return a.objs.as(a.plan, target) }

func (o *objects) as(plan *backends.Plan, target any) bool {
	switch t := target.(type) {
	case *[]*batchv1.Job:
		*t = o.jobs
		return true
	case **rbacv1.Role:
		*t = o.role
		return true
	case **rbacv1.RoleBinding:
		*t = o.rb
		return true
	case **corev1.ServiceAccount:
		*t = o.sa
		return true
	case **kubepod.Access:
		if o.access == nil {
			return false
		}
		*t = o.access
		return true
	case **backends.Plan:
		*t = plan
		return true
	}
	return false
}

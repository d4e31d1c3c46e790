package argo

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	"github.com/argoproj/argo-workflows/v3/pkg/client/clientset/versioned"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/sluice-ml/sluice/backends"
	"github.com/sluice-ml/sluice/backends/kubepod"
)

// Kind is the kind of object Compile emits.
type Kind string

const (
	// KindWorkflow is a Workflow: one run per submission (the default).
	KindWorkflow Kind = "Workflow"
	// KindWorkflowTemplate is a WorkflowTemplate named after the pipeline,
	// for runs started by reference (argo submit --from workflowtemplate/NAME).
	KindWorkflowTemplate Kind = "WorkflowTemplate"
	// KindCronWorkflow is a CronWorkflow named after the pipeline, run on
	// the schedules in Options.Cron.
	KindCronWorkflow Kind = "CronWorkflow"
)

// Size limits a compiled document must stay within (see Options).
const (
	// DefaultMaxSize is the largest rendered document Compile accepts: 1 MiB,
	// below etcd's default request limit of 1.5 MiB.
	DefaultMaxSize = 1 << 20
	// DefaultMaxParamSize is the largest parameter value Compile accepts.
	DefaultMaxParamSize = 256 << 10
)

// ErrTooLarge is wrapped by the error Compile returns when the rendered
// document or one of its parameters is over its size budget.
var ErrTooLarge = errors.New("argo: over the size budget")

// Options configures a Backend. The zero value is ready to use; every
// field's zero value means the default described on it.
type Options struct {
	// Pod holds the settings every Kubernetes backend shares (see
	// [kubepod.Options]). Here Pod.Namespace is where runs are submitted
	// and watched; "" means the kubeconfig context's when the Backend
	// builds its client from the kubeconfig (NewFromKubeconfig, or New
	// without a client), else "default"; it is also written into compiled
	// documents when set. Pod.ServiceAccountName "" leaves Argo's default.
	// Pod.Command is required to compile Go tasks: Argo's controller would
	// otherwise look the image's entrypoint up in the registry, which
	// fails for offline and private registries. Pod.Labels and
	// Pod.Annotations are added to the compiled object's metadata (and,
	// for a CronWorkflow, to the workflows it creates).
	Pod kubepod.Options
	// Kind is the kind of object to compile to; "" means KindWorkflow.
	Kind Kind
	// Cron is the schedule of a KindCronWorkflow; required for that kind.
	Cron *CronOptions
	// PodGC says when Argo deletes finished pods; nil leaves Argo's default.
	PodGC *wfv1.PodGC
	// TTL says when Argo deletes finished workflows; nil keeps them.
	TTL *wfv1.TTLStrategy
	// MaxSize is the size budget of a rendered document in bytes; zero
	// means DefaultMaxSize. A Workflow over it is split into shards,
	// each a WorkflowTemplate, run as child Workflows of a parent (see
	// "# Large pipelines" in the package doc).
	MaxSize int
	// ShardSize, when set, splits a Workflow over it (not only one over
	// MaxSize) into shards, each about that many bytes of DAG tasks and
	// templates (a step larger than that is a shard of its own). Zero
	// splits only a Workflow over MaxSize, into shards of half of it,
	// which leaves a child Workflow room for its status.
	ShardSize int
	// MaxParamSize is the size budget of any one parameter value in bytes;
	// zero means DefaultMaxParamSize.
	MaxParamSize int
	// CacheConfigMap is the ConfigMap Argo memoizes cached steps in; ""
	// means "sluice-cache".
	CacheConfigMap string
	// KubeClient, if set, lets Submit and Schedule check that Argo's
	// executor passes the Pod Security level the namespace enforces (see
	// "# Pod Security" in the package doc); nil skips the check.
	// NewFromKubeconfig sets it, and so does the first Submit of a
	// Backend that New gave no client.
	KubeClient kubernetes.Interface
	// ControllerNamespace is the namespace of the workflow controller and
	// its ConfigMap; "" means DefaultControllerNamespace ("argo").
	ControllerNamespace string
}

// CronOptions is the schedule of a CronWorkflow. Only fields that Argo
// v3.7 and v4 both accept are emitted.
type CronOptions struct {
	// Schedules are cron expressions; at least one is required.
	Schedules []string
	// Timezone is an IANA time zone name, for example "Europe/Paris";
	// "" is the controller's time zone.
	Timezone string
	// ConcurrencyPolicy is Allow (the default), Forbid or Replace.
	ConcurrencyPolicy wfv1.ConcurrencyPolicy
	// StartingDeadlineSeconds, if set, skips runs that could not start
	// within that many seconds of their schedule.
	StartingDeadlineSeconds *int64
	// SuccessfulJobsHistoryLimit and FailedJobsHistoryLimit bound how many
	// finished workflows are kept.
	SuccessfulJobsHistoryLimit, FailedJobsHistoryLimit *int32
	// StopExpression, if set, stops scheduling once it is true, for
	// example "cronworkflow.failed >= 3".
	StopExpression string
	// Suspend creates the CronWorkflow suspended.
	Suspend bool
}

// Backend compiles Plans to Argo Workflows and runs them. It implements
// [backends.Backend], [backends.Submitter], [backends.Watcher] and
// [backends.Canceler]. It is safe for concurrent use.
type Backend struct {
	opts Options

	mu        sync.Mutex
	connected bool                 // client, kube and ns are set
	client    versioned.Interface  // nil until connected when New had none
	kube      kubernetes.Interface // Options.KubeClient, or built with client
	ns        string               // the namespace runs use
}

var (
	_ backends.Backend   = (*Backend)(nil)
	_ backends.Submitter = (*Backend)(nil)
	_ backends.Watcher   = (*Backend)(nil)
	_ backends.Canceler  = (*Backend)(nil)
	_ backends.Namer     = (*Backend)(nil)
)

// New returns a Backend. With a nil client, Compile works offline and the
// first call that needs the cluster (Submit, Watch, Cancel, Schedule…)
// connects by the kubeconfig rules: $KUBECONFIG, then ~/.kube/config,
// then the in-cluster configuration of a pod; it also builds the
// Kubernetes client of Options.KubeClient, unless opts has one, and takes
// the kubeconfig context's namespace when Options.Pod.Namespace is empty. A
// nil opts means defaults.
func New(client versioned.Interface, opts *Options) *Backend {
	b := &Backend{client: client}
	if opts != nil {
		b.opts = *opts
	}
	return b
}

// NewFromKubeconfig returns a Backend whose client is built now from the
// kubeconfig file at path ("" follows the rules New uses: $KUBECONFIG,
// ~/.kube/config, then the in-cluster configuration), with a Kubernetes
// client for Options.KubeClient unless opts has one. When opts has no
// Pod.Namespace, the kubeconfig context's namespace is used.
func NewFromKubeconfig(path string, opts *Options) (*Backend, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	client, kube, ns, err := fromKubeconfig(path, o)
	if err != nil {
		return nil, err
	}
	o.KubeClient, o.Pod.Namespace = kube, ns
	return New(client, &o), nil
}

// fromKubeconfig builds the clients of the kubeconfig at path (see
// NewFromKubeconfig) and returns them with the namespace runs use:
// o.Pod.Namespace, else the kubeconfig context's.
func fromKubeconfig(path string, o Options) (versioned.Interface, kubernetes.Interface, string, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = path
	cc := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{})
	cfg, err := cc.ClientConfig()
	if err != nil {
		return nil, nil, "", err
	}
	client, err := versioned.NewForConfig(cfg)
	if err != nil {
		return nil, nil, "", err
	}
	kube := o.KubeClient
	if kube == nil {
		if kube, err = kubernetes.NewForConfig(cfg); err != nil {
			return nil, nil, "", err
		}
	}
	ns := o.Pod.Namespace
	if ns == "" {
		if n, _, err := cc.Namespace(); err == nil {
			ns = n
		}
	}
	return client, kube, ns, nil
}

// connect returns the Backend's client, building it by the kubeconfig
// rules the first time when New was given none (see New), and sets the
// Kubernetes client and the namespace.
func (b *Backend) connect() (versioned.Interface, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.connected {
		return b.client, nil
	}
	b.kube, b.ns = b.opts.KubeClient, b.opts.Pod.Namespace
	if b.client == nil {
		client, kube, ns, err := fromKubeconfig("", b.opts)
		if err != nil {
			return nil, fmt.Errorf("argo: no Argo client was given (argo.New(nil, …)) and none could be configured from $KUBECONFIG, ~/.kube/config or the pod's service account: %w", err)
		}
		b.client, b.kube, b.ns = client, kube, ns
	}
	if b.ns == "" {
		b.ns = "default"
	}
	b.connected = true
	return b.client, nil
}

// Name returns "argo", the name the program entrypoint selects it by.
func (b *Backend) Name() string { return "argo" }

// namespace is where runs go; only valid once connect has succeeded.
func (b *Backend) namespace() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.ns
}

// kubeClient is the Kubernetes client for the Pod Security check, or nil;
// only valid once connect has succeeded.
func (b *Backend) kubeClient() kubernetes.Interface {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.kube
}

// Compile renders plan to one YAML document: a Workflow, or the
// WorkflowTemplate or CronWorkflow Options.Kind asks for. It does not
// contact a cluster.
func (b *Backend) Compile(ctx context.Context, plan *backends.Plan, opts *backends.CompileOptions) (backends.Artifact, error) {
	if err := kubepod.CheckStore(plan.Artifacts); err != nil {
		return nil, fmt.Errorf("argo: %w: %w", err, errors.ErrUnsupported)
	}
	if err := b.Lint(plan); err != nil {
		return nil, err
	}
	return b.compile(plan, opts)
}

// compiled is what Compile returns.
type compiled struct {
	plan *backends.Plan
	warn []string
	wf   *wfv1.Workflow // the Workflow, or the spec holder of the others
	wft  *wfv1.WorkflowTemplate
	cwf  *wfv1.CronWorkflow
	doc  []byte
	// access is the RBAC of the steps with task.Access (nil for none),
	// accessDocs its documents, which come before doc.
	access     *kubepod.Access
	accessDocs [][]byte
	// shards are the WorkflowTemplates of a sharded run (see shard.go),
	// shardDocs their documents, which come after accessDocs and before
	// doc, the parent Workflow's.
	shards    []*wfv1.WorkflowTemplate
	shardDocs [][]byte
}

func (a *compiled) Documents() [][]byte {
	out := make([][]byte, 0, len(a.accessDocs)+len(a.shardDocs)+1)
	for _, d := range slices.Concat(a.accessDocs, a.shardDocs) {
		out = append(out, slices.Clone(d))
	}
	return append(out, slices.Clone(a.doc))
}

// Warnings are what the compiled workflow may meet at run time that the
// plan cannot rule out (see [backends.Warner]).
func (a *compiled) Warnings() []string { return a.warn }

func (a *compiled) As(target any) bool { return a.as(target) }

func (a *compiled) as(target any) bool {
	plan, wf, wft, cwf := a.plan, a.wf, a.wft, a.cwf
	switch t := target.(type) {
	case **kubepod.Access:
		if a.access != nil {
			*t = a.access
			return true
		}
	case **wfv1.Workflow:
		if wf != nil && wft == nil && cwf == nil {
			*t = wf
			return true
		}
	case *[]*wfv1.WorkflowTemplate:
		if len(a.shards) > 0 {
			*t = a.shards
			return true
		}
	case **wfv1.WorkflowTemplate:
		if wft != nil {
			*t = wft
			return true
		}
	case **wfv1.CronWorkflow:
		if cwf != nil {
			*t = cwf
			return true
		}
	case **backends.Plan:
		*t = plan
		return true
	}
	return false
}

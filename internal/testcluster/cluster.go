package testcluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
)

// Environment variables that locate and require the binaries.
const (
	// BinEnv names the directory tools/e2e/build prints.
	BinEnv = "SLUICE_E2E_BIN"
	// RequiredEnv, when "1", makes a missing BinEnv an error instead of a
	// reason to skip (CI sets it).
	RequiredEnv = "SLUICE_E2E_REQUIRED"
)

// Options configure a Cluster.
// DefaultControllerQPS is the controllers' client budget unless
// [Options].ControllerQPS says otherwise: 100 requests per second, five
// times the upstream default of both controllers (20). Kubernetes' Job
// controller spends several writes on each Job (its pod, status updates,
// the pod's tracking finalizer), so at 20 it, not the kubejob
// orchestrator, sets the pace of a run of many short steps: 200 steps took
// 56 s at 20 and 23 s at 100, while Argo's controller took 44 s at
// either. A control plane that runs batch work is sized the same way
// (see "Throughput" in go doc ./backends/kubejob).
const DefaultControllerQPS = 100

type Options struct {
	// BinDir holds the binaries and assets of tools/e2e/build; empty means
	// $SLUICE_E2E_BIN.
	BinDir string
	// Argo installs Argo's full CRDs and runs its workflow-controller,
	// configured as the README tells users to (see [ArgoControllerConfig]).
	Argo bool
	// KServe installs KServe's full CRDs and runs its controller manager
	// in RawDeployment mode (see [KServeConfig]).
	KServe bool
	// Pools are the node pools; nil means [DefaultPools].
	Pools []Pool
	// Images maps the image references of pods to the host programs that
	// play them (see [Kubelet]).
	Images map[string]Image
	// Dir is where logs, certificates and pods' files go; empty means a
	// new temporary directory, removed by Stop unless KeepDir.
	Dir     string
	KeepDir bool
	// Logf, when set, receives the harness's own progress lines.
	Logf func(format string, args ...any)
	// ControllerQPS is the API client budget, in requests per second,
	// of kube-controller-manager (--kube-api-qps) and of Argo's
	// workflow-controller (--qps), each with a burst of 1.5 times as
	// many; zero means [DefaultControllerQPS]. Both get the same, so that
	// benchmarks compare the orchestration and not the budgets.
	ControllerQPS int
}

// Cluster is a running control plane. Stop it when done.
type Cluster struct {
	// Config is an admin's (system:masters) client config.
	Config *rest.Config
	// Kubeconfig is the path of a kubeconfig file for that admin.
	Kubeconfig string
	// Client is a clientset built from Config.
	Client kubernetes.Interface
	// Kubelet runs the pods of Sluice steps.
	Kubelet *Kubelet
	// Dir holds the logs of the processes (NAME.log) and pods' files.
	Dir string
	// Pools are the node pools the cluster was started with.
	Pools []Pool

	opts    Options
	bin     string
	env     *envtest.Environment
	procs   []*proc
	cancel  context.CancelFunc
	stopped bool
}

// BinDir returns the directory of the e2e binaries, or a reason why there
// is none. skip is true when the caller should skip rather than fail.
func BinDir() (dir string, skip bool, err error) {
	dir = os.Getenv(BinEnv)
	if dir == "" {
		err := fmt.Errorf("%s is not set: the e2e tests need the control-plane binaries; run them with\n\t%s=$(tools/e2e/build) go test ./e2e/", BinEnv, BinEnv)
		return "", os.Getenv(RequiredEnv) != "1", err
	}
	for _, b := range []string{"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok", "workflow-controller", "kserve-manager"} {
		if _, err := os.Stat(filepath.Join(dir, b)); err != nil {
			return "", false, fmt.Errorf("%s=%s lacks %s (rebuild with tools/e2e/build): %w", BinEnv, dir, b, err)
		}
	}
	return dir, false, nil
}

// Start brings a cluster up: etcd and the API server, the admin
// kubeconfig, kube-controller-manager and kube-scheduler, kwok and the
// node pools, the kubelet for Sluice's pods, and Argo if asked. It
// returns once the nodes are Ready (and Argo's controller runs). On
// error, what was started is stopped.
func Start(ctx context.Context, opts Options) (c *Cluster, err error) {
	if opts.BinDir == "" {
		d, _, err := BinDir()
		if err != nil {
			return nil, err
		}
		opts.BinDir = d
	}
	if opts.Pools == nil {
		opts.Pools = DefaultPools()
	}
	if opts.Logf == nil {
		opts.Logf = func(string, ...any) {}
	}
	dir := opts.Dir
	if dir == "" {
		if dir, err = os.MkdirTemp("", "sluice-e2e-"); err != nil {
			return nil, err
		}
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	// envtest logs through controller-runtime's logger; the harness keeps
	// its own progress lines and the processes' logs instead.
	ctrllog.SetLogger(logr.Discard())
	c = &Cluster{Dir: dir, Pools: opts.Pools, opts: opts, bin: opts.BinDir}
	defer func() {
		if err != nil {
			err = errors.Join(err, c.Stop())
			c = nil
		}
	}()
	start := time.Now()
	step := func(what string) {
		opts.Logf("testcluster: %s (%.1fs)", what, time.Since(start).Seconds())
	}

	c.env = &envtest.Environment{
		BinaryAssetsDirectory:    opts.BinDir,
		ControlPlaneStartTimeout: 2 * time.Minute,
		ControlPlaneStopTimeout:  time.Minute,
	}
	api := c.env.ControlPlane.GetAPIServer()
	// The ServiceAccount admission plugin is on, as in real clusters:
	// kube-controller-manager creates the default ServiceAccounts.
	api.Configure().Disable("disable-admission-plugins")
	// Jobs' podReplacementPolicy and podFailurePolicy are on by default in
	// 1.35; nothing else is changed from the API server's defaults.
	var crds []string
	if opts.Argo {
		crds = append(crds, filepath.Join(opts.BinDir, "crds", "argo"))
	}
	if opts.KServe {
		crds = append(crds, filepath.Join(opts.BinDir, "crds", "kserve"))
	}
	if len(crds) > 0 {
		c.env.CRDInstallOptions = envtest.CRDInstallOptions{
			Paths:              crds,
			ErrorIfPathMissing: true,
			// The full schemas take the API server 5–25 s to serve.
			MaxTime:      3 * time.Minute,
			PollInterval: 200 * time.Millisecond,
		}
	}
	cfg, err := c.env.Start()
	if err != nil {
		return c, fmt.Errorf("starting etcd and kube-apiserver: %w", err)
	}
	step("etcd, kube-apiserver and CRDs up")
	user, err := c.env.AddUser(envtest.User{Name: "sluice-e2e-admin", Groups: []string{"system:masters"}}, cfg)
	if err != nil {
		return c, fmt.Errorf("adding the admin user: %w", err)
	}
	c.Config = rest.CopyConfig(user.Config())
	c.Config.QPS, c.Config.Burst = 200, 400
	kc, err := user.KubeConfig()
	if err != nil {
		return c, err
	}
	c.Kubeconfig = filepath.Join(dir, "kubeconfig")
	if err := os.WriteFile(c.Kubeconfig, kc, 0o600); err != nil {
		return c, err
	}
	if c.Client, err = kubernetes.NewForConfig(c.Config); err != nil {
		return c, err
	}

	pctx, cancel := context.WithCancel(context.Background())
	c.cancel = cancel
	if err := c.startControllers(pctx); err != nil {
		return c, err
	}
	step("kube-controller-manager, kube-scheduler, kwok started")
	if err := c.createNodes(ctx); err != nil {
		return c, err
	}
	step("nodes Ready")
	c.Kubelet = newKubelet(c, opts.Images)
	if err := c.Kubelet.start(pctx); err != nil {
		return c, err
	}
	if opts.Argo {
		if err := c.startArgo(ctx, pctx); err != nil {
			return c, err
		}
		step("Argo workflow-controller started")
	}
	if opts.KServe {
		if err := c.startKServe(ctx, pctx); err != nil {
			return c, err
		}
		step("KServe controller manager started")
	}
	return c, nil
}

func (c *Cluster) startControllers(ctx context.Context) error {
	kcm := []string{
		"--kubeconfig=" + c.Kubeconfig,
		"--leader-elect=false",
		"--secure-port=0",
		"--use-service-account-credentials=false",
		// No cloud provider and no IPAM: the nodes are kwok's.
		"--allocate-node-cidrs=false",
		// Pods of a Node that stops heartbeating are evicted after this.
		"--node-monitor-grace-period=40s",
		"--concurrent-job-syncs=10",
		"--concurrent-gc-syncs=10",
		"--kube-api-qps=" + strconv.Itoa(c.qps()), "--kube-api-burst=" + strconv.Itoa(c.qps()*3/2),
	}
	if err := c.startProc(ctx, "kube-controller-manager", kcm, nil); err != nil {
		return err
	}
	sched := []string{"--kubeconfig=" + c.Kubeconfig, "--leader-elect=false", "--secure-port=0"}
	if err := c.startProc(ctx, "kube-scheduler", sched, nil); err != nil {
		return err
	}
	cfg, err := c.kwokConfig()
	if err != nil {
		return err
	}
	kwok := []string{
		"--kubeconfig=" + c.Kubeconfig,
		"--config=" + cfg,
		"--manage-all-nodes=false",
		"--manage-nodes-with-annotation-selector=" + kwokNodeAnnotation + "=fake",
		"--server-address=",
	}
	return c.startProc(ctx, "kwok", kwok, nil)
}

// Namespace creates namespace name, labelled to enforce Pod Security
// "restricted" when restricted is true, and waits for its default
// ServiceAccount (pods are refused until kube-controller-manager made it).
func (c *Cluster) Namespace(ctx context.Context, name string, restricted bool) error {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if restricted {
		ns.Labels = map[string]string{
			"pod-security.kubernetes.io/enforce": "restricted",
			"pod-security.kubernetes.io/warn":    "restricted",
		}
	}
	if _, err := c.Client.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	return wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
		_, err := c.Client.CoreV1().ServiceAccounts(name).Get(ctx, "default", metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		return err == nil, err
	})
}

// Stop stops everything Start started: the kubelet's pods first, then
// the controllers, then the API server and etcd (an API server whose
// clients are still connected, or whose etcd is gone, is slow to stop).
func (c *Cluster) Stop() error {
	if c == nil || c.stopped {
		return nil
	}
	c.stopped = true
	var errs []error
	if c.Kubelet != nil {
		c.Kubelet.stop()
	}
	if c.cancel != nil {
		c.cancel()
	}
	for _, p := range slices.Backward(c.procs) {
		if err := p.stop(); err != nil {
			errs = append(errs, err)
		}
	}
	if c.env != nil {
		if err := c.env.Stop(); err != nil {
			errs = append(errs, fmt.Errorf("stopping etcd and kube-apiserver: %w", err))
		}
	}
	if c.opts.Dir == "" && !c.opts.KeepDir {
		if err := os.RemoveAll(c.Dir); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Dynamic returns a dynamic client for the admin.
func (c *Cluster) Dynamic() dynamic.Interface {
	return dynamic.NewForConfigOrDie(c.Config)
}

// RESTMapper maps kinds to resources by asking the API server (the CRDs
// included).
func (c *Cluster) RESTMapper() meta.RESTMapper {
	dc := discovery.NewDiscoveryClientForConfigOrDie(c.Config)
	return restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(dc))
}

// Log returns the tail (up to n bytes) of process name's log, for a
// failing test to show.
func (c *Cluster) Log(name string, n int) string {
	b, err := os.ReadFile(filepath.Join(c.Dir, name+".log"))
	if err != nil {
		return err.Error()
	}
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return strings.TrimSpace(string(b))
}

// qps is the controllers' client budget (Options.ControllerQPS).
func (c *Cluster) qps() int {
	if c.opts.ControllerQPS > 0 {
		return c.opts.ControllerQPS
	}
	return DefaultControllerQPS
}

// ControllerQPS is the client budget kube-controller-manager and Argo's
// workflow-controller run with.
func (c *Cluster) ControllerQPS() int { return c.qps() }

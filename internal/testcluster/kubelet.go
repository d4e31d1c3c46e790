package testcluster

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	argoclient "github.com/argoproj/argo-workflows/v3/pkg/client/clientset/versioned"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"
)

// Image is what the kubelet runs for a container image: a host program
// standing for the image's filesystem and entrypoint.
type Image struct {
	// Program is the host path of the program.
	Program string
	// Entrypoint is the image's ENTRYPOINT, used when a container sets no
	// command; a command whose first element is Entrypoint[0] runs
	// Program. (An image built with ko has the entrypoint
	// /ko-app/<name>.)
	Entrypoint []string
	// Env is the image's environment, NAME=value.
	Env []string
}

// The kubelet's limits, as the real kubelet has them.
const (
	// MaxTerminationMessage is how much of a termination message the
	// kubelet keeps: the last 4096 bytes.
	MaxTerminationMessage = 4096
	// fallbackLogLines and fallbackLogBytes bound the log tail that
	// FallbackToLogsOnError takes as the message.
	fallbackLogLines = 80
	fallbackLogBytes = 2048
)

// Argo's executor names and paths.
const (
	argoInit        = "init"
	argoWait        = "wait"
	argoMain        = "main"
	argoNodeIDEnv   = "ARGO_NODE_ID"
	argoTemplateEnv = "ARGO_TEMPLATE"
)

// Kubelet runs the pods of Sluice steps as host processes (see the
// package doc). Tests may set its hooks before pods start.
type Kubelet struct {
	c      *Cluster
	images map[string]Image
	argo   argoclient.Interface

	mu        sync.Mutex
	onRunning map[string]func(*corev1.Pod)
	pods      map[types.UID]*podRun
	started   int
	ctx       context.Context
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	factory   informers.SharedInformerFactory
}

// podRun is one pod the kubelet runs.
type podRun struct {
	// kill is closed when the pod is being deleted: its processes get
	// SIGTERM, then SIGKILL after the grace period.
	kill     chan struct{}
	killOnce sync.Once
	grace    time.Duration
	done     chan struct{}
}

func newKubelet(c *Cluster, images map[string]Image) *Kubelet {
	k := &Kubelet{c: c, images: map[string]Image{}, pods: map[types.UID]*podRun{}, onRunning: map[string]func(*corev1.Pod){}}
	for ref, img := range images {
		k.images[ref] = img
	}
	return k
}

// SetImage makes ref an image the kubelet can run (or changes it), for
// pods started from now on.
func (k *Kubelet) SetImage(ref string, img Image) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.images[ref] = img
}

// Image returns what the kubelet runs for image ref.
func (k *Kubelet) Image(ref string) (Image, bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	img, ok := k.images[ref]
	return img, ok
}

// setImage makes the kubelet play image ref with img.
func (k *Kubelet) setImage(ref string, img Image) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.images == nil {
		k.images = map[string]Image{}
	}
	k.images[ref] = img
}

// OnRunning makes the kubelet call f (on the pod's own goroutine) for
// every pod of namespace ns once its status says Running and its
// processes have started; nil removes the hook.
func (k *Kubelet) OnRunning(ns string, f func(pod *corev1.Pod)) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if f == nil {
		delete(k.onRunning, ns)
		return
	}
	k.onRunning[ns] = f
}

// Started returns how many pods the kubelet has started.
func (k *Kubelet) Started() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.started
}

// Claims reports whether the kubelet runs pod (rather than kwok).
func Claims(pod *corev1.Pod) bool {
	_, sluice := pod.Labels[LabelSluiceRun]
	_, argo := pod.Labels[LabelArgoWorkflow]
	return sluice || argo
}

func (k *Kubelet) start(ctx context.Context) error {
	var err error
	if k.argo, err = argoclient.NewForConfig(k.c.Config); err != nil {
		return err
	}
	k.ctx, k.cancel = context.WithCancel(ctx)
	k.factory = informers.NewSharedInformerFactoryWithOptions(k.c.Client, 0,
		informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.FieldSelector = fields.OneTermNotEqualSelector("spec.nodeName", "").String()
		}))
	inf := k.factory.Core().V1().Pods().Informer()
	if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(o any) { k.observe(o) },
		UpdateFunc: func(_, o any) { k.observe(o) },
	}); err != nil {
		return err
	}
	k.factory.Start(k.ctx.Done())
	for typ, ok := range k.factory.WaitForCacheSync(ctx.Done()) {
		if !ok {
			return fmt.Errorf("kubelet: %v informer did not sync", typ)
		}
	}
	return nil
}

func (k *Kubelet) stop() {
	if k.cancel == nil {
		return
	}
	k.cancel()
	k.mu.Lock()
	for _, r := range k.pods {
		r.killOnce.Do(func() { r.grace = 0; close(r.kill) })
	}
	k.mu.Unlock()
	k.wg.Wait()
	k.factory.Shutdown()
}

// observe reacts to a pod: starts the ones newly bound to a node, stops
// the ones being deleted, and removes (as the kubelet's final delete
// does) the deleted ones whose containers have ended.
func (k *Kubelet) observe(o any) {
	pod, ok := o.(*corev1.Pod)
	if !ok || !Claims(pod) || k.c.PoolOf(pod.Spec.NodeName) == "" {
		return
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.ctx.Err() != nil {
		return
	}
	r := k.pods[pod.UID]
	if pod.DeletionTimestamp != nil {
		if r == nil {
			// Never started (or started by an earlier kubelet): nothing
			// to stop.
			k.finalDelete(pod)
			return
		}
		select {
		case <-r.done:
			// Its containers have ended: confirm the deletion.
			k.finalDelete(pod)
		default:
			grace := time.Duration(ptr.Deref(pod.DeletionGracePeriodSeconds, 30)) * time.Second
			r.killOnce.Do(func() { r.grace = grace; close(r.kill) })
		}
		return
	}
	if r != nil || pod.Status.Phase != corev1.PodPending {
		return
	}
	r = &podRun{kill: make(chan struct{}), done: make(chan struct{})}
	k.pods[pod.UID] = r
	k.started++
	k.wg.Add(1)
	go func() {
		defer k.wg.Done()
		k.run(r, pod.DeepCopy())
		close(r.done)
		k.confirmDeletion(pod)
	}()
}

// finalDelete removes a pod whose containers have ended, as the kubelet
// does once it has cleaned up after a deletion.
// It runs on a goroutine of its own (observe holds k.mu), which stop waits
// for.
func (k *Kubelet) finalDelete(pod *corev1.Pod) {
	uid := pod.UID
	k.wg.Add(1)
	go func() {
		defer k.wg.Done()
		// An error means the pod is gone already, or a newer pod has its
		// name: nothing to do either way.
		_ = k.c.Client.CoreV1().Pods(pod.Namespace).Delete(k.ctx, pod.Name, metav1.DeleteOptions{
			GracePeriodSeconds: ptr.To[int64](0),
			Preconditions:      &metav1.Preconditions{UID: &uid},
		})
	}()
}

// container is one container's process and what it leaves behind.
type container struct {
	spec     corev1.Container
	dir      string // host dir of its files (log, termination message)
	termPath string // host path of its termination message file
	logPath  string
	started  time.Time
	finished time.Time
	exitCode int32
	reason   string // Completed, Error, StartError, OOMKilled…
	message  string
}

// run plays the pod's life: Running, its processes, their end, the
// executor's report for Argo, the final status.
func (k *Kubelet) run(r *podRun, pod *corev1.Pod) {
	ctx := k.ctx
	podDir := k.podDir(pod)
	mounts, err := k.volumes(ctx, pod, podDir)
	if err != nil {
		k.setWaiting(ctx, pod, "CreateContainerConfigError", err.Error())
		return
	}
	argoPod := pod.Labels[LabelArgoWorkflow] != ""

	var ctrs []*container
	for _, c := range pod.Spec.Containers {
		if argoPod && c.Name == argoWait {
			continue // the kubelet plays Argo's executor itself
		}
		if _, ok := k.Image(c.Image); !ok {
			k.setWaiting(ctx, pod, "ErrImagePull", fmt.Sprintf("image %q is not known to the test kubelet (testcluster.Options.Images)", c.Image))
			return
		}
		dir := filepath.Join(podDir, "containers", c.Name)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			k.setWaiting(ctx, pod, "CreateContainerError", err.Error())
			return
		}
		ctrs = append(ctrs, &container{spec: c, dir: dir, termPath: filepath.Join(dir, "termination-log"), logPath: filepath.Join(dir, "log")})
	}

	start := time.Now()
	if !k.updateStatus(ctx, pod, func(p *corev1.Pod) {
		now := metav1.NewTime(start)
		p.Status.Phase = corev1.PodRunning
		p.Status.StartTime = &now
		p.Status.HostIP, p.Status.PodIP = "10.128.0.1", "10.64.0.1"
		p.Status.HostIPs = []corev1.HostIP{{IP: "10.128.0.1"}}
		p.Status.PodIPs = []corev1.PodIP{{IP: "10.64.0.1"}}
		for _, t := range []corev1.PodConditionType{"PodReadyToStartContainers", corev1.PodInitialized, corev1.ContainersReady, corev1.PodReady} {
			setCondition(p, t, corev1.ConditionTrue, "", "")
		}
		p.Status.InitContainerStatuses = nil
		for _, c := range p.Spec.InitContainers {
			p.Status.InitContainerStatuses = append(p.Status.InitContainerStatuses, corev1.ContainerStatus{
				Name: c.Name, Image: c.Image, ImageID: c.Image, Ready: true,
				State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
					ExitCode: 0, Reason: "Completed", StartedAt: now, FinishedAt: now,
				}},
			})
		}
		p.Status.ContainerStatuses = nil
		for _, c := range p.Spec.Containers {
			p.Status.ContainerStatuses = append(p.Status.ContainerStatuses, corev1.ContainerStatus{
				Name: c.Name, Image: c.Image, ImageID: c.Image, Ready: true, Started: ptr.To(true),
				ContainerID: "host://" + string(p.UID) + "/" + c.Name,
				State:       corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: now}},
			})
		}
	}) {
		return
	}

	// Run every container; the pod's deadline or its deletion stops them.
	deadline := make(<-chan time.Time)
	deadlineExceeded := false
	if s := pod.Spec.ActiveDeadlineSeconds; s != nil {
		t := time.NewTimer(time.Duration(*s) * time.Second)
		defer t.Stop()
		deadline = t.C
	}
	var wg sync.WaitGroup
	var procs []*exec.Cmd
	for _, c := range ctrs {
		cmd, err := k.command(pod, c, mounts, podDir)
		if err != nil {
			c.started, c.finished = time.Now(), time.Now()
			c.exitCode, c.reason, c.message = 128, "StartError", err.Error()
			continue
		}
		c.started = time.Now()
		if err := cmd.Start(); err != nil {
			c.finished = time.Now()
			c.exitCode, c.reason, c.message = 128, "StartError", err.Error()
			continue
		}
		procs = append(procs, cmd)
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := cmd.Wait()
			c.finished = time.Now()
			c.exitCode = exitCode(err)
			c.reason = "Completed"
			if c.exitCode != 0 {
				c.reason = "Error"
			}
		}()
	}
	k.mu.Lock()
	h := k.onRunning[pod.Namespace]
	k.mu.Unlock()
	if h != nil && len(procs) > 0 {
		if p, err := k.c.Client.CoreV1().Pods(pod.Namespace).Get(ctx, pod.Name, metav1.GetOptions{}); err == nil && p.UID == pod.UID {
			h(p)
		}
	}
	exited := make(chan struct{})
	go func() { wg.Wait(); close(exited) }()
	signal := func(sig syscall.Signal) {
		for _, p := range procs {
			_ = syscall.Kill(-p.Process.Pid, sig)
		}
	}
	select {
	case <-exited:
	case <-deadline:
		deadlineExceeded = true
		signal(syscall.SIGKILL)
		<-exited
	case <-r.kill:
		signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(r.grace):
			signal(syscall.SIGKILL)
			<-exited
		}
	}
	for _, c := range ctrs {
		if c.reason != "StartError" {
			c.message = terminationMessage(c)
		}
	}
	if argoPod {
		k.reportArgoOutputs(ctx, pod, ctrs, mounts)
	}

	k.updateStatus(ctx, pod, func(p *corev1.Pod) {
		ok := true
		for _, c := range ctrs {
			ok = ok && c.exitCode == 0
		}
		end := metav1.Now()
		for i := range p.Status.ContainerStatuses {
			st := &p.Status.ContainerStatuses[i]
			st.Ready, st.Started = false, ptr.To(false)
			term := &corev1.ContainerStateTerminated{ExitCode: 0, Reason: "Completed", StartedAt: metav1.NewTime(start), FinishedAt: end}
			for _, c := range ctrs {
				if c.spec.Name == st.Name {
					term = &corev1.ContainerStateTerminated{
						ExitCode: c.exitCode, Reason: c.reason, Message: c.message,
						StartedAt: metav1.NewTime(c.started), FinishedAt: metav1.NewTime(c.finished),
					}
				}
			}
			st.State = corev1.ContainerState{Terminated: term}
		}
		for _, t := range []corev1.PodConditionType{corev1.ContainersReady, corev1.PodReady} {
			setCondition(p, t, corev1.ConditionFalse, "PodCompleted", "")
		}
		setCondition(p, "PodReadyToStartContainers", corev1.ConditionFalse, "", "")
		switch {
		case deadlineExceeded:
			p.Status.Phase = corev1.PodFailed
			p.Status.Reason = "DeadlineExceeded"
			p.Status.Message = "Pod was active on the node longer than the specified deadline"
		case ok:
			p.Status.Phase = corev1.PodSucceeded
		default:
			// A pod deleted while running ends in a terminal phase too, as
			// the kubelet makes it since Kubernetes 1.27; a
			// DisruptionTarget condition the API server added on eviction
			// stays.
			p.Status.Phase = corev1.PodFailed
		}
	})
}

// confirmDeletion removes a pod whose containers have ended if it is
// being deleted: its deletion event may have come while they still ran.
func (k *Kubelet) confirmDeletion(pod *corev1.Pod) {
	p, err := k.c.Client.CoreV1().Pods(pod.Namespace).Get(k.ctx, pod.Name, metav1.GetOptions{})
	if err == nil && p.UID == pod.UID && p.DeletionTimestamp != nil {
		k.finalDelete(p)
	}
}

func (k *Kubelet) podDir(pod *corev1.Pod) string {
	return filepath.Join(k.c.Dir, "pods", pod.Namespace, pod.Name+"-"+string(pod.UID)[:8])
}

// Logs returns what container of pod wrote on stdout and stderr, as
// kubectl logs would show it.
func (k *Kubelet) Logs(pod *corev1.Pod, container string) (string, error) {
	b, err := os.ReadFile(filepath.Join(k.podDir(pod), "containers", container, "log"))
	return string(b), err
}

// volumes makes the host directories of the pod's volumes and returns
// the container path → host path mapping of each container, by name.
func (k *Kubelet) volumes(ctx context.Context, pod *corev1.Pod, podDir string) (map[string]map[string]string, error) {
	vols := map[string]string{}
	for _, v := range pod.Spec.Volumes {
		dir := filepath.Join(podDir, "volumes", v.Name)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, err
		}
		vols[v.Name] = dir
		switch {
		case v.EmptyDir != nil:
		case v.ConfigMap != nil:
			cm, err := k.c.Client.CoreV1().ConfigMaps(pod.Namespace).Get(ctx, v.ConfigMap.Name, metav1.GetOptions{})
			if err != nil {
				return nil, fmt.Errorf("volume %s: %w", v.Name, err)
			}
			for key, val := range cm.Data {
				if err := os.WriteFile(filepath.Join(dir, key), []byte(val), 0o644); err != nil {
					return nil, err
				}
			}
		case v.Projected != nil:
			if err := k.project(ctx, pod, v.Projected, dir); err != nil {
				return nil, fmt.Errorf("volume %s: %w", v.Name, err)
			}
		default:
			// Other volume kinds are empty directories here.
		}
	}
	out := map[string]map[string]string{}
	for _, c := range slices.Concat(pod.Spec.InitContainers, pod.Spec.Containers) {
		m := map[string]string{}
		for _, vm := range c.VolumeMounts {
			host, ok := vols[vm.Name]
			if !ok {
				return nil, fmt.Errorf("container %s mounts unknown volume %q", c.Name, vm.Name)
			}
			if vm.SubPath != "" {
				host = filepath.Join(host, vm.SubPath)
				if err := os.MkdirAll(host, 0o755); err != nil {
					return nil, err
				}
			}
			m[filepath.Clean(vm.MountPath)] = host
		}
		out[c.Name] = m
	}
	return out, nil
}

// project fills dir with a projected volume's files: the token of the
// pod's ServiceAccount (from the TokenRequest API, bound to the pod), keys
// of ConfigMaps and fields of the pod, as the kubelet does for the
// kube-api-access volume the ServiceAccount admission plugin adds.
func (k *Kubelet) project(ctx context.Context, pod *corev1.Pod, v *corev1.ProjectedVolumeSource, dir string) error {
	write := func(path string, data []byte) error {
		f := filepath.Join(dir, filepath.Clean("/"+path))
		if err := os.MkdirAll(filepath.Dir(f), 0o755); err != nil {
			return err
		}
		return os.WriteFile(f, data, 0o644)
	}
	for _, src := range v.Sources {
		switch {
		case src.ServiceAccountToken != nil:
			req := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{
				ExpirationSeconds: src.ServiceAccountToken.ExpirationSeconds,
				BoundObjectRef:    &authenticationv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: pod.Name, UID: pod.UID},
			}}
			if a := src.ServiceAccountToken.Audience; a != "" {
				req.Spec.Audiences = []string{a}
			}
			sa := cmp.Or(pod.Spec.ServiceAccountName, "default")
			tr, err := k.c.Client.CoreV1().ServiceAccounts(pod.Namespace).CreateToken(ctx, sa, req, metav1.CreateOptions{})
			if err != nil {
				return fmt.Errorf("token of ServiceAccount %s: %w", sa, err)
			}
			if err := write(src.ServiceAccountToken.Path, []byte(tr.Status.Token)); err != nil {
				return err
			}
		case src.ConfigMap != nil:
			cm, err := k.c.Client.CoreV1().ConfigMaps(pod.Namespace).Get(ctx, src.ConfigMap.Name, metav1.GetOptions{})
			if apierrors.IsNotFound(err) && ptr.Deref(src.ConfigMap.Optional, false) {
				continue
			}
			if err != nil {
				return fmt.Errorf("configMap %s: %w", src.ConfigMap.Name, err)
			}
			items := src.ConfigMap.Items
			if len(items) == 0 {
				for _, key := range slices.Sorted(maps.Keys(cm.Data)) {
					items = append(items, corev1.KeyToPath{Key: key, Path: key})
				}
			}
			for _, it := range items {
				if err := write(it.Path, []byte(cm.Data[it.Key])); err != nil {
					return err
				}
			}
		case src.DownwardAPI != nil:
			for _, it := range src.DownwardAPI.Items {
				if it.FieldRef == nil {
					continue
				}
				if err := write(it.Path, []byte(fieldValue(pod, &corev1.EnvVarSource{FieldRef: it.FieldRef}))); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// inCluster returns the environment that stands for a pod's in-cluster
// client configuration. client-go reads the ServiceAccount's token and CA
// from a fixed path, /var/run/secrets/kubernetes.io/serviceaccount, that a
// host process cannot see where the container mounts it: when the
// container mounts a token there, the kubelet writes a kubeconfig with the
// same token (the pod's ServiceAccount, so RBAC is the one the pod would
// have) and the API server's address, and sets KUBECONFIG to it.
func (k *Kubelet) inCluster(paths map[string]string, dir string) ([]string, error) {
	host, ok := paths[serviceAccountDir]
	if !ok {
		return nil, nil
	}
	if _, err := os.Stat(filepath.Join(host, "token")); err != nil {
		return nil, nil
	}
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["in-cluster"] = &clientcmdapi.Cluster{Server: k.c.Config.Host, CertificateAuthorityData: k.c.Config.CAData}
	cfg.AuthInfos["pod"] = &clientcmdapi.AuthInfo{TokenFile: filepath.Join(host, "token")}
	ctxt := &clientcmdapi.Context{Cluster: "in-cluster", AuthInfo: "pod"}
	if ns, err := os.ReadFile(filepath.Join(host, "namespace")); err == nil {
		ctxt.Namespace = string(ns)
	}
	cfg.Contexts["in-cluster"] = ctxt
	cfg.CurrentContext = "in-cluster"
	path := filepath.Join(dir, "kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		return nil, err
	}
	return []string{"KUBECONFIG=" + path}, nil
}

// serviceAccountDir is where a pod's ServiceAccount token is mounted.
const serviceAccountDir = "/var/run/secrets/kubernetes.io/serviceaccount"

// command builds the host process of container c: its command (the
// image's entrypoint without one) with the program of its image, its
// arguments and environment with container paths mapped to host paths.
func (k *Kubelet) command(pod *corev1.Pod, c *container, mounts map[string]map[string]string, podDir string) (*exec.Cmd, error) {
	img, _ := k.Image(c.spec.Image)
	paths := mounts[c.spec.Name]
	termPath := c.spec.TerminationMessagePath
	if termPath == "" {
		termPath = corev1.TerminationMessagePathDefault
	}
	paths = withPath(paths, termPath, c.termPath)
	tmp := filepath.Join(podDir, "tmp", c.spec.Name)
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return nil, err
	}
	if _, ok := paths["/tmp"]; !ok {
		paths = withPath(paths, "/tmp", tmp)
	}
	mapPath := func(s string) string { return mapContainerPath(paths, s) }

	argv := slices.Clone(c.spec.Command)
	if pod.Labels[LabelArgoWorkflow] != "" && c.spec.Name == argoMain {
		// Argo's emissary wraps the command: argoexec emissary [opts] -- CMD.
		if i := slices.Index(argv, "--"); i >= 0 && len(argv) > 0 && strings.HasSuffix(argv[0], "/argoexec") {
			argv = argv[i+1:]
		}
	}
	if len(argv) == 0 {
		argv = slices.Clone(img.Entrypoint)
	}
	argv = append(argv, c.spec.Args...)
	if len(argv) == 0 {
		return nil, errors.New("no command specified")
	}
	if len(img.Entrypoint) == 0 || argv[0] != img.Entrypoint[0] {
		return nil, fmt.Errorf("exec: %q: executable file not found in $PATH (image %s has only %v)", argv[0], c.spec.Image, img.Entrypoint)
	}
	argv[0] = img.Program
	for i := 1; i < len(argv); i++ {
		argv[i] = mapPath(argv[i])
	}
	env := []string{"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=" + tmp, "TMPDIR=" + tmp, "HOSTNAME=" + pod.Name}
	incluster, err := k.inCluster(paths, c.dir)
	if err != nil {
		return nil, err
	}
	env = append(env, incluster...)
	env = append(env, img.Env...)
	// envFrom first, then env, which wins, as a kubelet does.
	for _, from := range c.spec.EnvFrom {
		switch {
		case from.SecretRef != nil:
			sec, err := k.c.Client.CoreV1().Secrets(pod.Namespace).Get(k.ctx, from.SecretRef.Name, metav1.GetOptions{})
			if err != nil {
				return nil, fmt.Errorf("envFrom secret %q: %w", from.SecretRef.Name, err)
			}
			for _, key := range slices.Sorted(maps.Keys(sec.Data)) {
				env = append(env, from.Prefix+key+"="+string(sec.Data[key]))
			}
		case from.ConfigMapRef != nil:
			cm, err := k.c.Client.CoreV1().ConfigMaps(pod.Namespace).Get(k.ctx, from.ConfigMapRef.Name, metav1.GetOptions{})
			if err != nil {
				return nil, fmt.Errorf("envFrom configMap %q: %w", from.ConfigMapRef.Name, err)
			}
			for _, key := range slices.Sorted(maps.Keys(cm.Data)) {
				env = append(env, from.Prefix+key+"="+cm.Data[key])
			}
		}
	}
	for _, e := range c.spec.Env {
		v := e.Value
		if e.ValueFrom != nil {
			v = fieldValue(pod, e.ValueFrom)
		}
		env = append(env, e.Name+"="+mapPath(v))
	}
	if pod.Labels[LabelArgoWorkflow] != "" && isArgoResource(c.spec) {
		// Argo's executor (argoexec resource) reads its template from
		// /var/run/argo/template, which Argo's init container writes
		// and the kubelet, playing that container, does not: it takes
		// the init container's ARGO_TEMPLATE instead. It writes the
		// manifest to /tmp/manifest.yaml, a path of its own that two
		// such pods would share on the host: it runs in a mount
		// namespace where that file is one of the container's /tmp.
		for _, ic := range pod.Spec.InitContainers {
			for _, e := range ic.Env {
				if e.Name == argoTemplateEnv && !slices.ContainsFunc(c.spec.Env, func(v corev1.EnvVar) bool { return v.Name == argoTemplateEnv }) {
					env = append(env, e.Name+"="+e.Value)
				}
			}
		}
		own := filepath.Join(mapPath("/tmp"), "manifest.yaml")
		for _, f := range []string{own, argoManifest} {
			if err := touch(f); err != nil {
				return nil, err
			}
		}
		argv = append([]string{"unshare", "--mount", "--propagation", "private", "/bin/sh", "-c", `mount --bind "$0" "$1" && shift && exec "$@"`, own, argoManifest}, argv...)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = env
	cmd.Dir = tmp
	if wd := c.spec.WorkingDir; wd != "" {
		cmd.Dir = mapPath(wd)
	}
	log, err := os.Create(c.logPath)
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := os.MkdirAll(filepath.Dir(c.termPath), 0o755); err != nil {
		return nil, err
	}
	if err := os.WriteFile(c.termPath, nil, 0o666); err != nil {
		return nil, err
	}
	return cmd, nil
}

func withPath(m map[string]string, container, host string) map[string]string {
	out := make(map[string]string, len(m)+1)
	for k, v := range m {
		out[k] = v
	}
	out[filepath.Clean(container)] = host
	return out
}

// mapContainerPath rewrites s when it is a container path under one of
// the mounts (the longest mount wins).
func mapContainerPath(mounts map[string]string, s string) string {
	if !strings.HasPrefix(s, "/") {
		return s
	}
	keys := make([]string, 0, len(mounts))
	for k := range mounts {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return len(keys[i]) > len(keys[j]) })
	for _, mp := range keys {
		if s == mp {
			return mounts[mp]
		}
		if rest, ok := strings.CutPrefix(s, mp+"/"); ok {
			return filepath.Join(mounts[mp], rest)
		}
	}
	return s
}

func fieldValue(pod *corev1.Pod, src *corev1.EnvVarSource) string {
	if f := src.FieldRef; f != nil {
		switch f.FieldPath {
		case "metadata.name":
			return pod.Name
		case "metadata.namespace":
			return pod.Namespace
		case "metadata.uid":
			return string(pod.UID)
		case "spec.nodeName":
			return pod.Spec.NodeName
		case "spec.serviceAccountName":
			return pod.Spec.ServiceAccountName
		case "status.podIP", "status.hostIP":
			return "10.64.0.1"
		}
		if k, ok := strings.CutPrefix(f.FieldPath, "metadata.annotations['"); ok {
			return pod.Annotations[strings.TrimSuffix(k, "']")]
		}
		if k, ok := strings.CutPrefix(f.FieldPath, "metadata.labels['"); ok {
			return pod.Labels[strings.TrimSuffix(k, "']")]
		}
	}
	return ""
}

func exitCode(err error) int32 {
	if err == nil {
		return 0
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return 128 + int32(ws.Signal())
		}
		return int32(ee.ExitCode())
	}
	return 128
}

// terminationMessage is what the kubelet reports as the container's
// message: the file's last 4096 bytes; with FallbackToLogsOnError, when
// the file is empty and the container failed, the tail of its log.
func terminationMessage(c *container) string {
	b, _ := os.ReadFile(c.termPath)
	if len(b) == 0 && c.exitCode != 0 && c.spec.TerminationMessagePolicy == corev1.TerminationMessageFallbackToLogsOnError {
		b = logTail(c.logPath)
	}
	if len(b) > MaxTerminationMessage {
		b = b[len(b)-MaxTerminationMessage:]
	}
	return string(b)
}

// logTail is the last 80 lines of a log, at most its last 2048 bytes.
func logTail(path string) []byte {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	if len(b) > fallbackLogBytes {
		b = b[len(b)-fallbackLogBytes:]
	}
	lines := bytes.SplitAfter(b, []byte("\n"))
	if n := len(lines); n > 0 && len(lines[n-1]) == 0 {
		lines = lines[:n-1]
	}
	if len(lines) > fallbackLogLines {
		lines = lines[len(lines)-fallbackLogLines:]
	}
	return bytes.Join(lines, nil)
}

// reportArgoOutputs plays Argo's wait container: it reads the output
// parameters the template declares (from files the main container
// wrote) and posts the node's WorkflowTaskResult, complete.
func (k *Kubelet) reportArgoOutputs(ctx context.Context, pod *corev1.Pod, ctrs []*container, mounts map[string]map[string]string) {
	var main *container
	for _, c := range ctrs {
		if c.spec.Name == argoMain {
			main = c
		}
	}
	if main == nil || isArgoResource(main.spec) {
		// A resource template's main container is Argo's executor,
		// which reports the node's outputs itself.
		return
	}
	// The controller gives the template to Argo's init container (which
	// hands it on to the wait container in a file), and the node id to
	// every container; a template over 128 KiB is offloaded to a
	// ConfigMap volume.
	env := map[string]string{}
	for _, c := range slices.Concat(pod.Spec.InitContainers, pod.Spec.Containers) {
		if c.Name == argoInit || c.Name == argoWait {
			for _, e := range c.Env {
				env[e.Name] = e.Value
				if e.ValueFrom != nil {
					env[e.Name] = fieldValue(pod, e.ValueFrom)
				}
			}
		}
	}
	tmplJSON := env[argoTemplateEnv]
	if tmplJSON == "offloaded" {
		for _, v := range pod.Spec.Volumes {
			if b, err := os.ReadFile(filepath.Join(k.podDir(pod), "volumes", v.Name, argoTemplateEnv)); err == nil {
				tmplJSON = string(b)
			}
		}
	}
	var tmpl wfv1.Template
	if err := json.Unmarshal([]byte(tmplJSON), &tmpl); err != nil {
		main.exitCode, main.reason, main.message = 1, "Error", "test kubelet: cannot read ARGO_TEMPLATE: "+err.Error()
		return
	}
	outputs := tmpl.Outputs.DeepCopy()
	paths := mounts[argoMain]
	for i, p := range outputs.Parameters {
		if p.ValueFrom == nil || p.ValueFrom.Path == "" {
			continue
		}
		b, err := os.ReadFile(mapContainerPath(paths, p.ValueFrom.Path))
		switch {
		case err == nil:
			outputs.Parameters[i].Value = wfv1.AnyStringPtr(strings.TrimSuffix(string(b), "\n"))
		case p.ValueFrom.Default != nil:
			outputs.Parameters[i].Value = p.ValueFrom.Default
		}
	}
	nodeID := env[argoNodeIDEnv]
	if nodeID == "" {
		nodeID = pod.Annotations["workflows.argoproj.io/node-id"]
	}
	wfName := pod.Labels[LabelArgoWorkflow]
	tr := &wfv1.WorkflowTaskResult{
		ObjectMeta: metav1.ObjectMeta{
			Name:      nodeID,
			Namespace: pod.Namespace,
			Labels: map[string]string{
				LabelArgoWorkflow: wfName,
				"workflows.argoproj.io/report-outputs-completed": "true",
			},
		},
		NodeResult: wfv1.NodeResult{Outputs: outputs},
	}
	for _, o := range pod.OwnerReferences {
		if o.Kind == "Workflow" {
			tr.OwnerReferences = []metav1.OwnerReference{{APIVersion: o.APIVersion, Kind: o.Kind, Name: o.Name, UID: o.UID}}
		}
	}
	_ = retry.OnError(retry.DefaultBackoff, func(err error) bool { return !apierrors.IsAlreadyExists(err) && ctx.Err() == nil }, func() error {
		_, err := k.argo.ArgoprojV1alpha1().WorkflowTaskResults(pod.Namespace).Create(ctx, tr, metav1.CreateOptions{})
		return err
	})
}

// isArgoResource reports whether c is the main container of an Argo
// resource template: argoexec
// resource ACTION, which Argo's emissary (argoexec emissary [opts] --)
// may wrap.
func isArgoResource(c corev1.Container) bool {
	cmd := c.Command
	if i := slices.Index(cmd, "--"); i >= 0 && len(cmd) > 0 && strings.HasSuffix(cmd[0], "/argoexec") {
		cmd = cmd[i+1:]
	}
	return len(cmd) >= 2 && cmd[0] == "argoexec" && cmd[1] == "resource"
}

// argoManifest is where Argo's executor writes a resource template's
// manifest.
const argoManifest = "/tmp/manifest.yaml"

// touch creates file f unless it exists.
func touch(f string) error {
	file, err := os.OpenFile(f, os.O_CREATE|os.O_RDONLY, 0o644)
	if err != nil {
		return err
	}
	return file.Close()
}

// setWaiting leaves the pod Pending with every container waiting for
// reason, as the kubelet does when it cannot start them.
func (k *Kubelet) setWaiting(ctx context.Context, pod *corev1.Pod, reason, message string) {
	k.updateStatus(ctx, pod, func(p *corev1.Pod) {
		p.Status.ContainerStatuses = nil
		for _, c := range p.Spec.Containers {
			p.Status.ContainerStatuses = append(p.Status.ContainerStatuses, corev1.ContainerStatus{
				Name: c.Name, Image: c.Image,
				State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reason, Message: message}},
			})
		}
	})
}

// updateStatus applies mutate to the latest copy of pod and writes its
// status; false when the pod is gone or was replaced.
func (k *Kubelet) updateStatus(ctx context.Context, pod *corev1.Pod, mutate func(*corev1.Pod)) bool {
	err := retry.RetryOnConflict(retry.DefaultBackoff, func() error {
		p, err := k.c.Client.CoreV1().Pods(pod.Namespace).Get(ctx, pod.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if p.UID != pod.UID {
			return apierrors.NewNotFound(corev1.Resource("pods"), pod.Name)
		}
		mutate(p)
		_, err = k.c.Client.CoreV1().Pods(pod.Namespace).UpdateStatus(ctx, p, metav1.UpdateOptions{})
		return err
	})
	return err == nil
}

func setCondition(p *corev1.Pod, t corev1.PodConditionType, s corev1.ConditionStatus, reason, msg string) {
	now := metav1.Now()
	for i := range p.Status.Conditions {
		c := &p.Status.Conditions[i]
		if c.Type == t {
			if c.Status != s {
				c.LastTransitionTime = now
			}
			c.Status, c.Reason, c.Message = s, reason, msg
			return
		}
	}
	p.Status.Conditions = append(p.Status.Conditions, corev1.PodCondition{Type: t, Status: s, Reason: reason, Message: msg, LastTransitionTime: now})
}

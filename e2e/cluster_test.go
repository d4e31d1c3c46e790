package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	authenticationv1 "k8s.io/api/authentication/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"k8s.io/utils/ptr"

	"github.com/sluice-ml/sluice/backends"
	"github.com/sluice-ml/sluice/backends/backendtest"
	"github.com/sluice-ml/sluice/backends/runstate"
	"github.com/sluice-ml/sluice/e2e/internal/pipelines"
	"github.com/sluice-ml/sluice/internal/testcluster"
	"github.com/sluice-ml/sluice/pipeline"
)

// stepOfPod returns the step a pod ran and its attempt's position among
// the step's pods: the sluice.dev/step label on kubejob, the DAG task of
// Argo's node name ("<workflow>.<task>(<retry>)") on Argo.
func stepOfPod(p *corev1.Pod) string {
	if s := p.Labels["sluice.dev/step"]; s != "" {
		return s
	}
	name := p.Annotations["workflows.argoproj.io/node-name"]
	if _, rest, ok := strings.Cut(name, "."); ok {
		name = rest
	}
	if i := strings.Index(name, "("); i >= 0 {
		name = name[:i]
	}
	return name
}

// retryOfPod is the retry a pod ran: "(N)" at the end of Argo's node
// name, "-r<k>" at the end of a kubejob Job's name, else 0.
func retryOfPod(p *corev1.Pod) int {
	if name := p.Annotations["workflows.argoproj.io/node-name"]; strings.HasSuffix(name, ")") {
		if i := strings.LastIndex(name, "("); i >= 0 {
			n, _ := strconv.Atoi(name[i+1 : len(name)-1])
			return n
		}
	}
	job := p.Labels["batch.kubernetes.io/job-name"]
	if i := strings.LastIndex(job, "-r"); i >= 0 {
		if n, err := strconv.Atoi(job[i+2:]); err == nil {
			return n
		}
	}
	return 0
}

// podsByStep lists the pods of namespace ns by step, in the order of
// their retries (creation times have whole seconds only), then of
// creation.
func podsByStep(t *testing.T, ctx context.Context, ns string) map[string][]corev1.Pod {
	t.Helper()
	pods, err := cl.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
	require.NoError(t, err)
	slices.SortFunc(pods.Items, func(a, b corev1.Pod) int {
		if c := retryOfPod(&a) - retryOfPod(&b); c != 0 {
			return c
		}
		return a.CreationTimestamp.Compare(b.CreationTimestamp.Time)
	})
	out := map[string][]corev1.Pod{}
	for _, p := range pods.Items {
		out[stepOfPod(&p)] = append(out[stepOfPod(&p)], p)
	}
	return out
}

// TestPlacement checks that the real scheduler puts each step on the
// pool its profile asks for: CPU steps on CPU nodes (never on GPU
// nodes), spot steps on spot nodes, MIG steps on the A100 pool, and the
// on-demand fall-back of a preempted spot step on the on-demand GPU pool.
func TestPlacement(t *testing.T) {
	need(t)
	for _, backend := range clusterBackends {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
			defer cancel()
			ns, _ := namespace(t, true)
			b := clusterBackend(t, backend, ns, imageFor(t, backend, pipelines.Placement))
			st, err := pipeline.Run(ctx, pipelines.Build(pipelines.Placement), b, nil)
			require.NoError(t, err, summary(st))

			fb := st.Step("fallback")
			require.NotNil(t, fb)
			require.Len(t, fb.Attempts, 2, summary(st))
			assert.Equal(t, backends.ReasonInfra, fb.Attempts[0].Reason)
			assert.True(t, fb.Attempts[1].OnDemand, "the last infra attempt falls back to on demand")

			pods := podsByStep(t, ctx, ns)
			pool := func(step string, i int) string {
				ps := pods[step]
				require.Greater(t, len(ps), i, "pods of %s: %v", step, pods)
				return cl.PoolOf(ps[i].Spec.NodeName)
			}
			assert.Contains(t, []string{testcluster.PoolCPU, testcluster.PoolCPUOnDemand, testcluster.PoolScarce}, pool("plain", 0), "no profile: an untainted CPU node, never a GPU or spot one")
			assert.Equal(t, testcluster.PoolCPU, pool("cpu", 0))
			assert.Equal(t, testcluster.PoolCPUSpot, pool("spot", 0))
			assert.Equal(t, testcluster.PoolGPUOnDemand, pool("mig", 0), "a MIG step that is not preemptible")
			assert.Equal(t, testcluster.PoolGPUSpot, pool("fallback", 0), "a preemptible MIG step")
			assert.Equal(t, testcluster.PoolGPUOnDemand, pool("fallback", 1), "its on-demand fall-back")
		})
	}
}

// TestStockout runs a preemptible step on a pool whose spot capacity has
// run out: on kubejob the pod stays unschedulable, the step says why
// while it waits, gives up after its pending timeout (an infrastructure
// failure) and falls back to the pool's on-demand nodes. Without a
// pending timeout (on both backends) the step waits until the run is
// canceled, and then its summary line says it was canceled while
// unschedulable, in the scheduler's words.
func TestStockout(t *testing.T) {
	need(t)
	t.Run("fallback", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
		defer cancel()
		ns, _ := namespace(t, true)
		b := clusterBackend(t, "kubejob", ns, imageFor(t, "kubejob", pipelines.Stockout))
		st, err := pipeline.Run(ctx, pipelines.Build(pipelines.Stockout), b, nil)
		require.NoError(t, err, summary(st))
		s := st.Step("wait-for-spot")
		require.NotNil(t, s)
		require.Len(t, s.Attempts, 2, summary(st))
		assert.Equal(t, backends.ReasonInfra, s.Attempts[0].Reason)
		assert.Contains(t, s.Attempts[0].Message, fmt.Sprintf("unschedulable for %v: 0/", pipelines.PendingTimeout), "the scheduler's own words")
		assert.Contains(t, s.Attempts[0].Message, "didn't match Pod's node affinity/selector")
		assert.True(t, s.Attempts[1].OnDemand)
		pods := podsByStep(t, ctx, ns)["wait-for-spot"]
		require.NotEmpty(t, pods)
		assert.Equal(t, testcluster.PoolScarce, cl.PoolOf(pods[len(pods)-1].Spec.NodeName))
	})
	for _, backend := range clusterBackends {
		t.Run("canceled/"+backend, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
			defer cancel()
			ns, _ := namespace(t, true)
			b := clusterBackend(t, backend, ns, imageFor(t, backend, pipelines.Stuck))
			runCtx, stop := context.WithCancel(ctx)
			defer stop()
			var waited atomic.Value // the step's message while it waited
			st, err := pipeline.Run(runCtx, pipelines.Build(pipelines.Stuck), b, &pipeline.RunOptions{Progress: func(st *backends.RunStatus) {
				if s := st.Step("wait-for-spot"); s != nil && strings.HasPrefix(s.Message, runstate.Unschedulable("")) {
					waited.CompareAndSwap(nil, s.Message)
					stop()
				}
			}})
			require.NotNil(t, st, "%v", err)
			require.Error(t, err)
			require.NotNil(t, waited.Load(), "the step never said it was unschedulable: %s", summary(st))
			assert.Contains(t, waited.Load(), "didn't match Pod's node affinity/selector", "the scheduler's own words")
			assert.Equal(t, backends.PhaseCanceled, st.Phase)
			s := st.Step("wait-for-spot")
			require.NotNil(t, s)
			assert.Equal(t, backends.PhaseCanceled, s.Phase)
			// Canceled while waiting, in the scheduler's words as last
			// seen (which may have changed since the first, as nodes of
			// other tests come and go).
			want := runstate.CanceledWaiting(runstate.Unschedulable(""))
			assert.True(t, strings.HasPrefix(s.Message, want), "%q, want the prefix %q (it waited with %q)", s.Message, want, waited.Load())
			assert.Contains(t, s.Message, "didn't match Pod's node affinity/selector")
			var sum strings.Builder
			pipeline.WriteSummary(&sum, st)
			t.Logf("summary:\n%s", sum.String())
			assert.Regexp(t, `(?m)^  wait-for-spot +Canceled .*`+regexp.QuoteMeta(s.Message)+`$`, sum.String())
		})
	}
}

// TestPreemption evicts a step's pod through the Eviction API while its
// task runs: the step is retried as an infrastructure failure, without
// touching its application budget (which is zero), on both backends.
func TestPreemption(t *testing.T) {
	need(t)
	for _, backend := range clusterBackends {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
			defer cancel()
			ns, _ := namespace(t, true)
			image := imageFor(t, backend, pipelines.Preempt)
			state := stateDir(image)
			var once sync.Once
			evicted := make(chan error, 1)
			cl.Kubelet.OnRunning(ns, func(p *corev1.Pod) {
				if stepOfPod(p) != "work" {
					return
				}
				once.Do(func() {
					// Evict once the task runs (it has counted its call):
					// a process stopped before that never started the task.
					err := wait.PollUntilContextTimeout(ctx, 10*time.Millisecond, time.Minute, true, func(context.Context) (bool, error) {
						return calls(t, state, "work") > 0, nil
					})
					if err == nil {
						err = cl.Client.PolicyV1().Evictions(ns).Evict(ctx, &policyv1.Eviction{
							ObjectMeta: metav1.ObjectMeta{Name: p.Name, Namespace: ns},
						})
					}
					evicted <- err
				})
			})
			t.Cleanup(func() { cl.Kubelet.OnRunning(ns, nil) })
			b := clusterBackend(t, backend, ns, image)
			st, err := pipeline.Run(ctx, pipelines.Build(pipelines.Preempt), b, nil)
			select {
			case eerr := <-evicted:
				require.NoError(t, eerr, "eviction")
			default:
				t.Fatal("the step's pod was never evicted")
			}
			require.NoError(t, err, summary(st))
			w := st.Step("work")
			require.NotNil(t, w)
			require.Len(t, w.Attempts, 2, summary(st))
			assert.Equal(t, backends.ReasonInfra, w.Attempts[0].Reason, "an eviction is an infrastructure failure")
			assert.Equal(t, backends.PhaseSucceeded, w.Attempts[1].Phase)
		})
	}
}

// TestOrchestratorKilled SIGKILLs the kubejob orchestrator — a real
// process, the pipeline program run as a user runs it — while a step
// runs, starts it again with the same run id, and checks that the run
// ends, every step ran exactly once, and nothing is left running.
func TestOrchestratorKilled(t *testing.T) {
	need(t)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	ns, kubeconfig := namespace(t, true)
	image := imageFor(t, "kubejob", pipelines.Steady)
	state := stateDir(image)
	const runID = "steady-1"
	orchestrate := func() *exec.Cmd {
		cmd := exec.CommandContext(ctx, progs["e2eprog"], "run", "-backend", "kubejob", "-run-id", runID)
		cmd.Env = append(os.Environ(), "KUBECONFIG="+kubeconfig, pipelines.Env+"="+pipelines.Steady, pipelines.ImageEnv+"="+image)
		cmd.Stdout, cmd.Stderr = &prefixWriter{t: t, prefix: "orchestrator: "}, &prefixWriter{t: t, prefix: "orchestrator: "}
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		return cmd
	}
	// Kill it twice: once while s2's pod runs, once right after s4's Job
	// was created.
	for _, at := range []struct {
		job     string
		running bool
	}{{"s2", true}, {"s4", false}} {
		cmd := orchestrate()
		require.NoError(t, cmd.Start())
		err := wait.PollUntilContextTimeout(ctx, 20*time.Millisecond, 3*time.Minute, true, func(ctx context.Context) (bool, error) {
			j, err := cl.Client.BatchV1().Jobs(ns).Get(ctx, runID+"-"+at.job, metav1.GetOptions{})
			if apierrors.IsNotFound(err) {
				return false, nil
			}
			if err != nil || !at.running {
				return err == nil, err
			}
			return j.Status.Active > 0 && ptrVal(j.Status.Ready) > 0, nil
		})
		require.NoError(t, err, "waiting for %s", at.job)
		require.NoError(t, syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL))
		_ = cmd.Wait()
		t.Logf("orchestrator killed with %s's Job present", at.job)
	}
	cmd := orchestrate()
	require.NoError(t, cmd.Run(), "the resumed orchestrator")

	for _, s := range pipelines.SteadySteps {
		assert.Equal(t, 1, calls(t, state, s), "step %s ran once", s)
	}
	jobs, err := cl.Client.BatchV1().Jobs(ns).List(ctx, metav1.ListOptions{})
	require.NoError(t, err)
	var names []string
	for _, j := range jobs.Items {
		names = append(names, j.Name)
		assert.True(t, jobDone(&j), "job %s is finished", j.Name)
	}
	want := []string{}
	for _, s := range pipelines.SteadySteps {
		want = append(want, runID+"-"+s)
	}
	assert.ElementsMatch(t, want, names, "one Job per step, no more")
	pods, err := cl.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
	require.NoError(t, err)
	for _, p := range pods.Items {
		assert.Contains(t, []corev1.PodPhase{corev1.PodSucceeded}, p.Status.Phase, "pod %s", p.Name)
	}

	// Deleting a finished step's Job takes its pod with it: the garbage
	// collector deletes the pod and the kubelet confirms the deletion of a
	// pod whose containers have ended.
	first := runID + "-" + pipelines.SteadySteps[0]
	require.NoError(t, cl.Client.BatchV1().Jobs(ns).Delete(ctx, first, metav1.DeleteOptions{PropagationPolicy: ptr.To(metav1.DeletePropagationBackground)}))
	err = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
		ps, err := cl.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "batch.kubernetes.io/job-name=" + first})
		return err == nil && len(ps.Items) == 0, err
	})
	require.NoError(t, err, "the pod of a deleted Job is gone")
}

func ptrVal(p *int32) int32 {
	if p == nil {
		return 0
	}
	return *p
}

func jobDone(j *batchv1.Job) bool {
	for _, c := range j.Status.Conditions {
		if (c.Type == batchv1.JobComplete || c.Type == batchv1.JobFailed) && c.Status == corev1.ConditionTrue {
			return true
		}
	}
	return false
}

// stateDir is the call-count directory imageFor gave image.
func stateDir(image string) string {
	img, _ := cl.Kubelet.Image(image)
	for _, e := range img.Env {
		if v, ok := strings.CutPrefix(e, backendtest.StateEnv+"="); ok {
			return v
		}
	}
	return ""
}

// calls is how many times the pods called step's task.
func calls(t *testing.T, dir, step string) int {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, fmt.Sprintf("%x.*", step)))
	require.NoError(t, err)
	return len(m)
}

func summary(st *backends.RunStatus) string {
	if st == nil {
		return "<no status>"
	}
	var b strings.Builder
	pipeline.WriteSummary(&b, st)
	return b.String()
}

// prefixWriter logs what a process writes, line by line.
type prefixWriter struct {
	t      *testing.T
	prefix string
	mu     sync.Mutex
	buf    []byte
}

func (w *prefixWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	for {
		i := slices.Index(w.buf, '\n')
		if i < 0 {
			return len(p), nil
		}
		w.t.Log(w.prefix + string(w.buf[:i]))
		w.buf = w.buf[i+1:]
	}
}

// kubeconfigAs writes a kubeconfig for ServiceAccount sa of namespace ns,
// with a token from the TokenRequest API, and returns its path.
func kubeconfigAs(t *testing.T, ctx context.Context, ns, sa string) string {
	t.Helper()
	_, err := cl.Client.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: sa}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		require.NoError(t, err)
	}
	tr, err := cl.Client.CoreV1().ServiceAccounts(ns).CreateToken(ctx, sa, &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To[int64](3600)},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["e2e"] = &clientcmdapi.Cluster{Server: cl.Config.Host, CertificateAuthorityData: cl.Config.CAData}
	cfg.AuthInfos[sa] = &clientcmdapi.AuthInfo{Token: tr.Status.Token}
	cfg.Contexts["e2e"] = &clientcmdapi.Context{Cluster: "e2e", AuthInfo: sa, Namespace: ns}
	cfg.CurrentContext = "e2e"
	path := filepath.Join(t.TempDir(), sa+".kubeconfig")
	require.NoError(t, clientcmd.WriteToFile(*cfg, path))
	return path
}

// TestLeastPrivilege runs the quickstart's kubejob orchestrator as a
// ServiceAccount on an API server that enforces RBAC: without a Role it
// stops at its first call and names the Role it needs; with the
// ServiceAccount, Role and RoleBinding that compile prints, it runs the
// whole pipeline within them.
func TestLeastPrivilege(t *testing.T) {
	need(t)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	ns, admin := namespace(t, true)
	root := quickstartStore(t, ns)

	nobody := kubeconfigAs(t, ctx, ns, "nobody")
	r := runProg(t, ctx, "quickstart", nobody, "run", "-backend", "kubejob", "-p", quickstartRows, "-artifacts", root)
	require.NotEqual(t, 0, r.code, "a run without any permission must fail:\n%s", r.stdout)
	assert.Contains(t, r.stderr, "forbidden")
	assert.Contains(t, r.stderr, "quickstart-orchestrator", "the error names the Role compile prints")

	compiled := runProg(t, ctx, "quickstart", admin, "compile", "-backend", "kubejob")
	require.Equal(t, 0, compiled.code, compiled.stderr)
	docs, err := decodeObjects([]byte(compiled.stdout))
	require.NoError(t, err)
	applied := 0
	for _, obj := range docs {
		switch obj.GetKind() {
		case "ServiceAccount", "Role", "RoleBinding":
			obj.SetNamespace(ns)
			m, err := cl.RESTMapper().RESTMapping(obj.GroupVersionKind().GroupKind(), obj.GroupVersionKind().Version)
			require.NoError(t, err)
			_, err = cl.Dynamic().Resource(m.Resource).Namespace(ns).Create(ctx, obj, metav1.CreateOptions{})
			require.NoError(t, err, "%s %s", obj.GetKind(), obj.GetName())
			applied++
		}
	}
	require.Equal(t, 3, applied, "compile prints a ServiceAccount, a Role and a RoleBinding")

	orch := kubeconfigAs(t, ctx, ns, "quickstart-orchestrator")
	r = runProg(t, ctx, "quickstart", orch, "run", "-backend", "kubejob", "-p", quickstartRows, "-artifacts", root)
	require.Equal(t, 0, r.code, "the run as the compiled Role:\n%s\n%s", r.stdout, r.stderr)
}

// TestOtherPodsAreKwoks checks the harness itself: a pod that is not a
// Sluice step's (here a plain Job's) is played by kwok, not by the host
// kubelet, and completes.
func TestOtherPodsAreKwoks(t *testing.T) {
	need(t)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	ns, _ := namespace(t, false)
	before := cl.Kubelet.Started()
	job := &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: "plain", Namespace: ns},
		Spec: batchv1.JobSpec{
			BackoffLimit: ptr.To[int32](0),
			Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
				RestartPolicy: corev1.RestartPolicyNever,
				NodeSelector:  map[string]string{testcluster.LabelNodePool: "cpu-pool"},
				Containers:    []corev1.Container{{Name: "main", Image: "registry.example/not-ours:v1"}},
			}},
		},
	}
	_, err := cl.Client.BatchV1().Jobs(ns).Create(ctx, job, metav1.CreateOptions{})
	require.NoError(t, err)
	err = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		j, err := cl.Client.BatchV1().Jobs(ns).Get(ctx, "plain", metav1.GetOptions{})
		return err == nil && jobDone(j) && j.Status.Succeeded == 1, err
	})
	require.NoError(t, err, "kwok completes the Job's pod")
	pods, err := cl.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
	require.NoError(t, err)
	for _, p := range pods.Items {
		assert.False(t, testcluster.Claims(&p), "pod %s is kwok's", p.Name)
	}
	assert.Equal(t, before, cl.Kubelet.Started(), "the host kubelet started none of them")
}

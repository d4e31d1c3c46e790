package kubejob_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/sluice-ml/sluice/backends"
	"github.com/sluice-ml/sluice/backends/kubejob"
	"github.com/sluice-ml/sluice/backends/kubepod"
	"github.com/sluice-ml/sluice/pipeline"
	"github.com/sluice-ml/sluice/task"
)

// paramPipeline has a string and a float parameter.
func paramPipeline() *pipeline.Pipeline {
	p := pipeline.New("tuned", nil)
	name := pipeline.NewParam(p, "name", "base")
	lr := pipeline.NewParam(p, "lr", 0.1)
	pipeline.Add(p, task.New("train", func(_ context.Context, in struct {
		Name pipeline.Ref[string]
		LR   pipeline.Ref[float64]
	}) (float64, error) {
		return in.LR.Get() * 2, nil
	}), struct {
		Name pipeline.Ref[string]
		LR   pipeline.Ref[float64]
	}{name.Ref(), lr.Ref()})
	return p
}

// With InCluster, Compile also emits the orchestrator's Job: the program's
// run mode for this run id and its parameters, as the orchestrator's
// ServiceAccount, passing Pod Security "restricted".
func TestCompileInClusterOrchestratorJob(t *testing.T) {
	_, c := compile(t, paramPipeline(), &kubejob.Options{Pod: kubepod.Options{Image: testImage, Command: []string{"/prog"}}, RunID: "r7", InCluster: true},
		&pipeline.CompileOptions{Params: map[string]string{"name": "wide net", "lr": "0.05"}})
	require.Equal(t, []string{"ServiceAccount", "Role", "RoleBinding", "Job", "Job"}, c.kinds)
	orch := c.jobs[0]
	assert.Equal(t, "sluice-run-r7", orch.Name)
	assert.Equal(t, kubejob.RoleOrchestrator, orch.Labels[kubejob.LabelRole])
	assert.Empty(t, orch.Labels[kubejob.LabelStep])
	ctr := orch.Spec.Template.Spec.Containers[0]
	assert.Equal(t, []string{"/prog"}, ctr.Command)
	assert.Equal(t, []string{"run", "-backend", "kubejob", "-run-id", "r7", "-p", "name=wide net", "-p", "lr=0.05"}, ctr.Args)
	assert.Equal(t, "tuned-orchestrator", orch.Spec.Template.Spec.ServiceAccountName)
	assert.Nil(t, orch.Spec.Template.Spec.AutomountServiceAccountToken, "the orchestrator talks to the API server")
	assert.Contains(t, ctr.Env, corev1.EnvVar{Name: kubejob.EnvOrchestrator, Value: "1"})
	assert.Equal(t, int32(3), *orch.Spec.BackoffLimit, "a crashed orchestrator is started again and resumes")

	step := c.job(t, "train")
	assert.True(t, *step.Spec.Suspend, "a compiled step Job is a template and never runs as it is")
	assert.Equal(t, "true", step.Annotations[kubejob.AnnotationTemplate])
}

// Submit with InCluster creates the orchestrator's RBAC, the run's record
// and its Job, and only watches; the program in that Job (EnvOrchestrator
// set) orchestrates, and the submitter's Watch sees the run end.
func TestInClusterSubmitAndWatch(t *testing.T) {
	h := newHarness(t)
	defer h.Close()
	opts := &kubejob.Options{Pod: kubepod.Options{Image: testImage}, RunID: "remote-1", InCluster: true}
	p := paramPipeline()
	sub := h.backend(opts)
	art, err := pipeline.Compile(t.Context(), p, sub, &pipeline.CompileOptions{Params: map[string]string{"lr": "0.25"}})
	require.NoError(t, err)
	id, err := sub.Submit(t.Context(), art, &backends.SubmitOptions{})
	require.NoError(t, err)
	require.Equal(t, "remote-1", id)

	ctx := t.Context()
	_, err = h.cs.CoreV1().ServiceAccounts("default").Get(ctx, "tuned-orchestrator", metav1.GetOptions{})
	require.NoError(t, err)
	_, err = h.cs.RbacV1().Roles("default").Get(ctx, "tuned-orchestrator", metav1.GetOptions{})
	require.NoError(t, err)
	_, err = h.cs.RbacV1().RoleBindings("default").Get(ctx, "tuned-orchestrator", metav1.GetOptions{})
	require.NoError(t, err)
	orch, err := h.cs.BatchV1().Jobs("default").Get(ctx, "sluice-run-remote-1", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Contains(t, orch.Spec.Template.Spec.Containers[0].Args, "lr=0.25")
	require.Len(t, orch.OwnerReferences, 1, "owned by the run's record")
	assert.Equal(t, "sluice-run-remote-1", orch.OwnerReferences[0].Name)

	// The submitter only watches: no step Job appears until the
	// orchestrator runs. A status is published at the end of a
	// reconcile pass, in which an orchestrator that acts would have
	// created the first step's Job.
	first, seen := context.WithCancel(ctx)
	_, err = sub.Watch(first, id, &backends.WatchOptions{Progress: func(*backends.RunStatus) { seen() }})
	require.ErrorIs(t, err, context.Canceled, "stopped after the first status")
	_, err = h.cs.BatchV1().Jobs("default").Get(ctx, "remote-1-train", metav1.GetOptions{})
	require.Error(t, err, "the watching submitter created a step Job")

	// The orchestrator's pod: the same program, with EnvOrchestrator.
	t.Setenv(kubejob.EnvOrchestrator, "1")
	inPod := h.backend(opts)
	art2, err := pipeline.Compile(ctx, p, inPod, &pipeline.CompileOptions{Params: map[string]string{"lr": "0.25"}})
	require.NoError(t, err)
	_, err = inPod.Submit(ctx, art2, &backends.SubmitOptions{RunID: id})
	require.NoError(t, err)

	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	st, err := sub.Watch(wctx, id, &backends.WatchOptions{})
	require.NoError(t, err)
	assert.Equal(t, backends.PhaseSucceeded, st.Phase)
	assert.Equal(t, "0.5", string(step(t, st, "train").Output))
}

// A compiled template applied by hand stays suspended; the orchestrator
// reports it instead of waiting for it forever.
func TestTemplateAppliedByHand(t *testing.T) {
	h := newHarness(t)
	defer h.Close()
	opts := &kubejob.Options{Pod: kubepod.Options{Image: testImage}, RunID: "by-hand"}
	p := paramPipeline()
	b := h.backend(opts)
	art, err := pipeline.Compile(t.Context(), p, b, nil)
	require.NoError(t, err)
	var jobs []*batchv1.Job
	require.True(t, art.As(&jobs))
	tmpl := jobs[0].DeepCopy()
	tmpl.Namespace = "default"
	_, err = h.cs.BatchV1().Jobs("default").Create(t.Context(), tmpl, metav1.CreateOptions{})
	require.NoError(t, err)

	st, err := pipeline.Run(t.Context(), p, b, nil)
	require.ErrorIs(t, err, pipeline.ErrRunFailed)
	train := step(t, st, "train")
	assert.Equal(t, backends.PhaseFailed, train.Phase)
	assert.Contains(t, train.Message, "kubectl delete job by-hand-train")
	assert.Zero(t, h.cl.Started("by-hand-train"), "the template never ran")
}

// Without a client, Submit connects by the kubeconfig rules, and says so
// when there is nothing to connect to.
func TestSubmitWithoutClient(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("KUBECONFIG", filepath.Join(dir, "missing"))
	t.Setenv("HOME", dir)
	t.Setenv("KUBERNETES_SERVICE_HOST", "")
	b := kubejob.New(nil, testOptions())
	art, err := pipeline.Compile(t.Context(), paramPipeline(), b, nil)
	require.NoError(t, err, "compiling needs no cluster")
	_, err = b.Submit(t.Context(), art, &backends.SubmitOptions{})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "KUBECONFIG")
	_, statErr := os.Stat(filepath.Join(dir, "missing"))
	assert.True(t, os.IsNotExist(statErr))
}

// Without a client, the Backend builds one from the kubeconfig, with the
// context's namespace and, when the kubeconfig sets no rate limit, one
// that lets a wide layer's Jobs be created at once.
func TestConnectFromKubeconfig(t *testing.T) {
	kubeconfig := filepath.Join(t.TempDir(), "config")
	require.NoError(t, os.WriteFile(kubeconfig, []byte(`apiVersion: v1
kind: Config
clusters:
- name: test
  cluster: {server: "https://127.0.0.1:1"}
contexts:
- name: test
  context: {cluster: test, namespace: ml, user: test}
current-context: test
users:
- name: test
  user: {token: t}
`), 0o600))
	t.Setenv("KUBECONFIG", kubeconfig)
	client, ns, err := kubejob.Connect(kubejob.New(nil, nil))
	require.NoError(t, err)
	assert.Equal(t, "ml", ns)
	lim := client.(*kubernetes.Clientset).BatchV1().RESTClient().GetRateLimiter()
	require.NotNil(t, lim)
	assert.InDelta(t, kubejob.ClientQPS, lim.QPS(), 0.001)

	_, ns, err = kubejob.Connect(kubejob.New(nil, &kubejob.Options{Pod: kubepod.Options{Namespace: "team-a"}}))
	require.NoError(t, err)
	assert.Equal(t, "team-a", ns, "the namespace given wins")
}

// The program entrypoint runs a pipeline on this backend: "run -backend
// kubejob" exits 0 with a summary when the run succeeds, 1 when it fails.
func TestExecRun(t *testing.T) {
	h := newHarness(t)
	defer h.Close()
	var out, errs bytes.Buffer
	code := pipeline.Exec(t.Context(), workload(&counter{}), []string{"run", "-backend", "kubejob", "-run-id", "cli-1"}, &out, &errs, h.backend(testOptions()))
	require.Equal(t, pipeline.ExitOK, code, "stderr:\n%s", errs.String())
	assert.Contains(t, out.String(), "run cli-1 of workload: Succeeded")

	bad := pipeline.New("bad", nil)
	pipeline.Add(bad, task.New("boom", func(context.Context, struct{}) (int, error) { return 0, errors.New("no data") }), struct{}{})
	out.Reset()
	errs.Reset()
	code = pipeline.Exec(t.Context(), bad, []string{"run", "-backend", "kubejob"}, &out, &errs, h.backend(testOptions()))
	assert.Equal(t, pipeline.ExitFailed, code)
	assert.Contains(t, out.String()+errs.String(), "no data", "the task's error reaches the user")
}

package kubesim

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/utils/ptr"

	"github.com/sluice-ml/sluice/backends"
	"github.com/sluice-ml/sluice/backends/kubejob"
	"github.com/sluice-ml/sluice/backends/kubepod"
	"github.com/sluice-ml/sluice/internal/simtime"
	"github.com/sluice-ml/sluice/pipeline"
	"github.com/sluice-ml/sluice/task"
)

// Tests of the cluster simulator and the fault injector themselves.

type simNum struct{ V int }

type simOneIn struct{ X pipeline.Ref[simNum] }

// t0 is where the tests' clocks start.
var t0 = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

// simEnv returns a fake clientset with a cluster on it, on a clock at t0
// that only the test moves; the cluster is closed and goroutine leaks
// checked when the test ends.
func simEnv(t *testing.T) (*fake.Clientset, *Cluster) {
	t.Helper()
	opt := goleak.IgnoreCurrent()
	cs := fake.NewSimpleClientset()
	c := New(t, cs, simtime.New(t0))
	t.Cleanup(func() {
		c.Close()
		goleak.VerifyNone(t, opt)
	})
	return cs, c
}

// simCompile compiles p as run r1 and returns its Jobs by step, and its Plan.
func simCompile(t *testing.T, p *pipeline.Pipeline) (map[string]*batchv1.Job, *backends.Plan) {
	t.Helper()
	art, err := pipeline.Compile(t.Context(), p, kubejob.New(nil, &kubejob.Options{Pod: kubepod.Options{Image: "img"}, RunID: "r1"}), nil)
	require.NoError(t, err)
	var jobs []*batchv1.Job
	require.True(t, art.As(&jobs))
	var plan *backends.Plan
	require.True(t, art.As(&plan))
	out := map[string]*batchv1.Job{}
	for _, j := range jobs {
		out[j.Labels[kubejob.LabelStep]] = j
	}
	return out, plan
}

// materialize returns a copy of job ready to create: ${REF} placeholders in
// its arguments replaced by values, namespace default.
func materialize(job *batchv1.Job, values map[string]string) *batchv1.Job {
	j := job.DeepCopy()
	j.Namespace = metav1.NamespaceDefault
	j.Spec.Suspend = nil // compiled templates are suspended; the orchestrator creates them running
	args := j.Spec.Template.Spec.Containers[0].Args
	for i := range args {
		for k, v := range values {
			args[i] = strings.ReplaceAll(args[i], "${"+k+"}", v)
		}
	}
	return j
}

// setInput replaces the -input argument of job's container.
func setInput(job *batchv1.Job, input string) {
	args := job.Spec.Template.Spec.Containers[0].Args
	i := slices.Index(args, "-input")
	args[i+1] = input
}

func createJob(t *testing.T, cs *fake.Clientset, j *batchv1.Job) {
	t.Helper()
	_, err := cs.BatchV1().Jobs(metav1.NamespaceDefault).Create(t.Context(), j, metav1.CreateOptions{})
	require.NoError(t, err)
}

func eventually(t *testing.T, cond func() bool, format string, args ...any) {
	t.Helper()
	require.Eventually(t, cond, 10*time.Second, 2*time.Millisecond, append([]any{format}, args...)...)
}

// waitFinished waits for Job name's terminal condition and returns it.
func waitFinished(t *testing.T, c *Cluster, name string) (batchv1.JobConditionType, string) {
	t.Helper()
	var typ batchv1.JobConditionType
	var reason string
	eventually(t, func() bool { typ, reason = c.Finished(name); return typ != "" }, "Job %s finishes", name)
	return typ, reason
}

func conditionTypes(j *batchv1.Job) []batchv1.JobConditionType {
	var out []batchv1.JobConditionType
	for _, c := range j.Status.Conditions {
		out = append(out, c.Type)
	}
	return out
}

func terminated(t *testing.T, p *corev1.Pod) *corev1.ContainerStateTerminated {
	t.Helper()
	require.Len(t, p.Status.ContainerStatuses, 1)
	tr := p.Status.ContainerStatuses[0].State.Terminated
	require.NotNil(t, tr, "pod %s terminated", p.Name)
	return tr
}

// flush returns once the controller has handled every event queued
// before the call, such as the timers a step of the clock fired.
func (c *Cluster) flush() {
	done := make(chan struct{})
	c.post(func() { close(done) })
	select {
	case <-done:
	case <-c.ctx.Done():
	}
}

// known reports whether the simulator has seen Job name.
func (c *Cluster) known(name string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.jobs[name] != nil
}

// attempts records the task.Attempt of each call of a task.
type attempts struct {
	mu  sync.Mutex
	all []task.Attempt
}

func (a *attempts) add(ctx context.Context) task.Attempt {
	at, _ := task.AttemptFrom(ctx)
	a.mu.Lock()
	defer a.mu.Unlock()
	a.all = append(a.all, at)
	return at
}

func (a *attempts) list() []task.Attempt {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.all)
}

func TestSimSuccessAndHeldJobs(t *testing.T) {
	cs, c := simEnv(t)
	var seen attempts
	p := pipeline.New("simok", nil)
	prep := pipeline.Add(p, task.New("prep", func(ctx context.Context, _ struct{}) (simNum, error) {
		seen.add(ctx)
		return simNum{V: 7}, nil
	}), struct{}{})
	pipeline.Add(p, task.New("double", func(ctx context.Context, in simOneIn) (simNum, error) {
		seen.add(ctx)
		return simNum{V: 2 * in.X.Get().V}, nil
	}), simOneIn{X: prep.Output()})
	jobs, plan := simCompile(t, p)

	// Created before its plan is registered: held.
	createJob(t, cs, materialize(jobs["prep"], nil))
	eventually(t, func() bool { return c.known("r1-prep") }, "the sim sees the Job")
	require.Empty(t, c.PodsOf("r1-prep"), "held until registerPlan")
	c.RegisterPlan(plan)

	typ, reason := waitFinished(t, c, "r1-prep")
	require.Equal(t, batchv1.JobComplete, typ)
	require.Equal(t, batchv1.JobReasonCompletionsReached, reason)
	j := c.Job("r1-prep")
	require.Equal(t, []batchv1.JobConditionType{batchv1.JobSuccessCriteriaMet, batchv1.JobComplete}, conditionTypes(j))
	require.NotEmpty(t, j.UID)
	require.NotNil(t, j.Status.StartTime)
	require.NotNil(t, j.Status.CompletionTime)
	require.EqualValues(t, 1, j.Status.Succeeded)
	require.EqualValues(t, 0, j.Status.Active)
	require.EqualValues(t, 0, j.Status.Failed)

	pods := c.PodsOf("r1-prep")
	require.Len(t, pods, 1)
	pod := pods[0]
	require.Equal(t, "r1-prep-0", pod.Name)
	require.Equal(t, corev1.PodSucceeded, pod.Status.Phase)
	require.Equal(t, "r1-prep", pod.Labels["job-name"])
	require.Equal(t, "r1-prep", pod.Labels["batch.kubernetes.io/job-name"])
	require.Equal(t, string(j.UID), pod.Labels["batch.kubernetes.io/controller-uid"])
	require.Equal(t, "r1", pod.Labels[kubejob.LabelRun])
	require.Equal(t, "prep", pod.Labels[kubejob.LabelStep])
	require.Len(t, pod.OwnerReferences, 1)
	require.Equal(t, j.UID, pod.OwnerReferences[0].UID)
	require.True(t, *pod.OwnerReferences[0].Controller)
	tr := terminated(t, pod)
	require.EqualValues(t, 0, tr.ExitCode)
	require.JSONEq(t, `{"V":7}`, tr.Message)
	require.Equal(t, 1, c.Started("r1-prep"))

	// The next step, with the output substituted as the orchestrator does.
	createJob(t, cs, materialize(jobs["double"], map[string]string{"prep": tr.Message}))
	typ, _ = waitFinished(t, c, "r1-double")
	require.Equal(t, batchv1.JobComplete, typ)
	dp := c.PodsOf("r1-double")
	require.Len(t, dp, 1)
	require.JSONEq(t, `{"V":14}`, terminated(t, dp[0]).Message)
	require.True(t, dp[0].CreationTimestamp.After(pod.CreationTimestamp.Time), "creation timestamps increase")
	require.Equal(t, []task.Attempt{{Step: "prep", Instance: -1, Number: 1}, {Step: "double", Instance: -1, Number: 1}}, seen.list())
}

func TestSimAppFailureBackoffLimit(t *testing.T) {
	cs, c := simEnv(t)
	var seen attempts
	p := pipeline.New("simfail", nil)
	pipeline.Add(p, task.New("fail", func(ctx context.Context, _ struct{}) (simNum, error) {
		seen.add(ctx)
		return simNum{}, errors.New("boom")
	}).WithRetry(task.Retry{App: 2}), struct{}{})
	jobs, plan := simCompile(t, p)
	c.RegisterPlan(plan)
	job := materialize(jobs["fail"], nil)
	require.EqualValues(t, 2, *job.Spec.BackoffLimit)
	createJob(t, cs, job)

	typ, reason := waitFinished(t, c, "r1-fail")
	require.Equal(t, batchv1.JobFailed, typ)
	require.Equal(t, batchv1.JobReasonBackoffLimitExceeded, reason)
	j := c.Job("r1-fail")
	require.Equal(t, []batchv1.JobConditionType{batchv1.JobFailureTarget, batchv1.JobFailed}, conditionTypes(j))
	require.Equal(t, j.Status.Conditions[0].Reason, j.Status.Conditions[1].Reason)
	require.Equal(t, "Job has reached the specified backoff limit", j.Status.Conditions[1].Message)
	require.EqualValues(t, 3, j.Status.Failed)
	require.EqualValues(t, 0, j.Status.Active)
	require.Nil(t, j.Status.CompletionTime)

	pods := c.PodsOf("r1-fail")
	require.Len(t, pods, 3)
	// The task mode writes the error to the termination log; without
	// it, FallbackToLogsOnError would take the stderr line.
	want := "boom"
	for i, pod := range pods {
		require.Equal(t, fmt.Sprintf("r1-fail-%d", i), pod.Name)
		require.Equal(t, corev1.PodFailed, pod.Status.Phase)
		tr := terminated(t, pod)
		require.EqualValues(t, 1, tr.ExitCode)
		require.Equal(t, want, tr.Message)
		if i > 0 {
			require.True(t, pod.CreationTimestamp.After(pods[i-1].CreationTimestamp.Time))
		}
	}
	require.Equal(t, 3, c.Started("r1-fail"))
	var numbers []int
	for _, a := range seen.list() {
		numbers = append(numbers, a.Number)
	}
	require.Equal(t, []int{1, 2, 3}, numbers)
}

// disruptionAction returns the action of the compiled Job's rule on the
// DisruptionTarget condition.
func disruptionAction(t *testing.T, j *batchv1.Job) batchv1.PodFailurePolicyAction {
	t.Helper()
	require.NotNil(t, j.Spec.PodFailurePolicy)
	for _, r := range j.Spec.PodFailurePolicy.Rules {
		for _, pc := range r.OnPodConditions {
			if pc.Type == corev1.DisruptionTarget {
				return r.Action
			}
		}
	}
	t.Fatal("no rule for DisruptionTarget")
	return ""
}

func TestSimPreemptionWithCompiledPolicy(t *testing.T) {
	cs, c := simEnv(t)
	p := pipeline.New("simpre", nil)
	pipeline.Add(p, task.New("train", func(ctx context.Context, _ struct{}) (simNum, error) {
		if at, _ := task.AttemptFrom(ctx); at.Number == 1 {
			return simNum{}, fmt.Errorf("node reclaimed: %w", task.ErrInfrastructure)
		}
		return simNum{V: 1}, nil
	}).WithRetry(task.Retry{App: 1, Infra: 2}), struct{}{})
	jobs, plan := simCompile(t, p)
	c.RegisterPlan(plan)
	createJob(t, cs, materialize(jobs["train"], nil))
	typ, reason := waitFinished(t, c, "r1-train")

	pods := c.PodsOf("r1-train")
	first := pods[0]
	require.Equal(t, corev1.PodFailed, first.Status.Phase)
	require.EqualValues(t, 143, terminated(t, first).ExitCode)
	i := slices.IndexFunc(first.Status.Conditions, func(pc corev1.PodCondition) bool { return pc.Type == corev1.DisruptionTarget })
	require.GreaterOrEqual(t, i, 0, "DisruptionTarget condition")
	require.Equal(t, corev1.ConditionTrue, first.Status.Conditions[i].Status)
	require.Equal(t, "PreemptionByScheduler", first.Status.Conditions[i].Reason)

	j := c.Job("r1-train")
	switch action := disruptionAction(t, jobs["train"]); action {
	case batchv1.PodFailurePolicyActionIgnore:
		require.Equal(t, batchv1.JobComplete, typ)
		require.Len(t, pods, 2)
		require.EqualValues(t, 0, j.Status.Failed, "ignored failures are not counted")
	case batchv1.PodFailurePolicyActionFailJob:
		require.Equal(t, batchv1.JobFailed, typ)
		require.Equal(t, batchv1.JobReasonPodFailurePolicy, reason)
		require.Len(t, pods, 1)
		require.Equal(t, "Pod default/r1-train-0 has condition DisruptionTarget matching FailJob rule at index 0", j.Status.Conditions[0].Message)
	default:
		t.Fatalf("unexpected action %s", action)
	}
}

type simModeIn struct {
	Mode string // "preempt" or "exit"
	Code int
}

// TestSimPodFailurePolicy runs a task that fails its first attempt (as
// Mode says) and succeeds the second, under hand-written policies.
func TestSimPodFailurePolicy(t *testing.T) {
	cs, c := simEnv(t)
	p := pipeline.New("simpfp", nil)
	pipeline.Add(p, task.New("flaky", func(ctx context.Context, in simModeIn) (simNum, error) {
		at, _ := task.AttemptFrom(ctx)
		if at.Number > 1 {
			return simNum{V: at.Number}, nil
		}
		if in.Mode == "preempt" {
			return simNum{}, fmt.Errorf("spot reclaimed: %w", task.ErrInfrastructure)
		}
		return simNum{}, fmt.Errorf("failed: %w", ExitStatus(in.Code))
	}), simModeIn{})
	jobs, plan := simCompile(t, p)
	c.RegisterPlan(plan)

	onCond := func(a batchv1.PodFailurePolicyAction) batchv1.PodFailurePolicyRule {
		return batchv1.PodFailurePolicyRule{Action: a, OnPodConditions: []batchv1.PodFailurePolicyOnPodConditionsPattern{
			{Type: corev1.DisruptionTarget, Status: corev1.ConditionTrue}}}
	}
	onExit := func(a batchv1.PodFailurePolicyAction, op batchv1.PodFailurePolicyOnExitCodesOperator, ctr string, codes ...int32) batchv1.PodFailurePolicyRule {
		r := batchv1.PodFailurePolicyRule{Action: a, OnExitCodes: &batchv1.PodFailurePolicyOnExitCodesRequirement{Operator: op, Values: codes}}
		if ctr != "" {
			r.OnExitCodes.ContainerName = ptr.To(ctr)
		}
		return r
	}
	const (
		ignore  = batchv1.PodFailurePolicyActionIgnore
		failJob = batchv1.PodFailurePolicyActionFailJob
		count   = batchv1.PodFailurePolicyActionCount
		in      = batchv1.PodFailurePolicyOnExitCodesOpIn
		notIn   = batchv1.PodFailurePolicyOnExitCodesOpNotIn
	)
	cases := []struct {
		name    string
		input   string
		backoff int32
		rules   []batchv1.PodFailurePolicyRule // nil: no policy
		want    batchv1.JobConditionType
		reason  string
		message string
		failed  int32
	}{
		{"preempt-ignore", `{"Mode":"preempt"}`, 0, []batchv1.PodFailurePolicyRule{onCond(ignore)}, batchv1.JobComplete, "CompletionsReached", "", 0},
		{"preempt-failjob", `{"Mode":"preempt"}`, 3, []batchv1.PodFailurePolicyRule{onCond(failJob)}, batchv1.JobFailed, "PodFailurePolicy",
			"Pod default/preempt-failjob-0 has condition DisruptionTarget matching FailJob rule at index 0", 1},
		{"preempt-count", `{"Mode":"preempt"}`, 0, []batchv1.PodFailurePolicyRule{onCond(count)}, batchv1.JobFailed, "BackoffLimitExceeded", "", 1},
		{"exit3-failjob", `{"Mode":"exit","Code":3}`, 3, []batchv1.PodFailurePolicyRule{onCond(ignore), onExit(failJob, in, "main", 2, 3)}, batchv1.JobFailed, "PodFailurePolicy",
			"Container main for pod default/exit3-failjob-0 failed with exit code 3 matching FailJob rule at index 1", 1},
		{"exit3-other-container", `{"Mode":"exit","Code":3}`, 1, []batchv1.PodFailurePolicyRule{onExit(failJob, in, "sidecar", 3)}, batchv1.JobComplete, "CompletionsReached", "", 1},
		{"exit1-notin", `{"Mode":"exit","Code":1}`, 1, []batchv1.PodFailurePolicyRule{onExit(failJob, notIn, "", 1)}, batchv1.JobComplete, "CompletionsReached", "", 1},
		{"exit5-notin", `{"Mode":"exit","Code":5}`, 1, []batchv1.PodFailurePolicyRule{onExit(failJob, notIn, "", 1)}, batchv1.JobFailed, "PodFailurePolicy",
			"Container main for pod default/exit5-notin-0 failed with exit code 5 matching FailJob rule at index 0", 1},
		{"exit1-ignore", `{"Mode":"exit","Code":1}`, 0, []batchv1.PodFailurePolicyRule{onExit(ignore, in, "", 1)}, batchv1.JobComplete, "CompletionsReached", "", 0},
		{"first-rule-wins", `{"Mode":"exit","Code":1}`, 0, []batchv1.PodFailurePolicyRule{onExit(ignore, in, "", 1), onExit(failJob, notIn, "", 0)}, batchv1.JobComplete, "CompletionsReached", "", 0},
		{"no-policy", `{"Mode":"exit","Code":1}`, 0, nil, batchv1.JobFailed, "BackoffLimitExceeded", "Job has reached the specified backoff limit", 1},
	}
	for _, tc := range cases {
		job := materialize(jobs["flaky"], nil)
		job.Name = tc.name
		job.Labels[kubejob.LabelRun] = tc.name // attempts are counted per run, step and instance
		job.Spec.Template.Labels[kubejob.LabelRun] = tc.name
		job.Spec.BackoffLimit = ptr.To(tc.backoff)
		job.Spec.PodFailurePolicy = nil
		if tc.rules != nil {
			job.Spec.PodFailurePolicy = &batchv1.PodFailurePolicy{Rules: tc.rules}
		}
		setInput(job, tc.input)
		createJob(t, cs, job)
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			typ, reason := waitFinished(t, c, tc.name)
			require.Equal(t, tc.want, typ)
			require.Equal(t, tc.reason, reason)
			j := c.Job(tc.name)
			require.Equal(t, tc.failed, j.Status.Failed)
			if tc.message != "" {
				require.Equal(t, tc.message, j.Status.Conditions[len(j.Status.Conditions)-1].Message)
			}
		})
	}
}

func TestSimWrongInvocationExits2(t *testing.T) {
	cs, c := simEnv(t)
	calls := 0
	var mu sync.Mutex
	p := pipeline.New("siminv", nil)
	up := pipeline.Add(p, task.New("up", func(context.Context, struct{}) (simNum, error) { return simNum{}, nil }), struct{}{})
	pipeline.Add(p, task.New("down", func(context.Context, simOneIn) (simNum, error) {
		mu.Lock()
		calls++
		mu.Unlock()
		return simNum{}, nil
	}).WithRetry(task.Retry{App: 3}), simOneIn{X: up.Output()})
	jobs, plan := simCompile(t, p)
	c.RegisterPlan(plan)
	// The ${up} placeholder left in: the input is not JSON.
	createJob(t, cs, materialize(jobs["down"], nil))
	typ, reason := waitFinished(t, c, "r1-down")
	require.Equal(t, batchv1.JobFailed, typ)
	require.Equal(t, batchv1.JobReasonPodFailurePolicy, reason, "the compiled policy fails the Job on exit 2")
	pods := c.PodsOf("r1-down")
	require.Len(t, pods, 1)
	require.EqualValues(t, 2, terminated(t, pods[0]).ExitCode)
	require.Contains(t, c.Job("r1-down").Status.Conditions[1].Message, "failed with exit code 2 matching FailJob rule")
	mu.Lock()
	defer mu.Unlock()
	require.Zero(t, calls, "the task never ran")
}

func TestSimPodDeadline(t *testing.T) {
	cs, c := simEnv(t)
	var deadline time.Time
	var mu sync.Mutex
	started := make(chan struct{})
	p := pipeline.New("simslow", nil)
	pipeline.Add(p, task.New("slow", func(ctx context.Context, _ struct{}) (simNum, error) {
		d, _ := ctx.Deadline()
		mu.Lock()
		deadline = d
		mu.Unlock()
		close(started)
		<-ctx.Done()
		return simNum{V: 1}, nil // too late: the pod has failed already
	}).WithTimeout(time.Second), struct{}{})
	jobs, plan := simCompile(t, p)
	c.RegisterPlan(plan)
	job := materialize(jobs["slow"], nil)
	require.EqualValues(t, 1, *job.Spec.Template.Spec.ActiveDeadlineSeconds)
	createJob(t, cs, job)
	waitChan(t, started, "task start")
	c.clk.Step(time.Second - time.Nanosecond)
	c.flush()
	typ, _ := c.Finished("r1-slow")
	require.Empty(t, typ, "not before the deadline")
	c.clk.Step(time.Nanosecond)
	typ, reason := waitFinished(t, c, "r1-slow")
	require.Equal(t, batchv1.JobFailed, typ)
	// Stopped by SIGTERM, the task mode exits 143, which fails the Job
	// at once: the orchestrator tells the timeout from the pod's reason.
	require.Equal(t, batchv1.JobReasonPodFailurePolicy, reason)
	require.Contains(t, c.Job("r1-slow").Status.Conditions[1].Message, "failed with exit code 143 matching FailJob rule at index 3")
	pods := c.PodsOf("r1-slow")
	require.Len(t, pods, 1)
	require.Equal(t, corev1.PodFailed, pods[0].Status.Phase)
	require.Equal(t, "DeadlineExceeded", pods[0].Status.Reason)
	require.Equal(t, "Pod was active on the node longer than the specified deadline", pods[0].Status.Message)
	require.EqualValues(t, 143, terminated(t, pods[0]).ExitCode)
	mu.Lock()
	defer mu.Unlock()
	require.Equal(t, t0.Add(time.Second), deadline, "the pod's deadline on the cluster's clock")
}

// blocker is a task body that blocks until its context ends and reports
// that it did.
type blocker struct {
	started, stopped chan struct{}
	once             sync.Once
}

func newBlocker() *blocker {
	return &blocker{started: make(chan struct{}, 10), stopped: make(chan struct{})}
}

func (b *blocker) run(ctx context.Context) (simNum, error) {
	b.started <- struct{}{}
	<-ctx.Done()
	b.once.Do(func() { close(b.stopped) })
	return simNum{}, ctx.Err()
}

// blockedOnce is task name: its first attempt runs b, the next ones
// return 2.
func blockedOnce(b *blocker, name string) task.Task[struct{}, simNum] {
	return task.New(name, func(ctx context.Context, _ struct{}) (simNum, error) {
		if at, _ := task.AttemptFrom(ctx); at.Number == 1 {
			return b.run(ctx)
		}
		return simNum{V: 2}, nil
	})
}

func waitChan(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		t.Fatalf("timed out waiting: %s", what)
	}
}

func TestSimJobDeadline(t *testing.T) {
	cs, c := simEnv(t)
	b := newBlocker()
	p := pipeline.New("simjd", nil)
	pipeline.Add(p, task.New("long", func(ctx context.Context, _ struct{}) (simNum, error) { return b.run(ctx) }), struct{}{})
	jobs, plan := simCompile(t, p)
	c.RegisterPlan(plan)
	job := materialize(jobs["long"], nil)
	job.Spec.ActiveDeadlineSeconds = ptr.To[int64](1)
	// The deadline counts from the Job's start on the cluster's clock.
	createJob(t, cs, job)
	waitChan(t, b.started, "task start")
	c.clk.Step(time.Second - time.Nanosecond)
	c.flush()
	typ, _ := c.Finished("r1-long")
	require.Empty(t, typ, "not before the deadline")
	require.Equal(t, metav1.NewTime(t0), *c.Job("r1-long").Status.StartTime)
	c.clk.Step(time.Nanosecond)
	typ, reason := waitFinished(t, c, "r1-long")
	require.Equal(t, batchv1.JobFailed, typ)
	require.Equal(t, batchv1.JobReasonDeadlineExceeded, reason)
	waitChan(t, b.stopped, "task canceled")
	require.Empty(t, c.PodsOf("r1-long"), "the active pod is deleted")
	j := c.Job("r1-long")
	require.EqualValues(t, 1, j.Status.Failed)
	require.EqualValues(t, 0, j.Status.Active)
	require.Equal(t, "Job was active longer than specified deadline", j.Status.Conditions[1].Message)
}

func TestSimSuspendResume(t *testing.T) {
	cs, c := simEnv(t)
	b := newBlocker()
	p := pipeline.New("simsus", nil)
	pipeline.Add(p, blockedOnce(b, "work"), struct{}{})
	jobs, plan := simCompile(t, p)
	c.RegisterPlan(plan)
	createJob(t, cs, materialize(jobs["work"], nil))
	waitChan(t, b.started, "task start")
	eventually(t, func() bool { j := c.Job("r1-work"); return j.Status.Ready != nil && *j.Status.Ready == 1 }, "ready")

	jobs1 := cs.BatchV1().Jobs(metav1.NamespaceDefault)
	_, err := jobs1.Patch(t.Context(), "r1-work", types.MergePatchType, []byte(`{"spec":{"suspend":true}}`), metav1.PatchOptions{})
	require.NoError(t, err)
	waitChan(t, b.stopped, "task canceled by suspend")
	eventually(t, func() bool {
		j := c.Job("r1-work")
		cond := jobCondition(&j.Status, batchv1.JobSuspended)
		return cond != nil && cond.Status == corev1.ConditionTrue && j.Status.Active == 0
	}, "Suspended")
	require.Empty(t, c.PodsOf("r1-work"))

	_, err = jobs1.Patch(t.Context(), "r1-work", types.MergePatchType, []byte(`{"spec":{"suspend":false}}`), metav1.PatchOptions{})
	require.NoError(t, err)
	typ, _ := waitFinished(t, c, "r1-work")
	require.Equal(t, batchv1.JobComplete, typ)
	j := c.Job("r1-work")
	require.Equal(t, corev1.ConditionFalse, jobCondition(&j.Status, batchv1.JobSuspended).Status)
	require.Equal(t, "JobResumed", jobCondition(&j.Status, batchv1.JobSuspended).Reason)
	require.EqualValues(t, 0, j.Status.Failed, "suspension is not a failure")
	require.Equal(t, 2, c.Started("r1-work"))
	pods := c.PodsOf("r1-work")
	require.Len(t, pods, 1)
	require.Equal(t, "r1-work-1", pods[0].Name)
}

func TestSimDeleteStopsTask(t *testing.T) {
	cs, c := simEnv(t)
	b := newBlocker()
	release := make(chan struct{})
	stubborn := make(chan struct{}, 1)
	p := pipeline.New("simdel", nil)
	pipeline.Add(p, task.New("polite", func(ctx context.Context, _ struct{}) (simNum, error) { return b.run(ctx) }), struct{}{})
	pipeline.Add(p, task.New("stubborn", func(context.Context, struct{}) (simNum, error) {
		stubborn <- struct{}{}
		<-release // ignores its context
		return simNum{V: 1}, nil
	}), struct{}{})
	jobs, plan := simCompile(t, p)
	c.RegisterPlan(plan)
	createJob(t, cs, materialize(jobs["polite"], nil))
	createJob(t, cs, materialize(jobs["stubborn"], nil))
	waitChan(t, b.started, "polite start")
	waitChan(t, stubborn, "stubborn start")

	api := cs.BatchV1().Jobs(metav1.NamespaceDefault)
	bg := metav1.DeletePropagationBackground
	for _, name := range []string{"r1-polite", "r1-stubborn"} {
		require.NoError(t, api.Delete(t.Context(), name, metav1.DeleteOptions{PropagationPolicy: &bg}))
	}
	waitChan(t, b.stopped, "polite canceled")
	eventually(t, func() bool { return len(c.PodsOf("r1-polite")) == 0 && len(c.PodsOf("r1-stubborn")) == 0 }, "pods deleted")
	close(release)
	eventually(t, func() bool { return !c.known("r1-stubborn") }, "forgotten")
	c.Close() // waits for the stubborn task; its result is discarded
	require.Empty(t, c.PodsOf("r1-stubborn"))
	_, err := api.Get(t.Context(), "r1-stubborn", metav1.GetOptions{})
	require.True(t, apierrors.IsNotFound(err))
}

func TestSimTerminationMessageIsCut(t *testing.T) {
	cs, c := simEnv(t)
	p := pipeline.New("simbig", nil)
	pipeline.Add(p, task.New("big", func(context.Context, struct{}) (string, error) {
		return strings.Repeat("x", 5000), nil
	}), struct{}{})
	jobs, plan := simCompile(t, p)
	c.RegisterPlan(plan)
	createJob(t, cs, materialize(jobs["big"], nil))
	typ, _ := waitFinished(t, c, "r1-big")
	require.Equal(t, batchv1.JobComplete, typ)
	msg := terminated(t, c.PodsOf("r1-big")[0]).Message
	require.Len(t, msg, kubejob.MaxTerminationMessage)
	require.True(t, strings.HasSuffix(msg, `xxx"`), "the kubelet keeps the last bytes")
	require.False(t, strings.HasPrefix(msg, `"`), "the start is gone")
}

func TestSimStartDelayAndRecreatedJob(t *testing.T) {
	cs, c := simEnv(t)
	p := pipeline.New("simdelay", nil)
	pipeline.Add(p, task.New("quick", func(context.Context, struct{}) (simNum, error) { return simNum{V: 3}, nil }), struct{}{})
	jobs, plan := simCompile(t, p)
	c.RegisterPlan(plan)
	c.SetStartDelay(time.Hour)
	createJob(t, cs, materialize(jobs["quick"], nil))
	eventually(t, func() bool { return len(c.PodsOf("r1-quick")) == 1 }, "pod created")
	pod := c.PodsOf("r1-quick")[0]
	require.Equal(t, corev1.PodPending, pod.Status.Phase)
	eventually(t, func() bool { return c.Job("r1-quick").Status.Active == 1 }, "active")
	j := c.Job("r1-quick")
	require.EqualValues(t, 0, *j.Status.Ready)
	oldUID := j.UID

	// Deleted and created again under the same name: a new Job.
	require.NoError(t, cs.BatchV1().Jobs(metav1.NamespaceDefault).Delete(t.Context(), "r1-quick", metav1.DeleteOptions{}))
	eventually(t, func() bool { return len(c.PodsOf("r1-quick")) == 0 }, "pods deleted")
	c.SetStartDelay(0)
	createJob(t, cs, materialize(jobs["quick"], nil))
	typ, _ := waitFinished(t, c, "r1-quick")
	require.Equal(t, batchv1.JobComplete, typ)
	j = c.Job("r1-quick")
	require.NotEqual(t, oldUID, j.UID)
	pods := c.PodsOf("r1-quick")
	require.Len(t, pods, 1)
	require.Equal(t, string(j.UID), pods[0].Labels["controller-uid"])
}

// TestSimIgnoresFaults: the simulator works through the tracker, so a
// fault injector on cs does not reach it.
func TestSimIgnoresFaults(t *testing.T) {
	cs, c := simEnv(t)
	f := InjectFaults(cs, 0.5, 3, c.clk)
	defer f.Close()
	f.DropWatches(5 * time.Millisecond)
	p := pipeline.New("simfaults", nil)
	pipeline.Add(p, task.New("a", func(context.Context, struct{}) (simNum, error) { return simNum{V: 5}, nil }), struct{}{})
	jobs, plan := simCompile(t, p)
	c.RegisterPlan(plan)
	job := materialize(jobs["a"], nil)
	for {
		_, err := cs.BatchV1().Jobs(metav1.NamespaceDefault).Create(t.Context(), job, metav1.CreateOptions{})
		if err == nil || apierrors.IsAlreadyExists(err) {
			break
		}
	}
	typ, _ := waitFinished(t, c, "r1-a")
	require.Equal(t, batchv1.JobComplete, typ)
	f.Stop()
}

// faultRun makes a fixed sequence of calls and returns their errors.
func faultRun(t *testing.T, cs *fake.Clientset, n int) []string {
	ctx := t.Context()
	cms := cs.CoreV1().ConfigMaps(metav1.NamespaceDefault)
	var errs []string
	note := func(err error) {
		if err != nil {
			errs = append(errs, err.Error())
		} else {
			errs = append(errs, "")
		}
	}
	for i := range n {
		name := fmt.Sprintf("cm-%d", i)
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name}, Data: map[string]string{"k": "v"}}
		_, err := cms.Create(ctx, cm, metav1.CreateOptions{})
		note(err)
		_, err = cms.Get(ctx, name, metav1.GetOptions{})
		note(err)
		_, err = cms.Patch(ctx, name, types.MergePatchType, []byte(`{"data":{"k":"w"}}`), metav1.PatchOptions{})
		note(err)
		_, err = cms.Update(ctx, cm, metav1.UpdateOptions{})
		note(err)
		_, err = cs.CoreV1().Pods(metav1.NamespaceDefault).List(ctx, metav1.ListOptions{})
		note(err)
		_, err = cs.BatchV1().Jobs(metav1.NamespaceDefault).Get(ctx, "nope", metav1.GetOptions{})
		note(err)
		note(cms.Delete(ctx, name, metav1.DeleteOptions{}))
	}
	return errs
}

func TestFaultRate(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	const rate = 0.2
	cs := fake.NewSimpleClientset()
	f := InjectFaults(cs, rate, 42, simtime.New(t0))
	defer f.Close()
	first := faultRun(t, cs, 150)
	calls, eligible, injected := f.Counts()
	require.Equal(t, 1050, calls)
	require.Equal(t, calls, eligible)
	got := float64(f.Total()) / float64(eligible)
	want := rate * (6 + listWatchShare) / 7 // one call in seven is a list
	require.InDelta(t, want, got, 0.03, "injected %v of %d calls", injected, eligible)
	for _, k := range []string{FaultInternal, FaultThrottled, FaultLost, FaultConflict} {
		require.Positive(t, injected[k], k)
	}
	failed := 0
	for _, e := range first {
		if e != "" {
			failed++
		}
	}
	require.GreaterOrEqual(t, failed, f.Total(), "every fault is an error the caller sees")

	again := InjectFaults(fake.NewSimpleClientset(), rate, 42, simtime.New(t0))
	defer again.Close()
	cs2 := again.cs
	require.Equal(t, first, faultRun(t, cs2, 150), "same seed, same faults")

	f.Stop()
	before := f.Total()
	ctx := t.Context()
	for i := range 50 {
		_, err := cs.CoreV1().ConfigMaps(metav1.NamespaceDefault).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("after-%d", i)}}, metav1.CreateOptions{})
		require.NoError(t, err)
	}
	require.Equal(t, before, f.Total(), "no faults after stop")
}

func TestFaultAppliedButLost(t *testing.T) {
	cs := fake.NewSimpleClientset()
	f := InjectFaults(cs, 1, 7, simtime.New(t0))
	defer f.Close()
	ctx := t.Context()
	api := cs.BatchV1().Jobs(metav1.NamespaceDefault)
	var lost []string
	for i := range 60 {
		name := fmt.Sprintf("job-%d", i)
		_, err := api.Create(ctx, &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
		require.Error(t, err, "rate 1 fails every call")
		if _, gerr := cs.Tracker().Get(jobsGVR, metav1.NamespaceDefault, name); gerr == nil {
			require.True(t, apierrors.IsInternalError(err) || apierrors.IsTimeout(err), "lost response: %v", err)
			lost = append(lost, name)
		}
	}
	_, _, injected := f.Counts()
	require.Equal(t, injected[FaultLost], len(lost))
	require.NotEmpty(t, lost)
	f.Stop()
	for _, name := range lost {
		_, err := api.Create(ctx, &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
		require.True(t, apierrors.IsAlreadyExists(err), "the retry finds the Job: %v", err)
	}
}

func TestFaultDroppedWatches(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	cs := fake.NewSimpleClientset()
	clk := simtime.New(t0)
	f := InjectFaults(cs, 0, 1, clk)
	defer f.Close()
	f.DropWatches(20 * time.Millisecond) // each watch lasts 10 to 30ms on clk
	pods := cs.CoreV1().Pods(metav1.NamespaceDefault)
	add := func(name string) {
		require.NoError(t, cs.Tracker().Add(&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: metav1.NamespaceDefault}}))
	}
	next := func(w watch.Interface) (watch.Event, bool) {
		select {
		case ev, ok := <-w.ResultChan():
			return ev, ok
		case <-time.After(10 * time.Second):
			t.Fatal("no event")
			return watch.Event{}, false
		}
	}
	gone := 0
	last := "" // the resourceVersion of the last event seen
	for i := range 6 {
		// After a plain drop the client watches again from the last
		// resourceVersion it saw and gets the events since; after the
		// first, a 410 Gone, it lists and watches from the list's.
		from, gap := last, i > 0
		switch i {
		case 0:
			from = ""
		case 1:
			list, err := pods.List(t.Context(), metav1.ListOptions{})
			require.NoError(t, err)
			from = list.ResourceVersion
			gap = !slices.ContainsFunc(list.Items, func(p corev1.Pod) bool { return p.Name == "gap-0" })
		}
		w, err := pods.Watch(t.Context(), metav1.ListOptions{ResourceVersion: from})
		require.NoError(t, err)
		name := fmt.Sprintf("p-%d", i)
		if gap {
			ev, ok := next(w)
			require.True(t, ok)
			require.Equal(t, watch.Added, ev.Type)
			require.Equal(t, fmt.Sprintf("gap-%d", i-1), ev.Object.(*corev1.Pod).Name)
		}
		add(name)
		ev, ok := next(w)
		require.True(t, ok)
		require.Equal(t, watch.Added, ev.Type)
		require.Equal(t, name, ev.Object.(*corev1.Pod).Name)
		require.Greater(t, rvOf(t, ev.Object), rvOf(t, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{ResourceVersion: last}}), "resourceVersions grow")
		last = ev.Object.(*corev1.Pod).ResourceVersion
		// The watch's timer is on clk once its goroutine has started:
		// step only then, or the step passes unseen.
		require.Eventually(t, func() bool { return clk.Waiters() > 0 }, 10*time.Second, time.Millisecond)
		clk.Step(30 * time.Millisecond) // its life is over
		for {
			ev, ok := next(w)
			if !ok {
				break
			}
			require.Equal(t, watch.Error, ev.Type)
			require.True(t, apierrors.IsResourceExpired(apierrors.FromObject(ev.Object)))
			gone++
		}
		add(fmt.Sprintf("gap-%d", i)) // between the drop and the next watch
	}
	_, _, injected := f.Counts()
	require.Equal(t, 6, injected[FaultWatchDropped])
	require.Equal(t, 1, gone, "the first drop says 410 Gone, the next ones (within goneEvery) just close")

	// A watch without events lasts over a second, or client-go backs off:
	// its end is put off until then.
	start := clk.Now()
	w, err := cs.CoreV1().ConfigMaps(metav1.NamespaceDefault).Watch(t.Context(), metav1.ListOptions{})
	require.NoError(t, err)
	closed := make(chan struct{})
	go func() {
		defer close(closed)
		for range w.ResultChan() {
		}
	}()
	for isOpen(closed) {
		require.Less(t, clk.Since(start), 2*time.Second, "the watch ends")
		clk.Step(10 * time.Millisecond)
		eventually(t, func() bool { return f.ending.Load() == 0 }, "the watch's end is handled")
		if clk.Since(start) < time.Second {
			require.True(t, isOpen(closed), "ended after %v", clk.Since(start))
		}
	}
	require.GreaterOrEqual(t, clk.Since(start), time.Second)
	f.Close()
}

// rvOf is obj's resourceVersion as a number (0 when it has none).
func rvOf(t *testing.T, obj runtime.Object) uint64 {
	t.Helper()
	m, err := meta.Accessor(obj)
	require.NoError(t, err)
	if m.GetResourceVersion() == "" {
		return 0
	}
	n, err := strconv.ParseUint(m.GetResourceVersion(), 10, 64)
	require.NoError(t, err)
	return n
}

func isOpen(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return false
	default:
		return true
	}
}

func TestSimContainerTasks(t *testing.T) {
	cs, c := simEnv(t)
	p := pipeline.New("simctr", nil)
	pipeline.Add(p, task.Container[struct{}, simNum]("ok", "busybox:1").WithCommand("true"), struct{}{})
	pipeline.Add(p, task.Container[struct{}, simNum]("bad", "busybox:1").WithCommand("false"), struct{}{})
	jobs, plan := simCompile(t, p)
	c.RegisterPlan(plan)
	c.RunContainers(func(_ context.Context, pod *corev1.Pod) (string, error) {
		if pod.Spec.Containers[0].Command[0] == "false" {
			return "", fmt.Errorf("false: %w", ExitStatus(4))
		}
		return `{"V":1}`, nil
	})
	createJob(t, cs, materialize(jobs["ok"], nil))
	createJob(t, cs, materialize(jobs["bad"], nil))
	typ, _ := waitFinished(t, c, "r1-ok")
	require.Equal(t, batchv1.JobComplete, typ)
	require.JSONEq(t, `{"V":1}`, terminated(t, c.PodsOf("r1-ok")[0]).Message)
	typ, reason := waitFinished(t, c, "r1-bad")
	require.Equal(t, batchv1.JobFailed, typ)
	require.Equal(t, batchv1.JobReasonBackoffLimitExceeded, reason)
	tr := terminated(t, c.PodsOf("r1-bad")[0])
	require.EqualValues(t, 4, tr.ExitCode)
	if jobs["bad"].Spec.Template.Spec.Containers[0].TerminationMessagePolicy == corev1.TerminationMessageFallbackToLogsOnError {
		require.Equal(t, "false: exit status 4\n", tr.Message)
	}
}

func TestSimPreemptFromOutside(t *testing.T) {
	cs, c := simEnv(t)
	b := newBlocker()
	p := pipeline.New("simout", nil)
	pipeline.Add(p, blockedOnce(b, "long"), struct{}{})
	jobs, plan := simCompile(t, p)
	c.RegisterPlan(plan)
	job := materialize(jobs["long"], nil)
	job.Spec.PodFailurePolicy = &batchv1.PodFailurePolicy{Rules: []batchv1.PodFailurePolicyRule{{
		Action:          batchv1.PodFailurePolicyActionIgnore,
		OnPodConditions: []batchv1.PodFailurePolicyOnPodConditionsPattern{{Type: corev1.DisruptionTarget, Status: corev1.ConditionTrue}},
	}}}
	createJob(t, cs, job)
	waitChan(t, b.started, "task start")
	require.False(t, c.Preempt("no-such-pod"))
	require.True(t, c.Preempt("r1-long-0"))
	waitChan(t, b.stopped, "task canceled")
	typ, _ := waitFinished(t, c, "r1-long")
	require.Equal(t, batchv1.JobComplete, typ)
	pods := c.PodsOf("r1-long")
	require.Len(t, pods, 2)
	require.EqualValues(t, 143, terminated(t, pods[0]).ExitCode)
	require.EqualValues(t, 0, c.Job("r1-long").Status.Failed)
}

package kubejob_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes/fake"
	clienttesting "k8s.io/client-go/testing"

	"github.com/sluice-ml/sluice/backends"
	"github.com/sluice-ml/sluice/backends/kubejob"
	"github.com/sluice-ml/sluice/backends/kubepod"
	"github.com/sluice-ml/sluice/internal/kubesim"
	"github.com/sluice-ml/sluice/pipeline"
	"github.com/sluice-ml/sluice/task"
)

// How a failed attempt is classified when its pod is gone: the rule the
// Job's Failed condition names (in the words of the Kubernetes 1.35 Job
// controller, pkg/controller/job/pod_failure_policy.go) decides.
func TestFailedJobWhosePodIsGone(t *testing.T) {
	p := pipeline.New("gone", nil)
	pipeline.Add(p, task.New("work", func(context.Context, struct{}) (int, error) { return 1, nil }), struct{}{})
	pipeline.Add(p, task.Container[struct{}, struct{}]("ctr", "registry.example/ctr:1").WithCommand("/ctr"), struct{}{})
	art, jobs := compile(t, p, &kubejob.Options{Pod: kubepod.Options{Image: "img"}, RunID: "r1"}, nil)
	var plan *backends.Plan
	require.True(t, art.As(&plan))
	failed := func(step, reason, msg string) (*backends.Step, *batchv1.Job) {
		j := jobs.job(t, step).DeepCopy()
		at := metav1.NewTime(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
		j.Status.StartTime = &metav1.Time{Time: at.Add(-time.Minute)}
		j.Status.Conditions = []batchv1.JobCondition{
			{Type: batchv1.JobFailureTarget, Status: corev1.ConditionTrue, Reason: reason, Message: msg, LastTransitionTime: at},
			{Type: batchv1.JobFailed, Status: corev1.ConditionTrue, Reason: reason, Message: msg, LastTransitionTime: at},
		}
		return plan.Step(step), j
	}
	for _, tc := range []struct {
		name, step, reason, msg string
		pod                     string
		want                    backends.Reason
		retriable               bool
		says                    string
	}{
		{"Disrupted", "work", "PodFailurePolicy", "Pod default/r1-work-x7k2p has condition DisruptionTarget matching FailJob rule at index 0",
			"r1-work-x7k2p", backends.ReasonInfra, true, "disrupted"},
		{"InfraExit", "work", "PodFailurePolicy", "Container main for pod default/r1-work-x7k2p failed with exit code 3 matching FailJob rule at index 1",
			"r1-work-x7k2p", backends.ReasonInfra, true, "infrastructure failure (exit status 3)"},
		{"WrongInvocation", "work", "PodFailurePolicy", "Container main for pod default/r1-work-x7k2p failed with exit code 2 matching FailJob rule at index 2",
			"r1-work-x7k2p", backends.ReasonApp, false, "invalid task invocation (not retried)"},
		{"Stopped", "work", "PodFailurePolicy", "Container main for pod default/r1-work-x7k2p failed with exit code 143 matching FailJob rule at index 3",
			"r1-work-x7k2p", backends.ReasonInfra, true, "stopped by SIGTERM"},
		{"ContainerStopped", "ctr", "PodFailurePolicy", "Container main for pod default/r1-ctr-q9w8e failed with exit code 143 matching FailJob rule at index 1",
			"r1-ctr-q9w8e", backends.ReasonInfra, true, "stopped by SIGTERM"},
		// Not one of the compiled rules (a BeforeEmit added one): the
		// exit status is the container's own.
		{"UnknownRule", "ctr", "PodFailurePolicy", "Container main for pod default/r1-ctr-q9w8e failed with exit code 3 matching FailJob rule at index 7",
			"r1-ctr-q9w8e", backends.ReasonApp, true, "the Job failed: PodFailurePolicy"},
		{"BackoffLimit", "work", "BackoffLimitExceeded", "Job has reached the specified backoff limit",
			"", backends.ReasonApp, true, "the Job failed: BackoffLimitExceeded"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, j := failed(tc.step, tc.reason, tc.msg)
			pod, a, retriable := kubejob.FailedJobAttempt(s, j)
			assert.Equal(t, tc.pod, pod)
			assert.Equal(t, backends.PhaseFailed, a.Phase)
			assert.Equal(t, tc.want, a.Reason)
			assert.Equal(t, tc.retriable, retriable)
			assert.Contains(t, a.Message, tc.says)
			assert.Equal(t, j.Status.StartTime.Time, a.Started)
			assert.Equal(t, j.Status.Conditions[1].LastTransitionTime.Time, a.Finished)
		})
	}
}

// An evicted pod is gone (the kubelet deletes it once the Job controller
// has counted it) before the orchestrator sees its Job fail: the attempt
// is still an infrastructure failure, and the step is retried on its
// Infra budget with no App budget at all (the e2e TestPreemption).
func TestEvictedPodGoneBeforeItsJobFails(t *testing.T) {
	noLeaks(t)
	h := newHarness(t)
	defer h.Close()
	h.cl.SetDeleteDisrupted(true)
	var calls atomic.Int32
	p := pipeline.New("evict", nil)
	pipeline.Add(p, task.New("work", func(context.Context, struct{}) (int, error) {
		if calls.Add(1) == 1 {
			return 0, fmt.Errorf("evicted: %w", task.ErrInfrastructure) // the simulator's preemption
		}
		return 1, nil
	}).WithRetry(task.Retry{Infra: 1}), struct{}{})
	st, err := pipeline.Run(t.Context(), p, h.backend(&kubejob.Options{Pod: kubepod.Options{Image: testImage}, RunID: "evict-1"}), nil)
	require.NoError(t, err, "%+v", st)
	s := step(t, st, "work")
	require.Len(t, s.Attempts, 2)
	assert.Equal(t, backends.ReasonInfra, s.Attempts[0].Reason)
	assert.Equal(t, "disrupted: pod evict-1-work-0 had the condition DisruptionTarget and is gone", s.Attempts[0].Message)
	assert.Equal(t, backends.PhaseSucceeded, s.Attempts[1].Phase)
	assert.Empty(t, h.cl.PodsOf("evict-1-work"), "the evicted pod is gone")
	_, reason := h.cl.Finished("evict-1-work")
	assert.Equal(t, batchv1.JobReasonPodFailurePolicy, reason)
}

// A pod deleted while its task runs (kubectl delete pod, no
// DisruptionTarget) stops the task with SIGTERM: exit 143, an
// infrastructure failure, though the pod is gone.
func TestDeletedPodIsAnInfrastructureFailure(t *testing.T) {
	noLeaks(t)
	h := newHarness(t)
	defer h.Close()
	started := make(chan struct{}, 1)
	var calls atomic.Int32
	p := pipeline.New("deleted", nil)
	pipeline.Add(p, task.New("work", func(ctx context.Context, _ struct{}) (int, error) {
		if calls.Add(1) == 1 {
			started <- struct{}{}
			<-ctx.Done()
			return 0, ctx.Err()
		}
		return 2, nil
	}).WithRetry(task.Retry{Infra: 1}), struct{}{})
	r := startRun(t.Context(), p, h.backend(&kubejob.Options{Pod: kubepod.Options{Image: testImage}, RunID: "deleted-1"}))
	waitChan(t, started, "the task started")
	require.True(t, h.cl.KillPod("deleted-1-work-0"))
	st, err := r.wait(t)
	require.NoError(t, err, "%+v", st)
	s := step(t, st, "work")
	require.Len(t, s.Attempts, 2)
	assert.Equal(t, backends.ReasonInfra, s.Attempts[0].Reason)
	assert.Equal(t, "stopped by SIGTERM (exit status 143); pod deleted-1-work-0 is gone", s.Attempts[0].Message)
	assert.Equal(t, backends.PhaseSucceeded, s.Attempts[1].Phase)
	assert.Empty(t, h.cl.PodsOf("deleted-1-work"))
	assert.NotNil(t, h.cl.Job("deleted-1-work-r1"))
}

// A pod that runs out of time is stopped with SIGTERM too, so its exit
// status 143 fails the Job at once; the pod's reason DeadlineExceeded
// makes it an application failure, which the next Job retries while the
// App budget lasts.
func TestTimeoutIsRetriedOnTheAppBudget(t *testing.T) {
	for _, app := range []int{0, 1} {
		t.Run(fmt.Sprintf("App%d", app), func(t *testing.T) {
			noLeaks(t)
			h := newHarness(t)
			defer h.Close()
			var calls atomic.Int32
			p := pipeline.New("slow", nil)
			pipeline.Add(p, task.New("work", func(ctx context.Context, _ struct{}) (int, error) {
				if calls.Add(1) == 1 {
					<-ctx.Done()
					return 0, ctx.Err()
				}
				return 1, nil
			}).WithTimeout(time.Second).WithRetry(task.Retry{App: app}), struct{}{})
			run := fmt.Sprintf("slow-%d", app)
			st, err := pipeline.Run(t.Context(), p, h.backend(&kubejob.Options{Pod: kubepod.Options{Image: testImage}, RunID: run}), nil)
			s := step(t, st, "work")
			timedOut := backends.Attempt{Number: 1, Phase: backends.PhaseFailed, Reason: backends.ReasonApp, Message: "timed out after 1s"}
			if app == 0 {
				require.Error(t, err)
				assert.Equal(t, backends.PhaseFailed, s.Phase)
				assert.Equal(t, "timed out after 1s", s.Message)
				require.Len(t, s.Attempts, 1)
				assert.Equal(t, timedOut, withoutTimes(s.Attempts[0]))
				assert.Nil(t, h.cl.Job(run+"-work-r1"), "no App budget: no retry")
				return
			}
			require.NoError(t, err, "%+v", st)
			require.Len(t, s.Attempts, 2)
			assert.Equal(t, timedOut, withoutTimes(s.Attempts[0]))
			assert.Equal(t, backends.PhaseSucceeded, s.Attempts[1].Phase)
			assert.EqualValues(t, 0, *h.cl.Job(run + "-work-r1").Spec.BackoffLimit, "the App budget left")
		})
	}
}

// A failed attempt's message is the task's error, as on the local
// backend: the task mode writes it to the termination message.
func TestAttemptMessageIsTheTasksError(t *testing.T) {
	noLeaks(t)
	h := newHarness(t)
	defer h.Close()
	var calls atomic.Int32
	p := pipeline.New("msgs", nil)
	pipeline.Add(p, task.New("work", func(context.Context, struct{}) (int, error) {
		switch calls.Add(1) {
		case 1:
			return 0, fmt.Errorf("dataset mount went away: %w", kubesim.ErrExitInfrastructure) // the task mode's exit 3
		case 2:
			return 0, errors.New("work attempt 2: scripted failure")
		}
		return 1, nil
	}).WithRetry(task.Retry{App: 1, Infra: 1}), struct{}{})
	st, err := pipeline.Run(t.Context(), p, h.backend(&kubejob.Options{Pod: kubepod.Options{Image: testImage}, RunID: "msgs-1"}), nil)
	require.NoError(t, err, "%+v", st)
	s := step(t, st, "work")
	require.Len(t, s.Attempts, 3)
	assert.Equal(t, backends.Attempt{Number: 1, Phase: backends.PhaseFailed, Reason: backends.ReasonInfra, Message: "dataset mount went away: exit status 3"},
		withoutTimes(s.Attempts[0]))
	assert.Equal(t, backends.Attempt{Number: 2, Phase: backends.PhaseFailed, Reason: backends.ReasonApp, Message: "work attempt 2: scripted failure"},
		withoutTimes(s.Attempts[1]))
}

// A Job fails BackoffLimitExceeded on its newest pod while the pod
// informer still shows that pod running and an older one failed: the
// step waits for the newest pod instead of ending with the older
// attempt's message (seen once in CI as "attempt 2" with no reason and
// attempt 1's message).
func TestJobFailedBeforeItsLastPodIsSeen(t *testing.T) {
	noLeaks(t)
	cs := fake.NewSimpleClientset()
	h := newHarnessOn(t, cs)
	defer h.Close()
	// The events of every pod but the first reach the orchestrator later
	// than the Job events the same change causes: it sees the first
	// attempt fail and the Job fail before it sees the second attempt.
	var first sync.Once
	var firstPod string
	cs.PrependWatchReactor("pods", func(a clienttesting.Action) (bool, watch.Interface, error) {
		w, err := replayWatch(cs.Tracker(), a)
		if err != nil {
			return true, nil, err
		}
		return true, delayed(w, func(ev watch.Event) time.Duration {
			pod, ok := ev.Object.(*corev1.Pod)
			if !ok {
				return 0
			}
			first.Do(func() { firstPod = pod.Name })
			if pod.Name == firstPod {
				return 0
			}
			return 50 * time.Millisecond
		}), nil
	})
	var calls atomic.Int32
	p := pipeline.New("late", nil)
	pipeline.Add(p, task.New("always", func(context.Context, struct{}) (int, error) {
		return 0, fmt.Errorf("always attempt %d: scripted failure", calls.Add(1))
	}).WithRetry(task.Retry{App: 1}), struct{}{})
	st, err := pipeline.Run(t.Context(), p, h.backend(&kubejob.Options{Pod: kubepod.Options{Image: testImage}, RunID: "late-1"}), nil)
	require.ErrorIs(t, err, pipeline.ErrRunFailed)
	s := step(t, st, "always")
	require.Len(t, s.Attempts, 2)
	assert.Equal(t, backends.Attempt{Number: 2, Phase: backends.PhaseFailed, Reason: backends.ReasonApp, Message: "always attempt 2: scripted failure"},
		withoutTimes(s.Attempts[1]))
	assert.Equal(t, "always attempt 2: scripted failure", s.Message)
}

// delayed passes w's events on, each after the delay d gives it.
func delayed(w watch.Interface, d func(watch.Event) time.Duration) watch.Interface {
	out := &replayed{inner: w, ch: make(chan watch.Event), done: make(chan struct{})}
	go func() {
		defer close(out.ch)
		for ev := range w.ResultChan() {
			select {
			case <-time.After(d(ev)):
			case <-out.done:
				return
			}
			select {
			case out.ch <- ev:
			case <-out.done:
				return
			}
		}
	}()
	return out
}

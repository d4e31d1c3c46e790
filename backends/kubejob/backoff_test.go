package kubejob_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/sluice-ml/sluice/backends"
	"github.com/sluice-ml/sluice/backends/kubejob"
	"github.com/sluice-ml/sluice/backends/kubepod"
	"github.com/sluice-ml/sluice/pipeline"
	"github.com/sluice-ml/sluice/task"
)

// liveRun is a pipeline run in the background whose progress is kept.
type liveRun struct {
	mu    sync.Mutex
	last  *backends.RunStatus
	done  chan struct{}
	st    *backends.RunStatus
	err   error
	steps int // statuses seen
}

func startRun(ctx context.Context, p *pipeline.Pipeline, b backends.Backend) *liveRun {
	r := &liveRun{done: make(chan struct{})}
	go func() {
		defer close(r.done)
		r.st, r.err = pipeline.Run(ctx, p, b, &pipeline.RunOptions{Progress: func(st *backends.RunStatus) {
			r.mu.Lock()
			defer r.mu.Unlock()
			r.last, r.steps = st, r.steps+1
		}})
	}()
	return r
}

// step returns the last reported status of step name (zero before any).
func (r *liveRun) step(name string) backends.StepStatus {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.last == nil {
		return backends.StepStatus{}
	}
	if s := r.last.Step(name); s != nil {
		return *s
	}
	return backends.StepStatus{}
}

// ended reports whether the run has ended.
func (r *liveRun) ended() bool {
	select {
	case <-r.done:
		return true
	default:
		return false
	}
}

func (r *liveRun) wait(t *testing.T) (*backends.RunStatus, error) {
	t.Helper()
	select {
	case <-r.done:
	case <-time.After(4 * time.Minute): // a ceiling for a hung run, on a loaded machine too
		r.mu.Lock()
		var b strings.Builder
		if r.last != nil {
			pipeline.WriteSummary(&b, r.last)
		}
		r.mu.Unlock()
		t.Fatalf("the run did not end; its last progress (%d reports):\n%s", r.steps, b.String())
	}
	return r.st, r.err
}

// noLeaks checks, once t and its cleanups are done, that t leaked no
// goroutine.
func noLeaks(t *testing.T) {
	opt := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, opt) })
}

// waitFor polls cond; the deadline only bounds a broken test.
func waitFor(t *testing.T, cond func() bool, what string) {
	t.Helper()
	require.Eventually(t, cond, time.Minute, 2*time.Millisecond, what)
}

// waitChan waits for a value on ch; the deadline only bounds a broken test.
func waitChan(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	waitFor(t, func() bool {
		select {
		case <-ch:
			return true
		default:
			return false
		}
	}, what)
}

func withoutTimes(a backends.Attempt) backends.Attempt {
	a.Started, a.Finished = time.Time{}, time.Time{}
	return a
}

// A retry's backoff is timed on the orchestrator's clock: the retry's
// Job is created only once that clock has passed it.
func TestBackoffOnTheOrchestratorsClock(t *testing.T) {
	noLeaks(t)
	h := newHarness(t)
	defer h.Close()
	clk := h.clk // the cluster's clock times the orchestrator too
	var calls atomic.Int32
	flaky := task.New("flaky", func(context.Context, struct{}) (int, error) {
		if calls.Add(1) == 1 {
			return 0, fmt.Errorf("node reclaimed: %w", task.ErrInfrastructure)
		}
		return 1, nil
	}).WithRetry(task.Retry{Infra: 1, Backoff: task.Backoff{Initial: time.Hour}})
	p := pipeline.New("later", nil)
	pipeline.Add(p, flaky, struct{}{})
	b := h.backend(&kubejob.Options{Pod: kubepod.Options{Image: testImage}, RunID: "later-1"})
	kubejob.SetClock(b.Backend, clk)
	r := startRun(t.Context(), p, b)
	waitFor(t, func() bool {
		s := r.step("flaky")
		return len(s.Attempts) == 1 && s.Attempts[0].Phase == backends.PhaseFailed && clk.HasWaiters()
	}, "preempted, waiting out the backoff")
	clk.Step(time.Hour - time.Second)
	assert.Nil(t, h.cl.Job("later-1-flaky-r1"), "not before the backoff has passed")
	clk.Step(time.Second)
	st, err := r.wait(t)
	require.NoError(t, err)
	s := step(t, st, "flaky")
	require.Len(t, s.Attempts, 2)
	assert.Equal(t, backends.ReasonInfra, s.Attempts[0].Reason)
	assert.Equal(t, backends.PhaseSucceeded, s.Attempts[1].Phase)
}

// Canceling a run while a step, or a fan-out instance, waits out its
// retry backoff ends it Canceled, not Failed, and starts no retry.
func TestCancelDuringBackoff(t *testing.T) {
	for _, fan := range []bool{false, true} {
		t.Run(map[bool]string{false: "Step", true: "Instance"}[fan], func(t *testing.T) {
			noLeaks(t)
			h := newHarness(t)
			defer h.Close()
			clk := h.clk // not stepped here: the backoff never ends
			creates := jobCreates(t, h)
			preempted := task.New("flaky", func(context.Context, pipeline.Ref[int]) (int, error) {
				return 0, fmt.Errorf("node reclaimed: %w", task.ErrInfrastructure)
			}).WithRetry(task.Retry{Infra: 2, Backoff: task.Backoff{Initial: time.Hour}})
			p := pipeline.New("backoff", nil)
			if fan {
				list := pipeline.Add(p, task.New("list", func(context.Context, struct{}) ([]int, error) { return []int{1}, nil }), struct{}{})
				pipeline.ForEach(p, preempted, list.Output(), func(it pipeline.Ref[int]) pipeline.Ref[int] { return it })
			} else {
				pipeline.Add(p, preempted, pipeline.Const(1))
			}
			b := h.backend(&kubejob.Options{Pod: kubepod.Options{Image: testImage}, RunID: "backoff-1"})
			kubejob.SetClock(b.Backend, clk)
			ctx, cancel := context.WithCancel(t.Context())
			r := startRun(ctx, p, b)
			waitFor(t, func() bool {
				s := r.step("flaky")
				if fan {
					if len(s.Instances) != 1 {
						return false
					}
					s = s.Instances[0]
				}
				return s.Phase == backends.PhaseRunning && len(s.Attempts) == 1 && s.Attempts[0].Phase == backends.PhaseFailed && clk.HasWaiters()
			}, "preempted, waiting out the backoff")
			cancel()
			st, err := r.wait(t)
			require.ErrorIs(t, err, pipeline.ErrRunFailed)
			assert.Equal(t, backends.PhaseCanceled, st.Phase)
			s := step(t, st, "flaky")
			assert.Equal(t, backends.PhaseCanceled, s.Phase, "%s", s.Message)
			if fan {
				require.Len(t, s.Instances, 1)
				s = &s.Instances[0]
				assert.Equal(t, backends.PhaseCanceled, s.Phase)
			}
			assert.Contains(t, s.Message, "canceled while waiting to retry after: disrupted")
			require.Len(t, s.Attempts, 1)
			assert.Equal(t, backends.ReasonInfra, s.Attempts[0].Reason)
			for name := range creates() {
				assert.NotContains(t, name, "-r1", "no retry was started")
			}
		})
	}
}

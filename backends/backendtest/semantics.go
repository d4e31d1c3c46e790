package backendtest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sluice-ml/sluice/backends"
	"github.com/sluice-ml/sluice/backends/runstate"
	"github.com/sluice-ml/sluice/pipeline"
	"github.com/sluice-ml/sluice/task"
)

// Capabilities declare how a backend departs from package runstate's
// rules, each documented in its package doc. The suite checks the
// declared behaviour instead of the rule, so a departure is never silent
// and never skipped. The zero value declares none.
type Capabilities struct {
	// SharedRetryCount: the backend keeps one retry count for both
	// budgets, so an application failure after preemptions may find its
	// budget used up (Argo).
	SharedRetryCount bool
	// NoFanOutTolerance: a fan-out's failure tolerance (Fan.Tolerate) is a
	// Compile error wrapping errors.ErrUnsupported.
	NoFanOutTolerance bool
}

// blocker is a task that runs until its context is canceled (at most a
// minute, so that a backend that never cancels fails the test rather
// than hanging it).
func blocker(r *recorder, name string) task.Task[none, num] {
	return task.New(name, func(ctx context.Context, _ none) (num, error) {
		r.call(name)
		defer r.end(name)
		select {
		case <-ctx.Done():
			return num{}, ctx.Err()
		case <-time.After(time.Minute):
			return num{}, errors.New("not canceled within a minute")
		}
	})
}

// cancelMidRun: "bad" fails at once, "block" runs until canceled, "join"
// needs both, "later" needs "block"; the exit handler records what it saw.
func cancelMidRun(r *recorder) *pipeline.Pipeline {
	p := pipeline.New("cancel-mid-run", nil)
	bad := pipeline.Add(p, flaky(r, "bad", "app"), none{})
	block := pipeline.Add(p, blocker(r, "block"), none{})
	pipeline.Add(p, apply(r, "join", func(v int) int { return v }), one{X: bad.Output()}).After(block)
	pipeline.Add(p, apply(r, "later", func(v int) int { return v }), one{X: block.Output()})
	pipeline.OnExit(p, reporter(r), reportIn{Run: p.Status()})
	return p
}

// testCancelMidRun cancels a run once one step has failed and another
// runs: the running step ends Canceled, a step with a failed and a
// canceled upstream ends Canceled (Cancel wins), the exit handler still
// runs and learns of the failure, and the run ends Canceled.
func testCancelMidRun(t *testing.T, b backends.Backend, _ Capabilities) {
	if _, ok := b.(backends.Canceler); !ok {
		t.Fatalf("%T runs pipelines but cannot cancel them: implement backends.Canceler", b)
	}
	r := newRecorder()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var once sync.Once
	progress := func(st *backends.RunStatus) {
		bad, block := st.Step("bad"), st.Step("block")
		// Watch reports every change; "block" changes no more once it
		// runs, so this cannot wait for its task to be called too.
		if bad != nil && block != nil && bad.Phase == backends.PhaseFailed && block.Phase == backends.PhaseRunning {
			once.Do(cancel)
		}
	}
	st, err := pipeline.Run(ctx, cancelMidRun(r), b, &pipeline.RunOptions{Progress: progress})
	require.NotNil(t, st, "no status: %v", err)
	require.Error(t, err)
	assert.Equal(t, backends.PhaseCanceled, st.Phase, summary(st))
	assert.Equal(t, runstate.MsgCanceled, st.Message)
	assert.Equal(t, backends.PhaseFailed, step(t, st, "bad").Phase)
	block := step(t, st, "block")
	assert.Equal(t, backends.PhaseCanceled, block.Phase)
	assert.Equal(t, runstate.MsgCanceled, block.Message)
	if assert.NotEmpty(t, block.Attempts) {
		last := block.Attempts[len(block.Attempts)-1]
		assert.Equal(t, backends.PhaseCanceled, last.Phase)
		assert.Equal(t, runstate.MsgCanceled, last.Message, "a canceled attempt says so, in the same words everywhere")
		assert.Empty(t, last.Reason, "a canceled attempt consumes no budget")
	}
	for _, name := range []string{"join", "later"} {
		s := step(t, st, name)
		assert.Equal(t, backends.PhaseCanceled, s.Phase, name)
		assert.Equal(t, runstate.MsgNotStarted, s.Message, name)
		assert.Empty(t, s.Attempts, name)
	}
	assert.Zero(t, r.count("join")+r.count("later"), "nothing started after Cancel")
	assert.Equal(t, backends.PhaseSucceeded, step(t, st, "report").Phase, "Cancel does not stop the exit handler")
	require.NotNil(t, r.runInfo)
	assert.Equal(t, pipeline.RunInfo{Phase: backends.PhaseCanceled, Failed: []string{"bad"}}, *r.runInfo)
}

// tolerant: five instances of "try", of which 1 and 3 fail, tolerating
// up to n failures; "count" sums what was collected.
func tolerant(r *recorder, n int) *pipeline.Pipeline {
	p := pipeline.New("tolerant", nil)
	try := task.New("try", func(ctx context.Context, in one) (num, error) {
		v := in.X.Get().V
		r.call(fmt.Sprintf("try-%d", v))
		if v%2 == 1 {
			return num{}, fmt.Errorf("item %d: %w", v, errScripted)
		}
		return num{v * 10}, nil
	})
	items := []num{{0}, {1}, {2}, {3}, {4}}
	fan := pipeline.ForEach(p, try, pipeline.Const(items), func(x pipeline.Ref[num]) one { return one{X: x} }).Tolerate(n)
	pipeline.Add(p, sum(r, "count"), many{Xs: fan.Collect()})
	return p
}

func testFanOutTolerance(t *testing.T, b backends.Backend, caps Capabilities) {
	r := newRecorder()
	if caps.NoFanOutTolerance {
		_, err := pipeline.Compile(t.Context(), tolerant(r, 2), b, nil)
		require.ErrorIs(t, err, errors.ErrUnsupported, "a declared missing capability is a Compile error")
		return
	}
	failed := func(i int) string {
		return fmt.Sprintf("instance %d failed: item %d: %v", i, i, errScripted)
	}
	st := mustSucceed(t, b, tolerant(r, 2), nil)
	try := step(t, st, "try")
	assert.Equal(t, backends.PhaseSucceeded, try.Phase)
	assert.Equal(t, "2 of 5 instances failed (at most 2 tolerated), left out of the output: "+failed(1)+"; "+failed(3), try.Message)
	assert.Equal(t, []num{{0}, {20}, {40}}, output[[]num](t, st, "try"), "the successful outputs, in element order")
	assert.Equal(t, num{60}, output[num](t, st, "count"))
	require.Len(t, try.Instances, 5)
	assert.Equal(t, backends.PhaseFailed, try.Instances[1].Phase)

	st, err := run(t, b, tolerant(newRecorder(), 1), nil)
	require.ErrorIs(t, err, pipeline.ErrRunFailed)
	try = step(t, st, "try")
	assert.Equal(t, backends.PhaseFailed, try.Phase)
	assert.Equal(t, "2 of 5 instances failed, more than the 1 tolerated; first: "+failed(1), try.Message)
	count := step(t, st, "count")
	assert.Equal(t, backends.PhaseSkipped, count.Phase)
	assert.Equal(t, runstate.UpstreamFailed("try"), count.Message)
	assert.Equal(t, fmt.Sprintf("step %q failed: %s", "try", try.Message), st.Message)
}

// RunCompileTests checks what every backend's Compile must do, including
// backends that only compile: each canonical pipeline compiles to the
// same documents every time; the artifact hands out the Plan through As
// and refuses what it does not hold; a declared missing capability is an
// error wrapping errors.ErrUnsupported, never a silent difference.
func RunCompileTests(t *testing.T, b backends.Backend, caps Capabilities) {
	t.Helper()
	for _, c := range Cases() {
		t.Run(c.Name, func(t *testing.T) {
			p := c.Build()
			first, err := pipeline.Compile(t.Context(), p, b, nil)
			require.NoError(t, err)
			again, err := pipeline.Compile(t.Context(), c.Build(), b, nil)
			require.NoError(t, err)
			assert.Equal(t, first.Documents(), again.Documents(), "compiling is deterministic")
			var plan *backends.Plan
			require.True(t, first.As(&plan), "the artifact hands out its *backends.Plan")
			assert.Equal(t, p.Name(), plan.DisplayName)
			assert.False(t, first.As(nil))
			var wrong *int
			assert.False(t, first.As(&wrong), "As refuses a type the artifact does not hold")
		})
	}
	t.Run("FanOutTolerance", func(t *testing.T) {
		_, err := pipeline.Compile(t.Context(), tolerant(newRecorder(), 2), b, nil)
		if caps.NoFanOutTolerance {
			require.ErrorIs(t, err, errors.ErrUnsupported)
		} else {
			require.NoError(t, err)
		}
	})
}

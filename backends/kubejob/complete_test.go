package kubejob_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	batchv1 "k8s.io/api/batch/v1"

	"github.com/sluice-ml/sluice/backends"
	"github.com/sluice-ml/sluice/backends/kubejob"
	"github.com/sluice-ml/sluice/backends/kubepod"
	"github.com/sluice-ml/sluice/pipeline"
	"github.com/sluice-ml/sluice/task"
)

// chain3 is a → b → c, each adding one to the last.
func chain3(c *counter) *pipeline.Pipeline {
	p := pipeline.New("chain3", nil)
	a := pipeline.Add(p, task.New("a", func(context.Context, struct{}) (int, error) { c.add("a"); return 1, nil }), struct{}{})
	b := pipeline.Add(p, task.New("b", func(_ context.Context, in pipeline.Ref[int]) (int, error) { c.add("b"); return in.Get() + 1, nil }), a.Output())
	pipeline.Add(p, task.New("c", func(_ context.Context, in pipeline.Ref[int]) (int, error) { c.add("c"); return in.Get() + 1, nil }), b.Output())
	return p
}

// A step is done as soon as its Job's pod has succeeded with its output:
// the next step does not wait for the Job controller's Complete
// condition, which comes a batch period (and, on a busy control plane, a
// rate limiter) later. A Job of one completion whose pod succeeded cannot
// fail any more, so its later condition changes nothing; the run itself
// ends once its Jobs say Complete too, so that nothing of a finished run
// looks unfinished.
func TestStepDoneWhenItsPodSucceeds(t *testing.T) {
	noLeaks(t)
	h := newHarness(t)
	defer h.Close()
	h.cl.HoldCompletions(true)
	c := &counter{}
	r := startRun(t.Context(), chain3(c), h.backend(&kubejob.Options{Pod: kubepod.Options{Image: testImage}, RunID: "quick-1"}))
	waitFor(t, func() bool { return r.step("c").Phase == backends.PhaseSucceeded }, "the last step is done")
	for _, s := range []string{"a", "b", "c"} {
		typ, _ := h.cl.Finished("quick-1-" + s)
		assert.Empty(t, typ, "Job %s has no Complete condition yet", s)
		assert.Equal(t, backends.PhaseSucceeded, r.step(s).Phase)
	}
	select {
	case <-r.done:
		t.Fatal("the run ended before its Jobs were Complete")
	default:
	}
	h.cl.HoldCompletions(false)
	st, err := r.wait(t)
	require.NoError(t, err, "%+v", st)
	assert.Equal(t, "3", string(step(t, st, "c").Output))
	for _, s := range []string{"a", "b", "c"} {
		typ, _ := h.cl.Finished("quick-1-" + s)
		assert.Equal(t, batchv1.JobComplete, typ, "Job %s", s)
	}
	assert.Equal(t, map[string]int{"a": 1, "b": 1, "c": 1}, c.counts())
}

// A resumed orchestrator reaches the same verdict from the same pod: a
// step whose pod succeeded while its Job is not Complete yet is done, and
// neither it nor the steps after it run again.
func TestResumeAfterPodSucceededBeforeJobComplete(t *testing.T) {
	noLeaks(t)
	h := newHarness(t)
	defer h.Close()
	h.cl.HoldCompletions(true)
	created := jobCreates(t, h)
	started, release := make(chan struct{}, 1), make(chan struct{})
	c := &counter{}
	p := func() *pipeline.Pipeline {
		p := pipeline.New("resume-quick", nil)
		a := pipeline.Add(p, task.New("a", func(context.Context, struct{}) (int, error) { c.add("a"); return 1, nil }), struct{}{})
		pipeline.Add(p, task.New("b", func(ctx context.Context, in pipeline.Ref[int]) (int, error) {
			c.add("b")
			started <- struct{}{}
			select {
			case <-release:
			case <-ctx.Done():
				return 0, ctx.Err()
			}
			return in.Get() + 1, nil
		}), a.Output())
		return p
	}
	opts := &kubejob.Options{Pod: kubepod.Options{Image: testImage}, RunID: "resume-quick-1"}
	first := h.backend(opts)
	r := startRun(t.Context(), p(), first)
	waitChan(t, started, "b runs, so a is done though its Job is not Complete")
	typ, _ := h.cl.Finished("resume-quick-1-a")
	require.Empty(t, typ)
	first.Close()
	_, err := r.wait(t)
	require.Error(t, err, "the first orchestrator was stopped")

	second := h.backend(opts)
	sr := startRun(t.Context(), p(), second)
	close(release)
	waitFor(t, func() bool { return sr.step("b").Phase == backends.PhaseSucceeded }, "b is done")
	h.cl.HoldCompletions(false)
	st, err := sr.wait(t)
	require.NoError(t, err, "%+v", st)
	assert.Equal(t, backends.PhaseSucceeded, st.Phase)
	assert.Equal(t, map[string]int{"a": 1, "b": 1}, c.counts(), "no step ran twice")
	for name, n := range created() {
		assert.Equal(t, 1, n, "Job %s created once", name)
	}
}

package backendtest

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sluice-ml/sluice/backends"
	"github.com/sluice-ml/sluice/backends/runstate"
	"github.com/sluice-ml/sluice/pipeline"
)

func run(t *testing.T, b backends.Backend, p *pipeline.Pipeline, params map[string]string) (*backends.RunStatus, error) {
	t.Helper()
	st, err := pipeline.Run(t.Context(), p, b, &pipeline.RunOptions{Params: params})
	require.NotNil(t, st, "no status: %v", err)
	return st, err
}

func mustSucceed(t *testing.T, b backends.Backend, p *pipeline.Pipeline, params map[string]string) *backends.RunStatus {
	t.Helper()
	st, err := run(t, b, p, params)
	require.NoError(t, err, "run failed: %s", summary(st))
	require.Equal(t, backends.PhaseSucceeded, st.Phase)
	return st
}

func summary(st *backends.RunStatus) string {
	if st == nil {
		return "<nil>"
	}
	var b strings.Builder
	pipeline.WriteSummary(&b, st)
	return b.String()
}

func step(t *testing.T, st *backends.RunStatus, name string) *backends.StepStatus {
	t.Helper()
	s := st.Step(name)
	require.NotNil(t, s, "no step %q in\n%s", name, summary(st))
	return s
}

func output[T any](t *testing.T, st *backends.RunStatus, name string) T {
	t.Helper()
	s := step(t, st, name)
	var v T
	require.NoError(t, json.Unmarshal(s.Output, &v), "output of %s: %s", name, s.Output)
	return v
}

func reasons(s *backends.StepStatus) []backends.Reason {
	var out []backends.Reason
	for _, a := range s.Attempts {
		out = append(out, a.Reason)
	}
	return out
}

func names(st *backends.RunStatus) []string {
	var out []string
	for _, s := range st.Steps {
		out = append(out, s.Name)
	}
	return out
}

func testDiamond(t *testing.T, b backends.Backend, _ Capabilities) {
	r := newRecorder()
	st := mustSucceed(t, b, diamond(r), nil)
	assert.Equal(t, []string{"source", "left", "right", "join"}, names(st), "plan order")
	assert.Equal(t, num{11}, output[num](t, st, "left"))
	assert.Equal(t, num{3}, output[num](t, st, "right"))
	assert.Equal(t, num{14}, output[num](t, st, "join"))
	for _, s := range st.Steps {
		assert.Equal(t, backends.PhaseSucceeded, s.Phase, s.Name)
		assert.Len(t, s.Attempts, 1, s.Name)
		assert.Equal(t, 1, r.count(s.Name), "%s ran once", s.Name)
	}
	assert.Less(t, r.index("end:source"), r.index("start:left"))
	assert.Less(t, r.index("end:source"), r.index("start:right"))
	assert.Less(t, r.index("end:left"), r.index("start:join"))
	assert.Less(t, r.index("end:right"), r.index("start:join"))
}

func testParamsAndFields(t *testing.T, b backends.Backend, _ Capabilities) {
	st := mustSucceed(t, b, paramsAndFields(newRecorder()), nil)
	assert.Equal(t, "base:14", output[string](t, st, "scale"), "defaults")
	st = mustSucceed(t, b, paramsAndFields(newRecorder()), map[string]string{"scale": "5", "label": "tuned"})
	assert.Equal(t, "tuned:35", output[string](t, st, "scale"), "overrides")
}

func testWideFanOut(t *testing.T, b backends.Backend, _ Capabilities) {
	r := newRecorder()
	st := mustSucceed(t, b, wideFanOut(r, 20, 3), nil)
	assert.Equal(t, 20, r.count("square"), "one instance per element")
	assert.LessOrEqual(t, r.maxRunning.Load(), int64(3), "parallelism cap")
	sq := step(t, st, "square")
	assert.Len(t, sq.Instances, 20)
	want := 0
	for i := range 20 {
		want += i * i
	}
	assert.Equal(t, num{want}, output[num](t, st, "total"))
}

func testDynamicFanOutFanIn(t *testing.T, b backends.Backend, _ Capabilities) {
	r := newRecorder()
	st := mustSucceed(t, b, dynamicFanOut(r), nil)
	assert.Equal(t, "A!,B!,C!,D!,E!,F!", output[string](t, st, "join"), "outputs in element order")
	assert.Equal(t, []string{"A!", "B!", "C!", "D!", "E!", "F!"}, output[[]string](t, st, "label"))
	for i := range 6 {
		assert.Equal(t, 1, r.count("label-"+string(rune('0'+i))), "instance %d ran once", i)
	}
}

func testStaticFanOutFanIn(t *testing.T, b backends.Backend, _ Capabilities) {
	st := mustSucceed(t, b, staticFanOut(newRecorder()), nil)
	assert.Equal(t, []string{"double-0", "double-1", "double-2", "total"}, names(st))
	assert.Equal(t, num{4}, output[num](t, st, "double-1"))
	assert.Equal(t, num{12}, output[num](t, st, "total"))
}

func testEmptyFanOut(t *testing.T, b backends.Backend, _ Capabilities) {
	r := newRecorder()
	st := mustSucceed(t, b, wideFanOut(r, 0, 2), nil)
	assert.Equal(t, 0, r.count("square"))
	assert.Equal(t, backends.PhaseSucceeded, step(t, st, "square").Phase)
	assert.Equal(t, []num{}, output[[]num](t, st, "square"))
	assert.Equal(t, num{0}, output[num](t, st, "total"))
}

func testConditionSkip(t *testing.T, b backends.Backend, _ Capabilities) {
	r := newRecorder()
	st := mustSucceed(t, b, conditions(r), nil)
	assert.Equal(t, backends.PhaseSkipped, step(t, st, "promote").Phase)
	assert.Equal(t, backends.PhaseSkipped, step(t, st, "announce").Phase, "skips propagate")
	assert.Equal(t, backends.PhaseSucceeded, step(t, st, "retrain").Phase)
	assert.Equal(t, backends.PhaseSucceeded, step(t, st, "check").Phase)
	assert.Zero(t, r.count("promote"))
	assert.Zero(t, r.count("announce"))
	assert.Equal(t, msgPromoteSkipped, step(t, st, "promote").Message, "the values that decided, each next to its ref")
	assert.Equal(t, backends.PhaseSkipped, step(t, st, "hold").Phase)
	assert.Equal(t, msgHoldSkipped, step(t, st, "hold").Message, "the operands that decided an or, an and and a not")
	assert.Zero(t, r.count("hold"))
	assert.Equal(t, backends.PhaseSkipped, step(t, st, "report").Phase, "an exit handler's condition")
	assert.Equal(t, msgReportSkipped, step(t, st, "report").Message)
	assert.Zero(t, r.count("report"))
	assert.Equal(t, runstate.UpstreamSkipped("promote"), step(t, st, "announce").Message)
	assert.Empty(t, step(t, st, "promote").Attempts, "a skipped step makes no attempt")
}

func testFailureSkipsDependents(t *testing.T, b backends.Backend, _ Capabilities) {
	r := newRecorder()
	st, err := run(t, b, exitHandler(r, true), nil)
	require.ErrorIs(t, err, pipeline.ErrRunFailed)
	assert.Equal(t, backends.PhaseFailed, st.Phase)
	assert.Equal(t, backends.PhaseFailed, step(t, st, "bad").Phase)
	assert.Equal(t, backends.PhaseSucceeded, step(t, st, "ok").Phase, "independent steps still run")
	bad := step(t, st, "bad")
	assert.Equal(t, fmt.Sprintf("bad attempt 1: %v", errScripted), bad.Message, "the task's error, as it returned it")
	assert.Equal(t, fmt.Sprintf("step %q failed: %s", "bad", bad.Message), st.Message)
	after := step(t, st, "after-bad")
	assert.Equal(t, backends.PhaseSkipped, after.Phase)
	assert.Equal(t, runstate.UpstreamFailed("bad"), after.Message)
	assert.Empty(t, after.Attempts)
	assert.Zero(t, r.count("after-bad"))
}

// runRetries runs the retries pipeline: it succeeds, unless the backend
// keeps one retry count (caps.SharedRetryCount), where "mixed" (App 1,
// Infra 2; failing infra, app, infra) finds its App budget used by the
// preemption and fails after two attempts, as documented.
func runRetries(t *testing.T, b backends.Backend, r *recorder, caps Capabilities) *backends.RunStatus {
	t.Helper()
	if !caps.SharedRetryCount {
		return mustSucceed(t, b, retries(r), nil)
	}
	st, err := run(t, b, retries(r), nil)
	require.ErrorIs(t, err, pipeline.ErrRunFailed)
	mixed := step(t, st, "mixed")
	assert.Equal(t, backends.PhaseFailed, mixed.Phase)
	assert.Equal(t, []backends.Reason{backends.ReasonInfra, backends.ReasonApp}, reasons(mixed))
	assert.Equal(t, fmt.Sprintf("mixed attempt 2: %v", errScripted), mixed.Message)
	assert.Equal(t, fmt.Sprintf("step %q failed: %s", "mixed", mixed.Message), st.Message)
	return st
}

func testRetryThenSucceed(t *testing.T, b backends.Backend, caps Capabilities) {
	r := newRecorder()
	st := runRetries(t, b, r, caps)
	s := step(t, st, "app-twice")
	assert.Equal(t, []backends.Reason{backends.ReasonApp, backends.ReasonApp, ""}, reasons(s))
	assert.Equal(t, 3, r.count("app-twice"))
	for i, a := range s.Attempts {
		assert.Equal(t, i+1, a.Number)
	}
	assert.Equal(t, backends.PhaseSucceeded, s.Attempts[2].Phase)
	assert.Equal(t, backends.PhaseFailed, s.Attempts[0].Phase)
	assert.NotEmpty(t, s.Attempts[0].Message)
}

func testPreemption(t *testing.T, b backends.Backend, caps Capabilities) {
	r := newRecorder()
	st := runRetries(t, b, r, caps)
	// Infra: 2 and no App budget: a preemption is retried.
	assert.Equal(t, []backends.Reason{backends.ReasonInfra, ""}, reasons(step(t, st, "preempted")))
	if caps.SharedRetryCount {
		return // runRetries checked "mixed"
	}
	// App: 1, Infra: 2: infra, app, infra, success — each failure drew on
	// its own budget, and the last infra retry fell back to on-demand.
	mixed := step(t, st, "mixed")
	assert.Equal(t, []backends.Reason{backends.ReasonInfra, backends.ReasonApp, backends.ReasonInfra, ""}, reasons(mixed))
	require.Len(t, mixed.Attempts, 4)
	assert.True(t, mixed.Attempts[3].OnDemand, "the attempt after the last infra retry runs on demand")
	assert.False(t, mixed.Attempts[1].OnDemand)
}

func testAppBudgetExhausted(t *testing.T, b backends.Backend, _ Capabilities) {
	r := newRecorder()
	p := pipeline.New("exhausted", nil)
	pipeline.Add(p, flaky(r, "always", "app", "app", "app", "app").WithRetry(retryApp1), none{})
	pipeline.Add(p, flaky(r, "spot", "infra", "infra", "infra").WithRetry(retryInfra1), none{})
	st, err := run(t, b, p, nil)
	require.ErrorIs(t, err, pipeline.ErrRunFailed)
	assert.Equal(t, []backends.Reason{backends.ReasonApp, backends.ReasonApp}, reasons(step(t, st, "always")))
	assert.Equal(t, 2, r.count("always"), "App: 1 allows exactly two attempts")
	assert.Equal(t, []backends.Reason{backends.ReasonInfra, backends.ReasonInfra}, reasons(step(t, st, "spot")))
	assert.Equal(t, 2, r.count("spot"), "Infra: 1 allows exactly two attempts")
	assert.Equal(t, backends.PhaseFailed, step(t, st, "always").Phase)
	assert.Equal(t, fmt.Sprintf("always attempt 2: %v", errScripted), step(t, st, "always").Message)
	spot := step(t, st, "spot")
	assert.Equal(t, spot.Attempts[1].Message+" (the Infra budget of 1 retries is used up)", spot.Message)
	assert.Equal(t, fmt.Sprintf("steps always, spot failed; first: step %q failed: %s", "always", step(t, st, "always").Message), st.Message)
}

func testTimeout(t *testing.T, b backends.Backend, _ Capabilities) {
	r := newRecorder()
	st, err := run(t, b, timeouts(r), nil)
	require.ErrorIs(t, err, pipeline.ErrRunFailed)
	hang := step(t, st, "hang")
	assert.Equal(t, backends.PhaseFailed, hang.Phase)
	assert.Equal(t, []backends.Reason{backends.ReasonApp}, reasons(hang), "a timeout is the task's failure")
	assert.Equal(t, runstate.TimedOut(150*time.Millisecond), hang.Attempts[0].Message)
	assert.Equal(t, hang.Attempts[0].Message, hang.Message)
	slow := step(t, st, "slow-once")
	assert.Equal(t, backends.PhaseSucceeded, slow.Phase)
	assert.Equal(t, []backends.Reason{backends.ReasonApp, ""}, reasons(slow))
}

func testExitHandlerAfterFailure(t *testing.T, b backends.Backend, _ Capabilities) {
	r := newRecorder()
	st, err := run(t, b, exitHandler(r, true), nil)
	require.ErrorIs(t, err, pipeline.ErrRunFailed)
	assert.Equal(t, 1, r.count("report"), "the exit handler runs once")
	require.NotNil(t, r.runInfo)
	assert.Equal(t, backends.PhaseFailed, r.runInfo.Phase)
	assert.Equal(t, []string{"bad"}, r.runInfo.Failed)
	assert.Equal(t, "report", st.Steps[len(st.Steps)-1].Name, "the exit handler is last")
	assert.Equal(t, backends.PhaseSucceeded, step(t, st, "report").Phase)
	assert.Greater(t, r.index("start:report"), r.index("end:ok"))
}

func testExitHandlerAfterSuccess(t *testing.T, b backends.Backend, _ Capabilities) {
	r := newRecorder()
	mustSucceed(t, b, exitHandler(r, false), nil)
	require.NotNil(t, r.runInfo)
	assert.Equal(t, pipeline.RunInfo{Phase: backends.PhaseSucceeded}, *r.runInfo)
}

func testCache(t *testing.T, b backends.Backend, _ Capabilities) {
	r := newRecorder()
	p := cached(r)
	first := mustSucceed(t, b, p, nil)
	assert.Equal(t, backends.PhaseSucceeded, step(t, first, "train").Phase)
	second := mustSucceed(t, b, p, nil)
	s := step(t, second, "train")
	assert.Equal(t, backends.PhaseCached, s.Phase, "same inputs: a cache hit")
	assert.Equal(t, 0.2, output[float64](t, second, "train"))
	assert.Equal(t, 1, r.count("train"))
	assert.NotEmpty(t, s.CacheKey)
	assert.Equal(t, step(t, first, "train").CacheKey, s.CacheKey)

	excluded := mustSucceed(t, b, p, map[string]string{"verbose": "true"})
	assert.Equal(t, backends.PhaseCached, step(t, excluded, "train").Phase, "an excluded input does not change the key")
	changed := mustSucceed(t, b, p, map[string]string{"lr": "0.3"})
	assert.Equal(t, backends.PhaseSucceeded, step(t, changed, "train").Phase, "a changed input misses")
	assert.Equal(t, 2, r.count("train"))
}

func testWeirdNames(t *testing.T, b backends.Backend, _ Capabilities) {
	r := newRecorder()
	st := mustSucceed(t, b, weirdNames(r), nil)
	assert.Equal(t, []string{"train-model", "2024-eval", "n-c-d", "a-b-c-d"}, names(st))
	assert.Equal(t, num{4}, output[num](t, st, "a-b-c-d"))
	assert.Equal(t, "weird-names", st.Pipeline, "the run reports the pipeline's DNS-1123 name")

	// Names that cannot be mapped are rejected before anything runs.
	p := pipeline.New("rejects", nil)
	pipeline.Add(p, constant(r, strings.Repeat("x", 80), 1), none{})
	pipeline.Add(p, constant(r, "Train Model", 1), none{})
	pipeline.Add(p, constant(r, "train-model", 1), none{})
	pipeline.Add(p, constant(r, "日本語", 1), none{})
	_, err := pipeline.Run(t.Context(), p, b, nil)
	require.Error(t, err)
	var fe *pipeline.FieldError
	require.True(t, errors.As(err, &fe))
	type key struct {
		Field string
		Type  pipeline.ErrorType
	}
	var got []key
	for _, e := range pipeline.FieldErrors(err) {
		got = append(got, key{e.Field, e.Type})
	}
	assert.Equal(t, []key{
		{"pipeline.tasks[" + strings.Repeat("x", 80) + "].name", "TooLong"},
		{"pipeline.tasks[train-model].name", "Duplicate"},
		{"pipeline.tasks[日本語].name", "Invalid"},
	}, got)
	assert.Zero(t, r.count(strings.Repeat("x", 80)), "nothing ran")
}

// testSearch runs an HPO round as graph structure: two rounds of three
// grid trials, one failing within the failure budget, and a step that
// reads the best trial's hyperparameters.
func testSearch(t *testing.T, b backends.Backend, _ Capabilities) {
	r := newRecorder()
	st := mustSucceed(t, b, search(r), nil)
	for w := 1; w <= 6; w++ {
		if w == searchFailWidth {
			assert.Equal(t, 1, r.count(fmt.Sprintf("trial-%d", w)), "the failing trial ran once: no retries by default")
			continue
		}
		assert.Equal(t, 1, r.count(fmt.Sprintf("trial-%d", w)), "trial at width %d", w)
	}
	assert.Equal(t, []string{"tune-suggest-0", "tune-trials-0", "tune-suggest-1", "tune-trials-1", "tune", "use"}, names(st))
	trials := step(t, st, "tune-trials-0")
	require.Len(t, trials.Instances, 3)
	assert.Equal(t, backends.PhaseFailed, trials.Instances[2].Phase, "width 3: %s", trials.Instances[2].Message)
	assert.Equal(t, backends.PhaseSucceeded, trials.Phase, "the fan-out tolerates one failure")
	res := output[searchResult](t, st, "tune")
	assert.Equal(t, 3, res.BestTrial)
	assert.Equal(t, searchHP{Width: 4, Rate: 0.5}, res.BestParams)
	assert.Equal(t, 0.5, res.BestObjective)
	var states []string
	for _, tr := range res.Trials {
		states = append(states, tr.State)
	}
	assert.Equal(t, []string{"complete", "complete", "failed", "complete", "complete", "complete"}, states)
	assert.Equal(t, 4, output[int](t, st, "use"))
}

// searchResult is the part of the search's hpo.Result the suite checks.
type searchResult struct {
	BestTrial     int      `json:"bestTrial"`
	BestObjective float64  `json:"bestObjective"`
	BestParams    searchHP `json:"bestParams"`
	Trials        []struct {
		ID    int    `json:"id"`
		State string `json:"state"`
	} `json:"trials"`
}

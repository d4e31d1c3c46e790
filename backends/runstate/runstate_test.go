package runstate_test

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/sluice-ml/sluice/backends"
	"github.com/sluice-ml/sluice/backends/runstate"
	"github.com/sluice-ml/sluice/resources"
	"github.com/sluice-ml/sluice/task"
)

func phases(ps ...backends.Phase) func(int) backends.Phase {
	return func(k int) backends.Phase { return ps[k] }
}

// noValues knows constants only.
func noValues(r backends.Ref) (json.RawMessage, error) {
	if r.Kind == backends.RefConst {
		return r.Value, nil
	}
	return nil, errors.New("no values")
}

func TestGate(t *testing.T) {
	const (
		ok, failed, skipped, canceled = backends.PhaseSucceeded, backends.PhaseFailed, backends.PhaseSkipped, backends.PhaseCanceled
	)
	flag := &backends.Ref{Kind: backends.RefConst, Value: json.RawMessage(`true`)}
	isTrue := &backends.Condition{Op: "==", Ref: flag, Value: json.RawMessage(`true`)}
	isFalse := &backends.Condition{Op: "==", Ref: flag, Value: json.RawMessage(`false`)}
	unknown := &backends.Condition{Op: "==", Ref: &backends.Ref{Kind: backends.RefParam, Param: "x"}, Value: json.RawMessage(`1`)}
	for _, c := range []struct {
		name     string
		deps     []backends.Phase
		when     *backends.Condition
		canceled bool
		want     runstate.Verdict
	}{
		{"no deps", nil, nil, false, runstate.Verdict{Run: true}},
		{"deps succeeded", []backends.Phase{ok, backends.PhaseCached}, nil, false, runstate.Verdict{Run: true}},
		{"run canceled", []backends.Phase{ok}, nil, true, runstate.Verdict{Phase: canceled, Message: runstate.MsgNotStarted}},
		// A canceled upstream wins over a failed one, whatever the order.
		{"failed then canceled", []backends.Phase{failed, canceled}, nil, false, runstate.Verdict{Phase: canceled, Message: runstate.MsgNotStarted}},
		{"canceled then failed", []backends.Phase{canceled, failed}, nil, false, runstate.Verdict{Phase: canceled, Message: runstate.MsgNotStarted}},
		// A failed upstream wins over a skipped one and names the first failed.
		{"skipped then failed", []backends.Phase{skipped, failed, failed}, nil, false, runstate.Verdict{Phase: skipped, Message: `upstream step "d1" failed`}},
		{"skipped", []backends.Phase{ok, skipped}, isTrue, false, runstate.Verdict{Phase: skipped, Message: `upstream step "d1" was skipped`}},
		// A skipped upstream skips without evaluating the condition.
		{"skipped, condition unknown", []backends.Phase{skipped}, unknown, false, runstate.Verdict{Phase: skipped, Message: `upstream step "d0" was skipped`}},
		{"condition true", []backends.Phase{ok}, isTrue, false, runstate.Verdict{Run: true}},
		{"condition false", []backends.Phase{ok}, isFalse, false, runstate.Verdict{Phase: skipped, Message: "condition true == false is false: true != false"}},
		{"condition error", nil, unknown, false, runstate.Verdict{Phase: failed, Message: "condition params.x == 1: no values"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := &backends.Step{Name: "s", When: c.when}
			for k := range c.deps {
				s.DependsOn = append(s.DependsOn, "d"+string(rune('0'+k)))
			}
			assert.Equal(t, c.want, runstate.Gate(s, phases(c.deps...), c.canceled, noValues))
		})
	}
}

func attempts(reasons ...backends.Reason) []backends.Attempt {
	var out []backends.Attempt
	for i, r := range reasons {
		out = append(out, backends.Attempt{Number: i + 1, Phase: backends.PhaseFailed, Reason: r, Message: "boom " + string(r)})
	}
	return out
}

func TestAfterFailure(t *testing.T) {
	const app, infra = backends.ReasonApp, backends.ReasonInfra
	spot := resources.Resolved{OnDemand: &resources.Placement{}}
	step := func(r task.Retry, res resources.Resolved) *backends.Step {
		return &backends.Step{Name: "s", Task: task.Spec{Retry: &r}, Resolved: res}
	}
	backoff := task.Backoff{Initial: time.Second}
	for _, c := range []struct {
		name      string
		step      *backends.Step
		tries     []backends.Attempt
		permanent bool
		want      runstate.Retry
	}{
		{"no policy", &backends.Step{}, attempts(app), false, runstate.Retry{Message: "boom app"}},
		{"app budget", step(task.Retry{App: 1, Backoff: backoff}, resources.Resolved{}), attempts(app), false, runstate.Retry{Again: true, Delay: time.Second}},
		{"app used up", step(task.Retry{App: 1, Backoff: backoff}, resources.Resolved{}), attempts(app, app), false, runstate.Retry{Message: "boom app"}},
		{"infra does not use app", step(task.Retry{App: 1, Infra: 1, Backoff: backoff}, resources.Resolved{}), attempts(app, infra), false, runstate.Retry{Again: true, Delay: 2 * time.Second}},
		{"infra used up", step(task.Retry{App: 3, Infra: 1}, resources.Resolved{}), attempts(infra, infra), false, runstate.Retry{Message: "boom infra (the Infra budget of 1 retries is used up)"}},
		{"no infra budget", step(task.Retry{App: 3}, resources.Resolved{}), attempts(infra), false, runstate.Retry{Message: "boom infra (the Infra budget of 0 retries is used up)"}},
		{"permanent", step(task.Retry{App: 3, Infra: 3}, resources.Resolved{}), attempts(infra), true, runstate.Retry{Message: "boom infra"}},
		{"on demand after the last infra", step(task.Retry{App: 1, Infra: 2, OnDemandFallback: true}, spot), attempts(infra, infra), false, runstate.Retry{Again: true, OnDemand: true}},
		{"spot before", step(task.Retry{App: 1, Infra: 2, OnDemandFallback: true}, spot), attempts(infra), false, runstate.Retry{Again: true}},
		{"app retry stays on demand", step(task.Retry{App: 1, Infra: 1, OnDemandFallback: true}, spot), attempts(infra, app), false, runstate.Retry{Again: true, OnDemand: true}},
		{"not preemptible", step(task.Retry{Infra: 1, OnDemandFallback: true}, resources.Resolved{}), attempts(infra), false, runstate.Retry{Again: true}},
	} {
		t.Run(c.name, func(t *testing.T) {
			assert.Equal(t, c.want, runstate.AfterFailure(c.step, c.tries, c.permanent))
		})
	}
	// A canceled attempt consumes no budget.
	tries := []backends.Attempt{{Number: 1, Phase: backends.PhaseCanceled}, {Number: 2, Phase: backends.PhaseFailed, Reason: app}}
	assert.True(t, runstate.AfterFailure(step(task.Retry{App: 1}, resources.Resolved{}), tries, false).Again)
}

func inst(phase backends.Phase, out string) backends.StepStatus {
	s := backends.StepStatus{Phase: phase}
	if out != "" {
		s.Output = json.RawMessage(out)
	}
	if phase == backends.PhaseFailed {
		s.Message = "bad"
	}
	return s
}

func TestFanOutEnd(t *testing.T) {
	const ok, cached, failed, canceled = backends.PhaseSucceeded, backends.PhaseCached, backends.PhaseFailed, backends.PhaseCanceled
	fan := func(n int, f float64) *backends.Step {
		return &backends.Step{Name: "f", ForEach: &backends.ForEach{MaxFailed: n, MaxFailedFraction: f}}
	}
	for _, c := range []struct {
		name  string
		step  *backends.Step
		insts []backends.StepStatus
		want  runstate.Outcome
	}{
		{"empty", fan(0, 0), nil, runstate.Outcome{Phase: ok, Output: json.RawMessage(`[]`)}},
		{"all ok", fan(0, 0), []backends.StepStatus{inst(ok, "1"), inst(cached, "2")}, runstate.Outcome{Phase: ok, Output: json.RawMessage(`[1,2]`)}},
		{"all cached", fan(0, 0), []backends.StepStatus{inst(cached, "1")}, runstate.Outcome{Phase: cached, Output: json.RawMessage(`[1]`)}},
		{"one failed", fan(0, 0), []backends.StepStatus{inst(ok, "1"), inst(failed, ""), inst(failed, "")}, runstate.Outcome{Phase: failed, Message: "instance 1 failed: bad"}},
		{"failed beats canceled", fan(0, 0), []backends.StepStatus{inst(canceled, ""), inst(failed, "")}, runstate.Outcome{Phase: failed, Message: "instance 1 failed: bad"}},
		{"canceled", fan(0, 0), []backends.StepStatus{inst(ok, "1"), inst(canceled, "")}, runstate.Outcome{Phase: canceled, Message: "canceled"}},
		{"tolerated", fan(1, 0), []backends.StepStatus{inst(ok, "1"), inst(failed, ""), inst(cached, "3")},
			runstate.Outcome{Phase: ok, Output: json.RawMessage(`[1,3]`), Message: "1 of 3 instances failed (at most 1 tolerated), left out of the output: instance 1 failed: bad"}},
		{"beyond tolerance", fan(1, 0), []backends.StepStatus{inst(failed, ""), inst(ok, "2"), inst(failed, "")},
			runstate.Outcome{Phase: failed, Message: "2 of 3 instances failed, more than the 1 tolerated; first: instance 0 failed: bad"}},
		{"fraction", fan(0, 0.5), []backends.StepStatus{inst(failed, ""), inst(ok, "2"), inst(failed, ""), inst(ok, "4")},
			runstate.Outcome{Phase: ok, Output: json.RawMessage(`[2,4]`), Message: "2 of 4 instances failed (at most 2 tolerated), left out of the output: instance 0 failed: bad; instance 2 failed: bad"}},
		{"fraction rounds down", fan(0, 0.5), []backends.StepStatus{inst(failed, ""), inst(ok, "2"), inst(failed, "")},
			runstate.Outcome{Phase: failed, Message: "2 of 3 instances failed, more than the 1 tolerated; first: instance 0 failed: bad"}},
		{"all failed, all tolerated", fan(2, 0), []backends.StepStatus{inst(failed, ""), inst(failed, "")},
			runstate.Outcome{Phase: ok, Output: json.RawMessage(`[]`), Message: "2 of 2 instances failed (at most 2 tolerated), left out of the output: instance 0 failed: bad; instance 1 failed: bad"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			assert.Equal(t, c.want, runstate.FanOutEnd(c.step, c.insts))
		})
	}
}

func TestTolerated(t *testing.T) {
	s := &backends.Step{ForEach: &backends.ForEach{MaxFailed: 2, MaxFailedFraction: 0.1}}
	assert.Equal(t, 2, runstate.Tolerated(s, 10))
	assert.Equal(t, 3, runstate.Tolerated(s, 30)) // 0.1 × 30 is exactly 3
	assert.Equal(t, 3, runstate.Tolerated(s, 39)) // rounded down
	assert.Equal(t, 0, runstate.Tolerated(&backends.Step{}, 10))
}

func TestEndAndInfo(t *testing.T) {
	st := func(name string, p backends.Phase, msg string) backends.StepStatus {
		return backends.StepStatus{Name: name, Phase: p, Message: msg}
	}
	ok := []backends.StepStatus{st("a", backends.PhaseSucceeded, ""), st("b", backends.PhaseSkipped, "condition x is false")}
	assert.Equal(t, runstate.Outcome{Phase: backends.PhaseSucceeded}, runstate.End(ok, false))
	assert.Equal(t, backends.RunInfo{Phase: backends.PhaseSucceeded}, runstate.Info(ok, false))

	one := []backends.StepStatus{st("a", backends.PhaseFailed, "boom"), st("b", backends.PhaseSkipped, `upstream step "a" failed`)}
	assert.Equal(t, runstate.Outcome{Phase: backends.PhaseFailed, Message: `step "a" failed: boom`}, runstate.End(one, false))
	assert.Equal(t, backends.RunInfo{Phase: backends.PhaseFailed, Failed: []string{"a"}}, runstate.Info(one, false))

	two := []backends.StepStatus{st("a", backends.PhaseFailed, "boom"), st("b", backends.PhaseFailed, "bang")}
	assert.Equal(t, runstate.Outcome{Phase: backends.PhaseFailed, Message: `steps a, b failed; first: step "a" failed: boom`}, runstate.End(two, false))

	// Cancel wins, and the exit handler still learns which steps failed.
	assert.Equal(t, runstate.Outcome{Phase: backends.PhaseCanceled, Message: "canceled"}, runstate.End(two, true))
	assert.Equal(t, backends.RunInfo{Phase: backends.PhaseCanceled, Failed: []string{"a", "b"}}, runstate.Info(two, true))

	// A failed exit handler fails a run whose steps succeeded.
	exit := append(ok, st("notify", backends.PhaseFailed, "smtp down"))
	assert.Equal(t, runstate.Outcome{Phase: backends.PhaseFailed, Message: `step "notify" failed: smtp down`}, runstate.End(exit, false))
}

func TestMessages(t *testing.T) {
	assert.Equal(t, "timed out after 1m0s", runstate.TimedOut(time.Minute))
	assert.Equal(t, "canceled while waiting to retry after: boom", runstate.CanceledInBackoff(backends.Attempt{Message: "boom"}))
	assert.Equal(t, "resolve input: bad ref", runstate.InputError(errors.New("bad ref")))
}

// A skip says the values that decided it; without them, the condition
// alone.
func TestConditionFalse(t *testing.T) {
	assert.Equal(t, "condition a.x > params.y is false: a.x = 1 < params.y = 2", runstate.ConditionFalse("a.x > params.y", "a.x = 1 < params.y = 2"))
	assert.Equal(t, "condition a.x > params.y is false", runstate.ConditionFalse("a.x > params.y", ""))

	x := backends.Ref{Kind: backends.RefStep, Step: "a", Path: []string{"x"}}
	y := backends.Ref{Kind: backends.RefParam, Param: "y"}
	s := &backends.Step{Name: "s", When: &backends.Condition{Op: ">", Ref: &x, Other: &y}}
	values := func(r backends.Ref) (json.RawMessage, error) {
		return map[string]json.RawMessage{"a.x": json.RawMessage(`1`), "params.y": json.RawMessage(`2`)}[r.String()], nil
	}
	assert.Equal(t, runstate.Verdict{Phase: backends.PhaseSkipped, Message: "condition a.x > params.y is false: a.x = 1 < params.y = 2"}, runstate.Condition(s, values))
}

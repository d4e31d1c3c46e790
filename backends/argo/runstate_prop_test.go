package argo_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	"github.com/argoproj/argo-workflows/v3/util/expr/argoexpr"
	"github.com/argoproj/argo-workflows/v3/util/expr/env"
	argotemplate "github.com/argoproj/argo-workflows/v3/util/template"
	"github.com/argoproj/argo-workflows/v3/workflow/common"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/sluice-ml/sluice/backends"
	"github.com/sluice-ml/sluice/backends/argo"
	"github.com/sluice-ml/sluice/backends/runstate"
	"github.com/sluice-ml/sluice/pipeline"
	"github.com/sluice-ml/sluice/task"
)

// The property test holds the Argo Workflows a plan compiles to to the run
// rules of package runstate. For random plans (dependencies, conditions on
// upstream outputs, retry budgets, timeouts, fan-outs with or without a
// failure tolerance, an exit handler
// reading the run's outcome) and random outcome scripts (which attempts fail, and how:
// the task's error, its own infrastructure failure, a preemption, an
// eviction, SIGTERM, a timeout, a wrong invocation), it plays the run
// twice, once by runstate's functions, once by Argo v3.7.18's own logic
// over the compiled Workflow — depends expanded by workflow/common and
// evaluated by util/expr/argoexpr as the controller's DAG does, when and
// the exit handler's arguments substituted by util/template, a fan-out's
// withParam group and its children laid out as the controller does, the
// retry strategy's limit and expression evaluated with the controller's
// scope.
// A third of the runs without fan-outs are canceled midway, on a clock
// where a step starts when its last dependency ends and an attempt takes
// one unit: the attempts then running stop, nothing starts after, and
// the exit handler still runs. Then it compares which steps ran, their attempts and phases, the RunInfo
// the exit handler gets, and the status Watch reports for the Workflow
// (argo.Status over the node statuses Argo would write) word for word.
//
// The one difference allowed is the documented one (go doc
// ./backends/argo, "# Retries"): Argo keeps one retry count, so a step
// whose attempts failed for both reasons may get a different number of
// attempts. Such a case is counted and the rest of it not compared.
//
// SLUICE_PROP_SEED=<n> replays one seed; the seed is printed on failure.
func TestArgoFollowsRunstate(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("SLUICE_PROP_SEED"); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("SLUICE_PROP_SEED: %v", err)
		}
		seed = n
	}
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	const cases = 1000
	mixed, fanOuts, cancels, tolerated, overBudget := 0, 0, 0, 0, 0
	for i := range cases {
		c := randomCase(rng)
		if len(c.items) > 0 {
			fanOuts++
		}
		if c.cancelAt > 0 {
			cancels++
		}
		diverged, err := c.check(t.Context())
		if err != nil {
			t.Fatalf("case %d of seed %d (replay: SLUICE_PROP_SEED=%d go test -run TestArgoFollowsRunstate ./backends/argo/):\n%s\n%v", i, seed, seed, c, err)
		}
		if diverged {
			mixed++
		}
		tolerated, overBudget = tolerated+c.tolerated, overBudget+c.overBudget
	}
	t.Logf("seed %d: %d cases (%d with fan-outs, %d canceled), %d with the documented one-retry-count difference; "+
		"tolerant fan-outs: %d succeeded with failed instances, %d failed over their tolerance", seed, cases, fanOuts, cancels, mixed, tolerated, overBudget)
	if tolerated == 0 || overBudget == 0 {
		t.Fatalf("seed %d: the cases hold no tolerated failure or no fan-out failing over its tolerance", seed)
	}
	if mixed == cases {
		t.Fatalf("seed %d: every case diverged; the comparison checked nothing", seed)
	}
}

// outcome is how one attempt ends.
type outcome int

const (
	ok        outcome = iota
	appFail           // the task returned an error: exit 1
	ownInfra          // the task's own infrastructure failure: exit ExitInfrastructure
	preempted         // the pod was deleted: Argo marks the node Error
	evicted           // the pod was evicted
	sigterm           // the pod was stopped by SIGTERM: exit 143
	deadline          // the pod ran past activeDeadlineSeconds
	badInvoke         // a wrong invocation of the task mode: exit 2
)

var outcomeNames = []string{"ok", "app", "own-infra", "preempted", "evicted", "sigterm", "deadline", "bad-invoke"}

func (o outcome) String() string { return outcomeNames[o] }

type pOut struct{ V int }
type pIn struct{}
type pItemIn struct{ X pipeline.Ref[int] }
type pExitIn struct {
	Info pipeline.Ref[pipeline.RunInfo]
}

// propCase is one random plan and its script.
type propCase struct {
	desc    []string
	p       *pipeline.Pipeline
	script  map[string][]outcome // step, or "step[i]" for an instance -> the outcomes of its attempts; then ok
	outputs map[string]int       // the same -> the V of its output
	items   map[string]int       // fan-out step -> its number of instances
	// cancelAt, when not zero, is when Cancel comes, on a clock where a
	// step starts when its last dependency ends, an attempt takes 1 and
	// a retry follows at once. It is never a whole number, so nothing
	// starts or ends exactly then.
	cancelAt float64
	// tolerated and overBudget count the tolerant fan-outs that
	// succeeded with failed instances and that failed (set by check).
	tolerated, overBudget int
}

// stopped reports whether Cancel stops an attempt running from t to t+1.
func (c *propCase) stopped(t float64) bool { return c.cancelAt > 0 && c.cancelAt < t+1 }

// notStarted reports whether a step that would start at t never does.
func (c *propCase) notStarted(t float64) bool { return c.cancelAt > 0 && t > c.cancelAt }

func (c *propCase) String() string { return strings.Join(c.desc, "\n") }

func randomCase(rng *rand.Rand) *propCase {
	c := &propCase{p: pipeline.New("prop", nil), script: map[string][]outcome{}, outputs: map[string]int{}, items: map[string]int{}}
	n := 1 + rng.IntN(6)
	var all []pipeline.Dependency // every step and fan-out so far
	for i := range n {
		name := fmt.Sprintf("s%d", i)
		r := task.Retry{App: rng.IntN(3), Infra: rng.IntN(3)}
		timeout := rng.IntN(3) == 0
		var deps []pipeline.Dependency
		var depNames []string
		var ups []pipeline.Step[pOut]
		for k, d := range all {
			if rng.IntN(5) < 2 {
				deps = append(deps, d)
				depNames = append(depNames, fmt.Sprint("s", k))
				if st, ok := d.(pipeline.Step[pOut]); ok {
					ups = append(ups, st)
				}
			}
		}
		line := fmt.Sprintf("%s after %v retry app=%d infra=%d timeout=%v", name, depNames, r.App, r.Infra, timeout)
		var cond *pipeline.Cond
		if len(ups) > 0 && rng.IntN(3) == 0 {
			up, k := ups[rng.IntN(len(ups))], rng.IntN(3)
			cd := pipeline.Gt(pipeline.Field[int](up.Output(), "V"), k)
			cond = &cd
			line += fmt.Sprintf(" when %s.V > %d", up.Name(), k)
		}
		if rng.IntN(4) == 0 { // a fan-out over 1 to 3 elements
			t := task.New(name, func(context.Context, pItemIn) (pOut, error) { return pOut{}, nil }).WithRetry(r)
			if timeout {
				t = t.WithTimeout(time.Minute)
			}
			k := 1 + rng.IntN(3)
			items := make([]int, k)
			for j := range items {
				items[j] = j
			}
			f := pipeline.ForEach(c.p, t, pipeline.Const(items), func(x pipeline.Ref[int]) pItemIn { return pItemIn{X: x} }).After(deps...)
			if cond != nil {
				f = f.When(*cond)
			}
			switch rng.IntN(4) { // a failure tolerance, half of the time
			case 0:
				n := rng.IntN(3)
				f = f.Tolerate(n)
				line += fmt.Sprintf(" tolerating %d", n)
			case 1:
				x := []float64{0.34, 0.5, 2.0 / 3, 1}[rng.IntN(4)]
				f = f.TolerateFraction(x)
				line += fmt.Sprintf(" tolerating %v", x)
			}
			c.items[name] = k
			line += fmt.Sprintf(" for each of %d:", k)
			for j := range k {
				key := fmt.Sprintf("%s[%d]", name, j)
				c.script[key] = randomScript(rng, timeout)
				line += fmt.Sprintf(" %v", c.script[key])
			}
			c.desc = append(c.desc, line)
			all = append(all, f)
			continue
		}
		t := task.New(name, func(context.Context, pIn) (pOut, error) { return pOut{}, nil }).WithRetry(r)
		if timeout {
			t = t.WithTimeout(time.Minute)
		}
		s := pipeline.Add(c.p, t, pIn{}).After(deps...)
		if cond != nil {
			s = s.When(*cond)
		}
		c.script[name], c.outputs[name] = randomScript(rng, timeout), rng.IntN(4)
		c.desc = append(c.desc, fmt.Sprintf("%s: script %v output %d", line, c.script[name], c.outputs[name]))
		all = append(all, s)
	}
	if len(c.items) == 0 && rng.IntN(3) == 0 {
		c.cancelAt = float64(rng.IntN(6)) + 0.5
		c.desc = append(c.desc, fmt.Sprintf("cancel at %.1f", c.cancelAt))
	}
	if rng.IntN(2) == 0 {
		exit := task.New("notify", func(context.Context, pExitIn) (pOut, error) { return pOut{}, nil })
		pipeline.OnExit(c.p, exit, pExitIn{Info: c.p.Status()})
		c.script["notify"] = randomScript(rng, false)
		c.desc = append(c.desc, fmt.Sprintf("exit notify: script %v", c.script["notify"]))
	}
	return c
}

func randomScript(rng *rand.Rand, timeout bool) []outcome {
	var s []outcome
	for range rng.IntN(5) {
		o := outcome(1 + rng.IntN(int(badInvoke)))
		if o == deadline && !timeout {
			o = appFail
		}
		if o == badInvoke && rng.IntN(3) > 0 {
			o = appFail // rarer: it ends the step at once
		}
		s = append(s, o)
	}
	return s
}

// attempt is one attempt as both sides see it: runstate's Attempt, and
// the pod node Argo v3.7 writes for it.
func (c *propCase) attempt(s *backends.Step, key string, n int) (backends.Attempt, wfv1.NodeStatus, bool) {
	script := c.script[key]
	o := ok
	if n <= len(script) {
		o = script[n-1]
	}
	a := backends.Attempt{Number: n, Phase: backends.PhaseFailed, Reason: backends.ReasonApp}
	node := wfv1.NodeStatus{Phase: wfv1.NodeFailed, Outputs: &wfv1.Outputs{}}
	exit := func(code int, text string) {
		node.Outputs.ExitCode = ptrTo(strconv.Itoa(code))
		node.Message = fmt.Sprintf("main: Error (exit code %d): %s", code, text)
		a.Message = text
	}
	permanent := false
	switch o {
	case ok:
		a = backends.Attempt{Number: n, Phase: backends.PhaseSucceeded}
		out := fmt.Sprintf(`{"V":%d}`, c.outputs[key])
		node = wfv1.NodeStatus{Phase: wfv1.NodeSucceeded, Outputs: &wfv1.Outputs{ExitCode: ptrTo("0"),
			Parameters: []wfv1.Parameter{{Name: "o", Value: wfv1.AnyStringPtr(out)}}}}
	case appFail:
		exit(1, fmt.Sprintf("attempt %d: bad batch", n))
	case ownInfra:
		exit(backends.ExitInfrastructure, fmt.Sprintf("attempt %d: device lost", n))
		a.Reason = backends.ReasonInfra
	case sigterm:
		exit(backends.ExitTerminated, fmt.Sprintf("attempt %d: terminated", n))
		a.Reason = backends.ReasonInfra
	case badInvoke:
		exit(2, "task mode: unknown step")
		permanent = true
	case preempted:
		node.Phase, node.Message = wfv1.NodeError, "pod deleted"
		a.Reason, a.Message = backends.ReasonInfra, node.Message
	case evicted:
		node.Message = "Pod was rejected: The node was low on resource: memory. Evicted"
		a.Reason, a.Message = backends.ReasonInfra, node.Message
	case deadline:
		node.Outputs.ExitCode = ptrTo("143")
		node.Message = "Pod was active on the node longer than the specified deadline"
		a.Message = runstate.TimedOut(s.Task.Timeout)
	}
	return a, node, permanent
}

func ptrTo[T any](v T) *T { return &v }

// oneCount is the documented Argo retry rule (go doc ./backends/argo,
// "# Retries"): one retry count for both budgets. An infrastructure
// failure is retried, when Infra is not zero, while the limit App+Infra
// allows, an application failure while fewer than App retries of any kind
// were made.
func oneCount(s *backends.Step, tries []backends.Attempt, permanent bool) bool {
	r := *s.Task.Retry
	switch {
	case permanent:
		return false
	case tries[len(tries)-1].Reason == backends.ReasonInfra:
		return r.Infra > 0 && len(tries) <= r.App+r.Infra
	}
	return len(tries)-1 < r.App
}

// reference plays the run by package runstate; with argoCount, retries
// follow oneCount instead of runstate.AfterFailure.
func (c *propCase) reference(plan *backends.Plan, argoCount bool) (steps []backends.StepStatus, info *backends.RunInfo, canceled bool) {
	outputs := map[string]json.RawMessage{}
	phase := map[string]backends.Phase{}
	values := backends.Values{Output: func(s string) (json.RawMessage, bool) { v, ok := outputs[s]; return v, ok }}
	end := map[string]float64{} // when each step ended
	runTask := func(s *backends.Step, key string, start float64, cancelable bool) backends.StepStatus {
		st := backends.StepStatus{Name: key}
		for n := 1; ; n++ {
			end[s.Name] = start + float64(n)
			if cancelable && c.stopped(start+float64(n-1)) {
				st.Attempts = append(st.Attempts, backends.Attempt{Number: n, Phase: backends.PhaseCanceled, Message: runstate.MsgCanceled})
				st.Phase, st.Message, end[s.Name] = backends.PhaseCanceled, runstate.MsgCanceled, c.cancelAt
				return st
			}
			a, _, permanent := c.attempt(s, key, n)
			st.Attempts = append(st.Attempts, a)
			if a.Phase == backends.PhaseSucceeded {
				st.Phase, st.Output = backends.PhaseSucceeded, json.RawMessage(fmt.Sprintf(`{"V":%d}`, c.outputs[key]))
				return st
			}
			next := runstate.AfterFailure(s, st.Attempts, permanent)
			if argoCount {
				next.Again = oneCount(s, st.Attempts, permanent)
				next.Message = runstate.Exhausted(st.Attempts[n-1], s.Task.Retry.Infra, permanent)
			}
			if !next.Again {
				st.Phase, st.Message = backends.PhaseFailed, next.Message
				return st
			}
		}
	}
	runStep := func(s *backends.Step, v backends.Values, cancelable bool) backends.StepStatus {
		start := 0.0
		for _, d := range s.DependsOn {
			start = max(start, end[d])
		}
		end[s.Name] = start
		if cancelable && c.notStarted(start) {
			v := runstate.Gate(s, nil, true, nil)
			return backends.StepStatus{Name: s.Name, Phase: v.Phase, Message: v.Message}
		}
		verdict := runstate.Gate(s, func(k int) backends.Phase { return phase[s.DependsOn[k]] }, false, v.Value)
		if !verdict.Run {
			return backends.StepStatus{Name: s.Name, Phase: verdict.Phase, Message: verdict.Message}
		}
		if s.ForEach == nil {
			return runTask(s, s.Name, start, cancelable)
		}
		st := backends.StepStatus{Name: s.Name}
		for k := range c.items[s.Name] {
			st.Instances = append(st.Instances, runTask(s, fmt.Sprintf("%s[%d]", s.Name, k), start, cancelable))
		}
		end := runstate.FanOutEnd(s, st.Instances)
		st.Phase, st.Message, st.Output = end.Phase, end.Message, end.Output
		return st
	}
	last := 0.0
	for i := range plan.Steps {
		st := runStep(&plan.Steps[i], values, true)
		phase[st.Name] = st.Phase
		if st.Phase == backends.PhaseSucceeded {
			outputs[st.Name] = st.Output
		}
		steps = append(steps, st)
		last = max(last, end[st.Name])
	}
	canceled = c.cancelAt > 0 && c.cancelAt <= last // Cancel came before the steps ended (a step it stopped ended then)
	if plan.Exit != nil {
		in := runstate.Info(steps, canceled)
		info = &in
		steps = append(steps, runStep(plan.Exit, backends.Values{Output: values.Output, Info: info}, false))
	}
	return steps, info, canceled
}

// argoRun plays the compiled Workflow by Argo's logic and writes the node
// statuses Argo would.
type argoRun struct {
	c      *propCase
	wf     *wfv1.Workflow
	plan   *backends.Plan
	tmpls  map[string]*wfv1.Template
	tasks  map[string]*wfv1.DAGTask
	scope  map[string]any
	result map[string]wfv1.NodePhase // DAG task -> phase
	end    map[string]float64        // DAG task -> when it ended (see propCase.cancelAt)
	steps  map[string]*backends.Step // DAG task -> step
	info   *backends.RunInfo         // what the exit handler got
}

// GetTask, GetTaskDependencies and GetTaskFinishedAtTime make argoRun the
// DAG context that workflow/common expands depends with.
func (r *argoRun) GetTask(name string) *wfv1.DAGTask { return r.tasks[name] }
func (r *argoRun) GetTaskDependencies(name string) []string {
	deps, _ := common.GetTaskDependencies(r.tasks[name], r)
	var out []string
	for d := range deps {
		out = append(out, d)
	}
	return out
}
func (r *argoRun) GetTaskFinishedAtTime(string) time.Time { return time.Time{} }

// taskResults mirrors the controller's TaskResults, the scope of depends.
type taskResults struct {
	Succeeded, Failed, Errored, Skipped, Omitted, Daemoned, AnySucceeded, AllFailed bool
}

func (r *argoRun) node(n wfv1.NodeStatus) {
	n.ID = "n-" + n.Name
	r.wf.Status.Nodes[n.ID] = n
}

// dag runs the tasks of a DAG template under the node named parent.
func (r *argoRun) dag(parent string, t *wfv1.Template) error {
	r.tasks = map[string]*wfv1.DAGTask{}
	for i := range t.DAG.Tasks {
		r.tasks[t.DAG.Tasks[i].Name] = &t.DAG.Tasks[i]
	}
	var children []string
	for i := range t.DAG.Tasks { // in plan order, which is topological
		dt := &t.DAG.Tasks[i]
		name := parent + "." + dt.Name
		children = append(children, "n-"+name)
		deps, logic := common.GetTaskDependencies(dt, r)
		start := 0.0
		for d := range deps {
			start = max(start, r.end[d])
		}
		r.end[dt.Name] = start
		cancelable := parent == r.wf.Name
		if cancelable && r.c.notStarted(start) {
			continue // shut down before it was due: Argo creates no node
		}
		results := map[string]taskResults{}
		for d := range deps {
			ph := r.result[d]
			results[strings.ReplaceAll(d, "-", "_")] = taskResults{Succeeded: ph == wfv1.NodeSucceeded, Failed: ph == wfv1.NodeFailed,
				Errored: ph == wfv1.NodeError, Skipped: ph == wfv1.NodeSkipped, Omitted: ph == wfv1.NodeOmitted}
		}
		if logic != "" {
			run, err := argoexpr.EvalBool(strings.ReplaceAll(logic, "-", "_"), results)
			if err != nil {
				return fmt.Errorf("depends %q of %s: %w", logic, dt.Name, err)
			}
			if !run {
				r.result[dt.Name] = wfv1.NodeOmitted
				r.node(wfv1.NodeStatus{Name: name, DisplayName: dt.Name, Type: wfv1.NodeTypeSkipped, Phase: wfv1.NodeOmitted, Message: "omitted: depends condition not met"})
				continue
			}
		}
		b, _ := json.Marshal(dt)
		sub, err := argotemplate.Replace(string(b), r.scope, false)
		if err != nil {
			return fmt.Errorf("substitute task %s: %w", dt.Name, err)
		}
		var got wfv1.DAGTask
		if err := json.Unmarshal([]byte(sub), &got); err != nil {
			return err
		}
		switch got.When {
		case "", "true":
		case "false":
			r.result[dt.Name] = wfv1.NodeSkipped
			r.node(wfv1.NodeStatus{Name: name, DisplayName: dt.Name, Type: wfv1.NodeTypeSkipped, Phase: wfv1.NodeSkipped, Message: "when 'false' evaluated false"})
			continue
		default:
			return fmt.Errorf("when of %s evaluated to %q", dt.Name, got.When)
		}
		if w := r.tmpls[got.Template]; w != nil && w.DAG != nil {
			if err := r.fanOut(name, dt, &got, w, start); err != nil {
				return err
			}
			continue
		}
		if err := r.retries(name, dt, &got, start, cancelable); err != nil {
			return err
		}
	}
	phase := wfv1.NodeSucceeded
	for _, dt := range t.DAG.Tasks {
		if ph := r.result[dt.Name]; ph == wfv1.NodeFailed || ph == wfv1.NodeError {
			phase = wfv1.NodeFailed
		}
	}
	r.node(wfv1.NodeStatus{Name: parent, DisplayName: parent, Type: wfv1.NodeTypeDAG, Phase: phase, Children: children})
	return nil
}

// retries runs the attempts of one DAG task (not a fan-out) and records
// its outcome; for the exit handler, it keeps the RunInfo its arguments
// carry.
func (r *argoRun) retries(name string, dt, got *wfv1.DAGTask, start float64, cancelable bool) error {
	s := r.steps[dt.Name]
	if r.plan.Exit != nil && s == r.plan.Exit {
		var in struct{ Info backends.RunInfo }
		for _, p := range got.Arguments.Parameters {
			if p.Name == "i" {
				if err := json.Unmarshal([]byte(p.Value.String()), &in); err != nil {
					return fmt.Errorf("exit handler input %s: %w", p.Value.String(), err)
				}
			}
		}
		r.info = &in.Info
	}
	last, took, err := r.tries(name, dt.Name, s, s.Name, r.tmpls[dt.Template], start, cancelable)
	r.end[dt.Name] = start + took
	if err != nil {
		return err
	}
	r.result[dt.Name] = last.Phase
	if last.Phase == wfv1.NodeSucceeded {
		for _, p := range last.Outputs.Parameters {
			r.scope["tasks."+dt.Name+".outputs.parameters."+p.Name] = p.Value.String()
		}
	}
	return nil
}

// fanOut runs a withParam fan-out as Argo does: the wrapper DAG's node,
// its task group "each", one child per element, each with its attempts,
// and the wrapper's other tasks (a tolerant fan-out's "tolerate"), whose
// depends and when the controller evaluates over the wrapper's inputs
// (got's arguments) and the group's outputs, aggregated from its
// Succeeded children as processAggregateNodeOutputs does. A when whose
// expression fails makes its node Error; a suspend template of duration
// 0 succeeds. The group fails when a child fails; the wrapper fails as
// its DAG's leaves do (a leaf that did not complete inheriting its
// dependencies' failure; a leaf that continues on its phase does not
// count).
func (r *argoRun) fanOut(name string, dt, got *wfv1.DAGTask, wrap *wfv1.Template, start float64) error {
	s, inner := r.steps[dt.Name], r.tmpls[wrap.DAG.Tasks[0].Template]
	each := wrap.DAG.Tasks[0].Name
	group := name + "." + each
	phase := wfv1.NodeSucceeded
	var kids []string
	params := []map[string]string{}
	values := map[string][]string{}
	for k := range r.c.items[s.Name] {
		display := fmt.Sprintf("%s(%d:%d)", each, k, k)
		last, took, err := r.tries(name+"."+display, display, s, fmt.Sprintf("%s[%d]", s.Name, k), inner, start, false)
		r.end[dt.Name] = max(r.end[dt.Name], start+took)
		if err != nil {
			return err
		}
		kids = append(kids, "n-"+name+"."+display)
		if last.Phase != wfv1.NodeSucceeded {
			phase = wfv1.NodeFailed
			continue
		}
		m := map[string]string{}
		for _, p := range last.Outputs.Parameters {
			m[p.Name] = p.Value.String()
			values[p.Name] = append(values[p.Name], p.Value.String())
		}
		params = append(params, m)
	}
	r.node(wfv1.NodeStatus{Name: group, DisplayName: each, Type: wfv1.NodeTypeTaskGroup, Phase: phase, Children: kids})
	// The wrapper's scope: its inputs, the group's aggregated outputs.
	scope := map[string]any{}
	for _, p := range got.Arguments.Parameters {
		scope["inputs.parameters."+p.Name] = p.Value.String()
	}
	b, _ := json.Marshal(params)
	scope["tasks."+each+".outputs.parameters"] = string(b)
	for p, vs := range values {
		var objs []json.RawMessage // the values are JSON objects: aggregated decoded
		for _, v := range vs {
			objs = append(objs, json.RawMessage(v))
		}
		b, _ := json.Marshal(objs)
		scope["tasks."+each+".outputs.parameters."+p] = string(b)
	}
	result := map[string]wfv1.NodePhase{each: phase}
	dependedOn := map[string]bool{}
	for i := range wrap.DAG.Tasks[1:] {
		wt := &wrap.DAG.Tasks[1+i]
		deps, logic := common.GetTaskDependencies(wt, wrapContext{wrap})
		results := map[string]taskResults{}
		for d := range deps {
			dependedOn[d] = true
			ph := result[d]
			results[d] = taskResults{Succeeded: ph == wfv1.NodeSucceeded, Failed: ph == wfv1.NodeFailed,
				Errored: ph == wfv1.NodeError, Skipped: ph == wfv1.NodeSkipped, Omitted: ph == wfv1.NodeOmitted}
		}
		tname := name + "." + wt.Name
		if run, err := argoexpr.EvalBool(logic, results); err != nil {
			return fmt.Errorf("depends %q of %s: %w", logic, wt.Name, err)
		} else if !run {
			result[wt.Name] = wfv1.NodeOmitted
			r.node(wfv1.NodeStatus{Name: tname, DisplayName: wt.Name, Type: wfv1.NodeTypeSkipped, Phase: wfv1.NodeOmitted})
			continue
		}
		wb, _ := json.Marshal(wt.When)
		ws, err := argotemplate.ReplaceStrictAny(string(wb), scope, []string{"tasks", "steps"})
		if err != nil {
			if argotemplate.IsMissingVariableErr(err) {
				return fmt.Errorf("when of %s: %w (the controller would requeue it forever)", wt.Name, err)
			}
			result[wt.Name] = wfv1.NodeError
			r.node(wfv1.NodeStatus{Name: tname, DisplayName: wt.Name, Type: wfv1.NodeTypeSkipped, Phase: wfv1.NodeError, Message: err.Error()})
			continue
		}
		var when string
		_ = json.Unmarshal([]byte(ws), &when)
		switch tm := r.tmpls[wt.Template]; {
		case when == "false":
			result[wt.Name] = wfv1.NodeSkipped
			r.node(wfv1.NodeStatus{Name: tname, DisplayName: wt.Name, Type: wfv1.NodeTypeSkipped, Phase: wfv1.NodeSkipped})
		case when == "true" && tm != nil && tm.Suspend != nil && tm.Suspend.Duration == "0":
			// executeSuspend: the duration has passed, the node succeeds.
			result[wt.Name] = wfv1.NodeSucceeded
			r.node(wfv1.NodeStatus{Name: tname, DisplayName: wt.Name, Type: wfv1.NodeTypeSuspend, Phase: wfv1.NodeSucceeded})
		default:
			return fmt.Errorf("when of %s evaluated to %q: this test runs no template %s there", wt.Name, when, wt.Template)
		}
	}
	// assessDAGPhase: a leaf that did not complete (Skipped, Omitted)
	// inherits its dependencies' phase, a failure preferred.
	var branch func(name string) wfv1.NodePhase
	branch = func(name string) wfv1.NodePhase {
		ph := result[name]
		if ph != wfv1.NodeSkipped && ph != wfv1.NodeOmitted {
			return ph
		}
		inherited := wfv1.NodeSucceeded
		for _, d := range (wrapContext{wrap}).GetTaskDependencies(name) {
			if p := branch(d); p == wfv1.NodeFailed || p == wfv1.NodeError {
				inherited = p
			}
		}
		return inherited
	}
	wphase := wfv1.NodeSucceeded
	for _, wt := range wrap.DAG.Tasks {
		if ph := branch(wt.Name); !dependedOn[wt.Name] && (ph == wfv1.NodeFailed || ph == wfv1.NodeError) && !wt.ContinuesOn(ph) {
			wphase = ph
		}
	}
	r.node(wfv1.NodeStatus{Name: name, DisplayName: dt.Name, Type: wfv1.NodeTypeDAG, Phase: wphase, Children: []string{"n-" + group}})
	r.result[dt.Name] = wphase
	return nil
}

// wrapContext is the DAG context of a fan-out's wrapper template, for
// workflow/common to expand depends with.
type wrapContext struct{ t *wfv1.Template }

func (w wrapContext) GetTask(name string) *wfv1.DAGTask {
	for i := range w.t.DAG.Tasks {
		if w.t.DAG.Tasks[i].Name == name {
			return &w.t.DAG.Tasks[i]
		}
	}
	return nil
}
func (w wrapContext) GetTaskDependencies(name string) []string {
	deps, _ := common.GetTaskDependencies(w.GetTask(name), w)
	var out []string
	for d := range deps {
		out = append(out, d)
	}
	return out
}
func (wrapContext) GetTaskFinishedAtTime(string) time.Time { return time.Time{} }

// tries runs the attempts of one task (key names its script), from
// start, as the controller's retry node does: a pod per attempt until one
// succeeds, the limit is reached, the expression says no or (when
// cancelable) the workflow is shut down. It writes the nodes, named name
// and shown as display, and returns the last pod's and how long it took.
func (r *argoRun) tries(name, display string, s *backends.Step, key string, tmpl *wfv1.Template, start float64, cancelable bool) (wfv1.NodeStatus, float64, error) {
	rs := tmpl.RetryStrategy
	var pods []string
	var last wfv1.NodeStatus
	why := "" // the retry node's message, as the controller writes it
	took := 0.0
	for n := 1; ; n++ {
		took = float64(n)
		_, pod, _ := r.c.attempt(s, key, n)
		if cancelable && r.c.stopped(start+float64(n-1)) {
			// The controller stops the running pod: its main container
			// gets SIGTERM, and the node says why.
			pod = wfv1.NodeStatus{Phase: wfv1.NodeFailed, Message: "workflow shutdown with strategy:  Stop",
				Outputs: &wfv1.Outputs{ExitCode: ptrTo("143")}}
			why, took = "Stopped with strategy 'Stop'", r.c.cancelAt-start
		}
		pod.Name, pod.DisplayName, pod.Type = name, display, wfv1.NodeTypePod
		if rs != nil {
			pod.Name, pod.DisplayName = fmt.Sprintf("%s(%d)", name, n-1), fmt.Sprintf("%s(%d)", display, n-1)
		}
		r.node(pod)
		pods, last = append(pods, "n-"+pod.Name), pod
		if pod.Phase == wfv1.NodeSucceeded || rs == nil || why != "" {
			break
		}
		if limit := rs.Limit.IntValue(); n > limit {
			why = "No more retries left"
			break
		}
		code := "-1"
		if pod.Outputs != nil && pod.Outputs.ExitCode != nil {
			code = *pod.Outputs.ExitCode
		}
		again, err := argoexpr.EvalBool(rs.Expression, env.GetFuncMap(map[string]any{
			"retries": strconv.Itoa(n - 1), "lastRetry.exitCode": code, "lastRetry.status": string(pod.Phase),
			"lastRetry.duration": "1", "lastRetry.message": pod.Message,
		}))
		if err != nil {
			return last, took, fmt.Errorf("retry expression of %s: %w", display, err)
		}
		if !again {
			why = "retryStrategy.expression evaluated to false"
			break
		}
	}
	if rs != nil {
		r.node(wfv1.NodeStatus{Name: name, DisplayName: display, Type: wfv1.NodeTypeRetry, Phase: last.Phase, Children: pods,
			Message: why, Outputs: last.Outputs})
	}
	return last, took, nil
}

// check plays c both ways and compares. It reports whether c met the
// documented difference: Argo's run then equals runstate's with the
// documented one-count retry rule (oneCount) instead.
func (c *propCase) check(ctx context.Context) (bool, error) {
	art, err := pipeline.Compile(ctx, c.p, argo.New(nil, testOptions()), nil)
	if err != nil {
		return false, err
	}
	var plan *backends.Plan
	var wf *wfv1.Workflow
	if !art.As(&plan) || !art.As(&wf) {
		return false, errors.New("the artifact has no Plan or Workflow")
	}
	got, info, err := c.playArgo(plan, wf.DeepCopy())
	if err != nil {
		return false, err
	}
	want, wantInfo, canceled := c.reference(plan, false)
	for i, w := range want {
		if i < len(plan.Steps) && plan.Steps[i].ForEach != nil && runstate.Tolerated(&plan.Steps[i], len(w.Instances)) > 0 {
			switch {
			case w.Phase == backends.PhaseSucceeded && w.Message != "":
				c.tolerated++
			case w.Phase == backends.PhaseFailed:
				c.overBudget++
			}
		}
	}
	diffs := compare(got, info, want, wantInfo, canceled)
	if len(diffs) == 0 {
		return false, nil
	}
	want, wantInfo, canceled = c.reference(plan, true)
	if more := compare(got, info, want, wantInfo, canceled); len(more) > 0 {
		return false, fmt.Errorf("against runstate:\n%s\nagainst runstate with Argo's documented one retry count:\n%s",
			strings.Join(diffs, "\n"), strings.Join(more, "\n"))
	}
	return true, nil
}

// playArgo plays wf, compiled from plan, by Argo's logic and returns the
// status Watch reports for it and the RunInfo its exit handler got.
func (c *propCase) playArgo(plan *backends.Plan, wf *wfv1.Workflow) (*backends.RunStatus, *backends.RunInfo, error) {
	wf.Name = "prop-1"
	r := &argoRun{c: c, wf: wf, plan: plan, tmpls: map[string]*wfv1.Template{}, scope: map[string]any{},
		result: map[string]wfv1.NodePhase{}, end: map[string]float64{}, steps: map[string]*backends.Step{}}
	wf.Status.Nodes = wfv1.Nodes{}
	for i := range wf.Spec.Templates {
		r.tmpls[wf.Spec.Templates[i].Name] = &wf.Spec.Templates[i]
	}
	for i := range plan.Steps {
		r.steps[plan.Steps[i].Name] = &plan.Steps[i] // the names need no "s-" prefix here
	}
	if err := r.dag(wf.Name, r.tmpls["main"]); err != nil {
		return nil, nil, err
	}
	last := 0.0
	for _, e := range r.end {
		last = max(last, e)
	}
	if c.cancelAt > 0 && c.cancelAt <= last {
		wf.Spec.Shutdown = wfv1.ShutdownStrategyStop
	}
	wf.Status.Phase = wfv1.WorkflowSucceeded
	if r.wf.Status.Nodes["n-"+wf.Name].Phase != wfv1.NodeSucceeded || wf.Spec.Shutdown != "" {
		wf.Status.Phase = wfv1.WorkflowFailed
	}
	if plan.Exit != nil {
		r.steps[plan.Exit.Name] = plan.Exit
		r.scope["workflow.status"] = string(wf.Status.Phase)
		r.scope["workflow.failures"] = failures(wf)
		if err := r.dag(wf.Name+".onExit", r.tmpls[wf.Spec.OnExit]); err != nil {
			return nil, nil, err
		}
		if r.result[plan.Exit.Name] != wfv1.NodeSucceeded {
			wf.Status.Phase = wfv1.WorkflowFailed
		}
	}
	return argo.Status(wf), r.info, nil
}

// compare lists how Argo's run (got, and the RunInfo its exit handler got)
// differs from the reference's.
func compare(got *backends.RunStatus, info *backends.RunInfo, want []backends.StepStatus, wantInfo *backends.RunInfo, canceled bool) []string {
	var diffs []string
	if (info == nil) != (wantInfo == nil) || (info != nil && fmt.Sprint(*info) != fmt.Sprint(*wantInfo)) {
		diffs = append(diffs, fmt.Sprintf("exit handler's RunInfo: Argo %+v, runstate %+v", info, wantInfo))
	}
	if len(got.Steps) != len(want) {
		return append(diffs, fmt.Sprintf("Argo reports %d steps, runstate %d", len(got.Steps), len(want)))
	}
	for i, w := range want {
		g := got.Steps[i]
		if g.Name != w.Name || g.Phase != w.Phase || g.Message != w.Message || len(g.Attempts) != len(w.Attempts) {
			diffs = append(diffs, fmt.Sprintf("step %s: Argo %s %q, %d attempts; runstate %s %s %q, %d attempts",
				w.Name, g.Phase, g.Message, len(g.Attempts), w.Name, w.Phase, w.Message, len(w.Attempts)))
			continue
		}
		diffs = append(diffs, compareAttempts(w.Name, g.Attempts, w.Attempts)...)
		if len(g.Instances) != len(w.Instances) {
			diffs = append(diffs, fmt.Sprintf("step %s: Argo %d instances, runstate %d", w.Name, len(g.Instances), len(w.Instances)))
			continue
		}
		for k, wi := range w.Instances {
			gi := g.Instances[k]
			if gi.Name != wi.Name || gi.Phase != wi.Phase || gi.Message != wi.Message || len(gi.Attempts) != len(wi.Attempts) {
				diffs = append(diffs, fmt.Sprintf("instance %s: Argo %s %s %q, %d attempts; runstate %s %s %q, %d attempts",
					wi.Name, gi.Name, gi.Phase, gi.Message, len(gi.Attempts), wi.Name, wi.Phase, wi.Message, len(wi.Attempts)))
				continue
			}
			diffs = append(diffs, compareAttempts(wi.Name, gi.Attempts, wi.Attempts)...)
		}
	}
	end := runstate.End(want, canceled)
	if got.Phase != end.Phase || got.Message != end.Message {
		diffs = append(diffs, fmt.Sprintf("run: Argo %s %q, runstate %s %q", got.Phase, got.Message, end.Phase, end.Message))
	}
	return diffs
}

func compareAttempts(name string, got, want []backends.Attempt) []string {
	var diffs []string
	for k := range want {
		ga, wa := got[k], want[k]
		if ga.Phase != wa.Phase || ga.Reason != wa.Reason || ga.Message != wa.Message {
			diffs = append(diffs, fmt.Sprintf("%s attempt %d: Argo %s/%s %q, runstate %s/%s %q", name, k+1, ga.Phase, ga.Reason, ga.Message, wa.Phase, wa.Reason, wa.Message))
		}
	}
	return diffs
}

// failures is workflow.failures as the controller writes it: the failed
// and errored nodes, JSON, quoted.
func failures(wf *wfv1.Workflow) string {
	type failed struct {
		DisplayName  string      `json:"displayName"`
		Message      string      `json:"message"`
		TemplateName string      `json:"templateName"`
		Phase        string      `json:"phase"`
		PodName      string      `json:"podName"`
		FinishedAt   metav1.Time `json:"finishedAt"`
	}
	var out []failed
	for _, n := range wf.Status.Nodes {
		if n.Phase == wfv1.NodeFailed || n.Phase == wfv1.NodeError {
			out = append(out, failed{DisplayName: n.DisplayName, Message: n.Message, Phase: string(n.Phase)})
		}
	}
	b, _ := json.Marshal(out)
	return strconv.Quote(string(b))
}

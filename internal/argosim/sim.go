package argosim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	"github.com/argoproj/argo-workflows/v3/pkg/client/clientset/versioned/fake"
	"github.com/argoproj/argo-workflows/v3/util/expr/env"
	argotemplate "github.com/argoproj/argo-workflows/v3/util/template"
	"github.com/argoproj/argo-workflows/v3/workflow/common"
	"github.com/expr-lang/expr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/sluice-ml/sluice/backends"
	"github.com/sluice-ml/sluice/internal/simtime"
	"github.com/sluice-ml/sluice/task"
)

var workflowsGVR = wfv1.SchemeGroupVersion.WithResource("workflows")

// ErrOwnInfra, wrapped by a task error together with
// task.ErrInfrastructure, stands for the task's own infrastructure failure
// (a device or mount it depends on went away): the pod's main container
// exits with backends.ExitInfrastructure and Argo marks the node Failed,
// where a preemption is an Error node.
var ErrOwnInfra = errors.New("the task's own infrastructure failure")

// ErrStopped, wrapped by a task error, stands for a pod deleted or evicted
// while its task ran without Argo marking the node Error: SIGTERM stops
// the task, the task mode exits backends.ExitTerminated and Argo marks the
// node Failed with the container's termination message.
var ErrStopped = errors.New("pod deleted")

// ContainerFunc runs a container task's container in the simulator: it
// gets the container as Argo substituted it and returns the files the
// container wrote (path -> content) or an error (exit status 1).
type ContainerFunc func(ctx context.Context, c *corev1.Container) (files map[string]string, err error)

// Options configures a Sim. The zero value is ready to use.
type Options struct {
	// Containers runs container tasks; nil makes one a panic.
	Containers ContainerFunc
}

// Sim plays Argo's workflow controller for the workflows it is told to
// run; the package doc says what it models. Its methods are safe for
// concurrent use. The zero value is not usable; use New.
type Sim struct {
	containers ContainerFunc
	cs         *fake.Clientset
	clk        *simtime.Clock
	ns         string
	memo       sync.Map // memoize key -> output
	runs       sync.WaitGroup
	mu         sync.Mutex // guards the workflow being run
	ctx        context.Context
	abort      context.CancelFunc
}

// New returns a simulator of Argo's controller for namespace "default" of
// cs, timed by clk (nil: a clock of its own at the current time, which
// only the test moves). opts may be nil.
func New(cs *fake.Clientset, clk *simtime.Clock, opts *Options) *Sim {
	if clk == nil {
		clk = simtime.New(time.Now())
	}
	if opts == nil {
		opts = &Options{}
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Sim{containers: opts.Containers, cs: cs, clk: clk, ns: "default", ctx: ctx, abort: cancel}
}

// Clock returns the simulator's clock.
func (s *Sim) Clock() *simtime.Clock { return s.clk }

// Close stops every run and waits for them, tasks included.
func (s *Sim) Close() { s.abort(); s.runs.Wait() }

// Start runs the workflow named name in the background, as the controller
// does once it is created; plan is the Plan it was compiled from, whose
// Go tasks its pods run.
func (s *Sim) Start(name string, plan *backends.Plan) {
	s.runs.Add(1)
	go func() {
		defer s.runs.Done()
		r := &simRun{Sim: s, plan: plan}
		r.run(name)
	}()
}

type simRun struct {
	*Sim
	stepsCtx context.Context // canceled when the run is shut down
	plan     *backends.Plan
	wf       *wfv1.Workflow
	globals  common.Parameters
	tmpls    map[string]*wfv1.Template
}

func (r *simRun) run(name string) {
	wf, err := r.cs.ArgoprojV1alpha1().Workflows(r.ns).Get(r.ctx, name, metav1.GetOptions{})
	if err != nil {
		return
	}
	r.wf = wf
	r.tmpls = map[string]*wfv1.Template{}
	for i := range wf.Spec.Templates {
		r.tmpls[wf.Spec.Templates[i].Name] = &wf.Spec.Templates[i]
	}
	r.globals = common.Parameters{"workflow.name": wf.Name, "workflow.namespace": r.ns}
	r.runFacts(wf)
	for _, p := range wf.Spec.Arguments.Parameters {
		r.globals["workflow.parameters."+p.Name] = p.Value.String()
	}
	r.update(func() {
		r.wf.Status.Phase = wfv1.WorkflowRunning
		r.wf.Status.StartedAt = r.now()
		r.wf.Status.Nodes = wfv1.Nodes{}
	})
	// Cancel sets spec.shutdown; like the controller, notice it and stop
	// the running steps (the exit handler still runs, with r.ctx).
	var stopCtx context.CancelFunc
	r.stepsCtx, stopCtx = context.WithCancel(r.ctx)
	w, err := r.cs.Tracker().Watch(workflowsGVR, r.ns)
	if err != nil {
		panic(fmt.Sprintf("sim: watch workflows: %v", err))
	}
	watched := make(chan struct{})
	defer func() { stopCtx(); w.Stop(); <-watched }()
	go func() {
		defer close(watched)
		shutdown := func(cur *wfv1.Workflow) bool {
			if cur.Name != name || cur.Spec.Shutdown == "" {
				return false
			}
			r.mu.Lock()
			r.wf.Spec.Shutdown = cur.Spec.Shutdown
			r.mu.Unlock()
			stopCtx()
			return true
		}
		// Set before the watch started?
		if cur, err := r.cs.Tracker().Get(workflowsGVR, r.ns, name); err == nil && shutdown(cur.(*wfv1.Workflow)) {
			return
		}
		for {
			select {
			case <-r.stepsCtx.Done():
				return
			case ev, ok := <-w.ResultChan():
				if !ok {
					return
				}
				if cur, ok := ev.Object.(*wfv1.Workflow); ok && shutdown(cur) {
					return
				}
			}
		}
	}()
	phase, _ := r.exec(wf.Name, r.tmpls[wf.Spec.Entrypoint], nil, nil)
	status := map[wfv1.NodePhase]wfv1.WorkflowPhase{wfv1.NodeSucceeded: wfv1.WorkflowSucceeded, wfv1.NodeFailed: wfv1.WorkflowFailed, wfv1.NodeError: wfv1.WorkflowError}[phase]
	if wf.Spec.OnExit != "" {
		r.mu.Lock()
		type failure struct {
			DisplayName string `json:"displayName"`
			Message     string `json:"message"`
			Phase       string `json:"phase"`
		}
		var failures []failure
		for _, n := range r.wf.Status.Nodes {
			if n.Phase == wfv1.NodeFailed || n.Phase == wfv1.NodeError {
				failures = append(failures, failure{n.DisplayName, n.Message, string(n.Phase)})
			}
		}
		b, _ := json.Marshal(failures)
		r.globals["workflow.status"] = string(status)
		r.globals["workflow.failures"] = strconv.Quote(string(b))
		r.mu.Unlock()
		if p, _ := r.exec(wf.Name+".onExit", r.tmpls[wf.Spec.OnExit], nil, nil); p != wfv1.NodeSucceeded {
			status = wfv1.WorkflowFailed
		}
	}
	r.update(func() {
		r.wf.Status.Phase = status
		r.wf.Status.FinishedAt = r.now()
	})
}

// now is the time for status fields, on the simulator's clock.
func (r *simRun) now() metav1.Time { return metav1.NewTime(r.clk.Now()) }

// update applies f to the workflow and writes it to the fake API.
func (r *simRun) update(f func()) {
	r.mu.Lock()
	defer r.mu.Unlock()
	f()
	wf, err := r.cs.ArgoprojV1alpha1().Workflows(r.ns).Update(context.Background(), r.wf.DeepCopy(), metav1.UpdateOptions{})
	if err == nil {
		r.wf.ResourceVersion = wf.ResourceVersion
		r.wf.Spec.Shutdown = wf.Spec.Shutdown
	}
}

func (r *simRun) setNode(n wfv1.NodeStatus, parent string) {
	r.update(func() {
		if _, ok := r.wf.Status.Nodes[n.ID]; !ok && parent != "" {
			p := r.wf.Status.Nodes[parent]
			p.Children = append(p.Children, n.ID)
			r.wf.Status.Nodes[parent] = p
		}
		r.wf.Status.Nodes[n.ID] = n
	})
}

func nodeID(name string) string { return "n-" + strconv.FormatUint(uint64(hash(name)), 16) }

func hash(s string) uint32 {
	h := uint32(2166136261)
	for i := range len(s) {
		h = (h ^ uint32(s[i])) * 16777619
	}
	return h
}

// exec runs tmpl as node name with the given arguments and local
// variables (tasks.name) and returns its phase and outputs.
func (r *simRun) exec(name string, tmpl *wfv1.Template, args *wfv1.Arguments, local common.Parameters) (wfv1.NodePhase, *wfv1.Outputs) {
	if args == nil {
		args = &wfv1.Arguments{}
	}
	t, err := common.ProcessArgs(tmpl, args, r.globals, local.DeepCopy(), false, r.ns, nil)
	if err != nil {
		panic(fmt.Sprintf("sim: template %s: %v", tmpl.Name, err))
	}
	if t.DAG != nil {
		return r.dag(name, t)
	}
	if t.Suspend != nil {
		if t.Suspend.Duration != "0" {
			panic("sim: suspend template " + t.Name + " with a duration other than 0")
		}
		// executeSuspend: the duration has passed, the node succeeds.
		return wfv1.NodeSucceeded, nil
	}
	return r.pod(name, t, tmpl, args, local)
}

// dag runs a DAG template's tasks as their depends allow.
func (r *simRun) dag(name string, t *wfv1.Template) (wfv1.NodePhase, *wfv1.Outputs) {
	type result struct {
		task  string
		phase wfv1.NodePhase
		out   *wfv1.Outputs
		group string // a loop's outputs.parameters, a JSON list of objects
	}
	done := map[string]wfv1.NodePhase{}
	scope := map[string]any{}
	for k, v := range r.globals {
		scope[k] = v
	}
	for _, p := range t.Inputs.Parameters {
		scope["inputs.parameters."+p.Name] = p.Value.String()
	}
	started := map[string]bool{}
	results := make(chan result)
	running := 0
	for {
		for _, task := range t.DAG.Tasks {
			if started[task.Name] {
				continue
			}
			ready, omit := true, false
			for _, term := range strings.Split(task.Depends, " && ") {
				// "X.Succeeded" or a bare "X", which Argo reads as
				// X.Succeeded || X.Skipped || X.Daemoned, or results of
				// one task joined by " || ".
				var dep string
				met := false
				for _, alt := range strings.Split(term, " || ") {
					d, result, _ := strings.Cut(alt, ".")
					if dep != "" && d != dep {
						panic("sim: unsupported depends term " + term)
					}
					dep = d
					met = met || dependsMet(result, done[d])
				}
				if dep == "" {
					continue
				}
				if _, ok := done[dep]; !ok {
					ready = false
				} else if !met {
					omit = true
				}
			}
			if omit {
				started[task.Name], done[task.Name] = true, wfv1.NodeOmitted
				r.setNode(wfv1.NodeStatus{ID: nodeID(name + "." + task.Name), Name: name + "." + task.Name, DisplayName: task.Name, Type: wfv1.NodeTypeSkipped, Phase: wfv1.NodeOmitted, Message: "omitted: depends condition not met"}, nodeID(name))
				continue
			}
			if !ready || (r.stopped() && !strings.Contains(name, ".onExit")) {
				continue
			}
			started[task.Name] = true
			running++
			task := task
			snapshot := map[string]any{}
			for k, v := range scope {
				snapshot[k] = v
			}
			go func() {
				ph, out, group := r.task(name, task, snapshot)
				results <- result{task.Name, ph, out, group}
			}()
		}
		if running == 0 {
			break
		}
		res := <-results
		running--
		done[res.task] = res.phase
		if res.group != "" {
			// Argo's processAggregateNodeOutputs; a per-parameter key
			// below replaces it (util/expand drops a key that another
			// one extends).
			scope["tasks."+res.task+".outputs.parameters"] = res.group
		}
		if res.out != nil {
			for _, p := range res.out.Parameters {
				scope["tasks."+res.task+".outputs.parameters."+p.Name] = p.Value.String()
			}
		}
	}
	phase := wfv1.NodeSucceeded
	for _, task := range t.DAG.Tasks {
		if ph, ok := done[task.Name]; !ok {
			phase = wfv1.NodeFailed
		} else if ph = branchPhase(t.DAG, task.Name, done); !dependedOn(t.DAG, task.Name) && (ph == wfv1.NodeFailed || ph == wfv1.NodeError) && !task.ContinuesOn(ph) {
			phase = wfv1.NodeFailed
		}
	}
	var outs *wfv1.Outputs
	if phase == wfv1.NodeSucceeded && len(t.Outputs.Parameters) > 0 {
		outs = &wfv1.Outputs{}
		for _, p := range t.Outputs.Parameters {
			envm := env.GetFuncMap(scope)
			prog, err := expr.Compile(p.ValueFrom.Expression, expr.Env(envm))
			var x any
			if err == nil {
				x, err = expr.Run(prog, envm)
			}
			if err == nil && x == nil {
				err = fmt.Errorf("failed to evaluate expression %q", p.ValueFrom.Expression)
			}
			v := fmt.Sprint(x)
			if err != nil {
				if p.ValueFrom.Default == nil {
					// getTemplateOutputsFromScope fails executeDAG, and
					// executeDAGTask marks the task's node Error.
					msg := fmt.Sprintf("task '%s' errored: %v", name, err)
					r.update(func() {
						if n, ok := r.wf.Status.Nodes[nodeID(name)]; ok {
							n.Phase, n.Message = wfv1.NodeError, msg
							r.wf.Status.Nodes[n.ID] = n
						}
					})
					return wfv1.NodeError, nil
				}
				v = p.ValueFrom.Default.String()
			}
			outs.Parameters = append(outs.Parameters, wfv1.Parameter{Name: p.Name, Value: wfv1.AnyStringPtr(v)})
		}
	}
	return phase, outs
}

// dependsTerms splits a depends expression into its "X" and "X.Result"
// terms.
func dependsTerms(depends string) []string {
	return strings.FieldsFunc(depends, func(r rune) bool { return r == ' ' || r == '&' || r == '|' || r == '(' || r == ')' })
}

// dependedOn reports whether a task of dag depends on task name: Argo's
// assessDAGPhase decides a DAG's phase by the other tasks, its leaves.
func dependedOn(dag *wfv1.DAGTemplate, name string) bool {
	for _, t := range dag.Tasks {
		for _, alt := range dependsTerms(t.Depends) {
			if d, _, _ := strings.Cut(alt, "."); d == name {
				return true
			}
		}
	}
	return false
}

// branchPhase is the phase of task name in Argo's assessDAGPhase: its
// own, or for a Skipped or Omitted task (not Completed) the phase it
// inherits from its dependencies, a failure preferred.
func branchPhase(dag *wfv1.DAGTemplate, name string, done map[string]wfv1.NodePhase) wfv1.NodePhase {
	ph := done[name]
	if ph != wfv1.NodeOmitted && ph != wfv1.NodeSkipped { // not Completed: inherited
		return ph
	}
	inherited := wfv1.NodeSucceeded
	for _, t := range dag.Tasks {
		if t.Name != name {
			continue
		}
		for _, alt := range dependsTerms(t.Depends) {
			d, _, _ := strings.Cut(alt, ".")
			if p := branchPhase(dag, d, done); p == wfv1.NodeFailed || p == wfv1.NodeError {
				inherited = p
			}
		}
	}
	return inherited
}

func (r *simRun) stopped() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.wf.Spec.Shutdown != ""
}

// dependsMet reports whether a task that ended in phase ph has the
// depends result ("" for a bare name).
func dependsMet(result string, ph wfv1.NodePhase) bool {
	switch result {
	case "":
		return ph == wfv1.NodeSucceeded || ph == wfv1.NodeSkipped
	case "Succeeded":
		return ph == wfv1.NodeSucceeded
	case "Skipped":
		return ph == wfv1.NodeSkipped
	case "Failed":
		return ph == wfv1.NodeFailed
	case "Errored":
		return ph == wfv1.NodeError
	}
	panic("sim: unsupported depends result " + result)
}

// task runs one DAG task under the DAG node parent.
func (r *simRun) task(parent string, task wfv1.DAGTask, scope map[string]any) (wfv1.NodePhase, *wfv1.Outputs, string) {
	name := parent + "." + task.Name
	if strings.Contains(task.When, "{{=") {
		// resolveDependencyReferences resolves when first, strictly for
		// tasks.*: an expression that fails makes the task's node Error.
		wb, _ := json.Marshal(task.When)
		ws, err := argotemplate.ReplaceStrictAny(string(wb), scope, []string{"tasks", "steps"})
		if err != nil {
			if argotemplate.IsMissingVariableErr(err) {
				panic(fmt.Sprintf("sim: when of %s: %v (Argo would requeue it forever)", name, err))
			}
			r.setNode(wfv1.NodeStatus{ID: nodeID(name), Name: name, DisplayName: task.Name, Type: wfv1.NodeTypeSkipped, Phase: wfv1.NodeError, Message: err.Error()}, nodeID(parent))
			return wfv1.NodeError, nil, ""
		}
		_ = json.Unmarshal([]byte(ws), &task.When)
	}
	b, _ := json.Marshal(task)
	s, err := argotemplate.Replace(string(b), scope, true)
	if err != nil {
		panic(fmt.Sprintf("sim: task %s: %v", name, err))
	}
	var dt wfv1.DAGTask
	if err := json.Unmarshal([]byte(s), &dt); err != nil {
		panic(err)
	}
	if dt.When != "" && dt.When != "true" {
		if dt.When != "false" {
			panic(fmt.Sprintf("sim: when of %s did not evaluate: %q", name, dt.When))
		}
		r.setNode(wfv1.NodeStatus{ID: nodeID(name), Name: name, DisplayName: task.Name, Type: wfv1.NodeTypeSkipped, Phase: wfv1.NodeSkipped, Message: "when '" + dt.When + "' evaluated false"}, nodeID(parent))
		return wfv1.NodeSkipped, nil, ""
	}
	tmpl := r.tmpls[dt.Template]
	if dt.WithParam == "" {
		ph, out := r.node(name, task.Name, parent, tmpl, &dt.Arguments)
		return ph, out, ""
	}
	var items []wfv1.Item
	if err := json.Unmarshal([]byte(dt.WithParam), &items); err != nil {
		panic(fmt.Sprintf("sim: withParam of %s: %v: %s", name, err, dt.WithParam))
	}
	if len(items) == 0 {
		r.setNode(wfv1.NodeStatus{ID: nodeID(name), Name: name, DisplayName: task.Name, Type: wfv1.NodeTypeSkipped, Phase: wfv1.NodeSkipped, Message: "Skipped, empty params"}, nodeID(parent))
		return wfv1.NodeSkipped, nil, ""
	}
	r.setNode(wfv1.NodeStatus{ID: nodeID(name), Name: name, DisplayName: task.Name, Type: wfv1.NodeTypeTaskGroup, Phase: wfv1.NodeRunning}, nodeID(parent))
	limit := len(items)
	if pt := r.parentTemplate(parent); pt != nil && pt.Parallelism != nil {
		limit = int(*pt.Parallelism)
	}
	sem := make(chan struct{}, limit)
	phases := make([]wfv1.NodePhase, len(items))
	outs := make([]*wfv1.Outputs, len(items))
	var wg sync.WaitGroup
	for i, it := range items {
		var item string
		if it.GetType() == wfv1.String {
			item = it.GetStrVal()
		} else {
			item = string(it.Value)
		}
		sc := map[string]any{"item": item}
		for k, v := range scope {
			sc[k] = v
		}
		s, err := argotemplate.Replace(string(b), sc, false)
		if err != nil {
			panic(fmt.Sprintf("sim: item %d of %s: %v", i, name, err))
		}
		var idt wfv1.DAGTask
		_ = json.Unmarshal([]byte(s), &idt)
		child := fmt.Sprintf("%s(%d:%s)", task.Name, i, item)
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			phases[i], outs[i] = r.node(parent+"."+child, child, name, tmpl, &idt.Arguments)
		}()
	}
	wg.Wait()
	phase := wfv1.NodeSucceeded
	vals := map[string][]string{} // output parameter -> values in order
	var params []string
	group := []map[string]string{}
	for i, ph := range phases {
		if ph != wfv1.NodeSucceeded {
			phase = wfv1.NodeFailed
			continue
		}
		if len(outs[i].Parameters) > 0 {
			m := map[string]string{}
			for _, p := range outs[i].Parameters {
				m[p.Name] = p.Value.String()
			}
			group = append(group, m)
		}
		for _, p := range outs[i].Parameters {
			if _, ok := vals[p.Name]; !ok {
				params = append(params, p.Name)
			}
			vals[p.Name] = append(vals[p.Name], p.Value.String())
		}
	}
	r.update(func() {
		n := r.wf.Status.Nodes[nodeID(name)]
		n.Phase = phase
		r.wf.Status.Nodes[n.ID] = n
	})
	agg := &wfv1.Outputs{}
	for _, p := range params {
		agg.Parameters = append(agg.Parameters, wfv1.Parameter{Name: p, Value: wfv1.AnyStringPtr(aggregate(vals[p]))})
	}
	b, _ = json.Marshal(group)
	return phase, agg, string(b)
}

func (r *simRun) parentTemplate(nodeName string) *wfv1.Template {
	r.mu.Lock()
	defer r.mu.Unlock()
	if n, ok := r.wf.Status.Nodes[nodeID(nodeName)]; ok {
		return r.tmpls[n.TemplateName]
	}
	return nil
}

// aggregate is Argo's aggregation of a loop's output parameter: a JSON
// list of the values decoded when every value is a JSON object or list,
// else a JSON list of the values as strings.
func aggregate(vals []string) string {
	var decoded []any
	for _, v := range vals {
		var x any
		if json.Unmarshal([]byte(v), &x) != nil {
			decoded = nil
			break
		}
		switch x.(type) {
		case map[string]any, []any:
			decoded = append(decoded, x)
			continue
		}
		decoded = nil
		break
	}
	var b []byte
	if decoded != nil || len(vals) == 0 {
		b, _ = json.Marshal(decoded)
	} else {
		b, _ = json.Marshal(vals)
	}
	return string(b)
}

// node runs a template call as node name (a DAG or a pod, with retries).
func (r *simRun) node(name, display, parent string, tmpl *wfv1.Template, args *wfv1.Arguments) (wfv1.NodePhase, *wfv1.Outputs) {
	typ := wfv1.NodeTypePod
	switch {
	case tmpl.DAG != nil:
		typ = wfv1.NodeTypeDAG
	case tmpl.RetryStrategy != nil:
		typ = wfv1.NodeTypeRetry
	case tmpl.Suspend != nil:
		typ = wfv1.NodeTypeSuspend
	}
	n := wfv1.NodeStatus{ID: nodeID(name), Name: name, DisplayName: display, Type: typ, TemplateName: tmpl.Name, Phase: wfv1.NodeRunning, StartedAt: r.now()}
	r.setNode(n, nodeID(parent))
	// Argo gives a template the name of the DAG task calling it (for a
	// loop, the expanded name "task(i:item)").
	ph, out := r.exec(name, tmpl, args, common.Parameters{"tasks.name": display})
	r.mu.Lock()
	n = r.wf.Status.Nodes[nodeID(name)]
	r.mu.Unlock()
	if n.Phase == wfv1.NodeRunning {
		n.Phase = ph
	}
	n.Outputs, n.FinishedAt = out, r.now()
	if n.Type == wfv1.NodeTypeRetry && n.Phase != wfv1.NodeSucceeded {
		n.Message = "No more retries left"
		if r.stopped() && !strings.Contains(name, ".onExit") {
			n.Message = "Stopped with strategy '" + string(wfv1.ShutdownStrategyStop) + "'"
		}
	}
	r.setNode(n, "")
	return n.Phase, out
}

// pod runs a container template: memoize, then attempts under the retry
// strategy.
func (r *simRun) pod(name string, t, orig *wfv1.Template, args *wfv1.Arguments, local common.Parameters) (wfv1.NodePhase, *wfv1.Outputs) {
	if t.Memoize != nil {
		key := t.Memoize.Key
		if strings.Contains(key, "{{") {
			panic("sim: memoize key did not evaluate: " + key)
		}
		if out, ok := r.memo.Load(key); ok {
			r.update(func() {
				n := r.wf.Status.Nodes[nodeID(name)]
				n.MemoizationStatus = &wfv1.MemoizationStatus{Hit: true, Key: key, CacheName: t.Memoize.Cache.ConfigMap.Name}
				n.Phase = wfv1.NodeSucceeded
				r.wf.Status.Nodes[n.ID] = n
			})
			return wfv1.NodeSucceeded, out.(*wfv1.Outputs)
		}
		defer func() {
			r.update(func() {
				n := r.wf.Status.Nodes[nodeID(name)]
				n.MemoizationStatus = &wfv1.MemoizationStatus{Key: key, CacheName: t.Memoize.Cache.ConfigMap.Name}
				r.wf.Status.Nodes[n.ID] = n
			})
		}()
	}
	if t.RetryStrategy == nil {
		ph, out, msg, _ := r.attempt(t, name)
		r.update(func() {
			n := r.wf.Status.Nodes[nodeID(name)]
			n.Message = msg
			r.wf.Status.Nodes[n.ID] = n
		})
		if ph == wfv1.NodeSucceeded && t.Memoize != nil {
			r.memo.Store(t.Memoize.Key, out)
		}
		return ph, out
	}
	rs := t.RetryStrategy
	limit := math.MaxInt
	if rs.Limit != nil {
		limit = rs.Limit.IntValue()
	}
	for i := 0; ; i++ {
		// Argo substitutes the template again for every attempt, with retries.
		li := local.DeepCopy()
		li["retries"] = strconv.Itoa(i)
		ti, err := common.ProcessArgs(orig, args, r.globals, li, false, r.ns, nil)
		if err != nil {
			panic(err)
		}
		if p := ti.PodSpecPatch; p != "" && !json.Valid([]byte(p)) {
			panic("sim: podSpecPatch is not JSON: " + p)
		}
		child := fmt.Sprintf("%s(%d)", name, i)
		c := wfv1.NodeStatus{ID: nodeID(child), Name: child, DisplayName: fmt.Sprintf("%s(%d)", r.display(name), i), Type: wfv1.NodeTypePod, TemplateName: t.Name, Phase: wfv1.NodeRunning, StartedAt: r.now()}
		r.setNode(c, nodeID(name))
		ph, out, msg, code := r.attempt(ti, name)
		c.Phase, c.Message, c.FinishedAt = ph, msg, r.now()
		c.Outputs = out
		if out == nil && code != "" {
			c.Outputs = &wfv1.Outputs{ExitCode: &code}
		}
		r.setNode(c, "")
		if ph == wfv1.NodeSucceeded {
			if t.Memoize != nil {
				r.memo.Store(t.Memoize.Key, out)
			}
			return ph, out
		}
		if i+1 > limit || r.stopped() {
			return ph, nil
		}
		if rs.Expression != "" {
			scope := env.GetFuncMap(map[string]any{"retries": strconv.Itoa(i), "lastRetry.exitCode": code,
				"lastRetry.status": string(ph), "lastRetry.message": msg, "lastRetry.duration": "0"})
			prog, err := expr.Compile(rs.Expression, expr.Env(scope))
			if err != nil {
				panic(err)
			}
			ok, err := expr.Run(prog, scope)
			if err != nil {
				panic(err)
			}
			if ok != true {
				return ph, nil
			}
		}
		if b := rs.Backoff; b != nil {
			d, _ := time.ParseDuration(b.Duration)
			f := 1
			if b.Factor != nil {
				f = b.Factor.IntValue()
			}
			d *= time.Duration(math.Pow(float64(f), float64(i)))
			if cp, err := time.ParseDuration(b.Cap); err == nil && d > cp {
				d = cp
			}
			if r.clk.Wait(r.ctx, d) != nil {
				return ph, nil // the simulator is closing
			}
		}
	}
}

func (r *simRun) display(name string) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.wf.Status.Nodes[nodeID(name)].DisplayName
}

// unresolved reports whether s holds a tag the compiled templates write
// (user data may hold other "{{").
func unresolved(s string) bool {
	for _, tag := range []string{"{{inputs.", "{{tasks.", "{{workflow.", "{{item", "{{="} {
		if strings.Contains(s, tag) {
			return true
		}
	}
	return false
}

// containerAttempt runs a container task's container once through
// r.containers and reads its output parameters from the files it wrote,
// as Argo's wait container does.
func (r *simRun) containerAttempt(t *wfv1.Template) (phase wfv1.NodePhase, out *wfv1.Outputs, msg, exitCode string) {
	if r.containers == nil {
		panic("sim: a container task, but Options.Containers is nil")
	}
	c := t.Container.DeepCopy()
	if b, _ := json.Marshal(c); unresolved(string(b)) {
		panic("sim: container with unresolved tags: " + string(b))
	}
	ctx, end := r.clk.Start(r.ctx, time.Time{})
	files, err := r.containers(ctx, c)
	end()
	if err != nil {
		return wfv1.NodeFailed, nil, "Error (exit code 1): " + err.Error(), "1"
	}
	out = &wfv1.Outputs{}
	for _, p := range t.Outputs.Parameters {
		v, ok := files[p.ValueFrom.Path]
		if !ok {
			return wfv1.NodeError, nil, "open " + p.ValueFrom.Path + ": no such file or directory", "0"
		}
		// Argo's executor takes one trailing line break off a file's text.
		out.Parameters = append(out.Parameters, wfv1.Parameter{Name: p.Name, Value: wfv1.AnyStringPtr(strings.TrimSuffix(v, "\n"))})
	}
	return wfv1.NodeSucceeded, out, "", "0"
}

// attempt runs the container once, in process: "prog task -step S
// -input J -output-file F" becomes the plan step's Invoker on J.
func (r *simRun) attempt(t *wfv1.Template, node string) (phase wfv1.NodePhase, out *wfv1.Outputs, msg, exitCode string) {
	args := t.Container.Args
	if len(args) == 0 || args[0] != backends.InvokeCommand {
		return r.containerAttempt(t)
	}
	var step, input string
	for i := 0; i+1 < len(args); i++ {
		switch args[i] {
		case "-step":
			step = args[i+1]
		case "-input":
			input = args[i+1]
		}
	}
	if args[0] != backends.InvokeCommand || unresolved(input) {
		panic(fmt.Sprintf("sim: not an invocation with a resolved input: %q", args))
	}
	s := r.plan.Step(step)
	if s == nil || s.Invoke == nil {
		return wfv1.NodeFailed, nil, "unknown step " + step, "2"
	}
	ctx := r.stepsCtx
	if strings.Contains(node, ".onExit") {
		ctx = r.ctx
	}
	// The task runs until the pod's deadline on the simulator's clock.
	var deadline time.Time
	if d := t.ActiveDeadlineSeconds; d != nil {
		deadline = r.clk.Now().Add(time.Duration(d.IntValue()) * time.Second)
	}
	tctx, end := r.clk.Start(ctx, deadline)
	res, err := s.Invoke.Invoke(tctx, []byte(input))
	at, ended := r.clk.Now(), tctx.Err() != nil // before end, which may let the clock skip ahead
	end()
	switch {
	case ended && r.stopped():
		// The controller terminated the pod.
		return wfv1.NodeFailed, nil, "workflow shutdown with strategy:  " + string(wfv1.ShutdownStrategyStop), "143"
	case !deadline.IsZero() && !at.Before(deadline):
		// The kubelet stops the pod with SIGTERM, on which the task mode
		// exits 143; Argo's message is the pod's.
		return wfv1.NodeFailed, nil, "Pod was active on the node longer than the specified deadline", strconv.Itoa(backends.ExitTerminated)
	case errors.Is(err, ErrStopped):
		// The task mode's exit status when SIGTERM stopped the task, its
		// message in the termination message, which Argo appends.
		code := strconv.Itoa(backends.ExitTerminated)
		return wfv1.NodeFailed, nil, "main: Error (exit code " + code + "): stopped (terminated signal received): " + err.Error(), code
	case errors.Is(err, ErrOwnInfra):
		// The task mode's exit status for a task's own infrastructure
		// failure; Argo marks the node Failed, as for any non-zero exit.
		code := strconv.Itoa(backends.ExitInfrastructure)
		return wfv1.NodeFailed, nil, "main: Error (exit code " + code + "): " + err.Error(), code
	case errors.Is(err, task.ErrInfrastructure):
		return wfv1.NodeError, nil, "pod deleted: " + err.Error(), ""
	case err != nil:
		// The task mode writes the error to the termination message.
		return wfv1.NodeFailed, nil, "main: Error (exit code 1): " + err.Error(), "1"
	}
	// The task mode wrote res to its output file; Argo reads the output
	// parameters from their files.
	out = &wfv1.Outputs{}
	for _, p := range t.Outputs.Parameters {
		if p.ValueFrom == nil || p.ValueFrom.Path != backends.DefaultOutputFile {
			panic(fmt.Sprintf("sim: output %q of a Go task is not read from %s", p.Name, backends.DefaultOutputFile))
		}
		out.Parameters = append(out.Parameters, wfv1.Parameter{Name: p.Name, Value: wfv1.AnyStringPtr(string(res))})
	}
	return wfv1.NodeSucceeded, out, "", "0"
}

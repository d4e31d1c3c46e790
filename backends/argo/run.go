package argo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/sluice-ml/sluice/artifact"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/sluice-ml/sluice/backends"
	"github.com/sluice-ml/sluice/backends/kubepod"
	"github.com/sluice-ml/sluice/backends/runstate"
	"github.com/sluice-ml/sluice/internal/kubeaccess"
)

// Submit creates the Workflow of a (compiled by this backend) and returns
// its name, which Argo generates from the pipeline name, as the run id.
// With opts.RunID set, the Workflow gets that name instead; with
// opts.Scheduled, the annotation AnnotationScheduledTime, which a
// CronWorkflow sets on the Workflows it starts. With
// Options.KubeClient, it first checks that Argo's executor, and the pod
// of every task with a security override, pass the Pod Security level of
// the namespace (see "# Pod Security" in the package doc) and fails,
// creating nothing, when they do not. The ServiceAccount, Roles and
// RoleBindings of the steps with task.Access are made to match the
// compiled ones before the Workflow is created (see "# Steps' API access"
// in the package doc), which needs a Kubernetes client
// (Options.KubeClient).
func (b *Backend) Submit(ctx context.Context, a backends.Artifact, opts *backends.SubmitOptions) (string, error) {
	var wf *wfv1.Workflow
	if !a.As(&wf) {
		return "", fmt.Errorf("argo: only a Workflow can be submitted, not %T (compile with Kind Workflow): %w", a, errors.ErrUnsupported)
	}
	client, err := b.connect()
	if err != nil {
		return "", err
	}
	if err := b.checkPodSecurity(ctx, &wf.Spec, planOf(a)); err != nil {
		return "", err
	}
	if err := b.ensureAccess(ctx, a); err != nil {
		return "", err
	}
	if err := b.ensureShards(ctx, client, a); err != nil {
		return "", err
	}
	wf = wf.DeepCopy()
	if tp := backends.TraceParent(ctx); tp != "" {
		// The run's trace continues in every task's pod.
		for i := range wf.Spec.Templates {
			if c := wf.Spec.Templates[i].Container; c != nil {
				c.Env = append(c.Env, corev1.EnvVar{Name: backends.TraceParentEnv, Value: tp})
			}
		}
	}
	if opts != nil && opts.RunID != "" {
		wf.Name, wf.GenerateName = opts.RunID, ""
	}
	if opts != nil && !opts.Scheduled.IsZero() {
		scheduled(wf, backends.MetaTime(opts.Scheduled))
	}
	created, err := client.ArgoprojV1alpha1().Workflows(b.namespace()).Create(ctx, wf, metav1.CreateOptions{})
	if err != nil {
		return "", err
	}
	return created.Name, nil
}

// Cancel stops the run: Argo stops its running steps, starts no new ones
// and still runs the exit handler. Transient API errors are retried (the
// patch is idempotent); others are returned.
func (b *Backend) Cancel(ctx context.Context, runID string) error {
	client, err := b.connect()
	if err != nil {
		return err
	}
	var wf *wfv1.Workflow
	if err := retryAPI(ctx, func() error {
		var err error
		wf, err = client.ArgoprojV1alpha1().Workflows(b.namespace()).Patch(ctx, runID, types.MergePatchType, stopPatch, metav1.PatchOptions{})
		return err
	}); err != nil {
		return err
	}
	if wf == nil || shardNames(wf) == nil {
		return nil
	}
	// The child Workflows of a sharded run's shards stop too (Argo stops
	// the parent's resource steps, not what they made).
	_, err = b.stopShards(ctx, client, runID)
	return err
}

// stopPatch is what Cancel patches a Workflow with.
var stopPatch = []byte(`{"spec":{"shutdown":"` + string(wfv1.ShutdownStrategyStop) + `"}}`)

// Watch follows the run through a watch on its Workflow; when the watch
// ends early (a dropped connection, an expired resource version) it reads
// the Workflow again and watches anew. Transient API errors are retried
// with backoff; others are returned. A step that Cancel ended while its
// pod was unschedulable keeps the scheduler's words it waited with, which
// Argo drops (see keepWaiting).
func (b *Backend) Watch(ctx context.Context, runID string, opts *backends.WatchOptions) (*backends.RunStatus, error) {
	client, err := b.connect()
	if err != nil {
		return nil, err
	}
	wfs := client.ArgoprojV1alpha1().Workflows(b.namespace())
	var last *backends.RunStatus
	cleaned := false
	w := waits{}
	// A sharded run's status is its parent's and its shards' children's
	// (see ShardedStatus).
	var parent *wfv1.Workflow
	kids := map[string]*wfv1.Workflow{}
	specs := map[string]*wfv1.WorkflowSpec{}
	stopped := map[string]bool{} // children Watch asked to stop
	status := func(wf *wfv1.Workflow) *backends.RunStatus {
		names := shardNames(wf)
		if names == nil {
			return Status(wf)
		}
		for _, n := range names {
			if specs[n] == nil {
				if wft, err := client.ArgoprojV1alpha1().WorkflowTemplates(b.namespace()).Get(ctx, n, metav1.GetOptions{}); err == nil {
					specs[n] = &wft.Spec
				}
			}
		}
		list := make([]*wfv1.Workflow, 0, len(kids))
		running := false
		for _, k := range kids {
			list = append(list, k)
			// One made as Cancel stopped the parent, which Watch stops
			// once (until its own events say so, it looks running).
			running = running || wf.Spec.Shutdown != "" && k.Spec.Shutdown == "" && !k.Status.Phase.Completed() && !stopped[k.Name]
		}
		if running {
			names, _ := b.stopShards(ctx, client, wf.Name)
			for _, n := range names {
				stopped[n] = true
			}
		}
		return ShardedStatus(wf, list, specs)
	}
	// ended: a sharded run has ended once its children have too (a
	// child stopped by Cancel may end after the parent).
	ended := func(wf *wfv1.Workflow) bool {
		if !wf.Status.Phase.Completed() {
			return false
		}
		for _, k := range kids {
			if !k.Status.Phase.Completed() {
				return false
			}
		}
		return true
	}
	publish := func(wf *wfv1.Workflow) bool {
		parent = wf
		st := status(wf)
		keepWaiting(w, st)
		done := ended(wf)
		if done && !cleaned {
			// Before the last status goes out, so that a caller who
			// sees the run end sees its outputs whole and its
			// temporary values gone.
			cleaned = true
			finish(ctx, wf, st)
		}
		if last == nil || !reflect.DeepEqual(last, st) {
			last = st
			if opts != nil && opts.Progress != nil {
				opts.Progress(st.Clone())
			}
		}
		return done
	}
	failures := 0
	backoff := func(err error) error {
		if !kubepod.Transient(err) || failures >= 8 {
			return err
		}
		failures++
		d := time.Duration(1<<min(failures, 6)) * 50 * time.Millisecond
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(d):
			return nil
		}
	}
	for {
		if err := ctx.Err(); err != nil {
			return last, err
		}
		wf, err := wfs.Get(ctx, runID, metav1.GetOptions{})
		if err != nil {
			if err := backoff(err); err != nil {
				return last, err
			}
			continue
		}
		var kw watch.Interface
		if shardNames(wf) != nil {
			list, err := wfs.List(ctx, metav1.ListOptions{LabelSelector: LabelRun + "=" + runID})
			if err != nil {
				if err := backoff(err); err != nil {
					return last, err
				}
				continue
			}
			clear(kids)
			for i := range list.Items {
				kids[list.Items[i].Name] = &list.Items[i]
			}
			if kw, err = wfs.Watch(ctx, metav1.ListOptions{LabelSelector: LabelRun + "=" + runID, ResourceVersion: list.ResourceVersion}); err != nil {
				if err := backoff(err); err != nil {
					return last, err
				}
				continue
			}
		}
		if publish(wf) {
			if kw != nil {
				kw.Stop()
			}
			return last, nil
		}
		w, err := wfs.Watch(ctx, metav1.ListOptions{
			FieldSelector:   fields.OneTermEqualSelector("metadata.name", runID).String(),
			ResourceVersion: wf.ResourceVersion,
		})
		if err != nil {
			if kw != nil {
				kw.Stop()
			}
			if err := backoff(err); err != nil {
				return last, err
			}
			continue
		}
		if kw != nil {
			w = merged(w, kw)
		}
		// Catch up on changes made between the Get and the Watch: an API
		// server replays them from ResourceVersion, but a cache or a fake
		// may not, and a missed last update would leave Watch waiting.
		if wf, err := wfs.Get(ctx, runID, metav1.GetOptions{}); err == nil && publish(wf) {
			w.Stop()
			return last, nil
		}
		failures = 0
		done, err := b.follow(ctx, w, runID, publish, func(k *wfv1.Workflow, gone bool) bool {
			if gone {
				delete(kids, k.Name)
			} else {
				kids[k.Name] = k
			}
			return publish(parent)
		})
		w.Stop()
		if done || err != nil {
			return last, err
		}
	}
}

// resyncPeriod bounds how long Watch trusts a watch without reading the
// Workflow again.
const resyncPeriod = time.Minute

// follow consumes w until the run is over (true), w ends (false) or ctx
// is done.
func (b *Backend) follow(ctx context.Context, w watch.Interface, runID string, publish func(*wfv1.Workflow) bool, kid func(*wfv1.Workflow, bool) bool) (bool, error) {
	// Read the Workflow afresh now and then, as informers resync, in case
	// an event was lost.
	resync := time.NewTimer(resyncPeriod)
	defer resync.Stop()
	for {
		select {
		case <-ctx.Done():
			return false, ctx.Err()
		case <-resync.C:
			return false, nil // re-read and re-watch
		case ev, ok := <-w.ResultChan():
			if !ok {
				return false, nil
			}
			switch ev.Type {
			case watch.Added, watch.Modified:
				wf, ok := ev.Object.(*wfv1.Workflow)
				switch {
				case !ok:
				case wf.Name == runID:
					if publish(wf) {
						return true, nil
					}
				case wf.Labels[LabelRun] == runID:
					if kid(wf, false) {
						return true, nil
					}
				}
			case watch.Deleted:
				wf, ok := ev.Object.(*wfv1.Workflow)
				switch {
				case !ok:
				case wf.Name == runID:
					return false, fmt.Errorf("argo: workflow %q was deleted", runID)
				case wf.Labels[LabelRun] == runID:
					if kid(wf, true) {
						return true, nil
					}
				}
			case watch.Error:
				return false, nil // re-list and re-watch
			}
		}
	}
}

// Status maps a Workflow compiled by this package onto the run-status
// model shared by every backend: steps in plan order (the main DAG's task
// order), the exit handler last; fan-out instances as "step[i]"; one
// attempt per retry child.
func Status(wf *wfv1.Workflow) *backends.RunStatus {
	st := runStatus(wf)
	spec := &wf.Spec
	m := newMapper()
	m.load(wf, spec)
	tmpls := m.tmpls
	if t := tmpls[mainTemplate]; t != nil && t.DAG != nil {
		for _, dt := range t.DAG.Tasks {
			st.Steps = append(st.Steps, m.step(wf.Name+"."+dt.Name, dt))
		}
	}
	if t := tmpls[spec.OnExit]; spec.OnExit != "" && t != nil && t.DAG != nil {
		info := runstate.Info(st.Steps, wf.Spec.Shutdown != "")
		m.info = &info // what the exit handler's condition reads
		for _, dt := range t.DAG.Tasks {
			st.Steps = append(st.Steps, m.step(wf.Name+".onExit."+dt.Name, dt))
		}
	}
	// The run's message in the words of every backend, unless Argo ended
	// it for a reason of its own (a workflow-level error).
	if wf.Status.Phase.Completed() {
		if end := runstate.End(st.Steps, wf.Spec.Shutdown != ""); end.Phase == st.Phase {
			st.Message = end.Message
		}
	}
	return st
}

// runStatus is the part of a run's status its Workflow wf gives: all but
// the steps.
func runStatus(wf *wfv1.Workflow) *backends.RunStatus {
	return &backends.RunStatus{
		RunID:    wf.Name,
		Pipeline: wf.Labels[LabelPipeline],
		Phase:    runPhase(wf),
		Message:  wf.Status.Message,
		Started:  wf.Status.StartedAt.Time,
		Finished: wf.Status.FinishedAt.Time,
	}
}

func newMapper() *mapper {
	return &mapper{phases: map[string]backends.Phase{}, names: map[string]string{}, outputs: map[string]json.RawMessage{}}
}

// load makes m map the nodes of wf, run from spec (its own, or a shard's
// template), keeping what it mapped of other Workflows before.
func (m *mapper) load(wf *wfv1.Workflow, spec *wfv1.WorkflowSpec) {
	m.wf, m.nodes, m.params, m.conds, m.textParams = wf, wf.Status.Nodes, nil, nil, ""
	m.byName = make(map[string]*wfv1.NodeStatus, len(wf.Status.Nodes))
	for id := range wf.Status.Nodes {
		n := wf.Status.Nodes[id]
		m.byName[n.Name] = &n
	}
	m.tmpls = make(map[string]*wfv1.Template, len(spec.Templates))
	for i := range spec.Templates {
		m.tmpls[spec.Templates[i].Name] = &spec.Templates[i]
	}
	if t := m.tmpls[mainTemplate]; t != nil {
		_ = json.Unmarshal([]byte(t.Metadata.Annotations[AnnotationConditions]), &m.conds)
		m.textParams = t.Metadata.Annotations[AnnotationTextParams]
	}
}

func runPhase(wf *wfv1.Workflow) backends.Phase {
	switch wf.Status.Phase {
	case wfv1.WorkflowSucceeded:
		return backends.PhaseSucceeded
	case wfv1.WorkflowFailed, wfv1.WorkflowError:
		if wf.Spec.Shutdown != "" {
			return backends.PhaseCanceled
		}
		return backends.PhaseFailed
	case wfv1.WorkflowRunning:
		return backends.PhaseRunning
	}
	return backends.PhasePending
}

type mapper struct {
	phases map[string]backends.Phase  // DAG task name -> phase of the steps mapped so far
	names  map[string]string          // DAG task name -> step name, of the steps mapped so far
	conds  map[string]json.RawMessage // DAG task name -> its condition (AnnotationConditions)
	// outputs are the outputs of the steps mapped so far that succeeded,
	// by step name; params and info are what else a condition reads (see
	// conditionFalse).
	outputs map[string]json.RawMessage
	params  map[string]json.RawMessage
	info    *backends.RunInfo
	// textParams lists the parameters stored as text
	// (AnnotationTextParams).
	textParams string
	wf         *wfv1.Workflow
	nodes      wfv1.Nodes
	byName     map[string]*wfv1.NodeStatus
	tmpls      map[string]*wfv1.Template
}

func (m *mapper) children(n *wfv1.NodeStatus) []*wfv1.NodeStatus {
	var out []*wfv1.NodeStatus
	for _, id := range n.Children {
		if c, ok := m.nodes[id]; ok {
			out = append(out, &c)
		}
	}
	return out
}

func (m *mapper) step(nodeName string, dt wfv1.DAGTask) backends.StepStatus {
	s := m.stepStatus(nodeName, dt)
	if n := m.byName[nodeName]; s.Phase.Done() && (n == nil || n.Type == wfv1.NodeTypeSkipped) {
		m.notRun(&s, n, dt)
	}
	m.phases[dt.Name], m.names[dt.Name] = s.Phase, s.Name
	if s.Phase == backends.PhaseSucceeded || s.Phase == backends.PhaseCached {
		m.outputs[s.Name] = s.Output
	}
	return s
}

// notRun words a step that ended without running (node n, nil when Argo
// made none) as package runstate does: Argo omits a task whose depends
// fail, skips one whose when is false and creates none once the workflow
// is shut down.
func (m *mapper) notRun(s *backends.StepStatus, n *wfv1.NodeStatus, dt wfv1.DAGTask) {
	var deps []string // DAG task names, in the step's DependsOn order
	for term := range strings.SplitSeq(dt.Depends, " && ") {
		if up, _, _ := strings.Cut(strings.Trim(term, "()! "), "."); up != "" {
			deps = append(deps, up)
		}
	}
	step := &backends.Step{Name: s.Name}
	for _, d := range deps {
		step.DependsOn = append(step.DependsOn, m.names[d])
	}
	v, decided := runstate.Upstream(step, func(k int) backends.Phase { return m.phases[deps[k]] }, false)
	switch cond, ok := m.conds[dt.Name]; {
	case decided:
		s.Phase, s.Message = v.Phase, v.Message
	case n != nil && n.Phase == wfv1.NodeSkipped && ok:
		s.Phase, s.Message = backends.PhaseSkipped, m.conditionFalse(cond)
	case m.wf.Spec.Shutdown != "":
		s.Phase, s.Message = backends.PhaseCanceled, runstate.MsgNotStarted
	}
}

func (m *mapper) stepStatus(nodeName string, dt wfv1.DAGTask) backends.StepStatus {
	name := dt.Name
	for _, p := range dt.Arguments.Parameters {
		if p.Name == stepParam && p.Value != nil {
			name = p.Value.String()
		}
	}
	s := backends.StepStatus{Name: name, Phase: backends.PhasePending}
	n := m.byName[nodeName]
	if n == nil {
		if m.wf.Status.Phase.Completed() {
			s.Phase = backends.PhaseSkipped
			if m.wf.Spec.Shutdown != "" {
				s.Phase = backends.PhaseCanceled
			}
		}
		return s
	}
	tmpl := m.tmpls[dt.Template]
	s.Phase = m.nodePhase(n)
	s.Message = n.Message
	s.Started, s.Finished = n.StartedAt.Time, n.FinishedAt.Time
	if tmpl != nil && tmpl.DAG != nil { // a fan-out
		for _, g := range m.children(n) {
			if g.DisplayName != eachTask {
				continue
			}
			// The loop's children are its instances, each(I:…). A loop
			// over no items has none; Argo may still give it a child of
			// another name (seen on the real controller, v3.7.18), which
			// is no instance.
			var kids []*wfv1.NodeStatus
			var idx []int
			for _, k := range m.children(g) {
				if i := loopIndex(k.DisplayName); i >= 0 {
					kids, idx = append(kids, k), append(idx, i)
				}
			}
			insts := make([]backends.StepStatus, len(kids))
			for i, k := range kids {
				inst := m.leaf(name+"["+strconv.Itoa(idx[i])+"]", k, m.tmpls[tmpl.DAG.Tasks[0].Template])
				if idx[i] < len(insts) {
					insts[idx[i]] = inst
				} else {
					insts[i] = inst
				}
			}
			s.Instances = insts
		}
		s.Output = outputOf(n, nil)
		// The words of every backend, with the fan-out's failure
		// tolerance (see tolerate): how many instances failed, and
		// which.
		if s.Phase.Done() {
			if end := runstate.FanOutEnd(tolerance(tmpl), s.Instances); end.Phase == s.Phase && (end.Message != "" || s.Phase != backends.PhaseSucceeded) {
				s.Message = end.Message
			}
		}
		return s
	}
	leaf := m.leaf(name, n, tmpl)
	leaf.Instances = nil
	return leaf
}

// loopIndex parses the index of a loop child named "each(3:...)".
func loopIndex(name string) int {
	_, rest, ok := strings.Cut(name, "(")
	if !ok {
		return -1
	}
	num, _, _ := strings.Cut(rest, ":")
	i, err := strconv.Atoi(num)
	if err != nil {
		return -1
	}
	return i
}

// leaf maps the node of one task run (a retry node or a pod node).
func (m *mapper) leaf(name string, n *wfv1.NodeStatus, tmpl *wfv1.Template) backends.StepStatus {
	goTask := isGoTask(tmpl)
	s := backends.StepStatus{Name: name, Phase: m.nodePhase(n), Message: message(n.Message, tmpl),
		Started: n.StartedAt.Time, Finished: n.FinishedAt.Time, Output: outputOf(n, tmpl)}
	if n.Type == wfv1.NodeTypePod {
		s.Message = taskMessage(n.Message, goTask, tmpl) // the attempt's
	}
	if n.MemoizationStatus != nil {
		s.CacheKey = n.MemoizationStatus.Key
		if n.MemoizationStatus.Hit {
			return s
		}
	}
	onDemandAfter := -1
	if tmpl != nil {
		if v, ok := tmpl.Metadata.Annotations[AnnotationOnDemandAfter]; ok {
			onDemandAfter, _ = strconv.Atoi(v)
		}
	}
	tries := []*wfv1.NodeStatus{n}
	if n.Type == wfv1.NodeTypeRetry {
		tries = m.children(n)
	}
	if n.Phase == wfv1.NodeSkipped || n.Phase == wfv1.NodeOmitted {
		tries = nil
	}
	for i, c := range tries {
		a := backends.Attempt{Number: i + 1, Started: c.StartedAt.Time, Finished: c.FinishedAt.Time,
			OnDemand: onDemandAfter >= 0 && i >= onDemandAfter}
		switch c.Phase {
		case wfv1.NodeSucceeded:
			a.Phase = backends.PhaseSucceeded
		case wfv1.NodeFailed, wfv1.NodeError:
			a.Phase = backends.PhaseFailed
			a.Message = taskMessage(c.Message, goTask, tmpl)
			a.Reason = backends.ReasonApp
			if infraFailure(c.Phase, exitCode(c), c.Message) {
				a.Reason = backends.ReasonInfra
			}
			if m.wf.Spec.Shutdown != "" && stoppedMessage(c.Message) {
				a.Phase, a.Reason, a.Message = backends.PhaseCanceled, "", runstate.MsgCanceled
			}
		default:
			a.Phase = backends.PhaseRunning
		}
		s.Attempts = append(s.Attempts, a)
	}
	// A pod that waits (unschedulable, an image that cannot be pulled)
	// leaves its node Pending with the reason as its message; show it on
	// the step while it waits (the task's own node when it has no retry
	// node, else its latest try).
	if k := len(tries); k > 0 && !s.Phase.Done() && tries[k-1].Phase == wfv1.NodePending {
		if m := tries[k-1].Message; m != "" {
			s.Message = m
		}
		if why, ok := strings.CutPrefix(s.Message, "Unschedulable: "); ok {
			s.Message = runstate.Unschedulable(why) // Argo's node message; runstate's words
		}
	}
	switch k := len(s.Attempts); {
	case s.Phase == backends.PhaseCanceled:
		s.Message = runstate.MsgCanceled
	case s.Phase == backends.PhaseFailed && k > 0 && s.Attempts[k-1].Phase == backends.PhaseFailed:
		s.Message = runstate.Exhausted(s.Attempts[k-1], infraBudget(tmpl), permanent(tries[k-1], goTask))
	}
	return s
}

// infraBudget is the Infra budget of the retry policy of the step tmpl
// runs (AnnotationInfraRetries).
func infraBudget(tmpl *wfv1.Template) int {
	if tmpl == nil {
		return 0
	}
	n, _ := strconv.Atoi(tmpl.Metadata.Annotations[AnnotationInfraRetries])
	return n
}

// permanent reports whether the attempt of node c failed in a way no
// retry mends, as the retry expression decides (see permanentErrors).
func permanent(c *wfv1.NodeStatus, goTask bool) bool {
	return (goTask && exitCode(c) == "2") || (c.Phase == wfv1.NodeError && permanentRe.MatchString(c.Message))
}

var permanentRe = regexp.MustCompile(permanentErrors)

// isGoTask reports whether tmpl runs a Go task (the pipeline program in
// task mode), whose termination message is the task's error.
func isGoTask(tmpl *wfv1.Template) bool {
	if tmpl == nil || tmpl.Container == nil {
		return false
	}
	for _, p := range tmpl.Inputs.Parameters {
		if p.Name == stepParam {
			return true
		}
	}
	return false
}

// mainExit matches how Argo v3.7 begins the message of a node whose main
// container failed (inferFailedReason in workflow/controller/operator.go):
// "main: Error (exit code 1)", then ": " and the container's termination
// message when it has one.
var mainExit = regexp.MustCompile(`^main: [A-Za-z]+ \(exit code -?[0-9]+\): `)

// taskMessage returns the message of an attempt: for a Go task whose main
// container failed with a termination message, that message alone, the
// task's error as the task mode writes it and the local backend reports
// it; else Argo's message (see message).
func taskMessage(msg string, goTask bool, tmpl *wfv1.Template) string {
	if goTask && !strings.Contains(msg, deadlineMessage) {
		if loc := mainExit.FindStringIndex(msg); loc != nil && strings.TrimSpace(msg[loc[1]:]) != "" {
			return msg[loc[1]:]
		}
	}
	return message(msg, tmpl)
}

// exitCode returns the exit code of a pod node's main container, or "".
func exitCode(n *wfv1.NodeStatus) string {
	if n.Outputs == nil || n.Outputs.ExitCode == nil {
		return ""
	}
	return *n.Outputs.ExitCode
}

// Argo's messages for a node it failed because the workflow was shut down:
// a retry node or the workflow ("Stopped with strategy 'Stop'"), a pod it
// terminated or did not create ("workflow shutdown with strategy: Stop").
const (
	msgStopped  = "Stopped with strategy"
	msgShutdown = "shutdown with strategy"
)

// stoppedMessage reports whether a node message says the node was stopped
// by the workflow's shutdown.
func stoppedMessage(msg string) bool {
	return strings.Contains(msg, msgStopped) || strings.Contains(msg, msgShutdown)
}

// message returns Argo's node message; for a pod stopped by
// activeDeadlineSeconds, "timed out after D" with the step's own timeout
// (AnnotationTimeout) as the local backend says it, else "timed out: "
// and Argo's message.
func message(msg string, tmpl *wfv1.Template) string {
	if !strings.Contains(msg, deadlineMessage) {
		return msg
	}
	if tmpl != nil {
		if d, err := time.ParseDuration(tmpl.Metadata.Annotations[AnnotationTimeout]); err == nil {
			return runstate.TimedOut(d)
		}
	}
	return "timed out: " + msg
}

func (m *mapper) nodePhase(n *wfv1.NodeStatus) backends.Phase {
	switch n.Phase {
	case wfv1.NodeSucceeded:
		if n.MemoizationStatus != nil && n.MemoizationStatus.Hit {
			return backends.PhaseCached
		}
		return backends.PhaseSucceeded
	case wfv1.NodeSkipped, wfv1.NodeOmitted:
		return backends.PhaseSkipped
	case wfv1.NodeFailed, wfv1.NodeError:
		if m.wf.Spec.Shutdown != "" && stoppedMessage(n.Message) {
			return backends.PhaseCanceled
		}
		return backends.PhaseFailed
	case wfv1.NodeRunning:
		return backends.PhaseRunning
	}
	return backends.PhasePending
}

// outputOf returns a node's output: its "output" parameter, or for a
// container task the object assembled from its "out-" parameters.
func outputOf(n *wfv1.NodeStatus, tmpl *wfv1.Template) json.RawMessage {
	if n.Outputs == nil || n.Phase != wfv1.NodeSucceeded {
		return nil
	}
	obj := map[string]json.RawMessage{}
	container := false
	for _, p := range n.Outputs.Parameters {
		if p.Value == nil {
			continue
		}
		if p.Name == outputParam {
			return json.RawMessage(p.Value.String())
		}
		if f, ok := strings.CutPrefix(p.Name, outputPrefix); ok {
			container = true
			v := p.Value.String()
			if json.Valid([]byte(v)) && !isStringField(tmpl, f) {
				obj[f] = json.RawMessage(v)
			} else {
				b, _ := json.Marshal(v) // Argo's executor took the line break off
				obj[f] = b
			}
		}
	}
	if !container {
		return nil
	}
	b, _ := json.Marshal(obj)
	return b
}

// isStringField reports whether the output field f of a container
// template is a string, as its AnnotationTextOutputs says.
func isStringField(tmpl *wfv1.Template, f string) bool {
	return tmpl != nil && slices.Contains(strings.Split(tmpl.Metadata.Annotations[AnnotationTextOutputs], ","), f)
}

// againError is returned by a function given to retryAPI that wants to
// be called again. It is no API error, so kubepod.Transient counts it as
// transient.
type againError struct{ msg string }

func (e *againError) Error() string { return e.msg }

// ensureAccess makes the RBAC of the steps of a with task.Access (see
// kubepod.Access) in the run's namespace; connect must have succeeded.
func (b *Backend) ensureAccess(ctx context.Context, a backends.Artifact) error {
	var access *kubepod.Access
	if !a.As(&access) {
		return nil
	}
	kc := b.kubeClient()
	if kc == nil {
		return fmt.Errorf("argo: steps with task.Access need their ServiceAccount, Roles and RoleBindings made before the run, " +
			"and this Backend has no Kubernetes client; set Options.KubeClient (NewFromKubeconfig sets it, and so does the first Submit of a Backend that New gave no Argo client)")
	}
	return kubeaccess.Ensure(ctx, kc, "argo", access.InNamespace(b.namespace()))
}

// retryAPI calls f until it succeeds or fails with an error that is not
// transient, as every Kubernetes backend does (kubepod.Retry). f must be
// idempotent.
func retryAPI(ctx context.Context, f func() error) error { return kubepod.Retry(ctx, f) }

// Schedule creates the CronWorkflow of a (compiled with Kind
// KindCronWorkflow) in Options.Pod.Namespace, or replaces the spec, labels and
// annotations of the one of that name, and returns its name. Transient API
// errors and conflicts with concurrent updates are retried. It checks Pod
// Security and makes the steps' API access first, as Submit does.
func (b *Backend) Schedule(ctx context.Context, a backends.Artifact) (string, error) {
	var cwf *wfv1.CronWorkflow
	if !a.As(&cwf) {
		return "", fmt.Errorf("argo: only a CronWorkflow can be scheduled, not %T (compile with Options.Kind KindCronWorkflow and Options.Cron): %w", a, errors.ErrUnsupported)
	}
	client, err := b.connect()
	if err != nil {
		return "", err
	}
	if err := b.checkPodSecurity(ctx, &cwf.Spec.WorkflowSpec, planOf(a)); err != nil {
		return "", err
	}
	if err := b.ensureAccess(ctx, a); err != nil {
		return "", err
	}
	cwfs := client.ArgoprojV1alpha1().CronWorkflows(b.namespace())
	err = retryAPI(ctx, func() error {
		_, err := cwfs.Create(ctx, cwf.DeepCopy(), metav1.CreateOptions{})
		if !apierrors.IsAlreadyExists(err) {
			return err
		}
		cur, err := cwfs.Get(ctx, cwf.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		cur.Spec = *cwf.Spec.DeepCopy()
		cur.Labels, cur.Annotations = cwf.Labels, cwf.Annotations
		_, err = cwfs.Update(ctx, cur, metav1.UpdateOptions{})
		if apierrors.IsConflict(err) {
			return &againError{fmt.Sprintf("argo: CronWorkflow %q kept changing while it was updated", cwf.Name)} // read it again
		}
		return err
	})
	if err != nil {
		return "", err
	}
	return cwf.Name, nil
}

// Unschedule removes the schedule name: it deletes the CronWorkflow, so
// that no further run starts, and leaves the workflows it already started
// (running or finished) in place. A schedule that does not exist is
// already removed: Unschedule returns nil. Transient API errors are
// retried, and Unschedule returns only once a read says the CronWorkflow
// is gone or being deleted.
func (b *Backend) Unschedule(ctx context.Context, name string) error {
	client, err := b.connect()
	if err != nil {
		return err
	}
	cwfs := client.ArgoprojV1alpha1().CronWorkflows(b.namespace())
	orphan := metav1.DeletePropagationOrphan
	return retryAPI(ctx, func() error {
		err := cwfs.Delete(ctx, name, metav1.DeleteOptions{PropagationPolicy: &orphan})
		if err != nil && !apierrors.IsNotFound(err) {
			return err
		}
		cur, err := cwfs.Get(ctx, name, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			return nil
		case err != nil:
			return err
		case cur.DeletionTimestamp != nil:
			return nil // deleted once its finalizers are done; it schedules nothing meanwhile
		}
		return &againError{fmt.Sprintf("argo: CronWorkflow %q still exists after its deletion", name)} // delete again
	})
}

// SuspendSchedule suspends (suspend true) or resumes the schedule name:
// a suspended CronWorkflow starts no run until it is resumed. Transient
// API errors are retried; a schedule that does not exist is an error.
func (b *Backend) SuspendSchedule(ctx context.Context, name string, suspend bool) error {
	client, err := b.connect()
	if err != nil {
		return err
	}
	patch := []byte(`{"spec":{"suspend":` + strconv.FormatBool(suspend) + `}}`)
	cwfs := client.ArgoprojV1alpha1().CronWorkflows(b.namespace())
	return retryAPI(ctx, func() error {
		_, err := cwfs.Patch(ctx, name, types.MergePatchType, patch, metav1.PatchOptions{})
		return err
	})
}

// finish reads back into st, the status of the ended run wf, the values
// its tasks stored out of band (artifact.Promote) in the outputs of its
// steps, fan-out instances and collected fan-out outputs, then deletes
// them from the store its templates name; the run's artifacts stay. So
// the final status holds the outputs, as the local backend's does, and
// the Workflow, which carries their references, is never written. Watch
// calls it when it sees the run end, so a run nobody watches keeps its
// values until "prog artifacts rm", and a Watch of a run whose values an
// earlier Watch deleted gets the references. A failure is logged: an
// output that cannot be read back keeps its references, and the values
// are garbage, not the run's outcome.
func finish(ctx context.Context, wf *wfv1.Workflow, st *backends.RunStatus) {
	root := ""
	for _, t := range wf.Spec.Templates {
		if t.Container == nil {
			continue
		}
		for _, e := range t.Container.Env {
			if e.Name == backends.ArtifactsEnv {
				root = e.Value
			}
		}
	}
	pipeline := wf.Labels[LabelPipeline]
	if root == "" || pipeline == "" {
		return
	}
	s, err := artifact.OpenLazy(root)
	if err != nil {
		return
	}
	defer s.Close()
	resolve := func(out *json.RawMessage, name string) {
		if !artifact.HasValues(*out) {
			return
		}
		v, err := s.Resolve(ctx, *out)
		if err != nil {
			utilruntime.HandleError(fmt.Errorf("argo: run %s: step %s: reading its output's values stored out of band, for the run's final status (it keeps their references): %w", wf.Name, name, err))
			return
		}
		*out = v
	}
	for i := range st.Steps {
		step := &st.Steps[i]
		for j := range step.Instances {
			// Also the instances that succeeded in a fan-out that failed.
			resolve(&step.Instances[j].Output, step.Instances[j].Name)
		}
		resolve(&step.Output, step.Name)
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	if _, err := s.DeleteValues(ctx, pipeline, wf.Name); err != nil {
		utilruntime.HandleError(fmt.Errorf("argo: run %s: deleting its promoted values: %w", wf.Name, err))
	}
}

// planOf returns the plan a was compiled from, nil for an artifact of
// another kind.
func planOf(a backends.Artifact) *backends.Plan {
	if c, ok := a.(*compiled); ok {
		return c.plan
	}
	return nil
}

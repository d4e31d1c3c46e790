package argo

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	"github.com/argoproj/argo-workflows/v3/pkg/client/clientset/versioned"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/utils/ptr"

	"github.com/sluice-ml/sluice/backends"
	"github.com/sluice-ml/sluice/backends/kubepod"
	"github.com/sluice-ml/sluice/backends/runstate"
	"github.com/sluice-ml/sluice/internal/naming"
)

// A pipeline whose Workflow would render over Options.MaxSize runs as
// shards: consecutive runs of its steps (in plan order, which is
// topological), each a WorkflowTemplate of its own, run as child
// Workflows by a parent Workflow whose DAG has one resource step per
// shard (Argo's executor creates the child, owned by the parent, and waits
// for it to end). A shard runs once the shards holding the steps it
// depends on have succeeded. The outputs a shard's steps read from an
// earlier shard travel through the parent: the earlier child exports them
// (its DAG's output, a JSON object by "TASK.PARAM", which Argo writes to
// the child's status.outputs), its resource step reads them back
// (jsonPath), and the parent passes the part a later shard reads to its
// child as a workflow argument.
const (
	// AnnotationShards, on the main template of a sharded run's parent
	// Workflow, lists the names of its shards' WorkflowTemplates (a
	// JSON array, in shard order).
	AnnotationShards = "sluice.dev/shards"
	// AnnotationDepends, on the main template of a shard, maps each DAG
	// task that lost a dependency on a step of an earlier shard to its
	// whole dependency list, as the unsharded workflow has it, so that
	// Watch words a step that did not run as every backend does.
	AnnotationDepends = "sluice.dev/depends"
	// LabelRun, on a shard's child Workflow, is the parent's name.
	LabelRun = "sluice.dev/run"
	// LabelShard, on a shard's child Workflow, is its index.
	LabelShard = "sluice.dev/shard"

	shardEntry = "shard" // a shard's entrypoint: a DAG running main, so that main's output is exported
	shardOut   = "out"   // the output of a shard's main DAG and of its resource step
)

// shardCtx is what a compiler of one shard knows of the others.
type shardCtx struct {
	index int
	of    map[string]int          // step name -> its shard
	reads map[int][]string        // earlier shard -> the exports read from it, in order of first use
	seen  map[string]bool         // "shard/key" read already
	lost  map[string]bool         // DAG tasks that lost a dependency on an earlier shard
	deps  map[string]string       // DAG task -> its depends in the whole workflow
	full  map[string]wfv1.DAGTask // DAG tasks of the whole workflow, by name
}

// inShard reports whether step name is compiled into the workflow at
// hand: always, unless it is a shard's and the step is another's.
func (c *compiler) inShard(name string) bool {
	return c.sh == nil || c.sh.of[name] == c.sh.index
}

// exportKey names output parameter param of step's DAG task in the
// export of its shard.
func (c *compiler) exportKey(step, param string) string { return c.task(step) + "." + param }

// shardParam is the workflow parameter of a shard that holds what it
// reads from shard j.
func shardParam(j int) string { return "s" + strconv.Itoa(j) }

// output returns the expression of output parameter param of step's DAG
// task: read from the task, or, when the step is in an earlier shard,
// from the export of that shard passed in as a workflow parameter.
func (c *compiler) output(step, param string) string {
	if c.inShard(step) {
		return taskOutput(c.task(step), param)
	}
	j := c.sh.of[step]
	key := c.exportKey(step, param)
	if k := strconv.Itoa(j) + "/" + key; !c.sh.seen[k] {
		c.sh.seen[k] = true
		c.sh.reads[j] = append(c.sh.reads[j], key)
	}
	return "fromJSON(" + member("workflow.parameters", shardParam(j)) + ")[" + exprString(key) + "]"
}

// outputTag is output as a tag that Argo replaces by the parameter's
// text.
func (c *compiler) outputTag(step, param string) string {
	if c.inShard(step) {
		return "{{tasks." + c.task(step) + ".outputs.parameters." + param + "}}"
	}
	return exprTag(c.output(step, param))
}

// maxSize is the budget of a rendered document.
func (c *compiler) maxSize() int {
	if m := c.b.opts.MaxSize; m > 0 {
		return m
	}
	return DefaultMaxSize
}

// shardable says why the compiled workflow a, over its size budget, cannot
// be split into shards ("" when it can).
func (c *compiler) shardable(opts *backends.CompileOptions) string {
	switch {
	case c.b.opts.Kind != "" && c.b.opts.Kind != KindWorkflow:
		return "only a Workflow is split into shards, and this is a " + string(c.b.opts.Kind)
	case c.plan.Exit != nil:
		return "a pipeline with an exit handler is not split into shards"
	case opts != nil && opts.BeforeEmit != nil:
		return "CompileOptions.BeforeEmit edits one Workflow, so the pipeline is not split into shards"
	}
	return ""
}

// shardPlan partitions the steps of the whole workflow spec into shards
// of about budget bytes each: consecutive steps in plan order, each
// shard's cost the JSON size of its DAG tasks and of the templates they
// run (each counted once per shard). A step over budget is a shard of
// its own; whether it fits MaxSize is seen when it is rendered.
func (c *compiler) shardPlan(spec *wfv1.WorkflowSpec, budget int) [][]string {
	tmpls := map[string]*wfv1.Template{}
	for i := range spec.Templates {
		tmpls[spec.Templates[i].Name] = &spec.Templates[i]
	}
	sizes := map[string]int{}
	size := func(name string) int {
		if n, ok := sizes[name]; ok {
			return n
		}
		b, _ := json.Marshal(tmpls[name])
		sizes[name] = len(b)
		return len(b)
	}
	// uses lists the templates a template runs: itself and, for a DAG
	// (a fan-out's wrapper), the templates of its tasks.
	var uses func(name string, into map[string]bool)
	uses = func(name string, into map[string]bool) {
		if into[name] || tmpls[name] == nil {
			return
		}
		into[name] = true
		if d := tmpls[name].DAG; d != nil {
			for _, t := range d.Tasks {
				uses(t.Template, into)
			}
		}
	}
	var shards [][]string
	var cur []string
	have := map[string]bool{}
	cost := 0
	for i, dt := range tmpls[mainTemplate].DAG.Tasks {
		b, _ := json.Marshal(&dt)
		n := len(b)
		need := map[string]bool{}
		uses(dt.Template, need)
		for t := range need {
			if !have[t] {
				n += size(t)
			}
		}
		if len(cur) > 0 && cost+n > budget {
			shards = append(shards, cur)
			cur, have, cost = nil, map[string]bool{}, 0
			n = len(b)
			for t := range need {
				n += size(t)
			}
		}
		cur = append(cur, c.plan.Steps[i].Name)
		maps.Copy(have, need)
		cost += n
	}
	if len(cur) > 0 {
		shards = append(shards, cur)
	}
	return shards
}

// shard compiles the plan, whose whole workflow spec is over the size
// budget, into shards and their parent, and puts them into a.
func (c *compiler) shard(a *compiled, spec *wfv1.WorkflowSpec) error {
	max := c.maxSize()
	budget := c.b.opts.ShardSize
	if budget <= 0 {
		budget = max / 2
	}
	parts := c.shardPlan(spec, budget)
	of := map[string]int{}
	for k, steps := range parts {
		for _, s := range steps {
			of[s] = k
		}
	}
	full := map[string]wfv1.DAGTask{}
	for _, t := range spec.Templates[0].DAG.Tasks {
		full[t.Name] = t
	}
	// Each shard compiled on its own: its steps' templates, its DAG, and
	// the reads of earlier shards' outputs.
	ctxs := make([]*shardCtx, len(parts))
	specs := make([]*wfv1.WorkflowSpec, len(parts))
	for k := range parts {
		sc := &shardCtx{index: k, of: of, reads: map[int][]string{}, seen: map[string]bool{}, lost: map[string]bool{}, full: full}
		cc := &compiler{b: c.b, plan: c.plan, byBody: map[string]string{}, tmplOf: map[string]string{}, sh: sc}
		if errs := cc.taskNames(); len(errs) > 0 {
			return backends.LintErrors(errs...)
		}
		s, err := cc.spec()
		if err != nil {
			return err
		}
		if err := cc.checkCommands(s); err != nil {
			return err
		}
		ctxs[k], specs[k] = sc, s
	}
	// What each shard exports: what later shards read from it.
	exports := make([][]string, len(parts))
	for k := range parts {
		for _, j := range slices.Sorted(maps.Keys(ctxs[k].reads)) {
			for _, key := range ctxs[k].reads[j] {
				if !slices.Contains(exports[j], key) {
					exports[j] = append(exports[j], key)
				}
			}
		}
	}
	// deps[k]: the shards whose steps shard k's steps depend on.
	deps := make([][]int, len(parts))
	for k, steps := range parts {
		set := map[int]bool{}
		for _, name := range steps {
			for _, d := range c.steps[name].DependsOn {
				if j := of[d]; j != k {
					set[j] = true
				}
			}
		}
		deps[k] = slices.Sorted(maps.Keys(set))
	}
	for k, s := range specs {
		finishShard(s, ctxs[k], exports[k])
	}
	// The shards' names hold a hash of all of them, so that another
	// version of the pipeline never runs a shard of this one.
	docs := make([][]byte, len(parts))
	h := sha256.New()
	for _, s := range specs {
		b, err := json.Marshal(s)
		if err != nil {
			return err
		}
		h.Write(b)
	}
	sum := hex.EncodeToString(h.Sum(nil))[:10]
	var names []string
	labels := map[string]string{LabelPipeline: c.plan.Name}
	maps.Copy(labels, c.b.opts.Pod.Labels)
	for k, s := range specs {
		name := naming.Fit(c.plan.Name+"-"+sum+"-"+strconv.Itoa(k), naming.MaxLabel)
		names = append(names, name)
		wft := &wfv1.WorkflowTemplate{
			TypeMeta:   metav1.TypeMeta{APIVersion: apiVersion, Kind: "WorkflowTemplate"},
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: c.b.opts.Pod.Namespace, Labels: maps.Clone(labels), Annotations: maps.Clone(c.b.opts.Pod.Annotations)},
			Spec:       *s,
		}
		doc, err := kubepod.Render(wft)
		if err != nil {
			return err
		}
		if len(doc) > max {
			return fmt.Errorf("argo: shard %d of %d renders to %d bytes, over the %d-byte budget: %s: %w", k, len(parts), len(doc), max, costliest(s), ErrTooLarge)
		}
		a.shards = append(a.shards, wft)
		docs[k] = doc
	}
	a.shardDocs = docs
	parent := c.parent(spec, names, exports, deps, ctxs)
	a.wf.Spec = *parent
	doc, err := kubepod.Render(a.wf)
	if err != nil {
		return err
	}
	if len(doc) > max {
		return fmt.Errorf("argo: the parent of %d shards renders to %d bytes, over the %d-byte budget: %w", len(parts), len(doc), max, ErrTooLarge)
	}
	a.doc = doc
	a.access = c.shardAccess(a.access)
	return nil
}

// finishShard makes s, the spec of shard sc, runnable as a child: its
// workflow parameters for what it reads, the export of what later shards
// read, the entrypoint that exports it, and the record of the
// dependencies its tasks lost.
func finishShard(s *wfv1.WorkflowSpec, sc *shardCtx, exports []string) {
	main := &s.Templates[0]
	for _, j := range slices.Sorted(maps.Keys(sc.reads)) {
		s.Arguments.Parameters = append(s.Arguments.Parameters, wfv1.Parameter{Name: shardParam(j), Value: anyString("{}")})
	}
	if len(exports) > 0 {
		var kv []string
		for _, key := range exports {
			task, param, _ := strings.Cut(key, ".")
			kv = append(kv, exprString(key)+": "+taskOutput(task, param))
		}
		main.Outputs.Parameters = []wfv1.Parameter{{Name: shardOut, GlobalName: shardOut, ValueFrom: &wfv1.ValueFrom{Expression: "toJson({" + strings.Join(kv, ", ") + "})"}}}
	}
	if len(sc.lost) > 0 {
		lost := map[string]string{}
		for t := range sc.lost {
			lost[t] = sc.full[t].Depends
		}
		b, _ := json.Marshal(lost) // keys sorted: deterministic
		if main.Metadata.Annotations == nil {
			main.Metadata.Annotations = map[string]string{}
		}
		main.Metadata.Annotations[AnnotationDepends] = string(b)
	}
	s.Templates = append(s.Templates, wfv1.Template{Name: shardEntry, DAG: &wfv1.DAGTemplate{Tasks: []wfv1.DAGTask{{Name: mainTemplate, Template: mainTemplate}}}})
	s.Entrypoint = shardEntry
}

// shardAccountName is the ServiceAccount of a sharded run's resource
// steps, which create and watch the shards' Workflows.
func shardAccountName(pipeline string) string {
	return naming.Fit(pipeline+"-shards", naming.MaxLabel)
}

// shardRules are what Argo's executor needs to run a shard: create its
// Workflow, watch it to its end, read its outputs, and report the step's.
var shardRules = []rbacv1.PolicyRule{
	{APIGroups: []string{"argoproj.io"}, Resources: []string{"workflows"}, Verbs: []string{"create", "get", "list", "watch"}},
	{APIGroups: []string{"argoproj.io"}, Resources: []string{"workflowtaskresults"}, Verbs: []string{"create", "patch"}},
}

// shardAccess adds to access the account of the resource steps, its Role
// and RoleBinding in the run's namespace.
func (c *compiler) shardAccess(access *kubepod.Access) *kubepod.Access {
	if access == nil {
		access = &kubepod.Access{}
	}
	name := shardAccountName(c.plan.Name)
	meta := func() metav1.ObjectMeta {
		labels := maps.Clone(c.b.opts.Pod.Labels)
		if labels == nil {
			labels = map[string]string{}
		}
		labels[LabelPipeline] = c.plan.Name
		return metav1.ObjectMeta{Name: name, Namespace: c.b.opts.Pod.Namespace, Labels: labels}
	}
	access.ServiceAccounts = append(access.ServiceAccounts, &corev1.ServiceAccount{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "ServiceAccount"}, ObjectMeta: meta()})
	access.Roles = append(access.Roles, &rbacv1.Role{TypeMeta: metav1.TypeMeta{APIVersion: rbacv1.SchemeGroupVersion.String(), Kind: "Role"}, ObjectMeta: meta(), Rules: shardRules})
	access.RoleBindings = append(access.RoleBindings, &rbacv1.RoleBinding{
		TypeMeta: metav1.TypeMeta{APIVersion: rbacv1.SchemeGroupVersion.String(), Kind: "RoleBinding"}, ObjectMeta: meta(),
		Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: name, Namespace: c.b.opts.Pod.Namespace}},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: name},
	})
	return access
}

// parent returns the spec of the parent Workflow of the shards named
// names: a DAG of one resource step per shard.
func (c *compiler) parent(whole *wfv1.WorkflowSpec, names []string, exports [][]string, deps [][]int, ctxs []*shardCtx) *wfv1.WorkflowSpec {
	spec := &wfv1.WorkflowSpec{
		Entrypoint:         mainTemplate,
		Arguments:          whole.Arguments,
		ServiceAccountName: whole.ServiceAccountName,
		PodGC:              whole.PodGC,
		TTLStrategy:        whole.TTLStrategy,
		SecurityContext:    whole.SecurityContext,
	}
	list, _ := json.Marshal(names)
	main := wfv1.Template{Name: mainTemplate, DAG: &wfv1.DAGTemplate{FailFast: ptr.To(false)}}
	main.Metadata.Annotations = map[string]string{AnnotationShards: string(list)}
	spec.Templates = append(spec.Templates, main)
	for k, name := range names {
		task := wfv1.DAGTask{Name: shardParam(k), Template: shardParam(k)}
		var on []string
		for _, j := range deps[k] {
			on = append(on, shardParam(j))
		}
		task.Depends = strings.Join(on, " && ")
		t := wfv1.Template{
			Name:                         shardParam(k),
			ServiceAccountName:           shardAccountName(c.plan.Name),
			AutomountServiceAccountToken: ptr.To(true),
			Resource: &wfv1.ResourceTemplate{
				Action: "create", SetOwnerReference: true,
				SuccessCondition: "status.phase == Succeeded", FailureCondition: "status.phase in (Failed, Error)",
			},
		}
		var args []string
		for _, p := range whole.Arguments.Parameters {
			args = append(args, manifestArg(p.Name, member("workflow.parameters", p.Name)))
		}
		for _, j := range slices.Sorted(maps.Keys(ctxs[k].reads)) {
			// The part of shard j's export this shard reads.
			keys := make([]string, 0, len(ctxs[k].reads[j]))
			for _, key := range ctxs[k].reads[j] {
				keys = append(keys, exprString(key))
			}
			p := shardParam(j)
			task.Arguments.Parameters = append(task.Arguments.Parameters, wfv1.Parameter{Name: p,
				Value: anyString(exprTag("toJson(sprig.pick(fromJSON(" + taskOutput(p, shardOut) + "), " + strings.Join(keys, ", ") + "))"))})
			t.Inputs.Parameters = append(t.Inputs.Parameters, wfv1.Parameter{Name: p})
			args = append(args, manifestArg(p, member("inputs.parameters", p)))
		}
		t.Resource.Manifest = c.manifest(name, k, args)
		if len(exports[k]) > 0 {
			t.Outputs.Parameters = []wfv1.Parameter{{Name: shardOut, ValueFrom: &wfv1.ValueFrom{
				JSONPath: `{.status.outputs.parameters[?(@.name=="` + shardOut + `")].value}`}}}
		}
		spec.Templates[0].DAG.Tasks = append(spec.Templates[0].DAG.Tasks, task)
		spec.Templates = append(spec.Templates, t)
	}
	return spec
}

// manifestArg is a workflow argument in a shard's manifest whose value is
// expression e: its JSON text, a YAML double-quoted scalar whatever it
// holds.
func manifestArg(name, e string) string {
	return "    - name: " + name + "\n      value: " + exprTag("toJson("+e+")") + "\n"
}

// manifest is the child Workflow of shard k, run from WorkflowTemplate
// name with the workflow arguments args.
func (c *compiler) manifest(name string, k int, args []string) string {
	var b strings.Builder
	b.WriteString("apiVersion: " + apiVersion + "\nkind: Workflow\nmetadata:\n")
	b.WriteString("  generateName: '{{workflow.name}}-" + shardParam(k) + "-'\n")
	if ns := c.b.opts.Pod.Namespace; ns != "" {
		b.WriteString("  namespace: " + strconv.Quote(ns) + "\n")
	}
	b.WriteString("  labels:\n")
	b.WriteString("    " + LabelPipeline + ": " + strconv.Quote(c.plan.Name) + "\n")
	b.WriteString("    " + LabelRun + ": '{{workflow.name}}'\n")
	b.WriteString("    " + LabelShard + ": " + strconv.Quote(strconv.Itoa(k)) + "\n")
	b.WriteString("spec:\n  workflowTemplateRef:\n    name: " + name + "\n")
	if len(args) > 0 {
		b.WriteString("  arguments:\n    parameters:\n")
		for _, a := range args {
			b.WriteString(a)
		}
	}
	return b.String()
}

// ensureShards creates the WorkflowTemplates of a sharded run's shards
// unless they exist: their names hold a hash of their contents, so one
// that exists is the same.
func (b *Backend) ensureShards(ctx context.Context, client versioned.Interface, a backends.Artifact) error {
	var shards []*wfv1.WorkflowTemplate
	if !a.As(&shards) {
		return nil
	}
	for _, wft := range shards {
		err := retryAPI(ctx, func() error {
			_, err := client.ArgoprojV1alpha1().WorkflowTemplates(b.namespace()).Create(ctx, wft, metav1.CreateOptions{})
			if apierrors.IsAlreadyExists(err) {
				return nil
			}
			return err
		})
		if err != nil {
			return fmt.Errorf("argo: shard %s: %w", wft.Name, err)
		}
	}
	return nil
}

// shardNames returns the names of the shards' WorkflowTemplates of a
// sharded run's parent wf, nil for a run that is not sharded.
func shardNames(wf *wfv1.Workflow) []string {
	for i := range wf.Spec.Templates {
		if t := &wf.Spec.Templates[i]; t.Name == mainTemplate {
			var names []string
			if json.Unmarshal([]byte(t.Metadata.Annotations[AnnotationShards]), &names) == nil {
				return names
			}
		}
	}
	return nil
}

// ShardedStatus is Status for a sharded run: parent is its Workflow,
// kids the child Workflows of its shards made so far, and specs the specs
// of its shards' WorkflowTemplates by name (what a shard that has no
// child yet holds). Steps are in plan order, as Status gives them.
func ShardedStatus(parent *wfv1.Workflow, kids []*wfv1.Workflow, specs map[string]*wfv1.WorkflowSpec) *backends.RunStatus {
	st := runStatus(parent)
	byShard := map[int]*wfv1.Workflow{}
	for _, k := range kids {
		if i, err := strconv.Atoi(k.Labels[LabelShard]); err == nil {
			byShard[i] = k
		}
	}
	m := newMapper()
	for k, name := range shardNames(parent) {
		kid := byShard[k]
		var spec *wfv1.WorkflowSpec
		switch {
		case kid != nil && kid.Status.StoredWorkflowSpec != nil:
			spec = kid.Status.StoredWorkflowSpec
		default:
			spec = specs[name]
		}
		if spec == nil {
			continue // not read yet
		}
		if kid == nil {
			// Not made (yet): its steps are pending while the parent
			// runs, and did not run once it ended.
			kid = &wfv1.Workflow{ObjectMeta: metav1.ObjectMeta{Name: parent.Name + "-" + shardParam(k)}}
			kid.Spec.Shutdown = parent.Spec.Shutdown
			kid.Status.Phase = parent.Status.Phase
		}
		m.load(kid, spec)
		t := m.tmpls[mainTemplate]
		if t == nil || t.DAG == nil {
			continue
		}
		var lost map[string]string
		_ = json.Unmarshal([]byte(t.Metadata.Annotations[AnnotationDepends]), &lost)
		for _, dt := range t.DAG.Tasks {
			if d, ok := lost[dt.Name]; ok {
				dt.Depends = d
			}
			s := m.step(kid.Name+"."+mainTemplate+"."+dt.Name, dt)
			if s.Phase == backends.PhaseSkipped && s.Message == "" && byShard[k] == nil {
				s.Message = fmt.Sprintf("not run: it is in shard %d of the workflow, which did not start because a shard it runs after failed", k)
			}
			st.Steps = append(st.Steps, s)
		}
	}
	if parent.Status.Phase.Completed() {
		if end := runstate.End(st.Steps, parent.Spec.Shutdown != ""); end.Phase == st.Phase {
			st.Message = end.Message
		}
	}
	return st
}

// stopShards stops the child Workflows of run's shards that have not
// ended, and returns the names of those it asked to stop.
func (b *Backend) stopShards(ctx context.Context, client versioned.Interface, run string) (stopped []string, err error) {
	wfs := client.ArgoprojV1alpha1().Workflows(b.namespace())
	var list *wfv1.WorkflowList
	if err := retryAPI(ctx, func() error {
		var err error
		list, err = wfs.List(ctx, metav1.ListOptions{LabelSelector: LabelRun + "=" + run})
		return err
	}); err != nil {
		return nil, err
	}
	for _, k := range list.Items {
		if k.Spec.Shutdown != "" || k.Status.Phase.Completed() {
			continue
		}
		if err := retryAPI(ctx, func() error {
			_, err := wfs.Patch(ctx, k.Name, types.MergePatchType, stopPatch, metav1.PatchOptions{})
			if apierrors.IsNotFound(err) {
				return nil
			}
			return err
		}); err != nil {
			return stopped, err
		}
		stopped = append(stopped, k.Name)
	}
	return stopped, nil
}

// merged is one watch of the events of a and b.
func merged(a, b watch.Interface) watch.Interface {
	m := &mergedWatch{ch: make(chan watch.Event), done: make(chan struct{}), ws: []watch.Interface{a, b}}
	m.wg.Add(2)
	for _, w := range m.ws {
		go func() {
			defer m.wg.Done()
			for ev := range w.ResultChan() {
				select {
				case m.ch <- ev:
				case <-m.done:
					return
				}
			}
			// One ended: so does the merged watch, which the caller
			// starts again.
			m.stop()
		}()
	}
	go func() {
		m.wg.Wait()
		close(m.ch)
	}()
	return m
}

type mergedWatch struct {
	ch   chan watch.Event
	done chan struct{}
	ws   []watch.Interface
	once sync.Once
	wg   sync.WaitGroup
}

func (m *mergedWatch) ResultChan() <-chan watch.Event { return m.ch }

func (m *mergedWatch) Stop() { m.stop() }

func (m *mergedWatch) stop() {
	m.once.Do(func() {
		close(m.done)
		for _, w := range m.ws {
			w.Stop()
		}
	})
}

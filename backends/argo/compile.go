package argo

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"path"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/sluice-ml/sluice/backends"
	"github.com/sluice-ml/sluice/backends/kubepod"
	"github.com/sluice-ml/sluice/internal/field"
	"github.com/sluice-ml/sluice/internal/placeholder"
	"github.com/sluice-ml/sluice/task"
)

// Names and paths the compiled workflows use.
const (
	// LabelPipeline is set to the pipeline's name on every compiled object.
	LabelPipeline = "sluice.dev/pipeline"
	// AnnotationOnDemandAfter, on a template of a step with the on-demand
	// fall-back, is the retry count from which attempts run on demand.
	AnnotationOnDemandAfter = "sluice.dev/on-demand-after-retries"
	// AnnotationTextOutputs, on the template of a container task, lists
	// its string output fields (comma-separated JSON names), whose files
	// Watch reports as text even when they hold JSON.
	AnnotationTextOutputs = "sluice.dev/text-outputs"
	// AnnotationTimeout, on the template of a step with a timeout, is that
	// timeout as the step declares it ("150ms"); activeDeadlineSeconds
	// holds it rounded up to a whole second. Watch says "timed out after"
	// it, as the local backend does.
	AnnotationTimeout = "sluice.dev/timeout"
	// AnnotationConditions, on the main DAG template, maps the DAG task
	// of each step with a condition to that condition, a
	// backends.Condition in JSON (fields left out when empty), so that
	// Watch says why a step was skipped in the same words, and with the
	// same values, as every backend (package runstate).
	AnnotationConditions = "sluice.dev/conditions"
	// AnnotationTextParams, on the main DAG template next to
	// AnnotationConditions, lists the workflow parameters stored as text
	// (comma-separated), so that Watch reads their values back as the
	// strings they are when it explains a skip.
	AnnotationTextParams = "sluice.dev/text-params"
	// AnnotationInfraRetries, on the template of a step that retries, is
	// the Infra budget of its retry policy: Argo's retry strategy holds
	// only the sum of both budgets.
	AnnotationInfraRetries = "sluice.dev/infra-retries"
	// AnnotationSharedRetryCount, on the template of a step whose retry
	// policy has both an App and an Infra budget, says that Argo counts
	// the retries of both kinds together, which the package doc's
	// "# Retries" spells out: the one way Argo's retries differ from
	// every other backend's. Its value is "true".
	AnnotationSharedRetryCount = "sluice.dev/shared-retry-count"

	mainTemplate = "main"
	exitTemplate = "exit"
	eachTask     = "each"
	// The input and output parameters of a Go task's template. They
	// are named in every step (and every ref to a step), so briefly.
	inputParam  = "i"
	outputParam = "o"
	stepParam   = "step"
	// instanceParam is a Go task's fan-out instance index ("" outside a
	// fan-out), for the layout of its artifacts.
	instanceParam = "n"
	outputPrefix  = "out-"
	inputPrefix   = "in-"
	tmpVolume     = "sluice-tmp"
	tmpDir        = "/tmp/sluice"
	apiVersion    = "argoproj.io/v1alpha1"
)

// executorRules are what Argo's executor (the init and wait containers)
// needs in the run's namespace as the account of a step's pod, which it
// shares with the step's code: it reports the step's outputs as
// WorkflowTaskResults (Argo 3.4 and later). The Role of the run's
// namespace of every step with task.Access has them too.
var executorRules = []rbacv1.PolicyRule{{
	APIGroups: []string{"argoproj.io"},
	Resources: []string{"workflowtaskresults"},
	Verbs:     []string{"create", "patch"},
}}

var paramName = regexp.MustCompile(`^[-a-zA-Z0-9_]+$`)

type compiler struct {
	b      *Backend
	plan   *backends.Plan
	tmpls  []wfv1.Template
	byBody map[string]string
	tasks  map[string]string         // step name -> DAG task name
	steps  map[string]*backends.Step // step name -> step (Plan.Step is a linear search)
	nTask  int                       // task templates named so far
	tmplOf map[string]string         // step name -> the template running its container
	feeds  map[string]bool           // steps whose output a fan-out iterates over
	// sh is the shard being compiled, nil when the workflow is whole
	// (see shard.go).
	sh *shardCtx
	// rewrites and fields memoize placeholders and containerFields.
	rewrites map[rewriteKey]string
	fields   map[fieldsKey][]string
}

// taskNames maps step names to DAG task names: Argo rejects task names
// that begin with a digit when tasks use depends, so those get the prefix
// "s-". The step's own name then travels in the "step" argument. It
// returns a field error for every step whose new name is another step's.
func (c *compiler) taskNames() []*field.Error {
	c.tasks = make(map[string]string, len(c.plan.Steps)+1)
	c.steps = make(map[string]*backends.Step, len(c.plan.Steps)+1)
	used := make(map[string]*backends.Step, len(c.plan.Steps)+1)
	all := c.plan.Steps
	if c.plan.Exit != nil {
		all = append(slices.Clip(all), *c.plan.Exit)
	}
	for i := range c.plan.Steps {
		used[c.plan.Steps[i].Name] = &c.plan.Steps[i]
		c.steps[c.plan.Steps[i].Name] = &c.plan.Steps[i]
	}
	if c.plan.Exit != nil {
		used[c.plan.Exit.Name] = c.plan.Exit
		c.steps[c.plan.Exit.Name] = c.plan.Exit
	}
	var errs []*field.Error
	for i := range all {
		s := &all[i]
		n := s.Name
		if n != "" && n[0] >= '0' && n[0] <= '9' {
			n = "s-" + n
			if o := used[n]; o != nil {
				errs = append(errs, field.Duplicate(backends.TaskField(s, "name"), s.DisplayName,
					"on argo a task name cannot start with a digit, so this step's task would be named %q, the name of step %q; rename one of them", n, o.DisplayName))
			}
		}
		c.tasks[s.Name] = n
	}
	return errs
}

// task returns the DAG task name of step name.
func (c *compiler) task(name string) string {
	if n, ok := c.tasks[name]; ok {
		return n
	}
	return name
}

func (b *Backend) compile(plan *backends.Plan, opts *backends.CompileOptions) (*compiled, error) {
	c := &compiler{b: b, plan: plan, byBody: map[string]string{}, tmplOf: map[string]string{}}
	if errs := c.taskNames(); len(errs) > 0 {
		return nil, backends.LintErrors(errs...)
	}
	spec, err := c.spec()
	if err != nil {
		return nil, err
	}
	a := &compiled{plan: plan, warn: append(c.warnings(), kubepod.SecurityWarnings(&b.opts.Pod, plan)...)}
	access, accessErrs := kubepod.AccessOf("argo", &b.opts.Pod, plan, executorRules)
	if len(accessErrs) > 0 {
		return nil, backends.LintErrors(accessErrs...)
	}
	a.access = access
	labels := map[string]string{LabelPipeline: plan.Name}
	maps.Copy(labels, b.opts.Pod.Labels)
	var annotations map[string]string
	if len(b.opts.Pod.Annotations) > 0 {
		// A copy: BeforeEmit may edit what it is given.
		annotations = maps.Clone(b.opts.Pod.Annotations)
	}
	meta := metav1.ObjectMeta{Namespace: b.opts.Pod.Namespace, Labels: labels, Annotations: annotations}
	var obj any
	switch b.opts.Kind {
	case "", KindWorkflow:
		meta.GenerateName = plan.Name + "-"
		a.wf = &wfv1.Workflow{TypeMeta: metav1.TypeMeta{APIVersion: apiVersion, Kind: "Workflow"}, ObjectMeta: meta, Spec: *spec}
		obj = a.wf
	case KindWorkflowTemplate:
		meta.Name = plan.Name
		a.wft = &wfv1.WorkflowTemplate{TypeMeta: metav1.TypeMeta{APIVersion: apiVersion, Kind: "WorkflowTemplate"}, ObjectMeta: meta, Spec: *spec}
		obj = a.wft
	case KindCronWorkflow:
		cron := b.opts.Cron
		if cron == nil || len(cron.Schedules) == 0 {
			return nil, fmt.Errorf("argo: a CronWorkflow needs Options.Cron with at least one schedule")
		}
		meta.Name = plan.Name
		cs := wfv1.CronWorkflowSpec{
			WorkflowSpec:               *spec,
			Schedules:                  slices.Clone(cron.Schedules),
			Timezone:                   cron.Timezone,
			ConcurrencyPolicy:          cron.ConcurrencyPolicy,
			StartingDeadlineSeconds:    cron.StartingDeadlineSeconds,
			SuccessfulJobsHistoryLimit: cron.SuccessfulJobsHistoryLimit,
			FailedJobsHistoryLimit:     cron.FailedJobsHistoryLimit,
			Suspend:                    cron.Suspend,
			WorkflowMetadata:           &metav1.ObjectMeta{Labels: labels},
		}
		if cron.StopExpression != "" {
			cs.StopStrategy = &wfv1.StopStrategy{Expression: cron.StopExpression}
		}
		a.cwf = &wfv1.CronWorkflow{TypeMeta: metav1.TypeMeta{APIVersion: apiVersion, Kind: "CronWorkflow"}, ObjectMeta: meta, Spec: cs}
		obj = a.cwf
	default:
		return nil, fmt.Errorf("argo: unknown kind %q: %w", b.opts.Kind, errors.ErrUnsupported)
	}
	if opts != nil && opts.BeforeEmit != nil {
		if err := opts.BeforeEmit(a.as); err != nil {
			return nil, err
		}
	}
	if err := c.checkCommands(specOf(a)); err != nil {
		return nil, err
	}
	doc, err := kubepod.Render(obj)
	if err != nil {
		return nil, err
	}
	if err := c.checkParams(specOf(a)); err != nil {
		return nil, err
	}
	a.doc = doc
	max, shardSize := c.maxSize(), c.b.opts.ShardSize
	switch why := c.shardable(opts); {
	case len(doc) > max:
		over := fmt.Errorf("argo: the workflow renders to %d bytes, over the %d-byte budget (%d tasks, %d templates): %s",
			len(doc), max, len(c.plan.Steps), len(specOf(a).Templates), costliest(specOf(a)))
		if why != "" {
			return nil, fmt.Errorf("%w; %s: %w", over, why, ErrTooLarge)
		}
		if err := c.shard(a, specOf(a)); err != nil {
			return nil, fmt.Errorf("%w; splitting it into shards: %w", over, err)
		}
	case shardSize > 0 && len(doc) > shardSize && why == "":
		if err := c.shard(a, specOf(a)); err != nil {
			return nil, fmt.Errorf("argo: splitting the workflow (%d bytes, over Options.ShardSize) into shards: %w", len(doc), err)
		}
	}
	for _, obj := range a.access.Objects() {
		doc, err := kubepod.Render(obj)
		if err != nil {
			return nil, err
		}
		a.accessDocs = append(a.accessDocs, doc)
	}
	return a, nil
}

func specOf(a *compiled) *wfv1.WorkflowSpec {
	switch {
	case a.wft != nil:
		return &a.wft.Spec
	case a.cwf != nil:
		return &a.cwf.Spec.WorkflowSpec
	}
	return &a.wf.Spec
}

func (c *compiler) spec() (*wfv1.WorkflowSpec, error) {
	o := &c.b.opts
	spec := &wfv1.WorkflowSpec{
		Entrypoint:         mainTemplate,
		ServiceAccountName: o.Pod.ServiceAccountName,
		PodGC:              o.PodGC,
		TTLStrategy:        o.TTL,
		SecurityContext:    o.Pod.PodSecurity(),
	}
	for _, p := range c.plan.Params {
		spec.Arguments.Parameters = append(spec.Arguments.Parameters, wfv1.Parameter{
			Name: p.Name, Value: anyString(argument(p)),
		})
	}
	// Reserve "main" and "exit" first so step templates never take them.
	c.tmpls = append(c.tmpls, wfv1.Template{Name: mainTemplate})
	if c.plan.Exit != nil {
		c.tmpls = append(c.tmpls, wfv1.Template{Name: exitTemplate})
	}
	dag := &wfv1.DAGTemplate{FailFast: ptr.To(false)}
	for i := range c.plan.Steps {
		if !c.inShard(c.plan.Steps[i].Name) {
			continue
		}
		t, err := c.dagTask(&c.plan.Steps[i])
		if err != nil {
			return nil, err
		}
		dag.Tasks = append(dag.Tasks, t)
	}
	c.tmpls[0].DAG = dag
	if err := c.annotateConditions(); err != nil {
		return nil, err
	}
	if c.plan.Exit != nil {
		t, err := c.dagTask(c.plan.Exit)
		if err != nil {
			return nil, err
		}
		c.tmpls[1].DAG = &wfv1.DAGTemplate{Tasks: []wfv1.DAGTask{t}}
		spec.OnExit = exitTemplate
	}
	spec.Templates = c.tmpls
	return spec, nil
}

// annotateConditions writes AnnotationConditions on the main template.
func (c *compiler) annotateConditions() error {
	conds := map[string]json.RawMessage{}
	for _, s := range c.plan.Steps {
		if s.When != nil && c.inShard(s.Name) {
			conds[c.task(s.Name)] = encodeCondition(*s.When)
		}
	}
	if e := c.plan.Exit; e != nil && e.When != nil {
		conds[c.task(e.Name)] = encodeCondition(*e.When)
	}
	if len(conds) == 0 {
		return nil
	}
	b, err := json.Marshal(conds) // keys sorted: deterministic
	if err != nil {
		return err
	}
	c.tmpls[0].Metadata.Annotations = map[string]string{AnnotationConditions: string(b)}
	var text []string
	for _, p := range c.plan.Params {
		if p.Text {
			text = append(text, p.Name)
		}
	}
	if len(text) > 0 {
		c.tmpls[0].Metadata.Annotations[AnnotationTextParams] = strings.Join(text, ",")
	}
	return nil
}

func compactJSON(v json.RawMessage) string {
	var b bytes.Buffer
	if json.Compact(&b, v) != nil {
		return string(v)
	}
	return b.String()
}

// addTemplate adds t under the name base unless a template with the same
// body exists, and returns the name to call. An empty base names it "tN",
// N counting such templates from 1: every DAG task names its template, so
// a short name keeps each step small.
func (c *compiler) addTemplate(base string, t wfv1.Template) (string, error) {
	t.Name = ""
	key, err := json.Marshal(&t)
	if err != nil {
		return "", err
	}
	if name, ok := c.byBody[string(key)]; ok {
		return name, nil
	}
	if base == "" {
		c.nTask++
		base = "t" + itoa(c.nTask)
	}
	t.Name = base
	c.byBody[string(key)] = base
	c.tmpls = append(c.tmpls, t)
	return base, nil
}

// takesStep reports whether the DAG task of step s (outside a fan-out,
// whose wrapper always passes it) passes the step's name as the parameter
// "step": only a step renamed by taskNames does, since the DAG task's
// name, {{tasks.name}}, is the default of a Go template's "step" and
// what Watch reports otherwise.
func (c *compiler) takesStep(s *backends.Step) bool {
	return s.ForEach == nil && c.task(s.Name) != s.Name
}

func isContainer(s *backends.Step) bool { return s.Task.Kind == task.KindContainer }

func unsupported(s *backends.Step, format string, args ...any) error {
	return fmt.Errorf("argo: step %q: %s: %w", s.Name, fmt.Sprintf(format, args...), errors.ErrUnsupported)
}

// dagTask returns the DAG task of step s, adding its templates.
func (c *compiler) dagTask(s *backends.Step) (wfv1.DAGTask, error) {
	dt := wfv1.DAGTask{Name: c.task(s.Name)}
	var deps []string
	for _, d := range s.DependsOn {
		if !c.inShard(d) {
			// In a shard that runs after d's (see shard.go).
			c.sh.lost[c.task(s.Name)] = true
			continue
		}
		// A bare "X" also accepts a Skipped X, which only a step with a
		// condition can be (a DAG node is never Skipped; a fan-out's
		// empty loop is inside its wrapper).
		if u := c.steps[d]; u != nil && u.When == nil {
			deps = append(deps, c.task(d))
		} else {
			deps = append(deps, c.task(d)+".Succeeded")
		}
	}
	dt.Depends = strings.Join(deps, " && ")
	if s.When != nil {
		e, err := c.condExpr(*s.When)
		if err != nil {
			return dt, fmt.Errorf("argo: step %q: condition: %w", s.Name, err)
		}
		dt.When = exprTag(e)
	}
	tmpl, err := c.taskTemplate(s)
	if err != nil {
		return dt, err
	}
	name, err := c.addTemplate("", tmpl)
	if err != nil {
		return dt, err
	}
	c.tmplOf[s.Name] = name
	if s.ForEach != nil {
		wrap, err := c.eachTemplate(s, name)
		if err != nil {
			return dt, err
		}
		if dt.Template, err = c.addTemplate("each-"+s.Name, wrap); err != nil {
			return dt, err
		}
		items, err := c.refExpr(s.ForEach.Items)
		if err != nil {
			return dt, err
		}
		var inst string
		if isContainer(s) {
			inst, err = c.containerItem(s)
		} else {
			// Each item of a Go fan-out is the JSON text of {"n": its
			// index, "i": its input document}: the index names the
			// instance's artifacts (backends.InstanceEnv).
			if inst, err = c.inputExpr(s.Input); err == nil {
				inst = "toJson({" + exprString(instanceParam) + ": #index, " + exprString(inputParam) + ": " + inst + "})"
			}
		}
		if err != nil {
			return dt, err
		}
		dt.Arguments.Parameters = []wfv1.Parameter{
			{Name: stepParam, Value: anyString(s.Name)},
			// Argo templates a loop task after substituting withParam
			// into it, so user data must not hold "{{": it is escaped as
			// "{\u007b", the same in JSON.
			{Name: "inputs", Value: anyString(exprTag("sprig.replace(" + exprString("{{") + ", " + exprString(`{\u007b`) +
				", toJson(map(fromJSON(" + items + ") ?? [], " + inst + ")))"))},
		}
		return dt, nil
	}
	dt.Template = name
	if isContainer(s) {
		fields, err := c.containerFields(s)
		if err != nil {
			return dt, err
		}
		var obj map[string]json.RawMessage
		if len(fields) > 0 {
			if err := json.Unmarshal(s.Input.Template, &obj); err != nil {
				return dt, unsupported(s, "container input is not an object")
			}
		}
		for _, f := range fields {
			v, err := c.fieldValue(s, s.Input, obj[f])
			if err != nil {
				return dt, err
			}
			dt.Arguments.Parameters = append(dt.Arguments.Parameters, wfv1.Parameter{Name: inputPrefix + f, Value: anyString(v)})
		}
		if s.Cache.Enabled { // the memoize key is computed from the whole input
			in, err := c.inputTags(s.Input)
			if err != nil {
				return dt, fmt.Errorf("argo: step %q: %w", s.Name, err)
			}
			dt.Arguments.Parameters = append(dt.Arguments.Parameters, wfv1.Parameter{Name: inputParam, Value: anyString(in)})
		}
		if c.takesStep(s) {
			dt.Arguments.Parameters = append([]wfv1.Parameter{{Name: stepParam, Value: anyString(s.Name)}}, dt.Arguments.Parameters...)
		}
		return dt, nil
	}
	in, err := c.inputTags(s.Input)
	if err != nil {
		return dt, fmt.Errorf("argo: step %q: %w", s.Name, err)
	}
	dt.Arguments.Parameters = []wfv1.Parameter{{Name: inputParam, Value: anyString(in)}}
	if c.takesStep(s) {
		dt.Arguments.Parameters = append([]wfv1.Parameter{{Name: stepParam, Value: anyString(s.Name)}}, dt.Arguments.Parameters...)
	}
	return dt, nil
}

// itemInput is the key of a container fan-out's item that holds the
// instance's whole input document, for the memoize key: not a field name,
// which is a valid parameter name.
const itemInput = "$input"

// eachTemplate is the DAG that runs the template tmpl of the fan-out step
// s once per element of its "inputs" parameter (a JSON list of strings:
// the instances' input documents for a Go task, objects holding the
// placeholder texts for a container task), at most Parallelism at once,
// and outputs the list of outputs in element order.
func (c *compiler) eachTemplate(s *backends.Step, tmpl string) (wfv1.Template, error) {
	// Argo aggregates an output parameter of a loop into a JSON list of
	// objects when every value is an object or a list, and into a list
	// of strings otherwise; the output expressions decode the strings.
	// An empty loop is skipped and leaves no output: the default [].
	args := []wfv1.Parameter{
		{Name: stepParam, Value: anyString("{{inputs.parameters.step}}")},
		{Name: inputParam, Value: anyString(exprTag(member("fromJSON(item)", inputParam)))},
		{Name: instanceParam, Value: anyString(exprTag("string(" + member("fromJSON(item)", instanceParam) + ")"))},
	}
	out := "toJson(map(fromJSON(" + taskOutput(eachTask, outputParam) + "), type(#) == 'string' ? fromJSON(#) : #))"
	if isContainer(s) {
		// Each item is the JSON text of an object holding the texts of
		// the placeholders (and the input document when cached); Argo's
		// expression result is escaped once, where {{item.F}} of an
		// object item would be escaped twice.
		fields, err := c.containerFields(s)
		if err != nil {
			return wfv1.Template{}, err
		}
		args = nil
		for _, f := range fields {
			args = append(args, wfv1.Parameter{Name: inputPrefix + f, Value: anyString(exprTag(member("fromJSON(item)", f)))})
		}
		if s.Cache.Enabled {
			args = append(args, wfv1.Parameter{Name: inputParam, Value: anyString(exprTag(member("fromJSON(item)", itemInput)))})
		}
		// The output of instance #index is assembled from element #index
		// of each aggregated output parameter (as containerOutput does
		// for one run), counting instances by the items.
		var kv []string
		for _, o := range s.Task.Outputs {
			x := "fromJSON(" + taskOutput(eachTask, outputPrefix+o.Field) + ")[#index]"
			v := "(type(" + x + ") == 'string' ? fromJSON(" + x + ") : " + x + ")"
			if c.isStringOutput(s, o.Field) {
				v = "(type(" + x + ") == 'string' ? " + x + " : toJson(" + x + "))"
			}
			kv = append(kv, exprString(o.Field)+": "+v)
		}
		over := "fromJSON(inputs.parameters.inputs)"
		if tolerant(s) && len(s.Task.Outputs) > 0 {
			// Only the succeeded instances' values are aggregated.
			over = "fromJSON(" + taskOutput(eachTask, outputPrefix+s.Task.Outputs[0].Field) + ")"
		}
		out = "toJson(map(" + over + ", ({" + strings.Join(kv, ", ") + "})))"
		out = strings.ReplaceAll(strings.ReplaceAll(out, "}}", "} }"), "{{", "{ {")
	}
	t := wfv1.Template{
		Inputs: wfv1.Inputs{Parameters: []wfv1.Parameter{{Name: stepParam}, {Name: "inputs"}}},
		Outputs: wfv1.Outputs{Parameters: []wfv1.Parameter{{
			Name:      outputParam,
			ValueFrom: &wfv1.ValueFrom{Expression: out, Default: anyString("[]")},
		}}},
		DAG: &wfv1.DAGTemplate{
			FailFast: ptr.To(false),
			Tasks: []wfv1.DAGTask{{
				Name:      eachTask,
				Template:  tmpl,
				WithParam: "{{inputs.parameters.inputs}}",
				Arguments: wfv1.Arguments{Parameters: args},
			}},
		},
	}
	if p := s.ForEach.Parallelism; p > 0 {
		t.Parallelism = ptr.To(int64(p))
	}
	if tolerant(s) {
		count := outputParam
		if isContainer(s) {
			if len(s.Task.Outputs) == 0 {
				return t, unsupported(s, "a container fan-out without output fields cannot tolerate failures on argo")
			}
			count = outputPrefix + s.Task.Outputs[0].Field
		}
		if err := c.tolerate(s, &t, count); err != nil {
			return t, err
		}
	}
	return t, nil
}

// containerItem is the expression, over the fan-out element #, of the
// JSON text of a container instance's item: an object mapping each
// placeholder field to its text (a string as is, anything else as JSON),
// plus the input document under itemInput when the step is cached.
func (c *compiler) containerItem(s *backends.Step) (string, error) {
	fields, err := c.containerFields(s)
	if err != nil {
		return "", err
	}
	var obj map[string]json.RawMessage
	if len(fields) > 0 {
		if err := json.Unmarshal(s.Input.Template, &obj); err != nil {
			return "", unsupported(s, "container input is not an object")
		}
	}
	var kv []string
	for _, f := range fields {
		raw, ok := obj[f]
		if !ok {
			return "", unsupported(s, "input has no field %q", f)
		}
		e, err := c.fieldExpr(s.Input, raw)
		if err != nil {
			return "", err
		}
		kv = append(kv, exprString(f)+": "+e)
	}
	if s.Cache.Enabled {
		e, err := c.inputExpr(s.Input)
		if err != nil {
			return "", err
		}
		kv = append(kv, exprString(itemInput)+": "+e)
	}
	return "toJson(({" + strings.Join(kv, ", ") + "}))", nil
}

// fieldExpr is the expression of the text a {{.Field}} placeholder is
// replaced with, for the field's raw JSON in an input: a string as is,
// anything else as JSON.
func (c *compiler) fieldExpr(in backends.Input, raw json.RawMessage) (string, error) {
	for i := range in.Refs {
		if string(raw) == backends.Placeholder(i) {
			if t, ok, err := c.textExpr(in.Refs[i]); ok || err != nil {
				return t, err
			}
			if p, str, ok := c.containerField(in.Refs[i]); ok {
				if str {
					return p, nil
				}
				return "toJson(fromJSON(" + p + "))", nil
			}
			e, err := c.refExpr(in.Refs[i])
			if err != nil {
				return "", err
			}
			return "(type(fromJSON(" + e + ")) == 'string' ? fromJSON(" + e + ") : " + e + ")", nil
		}
	}
	if !bytes.Contains(raw, []byte(`{"$sluice":`)) {
		var str string
		if json.Unmarshal(raw, &str) == nil {
			return exprString(str), nil
		}
		return exprString(compactJSON(raw)), nil
	}
	return c.inputExpr(backends.Input{Template: raw, Refs: in.Refs})
}

// isStringOutput reports whether output field f of container step s is a
// string, whose file is read as text.
func (c *compiler) isStringOutput(s *backends.Step, f string) bool {
	_, typ, ok := task.FieldByName(s.Task.OutputType, f)
	for ok && typ.Kind() == reflect.Pointer {
		typ = typ.Elem()
	}
	return ok && typ.Kind() == reflect.String
}

// taskTemplate returns the template that runs step s; steps with equal
// templates share one.
func (c *compiler) taskTemplate(s *backends.Step) (wfv1.Template, error) {
	// A Go task's step and input are template parameters; a failed
	// task's error goes to the termination message, which Argo appends
	// to the node's message (see Watch).
	inv := kubepod.Invocation{
		Step: "{{inputs.parameters." + stepParam + "}}", Input: "{{inputs.parameters." + inputParam + "}}",
		OutputFile: backends.DefaultOutputFile, Rewrite: c.placeholders(s),
		Env: c.artifactEnv(s), ServiceAccount: kubepod.AccessName(c.plan.Name, s.Name),
	}
	pod, err := kubepod.Spec(&c.b.opts.Pod, s, inv)
	if err != nil {
		return wfv1.Template{}, err
	}
	// Argo names the container of a template itself, and sets the pod's
	// restart policy, service account and security context from the
	// workflow's.
	ctr := &pod.Containers[0]
	ctr.Name = ""
	ctr.VolumeMounts = append([]corev1.VolumeMount{{Name: tmpVolume, MountPath: tmpDir}}, ctr.VolumeMounts...)
	if isContainer(s) {
		ctr.VolumeMounts = append(ctr.VolumeMounts, outputDirMounts(s)...)
	}
	t := wfv1.Template{
		Volumes:      append([]corev1.Volume{{Name: tmpVolume, VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}}, pod.Volumes...),
		NodeSelector: pod.NodeSelector,
		Tolerations:  pod.Tolerations,
		Affinity:     pod.Affinity,
	}
	if s.Task.Security != nil {
		// The workflow's pod security context is every other pod's; a
		// template's replaces it.
		t.SecurityContext = pod.SecurityContext
	}
	if len(s.Task.Access) > 0 {
		// The step's own account, whose token Argo's executor in the
		// pod uses too (see executorRules).
		t.ServiceAccountName = pod.ServiceAccountName
		t.AutomountServiceAccountToken = pod.AutomountServiceAccountToken
	}
	if isContainer(s) {
		if err := c.containerTask(s, &t); err != nil {
			return t, err
		}
	} else {
		// The step's name defaults to {{tasks.name}}, the DAG task
		// calling the template: Argo substitutes it into the parameter
		// before the parameters into the template. A fan-out instance
		// and a renamed step pass their name.
		t.Inputs.Parameters = []wfv1.Parameter{{Name: stepParam, Default: anyString("{{tasks.name}}")}, {Name: inputParam},
			{Name: instanceParam, Default: anyString("")}}
		t.Outputs.Parameters = []wfv1.Parameter{{Name: outputParam, ValueFrom: &wfv1.ValueFrom{Path: backends.DefaultOutputFile}}}
		if s.Cache.Enabled {
			m, err := c.memoize(s)
			if err != nil {
				return t, err
			}
			t.Memoize = m
		}
	}
	t.Container = ctr
	if d := pod.ActiveDeadlineSeconds; d != nil {
		t.ActiveDeadlineSeconds = ptr.To(intstr.FromInt(int(*d)))
		if t.Metadata.Annotations == nil {
			t.Metadata.Annotations = map[string]string{}
		}
		t.Metadata.Annotations[AnnotationTimeout] = s.Task.Timeout.String()
	}
	if err := c.retry(s, &t); err != nil {
		return t, err
	}
	return t, nil
}

// outputDirMounts returns the mounts that make the directories of a
// container task's output files exist when its command starts, as they do
// on the other backends (a command may write to {{outputs.Field}} at
// once): each directory below the emptyDir at tmpDir is the emptyDir's
// subdirectory of the same relative path, which the kubelet creates (with
// the emptyDir's mode, writable by any user), mounted at its path, so the
// files are the same seen through either mount.
func outputDirMounts(s *backends.Step) []corev1.VolumeMount {
	var dirs []string
	for _, o := range s.Task.Outputs {
		if d := path.Dir(o.Path); strings.HasPrefix(d, tmpDir+"/") && !slices.Contains(dirs, d) {
			dirs = append(dirs, d)
		}
	}
	slices.Sort(dirs)
	var out []corev1.VolumeMount
	for _, d := range dirs {
		out = append(out, corev1.VolumeMount{Name: tmpVolume, MountPath: d, SubPath: strings.TrimPrefix(d, tmpDir+"/")})
	}
	return out
}

// retry sets the retry strategy (and the on-demand fall-back) of t.
func (c *compiler) retry(s *backends.Step, t *wfv1.Template) error {
	// Lint rejected a pending timeout and a backoff factor that is not
	// whole (see lintStep).
	r := s.Task.Retry
	if r == nil || r.App+r.Infra == 0 {
		return nil
	}
	rs := &wfv1.RetryStrategy{
		Limit:       ptr.To(intstr.FromInt(r.App + r.Infra)),
		RetryPolicy: wfv1.RetryPolicyAlways,
		Expression:  retryExpression(*r, !isContainer(s)),
	}
	if b := r.Backoff; b.Initial > 0 {
		f := b.Factor
		if f == 0 {
			f = 2
		}
		rs.Backoff = &wfv1.Backoff{Duration: b.Initial.String(), Factor: ptr.To(intstr.FromInt(int(f)))}
		// Argo computes duration × factor^retries with no bound of its
		// own, so the cap is always set: Max, else task.MaxBackoffDelay,
		// which is also what task.Backoff.Delay caps at.
		rs.Backoff.Cap = task.MaxBackoffDelay.String()
		if b.Max > 0 {
			rs.Backoff.Cap = b.Max.String()
		}
	}
	t.RetryStrategy = rs
	if t.Metadata.Annotations == nil {
		t.Metadata.Annotations = map[string]string{}
	}
	t.Metadata.Annotations[AnnotationInfraRetries] = itoa(r.Infra)
	if r.App > 0 && r.Infra > 0 {
		t.Metadata.Annotations[AnnotationSharedRetryCount] = "true"
	}
	if r.OnDemandFallback && s.Resolved.OnDemand != nil {
		patch, err := onDemandPatch(s)
		if err != nil {
			return err
		}
		t.PodSpecPatch = exprTag("asInt(retries) >= " + itoa(r.Infra) + " ? " + exprString(patch) + " : '{}'")
		if t.Metadata.Annotations == nil {
			t.Metadata.Annotations = map[string]string{}
		}
		t.Metadata.Annotations[AnnotationOnDemandAfter] = itoa(r.Infra)
	}
	return nil
}

// infraExpression is true when the last attempt failed for an
// infrastructure reason: Argo marks a pod that was deleted, lost with its
// node or failed before its main container ran as Error; an evicted pod
// fails with a message naming the eviction; a task that returned an error
// wrapping task.ErrInfrastructure exits with backends.ExitInfrastructure;
// a task stopped by SIGTERM (a pod deleted or evicted, a node drained or
// preempted) exits with backends.ExitTerminated, unless the pod ran out
// of time, which the kubelet also ends with SIGTERM, and which Argo
// reports with the pod's message (deadlineMessage): that is the task's
// failure. infraFailure is the same rule in Go, for Watch.
var infraExpression = "lastRetry.status == 'Error' || lastRetry.message contains 'Evicted' || lastRetry.exitCode == '" +
	itoa(backends.ExitInfrastructure) + "' || (lastRetry.exitCode == '" + itoa(backends.ExitTerminated) +
	"' && !(lastRetry.message contains " + exprString(deadlineMessage) + "))"

// deadlineMessage is in the message of a pod the kubelet stopped because
// it ran past its activeDeadlineSeconds ("Pod was active on the node
// longer than the specified deadline"), which Argo makes the node's.
const deadlineMessage = "longer than the specified deadline"

// infraFailure reports whether an attempt that failed with Argo's phase,
// the main container's exit code ("" when unknown) and the node's message
// failed for an infrastructure reason, as infraExpression decides.
func infraFailure(phase wfv1.NodePhase, exitCode, message string) bool {
	return phase == wfv1.NodeError || strings.Contains(message, "Evicted") || exitCode == itoa(backends.ExitInfrastructure) ||
		(exitCode == itoa(backends.ExitTerminated) && !strings.Contains(message, deadlineMessage))
}

// permanentErrors matches the messages of nodes that Argo marks Error for
// a reason no retry can mend, as Argo v3.7 writes them:
//
//   - "failed to look-up entrypoint/cmd for image …": a template without a
//     command whose image's registry cannot be read by the controller;
//   - "Pod failed before main container starts due to ErrImagePull: …"
//     (or ImagePullBackOff, InvalidImageName, ErrImageNeverPull): the
//     image cannot be pulled;
//   - `pods "…" is forbidden: violates PodSecurity …`, `Pod "…" is
//     invalid: …`, `… is forbidden: …`: the API server rejected the pod
//     (Argo requeues quota and other transient errors without failing
//     the node, so a rejection that fails it is permanent).
const permanentErrors = `failed to look-up entrypoint/cmd|due to (ErrImagePull|ImagePullBackOff|InvalidImageName|ErrImageNeverPull)|violates PodSecurity| is (invalid|forbidden): `

// permanentExpression is true when the last attempt failed in a way that
// no retry can mend. Only Error nodes qualify: their messages are Argo's
// own, never text a task wrote.
var permanentExpression = "lastRetry.status == 'Error' && lastRetry.message matches " + exprString(permanentErrors)

// retryExpression decides whether Argo retries. Argo keeps one retry
// count; an application failure is retried while fewer than App retries
// were made in total, an infrastructure failure while the limit
// (App+Infra) allows. A permanent error (see permanentErrors) is never
// retried, nor is a Go task's exit status 2, a wrong invocation (see
// backends.InvokeCommand); for a container task, 2 is an exit status like
// any other.
func retryExpression(r task.Retry, goTask bool) string {
	never := permanentExpression
	if goTask {
		never = "lastRetry.exitCode == '2' || (" + never + ")"
	}
	app := "asInt(retries) < " + itoa(r.App)
	var retry string
	switch {
	case r.App == 0:
		retry = infraExpression
	case r.Infra == 0:
		retry = "!(" + infraExpression + ") && " + app
	default:
		retry = "(" + infraExpression + ") || " + app
	}
	return "!(" + never + ") && (" + retry + ")"
}

// onDemandPatch is the strategic merge patch of the pod spec that moves a
// preemptible pod to on-demand placement.
func onDemandPatch(s *backends.Step) (string, error) {
	spot, od := s.Resolved.Placement, s.Resolved.OnDemand
	sel := map[string]any{}
	for k := range spot.NodeSelector {
		sel[k] = nil
	}
	for k, v := range od.NodeSelector {
		sel[k] = v
	}
	p := map[string]any{"nodeSelector": sel, "tolerations": od.Tolerations, "affinity": od.Affinity}
	if od.Tolerations == nil {
		p["tolerations"] = []corev1.Toleration{}
	}
	b, err := json.Marshal(p)
	return string(b), err
}

const inputMark = `"@sluice-input@"`

// memoize returns the memoization of a cached step: its key is the
// SHA-256 of the same parts as the local backend's cache key, with the
// input canonicalized by Argo's toJson (object keys sorted).
func (c *compiler) memoize(s *backends.Step) (*wfv1.Memoize, error) {
	t := s.Task
	image := c.b.opts.Pod.ImageOf(t)
	b, err := json.Marshal(backends.CacheKeyParts{Task: t.Name, Kind: t.Kind, Image: image, Command: t.Command, Args: t.Args,
		Env: t.Env, Outputs: t.Outputs, Version: s.Cache.Version, Input: json.RawMessage(inputMark)})
	if err != nil {
		return nil, err
	}
	prefix, suffix, _ := strings.Cut(string(b), inputMark)
	in := "fromJSON(inputs.parameters." + inputParam + ")"
	if len(s.Cache.ExcludeInputs) > 0 {
		var keys []string
		for _, x := range s.Cache.ExcludeInputs {
			if j, _, ok := task.FieldByName(t.InputType, x); ok {
				x = j
			}
			keys = append(keys, exprString(x))
		}
		in = "sprig.omit(" + in + ", " + strings.Join(keys, ", ") + ")"
	}
	cm := c.b.opts.CacheConfigMap
	if cm == "" {
		cm = "sluice-cache"
	}
	return &wfv1.Memoize{
		Key:   exprTag("sprig.sha256sum(" + exprString(prefix) + " + toJson(" + in + ") + " + exprString(suffix) + ")"),
		Cache: &wfv1.Cache{ConfigMap: &corev1.ConfigMapKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: cm}}},
	}, nil
}

// containerFields returns the JSON names of the input fields a container
// task's command, args and env name, in order of first appearance.
func (c *compiler) containerFields(s *backends.Step) ([]string, error) {
	var out []string
	add := func(str string) error {
		for _, f := range c.placeholderFields(s.Task.InputType, str) {
			if !paramName.MatchString(f) {
				return unsupported(s, "input field %q is not a valid Argo parameter name; give it a JSON name of letters, digits, '-' and '_'", f)
			}
			if !slices.Contains(out, f) {
				out = append(out, f)
			}
		}
		return nil
	}
	for _, str := range slices.Concat(s.Task.Command, s.Task.Args) {
		if err := add(str); err != nil {
			return nil, err
		}
	}
	for _, e := range s.Task.Env {
		if err := add(e.Value); err != nil {
			return nil, err
		}
	}
	return out, nil
}

var placeholderRE = regexp.MustCompile(`\{\{\s*\.([A-Za-z_][A-Za-z0-9_]*)\s*\}\}`)

// placeholders returns the rewrite of a container task's command, args
// and env values: each {{.Field}} placeholder becomes the input parameter
// of the field, for Argo to fill in; each {{outputs.Field}} placeholder
// becomes the output's path in the container, here, as it does not
// depend on the input (and Argo would refuse an unknown variable). The
// outputs are filled in after the inputs, whose rewrites they never
// match, and the paths are not read again.
func (c *compiler) placeholders(s *backends.Step) func(string) string {
	var outputs strings.Builder
	for _, o := range s.Task.Outputs {
		outputs.WriteString(o.Field + "\x00" + o.Path + "\x00")
	}
	return func(str string) string {
		// Steps of one task share their strings: each is rewritten once.
		key := rewriteKey{in: s.Task.InputType, out: s.Task.OutputType, outputs: outputs.String(), s: str}
		if r, ok := c.rewrites[key]; ok {
			return r
		}
		orig := str
		str = placeholderRE.ReplaceAllStringFunc(str, func(m string) string {
			f := placeholderRE.FindStringSubmatch(m)[1]
			if j, _, ok := task.FieldByName(s.Task.InputType, f); ok {
				f = j
			}
			return "{{inputs.parameters." + inputPrefix + f + "}}"
		})
		out, _ := placeholder.RenderOutputs(str, s.Task.OutputPath) // Validate checked the names
		if c.rewrites == nil {
			c.rewrites = map[rewriteKey]string{}
		}
		c.rewrites[rewriteKey{in: s.Task.InputType, out: s.Task.OutputType, outputs: key.outputs, s: orig}] = out
		return out
	}
}

// rewriteKey is what the rewrite of a string of a container task depends
// on: its input and output types, its outputs' files and the string.
type rewriteKey struct {
	in, out reflect.Type
	outputs string
	s       string
}

// fieldsKey is what the input fields a string's placeholders name
// depend on.
type fieldsKey struct {
	in reflect.Type
	s  string
}

// placeholderFields returns the JSON names of the fields of input type in
// that the {{.Field}} placeholders of str name, in order (a name that is
// no field as written), computed once per type and string.
func (c *compiler) placeholderFields(in reflect.Type, str string) []string {
	key := fieldsKey{in, str}
	if f, ok := c.fields[key]; ok {
		return f
	}
	var out []string
	for _, f := range task.Placeholders(str) {
		if j, _, ok := task.FieldByName(in, f); ok {
			f = j
		}
		out = append(out, f)
	}
	if c.fields == nil {
		c.fields = map[fieldsKey][]string{}
	}
	c.fields[key] = out
	return out
}

// containerTask fills in the template of a container task, whose
// container the pod layer made (see placeholders): placeholders become
// input parameters, each output field an output parameter read from its
// file.
func (c *compiler) containerTask(s *backends.Step, t *wfv1.Template) error {
	fields, err := c.containerFields(s)
	if err != nil {
		return err
	}
	t.Inputs.Parameters = nil
	if c.takesStep(s) {
		t.Inputs.Parameters = []wfv1.Parameter{{Name: stepParam}}
	}
	for _, f := range fields {
		t.Inputs.Parameters = append(t.Inputs.Parameters, wfv1.Parameter{Name: inputPrefix + f})
	}
	var text []string
	for _, o := range s.Task.Outputs {
		if _, _, ok := task.FieldByName(s.Task.OutputType, o.Field); !ok || !paramName.MatchString(o.Field) {
			return unsupported(s, "output field %q of %v cannot be an Argo output parameter; give it a JSON name of letters, digits, '-' and '_'", o.Field, s.Task.OutputType)
		}
		if !strings.HasPrefix(o.Path, "/") {
			return unsupported(s, "output %q: path %q is not absolute", o.Field, o.Path)
		}
		t.Outputs.Parameters = append(t.Outputs.Parameters, wfv1.Parameter{Name: outputPrefix + o.Field, ValueFrom: &wfv1.ValueFrom{Path: o.Path}})
		if c.isStringOutput(s, o.Field) {
			text = append(text, o.Field)
		}
	}
	if len(text) > 0 {
		t.Metadata.Annotations = map[string]string{AnnotationTextOutputs: strings.Join(text, ",")}
	}
	if s.Cache.Enabled {
		t.Inputs.Parameters = append(t.Inputs.Parameters, wfv1.Parameter{Name: inputParam})
		m, err := c.memoize(s)
		if err != nil {
			return err
		}
		t.Memoize = m
	}
	return nil
}

// fieldValue is the text a {{.Field}} placeholder of a container task is
// replaced with: a string as is, anything else as JSON.
func (c *compiler) fieldValue(s *backends.Step, in backends.Input, raw json.RawMessage) (string, error) {
	if raw == nil {
		return "", unsupported(s, "input has no such field")
	}
	sub := backends.Input{Template: raw, Refs: in.Refs}
	if len(in.Refs) == 0 || !bytes.Contains(raw, []byte(`{"$sluice":`)) {
		var str string
		if json.Unmarshal(raw, &str) == nil {
			if strings.Contains(str, "{{") {
				return exprTag(exprString(str)), nil
			}
			return str, nil
		}
		return escapeLiteral(compactJSON(raw)), nil
	}
	for i := range in.Refs {
		if string(raw) == backends.Placeholder(i) {
			if t, ok, err := c.textExpr(in.Refs[i]); ok || err != nil {
				return exprTag(t), err
			}
			if p, str, ok := c.containerField(in.Refs[i]); ok {
				if str { // the text as Argo's executor read it: a plain tag
					return c.outputTag(in.Refs[i].Step, outputPrefix+in.Refs[i].Path[0]), nil
				}
				return exprTag("toJson(fromJSON(" + p + "))"), nil
			}
			e, err := c.refExpr(in.Refs[i])
			if err != nil {
				return "", err
			}
			return exprTag("type(fromJSON(" + e + ")) == 'string' ? fromJSON(" + e + ") : " + e), nil
		}
	}
	return c.inputTags(sub)
}

// inputTags renders an input as JSON text with Argo tags for its refs.
func (c *compiler) inputTags(in backends.Input) (string, error) {
	in.Template = json.RawMessage(escapeLiteral(string(in.Template)))
	return in.Render(func(i int) (string, error) { return c.refTag(in.Refs[i]) })
}

// inputExpr renders an input as an expression whose value is its JSON
// text; "#" is the fan-out element.
func (c *compiler) inputExpr(in backends.Input) (string, error) {
	const mark = "\x00"
	s, err := in.Render(func(i int) (string, error) { return mark + itoa(i) + mark, nil })
	if err != nil {
		return "", err
	}
	var parts []string
	for k, seg := range strings.Split(s, mark) {
		if k%2 == 0 {
			if seg != "" {
				parts = append(parts, exprString(seg))
			}
			continue
		}
		var i int
		fmt.Sscan(seg, &i)
		e, err := c.refExpr(in.Refs[i])
		if err != nil {
			return "", err
		}
		parts = append(parts, e)
	}
	return concat(parts), nil
}

// refTag returns the text that Argo replaces with the JSON of r.
func (c *compiler) refTag(r backends.Ref) (string, error) {
	if len(r.Path) == 0 {
		switch r.Kind {
		case backends.RefStep:
			if s := c.steps[r.Step]; s != nil && !(isContainer(s) && s.ForEach == nil) {
				return c.outputTag(r.Step, outputParam), nil
			}
		case backends.RefParam:
			if !c.rawParam(r.Param) {
				return "{{workflow.parameters." + r.Param + "}}", nil
			}
		case backends.RefMeta:
			if r.Meta == backends.MetaRunID { // a DNS name: no escaping
				return `"{{workflow.name}}"`, nil
			}
		case backends.RefConst:
			return escapeLiteral(compactJSON(r.Value)), nil
		}
	}
	if r.Kind == backends.RefConst {
		v, err := backends.Select(r.Value, r.Path)
		if err != nil {
			return "", err
		}
		return escapeLiteral(compactJSON(v)), nil
	}
	e, err := c.refExpr(r)
	if err != nil {
		return "", err
	}
	return exprTag(e), nil
}

// refExpr returns an expression whose value is the JSON text of r.
func (c *compiler) refExpr(r backends.Ref) (string, error) {
	if p, str, ok := c.containerField(r); ok {
		if str {
			return "toJson(" + p + ")", nil
		}
		return "toJson(fromJSON(" + p + "))", nil
	}
	var e string
	switch r.Kind {
	case backends.RefStep:
		s := c.steps[r.Step]
		if s == nil {
			return "", fmt.Errorf("argo: ref to unknown step %q", r.Step)
		}
		if isContainer(s) && s.ForEach == nil {
			e = c.containerOutput(s)
		} else {
			e = c.output(r.Step, outputParam)
		}
	case backends.RefParam:
		e = c.paramExpr(r.Param)
	case backends.RefMeta:
		t, err := metaText(r.Meta)
		if err != nil {
			return "", err
		}
		e = "toJson(" + t + ")"
	case backends.RefItem:
		e = "toJson(#)"
	case backends.RefConst:
		v, err := backends.Select(r.Value, r.Path)
		if err != nil {
			return "", err
		}
		return exprString(compactJSON(v)), nil
	case backends.RefCollect:
		parts := []string{"'['"}
		for i, el := range r.Elems {
			if i > 0 {
				parts = append(parts, "','")
			}
			x, err := c.refExpr(el)
			if err != nil {
				return "", err
			}
			parts = append(parts, x)
		}
		parts = append(parts, "']'")
		e = "(" + concat(parts) + ")"
	case backends.RefRun:
		e = c.runInfo()
	default:
		return "", fmt.Errorf("argo: ref kind %q: %w", r.Kind, errors.ErrUnsupported)
	}
	if len(r.Path) > 0 {
		v := "fromJSON(" + e + ")"
		for _, p := range r.Path {
			v = member(v, p)
		}
		e = "toJson(" + v + ")"
	}
	return e, nil
}

// containerOutput assembles the output object of container step s from
// its output parameters: a string field is the file's text (Argo's
// executor took one trailing line break off), any other field the file
// parsed as JSON.
func (c *compiler) containerOutput(s *backends.Step) string {
	var fields []string
	for _, o := range s.Task.Outputs {
		v := c.output(s.Name, outputPrefix+o.Field)
		if !c.isStringOutput(s, o.Field) {
			v = "fromJSON(" + v + ")"
		}
		fields = append(fields, exprString(o.Field)+": "+v)
	}
	return "toJson({ " + strings.Join(fields, ", ") + " })"
}

// containerField reports whether r is one output field of a container
// step that is not a fan-out, and returns then the expression of its
// output parameter and whether the field is a string: such a ref reads the
// parameter directly, without assembling the whole output object first.
func (c *compiler) containerField(r backends.Ref) (param string, str, ok bool) {
	if r.Kind != backends.RefStep || len(r.Path) != 1 {
		return "", false, false
	}
	s := c.steps[r.Step]
	if s == nil || !isContainer(s) || s.ForEach != nil {
		return "", false, false
	}
	for _, o := range s.Task.Outputs {
		if o.Field == r.Path[0] {
			return c.output(s.Name, outputPrefix+o.Field), c.isStringOutput(s, o.Field), true
		}
	}
	return "", false, false
}

// runInfo is the expression of the run's outcome for the exit handler:
// a backends.RunInfo from workflow.status and workflow.failures (a quoted
// JSON list of the failed nodes). Argo has no phase for a run that was
// shut down; its steps that were stopped fail with a message naming the
// shutdown strategy, which makes the run Canceled and keeps them out of
// the failed steps, as on the local backend.
func (c *compiler) runInfo() string {
	var pairs []string
	for _, s := range c.plan.Steps {
		pairs = append(pairs, "["+exprString(c.task(s.Name))+", "+exprString(s.Name)+"]")
	}
	failures := "(fromJSON(fromJSON(workflow.failures)) ?? [])"
	stopped := "#.message contains " + exprString(msgStopped) + " || #.message contains " + exprString(msgShutdown)
	failed := "map(filter([" + strings.Join(pairs, ", ") + "], #[0] in map(filter(" + failures + ", !(" + stopped + ")), #.displayName)), #[1])"
	phase := "workflow.status == 'Succeeded' ? 'Succeeded' : (any(" + failures + ", " + stopped + ") ? 'Canceled' : 'Failed')"
	return "toJson({ 'phase': " + phase + ", 'failed': len(" + failed + ") == 0 ? nil : " + failed + " })"
}

// decoded returns an expression of the value whose JSON text e is:
// toJson(x) decodes to x.
func decoded(e string) string {
	inner, ok := strings.CutPrefix(e, "toJson(")
	if ok && closesAtEnd(inner) {
		return inner[:len(inner)-1]
	}
	return "fromJSON(" + e + ")"
}

// closesAtEnd reports whether the parenthesis opened before s closes at
// its last byte, skipping string literals.
func closesAtEnd(s string) bool {
	depth := 1
	var quote byte
	for i := 0; i < len(s); i++ {
		ch := s[i]
		switch {
		case quote != 0:
			if ch == '\\' {
				i++
			} else if ch == quote {
				quote = 0
			}
		case ch == '\'' || ch == '"':
			quote = ch
		case ch == '(':
			depth++
		case ch == ')':
			depth--
			if depth == 0 {
				return i == len(s)-1
			}
		}
	}
	return false
}

// condExpr translates a condition into a boolean expression.
func (c *compiler) condExpr(cd backends.Condition) (string, error) {
	switch cd.Op {
	case "and", "or":
		op := " && "
		if cd.Op == "or" {
			op = " || "
		}
		var parts []string
		for _, a := range cd.Args {
			x, err := c.condExpr(a)
			if err != nil {
				return "", err
			}
			parts = append(parts, "("+x+")")
		}
		if len(parts) == 0 {
			return map[string]string{"and": "true", "or": "false"}[cd.Op], nil
		}
		return strings.Join(parts, op), nil
	case "not":
		if len(cd.Args) != 1 {
			return "", fmt.Errorf("not takes one operand, got %d", len(cd.Args))
		}
		x, err := c.condExpr(cd.Args[0])
		return "!(" + x + ")", err
	}
	if cd.Ref == nil {
		return "", fmt.Errorf("condition %q without a ref", cd.Op)
	}
	a, err := c.refExpr(*cd.Ref)
	if err != nil {
		return "", err
	}
	a = decoded(a)
	if cd.Op == "true" {
		return a + " == true", nil
	}
	var b string
	if cd.Other != nil {
		if b, err = c.refExpr(*cd.Other); err != nil {
			return "", err
		}
	} else {
		b = exprString(compactJSON(cd.Value))
	}
	b = decoded(b)
	switch cd.Op {
	case "==", "!=", "<", "<=", ">", ">=":
		return a + " " + cd.Op + " " + b, nil
	}
	return "", fmt.Errorf("unknown operator %q: %w", cd.Op, errors.ErrUnsupported)
}

// checkCommands makes sure every step's container has a command, after
// BeforeEmit (which may set one). Without a command Argo's controller
// looks the image's entrypoint up in its registry before it creates the
// pod, and every node of an image in an offline or private registry
// errors ("failed to look-up entrypoint/cmd for image …").
func (c *compiler) checkCommands(spec *wfv1.WorkflowSpec) error {
	byName := make(map[string]*wfv1.Template, len(spec.Templates))
	for i := range spec.Templates {
		byName[spec.Templates[i].Name] = &spec.Templates[i]
	}
	all := slices.Clone(c.plan.Steps)
	if c.plan.Exit != nil {
		all = append(all, *c.plan.Exit)
	}
	var l field.List
	goTask := false
	for i := range all {
		s := &all[i]
		t := byName[c.tmplOf[s.Name]]
		if t == nil || t.Container == nil || len(t.Container.Command) > 0 {
			continue
		}
		if !isContainer(s) {
			goTask = true
			continue
		}
		name := s.DisplayName
		if name == "" {
			name = s.Name
		}
		l.Add(field.Required(field.NewPath("pipeline", "tasks").Key(name).Child("command"),
			"Argo needs the container's command: without one its controller looks the image's entrypoint up in the registry, which fails for offline and private registries; set it with WithCommand (the image's ENTRYPOINT)"))
	}
	var errs []error
	if goTask {
		errs = append(errs, errNoCommand)
	}
	if err := l.Err(); err != nil {
		errs = append(errs, fmt.Errorf("argo: %w", err))
	}
	return errors.Join(errs...)
}

var errNoCommand = errors.New(`argo: Options.Pod.Command is not set: Argo needs the path of the pipeline program inside the image ` +
	`(for an image built with "ko build ./cmd/prog" it is /ko-app/prog); without it Argo's controller looks the image's entrypoint up in the registry, ` +
	`which fails for offline and private registries. Set it, for example argo.New(client, &argo.Options{Pod: kubepod.Options{Image: img, Command: []string{"/ko-app/prog"}}})`)

// checkSize enforces the size budget on the rendered document and on
// every parameter value.
func (c *compiler) checkParams(spec *wfv1.WorkflowSpec) error {
	maxParam := c.b.opts.MaxParamSize
	if maxParam <= 0 {
		maxParam = DefaultMaxParamSize
	}
	for _, p := range spec.Arguments.Parameters {
		if n := len(p.Value.String()); n > maxParam {
			return fmt.Errorf("argo: parameter %q is %d bytes, over the %d-byte limit per parameter: %w", p.Name, n, maxParam, ErrTooLarge)
		}
	}
	for _, t := range spec.Templates {
		if t.DAG == nil {
			continue
		}
		for _, dt := range t.DAG.Tasks {
			for _, p := range dt.Arguments.Parameters {
				if n := len(p.Value.String()); n > maxParam {
					return fmt.Errorf("argo: step %q: parameter %q is %d bytes, over the %d-byte limit per parameter: %w", dt.Name, p.Name, n, maxParam, ErrTooLarge)
				}
			}
		}
	}
	return nil
}

// costliest says what costs the most in spec, for a size budget's error:
// the largest DAG tasks (their arguments and dependencies, which grow
// with each step) and templates (each shared by the steps that run it),
// by their size in JSON, about that of their YAML, and the ways out.
func costliest(spec *wfv1.WorkflowSpec) string {
	type part struct {
		what string
		n    int
	}
	var parts []part
	tasks, taskBytes := 0, 0
	for _, t := range spec.Templates {
		if t.DAG != nil {
			for _, dt := range t.DAG.Tasks {
				b, _ := json.Marshal(dt)
				parts = append(parts, part{"step " + dt.Name, len(b)})
				tasks++
				taskBytes += len(b)
			}
			continue
		}
		b, _ := json.Marshal(t)
		parts = append(parts, part{"template " + t.Name, len(b)})
	}
	slices.SortStableFunc(parts, func(a, b part) int { return b.n - a.n })
	var top []string
	for _, p := range parts[:min(5, len(parts))] {
		top = append(top, fmt.Sprintf("%s (%d bytes)", p.what, p.n))
	}
	avg := 0
	if tasks > 0 {
		avg = taskBytes / tasks
	}
	return fmt.Sprintf("the largest parts are %s, and a DAG task takes %d bytes on average; "+
		"make the largest smaller (a big constant input can be a parameter or an artifact), "+
		"split the pipeline into pipelines that run one after another, "+
		"or raise Options.MaxSize if your API server and etcd take larger objects (etcd's default request limit is 1.5 MiB)",
		strings.Join(top, ", "), avg)
}

// MaxInlineOutput is the most bytes of a Go task's output JSON that an
// Argo run carries in a workflow parameter; a longer output is stored in
// the run's artifact store by the task (see package artifact, "Values too
// large to travel in-band"), so that a workflow of many steps stays
// inside Argo's 1 MiB object limit.
const MaxInlineOutput = 16 << 10

// MaxInlineItems is the in-band limit of the output of a step whose
// output (or a field of it) is the list a fan-out iterates over: Argo
// expands the list from the workflow's own parameters, so it must stay
// in-band. Compile warns about every such fan-out.
const MaxInlineItems = 256 << 10

// artifactEnv is the task mode's environment of a Go task's template:
// the run's artifact store (when the plan names one), the in-band limit,
// the run's id (the workflow's name) and the fan-out instance.
func (c *compiler) artifactEnv(s *backends.Step) []corev1.EnvVar {
	limit := MaxInlineOutput
	if c.feedsFanOut(s.Name) {
		limit = MaxInlineItems
	}
	env := []corev1.EnvVar{
		{Name: backends.InlineMaxEnv, Value: strconv.Itoa(limit)},
		{Name: backends.RunIDEnv, Value: "{{workflow.name}}"},
		{Name: backends.InstanceEnv, Value: "{{inputs.parameters." + instanceParam + "}}"},
	}
	if c.plan.Artifacts != "" {
		env = append(env, corev1.EnvVar{Name: backends.ArtifactsEnv, Value: c.plan.Artifacts})
	}
	return env
}

// feedsFanOut reports whether the output of step name is the list some
// fan-out iterates over.
func (c *compiler) feedsFanOut(name string) bool {
	if c.feeds == nil {
		c.feeds = map[string]bool{}
		for i := range c.plan.Steps {
			if fe := c.plan.Steps[i].ForEach; fe != nil && fe.Items.Kind == backends.RefStep {
				c.feeds[fe.Items.Step] = true
			}
		}
	}
	return c.feeds[name]
}

// warnings are what Compile warns about: fan-outs whose list Argo must
// carry in-band.
func (c *compiler) warnings() []string {
	var out []string
	for i := range c.plan.Steps {
		s := &c.plan.Steps[i]
		if fe := s.ForEach; fe != nil && fe.Items.Kind == backends.RefStep {
			out = append(out, fmt.Sprintf("step %q fans out over %s: Argo expands the list from the workflow's parameters, so it travels in-band "+
				"(step %q may output up to %d KiB; a longer output fails the run); keep the elements few and small, e.g. indices or artifact descriptions rather than data",
				s.Name, fe.Items, fe.Items.Step, MaxInlineItems>>10))
		}
	}
	return out
}

package kubejob

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/sluice-ml/sluice/backends"
	"github.com/sluice-ml/sluice/backends/kubepod"
	"github.com/sluice-ml/sluice/internal/field"
	"github.com/sluice-ml/sluice/internal/placeholder"
	"github.com/sluice-ml/sluice/task"
)

const (
	// exitInvalid is the exit status of a wrong task invocation (see
	// backends.InvokeCommand); retrying it cannot help.
	exitInvalid = 2
)

type compiler struct {
	b     *Backend
	plan  *backends.Plan
	runID string
	names map[string]string // step name -> Job name
}

func (b *Backend) compile(plan *backends.Plan, opts *backends.CompileOptions) (*compiled, error) {
	c := &compiler{b: b, plan: plan}
	if err := kubepod.CheckStore(plan.Artifacts); err != nil {
		return nil, fmt.Errorf("kubejob: %w: %w", err, errors.ErrUnsupported)
	}
	var err error
	if c.runID, err = runID(plan.Name, b.opts.RunID); err != nil {
		return nil, err
	}
	steps := c.plan.AllSteps()
	var nameErrs []*field.Error
	c.names, nameErrs = jobNames(c.runID, steps)
	access, accessErrs := kubepod.AccessOf("kubejob", &c.b.opts.Pod, plan, nil)
	if errs := append(nameErrs, accessErrs...); len(errs) > 0 {
		return nil, backends.LintErrors(errs...)
	}
	a := &compiled{plan: plan, warn: kubepod.SecurityWarnings(&c.b.opts.Pod, plan)}
	a.objs.sa, a.objs.role, a.objs.rb = c.rbac()
	a.objs.access = access
	a.objs.jobs = make([]*batchv1.Job, 0, len(steps))
	for _, s := range steps {
		j, err := c.job(s)
		if err != nil {
			return nil, err
		}
		a.objs.jobs = append(a.objs.jobs, j)
	}
	if opts != nil && opts.BeforeEmit != nil {
		if err := opts.BeforeEmit(func(target any) bool { return a.objs.as(plan, target) }); err != nil {
			return nil, err
		}
	}
	objs := append([]any{a.objs.sa, a.objs.role, a.objs.rb}, a.objs.access.Objects()...)
	if b.opts.InCluster {
		objs = append(objs, c.orchestratorJob())
	}
	a.docs = make([][]byte, 0, len(objs)+len(a.objs.jobs))
	for _, obj := range objs {
		doc, err := kubepod.Render(obj)
		if err != nil {
			return nil, err
		}
		a.docs = append(a.docs, doc)
	}
	for _, j := range a.objs.jobs {
		doc, err := kubepod.Render(j)
		if err != nil {
			return nil, err
		}
		a.docs = append(a.docs, doc)
	}
	return a, nil
}

func isContainer(s *backends.Step) bool { return s.Task.Kind == task.KindContainer }

func unsupported(s *backends.Step, format string, args ...any) error {
	return fmt.Errorf("kubejob: step %q: %s: %w", s.Name, fmt.Sprintf(format, args...), errors.ErrUnsupported)
}

// meta returns object metadata with the user's labels and annotations
// under the given sluice.dev ones.
func (c *compiler) meta(name string, labels, annotations map[string]string) metav1.ObjectMeta {
	o := &c.b.opts.Pod
	m := metav1.ObjectMeta{Name: name, Namespace: o.Namespace}
	l := maps.Clone(o.Labels)
	if l == nil {
		l = map[string]string{}
	}
	maps.Copy(l, labels)
	m.Labels = l
	an := maps.Clone(o.Annotations)
	if an == nil {
		an = map[string]string{}
	}
	maps.Copy(an, annotations)
	if len(an) > 0 {
		m.Annotations = an
	}
	return m
}

// ownMeta is meta for labels and annotations made for this object alone,
// which it may keep: with no labels (annotations) of the user's to put
// under them, they are the object's own, not copies.
func (c *compiler) ownMeta(name string, labels, annotations map[string]string) metav1.ObjectMeta {
	o := &c.b.opts.Pod
	m := metav1.ObjectMeta{Name: name, Namespace: o.Namespace}
	if len(o.Labels) == 0 {
		m.Labels = labels
	} else {
		m.Labels = maps.Clone(o.Labels)
		maps.Copy(m.Labels, labels)
	}
	if len(o.Annotations) == 0 {
		if len(annotations) > 0 {
			m.Annotations = annotations
		}
	} else {
		m.Annotations = maps.Clone(o.Annotations)
		maps.Copy(m.Annotations, annotations)
	}
	return m
}

// rbac returns the orchestrator's ServiceAccount, Role and RoleBinding,
// all of one name, shared by the runs of the pipeline in the namespace.
func (c *compiler) rbac() (*corev1.ServiceAccount, *rbacv1.Role, *rbacv1.RoleBinding) {
	name := orchestratorName(c.plan.Name, c.b.opts.OrchestratorServiceAccount)
	labels := map[string]string{LabelPipeline: c.plan.Name}
	sa := &corev1.ServiceAccount{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ServiceAccount"},
		ObjectMeta: c.meta(name, labels, nil),
	}
	role := &rbacv1.Role{
		TypeMeta:   metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "Role"},
		ObjectMeta: c.meta(name, labels, nil),
		Rules: []rbacv1.PolicyRule{
			{
				APIGroups: []string{"batch"},
				Resources: []string{"jobs"},
				Verbs: []string{
					"create", // start a step's Job once its dependencies are done
					"delete", // cancel a run (background propagation removes the pods)
					"get",    // resume: a create that finds the Job is checked, not repeated
					"list",   // informer: the run's Jobs, by label
					"watch",  // informer: follow the run's Jobs without polling
				},
			},
			{
				APIGroups: []string{""},
				Resources: []string{"pods"},
				Verbs: []string{
					"get",   // is the pod a failed Job names gone, or not in the informer yet?
					"list",  // informer: the run's pods, by label
					"watch", // informer: see disruptions (DisruptionTarget) as they happen
				},
			},
			{
				APIGroups: []string{""},
				Resources: []string{"configmaps"},
				Verbs: []string{
					"create", // the run's record (owner of its Jobs); cache entries
					"delete", // the record of an ended run that made no Job
					"get",    // cache lookups
					"list",   // informer: the run's record, by label
					"patch",  // mark the run canceled; hand an ended run's record to its Jobs
					"watch",  // informer: see a cancel made by another process
				},
			},
		},
	}
	rb := &rbacv1.RoleBinding{
		TypeMeta:   metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "RoleBinding"},
		ObjectMeta: c.meta(name, labels, nil),
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: name, Namespace: c.b.opts.Pod.Namespace}},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: name},
	}
	return sa, role, rb
}

// job returns the Job template of step s.
func (c *compiler) job(s *backends.Step) (*batchv1.Job, error) {
	o := &c.b.opts
	labels := map[string]string{LabelPipeline: c.plan.Name, LabelRun: c.runID, LabelStep: s.Name}
	ann, err := c.annotations(s)
	if err != nil {
		return nil, err
	}
	pod, err := c.podSpec(s)
	if err != nil {
		return nil, err
	}
	ttl := o.TTLSecondsAfterFinished
	if ttl == 0 {
		ttl = DefaultTTLSecondsAfterFinished
	}
	meta := c.ownMeta(c.names[s.Name], labels, ann)
	// The pod template gets the same labels, so the orchestrator's pod
	// informer selects a run's pods as it selects its Jobs.
	tmplMeta := metav1.ObjectMeta{Labels: maps.Clone(meta.Labels)}
	spec := batchv1.JobSpec{
		// A template never runs as it is: the orchestrator creates the
		// step's Job unsuspended, with the resolved input. Applied by
		// hand, it sits suspended.
		Suspend:      ptr.To(true),
		BackoffLimit: ptr.To(int32(appBudget(s))),
		// A replacement pod starts only once the failed one is gone, so
		// two attempts of a step never run at once.
		PodReplacementPolicy: ptr.To(batchv1.Failed),
		PodFailurePolicy:     c.podFailurePolicy(s),
		Template:             corev1.PodTemplateSpec{ObjectMeta: tmplMeta, Spec: pod},
	}
	if ttl > 0 {
		spec.TTLSecondsAfterFinished = ptr.To(ttl)
	}
	return &batchv1.Job{
		TypeMeta:   metav1.TypeMeta{APIVersion: "batch/v1", Kind: "Job"},
		ObjectMeta: meta,
		Spec:       spec,
	}, nil
}

func appBudget(s *backends.Step) int {
	if s.Task.Retry == nil {
		return 0
	}
	return s.Task.Retry.App
}

// podFailurePolicy: a disruption (preemption, eviction, node drain or
// loss) fails the Job at once, and so do a Go task's exit status 3 (the
// task reported an infrastructure failure) and 2 (a wrong invocation) and
// any task's exit status 143 (stopped by SIGTERM: a pod deleted, or out
// of time). Each has its own rule, so the rule index in the Job's Failed
// condition ("… matching FailJob rule at index N") says which it was even
// when the pod is gone (see failJobRule). The orchestrator then decides
// on the retry: the next Job while the Infra budget lasts, or, for a
// timeout, while the App budget does. Every other failure counts against
// backoffLimit, the App budget, and the Job controller retries it.
//
// Ignore would have the Job controller replace a disrupted pod itself,
// but then the replacement starts before the orchestrator has counted
// the disruption, so neither the Infra budget nor the on-demand fall-back
// could be applied without killing a pod that is already starting.
func (c *compiler) podFailurePolicy(s *backends.Step) *batchv1.PodFailurePolicy {
	codes := containerExitRules
	if !isContainer(s) {
		codes = goExitRules
	}
	// One allocation per kind of part, each rule's its own element.
	rules := make([]batchv1.PodFailurePolicyRule, 1+len(codes))
	rules[0] = batchv1.PodFailurePolicyRule{
		Action: batchv1.PodFailurePolicyActionFailJob,
		OnPodConditions: []batchv1.PodFailurePolicyOnPodConditionsPattern{{
			Type: corev1.DisruptionTarget, Status: corev1.ConditionTrue,
		}},
	}
	reqs := make([]batchv1.PodFailurePolicyOnExitCodesRequirement, len(codes))
	values := make([]int32, len(codes))
	names := make([]string, len(codes))
	for i, code := range codes {
		values[i], names[i] = code, ContainerName
		reqs[i] = batchv1.PodFailurePolicyOnExitCodesRequirement{
			ContainerName: &names[i],
			Operator:      batchv1.PodFailurePolicyOnExitCodesOpIn,
			Values:        values[i : i+1 : i+1],
		}
		rules[1+i] = batchv1.PodFailurePolicyRule{Action: batchv1.PodFailurePolicyActionFailJob, OnExitCodes: &reqs[i]}
	}
	return &batchv1.PodFailurePolicy{Rules: rules}
}

// The exit statuses that fail a step's Job at once (podFailurePolicy),
// one rule each.
var (
	containerExitRules = []int32{backends.ExitTerminated}
	goExitRules        = []int32{backends.ExitInfrastructure, exitInvalid, backends.ExitTerminated}
)

// annotations records the step's place in the run for the orchestrator.
func (c *compiler) annotations(s *backends.Step) (map[string]string, error) {
	deps := s.DependsOn
	if deps == nil {
		deps = []string{}
	}
	ann := map[string]string{AnnotationDependsOn: stringsJSON(deps), AnnotationTemplate: "true"}
	if s.DisplayName != "" && s.DisplayName != s.Name {
		ann[AnnotationDisplayName] = s.DisplayName
	}
	if s.When != nil {
		ann[AnnotationWhen] = s.When.String()
	}
	if s.ForEach != nil {
		ann[AnnotationForEach] = mustJSON(struct {
			Items       string `json:"items"`
			Parallelism int    `json:"parallelism"`
		}{s.ForEach.Items.String(), s.ForEach.Parallelism})
	}
	if c.plan.Exit == s {
		ann[AnnotationExitHandler] = "true"
	}
	if r := s.Task.Retry; r != nil && (r.App > 0 || r.Infra > 0 || r.PendingTimeout > 0) {
		ann[AnnotationRetry] = mustJSON(retryJSON(*r))
		if od := s.Resolved.OnDemand; r.OnDemandFallback && od != nil {
			ann[AnnotationOnDemand] = mustJSON(Placement{NodeSelector: od.NodeSelector, Tolerations: od.Tolerations, Affinity: od.Affinity})
		}
	}
	if s.Cache.Enabled {
		ann[AnnotationCache] = mustJSON(s.Cache)
	}
	if isContainer(s) {
		in, err := renderInput(s.Input)
		if err != nil {
			return nil, fmt.Errorf("kubejob: step %q: %w", s.Name, err)
		}
		ann[AnnotationInput] = in
		if len(s.Task.Outputs) > 0 {
			ann[AnnotationOutputs] = mustJSON(s.Task.Outputs)
		}
	}
	return ann, nil
}

// Placement is the JSON form of the annotation sluice.dev/on-demand-placement:
// the pod spec fields that place the on-demand fall-back Job.
type Placement struct {
	NodeSelector map[string]string   `json:"nodeSelector,omitempty"`
	Tolerations  []corev1.Toleration `json:"tolerations,omitempty"`
	Affinity     *corev1.Affinity    `json:"affinity,omitempty"`
}

// retry is the JSON form of the annotation sluice.dev/retry: task.Retry
// with durations as strings ("1.5s").
type retry struct {
	App              int     `json:"app"`
	Infra            int     `json:"infra"`
	BackoffInitial   string  `json:"backoffInitial,omitempty"`
	BackoffFactor    float64 `json:"backoffFactor,omitempty"`
	BackoffMax       string  `json:"backoffMax,omitempty"`
	OnDemandFallback bool    `json:"onDemandFallback,omitempty"`
	PendingTimeout   string  `json:"pendingTimeout,omitempty"`
}

func retryJSON(r task.Retry) retry {
	out := retry{App: r.App, Infra: r.Infra, BackoffFactor: r.Backoff.Factor, OnDemandFallback: r.OnDemandFallback}
	if r.Backoff.Initial > 0 {
		out.BackoffInitial = r.Backoff.Initial.String()
	}
	if r.Backoff.Max > 0 {
		out.BackoffMax = r.Backoff.Max.String()
	}
	if r.PendingTimeout > 0 {
		out.PendingTimeout = r.PendingTimeout.String()
	}
	return out
}

// stringsJSON is mustJSON of a list of names, written directly when no
// name needs escaping, as step names (DNS-1123 labels) never do.
func stringsJSON(names []string) string {
	n := 2
	for _, s := range names {
		for i := 0; i < len(s); i++ {
			if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
				return mustJSON(names)
			}
		}
		n += len(s) + 3
	}
	b := make([]byte, 0, n)
	b = append(b, '[')
	for i, s := range names {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '"')
		b = append(b, s...)
		b = append(b, '"')
	}
	b = append(b, ']')
	return string(b)
}

// mustJSON marshals values that cannot fail to marshal (plain data).
func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("kubejob: marshal %T: %v", v, err))
	}
	return string(b)
}

// podSpec returns the pod of step s, from the pod layer.
func (c *compiler) podSpec(s *backends.Step) (corev1.PodSpec, error) {
	inv := kubepod.Invocation{Step: s.Name, OutputFile: backends.TerminationLog, ServiceAccount: kubepod.AccessName(c.plan.Name, s.Name)}
	if !isContainer(s) {
		in, err := renderInput(s.Input)
		if err != nil {
			return corev1.PodSpec{}, fmt.Errorf("kubejob: step %q: %w", s.Name, err)
		}
		if len(in) > MaxInputArg {
			return corev1.PodSpec{}, fmt.Errorf("kubejob: step %q: input template is %d bytes, over the %d-byte limit of a command-line argument; pass large data by URI: %w",
				s.Name, len(in), MaxInputArg, ErrTooLarge)
		}
		inv.Input = in
		inv.Env = artifactEnv(c.plan.Artifacts, MaxTerminationMessage)
	}
	// A container task's input placeholders ({{.Field}}) stay for the
	// orchestrator to fill in from the resolved input when it creates the
	// Job; its output placeholders ({{outputs.Field}}) are the output
	// paths in the container, which the orchestrator fills in alike.
	inv.Rewrite = func(str string) string {
		if !strings.Contains(str, "outputs.") {
			return str // no {{outputs.Field}}: nothing to render
		}
		out, _ := placeholder.RenderOutputs(str, s.Task.OutputPath) // Validate checked the names
		return out
	}
	pod, err := kubepod.Spec(&c.b.opts.Pod, s, inv)
	if err != nil {
		return corev1.PodSpec{}, err
	}
	ctr := &pod.Containers[0]
	// A Go task that fails writes its error to the termination message;
	// any other container's failure leaves the tail of its log there: the
	// attempt's message in the run status.
	ctr.TerminationMessagePolicy = corev1.TerminationMessageFallbackToLogsOnError
	if isContainer(s) {
		ctr.TerminationMessagePath = backends.TerminationLog
		switch outs := s.Task.Outputs; len(outs) {
		case 0:
		case 1:
			// The kubelet reads the one output file as the termination
			// message, where the orchestrator finds it.
			ctr.TerminationMessagePath = outs[0].Path
		default:
			return corev1.PodSpec{}, unsupported(s, "a container task's output leaves its pod as the termination message, one file of at most %d bytes, and this task has %d output files; give the task an output type with one field (a struct field may hold a JSON object) or make it a Go task", MaxTerminationMessage, len(outs))
		}
	}
	return pod, nil
}

// renderInput renders a step's input template with each ref as ${REF}
// ("${train}", "${params.lr}", "${item}", "${run}"), constants inline and
// collected lists as JSON lists of their elements. The result is not JSON
// until the orchestrator substitutes the refs' values.
func renderInput(in backends.Input) (string, error) {
	b, err := appendInput(nil, in)
	return string(b), err
}

// appendInput appends renderInput of in to b: in.Render with refText as
// the replacement, without a string for each ref.
func appendInput(b []byte, in backends.Input) ([]byte, error) {
	t := in.Template
	b = slices.Grow(b, len(t))
	for {
		k := bytes.Index(t, inputPlaceholder)
		if k < 0 {
			return append(b, t...), nil
		}
		b = append(b, t[:k]...)
		t = t[k+len(inputPlaceholder):]
		end := bytes.IndexByte(t, '}')
		if end < 0 {
			return nil, fmt.Errorf("backends: malformed input template")
		}
		i, err := strconv.Atoi(string(t[:end]))
		if err != nil || i < 0 || i >= len(in.Refs) {
			return nil, fmt.Errorf("backends: input template names ref %q of %d", t[:end], len(in.Refs))
		}
		b = appendRefText(b, in.Refs[i])
		t = t[end+1:]
	}
}

// inputPlaceholder starts every placeholder of an input template.
var inputPlaceholder = []byte(strings.TrimSuffix(backends.Placeholder(0), "0}"))

// appendRefText appends refText of r to b.
func appendRefText(b []byte, r backends.Ref) []byte {
	switch {
	case r.Kind == backends.RefStep:
		// r.String(), without building it: the step, then the path.
		b = append(b, "${"...)
		b = append(b, r.Step...)
		for _, p := range r.Path {
			b = append(b, '.')
			b = append(b, p...)
		}
		return append(b, '}')
	case r.Kind == backends.RefCollect && len(r.Path) == 0:
		b = append(b, '[')
		for i, e := range r.Elems {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendRefText(b, e)
		}
		return append(b, ']')
	}
	return append(b, refText(r)...)
}

func refText(r backends.Ref) string {
	switch {
	case r.Kind == backends.RefConst && len(r.Path) == 0:
		var b bytes.Buffer
		if json.Compact(&b, r.Value) == nil {
			return b.String()
		}
		return string(r.Value)
	case r.Kind == backends.RefCollect && len(r.Path) == 0:
		parts := make([]string, len(r.Elems))
		for i, e := range r.Elems {
			parts[i] = refText(e)
		}
		return "[" + strings.Join(parts, ",") + "]"
	}
	return "${" + r.String() + "}"
}

// orchestratorJob returns the Job that runs the orchestrator of the run in
// the cluster: the pipeline program's "run -backend kubejob -run-id RUN"
// with the run's parameters, as the orchestrator's ServiceAccount.
func (c *compiler) orchestratorJob() *batchv1.Job {
	o := &c.b.opts
	args := []string{"run", "-backend", "kubejob", "-run-id", c.runID}
	for _, p := range c.plan.Params {
		v := p.Value
		if v == nil {
			v = p.Default
		}
		text := string(v)
		var str string
		if json.Unmarshal(v, &str) == nil {
			text = str // string parameters are given raw on the command line
		}
		args = append(args, "-p", p.Name+"="+text)
	}
	labels := c.meta("", map[string]string{LabelPipeline: c.plan.Name, LabelRun: c.runID, LabelRole: RoleOrchestrator}, nil).Labels
	ctr := corev1.Container{
		Name:                     ContainerName,
		Image:                    o.Pod.Image,
		ImagePullPolicy:          o.Pod.ImagePullPolicy,
		Command:                  slices.Clone(o.Pod.Command),
		Args:                     args,
		Env:                      []corev1.EnvVar{{Name: EnvOrchestrator, Value: "1"}},
		SecurityContext:          o.Pod.ContainerSecurity(),
		TerminationMessagePolicy: corev1.TerminationMessageFallbackToLogsOnError,
		Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
			corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("128Mi"),
		}},
	}
	spec := batchv1.JobSpec{
		// A crashed orchestrator is started again and resumes the run.
		BackoffLimit: ptr.To(int32(3)),
		PodFailurePolicy: &batchv1.PodFailurePolicy{Rules: []batchv1.PodFailurePolicyRule{
			{
				// Evicted or preempted: resume elsewhere, free of charge.
				Action:          batchv1.PodFailurePolicyActionIgnore,
				OnPodConditions: []batchv1.PodFailurePolicyOnPodConditionsPattern{{Type: corev1.DisruptionTarget, Status: corev1.ConditionTrue}},
			},
			{
				// 1: the run failed; 2: the program or its pipeline is
				// invalid. Running it again changes neither.
				Action: batchv1.PodFailurePolicyActionFailJob,
				OnExitCodes: &batchv1.PodFailurePolicyOnExitCodesRequirement{
					ContainerName: ptr.To(ContainerName), Operator: batchv1.PodFailurePolicyOnExitCodesOpIn, Values: []int32{1, 2},
				},
			},
		}},
		PodReplacementPolicy: ptr.To(batchv1.Failed),
		Template: corev1.PodTemplateSpec{
			ObjectMeta: metav1.ObjectMeta{Labels: labels},
			Spec: corev1.PodSpec{
				RestartPolicy:      corev1.RestartPolicyNever,
				ServiceAccountName: orchestratorName(c.plan.Name, o.OrchestratorServiceAccount),
				SecurityContext:    o.Pod.PodSecurity(),
				Containers:         []corev1.Container{ctr},
			},
		},
	}
	ttl := o.TTLSecondsAfterFinished
	if ttl == 0 {
		ttl = DefaultTTLSecondsAfterFinished
	}
	if ttl > 0 {
		spec.TTLSecondsAfterFinished = ptr.To(ttl)
	}
	return &batchv1.Job{
		TypeMeta:   metav1.TypeMeta{APIVersion: "batch/v1", Kind: "Job"},
		ObjectMeta: c.meta(orchestratorJobName(c.runID), labels, nil),
		Spec:       spec,
	}
}

// artifactEnv is the task mode's environment for the run's artifact store
// root ("" for none) and the in-band limit of outputs (see
// backends.ArtifactsEnv). The run's id and the instance are added when
// each Job is created.
func artifactEnv(root string, inlineMax int) []corev1.EnvVar {
	env := []corev1.EnvVar{{Name: backends.InlineMaxEnv, Value: strconv.Itoa(inlineMax)}}
	if root != "" {
		env = append(env, corev1.EnvVar{Name: backends.ArtifactsEnv, Value: root})
	}
	return env
}

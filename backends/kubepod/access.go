package kubepod

import (
	"cmp"
	"maps"
	"slices"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/sluice-ml/sluice/backends"
	"github.com/sluice-ml/sluice/internal/field"
	"github.com/sluice-ml/sluice/internal/naming"
)

// Labels of the objects [AccessOf] returns.
const (
	// LabelPipeline is the pipeline's DNS-1123 name.
	LabelPipeline = "sluice.dev/pipeline"
	// LabelStep is the step's DNS-1123 name.
	LabelStep = "sluice.dev/step"
)

// AccessName returns the name of the ServiceAccount of step of pipeline
// that has task.Access, and of its Roles and RoleBindings:
// "<pipeline>-<step>-access", fitted to 63 characters with a short stable
// hash of the whole name when longer (see internal/naming). It is a
// DNS-1123 label, never the name of another step's account, and never
// the kubejob orchestrator's ("<pipeline>-orchestrator").
func AccessName(pipeline, step string) string {
	return naming.Fit(pipeline+"-"+step+"-access", naming.MaxLabel)
}

// Access is the RBAC of the steps of a plan that have task.Access: for
// each such step a ServiceAccount of its own in the run's namespace and,
// in each namespace its Access names, a Role with the step's rules and a
// RoleBinding of that Role to the ServiceAccount. Each list is sorted by
// namespace, then name.
type Access struct {
	ServiceAccounts []*corev1.ServiceAccount
	Roles           []*rbacv1.Role
	RoleBindings    []*rbacv1.RoleBinding
}

// Objects returns the objects in the order they are applied and
// rendered: the ServiceAccounts, then the Roles, then the RoleBindings.
func (a *Access) Objects() []any {
	if a == nil {
		return nil
	}
	var out []any
	for _, o := range a.ServiceAccounts {
		out = append(out, o)
	}
	for _, o := range a.Roles {
		out = append(out, o)
	}
	for _, o := range a.RoleBindings {
		out = append(out, o)
	}
	return out
}

// DeepCopy returns a copy of a that shares no memory with it; nil for
// nil.
func (a *Access) DeepCopy() *Access {
	if a == nil {
		return nil
	}
	out := &Access{}
	for _, o := range a.ServiceAccounts {
		out.ServiceAccounts = append(out.ServiceAccounts, o.DeepCopy())
	}
	for _, o := range a.Roles {
		out.Roles = append(out.Roles, o.DeepCopy())
	}
	for _, o := range a.RoleBindings {
		out.RoleBindings = append(out.RoleBindings, o.DeepCopy())
	}
	return out
}

// InNamespace returns a copy of a for a run in namespace ns: the objects
// of the run's namespace (compiled without one when Options.Namespace was
// empty) are moved to ns, and every RoleBinding's subject names the
// ServiceAccount in ns.
func (a *Access) InNamespace(ns string) *Access {
	out := a.DeepCopy()
	if out == nil {
		return nil
	}
	for _, sa := range out.ServiceAccounts {
		sa.Namespace = ns
	}
	for _, r := range out.Roles {
		if r.Namespace == "" {
			r.Namespace = ns
		}
	}
	for _, rb := range out.RoleBindings {
		if rb.Namespace == "" {
			rb.Namespace = ns
		}
		for i := range rb.Subjects {
			rb.Subjects[i].Namespace = ns
		}
	}
	return out
}

// AccessOf returns the RBAC of the steps of plan that have task.Access
// (see [Access]), or nil when none has. Every object gets opts.Labels and
// opts.Annotations under [LabelPipeline] and [LabelStep]; objects of the
// run's namespace get opts.Namespace (none when it is ""). runRules, if
// any, are added to the Role of each such step in the run's namespace
// (which then always exists): what a backend's own machinery in the
// step's pod needs, for example Argo's executor, which shares the pod's
// token.
//
// An Access naming another namespace needs opts.Namespace: the
// RoleBinding there must name the ServiceAccount together with the run's
// namespace, which is otherwise unknown until the run is submitted. Each
// such Access is a field error at pipeline.tasks[NAME].access[i].namespace
// (see [backends.LintErrors]) whose detail starts "on BACKEND".
func AccessOf(backend string, opts *Options, plan *backends.Plan, runRules []rbacv1.PolicyRule) (*Access, []*field.Error) {
	if opts == nil {
		opts = &Options{}
	}
	var out Access
	var errs []*field.Error
	for _, s := range plan.AllSteps() {
		if len(s.Task.Access) == 0 {
			continue
		}
		name := AccessName(plan.Name, s.Name)
		meta := func(ns string) metav1.ObjectMeta {
			labels := maps.Clone(opts.Labels)
			if labels == nil {
				labels = map[string]string{}
			}
			labels[LabelPipeline], labels[LabelStep] = plan.Name, s.Name
			m := metav1.ObjectMeta{Name: name, Namespace: ns, Labels: labels}
			if len(opts.Annotations) > 0 {
				m.Annotations = maps.Clone(opts.Annotations)
			}
			return m
		}
		out.ServiceAccounts = append(out.ServiceAccounts, &corev1.ServiceAccount{
			TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ServiceAccount"},
			ObjectMeta: meta(opts.Namespace),
		})
		// The rules by namespace, in the order written; "" is the run's.
		rules := map[string][]rbacv1.PolicyRule{}
		for i, a := range s.Task.Access {
			ns := a.Namespace
			if ns == opts.Namespace {
				ns = ""
			}
			if ns != "" && opts.Namespace == "" {
				errs = append(errs, field.Invalid(backends.TaskField(s, "access").Index(i).Child("namespace"), a.Namespace,
					"on %s the RoleBinding in namespace %q must name the step's ServiceAccount %q with the run's namespace, which is not known when compiling; "+
						"set the backend's Options.Pod.Namespace to the namespace the pipeline runs in", backend, a.Namespace, name))
				continue
			}
			for _, r := range a.Rules {
				rules[ns] = append(rules[ns], *r.DeepCopy())
			}
		}
		if len(runRules) > 0 {
			for _, r := range runRules {
				rules[""] = append(rules[""], *r.DeepCopy())
			}
		}
		for _, ns := range slices.Sorted(maps.Keys(rules)) {
			at := ns
			if at == "" {
				at = opts.Namespace
			}
			out.Roles = append(out.Roles, &rbacv1.Role{
				TypeMeta:   metav1.TypeMeta{APIVersion: rbacv1.SchemeGroupVersion.String(), Kind: "Role"},
				ObjectMeta: meta(at),
				Rules:      rules[ns],
			})
			out.RoleBindings = append(out.RoleBindings, &rbacv1.RoleBinding{
				TypeMeta:   metav1.TypeMeta{APIVersion: rbacv1.SchemeGroupVersion.String(), Kind: "RoleBinding"},
				ObjectMeta: meta(at),
				Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: name, Namespace: opts.Namespace}},
				RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: name},
			})
		}
	}
	if len(errs) > 0 {
		return nil, errs
	}
	if len(out.ServiceAccounts) == 0 {
		return nil, nil
	}
	byNsName := func(a, b metav1.ObjectMeta) int {
		return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name))
	}
	slices.SortFunc(out.ServiceAccounts, func(a, b *corev1.ServiceAccount) int { return byNsName(a.ObjectMeta, b.ObjectMeta) })
	slices.SortFunc(out.Roles, func(a, b *rbacv1.Role) int { return byNsName(a.ObjectMeta, b.ObjectMeta) })
	slices.SortFunc(out.RoleBindings, func(a, b *rbacv1.RoleBinding) int { return byNsName(a.ObjectMeta, b.ObjectMeta) })
	return &out, nil
}

package task

import (
	"strings"

	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/sluice-ml/sluice/internal/field"
)

// Access is what a task's code does with the Kubernetes API of the
// cluster it runs in, in one namespace: the rules of a namespaced Role.
// A task that applies manifests or watches a rollout (a deploy step)
// says so with [Task.WithAccess], and the Kubernetes backends give its
// pod a ServiceAccount of its own, bound to exactly these rules, instead
// of the account every other step runs as (which by default cannot reach
// the API server at all). Access is data so that compile can emit the
// least-privilege RBAC for a person to review, and so that a step's
// rights are written next to its code.
//
// Only namespaced rules are possible: no nonResourceURLs, no
// cluster-wide objects, no wildcards ("*" in verbs, resources or
// apiGroups), so that what the task may do is the list written here.
type Access struct {
	// Namespace is where the rules apply; "" is the run's namespace.
	// Another namespace (one per service level, say "sluice-prod") gets a
	// Role and RoleBinding there, bound to the step's ServiceAccount in
	// the run's namespace. It must be a DNS-1123 label.
	Namespace string `json:"namespace,omitempty"`
	// Rules are the Role's rules: each names its apiGroups ("" is the
	// core group), resources (subresources as "deployments/status") and
	// verbs, optionally resourceNames.
	Rules []rbacv1.PolicyRule `json:"rules"`
}

// WithAccess returns a copy of t whose code may use the Kubernetes API
// of the cluster it runs in as the list a says, one [Access] per
// namespace (two for the same namespace add up); it replaces an earlier
// list as a whole, and no arguments removes it. The local backend
// ignores it: there a task runs in the user's process, with the user's
// kubeconfig.
func (t Task[In, Out]) WithAccess(a ...Access) Task[In, Out] {
	t.spec = t.spec.Clone()
	t.spec.Access = cloneAccess(a)
	return t
}

// Clone returns a deep copy of a.
func (a Access) Clone() Access {
	rules := make([]rbacv1.PolicyRule, len(a.Rules))
	for i := range a.Rules {
		a.Rules[i].DeepCopyInto(&rules[i])
	}
	if a.Rules == nil {
		rules = nil
	}
	a.Rules = rules
	return a
}

func cloneAccess(as []Access) []Access {
	if as == nil {
		return nil
	}
	out := make([]Access, len(as))
	for i, a := range as {
		out[i] = a.Clone()
	}
	return out
}

// Validate reports every problem in a with paths relative to it
// ("rules[1].verbs"): a namespace that is not a DNS-1123 label, no
// rules, a rule without apiGroups, resources or verbs, an empty entry,
// a wildcard, and nonResourceURLs.
func (a Access) Validate() error {
	var l field.List
	if a.Namespace != "" {
		if msgs := validation.IsDNS1123Label(a.Namespace); len(msgs) > 0 {
			l.Add(field.Invalid(field.NewPath("namespace"), a.Namespace, "%s; give a namespace name, or \"\" for the run's namespace", strings.Join(msgs, "; ")))
		}
	}
	if len(a.Rules) == 0 {
		l.Add(field.Required(field.NewPath("rules"), "an Access grants its rules and has none; add a rule, or leave this Access out"))
	}
	for i, r := range a.Rules {
		p := field.NewPath("rules").Index(i)
		list := func(name string, vals []string, what, example string) {
			lp := p.Child(name)
			if len(vals) == 0 {
				l.Add(field.Required(lp, "a rule names the %s it grants, for example %s", what, example))
				return
			}
			for j, v := range vals {
				switch {
				case v == "" && name != "apiGroups":
					l.Add(field.Required(lp.Index(j), "an empty entry grants nothing; remove it"))
				case strings.Contains(v, "*"):
					l.Add(field.Invalid(lp.Index(j), v, "a wildcard grants every %s, now and in the future; least privilege: list the ones the task uses, for example %s", what, example))
				}
			}
		}
		list("apiGroups", r.APIGroups, "API groups", `"" (the core group) or "apps"`)
		list("resources", r.Resources, "resources", `"configmaps" or "deployments"`)
		list("verbs", r.Verbs, "verbs", `"get", "list", "watch"`)
		for j, n := range r.ResourceNames {
			if n == "" {
				l.Add(field.Required(p.Child("resourceNames").Index(j), "an empty entry grants nothing; remove it"))
			}
		}
		if len(r.NonResourceURLs) > 0 {
			l.Add(field.Forbidden(p.Child("nonResourceURLs"), "a task's access is a namespaced Role, which cannot grant non-resource URLs (/healthz, /metrics); remove them"))
		}
	}
	return l.Err()
}

// checkAccess validates each Access of s under "access[i]".
func checkAccess(l *field.List, as []Access) {
	for i, a := range as {
		l.AddUnder(field.NewPath("access").Index(i), a.Validate())
	}
}

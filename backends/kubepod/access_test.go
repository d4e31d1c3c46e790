package kubepod_test

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/sluice-ml/sluice/backends"
	"github.com/sluice-ml/sluice/backends/kubepod"
	"github.com/sluice-ml/sluice/pipeline"
	"github.com/sluice-ml/sluice/task"
)

type noIn struct{}

var readCMs = rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"get"}}

func accessPlan(t *testing.T, name string, steps map[string][]task.Access) *backends.Plan {
	t.Helper()
	p := pipeline.New(name, nil)
	for _, s := range []string{"zeta", "alpha", "plain"} {
		if acc, ok := steps[s]; ok || s == "plain" {
			pipeline.Add(p, task.New(s, func(context.Context, noIn) (int, error) { return 0, nil }).WithAccess(acc...), noIn{})
		}
	}
	plan, err := p.Plan(nil)
	require.NoError(t, err)
	return plan
}

// AccessName is a DNS-1123 label of at most 63 characters, the same for
// the same pipeline and step, and differs between steps however long.
func TestAccessName(t *testing.T) {
	assert.Equal(t, "churn-deploy-access", kubepod.AccessName("churn", "deploy"))
	long := strings.Repeat("p", 60)
	a, b := kubepod.AccessName(long, strings.Repeat("s", 62)+"a"), kubepod.AccessName(long, strings.Repeat("s", 62)+"b")
	for _, n := range []string{a, b} {
		assert.Empty(t, validation.IsDNS1123Label(n), n)
	}
	assert.NotEqual(t, a, b)
	assert.Equal(t, a, kubepod.AccessName(long, strings.Repeat("s", 62)+"a"))
	assert.NotEqual(t, kubepod.AccessName("p", "orchestrator"), "p-orchestrator", "never kubejob's orchestrator account")
}

// AccessOf returns nothing for a plan without Access, and otherwise the
// objects sorted by namespace and name, with the options' labels and
// annotations under its own, and the run's rules added in the run's
// namespace only; InNamespace moves the run's objects and subjects.
func TestAccessOf(t *testing.T) {
	a, errs := kubepod.AccessOf("test", nil, accessPlan(t, "p", nil), nil)
	assert.Nil(t, a)
	assert.Empty(t, errs)
	assert.Nil(t, a.Objects())

	extra := rbacv1.PolicyRule{APIGroups: []string{"x.io"}, Resources: []string{"things"}, Verbs: []string{"create"}}
	plan := accessPlan(t, "p", map[string][]task.Access{
		"zeta":  {{Namespace: "prod", Rules: []rbacv1.PolicyRule{readCMs}}},
		"alpha": {{Rules: []rbacv1.PolicyRule{readCMs}}, {Namespace: "ml", Rules: []rbacv1.PolicyRule{extra}}},
	})
	opts := &kubepod.Options{Namespace: "ml", Labels: map[string]string{"team": "a", kubepod.LabelStep: "overridden?"}, Annotations: map[string]string{"note": "x"}}
	a, errs = kubepod.AccessOf("test", opts, plan, []rbacv1.PolicyRule{extra})
	require.Empty(t, errs)
	var names []string
	for _, o := range a.ServiceAccounts {
		names = append(names, o.Namespace+"/"+o.Name)
	}
	for _, o := range a.Roles {
		names = append(names, o.Namespace+"/"+o.Name)
	}
	assert.Equal(t, []string{"ml/p-alpha-access", "ml/p-zeta-access", "ml/p-alpha-access", "ml/p-zeta-access", "prod/p-zeta-access"}, names)
	assert.Equal(t, []rbacv1.PolicyRule{readCMs, extra, extra}, a.Roles[0].Rules, "an Access naming the run's namespace adds up with \"\"; then the run's rules")
	assert.Equal(t, []rbacv1.PolicyRule{extra}, a.Roles[1].Rules, "the run's rules even without an Access there")
	assert.Equal(t, []rbacv1.PolicyRule{readCMs}, a.Roles[2].Rules)
	assert.Equal(t, map[string]string{"team": "a", kubepod.LabelStep: "zeta", kubepod.LabelPipeline: "p"}, a.RoleBindings[2].Labels)
	assert.Equal(t, map[string]string{"note": "x"}, a.RoleBindings[2].Annotations)
	assert.Len(t, a.Objects(), 8)

	moved := a.InNamespace("other")
	assert.Equal(t, "ml", a.ServiceAccounts[0].Namespace, "a copy")
	assert.Equal(t, "other", moved.ServiceAccounts[0].Namespace)
	assert.Equal(t, "prod", moved.RoleBindings[2].Namespace)
	assert.Equal(t, "other", moved.RoleBindings[2].Subjects[0].Namespace)
}

// A step with Access needs its account from the backend.
func TestSpecNeedsAccessAccount(t *testing.T) {
	plan := accessPlan(t, "p", map[string][]task.Access{"alpha": {{Rules: []rbacv1.PolicyRule{readCMs}}}})
	s := plan.Step("alpha")
	_, err := kubepod.Spec(&kubepod.Options{Image: "img"}, s, kubepod.Invocation{})
	assert.ErrorIs(t, err, kubepod.ErrNoServiceAccount)
	pod, err := kubepod.Spec(&kubepod.Options{Image: "img", ServiceAccountName: "steps"}, s, kubepod.Invocation{ServiceAccount: "p-alpha-access"})
	require.NoError(t, err)
	assert.Equal(t, "p-alpha-access", pod.ServiceAccountName)
	assert.True(t, *pod.AutomountServiceAccountToken)
	pod, err = kubepod.Spec(&kubepod.Options{Image: "img", ServiceAccountName: "steps"}, plan.Step("plain"), kubepod.Invocation{ServiceAccount: "ignored"})
	require.NoError(t, err)
	assert.Equal(t, "steps", pod.ServiceAccountName)
	assert.Nil(t, pod.AutomountServiceAccountToken)
}

// A step with Access and a security override is still checked against
// Pod Security.
func TestAccessWithSecurityWarns(t *testing.T) {
	p := pipeline.New("p", nil)
	root := int64(0)
	pipeline.Add(p, task.New("s", func(context.Context, noIn) (int, error) { return 0, nil }).
		WithAccess(task.Access{Rules: []rbacv1.PolicyRule{readCMs}}).WithSecurity(task.Security{RunAsUser: &root}), noIn{})
	plan, err := p.Plan(nil)
	require.NoError(t, err)
	warn := kubepod.SecurityWarnings(&kubepod.Options{Image: "img"}, plan)
	require.Len(t, warn, 1)
	assert.Contains(t, warn[0], `step "s"`)
	assert.Error(t, kubepod.CheckSecurityLevel(&kubepod.Options{Image: "img"}, plan, "ml", "restricted"))
}

package task_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	rbacv1 "k8s.io/api/rbac/v1"

	"github.com/sluice-ml/sluice/pipeline"
	"github.com/sluice-ml/sluice/task"
)

func rule(groups, resources, verbs []string) rbacv1.PolicyRule {
	return rbacv1.PolicyRule{APIGroups: groups, Resources: resources, Verbs: verbs}
}

var (
	core  = []string{""}
	cms   = []string{"configmaps"}
	reads = []string{"get", "list", "watch"}
)

func TestAccessValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		acc  []task.Access
		want []key
	}{
		{"none", nil, nil},
		{"run namespace", []task.Access{{Rules: []rbacv1.PolicyRule{rule(core, cms, reads)}}}, nil},
		{"other namespace, names and subresources", []task.Access{{Namespace: "sluice-prod", Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{"apps"}, Resources: []string{"deployments", "deployments/status"}, ResourceNames: []string{"model"}, Verbs: []string{"get", "patch"}},
		}}}, nil},
		{"no rules", []task.Access{{Namespace: "ml"}}, []key{{"access[0].rules", pipeline.ErrorTypeRequired}}},
		{"bad namespace", []task.Access{{Namespace: "Prod_1", Rules: []rbacv1.PolicyRule{rule(core, cms, reads)}}}, []key{{"access[0].namespace", pipeline.ErrorTypeInvalid}}},
		{"missing lists", []task.Access{{Rules: []rbacv1.PolicyRule{rule(core, cms, reads), {}}}}, []key{
			{"access[0].rules[1].apiGroups", pipeline.ErrorTypeRequired},
			{"access[0].rules[1].resources", pipeline.ErrorTypeRequired},
			{"access[0].rules[1].verbs", pipeline.ErrorTypeRequired},
		}},
		{"wildcards", []task.Access{{Rules: []rbacv1.PolicyRule{rule([]string{"*"}, []string{"pods", "deployments/*"}, []string{"get", "*"})}}}, []key{
			{"access[0].rules[0].apiGroups[0]", pipeline.ErrorTypeInvalid},
			{"access[0].rules[0].resources[1]", pipeline.ErrorTypeInvalid},
			{"access[0].rules[0].verbs[1]", pipeline.ErrorTypeInvalid},
		}},
		{"empty entries", []task.Access{{Rules: []rbacv1.PolicyRule{{APIGroups: core, Resources: []string{""}, ResourceNames: []string{""}, Verbs: []string{""}}}}}, []key{
			{"access[0].rules[0].resources[0]", pipeline.ErrorTypeRequired},
			{"access[0].rules[0].verbs[0]", pipeline.ErrorTypeRequired},
			{"access[0].rules[0].resourceNames[0]", pipeline.ErrorTypeRequired},
		}},
		{"non-resource URLs", []task.Access{{Rules: []rbacv1.PolicyRule{{APIGroups: core, Resources: cms, Verbs: reads, NonResourceURLs: []string{"/healthz"}}}}}, []key{
			{"access[0].rules[0].nonResourceURLs", pipeline.ErrorTypeForbidden},
		}},
		{"second access", []task.Access{{Rules: []rbacv1.PolicyRule{rule(core, cms, reads)}}, {Namespace: "x", Rules: []rbacv1.PolicyRule{rule(core, cms, nil)}}}, []key{
			{"access[1].rules[0].verbs", pipeline.ErrorTypeRequired},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, s := range []task.Spec{
				task.New("t", fn).WithAccess(tc.acc...).Spec(),
				task.Container[In, Out]("c", "img").WithAccess(tc.acc...).Spec(),
			} {
				assert.Equal(t, tc.want, keys(s.Validate()))
			}
		})
	}
	err := task.New("t", fn).WithAccess(task.Access{Rules: []rbacv1.PolicyRule{rule(core, cms, []string{"*"})}}).Spec().Validate()
	require.Error(t, err)
	assert.Contains(t, err.Error(), "least privilege")
}

// Validate reports a task's access problems at the task's path in the
// pipeline, with every other problem.
func TestAccessValidatePipeline(t *testing.T) {
	p := pipeline.New("p", nil)
	pipeline.Add(p, task.New("deploy", fn).WithAccess(
		task.Access{Rules: []rbacv1.PolicyRule{rule(core, cms, reads)}},
		task.Access{Namespace: "prod", Rules: []rbacv1.PolicyRule{rule([]string{"apps"}, []string{"deployments"}, reads), rule([]string{"apps"}, []string{"*"}, nil)}},
	), In{})
	var got []string
	for _, e := range pipeline.FieldErrors(p.Validate()) {
		got = append(got, e.Field)
	}
	assert.Equal(t, []string{"pipeline.tasks[deploy].access[1].rules[1].resources[0]", "pipeline.tasks[deploy].access[1].rules[1].verbs"}, got)
}

// WithAccess copies: neither the caller's rules nor a spec shares memory
// with the task, and a copy replaces the list as a whole.
func TestWithAccessCopies(t *testing.T) {
	acc := []task.Access{{Rules: []rbacv1.PolicyRule{rule(core, cms, []string{"get"})}}}
	tk := task.New("t", fn).WithAccess(acc...)
	acc[0].Rules[0].Verbs[0] = "delete"
	s := tk.Spec()
	assert.Equal(t, []string{"get"}, s.Access[0].Rules[0].Verbs)
	s.Access[0].Rules[0].Verbs[0] = "create"
	assert.Equal(t, []string{"get"}, tk.Spec().Access[0].Rules[0].Verbs)
	assert.Nil(t, task.New("t", fn).Spec().Access)
	assert.Nil(t, tk.WithAccess().Spec().Access, "no arguments removes it")
	assert.Len(t, tk.Spec().Access, 1, "the original keeps its own")
}

package argo_test

import (
	"bytes"
	"context"
	"errors"
	"testing"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	"github.com/argoproj/argo-workflows/v3/pkg/client/clientset/versioned/fake"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	kubefake "k8s.io/client-go/kubernetes/fake"
	clienttesting "k8s.io/client-go/testing"
	"sigs.k8s.io/yaml"

	"github.com/sluice-ml/sluice/backends/argo"
	"github.com/sluice-ml/sluice/backends/backendtest"
	"github.com/sluice-ml/sluice/backends/kubepod"
	"github.com/sluice-ml/sluice/internal/golden"
	"github.com/sluice-ml/sluice/pipeline"
	"github.com/sluice-ml/sluice/task"
)

// executorRule is what Argo's executor needs as the account of a step's
// pod.
var executorRule = rbacv1.PolicyRule{APIGroups: []string{"argoproj.io"}, Resources: []string{"workflowtaskresults"}, Verbs: []string{"create", "patch"}}

func accessOptions() *argo.Options {
	o := testOptions()
	o.Pod.Namespace = "ml"
	return o
}

// A step with task.Access gets a ServiceAccount of its own, a Role in each
// namespace it names with exactly its rules (plus, in the run's
// namespace, what Argo's executor needs as the pod's account) and a
// RoleBinding to the account, as documents before the Workflow; its
// template runs as that account with the token mounted and still passes
// Pod Security "restricted"; the other templates are unchanged.
func TestAccessGolden(t *testing.T) {
	art, err := pipeline.Compile(t.Context(), backendtest.Access(), argo.New(nil, accessOptions()), nil)
	require.NoError(t, err)
	docs := art.Documents()
	golden.Assert(t, bytes.Join(docs, []byte("---\n")))
	require.Len(t, docs, 6)
	var kinds []string
	for _, d := range docs {
		var tm metav1.TypeMeta
		require.NoError(t, yaml.Unmarshal(d, &tm))
		kinds = append(kinds, tm.Kind)
	}
	assert.Equal(t, []string{"ServiceAccount", "Role", "Role", "RoleBinding", "RoleBinding", "Workflow"}, kinds)
	spec := checkDocument(t, docs[5])

	name := kubepod.AccessName("access", "deploy")
	var roles []rbacv1.Role
	for _, d := range docs[1:3] {
		var r rbacv1.Role
		decodeStrict(t, d, &r)
		roles = append(roles, r)
	}
	assert.Equal(t, "ml", roles[0].Namespace)
	assert.Equal(t, append(backendtest.AccessRules[0].Rules, executorRule), roles[0].Rules)
	assert.Equal(t, backendtest.AccessNamespace, roles[1].Namespace)
	assert.Equal(t, backendtest.AccessRules[1].Rules, roles[1].Rules, "exactly the step's rules")
	for _, d := range docs[3:5] {
		var rb rbacv1.RoleBinding
		decodeStrict(t, d, &rb)
		assert.Equal(t, []rbacv1.Subject{{Kind: "ServiceAccount", Name: name, Namespace: "ml"}}, rb.Subjects)
		assert.Equal(t, rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: name}, rb.RoleRef)
	}

	var withSA []string
	for _, tmpl := range spec.Templates {
		if tmpl.Container == nil {
			continue
		}
		if tmpl.ServiceAccountName == "" {
			assert.Nil(t, tmpl.AutomountServiceAccountToken, tmpl.Name)
			continue
		}
		withSA = append(withSA, tmpl.Name)
		assert.Equal(t, name, tmpl.ServiceAccountName)
		assert.Equal(t, true, *tmpl.AutomountServiceAccountToken)
	}
	assert.Len(t, withSA, 1, "one template, that of deploy, whose instances all run as its account")
	assert.Empty(t, spec.ServiceAccountName, "the workflow's default is unchanged")
}

// Without Options.Pod.Namespace an Access naming another namespace is a
// field error at its namespace.
func TestAccessNeedsTheRunNamespace(t *testing.T) {
	backendtest.CheckLint(t, backendtest.Access(), argo.New(nil, testOptions()), []backendtest.LintKey{{
		Field: "pipeline.tasks[deploy].access[1].namespace", Type: pipeline.ErrorTypeInvalid, Value: backendtest.AccessNamespace,
	}})
}

// Submit makes the step's account and rights before it creates the
// Workflow; without the right to, it fails and creates no Workflow; and
// without a Kubernetes client it says which option to set.
func TestSubmitMakesStepAccess(t *testing.T) {
	name := kubepod.AccessName("access", "deploy")
	t.Run("Made", func(t *testing.T) {
		kc := kubefake.NewClientset()
		cs := fake.NewSimpleClientset()
		o := accessOptions()
		o.KubeClient = kc
		b := argo.New(cs, o)
		art, err := pipeline.Compile(t.Context(), backendtest.Access(), b, nil)
		require.NoError(t, err)
		_, err = b.Submit(t.Context(), art, nil)
		require.NoError(t, err)
		_, err = kc.CoreV1().ServiceAccounts("ml").Get(t.Context(), name, metav1.GetOptions{})
		require.NoError(t, err)
		role, err := kc.RbacV1().Roles(backendtest.AccessNamespace).Get(t.Context(), name, metav1.GetOptions{})
		require.NoError(t, err)
		assert.Equal(t, backendtest.AccessRules[1].Rules, role.Rules)
		_, err = kc.RbacV1().RoleBindings("ml").Get(t.Context(), name, metav1.GetOptions{})
		require.NoError(t, err)
		wfs, err := cs.ArgoprojV1alpha1().Workflows("ml").List(t.Context(), metav1.ListOptions{})
		require.NoError(t, err)
		assert.Len(t, wfs.Items, 1)
	})
	t.Run("Forbidden", func(t *testing.T) {
		kc := kubefake.NewClientset()
		kc.PrependReactor("create", "roles", func(a clienttesting.Action) (bool, runtime.Object, error) {
			return true, nil, errForbidden(a)
		})
		cs := fake.NewSimpleClientset()
		o := accessOptions()
		o.KubeClient = kc
		b := argo.New(cs, o)
		art, err := pipeline.Compile(t.Context(), backendtest.Access(), b, nil)
		require.NoError(t, err)
		_, err = b.Submit(t.Context(), art, nil)
		require.Error(t, err)
		assert.Contains(t, err.Error(), `argo: create the Role ml/`+name+` of a step with task.Access`)
		assert.Contains(t, err.Error(), `apply them from "prog compile -backend argo"`)
		wfs, err := cs.ArgoprojV1alpha1().Workflows("ml").List(t.Context(), metav1.ListOptions{})
		require.NoError(t, err)
		assert.Empty(t, wfs.Items, "no Workflow whose pods would lack their rights")
	})
	t.Run("NoKubeClient", func(t *testing.T) {
		b := argo.New(fake.NewSimpleClientset(), accessOptions())
		art, err := pipeline.Compile(t.Context(), backendtest.Access(), b, nil)
		require.NoError(t, err)
		_, err = b.Submit(t.Context(), art, nil)
		require.Error(t, err)
		assert.Contains(t, err.Error(), "set Options.KubeClient")
	})
}

// A template of the same body as a step with Access, but without it, is
// not shared with it: the account is part of the template.
func TestAccessTemplateNotShared(t *testing.T) {
	p := pipeline.New("shared", nil)
	a := constTask("a")
	pipeline.Add(p, a, accessNone{})
	pipeline.Add(p, a.WithName("b").WithAccess(backendtest.AccessRules[0]), accessNone{})
	art, err := pipeline.Compile(t.Context(), p, argo.New(nil, testOptions()), nil)
	require.NoError(t, err)
	var wf *wfv1.Workflow
	require.True(t, art.As(&wf))
	ta, tb := templateOf(t, wf, "a"), templateOf(t, wf, "b")
	assert.NotEqual(t, ta.Name, tb.Name)
	assert.Empty(t, ta.ServiceAccountName)
	assert.Equal(t, "shared-b-access", tb.ServiceAccountName)
}

func errForbidden(a clienttesting.Action) error {
	return apierrors.NewForbidden(a.GetResource().GroupResource(), "", errors.New("user cannot create roles"))
}

type accessNone struct{}

func constTask(name string) task.Task[accessNone, int] {
	return task.New(name, func(context.Context, accessNone) (int, error) { return 1, nil })
}

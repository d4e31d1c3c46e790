package kubeaccess_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/sluice-ml/sluice/backends/kubepod"
	"github.com/sluice-ml/sluice/internal/kubeaccess"
)

func access() *kubepod.Access {
	m := metav1.ObjectMeta{Name: "p-s-access", Namespace: "ml"}
	return &kubepod.Access{
		ServiceAccounts: []*corev1.ServiceAccount{{ObjectMeta: m}},
		Roles:           []*rbacv1.Role{{ObjectMeta: m, Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"get"}}}}},
		RoleBindings: []*rbacv1.RoleBinding{{ObjectMeta: m,
			Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Name: "p-s-access", Namespace: "ml"}},
			RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "p-s-access"}}},
	}
}

// Ensure creates what is missing and brings existing Roles and
// RoleBindings to the given rules and subjects; it is idempotent.
func TestEnsure(t *testing.T) {
	m := metav1.ObjectMeta{Name: "p-s-access", Namespace: "ml"}
	cs := fake.NewClientset(
		&rbacv1.Role{ObjectMeta: m, Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"*"}}}},
		&rbacv1.RoleBinding{ObjectMeta: m, Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Name: "other", Namespace: "ml"}},
			RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "p-s-access"}},
	)
	for range 2 {
		require.NoError(t, kubeaccess.Ensure(t.Context(), cs, "kubejob", access()))
		_, err := cs.CoreV1().ServiceAccounts("ml").Get(t.Context(), m.Name, metav1.GetOptions{})
		require.NoError(t, err)
		role, err := cs.RbacV1().Roles("ml").Get(t.Context(), m.Name, metav1.GetOptions{})
		require.NoError(t, err)
		assert.Equal(t, access().Roles[0].Rules, role.Rules, "the stale rules are gone")
		rb, err := cs.RbacV1().RoleBindings("ml").Get(t.Context(), m.Name, metav1.GetOptions{})
		require.NoError(t, err)
		assert.Equal(t, access().RoleBindings[0].Subjects, rb.Subjects)
	}
	require.NoError(t, kubeaccess.Ensure(t.Context(), cs, "kubejob", nil))
}

// A RoleBinding of that name bound to another role is an error at once
// (its role cannot change), which says what to do.
func TestEnsureBoundElsewhere(t *testing.T) {
	m := metav1.ObjectMeta{Name: "p-s-access", Namespace: "ml"}
	cs := fake.NewClientset(&rbacv1.RoleBinding{ObjectMeta: m, RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "admin"}})
	err := kubeaccess.Ensure(t.Context(), cs, "argo", access())
	require.Error(t, err)
	assert.Equal(t, `argo: create the RoleBinding ml/p-s-access of a step with task.Access: it exists and binds ClusterRole "admin", and a RoleBinding's role cannot change; delete it, or rename the step`, err.Error())
	creates := 0
	for _, a := range cs.Actions() {
		if a.GetVerb() == "create" && a.GetResource().Resource == "rolebindings" {
			creates++
		}
	}
	assert.Equal(t, 1, creates, "not retried")
}

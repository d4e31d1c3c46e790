package e2e

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/sluice-ml/sluice/backends/argo"
	"github.com/sluice-ml/sluice/backends/kubejob"
	"github.com/sluice-ml/sluice/backends/kubepod"
	"github.com/sluice-ml/sluice/internal/kubeaccess"
	"github.com/sluice-ml/sluice/pipeline"
	"github.com/sluice-ml/sluice/task"
)

type accessNone struct{}

// accessPipeline is one step, "read", that reads ConfigMaps in the run's
// namespace and patches one Deployment in namespace prod.
func accessPipeline(prod string) *pipeline.Pipeline {
	p := pipeline.New("access", nil)
	pipeline.Add(p, task.New("read", func(context.Context, accessNone) (int, error) { return 0, nil }).WithAccess(
		task.Access{Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"get", "list"}}}},
		task.Access{Namespace: prod, Rules: []rbacv1.PolicyRule{{APIGroups: []string{"apps"}, Resources: []string{"deployments"}, ResourceNames: []string{"model"}, Verbs: []string{"get", "patch"}}}},
	), accessNone{})
	return p
}

// TestStepAccess applies the RBAC that compile emits for a step with
// task.Access to the real API server and checks, with
// SubjectAccessReviews and with calls made with the step's own token,
// that its ServiceAccount may do exactly what the Access says, in each
// namespace, and not one thing more; then that the argo backend's Submit
// path (kubeaccess.Ensure) brings the Role of the run's namespace to
// argo's rules (the executor's workflowtaskresults) on the same objects.
func TestStepAccess(t *testing.T) {
	need(t)
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	ns, _ := namespace(t, true)
	prod := ns + "-prod"
	require.NoError(t, cl.Namespace(ctx, prod, true))

	opts := &kubejob.Options{Pod: kubepod.Options{Namespace: ns, Image: "registry.example/prog:v1"}}
	art, err := pipeline.Compile(ctx, accessPipeline(prod), kubejob.New(nil, opts), nil)
	require.NoError(t, err)
	docs, err := decodeObjects(joinDocs(art.Documents()))
	require.NoError(t, err)
	sa := kubepod.AccessName("access", "read")
	applied := 0
	for _, obj := range docs {
		if obj.GetKind() == "Job" || obj.GetName() != sa {
			continue // the orchestrator's RBAC and the Job templates
		}
		m, err := cl.RESTMapper().RESTMapping(obj.GroupVersionKind().GroupKind(), obj.GroupVersionKind().Version)
		require.NoError(t, err)
		_, err = cl.Dynamic().Resource(m.Resource).Namespace(obj.GetNamespace()).Create(ctx, obj, metav1.CreateOptions{FieldValidation: "Strict"})
		require.NoError(t, err, "%s %s/%s", obj.GetKind(), obj.GetNamespace(), obj.GetName())
		applied++
	}
	require.Equal(t, 5, applied, "a ServiceAccount, and a Role and a RoleBinding in each of two namespaces")

	user := "system:serviceaccount:" + ns + ":" + sa
	may := func(ra authorizationv1.ResourceAttributes) bool {
		t.Helper()
		sar, err := cl.Client.AuthorizationV1().SubjectAccessReviews().Create(ctx, &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
			User: user, Groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + ns, "system:authenticated"}, ResourceAttributes: &ra,
		}}, metav1.CreateOptions{})
		require.NoError(t, err)
		return sar.Status.Allowed
	}
	for _, tc := range []struct {
		ra   authorizationv1.ResourceAttributes
		want bool
	}{
		{authorizationv1.ResourceAttributes{Namespace: ns, Verb: "get", Resource: "configmaps"}, true},
		{authorizationv1.ResourceAttributes{Namespace: ns, Verb: "list", Resource: "configmaps"}, true},
		{authorizationv1.ResourceAttributes{Namespace: prod, Verb: "patch", Group: "apps", Resource: "deployments", Name: "model"}, true},
		{authorizationv1.ResourceAttributes{Namespace: prod, Verb: "get", Group: "apps", Resource: "deployments", Name: "model"}, true},
		// One thing more, each way: verb, resource, namespace, name.
		{authorizationv1.ResourceAttributes{Namespace: ns, Verb: "delete", Resource: "configmaps"}, false},
		{authorizationv1.ResourceAttributes{Namespace: ns, Verb: "watch", Resource: "configmaps"}, false},
		{authorizationv1.ResourceAttributes{Namespace: ns, Verb: "get", Resource: "secrets"}, false},
		{authorizationv1.ResourceAttributes{Namespace: prod, Verb: "get", Resource: "configmaps"}, false},
		{authorizationv1.ResourceAttributes{Namespace: "default", Verb: "get", Resource: "configmaps"}, false},
		{authorizationv1.ResourceAttributes{Namespace: prod, Verb: "patch", Group: "apps", Resource: "deployments", Name: "other"}, false},
		{authorizationv1.ResourceAttributes{Namespace: prod, Verb: "delete", Group: "apps", Resource: "deployments", Name: "model"}, false},
		{authorizationv1.ResourceAttributes{Namespace: ns, Verb: "create", Group: "argoproj.io", Resource: "workflowtaskresults"}, false},
	} {
		assert.Equal(t, tc.want, may(tc.ra), "%s %s/%s %s in %s", tc.ra.Verb, tc.ra.Group, tc.ra.Resource, tc.ra.Name, tc.ra.Namespace)
	}

	// The same with the account's own token, as the step's code has it.
	_, err = cl.Client.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "settings"}}, metav1.CreateOptions{})
	require.NoError(t, err)
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfigAs(t, ctx, ns, sa))
	require.NoError(t, err)
	as, err := kubernetes.NewForConfig(cfg)
	require.NoError(t, err)
	_, err = as.CoreV1().ConfigMaps(ns).Get(ctx, "settings", metav1.GetOptions{})
	require.NoError(t, err)
	_, err = as.CoreV1().ConfigMaps(ns).List(ctx, metav1.ListOptions{})
	require.NoError(t, err)
	err = as.CoreV1().ConfigMaps(ns).Delete(ctx, "settings", metav1.DeleteOptions{})
	assert.True(t, apierrors.IsForbidden(err), "delete: %v", err)
	_, err = as.CoreV1().Secrets(ns).List(ctx, metav1.ListOptions{})
	assert.True(t, apierrors.IsForbidden(err), "secrets: %v", err)

	// argo's Submit path on the same objects: the run namespace's Role
	// gets the executor's rule, the other is unchanged, and running it
	// again changes nothing.
	aart, err := pipeline.Compile(ctx, accessPipeline(prod), argo.New(nil, &argo.Options{Pod: kubepod.Options{Namespace: ns, Image: "registry.example/prog:v1", Command: []string{"/prog"}}}), nil)
	require.NoError(t, err)
	var access *kubepod.Access
	require.True(t, aart.As(&access))
	for range 2 {
		require.NoError(t, kubeaccess.Ensure(ctx, cl.Client, "argo", access.InNamespace(ns)))
	}
	assert.True(t, may(authorizationv1.ResourceAttributes{Namespace: ns, Verb: "create", Group: "argoproj.io", Resource: "workflowtaskresults"}))
	assert.True(t, may(authorizationv1.ResourceAttributes{Namespace: ns, Verb: "get", Resource: "configmaps"}))
	assert.False(t, may(authorizationv1.ResourceAttributes{Namespace: ns, Verb: "delete", Resource: "configmaps"}))
	role, err := cl.Client.RbacV1().Roles(prod).Get(ctx, sa, metav1.GetOptions{})
	require.NoError(t, err)
	assert.Len(t, role.Rules, 1)
}

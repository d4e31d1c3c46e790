package kubejob_test

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/pod-security-admission/api"
	"k8s.io/pod-security-admission/policy"
	"sigs.k8s.io/yaml"

	"github.com/sluice-ml/sluice/backends/backendtest"
	"github.com/sluice-ml/sluice/backends/kubejob"
	"github.com/sluice-ml/sluice/backends/kubepod"
	"github.com/sluice-ml/sluice/internal/golden"
	"github.com/sluice-ml/sluice/pipeline"
)

// accessDocs is a compiled artifact decoded strictly, every object of
// each kind in document order.
type accessDocs struct {
	kinds []string
	sas   []corev1.ServiceAccount
	roles []rbacv1.Role
	rbs   []rbacv1.RoleBinding
	jobs  map[string]*batchv1.Job // by step
}

func decodeAccess(t *testing.T, docs [][]byte) *accessDocs {
	t.Helper()
	out := &accessDocs{jobs: map[string]*batchv1.Job{}}
	for _, doc := range docs {
		var tm metav1.TypeMeta
		require.NoError(t, yaml.Unmarshal(doc, &tm))
		out.kinds = append(out.kinds, tm.Kind)
		switch tm.Kind {
		case "ServiceAccount":
			var o corev1.ServiceAccount
			require.NoError(t, yaml.UnmarshalStrict(doc, &o))
			out.sas = append(out.sas, o)
		case "Role":
			var o rbacv1.Role
			require.NoError(t, yaml.UnmarshalStrict(doc, &o))
			out.roles = append(out.roles, o)
		case "RoleBinding":
			var o rbacv1.RoleBinding
			require.NoError(t, yaml.UnmarshalStrict(doc, &o))
			out.rbs = append(out.rbs, o)
		case "Job":
			var o batchv1.Job
			require.NoError(t, yaml.UnmarshalStrict(doc, &o))
			out.jobs[o.Labels[kubejob.LabelStep]] = &o
		default:
			t.Fatalf("unexpected kind %q", tm.Kind)
		}
	}
	return out
}

// A step with task.Access gets a ServiceAccount of its own, a Role with
// exactly its rules in each namespace it names and a RoleBinding of that
// Role to the account (in the run's namespace), after the orchestrator's
// three; its pod runs as that account with the token mounted, and still
// passes Pod Security "restricted". Other steps are as before.
func TestAccessGolden(t *testing.T) {
	opts := testOptions()
	opts.Pod.Namespace = "ml"
	art, err := pipeline.Compile(t.Context(), backendtest.Access(), kubejob.New(nil, opts), nil)
	require.NoError(t, err)
	golden.Assert(t, bytes.Join(art.Documents(), []byte("---\n")))
	got := decodeAccess(t, art.Documents())

	assert.Equal(t, []string{"ServiceAccount", "Role", "RoleBinding", "ServiceAccount", "Role", "Role", "RoleBinding", "RoleBinding", "Job", "Job", "Job"}, got.kinds)
	name := kubepod.AccessName("access", "deploy")
	assert.Equal(t, "access-deploy-access", name)
	require.Len(t, got.sas, 2)
	assert.Equal(t, "access-orchestrator", got.sas[0].Name)
	assert.Equal(t, metav1.ObjectMeta{Name: name, Namespace: "ml", Labels: map[string]string{kubejob.LabelPipeline: "access", kubejob.LabelStep: "deploy"}}, got.sas[1].ObjectMeta)

	require.Len(t, got.roles, 3)
	for i, want := range []struct {
		ns    string
		rules []rbacv1.PolicyRule
	}{{"ml", backendtest.AccessRules[0].Rules}, {backendtest.AccessNamespace, backendtest.AccessRules[1].Rules}} {
		role, rb := got.roles[i+1], got.rbs[i+1]
		assert.Equal(t, name, role.Name)
		assert.Equal(t, want.ns, role.Namespace)
		assert.Equal(t, want.rules, role.Rules, "exactly the step's rules")
		assert.Equal(t, name, rb.Name)
		assert.Equal(t, want.ns, rb.Namespace)
		assert.Equal(t, []rbacv1.Subject{{Kind: "ServiceAccount", Name: name, Namespace: "ml"}}, rb.Subjects, "the account in the run's namespace")
		assert.Equal(t, rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: name}, rb.RoleRef)
	}

	ev, err := policy.NewEvaluator(policy.DefaultChecks(), nil)
	require.NoError(t, err)
	require.Len(t, got.jobs, 3)
	for step, j := range got.jobs {
		pod := &j.Spec.Template.Spec
		res := policy.AggregateCheckResults(ev.EvaluatePod(api.LevelVersion{Level: api.LevelRestricted, Version: api.LatestVersion()}, &j.Spec.Template.ObjectMeta, pod))
		assert.True(t, res.Allowed, "step %s fails Pod Security restricted: %s", step, res.ForbiddenDetail())
		if step == "deploy" {
			assert.Equal(t, name, pod.ServiceAccountName)
			assert.Equal(t, true, *pod.AutomountServiceAccountToken, "the token is mounted")
			continue
		}
		assert.Empty(t, pod.ServiceAccountName, step)
		assert.Equal(t, false, *pod.AutomountServiceAccountToken, "step %s does not talk to the API server", step)
	}

	var access *kubepod.Access
	require.True(t, art.As(&access))
	assert.Len(t, access.Objects(), 5)
}

// Without Options.Pod.Namespace, an Access naming another namespace is a
// field error at its namespace, from lint and compile alike; one of the
// run's namespace only compiles, with objects that take kubectl's
// namespace.
func TestAccessNeedsTheRunNamespace(t *testing.T) {
	backendtest.CheckLint(t, backendtest.Access(), kubejob.New(nil, testOptions()), []backendtest.LintKey{{
		Field: "pipeline.tasks[deploy].access[1].namespace", Type: pipeline.ErrorTypeInvalid, Value: backendtest.AccessNamespace,
	}})

	p := pipeline.New("local-access", nil)
	pipeline.Add(p, constant("read").WithAccess(backendtest.AccessRules[0]), none{})
	art, err := pipeline.Compile(t.Context(), p, kubejob.New(nil, testOptions()), nil)
	require.NoError(t, err)
	got := decodeAccess(t, art.Documents())
	require.Len(t, got.rbs, 2)
	assert.Empty(t, got.rbs[1].Namespace)
	assert.Equal(t, []rbacv1.Subject{{Kind: "ServiceAccount", Name: "local-access-read-access"}}, got.rbs[1].Subjects,
		"no namespace: the binding's own, the run's")
}

// Submit makes the steps' accounts and rights before any Job exists, in
// the namespace of the run, and brings an existing Role's rules back to
// the compiled ones; the step's pods run as its account.
func TestSubmitMakesStepAccess(t *testing.T) {
	h := newHarness(t)
	defer h.Close()
	name := kubepod.AccessName("access", "deploy")
	stale := &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: backendtest.AccessNamespace},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"get"}}}}
	_, err := h.cs.RbacV1().Roles(backendtest.AccessNamespace).Create(t.Context(), stale, metav1.CreateOptions{})
	require.NoError(t, err)

	opts := testOptions()
	opts.Pod.Namespace = "default"
	b := h.backend(opts)
	st, err := pipeline.Run(t.Context(), backendtest.Access(), b, nil)
	require.NoError(t, err)
	assert.Equal(t, "Succeeded", string(st.Phase))

	_, err = h.cs.CoreV1().ServiceAccounts("default").Get(t.Context(), name, metav1.GetOptions{})
	require.NoError(t, err)
	for i, ns := range []string{"default", backendtest.AccessNamespace} {
		role, err := h.cs.RbacV1().Roles(ns).Get(t.Context(), name, metav1.GetOptions{})
		require.NoError(t, err)
		assert.Equal(t, backendtest.AccessRules[i].Rules, role.Rules, "namespace %s: the compiled rules, no more", ns)
		rb, err := h.cs.RbacV1().RoleBindings(ns).Get(t.Context(), name, metav1.GetOptions{})
		require.NoError(t, err)
		assert.Equal(t, []rbacv1.Subject{{Kind: "ServiceAccount", Name: name, Namespace: "default"}}, rb.Subjects)
	}
	jobs, err := h.cs.BatchV1().Jobs("default").List(t.Context(), metav1.ListOptions{})
	require.NoError(t, err)
	deploys := 0
	for _, j := range jobs.Items {
		if j.Labels[kubejob.LabelStep] == "deploy" {
			deploys++
			assert.Equal(t, name, j.Spec.Template.Spec.ServiceAccountName, j.Name)
		} else {
			assert.Empty(t, j.Spec.Template.Spec.ServiceAccountName, j.Name)
		}
	}
	assert.Equal(t, 2, deploys, "both instances of the fan-out, as the one account")
}

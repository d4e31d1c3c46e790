package argo_test

import (
	"errors"
	"testing"

	"github.com/argoproj/argo-workflows/v3/pkg/client/clientset/versioned/fake"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	kubefake "k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/utils/ptr"

	"github.com/sluice-ml/sluice/backends"
	"github.com/sluice-ml/sluice/backends/argo"
	"github.com/sluice-ml/sluice/backends/kubepod"
	"github.com/sluice-ml/sluice/pipeline"
)

func namespace(name, enforce string) *corev1.Namespace {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if enforce != "" {
		ns.Labels = map[string]string{"pod-security.kubernetes.io/enforce": enforce}
	}
	return ns
}

func controllerConfig(ns string, data map[string]string) *corev1.ConfigMap {
	return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: argo.ControllerConfigMap, Namespace: ns}, Data: data}
}

// weakExecutor drops privileges but leaves running as non-root and the
// seccomp profile to the pod.
const weakExecutor = `securityContext:
  allowPrivilegeEscalation: false
  capabilities: {drop: [ALL]}
`

// In a namespace that enforces Pod Security "restricted", Submit refuses
// to create a workflow whose pods Argo's executor would get refused, and
// says what to add to the controller's ConfigMap; what it cannot read, it
// does not check.
func TestSubmitChecksPodSecurity(t *testing.T) {
	forbidden := func(resource string) func(k8stesting.Action) (bool, runtime.Object, error) {
		return func(k8stesting.Action) (bool, runtime.Object, error) {
			return true, nil, apierrors.NewForbidden(schema.GroupResource{Resource: resource}, "", errors.New("no RBAC"))
		}
	}
	fragment := argo.RestrictedExecutorConfig
	for _, tc := range []struct {
		name    string
		objs    []runtime.Object
		opts    func(*argo.Options)
		react   map[string]func(k8stesting.Action) (bool, runtime.Object, error)
		wantErr []string // substrings; nil: Submit succeeds
	}{
		{name: "Baseline", objs: []runtime.Object{namespace("ml", "baseline"), controllerConfig("argo", nil)}},
		{name: "NoLabel", objs: []runtime.Object{namespace("ml", ""), controllerConfig("argo", nil)}},
		{name: "RestrictedNoExecutor", objs: []runtime.Object{namespace("ml", "restricted"), controllerConfig("argo", map[string]string{"parallelism": "10"})},
			wantErr: []string{`namespace "ml" enforces Pod Security "restricted"`, "argo/workflow-controller-configmap", "sets no security context", "add this entry to its data", "runAsUser: 8737"}},
		{name: "RestrictedWithFragment", objs: []runtime.Object{namespace("ml", "restricted"), controllerConfig("argo", map[string]string{
			"executor": fragment[len("executor:\n"):], "parallelism": "10"})}},
		{name: "RestrictedConfigKey", objs: []runtime.Object{namespace("ml", "restricted"), controllerConfig("argo", map[string]string{
			"config": "parallelism: 10\n" + fragment})}},
		{name: "RestrictedConfigKeyWithout", objs: []runtime.Object{namespace("ml", "restricted"), controllerConfig("argo", map[string]string{
			"config": "parallelism: 10\n"})},
			wantErr: []string{"sets no security context", `the YAML of its key "config"`}},
		{name: "RestrictedWeakExecutorWithOwnPodContext", objs: []runtime.Object{namespace("ml", "restricted"), controllerConfig("argo", map[string]string{
			"executor": weakExecutor})}}, // the workflow's pod security context supplies the rest
		{name: "RestrictedWeakExecutorAsRoot", objs: []runtime.Object{namespace("ml", "restricted"), controllerConfig("argo", map[string]string{
			"executor": weakExecutor + "  runAsUser: 0\n"})},
			wantErr: []string{"fails Pod Security", "runAsUser", "replace its executor entry"}},
		{name: "RestrictedPrivilegedExecutor", objs: []runtime.Object{namespace("ml", "restricted"), controllerConfig("argo", map[string]string{
			"executor": "securityContext:\n  privileged: true\n"})},
			wantErr: []string{"fails Pod Security", "privileged"}},
		{name: "OtherControllerNamespace", objs: []runtime.Object{namespace("ml", "restricted"), controllerConfig("wf-system", map[string]string{"parallelism": "1"})},
			opts: func(o *argo.Options) { o.ControllerNamespace = "wf-system" }, wantErr: []string{"wf-system/workflow-controller-configmap"}},
		{name: "NoConfigMap", objs: []runtime.Object{namespace("ml", "restricted")}},
		{name: "NoNamespace"},
		{name: "NamespaceForbidden", objs: []runtime.Object{namespace("ml", "restricted"), controllerConfig("argo", nil)},
			react: map[string]func(k8stesting.Action) (bool, runtime.Object, error){"namespaces": forbidden("namespaces")}},
		{name: "ConfigMapForbidden", objs: []runtime.Object{namespace("ml", "restricted"), controllerConfig("argo", nil)},
			react: map[string]func(k8stesting.Action) (bool, runtime.Object, error){"configmaps": forbidden("configmaps")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			kc := kubefake.NewClientset(tc.objs...)
			for res, r := range tc.react {
				kc.PrependReactor("get", res, r)
			}
			cs := fake.NewSimpleClientset()
			nameOnCreate(cs)
			opts := &argo.Options{Pod: kubepod.Options{Image: testImage, Command: testCommand, Namespace: "ml"}, KubeClient: kc}
			if tc.opts != nil {
				tc.opts(opts)
			}
			b := argo.New(cs, opts)
			art, err := pipeline.Compile(t.Context(), chain(1), b, nil)
			require.NoError(t, err)
			_, err = b.Submit(t.Context(), art, &backends.SubmitOptions{})
			for _, a := range kc.Actions() {
				assert.Equal(t, "get", a.GetVerb(), "the check only reads")
			}
			if tc.wantErr == nil {
				require.NoError(t, err)
				assert.Len(t, cs.Actions(), 1, "the workflow is created")
				return
			}
			require.Error(t, err)
			for _, w := range tc.wantErr {
				assert.Contains(t, err.Error(), w)
			}
			assert.Empty(t, cs.Actions(), "nothing is created")
		})
	}

	// Other API errors are returned.
	kc := kubefake.NewClientset()
	kc.PrependReactor("get", "namespaces", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewUnauthorized("who are you")
	})
	b := argo.New(fake.NewSimpleClientset(), &argo.Options{Pod: kubepod.Options{Image: testImage, Command: testCommand}, KubeClient: kc})
	art, err := pipeline.Compile(t.Context(), chain(1), b, nil)
	require.NoError(t, err)
	_, err = b.Submit(t.Context(), art, &backends.SubmitOptions{})
	assert.True(t, apierrors.IsUnauthorized(err), "%v", err)

	// Schedule checks too.
	kc = kubefake.NewClientset(namespace("ml", "restricted"), controllerConfig("argo", nil))
	cs := fake.NewSimpleClientset()
	b = argo.New(cs, &argo.Options{Pod: kubepod.Options{Image: testImage, Command: testCommand, Namespace: "ml"}, KubeClient: kc,
		Kind: argo.KindCronWorkflow, Cron: &argo.CronOptions{Schedules: []string{"0 3 * * *"}}})
	art, err = pipeline.Compile(t.Context(), chain(1), b, nil)
	require.NoError(t, err)
	_, err = b.Schedule(t.Context(), art)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "sets no security context")
	assert.Empty(t, cs.Actions())
}

// CheckExecutorConfig reads the executor as Argo does, from its own key
// or from the one key "config"; with no pod security context, the
// executor's own must pass, as the documented entry does.
func TestCheckExecutorConfig(t *testing.T) {
	fragment := argo.RestrictedExecutorConfig
	assert.NoError(t, argo.CheckExecutorConfig(map[string]string{"executor": fragment[len("executor:\n"):]}, nil))
	assert.NoError(t, argo.CheckExecutorConfig(map[string]string{"config": "namespace: argo\n" + fragment}, nil))

	err := argo.CheckExecutorConfig(map[string]string{"executor": weakExecutor}, nil)
	require.Error(t, err, "non-root and seccomp are left to a pod that has neither")
	assert.Contains(t, err.Error(), "argo: the executor security context")
	restricted := kubepod.RestrictedPodSecurityContext()
	assert.NoError(t, argo.CheckExecutorConfig(map[string]string{"executor": weakExecutor}, restricted))

	rootPod := restricted.DeepCopy()
	rootPod.RunAsNonRoot = ptr.To(false)
	assert.Error(t, argo.CheckExecutorConfig(map[string]string{"executor": weakExecutor}, rootPod))

	err = argo.CheckExecutorConfig(nil, restricted)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "sets no security context")
	err = argo.CheckExecutorConfig(map[string]string{"executor": "resources: {}\n"}, restricted)
	require.Error(t, err, "an executor without a security context")
	err = argo.CheckExecutorConfig(map[string]string{"executor": "securityContext: [\n"}, restricted)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "key executor")
}

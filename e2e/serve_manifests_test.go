package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apiextensions "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/yaml"

	"github.com/sluice-ml/sluice/serve"
)

// serveCRDs are the CRDs the serving objects need, vendored (see
// testdata/crds/README.md): KServe v0.15.2's full InferenceService and
// InferenceGraph, and Gateway API v1.6.3's standard HTTPRoute.
var serveCRDs = []string{
	"testdata/crds/kserve/serving.kserve.io_inferenceservices.yaml",
	"testdata/crds/kserve/serving.kserve.io_inferencegraphs.yaml",
	"testdata/crds/gateway-api/gateway.networking.k8s.io_httproutes.yaml",
}

// TestServeManifests sends every object of every golden file of the serve
// renderers (serve/testdata/TestRenderGolden) to the real API server, with
// KServe's and Gateway API's full CRDs installed: server-side dry run,
// strict field validation, in a namespace enforcing Pod Security
// "restricted". The pod each Deployment and each KServe component would
// run is also created (dry run) as a Pod, since admission enforces Pod
// Security on Pods and only warns on workloads. Any error or warning
// fails.
func TestServeManifests(t *testing.T) {
	need(t)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	installCRDs(t, ctx, serveCRDs)

	ns, _ := namespace(t, true)
	w := &warnings{}
	cfg := rest.CopyConfig(cl.Config)
	cfg.WarningHandler = w
	dyn, err := dynamic.NewForConfig(cfg)
	require.NoError(t, err)
	mapper := cl.RESTMapper() // after the CRDs are served

	files, err := filepath.Glob("../serve/testdata/TestRenderGolden/*/*.golden.yaml")
	require.NoError(t, err)
	require.NotEmpty(t, files)
	docs, pods := 0, 0
	sas := map[string]bool{}
	for _, f := range files {
		rel, _ := filepath.Rel("..", f)
		objs, err := readObjects(f)
		require.NoError(t, err, rel)
		for i, obj := range objs {
			docs++
			where := func(what string) string {
				return fmt.Sprintf("%s document %d (%s %s)%s", rel, i+1, obj.GetKind(), obj.GetName(), what)
			}
			obj.SetNamespace(ns)
			m, err := mapper.RESTMapping(obj.GroupVersionKind().GroupKind(), obj.GroupVersionKind().Version)
			require.NoError(t, err, where(""))
			_, err = dyn.Resource(m.Resource).Namespace(ns).Create(ctx, obj, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}, FieldValidation: "Strict"})
			require.NoError(t, err, where(""))
			require.Empty(t, w.take(), where(": warnings"))

			for name, spec := range podsOf(t, obj) {
				pods++
				if sa := spec.ServiceAccountName; sa != "" && !sas[sa] {
					// The ServiceAccount admission plugin needs it to exist.
					_, err := cl.Client.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: sa}}, metav1.CreateOptions{})
					if !apierrors.IsAlreadyExists(err) {
						require.NoError(t, err)
					}
					sas[sa] = true
				}
				pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "dry-run-pod", Namespace: ns}, Spec: spec}
				_, err = cl.Client.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}, FieldValidation: "Strict"})
				require.NoError(t, err, where(": the "+name+" pod"))
				require.Empty(t, w.take(), where(": the "+name+" pod: warnings"))
			}
		}
	}
	t.Logf("%d documents of %d files accepted, %d pods admitted", docs, len(files), pods)
	require.NotZero(t, pods)

	// The control: strict validation does refuse a field that KServe's
	// schema lacks, so the CRDs are the full ones and are enforced.
	objs, err := readObjects(files[0])
	require.NoError(t, err)
	bad := objs[0]
	require.Equal(t, "InferenceService", bad.GetKind(), files[0])
	bad.SetNamespace(ns)
	require.NoError(t, unstructured.SetNestedField(bad.Object, int64(3), "spec", "predictor", "replicas"))
	m, err := mapper.RESTMapping(bad.GroupVersionKind().GroupKind(), bad.GroupVersionKind().Version)
	require.NoError(t, err)
	_, err = dyn.Resource(m.Resource).Namespace(ns).Create(ctx, bad, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}, FieldValidation: "Strict"})
	require.Error(t, err, "an InferenceService with an unknown field must be refused")
	require.Contains(t, err.Error(), "unknown field")
}

// podsOf returns the pods obj would run, by component: a Deployment's
// template, and each KServe component's pod fields with its containers
// (the model's container gets a stand-in image, as its ServingRuntime
// would supply one).
func podsOf(t *testing.T, obj *unstructured.Unstructured) map[string]corev1.PodSpec {
	t.Helper()
	out := map[string]corev1.PodSpec{}
	switch obj.GetKind() {
	case "Deployment":
		var d appsv1.Deployment
		require.NoError(t, runtime.DefaultUnstructuredConverter.FromUnstructured(obj.Object, &d))
		out["template"] = d.Spec.Template.Spec
	case "InferenceService":
		b, err := json.Marshal(obj.Object)
		require.NoError(t, err)
		var isvc serve.InferenceService
		require.NoError(t, json.Unmarshal(b, &isvc))
		p := isvc.Spec.Predictor
		spec := kservePodSpec(p.PodSpec)
		if m := p.Model; m != nil {
			spec.Containers = append(spec.Containers, corev1.Container{
				Name: "kserve-container", Image: "kserve/" + m.ModelFormat.Name + "-server:v0.15.2",
				Args: m.Args, Env: m.Env, Resources: m.Resources, SecurityContext: m.SecurityContext, VolumeMounts: m.VolumeMounts,
			})
		}
		out["predictor"] = spec
		if tr := isvc.Spec.Transformer; tr != nil {
			out["transformer"] = kservePodSpec(tr.PodSpec)
		}
	}
	return out
}

func kservePodSpec(p serve.PodSpec) corev1.PodSpec {
	return corev1.PodSpec{
		Containers:                p.Containers,
		Volumes:                   p.Volumes,
		NodeSelector:              p.NodeSelector,
		Tolerations:               p.Tolerations,
		Affinity:                  p.Affinity,
		TopologySpreadConstraints: p.TopologySpreadConstraints,
		SecurityContext:           p.SecurityContext,
		ServiceAccountName:        p.ServiceAccountName,
	}
}

// installCRDs creates (or updates) the CRDs of files and waits until the
// API server serves each one (condition Established).
func installCRDs(t *testing.T, ctx context.Context, files []string) {
	t.Helper()
	client, err := apiextensions.NewForConfig(cl.Config)
	require.NoError(t, err)
	crds := client.ApiextensionsV1().CustomResourceDefinitions()
	for _, f := range files {
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		var crd apiextensionsv1.CustomResourceDefinition
		require.NoError(t, yaml.Unmarshal(b, &crd), f)
		_, err = crds.Create(ctx, &crd, metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) {
			live, gerr := crds.Get(ctx, crd.Name, metav1.GetOptions{})
			require.NoError(t, gerr)
			crd.ResourceVersion = live.ResourceVersion
			_, err = crds.Update(ctx, &crd, metav1.UpdateOptions{})
		}
		require.NoError(t, err, f)
		// The full schemas take the API server seconds to serve.
		err = wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 3*time.Minute, true, func(ctx context.Context) (bool, error) {
			live, err := crds.Get(ctx, crd.Name, metav1.GetOptions{})
			if err != nil {
				return false, err
			}
			for _, c := range live.Status.Conditions {
				if c.Type == apiextensionsv1.Established && c.Status == apiextensionsv1.ConditionTrue {
					return true, nil
				}
			}
			return false, nil
		})
		require.NoError(t, err, "CRD %s never became Established", crd.Name)
	}
}

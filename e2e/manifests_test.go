package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
)

// goldenManifests are the compiled outputs of the golden tests of the
// cluster backends and of the examples, relative to the repository.
var goldenManifests = []string{
	"backends/argo/testdata/*/*.golden.yaml",
	"backends/kubejob/testdata/*/*.golden.yaml",
	"backends/argo/testdata/TestOutputPlaceholderGolden.golden.yaml",
	"backends/kubejob/testdata/TestOutputPlaceholderGolden.golden.yaml",
	"backends/argo/testdata/TestAccessGolden.golden.yaml",
	"backends/kubejob/testdata/TestAccessGolden.golden.yaml",
	"examples/quickstart/testdata/TestCompile/argo.golden.yaml",
	"examples/quickstart/testdata/TestCompile/kubejob.golden.yaml",
	"examples/batchscore/testdata/TestCompile/argo.golden.yaml",
	"examples/batchscore/testdata/TestCompile/kubejob.golden.yaml",
}

// warnings collects the API server's warnings (Pod Security admission
// only warns on workload objects).
type warnings struct {
	mu  sync.Mutex
	got []string
}

func (w *warnings) HandleWarningHeader(code int, agent, text string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.got = append(w.got, text)
}

func (w *warnings) take() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := w.got
	w.got = nil
	return out
}

// TestGoldenManifestsAccepted sends every document of every golden file
// to the real API server — server-side dry run, strict field validation,
// in a namespace enforcing Pod Security "restricted" — and each Job's
// pod template once more as a Pod, since admission enforces on Pods and
// only warns on Jobs. Argo's objects are checked against Argo's full
// CRD schemas. Any error or warning fails.
func TestGoldenManifestsAccepted(t *testing.T) {
	need(t)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	ns, _ := namespace(t, true)
	w := &warnings{}
	cfg := rest.CopyConfig(cl.Config)
	cfg.WarningHandler = w
	dyn, err := dynamic.NewForConfig(cfg)
	require.NoError(t, err)
	mapper := cl.RESTMapper()

	var files []string
	for _, g := range goldenManifests {
		m, err := filepath.Glob(filepath.Join("..", g))
		require.NoError(t, err)
		files = append(files, m...)
	}
	require.NotEmpty(t, files)
	docs := 0
	for _, f := range files {
		rel, _ := filepath.Rel("..", f)
		objs, err := readObjects(f)
		require.NoError(t, err, rel)
		for i, obj := range objs {
			docs++
			name := obj.GetName() + obj.GetGenerateName()
			where := func(what string) string {
				return fmt.Sprintf("%s document %d (%s %s)%s", rel, i+1, obj.GetKind(), name, what)
			}
			obj.SetNamespace(ns)
			if obj.GetKind() == "Namespace" {
				continue
			}
			m, err := mapper.RESTMapping(obj.GroupVersionKind().GroupKind(), obj.GroupVersionKind().Version)
			require.NoError(t, err, where(""))
			var ri dynamic.ResourceInterface = dyn.Resource(m.Resource)
			if m.Scope.Name() == "namespace" {
				ri = dyn.Resource(m.Resource).Namespace(ns)
			}
			dryRun := []string{metav1.DryRunAll}
			if obj.GetKind() == "ServiceAccount" {
				// Made for real, as applying the file makes it before
				// the pods that run as it, which admission looks up.
				dryRun = nil
			}
			_, err = ri.Create(ctx, obj, metav1.CreateOptions{DryRun: dryRun, FieldValidation: "Strict"})
			if dryRun == nil && apierrors.IsAlreadyExists(err) {
				err = nil
			}
			require.NoError(t, err, where(""))
			require.Empty(t, w.take(), where(": warnings"))

			if obj.GetKind() == "Job" {
				tmpl, found, err := unstructured.NestedMap(obj.Object, "spec", "template")
				require.NoError(t, err)
				require.True(t, found, where(": no pod template"))
				pod := &corev1.Pod{}
				require.NoError(t, runtime.DefaultUnstructuredConverter.FromUnstructured(tmpl, pod), where(""))
				pod.Name, pod.Namespace = "dry-run-pod", ns
				_, err = cl.Client.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}, FieldValidation: "Strict"})
				require.NoError(t, err, where(": its pod template as a Pod"))
			}
		}
	}
	t.Logf("%d documents of %d files accepted", docs, len(files))

	// The control: the namespace does refuse a pod that is not restricted.
	bad := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "not-restricted", Namespace: ns},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "main", Image: "busybox"}}},
	}
	_, err = cl.Client.CoreV1().Pods(ns).Create(ctx, bad, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
	require.Error(t, err, "a pod without a restricted security context must be refused")
	require.Contains(t, err.Error(), "violates PodSecurity")
}

// readObjects decodes every YAML document of a file.
func readObjects(path string) ([]*unstructured.Unstructured, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return decodeObjects(b)
}

// decodeObjects decodes every YAML document of b.
func decodeObjects(b []byte) ([]*unstructured.Unstructured, error) {
	d := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(b), 4096)
	var out []*unstructured.Unstructured
	for {
		var m map[string]any
		if err := d.Decode(&m); err != nil {
			if errors.Is(err, io.EOF) {
				return out, nil
			}
			return nil, err
		}
		if len(m) == 0 {
			continue
		}
		out = append(out, &unstructured.Unstructured{Object: m})
	}
}

package e2e

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/pod-security-admission/api"

	"github.com/sluice-ml/sluice/backends"
	"github.com/sluice-ml/sluice/backends/backendtest"
	"github.com/sluice-ml/sluice/backends/kubejob"
	"github.com/sluice-ml/sluice/backends/local"
	"github.com/sluice-ml/sluice/internal/testcluster"
	"github.com/sluice-ml/sluice/pipeline"
)

// shImage is the image of the container tasks here: the test kubelet runs
// its command /bin/sh on the host.
const shImage = "sluice.test/sh:1"

func registerSh(t *testing.T) {
	t.Helper()
	cl.Kubelet.SetImage(shImage, testcluster.Image{Program: "/bin/sh", Entrypoint: []string{"/bin/sh"}})
}

// TestContainerOutputPlaceholder runs a container task, a shell script,
// on each cluster backend: it writes its output to the path its
// {{outputs.Field}} placeholders rendered to (in its arguments and its
// environment), and the run ends as on the local backend, where the path
// is a host path.
func TestContainerOutputPlaceholder(t *testing.T) {
	need(t)
	registerSh(t)
	want, err := pipeline.Run(t.Context(), backendtest.OutputPlaceholder(shImage), local.New(nil), nil)
	require.NoError(t, err)
	for _, backend := range clusterBackends {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
			defer cancel()
			ns, _ := namespace(t, true)
			got, err := pipeline.Run(ctx, backendtest.OutputPlaceholder(shImage), clusterBackend(t, backend, ns, ""), nil)
			require.NoError(t, err)
			assert.Equal(t, observable(want), observable(got))
			assert.JSONEq(t, `{"greeting":"hello world x2"}`, string(got.Step("greet").Output))
		})
	}
}

// TestSecurityOverride checks a task's security override against the
// real API server's Pod Security admission. Compiled for kubejob, the pod
// of the task running as root is refused in a namespace enforcing
// "restricted", with admission's reason, and accepted in one enforcing
// "baseline", where the other tasks' pods (a non-root UID, groups, a
// read-only root filesystem, and no override) are accepted in both. Run
// on Argo, whose controller builds the pods from the templates, the
// root task fails in the "restricted" namespace with that reason while
// the others succeed, and the whole run succeeds in the "baseline" one.
func TestSecurityOverride(t *testing.T) {
	need(t)
	registerSh(t)
	restricted, _ := namespace(&namedT{t, t.Name() + "-restricted"}, true)
	baseline, _ := namespace(&namedT{t, t.Name() + "-baseline"}, false)
	ctx, cancel := context.WithTimeout(t.Context(), 4*time.Minute)
	defer cancel()
	nsObj, err := cl.Client.CoreV1().Namespaces().Get(ctx, baseline, metav1.GetOptions{})
	require.NoError(t, err)
	if nsObj.Labels == nil {
		nsObj.Labels = map[string]string{}
	}
	nsObj.Labels[api.EnforceLevelLabel] = string(api.LevelBaseline)
	_, err = cl.Client.CoreV1().Namespaces().Update(ctx, nsObj, metav1.UpdateOptions{})
	require.NoError(t, err)

	t.Run("kubejob", func(t *testing.T) {
		art, err := pipeline.Compile(ctx, backendtest.Security(shImage), kubejob.New(nil, &kubejob.Options{}), nil)
		require.NoError(t, err)
		require.Len(t, art.(backends.Warner).Warnings(), 1)
		docs, err := decodeObjects(joinDocs(art.Documents()))
		require.NoError(t, err)
		pods := 0
		for _, obj := range docs {
			if obj.GetKind() != "Job" {
				continue
			}
			step := obj.GetLabels()[kubejob.LabelStep]
			tmpl := obj.Object["spec"].(map[string]any)["template"].(map[string]any)
			for _, ns := range []string{restricted, baseline} {
				pod := &corev1.Pod{}
				require.NoError(t, runtime.DefaultUnstructuredConverter.FromUnstructured(tmpl, pod))
				pod.Name, pod.Namespace = "dry-run-"+step, ns
				_, err := cl.Client.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}, FieldValidation: "Strict"})
				pods++
				if step == "root" && ns == restricted {
					require.Error(t, err, "a root pod in a restricted namespace")
					assert.Contains(t, err.Error(), `violates PodSecurity "restricted:latest"`)
					assert.Contains(t, err.Error(), "runAsUser=0")
					continue
				}
				assert.NoError(t, err, "step %s in %s", step, ns)
			}
		}
		assert.Equal(t, 6, pods)
	})

	t.Run("argo", func(t *testing.T) {
		st, err := pipeline.Run(ctx, backendtest.Security(shImage), clusterBackend(t, "argo", restricted, ""), nil)
		require.ErrorIs(t, err, pipeline.ErrRunFailed)
		assert.Equal(t, backends.PhaseSucceeded, st.Step("plain").Phase)
		assert.Equal(t, backends.PhaseSucceeded, st.Step("uid").Phase, st.Step("uid").Message)
		assert.Equal(t, backends.PhaseFailed, st.Step("root").Phase)
		assert.Contains(t, st.Step("root").Message, "violates PodSecurity")

		st, err = pipeline.Run(ctx, backendtest.Security(shImage), clusterBackend(t, "argo", baseline, ""), nil)
		require.NoError(t, err)
		assert.JSONEq(t, `{"greeting":"hello root x1"}`, string(st.Step("root").Output))
	})
}

func joinDocs(docs [][]byte) []byte {
	var out []byte
	for _, d := range docs {
		out = append(append(out, d...), "---\n"...)
	}
	return out
}

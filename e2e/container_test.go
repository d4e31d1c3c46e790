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
// on either backend, the run is refused before anything is created in the
// "restricted" namespace and succeeds in the "baseline" one, where Argo's
// controller builds the pods from the templates with the override.
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

	t.Run("admission", func(t *testing.T) {
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

	for _, backend := range clusterBackends {
		t.Run(backend, func(t *testing.T) {
			_, err := pipeline.Run(ctx, backendtest.Security(shImage), clusterBackend(t, backend, restricted, ""), nil)
			require.Error(t, err)
			assert.Contains(t, err.Error(), `enforces Pod Security "restricted", and the API server would refuse the pods of tasks whose security override (task.WithSecurity) fails it: step "root" needs "baseline"`)

			st, err := pipeline.Run(ctx, backendtest.Security(shImage), clusterBackend(t, backend, baseline, ""), nil)
			require.NoError(t, err)
			for _, s := range []string{"plain", "uid", "root"} {
				assert.JSONEq(t, `{"greeting":"hello `+s+` x1"}`, string(st.Step(s).Output), s)
			}
			if backend != "argo" {
				return
			}
			// The pods Argo's controller made carry the templates'
			// security contexts.
			pods, err := cl.Client.CoreV1().Pods(baseline).List(ctx, metav1.ListOptions{LabelSelector: testcluster.LabelArgoWorkflow})
			require.NoError(t, err)
			var root, uid *corev1.Pod
			for i, p := range pods.Items {
				for _, c := range p.Spec.Containers {
					if c.Name != "main" || c.SecurityContext == nil || c.SecurityContext.RunAsUser == nil {
						continue
					}
					switch *c.SecurityContext.RunAsUser {
					case 0:
						root = &pods.Items[i]
					case 1000:
						uid = &pods.Items[i]
					}
				}
			}
			require.NotNil(t, root, "a pod running as root")
			assert.Nil(t, root.Spec.SecurityContext.RunAsNonRoot)
			require.NotNil(t, uid, "a pod running as 1000")
			require.NotNil(t, uid.Spec.SecurityContext.FSGroup)
			assert.Equal(t, int64(2000), *uid.Spec.SecurityContext.FSGroup)
		})
	}
}

func joinDocs(docs [][]byte) []byte {
	var out []byte
	for _, d := range docs {
		out = append(append(out, d...), "---\n"...)
	}
	return out
}

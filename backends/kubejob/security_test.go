package kubejob_test

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
	"sigs.k8s.io/yaml"

	"github.com/sluice-ml/sluice/backends"
	"github.com/sluice-ml/sluice/backends/backendtest"
	"github.com/sluice-ml/sluice/backends/kubejob"
	"github.com/sluice-ml/sluice/backends/kubepod"
	"github.com/sluice-ml/sluice/internal/golden"
	"github.com/sluice-ml/sluice/pipeline"
	"github.com/sluice-ml/sluice/task"
)

const shImage = "registry.example/sh:1"

// An {{outputs.Field}} placeholder is the output's path in the container,
// in the compiled Job and in the Job the orchestrator creates.
func TestOutputPlaceholderGolden(t *testing.T) {
	art, got := compile(t, backendtest.OutputPlaceholder(shImage), testOptions(), nil)
	golden.Assert(t, bytes.Join(art.Documents(), []byte("---\n")))

	ctr := got.job(t, "greet").Spec.Template.Spec.Containers[0]
	path := task.OutputDir + "/greeting"
	assert.Equal(t, []string{"{{.Name}}", "{{.times}}", path}, ctr.Args)
	assert.Equal(t, []corev1.EnvVar{{Name: "OUT", Value: path}}, ctr.Env)
	assert.Equal(t, path, ctr.TerminationMessagePath, "the one output is the termination message")
	assert.Empty(t, art.(backends.Warner).Warnings())
}

// A task's security override is on its Job's pod and container, over the
// restricted default; running as root warns that the namespace must be
// "baseline".
func TestSecurityGolden(t *testing.T) {
	art, err := pipeline.Compile(t.Context(), backendtest.Security(shImage), kubejob.New(nil, testOptions()), nil)
	require.NoError(t, err)
	golden.Assert(t, bytes.Join(art.Documents(), []byte("---\n")))

	jobs := map[string]*batchv1.Job{}
	for _, doc := range art.Documents() {
		var j batchv1.Job
		if require.NoError(t, yaml.Unmarshal(doc, &j)); j.Kind == "Job" {
			require.NoError(t, yaml.UnmarshalStrict(doc, &j))
			jobs[j.Labels[kubejob.LabelStep]] = &j
		}
	}
	require.Len(t, jobs, 3)
	pod := func(step string) *corev1.PodSpec { return &jobs[step].Spec.Template.Spec }

	assert.Equal(t, kubepod.RestrictedPodSecurityContext(), pod("plain").SecurityContext)
	assert.Equal(t, kubepod.RestrictedSecurityContext(), pod("plain").Containers[0].SecurityContext)

	uid := pod("uid")
	assert.Equal(t, int64(2000), *uid.SecurityContext.FSGroup)
	assert.Equal(t, []int64{4000}, uid.SecurityContext.SupplementalGroups)
	assert.True(t, *uid.SecurityContext.RunAsNonRoot)
	sc := uid.Containers[0].SecurityContext
	assert.Equal(t, int64(1000), *sc.RunAsUser)
	assert.Equal(t, int64(3000), *sc.RunAsGroup)
	assert.True(t, *sc.ReadOnlyRootFilesystem)
	assert.True(t, *sc.RunAsNonRoot)
	assert.False(t, *sc.AllowPrivilegeEscalation, "the rest stays restricted")
	level, _, err := kubepod.PodSecurityLevel(uid)
	require.NoError(t, err)
	assert.Equal(t, "restricted", string(level))

	root := pod("root")
	assert.Nil(t, root.SecurityContext.RunAsNonRoot, "running as root lifts the default runAsNonRoot")
	sc = root.Containers[0].SecurityContext
	assert.Equal(t, int64(0), *sc.RunAsUser)
	assert.False(t, *sc.RunAsNonRoot)
	assert.Equal(t, []corev1.Capability{"ALL"}, sc.Capabilities.Drop)
	level, why, err := kubepod.PodSecurityLevel(root)
	require.NoError(t, err)
	assert.Equal(t, "baseline", string(level))
	assert.Contains(t, why, "runAsUser=0")

	warn := art.(backends.Warner).Warnings()
	require.Len(t, warn, 1)
	assert.Contains(t, warn[0], `step "root": its security override (task.WithSecurity) fails Pod Security "restricted"`)
	assert.Contains(t, warn[0], "pod-security.kubernetes.io/enforce=baseline")
}

// Submitting to a namespace whose enforce level a task's override fails
// is an error before anything is created: the API server would accept
// the Job and refuse its pods, and the step would wait for ever.
func TestSubmitChecksPodSecurityLevel(t *testing.T) {
	for _, tc := range []struct {
		level   string
		wantErr string
	}{
		{"restricted", `kubejob: namespace "ml" enforces Pod Security "restricted", and the API server would refuse the pods of tasks whose security override (task.WithSecurity) fails it: step "root" needs "baseline"`},
		{"baseline", ""},
	} {
		t.Run(tc.level, func(t *testing.T) {
			client := fake.NewSimpleClientset(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "ml", Labels: map[string]string{"pod-security.kubernetes.io/enforce": tc.level}}})
			opts := testOptions()
			opts.Pod.Namespace = "ml"
			b := kubejob.New(client, opts)
			t.Cleanup(func() { _ = b.Close() })
			art, err := pipeline.Compile(t.Context(), backendtest.Security(shImage), b, nil)
			require.NoError(t, err)
			_, err = b.Submit(t.Context(), art, nil)
			jobs, lerr := client.BatchV1().Jobs("ml").List(t.Context(), metav1.ListOptions{})
			require.NoError(t, lerr)
			if tc.wantErr == "" {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.wantErr)
			assert.Empty(t, jobs.Items, "nothing created")
			cms, lerr := client.CoreV1().ConfigMaps("ml").List(t.Context(), metav1.ListOptions{})
			require.NoError(t, lerr)
			assert.Empty(t, cms.Items, "no run record")
		})
	}
}

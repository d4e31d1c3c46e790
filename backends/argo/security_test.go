package argo_test

import (
	"testing"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	"github.com/argoproj/argo-workflows/v3/pkg/client/clientset/versioned/fake"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	kubefake "k8s.io/client-go/kubernetes/fake"

	"github.com/sluice-ml/sluice/backends"
	"github.com/sluice-ml/sluice/backends/argo"
	"github.com/sluice-ml/sluice/backends/backendtest"
	"github.com/sluice-ml/sluice/backends/kubepod"
	"github.com/sluice-ml/sluice/internal/golden"
	"github.com/sluice-ml/sluice/pipeline"
	"github.com/sluice-ml/sluice/task"
)

const shImage = "registry.example/sh:1"

// An {{outputs.Field}} placeholder is rendered by Sluice, to the output's
// path in the container, next to the {{.Field}} placeholders that Argo
// fills in; Argo's validation accepts the result.
func TestOutputPlaceholderGolden(t *testing.T) {
	art, err := pipeline.Compile(t.Context(), backendtest.OutputPlaceholder(shImage), argo.New(nil, testOptions()), nil)
	require.NoError(t, err)
	spec := checkDocument(t, art.Documents()[0])
	golden.Assert(t, art.Documents()[0])

	tmpl := templateOf(t, &wfv1.Workflow{Spec: *spec}, "greet")
	path := task.OutputDir + "/greeting"
	assert.Equal(t, []string{"{{inputs.parameters.in-name}}", "{{inputs.parameters.in-times}}", path}, tmpl.Container.Args)
	assert.Equal(t, []corev1.EnvVar{{Name: "OUT", Value: path}}, tmpl.Container.Env)
	assert.Equal(t, path, tmpl.Outputs.Parameters[0].ValueFrom.Path, "the file the output parameter is read from")
	assert.Empty(t, art.(backends.Warner).Warnings())
}

// A task's security override is its template's pod security context and
// container security context, over the restricted default; running as
// root warns that the namespace must be "baseline".
func TestSecurityGolden(t *testing.T) {
	art, err := pipeline.Compile(t.Context(), backendtest.Security(shImage), argo.New(nil, testOptions()), nil)
	require.NoError(t, err)
	spec := argoValidate(t, art.Documents()[0])
	golden.Assert(t, art.Documents()[0])

	assert.Equal(t, kubepod.RestrictedPodSecurityContext(), spec.SecurityContext, "the workflow keeps the default")
	plain := templateOf(t, &wfv1.Workflow{Spec: *spec}, "plain")
	assert.Nil(t, plain.SecurityContext)
	assert.Equal(t, kubepod.RestrictedSecurityContext(), plain.Container.SecurityContext)

	uid := templateOf(t, &wfv1.Workflow{Spec: *spec}, "uid")
	require.NotNil(t, uid.SecurityContext)
	assert.Equal(t, int64(2000), *uid.SecurityContext.FSGroup)
	assert.Equal(t, []int64{4000}, uid.SecurityContext.SupplementalGroups)
	assert.True(t, *uid.SecurityContext.RunAsNonRoot)
	sc := uid.Container.SecurityContext
	assert.Equal(t, int64(1000), *sc.RunAsUser)
	assert.Equal(t, int64(3000), *sc.RunAsGroup)
	assert.True(t, *sc.ReadOnlyRootFilesystem)

	root := templateOf(t, &wfv1.Workflow{Spec: *spec}, "root")
	require.NotNil(t, root.SecurityContext)
	assert.Nil(t, root.SecurityContext.RunAsNonRoot)
	assert.Equal(t, int64(0), *root.Container.SecurityContext.RunAsUser)
	assert.False(t, *root.Container.SecurityContext.RunAsNonRoot)

	// Every template but root's passes "restricted".
	spec.Templates = removeTemplate(spec.Templates, root.Name)
	checkPodSecurity(t, spec)

	warn := art.(backends.Warner).Warnings()
	require.Len(t, warn, 1)
	assert.Contains(t, warn[0], `step "root": its security override (task.WithSecurity) fails Pod Security "restricted"`)
	assert.Contains(t, warn[0], "pod-security.kubernetes.io/enforce=baseline")
}

func removeTemplate(ts []wfv1.Template, name string) []wfv1.Template {
	var out []wfv1.Template
	for _, t := range ts {
		if t.Name != name {
			out = append(out, t)
		}
	}
	return out
}

// Submitting to a namespace whose enforce level a task's override fails
// is an error before anything is created, as on kubejob; a level it
// passes is not.
func TestSubmitChecksTaskSecurityLevel(t *testing.T) {
	fragment := argo.RestrictedExecutorConfig
	for _, tc := range []struct {
		level   string
		wantErr string
	}{
		{"restricted", `argo: namespace "ml" enforces Pod Security "restricted", and the API server would refuse the pods of tasks whose security override (task.WithSecurity) fails it: step "root" needs "baseline"`},
		{"baseline", ""},
	} {
		t.Run(tc.level, func(t *testing.T) {
			kc := kubefake.NewClientset(namespace("ml", tc.level), controllerConfig("argo", map[string]string{"executor": fragment[len("executor:\n"):]}))
			cs := fake.NewSimpleClientset()
			nameOnCreate(cs)
			b := argo.New(cs, &argo.Options{Pod: kubepod.Options{Image: testImage, Command: testCommand, Namespace: "ml"}, KubeClient: kc})
			art, err := pipeline.Compile(t.Context(), backendtest.Security(shImage), b, nil)
			require.NoError(t, err)
			_, err = b.Submit(t.Context(), art, &backends.SubmitOptions{})
			if tc.wantErr == "" {
				require.NoError(t, err)
				assert.Len(t, cs.Actions(), 1, "the workflow is created")
				return
			}
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.wantErr)
			assert.Empty(t, cs.Actions(), "nothing is created")
		})
	}
}

package argo_test

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"testing"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	"github.com/argoproj/argo-workflows/v3/pkg/client/clientset/versioned/fake"
	"github.com/argoproj/argo-workflows/v3/workflow/templateresolution"
	"github.com/argoproj/argo-workflows/v3/workflow/validate"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/pod-security-admission/api"
	"k8s.io/pod-security-admission/policy"
	"sigs.k8s.io/yaml"
)

// decodeStrict decodes one YAML document into out, failing on any field
// the schema does not have.
func decodeStrict(t *testing.T, doc []byte, out any) {
	t.Helper()
	j, err := yaml.YAMLToJSON(doc)
	require.NoError(t, err)
	dec := json.NewDecoder(bytes.NewReader(j))
	dec.DisallowUnknownFields()
	require.NoError(t, dec.Decode(out), "strict decode")
}

// checkDocument decodes doc strictly by its kind, runs Argo's own
// validation and checks every pod template against Pod Security
// "restricted". It returns the workflow spec.
func checkDocument(t *testing.T, doc []byte) *wfv1.WorkflowSpec {
	t.Helper()
	spec := argoValidate(t, doc)
	checkPodSecurity(t, spec)
	return spec
}

// argoValidate is checkDocument without the Pod Security check.
func argoValidate(t *testing.T, doc []byte) *wfv1.WorkflowSpec {
	t.Helper()
	var tm struct{ Kind string }
	require.NoError(t, yaml.Unmarshal(doc, &tm))
	cs := fake.NewSimpleClientset()
	wftGetter := templateresolution.WrapWorkflowTemplateInterface(cs.ArgoprojV1alpha1().WorkflowTemplates("default"))
	cwftGetter := templateresolution.WrapClusterWorkflowTemplateInterface(cs.ArgoprojV1alpha1().ClusterWorkflowTemplates())
	var spec *wfv1.WorkflowSpec
	switch tm.Kind {
	case "Workflow":
		var wf wfv1.Workflow
		decodeStrict(t, doc, &wf)
		require.NoError(t, validate.ValidateWorkflow(wftGetter, cwftGetter, &wf, nil, validate.ValidateOpts{Submit: true}), "argo validate")
		spec = &wf.Spec
	case "WorkflowTemplate":
		var wft wfv1.WorkflowTemplate
		decodeStrict(t, doc, &wft)
		require.NoError(t, validate.ValidateWorkflowTemplate(wftGetter, cwftGetter, &wft, nil, validate.ValidateOpts{}), "argo validate")
		spec = &wft.Spec
	case "CronWorkflow":
		var cwf wfv1.CronWorkflow
		decodeStrict(t, doc, &cwf)
		require.NoError(t, validate.ValidateCronWorkflow(t.Context(), wftGetter, cwftGetter, &cwf, nil), "argo validate")
		spec = &cwf.Spec.WorkflowSpec
	default:
		t.Fatalf("unknown kind %q", tm.Kind)
	}
	return spec
}

func checkPodSecurity(t *testing.T, spec *wfv1.WorkflowSpec) {
	t.Helper()
	ev, err := policy.NewEvaluator(policy.DefaultChecks(), nil)
	require.NoError(t, err)
	for _, tmpl := range spec.Templates {
		if tmpl.Container == nil {
			continue
		}
		ps := &corev1.PodSpec{
			Containers:      []corev1.Container{*tmpl.Container},
			Volumes:         tmpl.Volumes,
			NodeSelector:    tmpl.NodeSelector,
			Tolerations:     tmpl.Tolerations,
			Affinity:        tmpl.Affinity,
			SecurityContext: spec.SecurityContext,
		}
		if tmpl.SecurityContext != nil {
			ps.SecurityContext = tmpl.SecurityContext
		}
		res := policy.AggregateCheckResults(ev.EvaluatePod(api.LevelVersion{Level: api.LevelRestricted, Version: api.LatestVersion()}, &metav1.ObjectMeta{Labels: tmpl.Metadata.Labels, Annotations: tmpl.Metadata.Annotations}, ps))
		require.True(t, res.Allowed, "template %s fails Pod Security restricted: %s", tmpl.Name, res.ForbiddenDetail())
	}
}

// noKubeconfig leaves the test without a kubeconfig to connect by: no
// $KUBECONFIG file, no ~/.kube/config, not in a pod.
func noKubeconfig(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("KUBECONFIG", filepath.Join(dir, "missing"))
	t.Setenv("HOME", dir)
	t.Setenv("KUBERNETES_SERVICE_HOST", "")
}

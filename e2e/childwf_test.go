package e2e

import (
	"context"
	"testing"
	"time"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/ptr"

	"github.com/sluice-ml/sluice/backends/backendtest"
	"github.com/sluice-ml/sluice/pipeline"
)

// A workflow that runs another as a child, the way a pipeline too large
// for one Workflow object runs its shards: a resource template (Argo's
// executor, argoexec resource create) creates a Workflow from a
// WorkflowTemplate, owned by the parent, waits for it to end and reads
// its status.
func TestArgoChildWorkflow(t *testing.T) {
	need(t)
	ctx, cancel := context.WithTimeout(t.Context(), 4*time.Minute)
	defer cancel()
	ns, _ := namespace(t, true)
	ac := argoClient(t)

	// The executor in the resource pod works with the pod's account.
	_, err := cl.Client.RbacV1().Roles(ns).Create(ctx, &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Name: "shards"},
		Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{"argoproj.io"}, Resources: []string{"workflows"}, Verbs: []string{"create", "get", "list", "watch", "patch"}},
			{APIGroups: []string{"argoproj.io"}, Resources: []string{"workflowtaskresults"}, Verbs: []string{"create", "patch"}},
		},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	_, err = cl.Client.RbacV1().RoleBindings(ns).Create(ctx, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "shards"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "shards"},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: "default", Namespace: ns}},
	}, metav1.CreateOptions{})
	require.NoError(t, err)

	// The child: the Diamond pipeline, compiled by the backend, as a
	// WorkflowTemplate.
	var c backendtest.Case
	for _, k := range backendtest.Cases() {
		if k.Name == "Diamond" {
			c = k
		}
	}
	b := clusterBackend(t, "argo", ns, imageFor(t, "argo", c.Name))
	art, err := pipeline.Compile(ctx, c.Build(), b, nil)
	require.NoError(t, err)
	var child *wfv1.Workflow
	require.True(t, art.As(&child))

	// The child's entrypoint wraps its DAG, whose output is exported to
	// the child Workflow's status.outputs (globalName) as one JSON object
	// of the outputs a later shard reads.
	spec := child.Spec.DeepCopy()
	for i := range spec.Templates {
		if spec.Templates[i].Name == "main" {
			spec.Templates[i].Outputs.Parameters = []wfv1.Parameter{{Name: "out", GlobalName: "out", ValueFrom: &wfv1.ValueFrom{
				Expression: "toJson({'join.o': tasks.join.outputs.parameters.o, 'left.o': tasks.left.outputs.parameters.o})"}}}
		}
	}
	spec.Templates = append(spec.Templates, wfv1.Template{Name: "shard", DAG: &wfv1.DAGTemplate{Tasks: []wfv1.DAGTask{{Name: "main", Template: "main"}}}})
	spec.Entrypoint = "shard"
	_, err = ac.ArgoprojV1alpha1().WorkflowTemplates(ns).Create(ctx, &wfv1.WorkflowTemplate{
		ObjectMeta: metav1.ObjectMeta{Name: "diamond-s0"},
		Spec:       *spec,
	}, metav1.CreateOptions{})
	require.NoError(t, err)

	// A manifest takes a value as JSON text, a YAML double-quoted
	// scalar, whatever characters it holds.
	manifest := func(tmpl string, args ...string) string {
		m := "apiVersion: argoproj.io/v1alpha1\nkind: Workflow\nmetadata:\n  generateName: '{{workflow.name}}-'\n" +
			"  labels:\n    sluice.dev/parent: '{{workflow.name}}'\nspec:\n  workflowTemplateRef:\n    name: " + tmpl + "\n"
		if len(args) > 0 {
			m += "  arguments:\n    parameters:\n"
			for _, a := range args {
				m += "    - name: " + a + "\n      value: {{=toJson(inputs.parameters." + a + ")}}\n"
			}
		}
		return m
	}
	shard := func(name, tmpl string, args ...string) wfv1.Template {
		t := wfv1.Template{Name: name, Resource: &wfv1.ResourceTemplate{
			Action: "create", SetOwnerReference: true, Manifest: manifest(tmpl, args...),
			SuccessCondition: "status.phase == Succeeded", FailureCondition: "status.phase in (Failed, Error)",
		}, Outputs: wfv1.Outputs{Parameters: []wfv1.Parameter{
			{Name: "out", ValueFrom: &wfv1.ValueFrom{JSONPath: `{.status.outputs.parameters[?(@.name=="out")].value}`}},
			{Name: "name", ValueFrom: &wfv1.ValueFrom{JSONPath: `{.metadata.name}`}},
		}}}
		for _, a := range args {
			t.Inputs.Parameters = append(t.Inputs.Parameters, wfv1.Parameter{Name: a})
		}
		return t
	}
	parent := &wfv1.Workflow{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "diamond-"},
		Spec: wfv1.WorkflowSpec{
			Entrypoint:      "main",
			SecurityContext: child.Spec.SecurityContext,
			Templates: []wfv1.Template{
				{Name: "main", DAG: &wfv1.DAGTemplate{FailFast: ptr.To(false), Tasks: []wfv1.DAGTask{
					{Name: "s0", Template: "s0"},
					// Reads one value of s0's export: a picked object.
					{Name: "s1", Template: "s1", Depends: "s0", Arguments: wfv1.Arguments{Parameters: []wfv1.Parameter{
						{Name: "s0", Value: wfv1.AnyStringPtr(`{{=toJson(sprig.pick(fromJSON(tasks.s0.outputs.parameters.out), 'join.o'))}}`)},
					}}},
					// A child that fails: its template does not exist.
					{Name: "bad", Template: "bad"},
				}}},
				shard("s0", "diamond-s0"),
				shard("s1", "diamond-s0", "s0"),
				shard("bad", "no-such-template"),
			},
		},
	}
	wf, err := ac.ArgoprojV1alpha1().Workflows(ns).Create(ctx, parent, metav1.CreateOptions{})
	require.NoError(t, err)
	err = wait.PollUntilContextCancel(ctx, 200*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		wf, err = ac.ArgoprojV1alpha1().Workflows(ns).Get(ctx, wf.Name, metav1.GetOptions{})
		return err == nil && wf.Status.Phase.Completed(), nil
	})
	require.NoError(t, err, "the parent did not end: %+v", wf.Status)
	nodes := map[string]wfv1.NodeStatus{}
	for _, n := range wf.Status.Nodes {
		t.Logf("parent node %s: %s %q %v", n.DisplayName, n.Phase, n.Message, n.Outputs)
		nodes[n.DisplayName] = n
	}
	assert.Equal(t, wfv1.WorkflowFailed, wf.Status.Phase, "the bad shard fails the parent")
	assert.Equal(t, wfv1.NodeFailed, nodes["bad"].Phase)
	require.Equal(t, wfv1.NodeSucceeded, nodes["s0"].Phase, nodes["s0"].Message)
	require.Equal(t, wfv1.NodeSucceeded, nodes["s1"].Phase, nodes["s1"].Message)
	assert.JSONEq(t, `{"join.o":"{\"V\":14}","left.o":"{\"V\":11}"}`, param(nodes["s0"].Outputs, "out"))

	kids, err := ac.ArgoprojV1alpha1().Workflows(ns).List(ctx, metav1.ListOptions{LabelSelector: "sluice.dev/parent=" + wf.Name})
	require.NoError(t, err)
	byName := map[string]wfv1.Workflow{}
	for _, k := range kids.Items {
		byName[k.Name] = k
		t.Logf("child %s: %s %q args %v", k.Name, k.Status.Phase, k.Status.Message, k.Spec.Arguments.Parameters)
		require.Len(t, k.OwnerReferences, 1)
		assert.Equal(t, wf.UID, k.OwnerReferences[0].UID, "owned by the parent, which takes it when it goes")
	}
	require.Len(t, kids.Items, 3)
	k1 := byName[param(nodes["s1"].Outputs, "name")]
	require.Len(t, k1.Spec.Arguments.Parameters, 1)
	assert.JSONEq(t, `{"join.o":"{\"V\":14}"}`, k1.Spec.Arguments.Parameters[0].Value.String())

	// The children go with the parent (the garbage collector follows
	// their owner reference).
	require.NoError(t, ac.ArgoprojV1alpha1().Workflows(ns).Delete(ctx, wf.Name, metav1.DeleteOptions{PropagationPolicy: ptr.To(metav1.DeletePropagationBackground)}))
	err = wait.PollUntilContextCancel(ctx, 200*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		kids, err := ac.ArgoprojV1alpha1().Workflows(ns).List(ctx, metav1.ListOptions{LabelSelector: "sluice.dev/parent=" + wf.Name})
		return err == nil && len(kids.Items) == 0, nil
	})
	require.NoError(t, err, "the children outlived the parent")
}

// param is the value of output parameter name, "" when there is none.
func param(o *wfv1.Outputs, name string) string {
	if o == nil {
		return ""
	}
	for _, p := range o.Parameters {
		if p.Name == name && p.Value != nil {
			return p.Value.String()
		}
	}
	return ""
}

package pipeline_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	"github.com/argoproj/argo-workflows/v3/pkg/client/clientset/versioned/fake"
	"github.com/argoproj/argo-workflows/v3/workflow/templateresolution"
	"github.com/argoproj/argo-workflows/v3/workflow/validate"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/yaml"

	"github.com/sluice-ml/sluice/backends"
	"github.com/sluice-ml/sluice/backends/argo"
	"github.com/sluice-ml/sluice/backends/kubejob"
	"github.com/sluice-ml/sluice/backends/kubepod"
	"github.com/sluice-ml/sluice/backends/local"
	"github.com/sluice-ml/sluice/pipeline"
)

// FuzzStringsAndEdges builds pipelines through the public API as
// FuzzValidate does (refs between steps, forward and self refs,
// conditions, fan-outs over other steps' outputs, After), with strings
// taken from the input: pipeline, step and parameter names, parameter
// values, images, commands, arguments and their placeholders, env names
// and values, output fields and paths, quantities, GPU models and MIG
// profiles, node pools with their labels and taints. It checks that
// Validate never panics and reports only field errors, and that whatever
// Validate accepts compiles on local, kubejob and argo without a panic,
// failing only with an error that wraps errors.ErrUnsupported, into
// output that is well-formed: kubejob's documents decode strictly into
// their upstream types and round-trip, with names, labels, env names,
// selectors and tolerations that apimachinery's validation accepts; Argo's
// Workflow decodes strictly and passes Argo's own validation, its pod
// templates the same checks.
func FuzzStringsAndEdges(f *testing.F) {
	for _, s := range fzSeeds() {
		f.Add(s)
	}
	f.Fuzz(fsCheck)
}

func fsCheck(t *testing.T, data []byte) {
	var p *pipeline.Pipeline
	var overrides map[string]string
	mustNotPanic(t, "build", func() { p, overrides = fzBuildFrom(&fzDec{b: data, raw: true}) })
	var plan *backends.Plan
	var err error
	mustNotPanic(t, "Plan", func() { plan, err = p.Plan(overrides) })
	if err != nil {
		fes := pipeline.FieldErrors(err)
		if len(fes) == 0 {
			t.Fatalf("an error without field errors: %v", err)
		}
		for _, fe := range fes {
			if !strings.HasPrefix(fe.Field, "pipeline.") || !slices.Contains(fzTypes, fe.Type) || fe.Detail == "" {
				t.Errorf("malformed field error: %#v", fe)
			}
		}
		return
	}
	fzCheckPlan(t, plan)
	for _, b := range fsBackends() {
		name := backends.NameOf(b)
		var art backends.Artifact
		var cerr error
		mustNotPanic(t, "Compile on "+name, func() {
			art, cerr = pipeline.Compile(t.Context(), p, b, &pipeline.CompileOptions{Params: overrides})
		})
		if cerr != nil {
			// A backend rejects only what it documents as unsupported,
			// or reports field errors as Validate does (see
			// backends.Linter).
			if !errors.Is(cerr, errors.ErrUnsupported) && len(pipeline.FieldErrors(cerr)) == 0 {
				t.Fatalf("Validate accepted the pipeline but %s cannot compile it: %v", name, cerr)
			}
			if msg := cerr.Error(); strings.Contains(msg, " [running]:") || strings.Contains(msg, "runtime error:") {
				t.Fatalf("%s: an error with a stack trace: %v", name, cerr)
			}
			continue
		}
		var docs [][]byte
		mustNotPanic(t, "Documents on "+name, func() { docs = art.Documents() })
		switch name {
		case "kubejob":
			fsCheckKubejob(t, docs)
		case "argo":
			fsCheckArgo(t, docs)
		default:
			for _, doc := range docs {
				var v any
				if err := yaml.Unmarshal(doc, &v); err != nil {
					t.Fatalf("%s: a document that is not YAML: %v\n%s", name, err, doc)
				}
			}
		}
	}
}

// fsBackends are the linked backends, compile only: no cluster.
var fsBackends = sync.OnceValue(func() []backends.Backend {
	pod := kubepod.Options{Image: "registry.example/pipeline:1", Command: []string{"/pipeline"}}
	return []backends.Backend{local.New(nil), kubejob.New(nil, &kubejob.Options{Pod: pod}), argo.New(nil, &argo.Options{Pod: pod})}
})

// fsDecode decodes a YAML document strictly (no field the type lacks)
// and checks that it encodes back to the same JSON.
func fsDecode(t *testing.T, doc []byte, out any) {
	t.Helper()
	j, err := yaml.YAMLToJSON(doc)
	if err != nil {
		t.Fatalf("not YAML: %v\n%s", err, doc)
	}
	dec := json.NewDecoder(bytes.NewReader(j))
	dec.DisallowUnknownFields()
	if err := dec.Decode(out); err != nil {
		t.Fatalf("strict decode into %T: %v\n%s", out, err, doc)
	}
	back, err := json.Marshal(out)
	if err != nil {
		t.Fatalf("encode %T: %v", out, err)
	}
	again := reflect.New(reflect.TypeOf(out).Elem()).Interface()
	if err := json.Unmarshal(back, again); err != nil || !equality.Semantic.DeepEqual(out, again) {
		t.Fatalf("%T does not round-trip (%v):\n%s\nthen:\n%s", out, err, j, back)
	}
}

func fsCheckKubejob(t *testing.T, docs [][]byte) {
	t.Helper()
	for _, doc := range docs {
		var tm struct{ Kind string }
		if err := yaml.Unmarshal(doc, &tm); err != nil {
			t.Fatalf("kubejob: not YAML: %v", err)
		}
		switch tm.Kind {
		case "ServiceAccount":
			fsCheckObject(t, doc, &corev1.ServiceAccount{})
		case "Role":
			fsCheckObject(t, doc, &rbacv1.Role{})
		case "RoleBinding":
			fsCheckObject(t, doc, &rbacv1.RoleBinding{})
		case "Job":
			var j batchv1.Job
			fsDecode(t, doc, &j)
			// A Job's name is also its pods' job-name label: a label.
			fsCheckName(t, "Job", j.Name, validation.IsDNS1123Label)
			fsCheckLabels(t, "Job "+j.Name, j.Labels)
			fsCheckLabels(t, "Job "+j.Name+" pod template", j.Spec.Template.Labels)
			fsCheckAnnotations(t, "Job "+j.Name, j.Annotations)
			fsCheckPod(t, "Job "+j.Name, &j.Spec.Template.Spec)
		default:
			t.Fatalf("kubejob: a document of kind %q", tm.Kind)
		}
	}
}

// fsCheckObject decodes doc into obj and checks its name and labels.
func fsCheckObject(t *testing.T, doc []byte, obj metav1.Object) {
	t.Helper()
	fsDecode(t, doc, obj)
	what := fmt.Sprintf("%T", obj)
	fsCheckName(t, what, obj.GetName(), validation.IsDNS1123Subdomain)
	fsCheckLabels(t, what+" "+obj.GetName(), obj.GetLabels())
}

var fsArgoGetters = sync.OnceValues(func() (templateresolution.WorkflowTemplateNamespacedGetter, templateresolution.ClusterWorkflowTemplateGetter) {
	cs := fake.NewSimpleClientset()
	return templateresolution.WrapWorkflowTemplateInterface(cs.ArgoprojV1alpha1().WorkflowTemplates("default")),
		templateresolution.WrapClusterWorkflowTemplateInterface(cs.ArgoprojV1alpha1().ClusterWorkflowTemplates())
})

func fsCheckArgo(t *testing.T, docs [][]byte) {
	t.Helper()
	if len(docs) != 1 {
		t.Fatalf("argo: %d documents", len(docs))
	}
	var wf wfv1.Workflow
	fsDecode(t, docs[0], &wf)
	fsCheckLabels(t, "Workflow", wf.Labels)
	wftGetter, cwftGetter := fsArgoGetters()
	if err := validate.ValidateWorkflow(wftGetter, cwftGetter, &wf, nil, validate.ValidateOpts{Submit: true}); err != nil {
		t.Fatalf("Argo rejects the workflow: %v\n%s", err, docs[0])
	}
	for _, tm := range wf.Spec.Templates {
		what := "template " + tm.Name
		fsCheckLabels(t, what, tm.Metadata.Labels)
		fsCheckAnnotations(t, what, tm.Metadata.Annotations)
		fsCheckSelector(t, what, tm.NodeSelector)
		fsCheckTolerations(t, what, tm.Tolerations)
		fsCheckAffinity(t, what, tm.Affinity)
		if tm.Container != nil {
			fsCheckContainer(t, what, tm.Container)
		}
		for _, v := range tm.Volumes {
			fsCheckName(t, what+" volume", v.Name, validation.IsDNS1123Label)
		}
	}
}

func fsCheckName(t *testing.T, what, name string, check func(string) []string) {
	t.Helper()
	if msgs := check(name); len(msgs) > 0 {
		t.Errorf("%s name %q: %v", what, name, msgs)
	}
}

func fsCheckLabels(t *testing.T, what string, labels map[string]string) {
	t.Helper()
	for k, v := range labels {
		if msgs := slices.Concat(validation.IsQualifiedName(k), validation.IsValidLabelValue(v)); len(msgs) > 0 {
			t.Errorf("%s: label %q=%q: %v", what, k, v, msgs)
		}
	}
}

func fsCheckAnnotations(t *testing.T, what string, annotations map[string]string) {
	t.Helper()
	for k := range annotations {
		if msgs := validation.IsQualifiedName(strings.ToLower(k)); len(msgs) > 0 {
			t.Errorf("%s: annotation %q: %v", what, k, msgs)
		}
	}
}

// fsCheckSelector checks a node selector: label keys and values.
func fsCheckSelector(t *testing.T, what string, sel map[string]string) {
	t.Helper()
	fsCheckLabels(t, what+" node selector", sel)
}

func fsCheckTolerations(t *testing.T, what string, tols []corev1.Toleration) {
	t.Helper()
	for _, tol := range tols {
		if tol.Key != "" {
			if msgs := validation.IsQualifiedName(tol.Key); len(msgs) > 0 {
				t.Errorf("%s: toleration key %q: %v", what, tol.Key, msgs)
			}
		}
		switch tol.Operator {
		case corev1.TolerationOpExists:
			if tol.Value != "" {
				t.Errorf("%s: toleration %q: Exists with value %q", what, tol.Key, tol.Value)
			}
		case corev1.TolerationOpEqual, "":
			if tol.Key == "" {
				t.Errorf("%s: toleration with operator Equal and no key", what)
			}
			if msgs := validation.IsValidLabelValue(tol.Value); len(msgs) > 0 {
				t.Errorf("%s: toleration %q value %q: %v", what, tol.Key, tol.Value, msgs)
			}
		default:
			t.Errorf("%s: toleration operator %q", what, tol.Operator)
		}
		switch tol.Effect {
		case "", corev1.TaintEffectNoSchedule, corev1.TaintEffectPreferNoSchedule, corev1.TaintEffectNoExecute:
		default:
			t.Errorf("%s: toleration %q effect %q", what, tol.Key, tol.Effect)
		}
	}
}

func fsCheckAffinity(t *testing.T, what string, a *corev1.Affinity) {
	t.Helper()
	if a == nil || a.NodeAffinity == nil {
		return
	}
	var terms []corev1.NodeSelectorTerm
	if r := a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution; r != nil {
		terms = append(terms, r.NodeSelectorTerms...)
	}
	for _, p := range a.NodeAffinity.PreferredDuringSchedulingIgnoredDuringExecution {
		terms = append(terms, p.Preference)
	}
	for _, term := range terms {
		for _, e := range term.MatchExpressions {
			msgs := validation.IsQualifiedName(e.Key)
			for _, v := range e.Values {
				msgs = append(msgs, validation.IsValidLabelValue(v)...)
			}
			if len(msgs) > 0 {
				t.Errorf("%s: node affinity %q %s %q: %v", what, e.Key, e.Operator, e.Values, msgs)
			}
		}
	}
}

func fsCheckPod(t *testing.T, what string, spec *corev1.PodSpec) {
	t.Helper()
	fsCheckSelector(t, what, spec.NodeSelector)
	fsCheckTolerations(t, what, spec.Tolerations)
	fsCheckAffinity(t, what, spec.Affinity)
	names := map[string]bool{}
	for _, c := range slices.Concat(spec.InitContainers, spec.Containers) {
		if names[c.Name] {
			t.Errorf("%s: two containers named %q", what, c.Name)
		}
		names[c.Name] = true
		fsCheckContainer(t, what, &c)
	}
	vols := map[string]bool{}
	for _, v := range spec.Volumes {
		fsCheckName(t, what+" volume", v.Name, validation.IsDNS1123Label)
		vols[v.Name] = true
	}
	for _, c := range slices.Concat(spec.InitContainers, spec.Containers) {
		for _, m := range c.VolumeMounts {
			if !vols[m.Name] {
				t.Errorf("%s: container %s mounts volume %q, which the pod does not have", what, c.Name, m.Name)
			}
		}
	}
}

// fsCheckContainer checks c; an Argo template's container may have no
// name (Argo names it "main").
func fsCheckContainer(t *testing.T, what string, c *corev1.Container) {
	t.Helper()
	what = fmt.Sprintf("%s container %q", what, c.Name)
	if c.Name != "" {
		fsCheckName(t, what, c.Name, validation.IsDNS1123Label)
	}
	if c.Image == "" || strings.TrimSpace(c.Image) != c.Image {
		t.Errorf("%s: image %q", what, c.Image)
	}
	for _, e := range c.Env {
		if msgs := validation.IsEnvVarName(e.Name); len(msgs) > 0 {
			t.Errorf("%s: env %q: %v", what, e.Name, msgs)
		}
	}
	for name, q := range c.Resources.Limits {
		if q.Sign() < 0 {
			t.Errorf("%s: limit %s %s", what, name, q.String())
		}
		if r, ok := c.Resources.Requests[name]; ok && r.Cmp(q) > 0 {
			t.Errorf("%s: request %s %s over its limit %s", what, name, r.String(), q.String())
		}
	}
	for name, q := range c.Resources.Requests {
		if q.Sign() < 0 {
			t.Errorf("%s: request %s %s", what, name, q.String())
		}
	}
	for _, m := range c.VolumeMounts {
		if !strings.HasPrefix(m.MountPath, "/") {
			t.Errorf("%s: mount path %q", what, m.MountPath)
		}
	}
}

// TestStringsFuzzGeneratorReachesBackends keeps the strings generator
// honest: over many random inputs it must produce pipelines that Validate
// accepts (so the compile checks run) and ones it rejects.
func TestStringsFuzzGeneratorReachesBackends(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	valid, invalid := 0, 0
	for range 400 {
		b := make([]byte, r.IntN(160))
		for i := range b {
			b[i] = byte(r.UintN(256))
			if r.IntN(2) == 0 {
				b[i] = 0
			}
		}
		p, o := fzBuildFrom(&fzDec{b: b, raw: true})
		if _, err := p.Plan(o); err != nil {
			invalid++
			continue
		}
		valid++
		fsCheck(t, b)
	}
	t.Logf("valid %d, invalid %d", valid, invalid)
	if valid < 40 || invalid < 40 {
		t.Errorf("generator is lopsided: %d valid, %d invalid", valid, invalid)
	}
}

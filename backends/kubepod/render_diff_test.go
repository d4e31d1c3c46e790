package kubepod_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	yamlv2 "go.yaml.in/yaml/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"

	"github.com/sluice-ml/sluice/backends"
	"github.com/sluice-ml/sluice/backends/argo"
	"github.com/sluice-ml/sluice/backends/kubejob"
	"github.com/sluice-ml/sluice/backends/kubepod"
	"github.com/sluice-ml/sluice/internal/benchdag"
	"github.com/sluice-ml/sluice/pipeline"
	"github.com/sluice-ml/sluice/resources"
	"github.com/sluice-ml/sluice/serve"
)

// The tests of this file check Render against the implementation it
// replaced (kubepod.OracleRender: json.Marshal, a map tree, go-yaml's
// Marshal): the same value always, the same bytes wherever go-yaml does
// not fold a line (no line of Render's output is longer than 80
// characters), and — in a process where go-yaml folds nothing
// (yamlv2.FutureLineWrap) — the same bytes always.

var (
	testImage   = "registry.example/sluice-suite:v1"
	testCommand = []string{"/ko-app/suite"}
)

// tricky are strings that go-yaml writes in each of its styles, or that
// look like another type, or that its emitter treats specially.
var tricky = []string{
	"", " ", "  ", "x", "true", "True", "TRUE", "yes", "Yes", "no", "NO", "on", "Off", "y", "Y", "n", "N",
	"null", "Null", "~", "1", "-1", "+1", "0", "-0", "00", "0x1F", "0X1f", "0o17", "0b101", "-0b1", "0b", "017", "09",
	"1e3", "1E3", "1e+3", ".5", "-.5", "1.", "1.5.2", "1_000", "_1", "1__0", "0x_1F", "1:20", "-1:20:30.5", "190:20:30",
	"1:60", "12:30", "2024-01-02", "2024-1-2", "2024-1-2T3:4:5Z", "2001-12-14 21:59:43.10", "2001-12-14t21:59:43.10-05:00",
	"1234-", "9999-99-99", ".inf", "-.Inf", "+.INF", ".NaN", ".nan", "<<", "=", "-", "--", "---", "--- x", "...", ".... x",
	"-x", "- x", "-\tx", "?", "? x", "?x", ":", ":x", ": x", "x:", "x: y", "x:y", "a:b", "#", "x #y", "x#y", "x\t#y",
	"&a", "*a", "!t", "!!str", "|", "|-", ">", "'", "''", "\"", "%p", "@x", "`x", "[", "]", "{", "}", ",", "a,b",
	"a[1]", "[1]", "{a: 1}", "{{tasks.x.outputs.parameters.o}}", "{{=a ? 'b' : 'c'}}", "{{=m.key}}",
	" lead", "trail ", "in side", "a  b", "a\nb", "a\n", "\n", "\n\n", "a\n\n", "\na", " \na", "a \nb", "a\n b",
	"a\n\nb\n", " a\n", "a\n ", "a\tb", "\t", "\tx", "\r", "a\r\nb", "a\rb", "\u0085", "a\u0085b", "\u00a0", "a\u00a0",
	"\u2028", "a\u2028b", "a\u2028", "a \u2028b", "\u2029", "a\u2029 b", "\ufeff", "\ufeffab", "\ufeff'a\n", "\uffff", "\ufffe",
	"\ufffd", "é", "été", "日本語", "😀", "a😀", "\x00", "a\x00b", "\x7f", "\x1b", "\x01\x02", "\\", "back\\slash",
	"it's", "'quoted'", "say \"hi\"", "<script>&amp;", "\xff", "a\xffb", "\xc3", "\xe2\x80", "caf\xe9",
	`printf '%s %s %s' "$1" "$2" "$3" > "$4"`, "$(SLUICE_MODEL_URI)", "--model-uri=$(SLUICE_MODEL_URI)",
	strings.Repeat("word ", 30), strings.Repeat("word ", 30) + "end", strings.Repeat("x", 300),
	strings.Repeat("a: b ", 30), strings.Repeat("\"q\" ", 40), strings.Repeat("tab\t", 30), strings.Repeat("é ", 60),
	strings.Repeat("line one\n", 5), strings.Repeat("long line ", 20) + "\n" + strings.Repeat("more ", 30),
	"{{=sprig.sha256sum('\u007b\"task\":\"train\",\"kind\":\"go\",\"image\":\"registry.example/sluice-suite:v1\",\"version\":\"v1\",\"input\":' + toJson(inputs.parameters.i) + '\u007d')}}",
	strings.Repeat("k", 128), strings.Repeat("k", 129), strings.Repeat("é", 65), "name", "status", "metadata",
}

// Stub types for the hand-built objects.

type textKey struct{ a, b string }

func (k textKey) MarshalText() ([]byte, error) { return []byte(k.a + "/" + k.b), nil }

type textValue struct{ s string }

func (t *textValue) MarshalText() ([]byte, error) { return []byte("text:" + t.s), nil }

type rawJSON string

func (r rawJSON) MarshalJSON() ([]byte, error) { return []byte(r), nil }

type ptrJSON struct{ N int }

func (p *ptrJSON) MarshalJSON() ([]byte, error) {
	return []byte(fmt.Sprintf(`{"n":%d,"name":"","metadata":{}}`, p.N)), nil
}

type failing struct{}

func (failing) MarshalJSON() ([]byte, error) { return nil, errors.New("no") }

type zeroer struct{ v int }

func (z zeroer) IsZero() bool { return z.v < 0 }

type Embedded struct {
	Inner  string `json:"inner"`
	Shadow string `json:"shadow"`
}

type EmbeddedPtr struct {
	Deep string `json:"deep,omitempty"`
}

type inner struct {
	Promoted string `json:"promoted"`
	hidden   string
}

type innerPtr struct {
	PromotedPtr string `json:"promotedPtr"`
}

type kitchen struct {
	Embedded
	*EmbeddedPtr
	inner
	*innerPtr
	Shadow     int                 `json:"shadow"`
	Name       string              `json:"name"`
	Named      string              `json:"named"`
	Omit       string              `json:"omit,omitempty"`
	OmitZero   zeroer              `json:"omitZero,omitzero"`
	OmitZero2  time.Time           `json:"omitZero2,omitzero"`
	Quoted     int                 `json:"quoted,string"`
	QuotedS    string              `json:"quotedS,string"`
	QuotedB    *bool               `json:"quotedB,string"`
	QuotedF    float64             `json:"quotedF,string"`
	Skip       string              `json:"-"`
	Dash       string              `json:"-,"`
	NoTag      string              //
	BadTag     string              `json:"bad\"tag"`
	Spaced     string              `json:"with space"`
	U64        uint64              `json:"u64"`
	I64        int64               `json:"i64"`
	F32        float32             `json:"f32"`
	Floats     []float64           `json:"floats"`
	Bytes      []byte              `json:"bytes"`
	NilBytes   []byte              `json:"nilBytes"`
	Array      [3]byte             `json:"array"`
	EmptyArr   [0]int              `json:"emptyArr"`
	Number     json.Number         `json:"number"`
	Numbers    []json.Number       `json:"numbers"`
	IntKeys    map[int]string      `json:"intKeys"`
	UintKeys   map[uint8]bool      `json:"uintKeys"`
	TextKeys   map[textKey]int     `json:"textKeys"`
	TextValues []textValue         `json:"textValues"`
	TextValue  textValue           `json:"textValue"`
	Raw        []rawJSON           `json:"raw"`
	PtrJSON    ptrJSON             `json:"ptrJSON"`
	PtrJSONs   []ptrJSON           `json:"ptrJSONs"`
	PtrJSONMap map[string]ptrJSON  `json:"ptrJSONMap"`
	Time       time.Time           `json:"time"`
	MetaTime   metav1.Time         `json:"metaTime"`
	MetaTimes  []metav1.Time       `json:"metaTimes"`
	NilTime    *metav1.Time        `json:"nilTime"`
	Quantity   resource.Quantity   `json:"quantity"`
	Quantities corev1.ResourceList `json:"quantities"`
	IntStr     []intstr.IntOrString
	Any        any               `json:"any"`
	Anys       []any             `json:"anys"`
	Resources  struct{ X *int }  `json:"resources"`
	Metadata   map[string]any    `json:"metadata"`
	Inputs     *struct{}         `json:"inputs"`
	Outputs    []struct{}        `json:"outputs"`
	Arguments  map[string]string `json:"arguments"`
	Labels     map[string]string `json:"labels"`
	Data       any               `json:"data"`
	Status     string            `json:"status"`
	Nested     []map[string]any  `json:"nested"`
}

func kitchenSink() *kitchen {
	nested := map[string]any{
		"name": "", "status": "kept below the top", "null": nil, "empty": map[string]any{}, "list": []any{nil, "", map[string]any{}, []any{}, []any{[]any{1, "a"}}},
		"resources": map[string]any{"limits": map[string]any{"x": nil}}, "metadata": map[string]any{"name": ""},
		"inputs": map[string]any{}, "outputs": []any{}, "arguments": map[string]any{"parameters": nil},
		"labels": map[string]any{"name": "", "n": nil, "deep": map[string]any{"x": nil, "name": "", "metadata": map[string]any{}}},
		"data":   map[string]any{"u": json.Number("18446744073709551615"), "f": json.Number("1.50"), "i": json.Number("-7"), "big": json.Number("1e400"), "e": json.Number("1E5")},
		"nums":   []any{json.Number("18446744073709551615"), json.Number("1.50"), json.Number("1e400"), json.Number("-0"), json.Number("100000000000000000000")},
	}
	return &kitchen{
		Embedded:    Embedded{Inner: "in", Shadow: "shadowed"},
		EmbeddedPtr: &EmbeddedPtr{Deep: "deep"},
		inner:       inner{Promoted: "p", hidden: "h"},
		innerPtr:    &innerPtr{PromotedPtr: "pp"},
		Shadow:      3,
		Named:       "",
		OmitZero:    zeroer{v: -1},
		Quoted:      42,
		QuotedS:     "a\"b<c>",
		QuotedB:     ptr.To(true),
		QuotedF:     1e21,
		Dash:        "dash",
		NoTag:       "notag",
		BadTag:      "bad",
		Spaced:      "spaced",
		U64:         math.MaxUint64,
		I64:         math.MinInt64,
		F32:         0.1,
		Floats:      []float64{0, 3, -0.5, 1e20, 1e21, 1e-7, 1.5e300, 123456789.125, 1e19, math.SmallestNonzeroFloat64},
		Bytes:       []byte("hello, world\x00\xff"),
		Array:       [3]byte{1, 2, 3},
		Number:      "12.50",
		Numbers:     []json.Number{"", "1", "-2.5e-3", "18446744073709551616"},
		IntKeys:     map[int]string{10: "ten", 9: "nine", -1: "minus", 0: "zero"},
		UintKeys:    map[uint8]bool{1: true, 2: false},
		TextKeys:    map[textKey]int{{"b", "a"}: 1, {"a", "b"}: 2},
		TextValues:  []textValue{{"x"}, {"true"}},
		TextValue:   textValue{"y"},
		Raw:         []rawJSON{`null`, ` "sp" `, `"esc\"aped\u003c\u2028\ud83d\ude00"`, `"\ud800"`, `{"b":1,"a":[true,false,null],"name":""}`, `[]`, `{}`, `1.0`, `-0`, `1e400`, `true`, `"\"\\\/\b\f\n\r\t"`},
		PtrJSON:     ptrJSON{N: 1},
		PtrJSONs:    []ptrJSON{{2}, {3}},
		PtrJSONMap:  map[string]ptrJSON{"k": {4}},
		Time:        time.Date(2024, 1, 2, 3, 4, 5, 6, time.UTC),
		MetaTime:    metav1.NewTime(time.Date(2024, 1, 2, 3, 4, 5, 0, time.FixedZone("x", 3600))),
		MetaTimes:   []metav1.Time{{}, metav1.NewTime(time.Unix(0, 0).UTC())},
		Quantity:    resource.MustParse("1500m"),
		Quantities:  corev1.ResourceList{"cpu": resource.MustParse("2"), "memory": resource.MustParse("1Gi"), "nvidia.com/gpu": resource.MustParse("1")},
		IntStr:      []intstr.IntOrString{intstr.FromInt32(8080), intstr.FromString("http"), intstr.FromString("25%"), intstr.FromString("1")},
		Any:         nested,
		Anys:        []any{nil, 1, uint64(math.MaxUint64), 1.5, float32(2.5), "s", true, map[string]int{"b": 1, "a": 2}, []string{}, struct{}{}, nested},
		Metadata:    map[string]any{"name": "", "labels": map[string]string{}},
		Inputs:      &struct{}{},
		Outputs:     []struct{}{{}},
		Arguments:   map[string]string{},
		Labels:      map[string]string{"name": "", "a10": "1", "a9": "2", "A": "3", "_": "4", "-": "5", "1": "6", "10": "7", "2": "8", "a01": "9", "a1": "10", "é": "11", "e": "12", "Z": "13"},
		Data:        map[string]any{"x": nil, "name": "", "resources": map[string]any{}, "n": json.Number("18446744073709551615"), "list": []any{nil}},
		Status:      "top-level status, left out",
		Nested:      []map[string]any{{}, {"name": ""}, {"k": []any{}}},
	}
}

// trickyPod holds each tricky string in every place a string goes.
func trickyPod() *corev1.Pod {
	labels, annotations := map[string]string{}, map[string]string{}
	var env []corev1.EnvVar
	for _, s := range keys() {
		labels[s] = s
	}
	for i, s := range tricky {
		annotations[fmt.Sprintf("k%d", i)] = s
		env = append(env, corev1.EnvVar{Name: s, Value: s})
	}
	return &corev1.Pod{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{Name: "tricky", Labels: labels, Annotations: annotations},
		Spec: corev1.PodSpec{
			NodeSelector: map[string]string{"kubernetes.io/hostname": "", "": "empty key"},
			Containers: []corev1.Container{{
				Name: "main", Image: testImage, Command: tricky, Args: tricky, Env: env,
				Resources: corev1.ResourceRequirements{Limits: corev1.ResourceList{"cpu": resource.MustParse("100m")}},
				Ports:     []corev1.ContainerPort{{ContainerPort: 8080}},
			}},
		},
		Status: corev1.PodStatus{Phase: corev1.PodRunning},
	}
}

// trickyMaps has tricky strings as keys of mappings whose values are of
// every kind: a long or multi-line key is a complex key ("? k").
func trickyMaps() map[string]any {
	out := map[string]any{}
	for i, s := range keys() {
		switch i % 6 {
		case 0:
			out[s] = s
		case 1:
			out[s] = map[string]any{"a": s, s: []any{s, map[string]any{s: s}}}
		case 2:
			out[s] = []any{s, []any{s}, map[string]any{"k": s}}
		case 3:
			out[s] = map[string]any{}
		case 4:
			out[s] = []any{}
		case 5:
			out[s] = i
		}
	}
	return map[string]any{"spec": out, "list": []any{out}}
}

func trickyConfigMap() *corev1.ConfigMap {
	data := map[string]string{}
	for _, s := range keys() {
		data[s] = s
	}
	return &corev1.ConfigMap{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
		ObjectMeta: metav1.ObjectMeta{Name: "cm", Namespace: "ns"},
		Data:       data,
		BinaryData: map[string][]byte{"bin": []byte{0, 1, 2, 255}, "empty": {}, "nil": nil},
	}
}

func trickyWorkflow() *wfv1.Workflow {
	var params []wfv1.Parameter
	for i, s := range tricky {
		params = append(params, wfv1.Parameter{Name: fmt.Sprintf("p%d", i), Value: wfv1.AnyStringPtr(s), Default: wfv1.AnyStringPtr(s + s)})
	}
	return &wfv1.Workflow{
		TypeMeta:   metav1.TypeMeta{APIVersion: "argoproj.io/v1alpha1", Kind: "Workflow"},
		ObjectMeta: metav1.ObjectMeta{GenerateName: "tricky-"},
		Spec: wfv1.WorkflowSpec{
			Entrypoint: "main",
			Arguments:  wfv1.Arguments{Parameters: params},
			Templates: []wfv1.Template{{
				Name:   "main",
				Inputs: wfv1.Inputs{Parameters: params},
				Script: &wfv1.ScriptTemplate{Container: corev1.Container{Image: testImage}, Source: strings.Join(tricky, "\n")},
				Data:   &wfv1.Data{Source: wfv1.DataSource{ArtifactPaths: &wfv1.ArtifactPaths{}}},
			}, {
				Name: "steps",
				DAG: &wfv1.DAGTemplate{Tasks: []wfv1.DAGTask{{
					Name: "t", Template: "main", When: strings.Repeat("{{tasks.a.outputs.result}} == 'x' && ", 5) + "true",
					WithItems: items(`1`, `"s"`, `{"a":null,"name":""}`, `[1,"2"]`, `1.5`, `true`),
				}}},
			}},
		},
	}
}

func items(js ...string) []wfv1.Item {
	var out []wfv1.Item
	for _, j := range js {
		it, err := wfv1.ParseItem(j)
		if err != nil {
			panic(err)
		}
		out = append(out, it)
	}
	return out
}

// keys are the tricky strings that the tests use as keys of a map with
// more than two: go-yaml's order is not transitive for some keys with
// digits ("1e3" < "09" < "12:30" < "1e3"), where its output changes with
// the map's iteration order (Render's does not).
func keys() []string {
	var out []string
	for _, s := range tricky {
		if !strings.ContainsAny(s, "0123456789") {
			out = append(out, s)
		}
	}
	return out
}

type named struct {
	name string
	obj  any
}

// compiled are what the backends compile, and serve renders, for the
// random DAG of package benchdag and the serving targets.
func compiled(t testing.TB, n int) []named {
	var out []named
	for _, k := range []benchdag.Kind{benchdag.Go, benchdag.Container} {
		for _, kind := range []argo.Kind{argo.KindWorkflow, argo.KindWorkflowTemplate, argo.KindCronWorkflow} {
			opts := &argo.Options{Pod: kubepod.Options{Image: testImage, Command: testCommand}, MaxSize: 64 << 20, Kind: kind}
			if kind == argo.KindCronWorkflow {
				opts.Cron = &argo.CronOptions{Schedules: []string{"*/5 * * * *"}, Timezone: "Europe/Paris", StopExpression: "cronworkflow.failed >= 3"}
			}
			art, err := pipeline.Compile(context.Background(), benchdag.Pipeline(n, k, 7), argo.New(nil, opts), nil)
			require.NoError(t, err)
			switch kind {
			case argo.KindWorkflow:
				var wf *wfv1.Workflow
				require.True(t, art.As(&wf))
				out = append(out, named{fmt.Sprintf("argo/%s/%s", k, kind), wf})
			case argo.KindWorkflowTemplate:
				var wf *wfv1.WorkflowTemplate
				require.True(t, art.As(&wf))
				out = append(out, named{fmt.Sprintf("argo/%s/%s", k, kind), wf})
			case argo.KindCronWorkflow:
				var wf *wfv1.CronWorkflow
				require.True(t, art.As(&wf))
				out = append(out, named{fmt.Sprintf("argo/%s/%s", k, kind), wf})
			}
		}
		for _, inCluster := range []bool{false, true} {
			be := kubejob.New(nil, &kubejob.Options{Pod: kubepod.Options{Image: testImage, Command: testCommand, Namespace: "ns"}, InCluster: inCluster})
			art, err := pipeline.Compile(context.Background(), benchdag.Pipeline(min(n, 50), k, 7), be, nil)
			require.NoError(t, err)
			var jobs []*batchv1.Job
			require.True(t, art.As(&jobs))
			for i, j := range jobs {
				out = append(out, named{fmt.Sprintf("kubejob/%s/incluster=%v/job%d", k, inCluster, i), j})
			}
			var role *rbacv1.Role
			require.True(t, art.As(&role))
			out = append(out, named{fmt.Sprintf("kubejob/%s/role", k), role})
			var rb *rbacv1.RoleBinding
			require.True(t, art.As(&rb))
			out = append(out, named{fmt.Sprintf("kubejob/%s/rolebinding", k), rb})
			var sa *corev1.ServiceAccount
			require.True(t, art.As(&sa))
			out = append(out, named{fmt.Sprintf("kubejob/%s/serviceaccount", k), sa})
			var plan *backends.Plan
			require.True(t, art.As(&plan))
		}
	}
	model := serve.Model{URI: "s3://models/churn/v2", Digest: "sha256:2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae", Format: serve.SKLearn, Version: "2"}
	for _, p := range []serve.Platform{serve.Kubernetes, serve.KServe} {
		for _, variant := range []string{"plain", "canary", "ab", "gpu"} {
			tg := serve.Target{
				Name: "churn", Level: serve.Prod, Platform: p, Resources: resources.Profile{CPU: "500m", Memory: "1Gi"},
				Replicas: serve.Replicas{Min: ptr.To(2), Max: 4}, Note: "retrained on November's data: AUC 0.91 → 0.93",
			}
			if p == serve.Kubernetes {
				tg.Runtime = serve.Runtime{Image: "registry.example/ml/sklearn-server:1.5", Args: []string{"--model-uri=$(SLUICE_MODEL_URI)"}}
				tg.Rollout = serve.Rollout{MaxSurge: "1", MaxUnavailable: "25%", MinReadySeconds: 10}
			} else {
				tg.Mode = serve.Serverless
				tg.Autoscale.Concurrency = 8
			}
			switch variant {
			case "canary":
				tg.Canary = 10
				if p == serve.Kubernetes {
					stable := model
					stable.URI, stable.Version = "s3://models/churn/v1", "1"
					tg.Stable = &stable
					tg.Gateway = serve.GatewayRef{Name: "inference", Namespace: "gateways"}
				}
			case "ab":
				tg.Variants = []serve.Variant{{Name: "a", Weight: 70}, {Name: "b", Weight: 30}}
				if p == serve.Kubernetes {
					tg.Gateway = serve.GatewayRef{Name: "inference"}
				}
			case "gpu":
				tg.Name = "llm"
				tg.NodePools = []resources.NodePool{{
					Name: "l4", Provider: resources.ProviderGKE,
					Labels: map[string]string{"cloud.google.com/gke-nodepool": "l4"},
					Node:   resources.Capacity{GPUModel: "L4", GPUs: 1},
				}}
				tg.Resources = resources.Profile{CPU: "4", Memory: "32Gi", SharedMemory: "8Gi", GPUs: 1, NodePool: "l4"}
			}
			var objs []any
			if p == serve.Kubernetes {
				os, err := tg.Kubernetes(model)
				require.NoError(t, err, variant)
				for _, o := range os {
					objs = append(objs, o)
				}
			} else {
				os, err := tg.KServe(model)
				require.NoError(t, err, variant)
				for _, o := range os {
					objs = append(objs, o)
				}
			}
			for i, o := range objs {
				out = append(out, named{fmt.Sprintf("serve/%s/%s/%d/%T", p, variant, i, o), o})
			}
		}
	}
	return out
}

// corpus is every object the differential tests render.
func corpus(t testing.TB) []named {
	out := compiled(t, 200)
	out = append(out,
		named{"tricky/pod", trickyPod()},
		named{"tricky/pod-value", *trickyPod()},
		named{"tricky/maps", trickyMaps()},
		named{"tricky/configmap", trickyConfigMap()},
		named{"tricky/workflow", trickyWorkflow()},
		named{"kitchen", kitchenSink()},
		named{"kitchen-value", *kitchenSink()},
		named{"nil", nil},
		named{"nil-pointer", (*corev1.Pod)(nil)},
		named{"empty-struct", &corev1.Pod{}},
		named{"empty-map", map[string]string{}},
		named{"empty-list", []string{}},
		named{"list", []any{"a", []any{"b", []any{}}, map[string]any{"k": []any{"v"}}, map[string]any{}}},
		named{"number", 5},
		named{"status-only", map[string]any{"status": "x"}},
		named{"metadata-only", map[string]any{"metadata": map[string]any{"name": ""}}},
		named{"marshaler-root", rawJSON(`{"status":1,"metadata":{},"kind":"X"}`)},
	)
	for _, s := range tricky {
		out = append(out, named{fmt.Sprintf("root %q", s), s})
	}
	return out
}

// maxColumns is the length, in characters, of the longest line of b.
func maxColumns(b []byte) int {
	m := 0
	for _, l := range strings.Split(string(b), "\n") {
		m = max(m, utf8.RuneCountInString(l))
	}
	return m
}

// checkSame checks Render against the oracle for obj; unwrapped: go-yaml
// folds no line, so the bytes must be the same.
func checkSame(t *testing.T, name string, obj any, unwrapped bool) {
	t.Helper()
	want, werr := kubepod.OracleRender(obj)
	got, gerr := kubepod.Render(obj)
	if werr != nil {
		assert.Error(t, gerr, "%s: the oracle fails with %v", name, werr)
		return
	}
	if !assert.NoError(t, gerr, name) {
		return
	}
	if unwrapped || maxColumns(got) <= 80 {
		if !assert.Equal(t, string(want), string(got), name) {
			return
		}
	}
	var wv, gv any
	werr = yamlv2.Unmarshal(want, &wv)
	gerr = yamlv2.Unmarshal(got, &gv)
	if werr != nil {
		// go-yaml cannot read what it wrote: then neither must Render's
		// output read (it is the same but for folding).
		assert.Error(t, gerr, "%s: go-yaml cannot read the oracle's output (%v)", name, werr)
		return
	}
	if assert.NoError(t, gerr, "%s: %s", name, got) {
		assert.Equal(t, wv, gv, name)
	}
	// sigs.k8s.io/yaml reads the same JSON from both.
	wj, werr := yaml.YAMLToJSON(want)
	gj, gerr := yaml.YAMLToJSON(got)
	if werr == nil && assert.NoError(t, gerr, name) {
		assert.JSONEq(t, string(wj), string(gj), name)
	}
}

// Render writes what the oracle wrote: the same value, the same bytes
// wherever go-yaml folds no line.
func TestRenderMatchesOracle(t *testing.T) {
	for _, o := range corpus(t) {
		checkSame(t, o.name, o.obj, false)
	}
}

const unwrappedEnv = "KUBEPOD_TEST_UNWRAPPED_GOYAML"

// Render writes, byte for byte, what go-yaml writes with its line
// folding disabled: run in a process of its own, since go-yaml's switch
// (FutureLineWrap) is global and cannot be undone.
func TestRenderMatchesUnwrappedOracle(t *testing.T) {
	if os.Getenv(unwrappedEnv) != "1" {
		cmd := exec.Command(os.Args[0], "-test.run=^TestRenderMatchesUnwrappedOracle$", "-test.count=1")
		cmd.Env = append(os.Environ(), unwrappedEnv+"=1")
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "%s", out)
		require.Contains(t, string(out), "PASS")
		return
	}
	yamlv2.FutureLineWrap()
	folded := 0
	for _, o := range corpus(t) {
		checkSame(t, o.name, o.obj, true)
		if b, err := kubepod.Render(o.obj); err == nil && maxColumns(b) > 80 {
			folded++
		}
	}
	// The corpus has lines that go-yaml would fold.
	assert.Greater(t, folded, 10)
}

// Errors name the field's path, and Render fails wherever the oracle
// does.
func TestRenderErrors(t *testing.T) {
	type withChan struct {
		C chan int `json:"c"`
	}
	type withFunc struct {
		F func() `json:"f,omitempty"`
	}
	for _, c := range []struct {
		obj  any
		want string
	}{
		{&corev1.Pod{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "a"}, {Name: "b", Args: []string{"x"}}}}}, ""},
		{map[string]any{"spec": map[string]any{"list": []any{1, math.NaN()}}}, "kubepod: render spec.list[1]: json: unsupported value: NaN"},
		{map[string]any{"a": map[string]any{"b.c": withChan{}}}, `kubepod: render a["b.c"].c: json: unsupported type: chan int`},
		{[]any{withFunc{}}, "kubepod: render [0].f: json: unsupported type: func()"},
		{map[string]any{"m": failing{}}, "kubepod: render m: json: error calling MarshalJSON for type kubepod_test.failing: no"},
		{map[string]any{"m": rawJSON(`{"a":`)}, "kubepod: render m: json: error calling MarshalJSON for type kubepod_test.rawJSON: invalid JSON"},
		{map[string]any{"n": json.Number("1x")}, `kubepod: render n: json: invalid number literal "1x"`},
		{math.Inf(1), "kubepod: render: json: unsupported value: +Inf"},
		{map[complex64]int{1: 1}, "kubepod: render: json: unsupported type: map[complex64]int"},
	} {
		_, oerr := kubepod.OracleRender(c.obj)
		_, err := kubepod.Render(c.obj)
		if c.want == "" {
			assert.NoError(t, oerr)
			assert.NoError(t, err)
			continue
		}
		assert.Error(t, oerr, c.want)
		if assert.Error(t, err) {
			assert.Contains(t, err.Error(), c.want)
		}
	}
	// A cycle.
	type node struct {
		Next *node `json:"next"`
	}
	n := &node{}
	n.Next = n
	_, err := kubepod.Render(n)
	assert.ErrorContains(t, err, "cycle")
}

// Render is deterministic, and RenderTo writes what Render returns.
func TestRenderDeterministic(t *testing.T) {
	for _, o := range corpus(t)[:4] {
		a, err := kubepod.Render(o.obj)
		require.NoError(t, err)
		for range 3 {
			b, err := kubepod.Render(o.obj)
			require.NoError(t, err)
			require.Equal(t, a, b, o.name)
			var w strings.Builder
			require.NoError(t, kubepod.RenderTo(&w, o.obj))
			require.Equal(t, string(a), w.String(), o.name)
		}
	}
}

// Render is safe for concurrent use: plans are built once per type,
// emitters are not shared.
func TestRenderConcurrent(t *testing.T) {
	objs := corpus(t)
	got := make([][][]byte, 4)
	done := make(chan struct{})
	for g := range got {
		got[g] = make([][]byte, len(objs))
		go func() {
			defer func() { done <- struct{}{} }()
			for i := range objs {
				j := (i + g*len(objs)/4) % len(objs)
				got[g][j], _ = kubepod.Render(objs[j].obj)
			}
		}()
	}
	for range got {
		<-done
	}
	for i, o := range objs {
		want, _ := kubepod.Render(o.obj)
		for g := range got {
			assert.Equal(t, string(want), string(got[g][i]), o.name)
		}
	}
}

// FuzzRenderString puts a string in the places a string goes in a pod (a
// container's argument, an environment value, a label's key and value, an
// annotation's key, a data key, a name) and in an Argo parameter, and
// checks that Render's output reads back as the oracle's does, and is the
// oracle's byte for byte where go-yaml folds no line.
func FuzzRenderString(f *testing.F) {
	for _, s := range tricky {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		pod := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: s, Labels: map[string]string{s: s}, Annotations: map[string]string{s: "v", "k": s}},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{
				Name: s, Args: []string{s, "x"}, Env: []corev1.EnvVar{{Name: "E", Value: s}},
			}}},
		}
		checkSame(t, "pod", pod, false)
		checkSame(t, "map", map[string]any{s: map[string]any{s: []any{s}, "data": map[string]any{s: nil}}}, false)
		checkSame(t, "param", &wfv1.Parameter{Name: "p", Value: wfv1.AnyStringPtr(s)}, false)
		// The string reads back.
		b, err := kubepod.Render(pod)
		require.NoError(t, err)
		var back corev1.Pod
		if err := yaml.Unmarshal(b, &back); err != nil {
			return // go-yaml cannot read it: the oracle's is no better (checked above)
		}
		// What encoding/json makes of s: invalid UTF-8 byte by byte
		// replaced by U+FFFD.
		j, err := json.Marshal(s)
		require.NoError(t, err)
		var want string
		require.NoError(t, json.Unmarshal(j, &want))
		require.Equal(t, want, back.Spec.Containers[0].Args[0])
		require.Equal(t, want, back.Spec.Containers[0].Env[0].Value)
		if s != "k" {
			require.Equal(t, want, back.Annotations["k"])
			require.Equal(t, "v", back.Annotations[want])
		}
	})
}

// BenchmarkRender renders the 10k-task Workflow of package benchdag (Go
// tasks, container tasks): Render (new), the implementation it replaced
// (oracle) and the floor, sigs.k8s.io/yaml's Marshal of the same object;
// new reports new/floor, oracle oracle/floor (the floor's time is the one
// its sub-benchmark measured just before, in the same run).
//
//	go test -run '^$' -bench BenchmarkRender -benchmem ./backends/kubepod/
func BenchmarkRender(b *testing.B) {
	for _, k := range []benchdag.Kind{benchdag.Go, benchdag.Container} {
		be := argo.New(nil, &argo.Options{Pod: kubepod.Options{Image: testImage, Command: testCommand}, MaxSize: 64 << 20})
		art, err := pipeline.Compile(context.Background(), benchdag.Pipeline(10000, k, 7), be, nil)
		require.NoError(b, err)
		var wf *wfv1.Workflow
		require.True(b, art.As(&wf))
		var floor float64 // ns/op
		run := func(name string, render func(any) ([]byte, error)) {
			b.Run(fmt.Sprintf("%s/%s", k, name), func(b *testing.B) {
				b.ReportAllocs()
				var size int
				for b.Loop() {
					out, err := render(wf)
					if err != nil {
						b.Fatal(err)
					}
					size = len(out)
				}
				ns := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
				b.ReportMetric(float64(size), "bytes")
				switch name {
				case "floor":
					floor = ns
				default:
					b.ReportMetric(ns/floor, name+"/floor")
				}
			})
		}
		run("floor", yaml.Marshal)
		run("oracle", kubepod.OracleRender)
		run("new", kubepod.Render)
	}
}

package serve_test

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/pod-security-admission/api"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
	"sigs.k8s.io/yaml"

	"github.com/sluice-ml/sluice/backends/kubepod"
	"github.com/sluice-ml/sluice/internal/golden"
	"github.com/sluice-ml/sluice/serve"
)

// render renders c on its platform.
func render(t *testing.T, c renderCase) []byte {
	t.Helper()
	var b bytes.Buffer
	require.NoError(t, serve.Render(c.t, c.model, &b))
	return b.Bytes()
}

// documents splits a rendered stream into its YAML documents.
func documents(t *testing.T, b []byte) [][]byte {
	t.Helper()
	var out [][]byte
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(b)))
	for {
		d, err := r.Read()
		if errors.Is(err, io.EOF) {
			return out
		}
		require.NoError(t, err)
		if len(bytes.TrimSpace(d)) > 0 {
			out = append(out, d)
		}
	}
}

// TestRenderGolden renders every case and compares it with its golden
// file; run with -update to rewrite them (and review the diff). The e2e
// test TestServeManifests sends these files to a real API server.
func TestRenderGolden(t *testing.T) {
	for _, c := range renderCases() {
		t.Run(c.name, func(t *testing.T) {
			got := render(t, c)
			golden.Assert(t, got)
			again := render(t, c)
			assert.Equal(t, string(got), string(again), "rendering is not deterministic")
		})
	}
}

// TestRenderStrictDecode decodes every rendered document strictly into
// its Kubernetes or Gateway API Go type (a field the type lacks fails),
// and KServe's documents against KServe v0.15.2's CRD schemas, vendored
// for the e2e tests.
func TestRenderStrictDecode(t *testing.T) {
	schemas := map[string]map[string]any{
		"InferenceService": crdSchema(t, "serving.kserve.io_inferenceservices.yaml", "v1beta1"),
		"InferenceGraph":   crdSchema(t, "serving.kserve.io_inferencegraphs.yaml", "v1alpha1"),
	}
	for _, c := range renderCases() {
		t.Run(c.name, func(t *testing.T) {
			for i, d := range documents(t, render(t, c)) {
				var tm metav1.TypeMeta
				require.NoError(t, yaml.Unmarshal(d, &tm))
				where := fmt.Sprintf("document %d (%s)", i+1, tm.Kind)
				var into any
				switch tm.Kind {
				case "Deployment":
					into = &appsv1.Deployment{}
				case "Service":
					into = &corev1.Service{}
				case "HorizontalPodAutoscaler":
					into = &autoscalingv2.HorizontalPodAutoscaler{}
				case "PodDisruptionBudget":
					into = &policyv1.PodDisruptionBudget{}
				case "HTTPRoute":
					into = &gatewayv1.HTTPRoute{}
				case "InferenceService", "InferenceGraph":
					var obj map[string]any
					require.NoError(t, yaml.Unmarshal(d, &obj))
					for _, p := range unknownFields(schemas[tm.Kind], obj, "") {
						t.Errorf("%s: field %s is not in KServe's CRD schema", where, p)
					}
					continue
				default:
					t.Fatalf("%s: unexpected kind", where)
				}
				require.NoError(t, yaml.UnmarshalStrict(d, into), where)
			}
		})
	}
}

// crdSchema reads the OpenAPI schema of version v of a vendored KServe CRD.
func crdSchema(t *testing.T, file, v string) map[string]any {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "e2e", "testdata", "crds", "kserve", file))
	require.NoError(t, err)
	var crd struct {
		Spec struct {
			Versions []struct {
				Name   string `json:"name"`
				Schema struct {
					OpenAPIV3Schema map[string]any `json:"openAPIV3Schema"`
				} `json:"schema"`
			} `json:"versions"`
		} `json:"spec"`
	}
	require.NoError(t, yaml.Unmarshal(b, &crd))
	for _, ver := range crd.Spec.Versions {
		if ver.Name == v {
			return ver.Schema.OpenAPIV3Schema
		}
	}
	t.Fatalf("%s has no version %s", file, v)
	return nil
}

// unknownFields returns the paths of v's fields that schema does not
// declare, as a structural schema's pruning would drop them.
func unknownFields(schema map[string]any, v any, path string) []string {
	if schema == nil || schema["x-kubernetes-preserve-unknown-fields"] == true {
		return nil
	}
	var out []string
	switch x := v.(type) {
	case map[string]any:
		props, _ := schema["properties"].(map[string]any)
		addl, _ := schema["additionalProperties"].(map[string]any)
		for k, e := range x {
			p := path + "." + k
			if path == "" && (k == "apiVersion" || k == "kind" || k == "metadata") {
				continue // the API server checks these itself
			}
			switch {
			case props[k] != nil:
				out = append(out, unknownFields(props[k].(map[string]any), e, p)...)
			case addl != nil:
				out = append(out, unknownFields(addl, e, p)...)
			default:
				out = append(out, p)
			}
		}
	case []any:
		items, _ := schema["items"].(map[string]any)
		for i, e := range x {
			out = append(out, unknownFields(items, e, fmt.Sprintf("%s[%d]", path, i))...)
		}
	}
	slices.Sort(out)
	return out
}

// TestRenderPodSecurityRestricted checks every pod the renderers describe
// with Pod Security admission's own evaluator at level "restricted": the
// Deployments' pod templates, and for KServe the pod each component
// becomes (its pod fields with the model's or its own containers).
func TestRenderPodSecurityRestricted(t *testing.T) {
	for _, c := range renderCases() {
		t.Run(c.name, func(t *testing.T) {
			var objs []runtime.Object
			var err error
			if c.t.Platform == serve.Kubernetes {
				objs, err = c.t.Kubernetes(c.model)
			} else {
				objs, err = c.t.KServe(c.model)
			}
			require.NoError(t, err)
			pods := 0
			check := func(what string, spec *corev1.PodSpec) {
				pods++
				level, why, err := kubepod.PodSecurityLevel(spec)
				require.NoError(t, err)
				assert.Equal(t, api.LevelRestricted, level, "%s: %s", what, why)
			}
			for _, o := range objs {
				switch x := o.(type) {
				case *appsv1.Deployment:
					check("Deployment "+x.Name, &x.Spec.Template.Spec)
				case *serve.InferenceService:
					p := x.Spec.Predictor
					spec := kservePod(p.PodSpec)
					if p.Model != nil {
						spec.Containers = append(spec.Containers, corev1.Container{
							Name: "kserve-container", Image: "runtime", SecurityContext: p.Model.SecurityContext,
						})
					}
					check("InferenceService "+x.Name+" predictor", &spec)
					if tr := x.Spec.Transformer; tr != nil {
						spec := kservePod(tr.PodSpec)
						check("InferenceService "+x.Name+" transformer", &spec)
					}
				}
			}
			assert.NotZero(t, pods)
		})
	}
}

func kservePod(p serve.PodSpec) corev1.PodSpec {
	return corev1.PodSpec{
		Containers:      p.Containers,
		Volumes:         p.Volumes,
		SecurityContext: p.SecurityContext,
	}
}

// TestRenderConcurrentSafe renders one target from several goroutines,
// under the race detector: a Target is a value and rendering shares
// nothing.
func TestRenderConcurrentSafe(t *testing.T) {
	cases := renderCases()
	var wg sync.WaitGroup
	outs := make([][]byte, len(cases))
	for i, c := range cases {
		wg.Go(func() {
			var b bytes.Buffer
			if err := serve.Render(c.t, c.model, &b); err == nil {
				outs[i] = b.Bytes()
			}
		})
	}
	wg.Wait()
	for i, c := range cases {
		assert.Equal(t, string(render(t, c)), string(outs[i]), c.name)
	}
}

package serve_test

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"

	"github.com/sluice-ml/sluice/resources"
	"github.com/sluice-ml/sluice/serve"
)

// Fixtures of the render tests.
var (
	churnV2 = serve.Model{URI: "s3://models/churn/v2", Digest: "sha256:2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae", Format: serve.SKLearn, Version: "2"}
	churnV1 = serve.Model{URI: "s3://models/churn/v1", Digest: "sha256:fcde2b2edba56bf408601fb721fe9b5c338d10ee429ea04fae5511b68fbf8fb9", Format: serve.SKLearn, Version: "1"}
	churnGo = serve.Model{URI: "s3://models/churn-go/v2", Format: serve.GoModel, Version: "2"}
	llm     = serve.Model{URI: "gs://models/llm/v7", Format: serve.HuggingFace, Version: "7"}

	programImage = "registry.example/ml/churn@sha256:0d1e5b2a8c3f4e6d7b9a0c1d2e3f405162738495a6b7c8d9e0f1a2b3c4d5e6f7"
	serverImage  = "registry.example/ml/sklearn-server:1.5"

	migPool = resources.NodePool{
		Name: "a100-mig", Provider: resources.ProviderEKS, MIGStrategy: resources.MIGMixed,
		Labels: map[string]string{"eks.amazonaws.com/nodegroup": "p4d-mig"},
		Taints: []corev1.Taint{{Key: "dedicated", Value: "inference", Effect: corev1.TaintEffectNoSchedule}},
		Node:   resources.Capacity{GPUModel: "A100-40GB", GPUs: 8, MIG: map[string]int{"1g.5gb": 28, "3g.20gb": 8}},
	}
	gpuPool = resources.NodePool{
		Name: "l4", Provider: resources.ProviderGKE,
		Labels: map[string]string{"cloud.google.com/gke-nodepool": "l4"},
		Node:   resources.Capacity{GPUModel: "L4", GPUs: 1},
	}
	small = resources.Profile{CPU: "500m", Memory: "1Gi"}
)

// renderCase is one golden case: a target and the model it serves.
type renderCase struct {
	name  string
	t     serve.Target
	model serve.Model
}

// base returns a valid target on platform p (and KServe mode md).
func base(p serve.Platform, md serve.Mode) serve.Target {
	t := serve.Target{
		Name:      "churn",
		Level:     serve.Prod,
		Platform:  p,
		Mode:      md,
		Resources: small,
		Replicas:  serve.Replicas{Min: ptr.To(2), Max: 4},
		Note:      "retrained on November's data: AUC 0.91 → 0.93",
	}
	if p == serve.Kubernetes {
		t.Runtime = serve.Runtime{Image: serverImage, Args: []string{"--model-uri=$(SLUICE_MODEL_URI)"}}
	}
	return t
}

// renderCases are the golden cases: platform × mode × {plain, canary, A/B,
// GPU/MIG on a node pool, scale to zero, transformer}, where the platform
// can do it.
func renderCases() []renderCase {
	var out []renderCase
	for _, pm := range []struct {
		name string
		p    serve.Platform
		md   serve.Mode
	}{
		{"KServeServerless", serve.KServe, serve.Serverless},
		{"KServeRawDeployment", serve.KServe, serve.RawDeployment},
		{"Kubernetes", serve.Kubernetes, ""},
	} {
		add := func(name string, m serve.Model, edit func(*serve.Target)) {
			t := base(pm.p, pm.md)
			edit(&t)
			out = append(out, renderCase{pm.name + "/" + name, t, m})
		}
		serverless := pm.p == serve.KServe && pm.md == serve.Serverless

		add("Plain", churnV2, func(t *serve.Target) {
			if pm.p == serve.KServe {
				t.Runtime.Version = "1"
			}
			if serverless {
				t.Autoscale.Concurrency = 8
			}
			if pm.p == serve.Kubernetes {
				t.Rollout = serve.Rollout{MaxSurge: "1", MaxUnavailable: "0", MinReadySeconds: 10}
				t.ServiceAccount = "churn-server"
			}
		})
		if pm.md != serve.RawDeployment {
			add("Canary", churnV2, func(t *serve.Target) {
				t.Canary = 10
				if pm.p == serve.Kubernetes {
					t.Stable = &churnV1
					t.Gateway = serve.GatewayRef{Name: "inference", Namespace: "gateways"}
				}
			})
		}
		add("AB", churnV2, func(t *serve.Target) {
			t.Variants = []serve.Variant{{Name: "a", Weight: 70}, {Name: "b", Weight: 30, Model: churnV1}}
			if pm.p == serve.Kubernetes {
				t.Gateway = serve.GatewayRef{Name: "inference"}
			}
		})
		add("GPUMIG", llm, func(t *serve.Target) {
			t.Name = "llm"
			t.Level = serve.Staging
			t.NodePools = []resources.NodePool{migPool, gpuPool}
			t.Resources = resources.Profile{CPU: "4", Memory: "32Gi", SharedMemory: "8Gi", MIG: "3g.20gb", NodePool: "a100-mig"}
			t.Replicas = serve.Replicas{Min: ptr.To(1), Max: 3}
			if pm.p == serve.Kubernetes {
				t.Runtime = serve.Runtime{Image: "registry.example/ml/hf-server:2.1"}
			}
		})
		if serverless {
			add("ScaleToZero", churnV2, func(t *serve.Target) {
				t.Level = serve.Dev
				t.Replicas = serve.Replicas{Min: ptr.To(0), Initial: 2, Max: 3}
				t.Autoscale.RPS = 50
			})
		}
		add("Transformer", churnGo, func(t *serve.Target) {
			t.Runtime = serve.Runtime{Image: programImage}
			t.Transformer = &serve.Transformer{Image: programImage, Resources: resources.Profile{CPU: "250m", Memory: "256Mi"}}
			if serverless {
				t.Autoscale.CPUPercent = 70 // Knative's HPA class
			}
			t.Placement = serve.Placement{ShareNodes: false}
		})
	}
	return out
}

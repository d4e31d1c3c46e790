package serve_test

import (
	"fmt"
	"log"
	"os"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/utils/ptr"

	"github.com/sluice-ml/sluice/resources"
	"github.com/sluice-ml/sluice/serve"
)

// A canary on plain Kubernetes: the stable track keeps serving v1, the
// canary serves v2, and an HTTPRoute gives the canary 10% of the traffic.
func ExampleTarget_Kubernetes() {
	v1 := serve.Model{URI: "s3://models/churn/v1", Format: serve.GoModel, Version: "1"}
	v2 := serve.Model{URI: "s3://models/churn/v2", Format: serve.GoModel, Version: "2"}
	t := serve.Target{
		Name:      "churn",
		Level:     serve.Prod,
		Platform:  serve.Kubernetes,
		Runtime:   serve.Runtime{Image: "registry.example/ml/churn:1.4"},
		Resources: resources.Profile{CPU: "500m", Memory: "1Gi"},
		Replicas:  serve.Replicas{Min: ptr.To(2), Max: 6},
		Canary:    10,
		Stable:    &v1,
		Gateway:   serve.GatewayRef{Name: "inference", Namespace: "gateways"},
	}
	objs, err := t.Kubernetes(v2)
	if err != nil {
		log.Fatal(err)
	}
	for _, o := range objs {
		m, err := meta.Accessor(o)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(o.GetObjectKind().GroupVersionKind().Kind, m.GetNamespace()+"/"+m.GetName())
	}
	// Output:
	// Deployment sluice-prod/churn
	// Service sluice-prod/churn
	// HorizontalPodAutoscaler sluice-prod/churn
	// PodDisruptionBudget sluice-prod/churn
	// Deployment sluice-prod/churn-canary
	// Service sluice-prod/churn-canary
	// HorizontalPodAutoscaler sluice-prod/churn-canary
	// PodDisruptionBudget sluice-prod/churn-canary
	// HTTPRoute sluice-prod/churn
}

// Validate reports every problem at once, each at its field.
func ExampleTarget_Validate() {
	t := serve.Target{
		Name:     "churn",
		Level:    serve.Staging,
		Platform: serve.Kubernetes,
		Runtime:  serve.Runtime{Image: "registry.example/ml/churn:1.4"},
		Replicas: serve.Replicas{Min: ptr.To(0), Max: 3},
		Canary:   120,
	}
	err := t.Validate(serve.Model{URI: "s3://models/churn/v2", Format: serve.GoModel})
	for _, e := range serve.FieldErrors(err) {
		fmt.Println(e.Field, e.Type)
	}
	// Output:
	// target.replicas.min Forbidden
	// target.resources.cpu Required
	// target.canary Invalid
	// target.stable Required
	// target.gateway.name Required
}

// Render writes the objects as YAML, ready for kubectl apply.
func ExampleRender() {
	t := serve.Target{
		Name:      "fraud",
		Level:     serve.Dev,
		Mode:      serve.Serverless,
		Resources: resources.Profile{CPU: "1", Memory: "2Gi"},
		Replicas:  serve.Replicas{Min: ptr.To(0), Max: 2},
		Autoscale: serve.Autoscale{RPS: 20},
		Placement: serve.Placement{ShareNodes: true, NoSpread: true},
	}
	m := serve.Model{URI: "gs://models/fraud/v3", Format: serve.XGBoost}
	if err := serve.Render(t, m, os.Stdout); err != nil {
		log.Fatal(err)
	}
	// Output:
	// apiVersion: serving.kserve.io/v1beta1
	// kind: InferenceService
	// metadata:
	//   annotations:
	//     serving.kserve.io/deploymentMode: Serverless
	//     sluice.dev/model-uri: gs://models/fraud/v3
	//   labels:
	//     sluice.dev/level: dev
	//     sluice.dev/target: fraud
	//     sluice.dev/track: stable
	//   name: fraud
	//   namespace: sluice-dev
	// spec:
	//   predictor:
	//     labels:
	//       sluice.dev/component: predictor
	//       sluice.dev/level: dev
	//       sluice.dev/target: fraud
	//       sluice.dev/track: stable
	//     maxReplicas: 2
	//     minReplicas: 0
	//     model:
	//       modelFormat:
	//         name: xgboost
	//       protocolVersion: v2
	//       resources:
	//         limits:
	//           memory: 2Gi
	//         requests:
	//           cpu: "1"
	//           memory: 2Gi
	//       securityContext:
	//         allowPrivilegeEscalation: false
	//         capabilities:
	//           drop:
	//           - ALL
	//         runAsNonRoot: true
	//         seccompProfile:
	//           type: RuntimeDefault
	//       storageUri: gs://models/fraud/v3
	//     scaleMetric: rps
	//     scaleTarget: 20
	//     securityContext:
	//       runAsNonRoot: true
	//       seccompProfile:
	//         type: RuntimeDefault
}

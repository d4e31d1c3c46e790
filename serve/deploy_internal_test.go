package serve

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/utils/ptr"

	"github.com/sluice-ml/sluice/resources"
)

// The objects a deploy step applies leave a Deployment's replicas to its
// autoscaler, and keep them where nothing autoscales it.
func TestDeployLeavesReplicasToAutoscalers(t *testing.T) {
	for _, tc := range []struct {
		name     string
		replicas Replicas
		want     bool // spec.replicas applied
	}{
		{"Autoscaled", Replicas{Min: ptr.To(2), Max: 5}, false},
		{"Fixed", Replicas{Min: ptr.To(2), Max: 2}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := &deployer{t: Target{Name: "churn", Level: Prod, Platform: Kubernetes, Replicas: tc.replicas, Resources: resources.Profile{CPU: "1"},
				Runtime: Runtime{Format: GoModel, Image: "registry.example/churn:v1"}}}
			objs, err := d.objects(d.placeholder())
			require.NoError(t, err)
			kinds := map[string]bool{}
			for _, o := range objs {
				kinds[o.GetKind()] = true
				if o.GetKind() == "Deployment" {
					_, has := o.Object["spec"].(map[string]any)["replicas"]
					assert.Equal(t, tc.want, has)
				}
			}
			assert.Equal(t, !tc.want, kinds["HorizontalPodAutoscaler"])
		})
	}
}

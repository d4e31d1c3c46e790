package serve

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
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

// In a pod, the deploy step reaches the cluster through its in-cluster
// identity or KUBECONFIG; with neither, the error says what to set.
func TestDeployClusterInPod(t *testing.T) {
	t.Setenv("HOME", t.TempDir()) // no ~/.kube/config
	t.Setenv("KUBECONFIG", "")
	t.Setenv("KUBERNETES_SERVICE_HOST", "")
	d := &deployer{o: DeployOptions{Kubeconfig: "/only/on/the/machine/that/compiled/it"}} // not in a pod
	_, _, err := d.cluster(false)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "automountServiceAccountToken")
	assert.Contains(t, err.Error(), "KUBECONFIG")

	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["c"] = &clientcmdapi.Cluster{Server: "https://127.0.0.1:1"}
	cfg.AuthInfos["u"] = &clientcmdapi.AuthInfo{Token: "t"}
	cfg.Contexts["c"] = &clientcmdapi.Context{Cluster: "c", AuthInfo: "u"}
	cfg.CurrentContext = "c"
	path := filepath.Join(t.TempDir(), "kubeconfig")
	require.NoError(t, clientcmd.WriteToFile(*cfg, path))
	t.Setenv("KUBECONFIG", path)
	client, mapper, err := d.cluster(false)
	require.NoError(t, err)
	assert.NotNil(t, client)
	assert.NotNil(t, mapper)
}

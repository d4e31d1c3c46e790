package resources_test

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/sluice-ml/sluice/resources"
)

// A Resolver gives what Resolve gives, each call a copy of its own: a
// caller that changes its Resolved changes no other's.
func TestResolverCopies(t *testing.T) {
	pools := []resources.NodePool{{Name: "gpu", Provider: resources.ProviderGKE, Labels: map[string]string{"pool": "gpu"},
		Node: resources.Capacity{CPU: "8", Memory: "64Gi", GPUModel: "L4", GPUs: 1}, Spot: true}}
	rv := resources.NewResolver(pools)
	for _, p := range []resources.Profile{
		{CPU: "1", Memory: "2Gi"},
		{CPU: "2", Memory: "8Gi", GPUs: 1, NodePool: "gpu", Preemptible: true, SharedMemory: "1Gi"},
		{CPU: "1", NodeSelector: map[string]string{"zone": "a"}},
		{CPU: "-1"},                         // invalid: the same error each time
		{GPUs: 1, NodePool: "no-such-pool"}, // invalid
	} {
		want, wantErr := resources.Resolve(p, pools)
		first, err := rv.Resolve(p)
		assert.Equal(t, fmt.Sprint(wantErr), fmt.Sprint(err))
		assert.Equal(t, want, first)
		if first.Requests != nil {
			first.Requests[corev1.ResourceCPU] = resource.MustParse("99")
		}
		if first.Placement.NodeSelector != nil {
			first.Placement.NodeSelector["changed"] = "yes"
		}
		if first.OnDemand != nil {
			first.OnDemand.Tolerations = nil
		}
		second, err := rv.Resolve(p)
		assert.Equal(t, fmt.Sprint(wantErr), fmt.Sprint(err))
		assert.Equal(t, want, second, "the first caller's changes are its own")
	}
	r, err := rv.Resolve(resources.Profile{CPU: "2", Memory: "8Gi", GPUs: 1, NodePool: "gpu", Preemptible: true})
	require.NoError(t, err)
	require.NotNil(t, r.OnDemand)
}

// ResolveShared gives what Resolve gives, the same Resolved to every call
// with an equal profile.
func TestResolverShares(t *testing.T) {
	pools := []resources.NodePool{{Name: "gpu", Provider: resources.ProviderGKE, Labels: map[string]string{"pool": "gpu"},
		Node: resources.Capacity{CPU: "8", Memory: "64Gi", GPUModel: "L4", GPUs: 1}, Spot: true}}
	rv := resources.NewResolver(pools)
	for _, p := range []resources.Profile{
		{CPU: "1", Memory: "2Gi"},
		{CPU: "2", Memory: "8Gi", GPUs: 1, NodePool: "gpu", Preemptible: true, SharedMemory: "1Gi"},
		{CPU: "1", NodeSelector: map[string]string{"zone": "a"}},
		{CPU: "-1"},
		{GPUs: 1, NodePool: "no-such-pool"},
	} {
		want, wantErr := resources.Resolve(p, pools)
		first, err := rv.ResolveShared(p)
		assert.Equal(t, fmt.Sprint(wantErr), fmt.Sprint(err))
		assert.Equal(t, want, first)
		second, err := rv.ResolveShared(p)
		assert.Equal(t, fmt.Sprint(wantErr), fmt.Sprint(err))
		assert.Equal(t, want, second)
		if p.NodeSelector == nil && first.Requests != nil {
			first.Requests["sluice.dev/probe"] = resource.MustParse("1")
			_, sharedMap := second.Requests["sluice.dev/probe"]
			assert.True(t, sharedMap, "equal profiles share one resolution")
			delete(first.Requests, "sluice.dev/probe")
		}
	}
}

// More profiles than the Resolver keeps as recent, in turns: each call
// gets its own profile's resolution.
func TestResolverManyProfiles(t *testing.T) {
	pools := []resources.NodePool{{Name: "cpu", Provider: resources.ProviderGKE, Node: resources.Capacity{CPU: "32", Memory: "128Gi"}}}
	rv := resources.NewResolver(pools)
	var profiles []resources.Profile
	for i := 1; i <= 7; i++ {
		profiles = append(profiles, resources.Profile{CPU: fmt.Sprint(i), Memory: fmt.Sprintf("%dGi", i)})
	}
	profiles = append(profiles, resources.Profile{CPU: "1", Memory: "1Gi", NodePool: "cpu"}, resources.Profile{CPU: "1", Memory: "1Gi", NodePool: "gpu"})
	for round := range 3 {
		for _, p := range profiles {
			want, wantErr := resources.Resolve(p, pools)
			got, err := rv.ResolveShared(p)
			assert.Equal(t, fmt.Sprint(wantErr), fmt.Sprint(err), "round %d, %+v", round, p)
			assert.Equal(t, want, got, "round %d, %+v", round, p)
		}
	}
}

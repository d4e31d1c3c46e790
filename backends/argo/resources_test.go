package argo_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"sync/atomic"
	"testing"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	"github.com/argoproj/argo-workflows/v3/workflow/common"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/sluice-ml/sluice/backends"
	"github.com/sluice-ml/sluice/backends/argo"
	"github.com/sluice-ml/sluice/pipeline"
	"github.com/sluice-ml/sluice/resources"
	"github.com/sluice-ml/sluice/task"
)

var (
	// gpuPool runs the NVIDIA GPU Operator (mixed strategy), not GKE's
	// managed GPU stack.
	gpuPool = resources.NodePool{Name: "a100", Provider: resources.ProviderGKE, GPUStack: resources.GPUStackNVIDIA,
		Labels: map[string]string{"cloud.google.com/gke-nodepool": "a100"},
		Taints: []corev1.Taint{{Key: "nvidia.com/gpu", Value: "present", Effect: corev1.TaintEffectNoSchedule}}}
	singlePool = resources.NodePool{Name: "a100-single", Provider: resources.ProviderGKE, MIGStrategy: resources.MIGSingle,
		Labels: map[string]string{"cloud.google.com/gke-nodepool": "a100-single"}}
	spotPool = resources.NodePool{Name: "spot", Provider: resources.ProviderGKE, Spot: true,
		Labels: map[string]string{"cloud.google.com/gke-nodepool": "spot"}}
)

// templateOf returns the template DAG task step of main calls.
func templateOf(t *testing.T, wf *wfv1.Workflow, step string) *wfv1.Template {
	t.Helper()
	for _, dt := range wf.Spec.Templates[0].DAG.Tasks {
		if dt.Name != step {
			continue
		}
		for i := range wf.Spec.Templates {
			if wf.Spec.Templates[i].Name == dt.Template {
				return &wf.Spec.Templates[i]
			}
		}
	}
	t.Fatalf("no template for step %q", step)
	return nil
}

// Each step's template carries its resolved profile: requests and limits
// (GPUs, MIG slices as the device plugin strategy names them), node
// selector, tolerations and affinity, /dev/shm; a preemptible step with
// the on-demand fall-back patches its pod from the Infra-th retry on.
func TestResources(t *testing.T) {
	p := pipeline.New("res", &pipeline.Options{NodePools: []resources.NodePool{gpuPool, singlePool, spotPool}})
	pipeline.Add(p, inc.WithName("train").WithResources(resources.Profile{CPU: "8", Memory: "64Gi", SharedMemory: "16Gi",
		GPUModel: "A100-80GB", GPUs: 2, NodePool: "a100"}), one{})
	pipeline.Add(p, inc.WithName("mixed").WithResources(resources.Profile{GPUModel: "A100-80GB", MIG: "3g.40gb", NodePool: "a100"}), one{})
	pipeline.Add(p, inc.WithName("single").WithResources(resources.Profile{GPUModel: "A100-80GB", MIG: "1g.10gb", MIGCount: 2, NodePool: "a100-single"}), one{})
	pipeline.Add(p, inc.WithName("spot").WithResources(resources.Profile{CPU: "1", NodePool: "spot", Preemptible: true}).
		WithRetry(task.Retry{App: 1, Infra: 2, OnDemandFallback: true}), one{})
	art, err := pipeline.Compile(t.Context(), p, argo.New(nil, testOptions()), nil)
	require.NoError(t, err)
	checkDocument(t, art.Documents()[0])
	var wf *wfv1.Workflow
	require.True(t, art.As(&wf))
	var plan *backends.Plan
	require.True(t, art.As(&plan))

	// Every step's template is its resolved profile, whatever it is.
	for _, s := range plan.Steps {
		tm := templateOf(t, wf, s.Name)
		assert.Equal(t, s.Resolved.Requests, tm.Container.Resources.Requests, s.Name)
		assert.Equal(t, s.Resolved.Limits, tm.Container.Resources.Limits, s.Name)
		assert.Equal(t, s.Resolved.Placement.NodeSelector, tm.NodeSelector, s.Name)
		assert.Equal(t, s.Resolved.Placement.Tolerations, tm.Tolerations, s.Name)
		assert.Equal(t, s.Resolved.Placement.Affinity, tm.Affinity, s.Name)
	}

	// And that profile is what the design promises.
	train := templateOf(t, wf, "train")
	assert.True(t, train.Container.Resources.Limits["nvidia.com/gpu"].Equal(resource.MustParse("2")))
	assert.Equal(t, "a100", train.NodeSelector["cloud.google.com/gke-nodepool"])
	tolerated := false
	for _, tol := range train.Tolerations {
		taint := gpuPool.Taints[0]
		tolerated = tolerated || (tol.Key == taint.Key && tol.Effect == taint.Effect &&
			(tol.Operator == corev1.TolerationOpExists || tol.Value == taint.Value))
	}
	assert.True(t, tolerated, "the pool's taint is tolerated: %v", train.Tolerations)
	var shm *corev1.Volume
	for i := range train.Volumes {
		if train.Volumes[i].EmptyDir != nil && train.Volumes[i].EmptyDir.Medium == corev1.StorageMediumMemory {
			shm = &train.Volumes[i]
		}
	}
	require.NotNil(t, shm, "a memory-backed emptyDir")
	assert.True(t, shm.EmptyDir.SizeLimit.Equal(resource.MustParse("16Gi")))
	assert.Contains(t, train.Container.VolumeMounts, corev1.VolumeMount{Name: shm.Name, MountPath: "/dev/shm"})

	assert.True(t, templateOf(t, wf, "mixed").Container.Resources.Limits["nvidia.com/mig-3g.40gb"].Equal(resource.MustParse("1")), "mixed strategy")
	single := templateOf(t, wf, "single")
	assert.True(t, single.Container.Resources.Limits["nvidia.com/gpu"].Equal(resource.MustParse("2")), "single strategy: slices as nvidia.com/gpu")
	assert.NotEmpty(t, single.NodeSelector["nvidia.com/gpu.product"], "single strategy: the product label")

	// The on-demand fall-back: no patch before the Infra-th retry, then
	// the on-demand placement replaces the spot one.
	spot := templateOf(t, wf, "spot")
	assert.Equal(t, "2", spot.Metadata.Annotations[argo.AnnotationOnDemandAfter])
	step := plan.Step("spot")
	for retries, want := range []bool{false, false, true, true} {
		got, err := common.ProcessArgs(spot, &wfv1.Arguments{Parameters: []wfv1.Parameter{{Name: "i", Value: wfv1.AnyStringPtr("{}")}}},
			nil, common.Parameters{"retries": strconv.Itoa(retries), "tasks.name": "spot"}, false, "default", nil)
		require.NoError(t, err)
		var patch corev1.PodSpec
		require.NoError(t, json.Unmarshal([]byte(got.PodSpecPatch), &patch), got.PodSpecPatch)
		if !want {
			assert.Equal(t, corev1.PodSpec{}, patch, "retry %d", retries)
			continue
		}
		for k, v := range step.Resolved.OnDemand.NodeSelector {
			assert.Equal(t, v, patch.NodeSelector[k], "retry %d", retries)
		}
		for k := range step.Resolved.Placement.NodeSelector {
			if _, kept := step.Resolved.OnDemand.NodeSelector[k]; !kept {
				assert.NotContains(t, got.PodSpecPatch, `"`+k+`":"`, "the spot selector %s is removed (null)", k)
			}
		}
		assert.Equal(t, step.Resolved.OnDemand.Tolerations, nilIfEmpty(patch.Tolerations), "retry %d", retries)
	}
}

func nilIfEmpty(ts []corev1.Toleration) []corev1.Toleration {
	if len(ts) == 0 {
		return nil
	}
	return ts
}

// Watch marks the attempts that ran after the on-demand fall-back.
func TestOnDemandAttempts(t *testing.T) {
	var calls atomic.Int32
	p := pipeline.New("od", &pipeline.Options{NodePools: []resources.NodePool{spotPool}})
	pipeline.Add(p, task.New("train", func(context.Context, struct{}) (num, error) {
		if calls.Add(1) <= 2 {
			return num{}, fmt.Errorf("node preempted: %w", task.ErrInfrastructure)
		}
		return num{V: 1}, nil
	}).WithResources(resources.Profile{NodePool: "spot", Preemptible: true}).
		WithRetry(task.Retry{Infra: 2, OnDemandFallback: true}), struct{}{})
	st, err := runOnSim(t, p, nil)
	require.NoError(t, err)
	s := st.Step("train")
	require.NotNil(t, s)
	require.Len(t, s.Attempts, 3)
	var onDemand []bool
	for _, a := range s.Attempts {
		onDemand = append(onDemand, a.OnDemand)
	}
	assert.Equal(t, []bool{false, false, true}, onDemand)
	assert.Equal(t, backends.ReasonInfra, s.Attempts[0].Reason)
}

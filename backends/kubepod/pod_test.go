package kubepod_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"

	"github.com/sluice-ml/sluice/backends"
	"github.com/sluice-ml/sluice/backends/kubepod"
	"github.com/sluice-ml/sluice/internal/scribble"
	"github.com/sluice-ml/sluice/pipeline"
	"github.com/sluice-ml/sluice/resources"
	"github.com/sluice-ml/sluice/task"
)

type trainIn struct{ LR float64 }

// gpuPool is a spot GPU pool: its steps get a node selector, tolerations
// and an affinity, GPU limits and (here) shared memory.
var gpuPool = resources.NodePool{
	Name:     "gpu",
	Provider: resources.ProviderGKE,
	Labels:   map[string]string{"cloud.google.com/gke-nodepool": "a100"},
	Node:     resources.Capacity{CPU: "12", Memory: "170Gi", GPUModel: "A100-80GB", GPUs: 1},
	Spot:     true,
}

// plan has a Go task and a container task that use every part of a
// step's pod: image, resources, placement, shared memory, timeout,
// command, args and env.
func plan(t *testing.T) *backends.Plan {
	t.Helper()
	p := pipeline.New("pods", &pipeline.Options{NodePools: []resources.NodePool{gpuPool}})
	prof := resources.Profile{CPU: "2", Memory: "8Gi", SharedMemory: "1Gi", GPUs: 1, NodePool: "gpu", Preemptible: true}
	train := task.New("train", func(context.Context, trainIn) (float64, error) { return 0, nil }).
		WithResources(prof).WithTimeout(90 * time.Second).
		WithRetry(task.Retry{Infra: 1, OnDemandFallback: true})
	pipeline.Add(p, train, trainIn{LR: 0.1})
	type evalOut struct{ Score float64 }
	eval := task.Container[trainIn, evalOut]("eval", "registry.example/eval:1").
		WithCommand("python", "eval.py").WithArgs("--lr={{.LR}}").WithEnv("LR", "{{.LR}}").
		WithOutput("Score", "/tmp/sluice/outputs/score-file").WithResources(prof)
	pipeline.Add(p, eval, trainIn{LR: 0.2})
	pl, err := p.Plan(nil)
	require.NoError(t, err)
	return pl
}

func options() *kubepod.Options {
	return &kubepod.Options{
		Image: "registry.example/prog:1", Command: []string{"/ko-app/prog"}, ServiceAccountName: "runner",
		ImagePullPolicy:    corev1.PullIfNotPresent,
		PodSecurityContext: &corev1.PodSecurityContext{RunAsNonRoot: ptr.To(true), RunAsUser: ptr.To(int64(1000))},
		SecurityContext:    kubepod.RestrictedSecurityContext(),
		Labels:             map[string]string{"team": "ml"},
	}
}

// snapshot is the JSON of everything in a Plan and Options that a pod is
// built from.
func snapshot(t *testing.T, pl *backends.Plan, o *kubepod.Options) string {
	t.Helper()
	b, err := json.Marshal(o)
	require.NoError(t, err)
	return scribble.Fingerprint(pl) + string(b)
}

// Changing anything in the pod Spec returns changes neither the Plan nor
// the Options.
func TestSpecSharesNothing(t *testing.T) {
	pl, o := plan(t), options()
	for i := range pl.Steps {
		// A spot placement needs no affinity; give it the on-demand one,
		// so every placement field is there to share.
		r := &pl.Steps[i].Resolved
		require.NotNil(t, r.OnDemand)
		r.Placement.Affinity = r.OnDemand.Affinity
	}
	before := snapshot(t, pl, o)
	for i := range pl.Steps {
		s := &pl.Steps[i]
		pod, err := kubepod.Spec(o, s, kubepod.Invocation{Step: s.Name, Input: "{}"})
		require.NoError(t, err)
		require.NotEmpty(t, pod.NodeSelector, "the test needs placement")
		require.NotEmpty(t, pod.Tolerations)
		require.NotNil(t, pod.Affinity)
		require.NotEmpty(t, pod.Containers[0].Resources.Limits)
		require.NotEmpty(t, pod.Volumes)
		scribble.Over(&pod)
	}
	assert.Equal(t, before, snapshot(t, pl, o))
}

func TestSpec(t *testing.T) {
	pl, o := plan(t), options()
	train, eval := &pl.Steps[0], &pl.Steps[1]

	pod, err := kubepod.Spec(o, train, kubepod.Invocation{Step: "train", Input: `{"LR":0.1}`, OutputFile: "/out"})
	require.NoError(t, err)
	ctr := pod.Containers[0]
	assert.Equal(t, kubepod.ContainerName, ctr.Name)
	assert.Equal(t, "registry.example/prog:1", ctr.Image, "a Go task without an image runs Options.Image")
	assert.Equal(t, []string{"/ko-app/prog"}, ctr.Command)
	assert.Equal(t, backends.InvokeArgs("train", `{"LR":0.1}`, "/out"), ctr.Args)
	assert.Equal(t, backends.TerminationLog, ctr.TerminationMessagePath)
	assert.Equal(t, []corev1.EnvVar{{Name: backends.TerminationLogEnv, Value: backends.TerminationLog}}, ctr.Env)
	assert.Equal(t, corev1.PullIfNotPresent, ctr.ImagePullPolicy)
	assert.Equal(t, kubepod.RestrictedSecurityContext(), ctr.SecurityContext)
	assert.Equal(t, []corev1.VolumeMount{{Name: kubepod.ShmVolume, MountPath: kubepod.ShmPath}}, ctr.VolumeMounts)
	assert.Equal(t, corev1.StorageMediumMemory, pod.Volumes[0].EmptyDir.Medium)
	assert.Equal(t, "1Gi", pod.Volumes[0].EmptyDir.SizeLimit.String())
	assert.Equal(t, int64(90), *pod.ActiveDeadlineSeconds)
	assert.Equal(t, corev1.RestartPolicyNever, pod.RestartPolicy)
	assert.Equal(t, "runner", pod.ServiceAccountName)
	assert.Nil(t, pod.AutomountServiceAccountToken, "an account the user names keeps its token")
	assert.Equal(t, int64(1000), *pod.SecurityContext.RunAsUser)
	assert.Equal(t, train.Resolved.Placement.NodeSelector, pod.NodeSelector)
	assert.Equal(t, train.Resolved.Limits, ctr.Resources.Limits)

	pod, err = kubepod.Spec(o, eval, kubepod.Invocation{Rewrite: func(s string) string { return "<" + s + ">" }})
	require.NoError(t, err)
	ctr = pod.Containers[0]
	assert.Equal(t, "registry.example/eval:1", ctr.Image, "a container task runs its own image")
	assert.Equal(t, []string{"<python>", "<eval.py>"}, ctr.Command)
	assert.Equal(t, []string{"<--lr={{.LR}}>"}, ctr.Args)
	assert.Equal(t, []corev1.EnvVar{{Name: "LR", Value: "<{{.LR}}>"}}, ctr.Env)
	assert.Empty(t, ctr.TerminationMessagePath)

	// Defaults: no options at all.
	pod, err = kubepod.Spec(nil, eval, kubepod.Invocation{})
	require.NoError(t, err)
	assert.Equal(t, kubepod.RestrictedPodSecurityContext(), pod.SecurityContext)
	assert.Equal(t, kubepod.RestrictedSecurityContext(), pod.Containers[0].SecurityContext)
	assert.Equal(t, ptr.To(false), pod.AutomountServiceAccountToken, "steps do not talk to the API server")
	assert.Equal(t, "{{.LR}}", pod.Containers[0].Env[0].Value, "without Rewrite, placeholders stay")
}

// A Go task needs an image: its own or Options.Image.
func TestSpecNoImage(t *testing.T) {
	pl := plan(t)
	_, err := kubepod.Spec(&kubepod.Options{}, &pl.Steps[0], kubepod.Invocation{})
	assert.True(t, errors.Is(err, kubepod.ErrNoImage), "%v", err)
	assert.Equal(t, "registry.example/eval:1", (*kubepod.Options)(nil).ImageOf(pl.Steps[1].Task))
	withOwn := pl.Steps[0].Task
	withOwn.Image = "registry.example/gpu-prog:1"
	assert.Equal(t, "registry.example/gpu-prog:1", options().ImageOf(withOwn), "a task's own image wins")
}

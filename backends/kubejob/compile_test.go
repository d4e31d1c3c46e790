package kubejob_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/sluice-ml/sluice/backends"
	"github.com/sluice-ml/sluice/backends/backendtest"
	"github.com/sluice-ml/sluice/backends/kubejob"
	"github.com/sluice-ml/sluice/backends/kubepod"
	"github.com/sluice-ml/sluice/internal/scribble"
	"github.com/sluice-ml/sluice/pipeline"
	"github.com/sluice-ml/sluice/resources"
	"github.com/sluice-ml/sluice/task"
)

type num struct{ V int }

type none struct{}

func constant(name string) task.Task[none, num] {
	return task.New(name, func(context.Context, none) (num, error) { return num{1}, nil })
}

func buildCase(t *testing.T, name string) *pipeline.Pipeline {
	t.Helper()
	for _, c := range backendtest.Cases() {
		if c.Name == name {
			return c.Build()
		}
	}
	t.Fatalf("no case %q", name)
	return nil
}

func TestBackendName(t *testing.T) {
	b := kubejob.New(nil, nil)
	assert.Equal(t, "kubejob", b.Name())
	assert.Equal(t, "kubejob", backends.NameOf(b))
}

// The Role grants the orchestrator jobs and pods in its namespace and
// nothing else; the binding names the ServiceAccount.
func TestRBACLeastPrivilege(t *testing.T) {
	_, c := compile(t, buildCase(t, "Diamond"), &kubejob.Options{Pod: kubepod.Options{Image: testImage, Namespace: "ml"}}, nil)
	assert.Equal(t, "diamond-orchestrator", c.sa.Name)
	assert.Equal(t, "ml", c.sa.Namespace)
	assert.Equal(t, []rbacv1.PolicyRule{
		{APIGroups: []string{"batch"}, Resources: []string{"jobs"}, Verbs: []string{"create", "delete", "get", "list", "watch"}},
		{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"get", "list", "watch"}},
		{APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"create", "delete", "get", "list", "patch", "watch"}},
	}, c.role.Rules)
	assert.Equal(t, rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: c.role.Name}, c.rb.RoleRef)
	assert.Equal(t, []rbacv1.Subject{{Kind: "ServiceAccount", Name: c.sa.Name, Namespace: "ml"}}, c.rb.Subjects)
	for _, j := range c.jobs {
		assert.Equal(t, "ml", j.Namespace)
		assert.Empty(t, j.Spec.Template.Spec.ServiceAccountName, "steps never run as the orchestrator")
		assert.Equal(t, false, *j.Spec.Template.Spec.AutomountServiceAccountToken)
	}

	_, c = compile(t, buildCase(t, "Diamond"), &kubejob.Options{Pod: kubepod.Options{Image: testImage, ServiceAccountName: "trainer"}, OrchestratorServiceAccount: "orch"}, nil)
	assert.Equal(t, "orch", c.role.Name)
	for _, j := range c.jobs {
		assert.Equal(t, "trainer", j.Spec.Template.Spec.ServiceAccountName)
		assert.Nil(t, j.Spec.Template.Spec.AutomountServiceAccountToken)
	}
}

// Jobs carry the run's labels and record the dependency structure.
func TestLabelsAndStructure(t *testing.T) {
	_, c := compile(t, buildCase(t, "Diamond"), &kubejob.Options{Pod: kubepod.Options{Image: testImage, Labels: map[string]string{"team": "ml", kubejob.LabelRun: "nope"}}, RunID: "r1"}, nil)
	join := c.job(t, "join")
	assert.Equal(t, "r1-join", join.Name)
	want := map[string]string{"team": "ml", kubejob.LabelPipeline: "diamond", kubejob.LabelRun: "r1", kubejob.LabelStep: "join"}
	assert.Equal(t, want, join.Labels)
	assert.Equal(t, want, join.Spec.Template.Labels, "the pod informer selects by the same labels")
	var deps []string
	require.NoError(t, json.Unmarshal([]byte(join.Annotations[kubejob.AnnotationDependsOn]), &deps))
	assert.Equal(t, []string{"left", "right"}, deps)
	assert.Equal(t, "[]", c.job(t, "source").Annotations[kubejob.AnnotationDependsOn])

	_, c = compile(t, buildCase(t, "ConditionSkipAndPropagation"), testOptions(), nil)
	assert.Equal(t, "score.Value >= params.min_score", c.job(t, "promote").Annotations[kubejob.AnnotationWhen])
	assert.NotContains(t, c.job(t, "announce").Annotations, kubejob.AnnotationWhen)

	_, c = compile(t, buildCase(t, "WideFanOutWithParallelismCap"), testOptions(), nil)
	assert.JSONEq(t, `{"items":"list","parallelism":3}`, c.job(t, "square").Annotations[kubejob.AnnotationForEach])
	assert.Equal(t, []string{"task", "-step", "square", "-input", "${item}", "-output-file", "/dev/termination-log"},
		c.job(t, "square").Spec.Template.Spec.Containers[0].Args)
}

// The input argument is the input template with refs as ${REF}.
func TestInputPlaceholders(t *testing.T) {
	_, c := compile(t, buildCase(t, "ParamsAndFields"), testOptions(), nil)
	ctr := c.job(t, "scale").Spec.Template.Spec.Containers[0]
	assert.Equal(t, backends.InvokeArgs("scale", `{"Count":${stats.count},"Scale":${params.scale},"Label":${params.label}}`, backends.TerminationLog), ctr.Args)
	assert.Equal(t, corev1.TerminationMessageFallbackToLogsOnError, ctr.TerminationMessagePolicy, "a failed task's stderr becomes the message")
	assert.Equal(t, "/dev/termination-log", ctr.TerminationMessagePath)

	_, c = compile(t, buildCase(t, "StaticFanOutFanIn"), testOptions(), nil)
	assert.Contains(t, c.job(t, "total").Spec.Template.Spec.Containers[0].Args, `{"Xs":[${double-0},${double-1},${double-2}]}`)
}

// Job names are DNS-1123 labels, unique and deterministic; long ones are
// fitted to 63 characters with a stable hash.
func TestJobNames(t *testing.T) {
	long := strings.Repeat("x", 50)
	p := pipeline.New("names", nil)
	pipeline.Add(p, constant(long+"-a"), none{})
	pipeline.Add(p, constant(long+"-b"), none{})
	pipeline.Add(p, constant("short"), none{})
	opts := &kubejob.Options{Pod: kubepod.Options{Image: testImage}, RunID: "run-" + strings.Repeat("r", 20)}
	_, c := compile(t, p, opts, nil)
	var names []string
	for _, j := range c.jobs {
		assert.Empty(t, validation.IsDNS1123Label(j.Name))
		assert.LessOrEqual(t, len(j.Name), 63)
		names = append(names, j.Name)
	}
	assert.Len(t, names, 3)
	assert.NotEqual(t, names[0], names[1], "fitted names stay unique")
	assert.Len(t, names[0], 63)
	assert.True(t, strings.HasPrefix(names[0], opts.RunID+"-xxx"))
	assert.Equal(t, opts.RunID+"-short", names[2])
	_, again := compile(t, p, opts, nil)
	for i := range c.jobs {
		assert.Equal(t, names[i], again.jobs[i].Name, "deterministic")
	}

	// The default run id is the pipeline's name plus "-run", fitted too.
	lp := pipeline.New(strings.Repeat("p", 63), nil)
	pipeline.Add(lp, constant("a"), none{})
	_, c = compile(t, lp, testOptions(), nil)
	assert.LessOrEqual(t, len(c.jobs[0].Labels[kubejob.LabelRun]), 63)
	assert.Empty(t, validation.IsDNS1123Label(c.jobs[0].Labels[kubejob.LabelRun]))

	// A run id must be a DNS-1123 label.
	_, err := pipeline.Compile(t.Context(), p, kubejob.New(nil, &kubejob.Options{Pod: kubepod.Options{Image: testImage}, RunID: "Bad_ID"}), nil)
	require.Error(t, err)
}

// backoffLimit is the App budget; a preemption or a task's own
// infrastructure failure (exit 3) fails the Job at once, so the
// orchestrator decides on the retry against the Infra budget; the
// on-demand placement is recorded for the fall-back Job; spot placement
// comes from the pool.
func TestRetries(t *testing.T) {
	_, c := compile(t, buildCase(t, "Retries"), testOptions(), nil)
	failOnDisruption := batchv1.PodFailurePolicyRule{
		Action:          batchv1.PodFailurePolicyActionFailJob,
		OnPodConditions: []batchv1.PodFailurePolicyOnPodConditionsPattern{{Type: corev1.DisruptionTarget, Status: corev1.ConditionTrue}},
	}
	for step, limit := range map[string]int32{"app-twice": 2, "preempted": 0, "mixed": 1} {
		j := c.job(t, step)
		assert.Equal(t, limit, *j.Spec.BackoffLimit, step)
		require.NotNil(t, j.Spec.PodFailurePolicy, step)
		rules := j.Spec.PodFailurePolicy.Rules
		assert.Equal(t, failOnDisruption, rules[0], "%s: disruptions first", step)
		// One rule per exit status, so the rule index in the Job's Failed
		// condition says which it was when the pod is gone.
		require.Len(t, rules, 4)
		for i, code := range []int32{backends.ExitInfrastructure, 2, backends.ExitTerminated} {
			r := rules[i+1]
			assert.Equal(t, batchv1.PodFailurePolicyActionFailJob, r.Action)
			assert.Equal(t, kubejob.ContainerName, *r.OnExitCodes.ContainerName)
			assert.Equal(t, batchv1.PodFailurePolicyOnExitCodesOpIn, r.OnExitCodes.Operator)
			assert.Equal(t, []int32{code}, r.OnExitCodes.Values, "rule %d", i+1)
		}
		ctr := j.Spec.Template.Spec.Containers[0]
		assert.Equal(t, backends.TerminationLog, ctr.TerminationMessagePath)
		assert.Contains(t, ctr.Env, corev1.EnvVar{Name: backends.TerminationLogEnv, Value: backends.TerminationLog},
			"the task mode writes a failed task's error where the kubelet reads the termination message")
		assert.Equal(t, corev1.RestartPolicyNever, j.Spec.Template.Spec.RestartPolicy)
		assert.Equal(t, batchv1.Failed, *j.Spec.PodReplacementPolicy)
	}
	var r struct{ App, Infra int }
	require.NoError(t, json.Unmarshal([]byte(c.job(t, "mixed").Annotations[kubejob.AnnotationRetry]), &r))
	assert.Equal(t, 1, r.App)
	assert.Equal(t, 2, r.Infra)

	mixed := c.job(t, "mixed").Spec.Template.Spec
	assert.Equal(t, "true", mixed.NodeSelector[resources.LabelGKESpot], "spot selector from the pool")
	assert.Contains(t, mixed.Tolerations, corev1.Toleration{Key: resources.LabelGKESpot, Operator: corev1.TolerationOpEqual, Value: "true", Effect: corev1.TaintEffectNoSchedule})
	var od kubejob.Placement
	require.NoError(t, json.Unmarshal([]byte(c.job(t, "mixed").Annotations[kubejob.AnnotationOnDemand]), &od))
	assert.NotContains(t, od.NodeSelector, resources.LabelGKESpot)
	assert.Equal(t, "spot", od.NodeSelector["cloud.google.com/gke-nodepool"])
	require.NotNil(t, od.Affinity, "keeps off the pool's spot nodes")
	assert.NotContains(t, c.job(t, "preempted").Annotations, kubejob.AnnotationOnDemand)
}

func TestTimeoutAndTTL(t *testing.T) {
	_, c := compile(t, buildCase(t, "Timeout"), testOptions(), nil)
	for _, j := range c.jobs {
		assert.Equal(t, int64(1), *j.Spec.Template.Spec.ActiveDeadlineSeconds, "150ms rounds up to 1s, per attempt")
		assert.Nil(t, j.Spec.ActiveDeadlineSeconds)
		assert.Equal(t, int32(kubejob.DefaultTTLSecondsAfterFinished), *j.Spec.TTLSecondsAfterFinished)
	}
	p := pipeline.New("t", nil)
	pipeline.Add(p, constant("a").WithTimeout(90*time.Minute+time.Millisecond), none{})
	_, c = compile(t, p, &kubejob.Options{Pod: kubepod.Options{Image: testImage}, TTLSecondsAfterFinished: -1}, nil)
	assert.Equal(t, int64(5401), *c.jobs[0].Spec.Template.Spec.ActiveDeadlineSeconds)
	assert.Nil(t, c.jobs[0].Spec.TTLSecondsAfterFinished)
	_, c = compile(t, p, &kubejob.Options{Pod: kubepod.Options{Image: testImage}, TTLSecondsAfterFinished: 60}, nil)
	assert.Equal(t, int32(60), *c.jobs[0].Spec.TTLSecondsAfterFinished)
}

// Resources: requests and limits, MIG resource names, /dev/shm.
func TestResources(t *testing.T) {
	p := pipeline.New("res", nil)
	pipeline.Add(p, constant("mig").WithResources(resources.Profile{
		CPU: "4", Memory: "16Gi", SharedMemory: "2Gi", GPUModel: "A100-80GB", MIG: "3g.40gb",
	}), none{})
	pipeline.Add(p, constant("gpu").WithResources(resources.Profile{GPUs: 2}), none{})
	_, c := compile(t, p, testOptions(), nil)

	mig := c.job(t, "mig").Spec.Template.Spec
	ctr := mig.Containers[0]
	migRes := corev1.ResourceName("nvidia.com/mig-3g.40gb")
	assert.Equal(t, resource.MustParse("1"), ctr.Resources.Requests[migRes])
	assert.Equal(t, resource.MustParse("1"), ctr.Resources.Limits[migRes])
	assert.Equal(t, resource.MustParse("4"), ctr.Resources.Requests[corev1.ResourceCPU])
	assert.Equal(t, resource.MustParse("16Gi"), ctr.Resources.Limits[corev1.ResourceMemory])
	require.Len(t, mig.Volumes, 1)
	shm := mig.Volumes[0]
	require.NotNil(t, shm.EmptyDir)
	assert.Equal(t, corev1.StorageMediumMemory, shm.EmptyDir.Medium)
	assert.Equal(t, resource.MustParse("2Gi"), *shm.EmptyDir.SizeLimit)
	assert.Equal(t, []corev1.VolumeMount{{Name: shm.Name, MountPath: "/dev/shm"}}, ctr.VolumeMounts)
	assert.Contains(t, mig.Tolerations, corev1.Toleration{Key: resources.TaintGPU, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule})

	gpu := c.job(t, "gpu").Spec.Template.Spec
	assert.Equal(t, resource.MustParse("2"), gpu.Containers[0].Resources.Limits["nvidia.com/gpu"])
	assert.Empty(t, gpu.Volumes)
}

type trainIn struct {
	LR   float64
	Data string
}

type trainOut struct{ Loss float64 }

// A container task keeps its {{.Field}} placeholders for the orchestrator
// and records its input template and output files; exit status 2 is an
// ordinary failure for it.
func TestContainerTask(t *testing.T) {
	p := pipeline.New("ctr", nil)
	pipeline.Add(p, task.Container[trainIn, trainOut]("train", "registry.example/train:1").
		WithCommand("python", "train.py").WithArgs("--lr={{.LR}}", "--data", "{{.Data}}").
		WithEnv("MODE", "{{.Data}}").WithOutput("Loss", "/tmp/sluice/outputs/loss-file"),
		trainIn{LR: 0.1, Data: "s3://b/d"})
	_, c := compile(t, p, &kubejob.Options{Pod: kubepod.Options{Command: []string{"/prog"}}}, nil)
	j := c.job(t, "train")
	ctr := j.Spec.Template.Spec.Containers[0]
	assert.Equal(t, "registry.example/train:1", ctr.Image)
	assert.Equal(t, []string{"python", "train.py"}, ctr.Command, "Options.Pod.Command is for Go tasks only")
	assert.Equal(t, []string{"--lr={{.LR}}", "--data", "{{.Data}}"}, ctr.Args)
	assert.Equal(t, []corev1.EnvVar{{Name: "MODE", Value: "{{.Data}}"}}, ctr.Env)
	assert.JSONEq(t, `{"LR":0.1,"Data":"s3://b/d"}`, j.Annotations[kubejob.AnnotationInput])
	assert.JSONEq(t, `[{"field":"Loss","path":"/tmp/sluice/outputs/loss-file"}]`, j.Annotations[kubejob.AnnotationOutputs])
	// A container's exit statuses are its own, but for 143, SIGTERM's.
	require.Len(t, j.Spec.PodFailurePolicy.Rules, 2)
	assert.Equal(t, []int32{backends.ExitTerminated}, j.Spec.PodFailurePolicy.Rules[1].OnExitCodes.Values)
}

// As and BeforeEmit reach the native objects; changes show in Documents.
func TestAsAndBeforeEmit(t *testing.T) {
	var seen []*batchv1.Job
	art, c := compile(t, buildCase(t, "Diamond"), testOptions(), &pipeline.CompileOptions{
		BeforeEmit: func(as func(any) bool) error {
			if !as(&seen) {
				return errors.New("expected Jobs")
			}
			for _, j := range seen {
				j.Spec.Template.Spec.PriorityClassName = "batch-low"
			}
			var role *rbacv1.Role
			if !as(&role) {
				return errors.New("expected a Role")
			}
			role.Annotations = map[string]string{"edited": "yes"}
			return nil
		},
	})
	require.Len(t, seen, 4)
	for _, j := range c.jobs {
		assert.Equal(t, "batch-low", j.Spec.Template.Spec.PriorityClassName)
	}
	assert.Equal(t, "yes", c.role.Annotations["edited"])

	var jobs []*batchv1.Job
	require.True(t, art.As(&jobs))
	assert.Equal(t, seen, jobs)
	var sa *corev1.ServiceAccount
	require.True(t, art.As(&sa))
	assert.Equal(t, "diamond-orchestrator", sa.Name)
	var rb *rbacv1.RoleBinding
	require.True(t, art.As(&rb))
	var plan *backends.Plan
	require.True(t, art.As(&plan))
	assert.Equal(t, "diamond", plan.Name)
	assert.False(t, art.As(nil))
	var job *batchv1.Job
	assert.False(t, art.As(&job), "one Job is not a supported target; use *[]*batchv1.Job")

	// An error from BeforeEmit is returned.
	boom := errors.New("boom")
	_, err := pipeline.Compile(t.Context(), buildCase(t, "Diamond"), kubejob.New(nil, testOptions()), &pipeline.CompileOptions{
		BeforeEmit: func(func(any) bool) error { return boom },
	})
	assert.ErrorIs(t, err, boom)
}

func TestSecurityContextOverride(t *testing.T) {
	uid := int64(1000)
	_, c := compile(t, buildCase(t, "Diamond"), &kubejob.Options{
		Pod: kubepod.Options{
			Image:              testImage,
			ImagePullPolicy:    corev1.PullIfNotPresent,
			PodSecurityContext: &corev1.PodSecurityContext{RunAsNonRoot: ptrTo(true), RunAsUser: &uid, SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault}},
		},
	}, nil)
	for _, j := range c.jobs {
		assert.Equal(t, &uid, j.Spec.Template.Spec.SecurityContext.RunAsUser)
		assert.Equal(t, corev1.PullIfNotPresent, j.Spec.Template.Spec.Containers[0].ImagePullPolicy)
	}
}

func ptrTo[T any](v T) *T { return &v }

// What Jobs cannot express is an error wrapping errors.ErrUnsupported;
// other problems are plain errors.
func TestUnsupported(t *testing.T) {
	t.Run("StepNamedLikeAFanOutInstance", func(t *testing.T) {
		p := pipeline.New("clash", nil)
		list := pipeline.Add(p, task.New("list", func(context.Context, none) ([]int, error) { return []int{1, 2}, nil }), none{})
		pipeline.ForEach(p, task.New("square", func(_ context.Context, in pipeline.Ref[int]) (int, error) { return in.Get() * in.Get(), nil }),
			list.Output(), func(item pipeline.Ref[int]) pipeline.Ref[int] { return item })
		pipeline.Add(p, constant("square-0"), none{})
		_, err := pipeline.Compile(t.Context(), p, kubejob.New(nil, testOptions()), nil)
		require.ErrorIs(t, err, errors.ErrUnsupported)
	})
	t.Run("StepNamedLikeAnInfraRetry", func(t *testing.T) {
		p := pipeline.New("clash", nil)
		pipeline.Add(p, constant("train").WithRetry(task.Retry{Infra: 1}), none{})
		pipeline.Add(p, constant("train-r1"), none{})
		_, err := pipeline.Compile(t.Context(), p, kubejob.New(nil, testOptions()), nil)
		require.ErrorIs(t, err, errors.ErrUnsupported)
	})
	t.Run("NoImageIsAPlainError", func(t *testing.T) {
		_, err := pipeline.Compile(t.Context(), buildCase(t, "Diamond"), kubejob.New(nil, nil), nil)
		require.Error(t, err)
		assert.NotErrorIs(t, err, errors.ErrUnsupported)
	})
	t.Run("InputTooLarge", func(t *testing.T) {
		p := pipeline.New("big", nil)
		pipeline.Add(p, task.New("echo", func(_ context.Context, s string) (string, error) { return s, nil }), strings.Repeat("a", kubejob.MaxInputArg))
		_, err := pipeline.Compile(t.Context(), p, kubejob.New(nil, testOptions()), nil)
		require.ErrorIs(t, err, kubejob.ErrTooLarge)
	})
}

// Compiling is safe for concurrent use of one Backend.
func TestCompileConcurrentSafe(t *testing.T) {
	b := kubejob.New(nil, testOptions())
	want, err := pipeline.Compile(t.Context(), buildCase(t, "Retries"), b, nil)
	require.NoError(t, err)
	const n = 8
	type result struct {
		docs [][]byte
		err  error
	}
	ps := make([]*pipeline.Pipeline, n)
	for i := range ps {
		ps[i] = buildCase(t, "Retries")
	}
	done := make(chan result, n)
	for _, p := range ps {
		go func() {
			art, err := pipeline.Compile(t.Context(), p, b, nil)
			if err != nil {
				done <- result{err: err}
				return
			}
			done <- result{docs: art.Documents()}
		}()
	}
	for range n {
		r := <-done
		require.NoError(t, r.err)
		assert.Equal(t, want.Documents(), r.docs)
	}
}

// A BeforeEmit hook may edit the Jobs as it likes: nothing in them is
// shared with the Plan (node selectors, tolerations, resource lists…).
func TestBeforeEmitLeavesThePlanAlone(t *testing.T) {
	for _, c := range backendtest.Cases() {
		t.Run(c.Name, func(t *testing.T) {
			_, _ = pipeline.Compile(t.Context(), c.Build(), kubejob.New(nil, testOptions()),
				&pipeline.CompileOptions{BeforeEmit: scribble.Hook(t, new([]*batchv1.Job))})
		})
	}
}

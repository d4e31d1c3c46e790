package local_test

import (
	"context"
	"errors"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"sigs.k8s.io/yaml"

	"github.com/sluice-ml/sluice/backends"
	"github.com/sluice-ml/sluice/backends/local"

	"github.com/sluice-ml/sluice/pipeline"
	"github.com/sluice-ml/sluice/resources"
	"github.com/sluice-ml/sluice/task"
)

// recordPipeline exercises every part of the record.
func recordPipeline() *pipeline.Pipeline {
	p := pipeline.New("churn", nil)
	lr := pipeline.NewParam(p, "lr", 0.01)
	prep := pipeline.Add(p, seed.WithName("prep"), SeedIn{N: 7})
	v := pipeline.Field[int](prep.Output(), "V")
	train := task.New("train", func(_ context.Context, in ScaleIn) (Scaled, error) { return Scaled{}, nil }).
		WithResources(resources.Profile{CPU: "2", Memory: "4Gi", GPUs: 1}).
		WithRetry(task.Retry{App: 1, Backoff: task.Backoff{Initial: time.Second}}).
		WithTimeout(time.Hour).
		WithCache(task.Cache{Enabled: true, Version: "3"})
	pipeline.Add(p, train, ScaleIn{X: v, LR: lr.Ref(), Tag: "v1"}).When(pipeline.Gt(v, 0))
	fan := pipeline.ForEach(p, task.New("work", func(_ context.Context, in WorkIn) (Num, error) { return Num{}, nil }),
		pipeline.Const([]int{1, 2}), func(i pipeline.Ref[int]) WorkIn { return WorkIn{I: i} }).Limit(1)
	pipeline.Add(p, sum, SumIn{Xs: fan.Collect()})
	pipeline.Add(p, task.Container[GreetIn, GreetOut]("greet", "alpine:3").WithCommand("echo", "{{.Name}}"), GreetIn{Name: "x"})
	pipeline.OnExit(p, notify(nil), NotifyIn{Run: p.Status()})
	return p
}

const wantRecord = `exit:
  input:
    Run: ${run}
  kind: go
  name: notify
params:
- name: lr
  type: float64
  value: 0.01
pipeline: churn
steps:
- input:
    "N": 7
  kind: go
  name: prep
- cache:
    enabled: true
    version: "3"
  dependsOn:
  - prep
  input:
    LR: ${params.lr}
    Tag: v1
    X: ${prep.V}
  kind: go
  name: train
  resources:
    limits:
      memory: 4Gi
      nvidia.com/gpu: "1"
    requests:
      cpu: "2"
      memory: 4Gi
      nvidia.com/gpu: "1"
    tolerations:
    - effect: NoSchedule
      key: nvidia.com/gpu
      operator: Exists
  retry:
    app: 1
    backoffInitial: 1s
  timeout: 1h0m0s
  when: prep.V > 0
- forEach:
    items: '[1,2]'
    parallelism: 1
  input:
    I: ${item}
  kind: go
  name: work
- dependsOn:
  - work
  input:
    Xs: ${work}
  kind: go
  name: sum
- command:
  - echo
  - '{{.Name}}'
  image: alpine:3
  input:
    Name: x
    times: 0
  kind: container
  name: greet
  outputs:
  - field: Greeting
    path: /tmp/sluice/outputs/Greeting
  - field: count
    path: /tmp/sluice/outputs/count
`

func TestCompileRecord(t *testing.T) {
	art, err := pipeline.Compile(t.Context(), recordPipeline(), local.New(nil), nil)
	require.NoError(t, err)

	docs := art.Documents()
	require.Len(t, docs, 1)
	assert.Equal(t, wantRecord, string(docs[0]))

	var rec local.Record
	require.NoError(t, yaml.UnmarshalStrict(docs[0], &rec), "the document decodes as a Record")
	assert.Equal(t, "churn", rec.Pipeline)

	again, err := pipeline.Compile(t.Context(), recordPipeline(), local.New(nil), nil)
	require.NoError(t, err)
	assert.Equal(t, docs, again.Documents(), "deterministic")
}

func TestAs(t *testing.T) {
	art, err := pipeline.Compile(t.Context(), recordPipeline(), local.New(nil), nil)
	require.NoError(t, err)

	var plan *backends.Plan
	require.True(t, art.As(&plan))
	assert.Equal(t, "churn", plan.Name)
	var rec *local.Record
	require.True(t, art.As(&rec))
	assert.Equal(t, "prep", rec.Steps[0].Name)
	assert.False(t, art.As(nil))
	var other *task.Spec
	assert.False(t, art.As(&other))
}

func TestBeforeEmit(t *testing.T) {
	var sawPlan bool
	art, err := pipeline.Compile(t.Context(), recordPipeline(), local.New(nil), &pipeline.CompileOptions{
		BeforeEmit: func(as func(any) bool) error {
			var plan *backends.Plan
			sawPlan = as(&plan) && plan.Name == "churn"
			var rec *local.Record
			if !as(&rec) {
				return errors.New("no record")
			}
			rec.Pipeline = "renamed"
			return nil
		},
	})
	require.NoError(t, err)
	assert.True(t, sawPlan)
	assert.Contains(t, string(art.Documents()[0]), "pipeline: renamed\n")

	_, err = pipeline.Compile(t.Context(), recordPipeline(), local.New(nil), &pipeline.CompileOptions{
		BeforeEmit: func(func(any) bool) error { return errors.New("hook says no") },
	})
	assert.ErrorContains(t, err, "hook says no")
}

func TestDryRun(t *testing.T) {
	for _, tc := range []struct {
		name       string
		params     map[string]string
		wantPhases map[string]backends.Phase
	}{
		{"ConditionOnParamFalse", nil, map[string]backends.Phase{
			"a": "Succeeded", "b": "Succeeded", "deploy": "Skipped", "after": "Skipped",
			"known": "Succeeded", "list": "Succeeded", "unknown": "Succeeded", "notify": "Succeeded",
		}},
		{"ConditionOnParamTrue", map[string]string{"deploy": "true"}, map[string]backends.Phase{
			"a": "Succeeded", "b": "Succeeded", "deploy": "Succeeded", "after": "Succeeded",
			"known": "Succeeded", "list": "Succeeded", "unknown": "Succeeded", "notify": "Succeeded",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var ran atomic.Int32
			never := func(name string) task.Task[FromIn, Num] {
				return task.New(name, func(context.Context, FromIn) (Num, error) { ran.Add(1); return Num{}, nil })
			}
			work := task.New("work", func(context.Context, WorkIn) (Num, error) { ran.Add(1); return Num{}, nil })
			bind := func(i pipeline.Ref[int]) WorkIn { return WorkIn{I: i} }

			p := pipeline.New("dry", nil)
			deploy := pipeline.NewParam(p, "deploy", false)
			a := pipeline.Add(p, task.New("a", func(context.Context, SeedIn) (Num, error) { ran.Add(1); return Num{}, nil }), SeedIn{N: 1})
			pipeline.Add(p, never("b"), FromIn{In: a.Output()}).When(pipeline.Gt(pipeline.Field[int](a.Output(), "V"), 1))
			d := pipeline.Add(p, never("deploy"), FromIn{In: a.Output()}).When(pipeline.IsTrue(deploy.Ref()))
			pipeline.Add(p, never("after"), FromIn{In: d.Output()})
			pipeline.ForEach(p, work.WithName("known"), pipeline.Const([]int{1, 2, 3}), bind)
			list := pipeline.Add(p, task.New("list", func(context.Context, SeedIn) ([]int, error) { ran.Add(1); return nil, nil }), SeedIn{})
			pipeline.ForEach(p, work.WithName("unknown"), list.Output(), bind)
			pipeline.OnExit(p, notify(nil), NotifyIn{Run: p.Status()})
			cacheDir := t.TempDir()

			st, err := run(t, p, &local.Options{DryRun: true, CacheDir: cacheDir}, &pipeline.RunOptions{Params: tc.params})
			require.NoError(t, err)

			assert.Zero(t, ran.Load(), "a dry run runs no task")
			assert.Equal(t, tc.wantPhases, phases(st))
			assert.Equal(t, backends.PhaseSucceeded, st.Phase)
			for _, s := range st.Steps {
				assert.Empty(t, s.Attempts, s.Name)
				assert.Nil(t, s.Output, s.Name)
			}
			assert.Equal(t, "dry run; condition a.V > 1 depends on run-time values", stepOf(t, st, "b").Message)
			assert.Equal(t, "dry run; fan-out over list, known only at run time", stepOf(t, st, "unknown").Message)
			assert.Len(t, stepOf(t, st, "known").Instances, 3)
			if tc.params == nil {
				assert.Equal(t, "condition params.deploy is false: params.deploy = false", stepOf(t, st, "deploy").Message)
			}
			entries, err := os.ReadDir(cacheDir)
			require.NoError(t, err)
			assert.Empty(t, entries, "a dry run writes no cache")
		})
	}
}

// Compile checks that the record renders without making it (the check
// looks at views of its steps, which share the plan's memory): a view is
// the record, and the check is the record's, whether it renders or not.
func TestRecordViews(t *testing.T) {
	for _, tc := range []struct {
		name    string
		p       func() *pipeline.Pipeline
		renders bool
	}{
		{"EveryPart", recordPipeline, true},
		{"ArgYAMLCannotRead", func() *pipeline.Pipeline {
			p := pipeline.New("args", nil)
			pipeline.Add(p, task.Container[GreetIn, GreetOut]("greet", "alpine:3").WithCommand("echo", "a\x7f"), GreetIn{})
			return p
		}, false},
		{"InputYAMLCannotRead", func() *pipeline.Pipeline {
			p := pipeline.New("input", nil)
			pipeline.Add(p, task.Container[GreetIn, GreetOut]("greet", "alpine:3"), GreetIn{Name: "\u0085"})
			return p
		}, false},
		{"EmptyInput", func() *pipeline.Pipeline {
			p := pipeline.New("empty", nil)
			pipeline.Add(p, task.New("none", func(context.Context, struct{}) (Num, error) { return Num{}, nil }), struct{}{})
			return p
		}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			art, err := pipeline.Compile(t.Context(), tc.p(), local.New(nil), nil)
			require.NoError(t, err)
			var plan *backends.Plan
			require.True(t, art.As(&plan))
			renders, err := local.CheckRecordViews(plan)
			require.NoError(t, err)
			assert.Equal(t, tc.renders, renders)
		})
	}
}

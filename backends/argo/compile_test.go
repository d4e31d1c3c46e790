package argo_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	"github.com/argoproj/argo-workflows/v3/util/expr/env"
	"github.com/argoproj/argo-workflows/v3/workflow/common"
	"github.com/expr-lang/expr"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"

	"github.com/sluice-ml/sluice/backends"
	"github.com/sluice-ml/sluice/backends/argo"
	"github.com/sluice-ml/sluice/backends/local"
	"github.com/sluice-ml/sluice/internal/golden"
	"github.com/sluice-ml/sluice/pipeline"
	"github.com/sluice-ml/sluice/task"
)

type num struct{ V int }

type one struct{ X pipeline.Ref[num] }

var inc = task.New("inc", func(_ context.Context, in one) (num, error) { return num{in.X.Get().V + 1}, nil })

func compileWF(t testing.TB, p *pipeline.Pipeline, opts *argo.Options) *wfv1.Workflow {
	t.Helper()
	art, err := pipeline.Compile(context.Background(), p, argo.New(nil, opts), nil)
	require.NoError(t, err)
	var wf *wfv1.Workflow
	require.True(t, art.As(&wf))
	return wf
}

// chain returns a pipeline of n identical steps, each adding one.
func chain(n int) *pipeline.Pipeline {
	p := pipeline.New("chain", nil)
	prev := pipeline.Const(num{0})
	for i := range n {
		s := pipeline.Add(p, inc.WithName(fmt.Sprintf("inc-%d", i)), one{X: prev})
		prev = s.Output()
	}
	return p
}

func TestDedupIdenticalSteps(t *testing.T) {
	wf := compileWF(t, chain(50), testOptions())
	var names []string
	for _, tm := range wf.Spec.Templates {
		names = append(names, tm.Name)
	}
	assert.Equal(t, []string{"main", "t1"}, names, "50 identical steps share one template")
	assert.Len(t, wf.Spec.Templates[0].DAG.Tasks, 50)

	// A step used statically, renamed (leading digit) and fanned out still
	// shares the one template: only the last two pass their step name.
	mix := pipeline.New("mix", nil)
	list := pipeline.Add(mix, task.New("list", func(context.Context, struct{}) ([]num, error) { return []num{{1}, {2}}, nil }), struct{}{})
	a := pipeline.Add(mix, inc.WithName("a"), one{X: pipeline.Const(num{1})})
	pipeline.Add(mix, inc.WithName("1b"), one{X: a.Output()})
	pipeline.ForEach(mix, inc.WithName("fan"), list.Output(), func(it pipeline.Ref[num]) one { return one{X: it} })
	wf = compileWF(t, mix, testOptions())
	names = nil
	for _, tm := range wf.Spec.Templates {
		names = append(names, tm.Name)
	}
	assert.Equal(t, []string{"main", "t1", "each-fan"}, names)
	var passed []string
	for _, dt := range wf.Spec.Templates[0].DAG.Tasks {
		for _, p := range dt.Arguments.Parameters {
			if p.Name == "step" {
				passed = append(passed, p.Value.String())
			}
		}
	}
	assert.Equal(t, []string{"1b", "fan"}, passed)

	// A different resource profile is a different template.
	p := chain(2)
	pipeline.Add(p, inc.WithName("big").WithTimeout(time.Minute), one{X: pipeline.Const(num{1})})
	assert.Len(t, compileWF(t, p, testOptions()).Spec.Templates, 3)
}

func TestSizeBudget(t *testing.T) {
	t.Run("Document", func(t *testing.T) {
		_, err := pipeline.Compile(t.Context(), chain(200), argo.New(nil, &argo.Options{Image: testImage, Command: testCommand, MaxSize: 10 << 10}), nil)
		require.ErrorIs(t, err, argo.ErrTooLarge)
		assert.Contains(t, err.Error(), "200 tasks")
	})
	t.Run("Parameter", func(t *testing.T) {
		type big struct{ S string }
		p := pipeline.New("big", nil)
		pipeline.Add(p, task.New("huge", func(context.Context, big) (num, error) { return num{}, nil }), big{S: strings.Repeat("x", 300<<10)})
		_, err := pipeline.Compile(t.Context(), p, argo.New(nil, testOptions()), nil)
		require.ErrorIs(t, err, argo.ErrTooLarge)
		assert.Contains(t, err.Error(), `step "huge": parameter "i"`)
	})
	t.Run("Default", func(t *testing.T) {
		_, err := pipeline.Compile(t.Context(), chain(2000), argo.New(nil, testOptions()), nil)
		require.NoError(t, err, "2000 steps fit in 1 MiB")
	})
}

// The memoize key Argo computes from a step's input equals the local
// backend's cache key for the same input.
func TestCacheKeyMatchesLocal(t *testing.T) {
	type trainIn struct {
		LR      pipeline.Ref[float64]
		Verbose pipeline.Ref[bool]
		Name    string `json:"name"`
	}
	tk := task.New("train", func(_ context.Context, in trainIn) (float64, error) { return 0, nil }).
		WithCache(task.Cache{Enabled: true, Version: "v3", ExcludeInputs: []string{"Verbose"}})
	p := pipeline.New("cache", nil)
	lr := pipeline.NewParam(p, "lr", 0.25)
	pipeline.Add(p, tk, trainIn{LR: lr.Ref(), Verbose: pipeline.Const(true), Name: "a<b>"})
	wf := compileWF(t, p, testOptions())

	input := `{"LR":0.25,"Verbose":true,"name":"a<b>"}`
	tmpl := wf.Spec.Templates[1]
	got, err := common.ProcessArgs(&tmpl, &wfv1.Arguments{Parameters: []wfv1.Parameter{
		{Name: "i", Value: wfv1.AnyStringPtr(input)},
	}}, nil, nil, false, "default", nil)
	require.NoError(t, err)

	want := local.KeyParts{Task: "train", Kind: task.KindGo, Image: testImage, Version: "v3",
		Input: json.RawMessage(`{"LR":0.25,"name":"a\u003cb\u003e"}`)}.Key()
	assert.Equal(t, want, got.Memoize.Key)
}

// The retry expression, evaluated as Argo does, retries infrastructure
// failures up to the limit and application failures while fewer than App
// retries were made.
func TestRetries(t *testing.T) {
	p := pipeline.New("retries", nil)
	pipeline.Add(p, inc.WithName("both").WithRetry(task.Retry{App: 1, Infra: 2, Backoff: task.Backoff{Initial: time.Second, Max: time.Minute}}), one{})
	pipeline.Add(p, inc.WithName("app").WithRetry(task.Retry{App: 2}), one{})
	pipeline.Add(p, inc.WithName("infra").WithRetry(task.Retry{Infra: 3}), one{})
	wf := compileWF(t, p, testOptions())
	rs := map[string]*wfv1.RetryStrategy{}
	for _, dt := range wf.Spec.Templates[0].DAG.Tasks {
		for _, tm := range wf.Spec.Templates {
			if tm.Name == dt.Template {
				rs[dt.Name] = tm.RetryStrategy
			}
		}
	}
	require.NotNil(t, rs["both"].Backoff)
	assert.Equal(t, wfv1.Backoff{Duration: "1s", Factor: rs["both"].Backoff.Factor, Cap: "1m0s"}, *rs["both"].Backoff)
	assert.Equal(t, 2, rs["both"].Backoff.Factor.IntValue())

	retry := func(step string, retries int, status wfv1.NodePhase, exit string) bool {
		r := rs[step]
		if retries+1 > r.Limit.IntValue() {
			return false
		}
		scope := env.GetFuncMap(map[string]any{"retries": fmt.Sprint(retries), "lastRetry.status": string(status),
			"lastRetry.exitCode": exit, "lastRetry.message": "", "lastRetry.duration": "1"})
		prog, err := expr.Compile(r.Expression, expr.Env(scope))
		require.NoError(t, err)
		v, err := expr.Run(prog, scope)
		require.NoError(t, err)
		return v.(bool)
	}
	for _, tc := range []struct {
		step    string
		retries int
		status  wfv1.NodePhase
		exit    string
		want    bool
	}{
		{"both", 0, wfv1.NodeFailed, "1", true},
		{"both", 1, wfv1.NodeFailed, "1", false}, // App: 1 used up
		{"both", 0, wfv1.NodeError, "", true},
		{"both", 2, wfv1.NodeError, "", true},
		{"both", 3, wfv1.NodeError, "", false},   // limit 3
		{"both", 1, wfv1.NodeFailed, "1", false}, // after a preemption: the shared count (documented)
		{"both", 0, wfv1.NodeFailed, "2", false}, // a wrong invocation
		{"app", 1, wfv1.NodeFailed, "1", true},
		{"app", 0, wfv1.NodeError, "", false}, // no Infra budget
		{"infra", 2, wfv1.NodeError, "", true},
		{"infra", 0, wfv1.NodeFailed, "1", false}, // no App budget
		// Exit status 3: the task's own infrastructure failure, counted
		// like a preemption although Argo marks the node Failed.
		{"both", 0, wfv1.NodeFailed, "3", true},
		{"both", 2, wfv1.NodeFailed, "3", true}, // beyond App: 1, within the limit
		{"both", 3, wfv1.NodeFailed, "3", false},
		{"app", 0, wfv1.NodeFailed, "3", false}, // no Infra budget
		{"infra", 2, wfv1.NodeFailed, "3", true},
	} {
		assert.Equal(t, tc.want, retry(tc.step, tc.retries, tc.status, tc.exit), "%+v", tc)
	}

	_, err := pipeline.Compile(t.Context(), func() *pipeline.Pipeline {
		p := pipeline.New("frac", nil)
		pipeline.Add(p, inc.WithRetry(task.Retry{App: 1, Backoff: task.Backoff{Initial: time.Second, Factor: 1.5}}), one{})
		return p
	}(), argo.New(nil, testOptions()), nil)
	require.ErrorIs(t, err, errors.ErrUnsupported)
}

func TestAsAndBeforeEmit(t *testing.T) {
	art, err := pipeline.Compile(t.Context(), chain(1), argo.New(nil, testOptions()), &pipeline.CompileOptions{
		BeforeEmit: func(as func(any) bool) error {
			var wf *wfv1.Workflow
			if !as(&wf) {
				return errors.New("no workflow")
			}
			wf.Spec.Priority = new(int32)
			*wf.Spec.Priority = 7
			return nil
		},
	})
	require.NoError(t, err)
	assert.Contains(t, string(art.Documents()[0]), "priority: 7")
	assert.False(t, art.As(nil))
	var wft *wfv1.WorkflowTemplate
	assert.False(t, art.As(&wft))
	var plan *backends.Plan
	assert.True(t, art.As(&plan))

	// An error from BeforeEmit fails Compile.
	boom := errors.New("policy says no")
	_, err = pipeline.Compile(t.Context(), chain(1), argo.New(nil, testOptions()), &pipeline.CompileOptions{
		BeforeEmit: func(func(any) bool) error { return boom },
	})
	require.ErrorIs(t, err, boom)

	// The other kinds are reached through their own types.
	art, err = pipeline.Compile(t.Context(), chain(1), argo.New(nil, cronOptions("0 3 * * *")), &pipeline.CompileOptions{
		BeforeEmit: func(as func(any) bool) error {
			var cwf *wfv1.CronWorkflow
			if !as(&cwf) {
				return errors.New("no CronWorkflow")
			}
			cwf.Spec.Timezone = "UTC"
			return nil
		},
	})
	require.NoError(t, err)
	var cwf *wfv1.CronWorkflow
	require.True(t, art.As(&cwf))
	assert.Equal(t, "UTC", cwf.Spec.Timezone)
	assert.Contains(t, string(art.Documents()[0]), "timezone: UTC")
	var wf *wfv1.Workflow
	assert.False(t, art.As(&wf), "a CronWorkflow artifact holds no Workflow")
}

func TestKinds(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts *argo.Options
	}{
		{"WorkflowTemplate", &argo.Options{Image: testImage, Command: testCommand, Kind: argo.KindWorkflowTemplate, Namespace: "ml"}},
		{"CronWorkflow", &argo.Options{Image: testImage, Command: testCommand, Kind: argo.KindCronWorkflow, Cron: &argo.CronOptions{
			Schedules: []string{"0 3 * * *", "0 15 * * *"}, Timezone: "Europe/Paris", ConcurrencyPolicy: wfv1.ForbidConcurrent,
			StopExpression: "cronworkflow.failed >= 3",
		}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			art, err := pipeline.Compile(t.Context(), chain(2), argo.New(nil, tc.opts), nil)
			require.NoError(t, err)
			doc := art.Documents()[0]
			checkDocument(t, doc)
			assert.NotContains(t, string(doc), "schedule:")
			assert.NotContains(t, string(doc), "generateName")
			golden.Assert(t, doc)
		})
	}
	_, err := pipeline.Compile(t.Context(), chain(1), argo.New(nil, &argo.Options{Image: testImage, Command: testCommand, Kind: argo.KindCronWorkflow}), nil)
	require.Error(t, err, "a CronWorkflow needs a schedule")
}

// What Argo cannot express is an error wrapping errors.ErrUnsupported that
// names the step and says what to change.
func TestUnsupported(t *testing.T) {
	type dotted struct {
		X string `json:"a.b"`
	}
	for _, tc := range []struct {
		name  string
		build func(p *pipeline.Pipeline)
		want  []string
	}{
		{"RenameCollision", func(p *pipeline.Pipeline) {
			pipeline.Add(p, inc.WithName("1a"), one{})
			pipeline.Add(p, inc.WithName("s-1a"), one{})
		}, []string{`step "1a"`, "rename one of them"}},
		{"ContainerFieldName", func(p *pipeline.Pipeline) {
			pipeline.Add(p, task.Container[dotted, struct{}]("ctr", "busybox").WithCommand("echo").WithArgs("{{.X}}"), dotted{X: "x"})
		}, []string{`step "ctr"`, `"a.b"`, "give it a JSON name"}},
		{"FractionalBackoff", func(p *pipeline.Pipeline) {
			pipeline.Add(p, inc.WithRetry(task.Retry{App: 1, Backoff: task.Backoff{Initial: time.Second, Factor: 1.5}}), one{})
		}, []string{`step "inc"`, "whole factors"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := pipeline.New("u", nil)
			tc.build(p)
			_, err := pipeline.Compile(t.Context(), p, argo.New(nil, testOptions()), nil)
			require.ErrorIs(t, err, errors.ErrUnsupported)
			for _, w := range tc.want {
				assert.Contains(t, err.Error(), w)
			}
		})
	}
}

// The pod and workflow options reach the compiled Workflow, which still
// passes Argo's validation and Pod Security "restricted".
func TestOptions(t *testing.T) {
	psc := backends.RestrictedPodSecurityContext()
	psc.RunAsUser = ptr.To(int64(65532))
	sc := backends.RestrictedSecurityContext()
	sc.ReadOnlyRootFilesystem = ptr.To(true)
	opts := &argo.Options{
		Image: testImage, Namespace: "ml", ServiceAccountName: "pipeline-runner",
		PodGC:              &wfv1.PodGC{Strategy: wfv1.PodGCOnPodSuccess},
		TTL:                &wfv1.TTLStrategy{SecondsAfterSuccess: ptr.To(int32(3600)), SecondsAfterFailure: ptr.To(int32(86400))},
		ImagePullPolicy:    corev1.PullAlways,
		Labels:             map[string]string{"team": "ml"},
		Annotations:        map[string]string{"owner": "ml-platform"},
		PodSecurityContext: psc, SecurityContext: sc,
		Command: []string{"/app/pipeline"},
	}
	art, err := pipeline.Compile(t.Context(), chain(2), argo.New(nil, opts), nil)
	require.NoError(t, err)
	spec := checkDocument(t, art.Documents()[0])
	var wf *wfv1.Workflow
	require.True(t, art.As(&wf))
	assert.Equal(t, "ml", wf.Namespace)
	assert.Equal(t, map[string]string{argo.LabelPipeline: "chain", "team": "ml"}, wf.Labels)
	assert.Equal(t, map[string]string{"owner": "ml-platform"}, wf.Annotations)
	assert.Equal(t, "pipeline-runner", spec.ServiceAccountName)
	assert.Equal(t, wfv1.PodGCOnPodSuccess, spec.PodGC.Strategy)
	assert.Equal(t, int32(3600), *spec.TTLStrategy.SecondsAfterSuccess)
	assert.Equal(t, int32(86400), *spec.TTLStrategy.SecondsAfterFailure)
	assert.Equal(t, int64(65532), *spec.SecurityContext.RunAsUser)
	ctr := spec.Templates[1].Container
	require.NotNil(t, ctr)
	assert.Equal(t, corev1.PullAlways, ctr.ImagePullPolicy)
	assert.True(t, *ctr.SecurityContext.ReadOnlyRootFilesystem)
	assert.Equal(t, []string{"/app/pipeline"}, ctr.Command)

	// The compiled Workflow holds copies: changing the options afterwards
	// does not change it.
	*psc.RunAsUser = 0
	*sc.ReadOnlyRootFilesystem = false
	assert.Equal(t, int64(65532), *wf.Spec.SecurityContext.RunAsUser)
	assert.True(t, *wf.Spec.Templates[1].Container.SecurityContext.ReadOnlyRootFilesystem)
}

// Every template carries an explicit command: without one Argo's
// controller looks the image's entrypoint up in the registry, which fails
// for offline and private registries.
func TestCommandRequired(t *testing.T) {
	noCmd := task.Container[struct{}, struct{}]("report", "registry.example/report:1")
	t.Run("GoTaskWithoutOptionsCommand", func(t *testing.T) {
		_, err := pipeline.Compile(t.Context(), chain(2), argo.New(nil, &argo.Options{Image: testImage}), nil)
		require.Error(t, err)
		assert.Contains(t, err.Error(), "Options.Command is not set")
		assert.Contains(t, err.Error(), "/ko-app/prog")
		assert.Empty(t, pipeline.FieldErrors(err), "not a problem of the pipeline")
	})
	t.Run("ContainerTaskWithoutCommand", func(t *testing.T) {
		p := pipeline.New("ctr", nil)
		pipeline.Add(p, noCmd, struct{}{})
		pipeline.Add(p, noCmd.WithName("again"), struct{}{})
		pipeline.Add(p, noCmd.WithName("fine").WithCommand("/report"), struct{}{})
		_, err := pipeline.Compile(t.Context(), p, argo.New(nil, testOptions()), nil)
		require.Error(t, err)
		type key struct{ Field, Type string }
		var keys []key
		for _, fe := range pipeline.FieldErrors(err) {
			keys = append(keys, key{fe.Field, string(fe.Type)})
		}
		assert.Equal(t, []key{{"pipeline.tasks[report].command", "Required"}, {"pipeline.tasks[again].command", "Required"}}, keys)
		assert.NotContains(t, err.Error(), "Options.Command", "the Go-task problem is not reported without Go tasks")
	})
	t.Run("Both", func(t *testing.T) {
		p := chain(1)
		pipeline.Add(p, noCmd, struct{}{})
		_, err := pipeline.Compile(t.Context(), p, argo.New(nil, &argo.Options{Image: testImage}), nil)
		require.Error(t, err)
		assert.Contains(t, err.Error(), "Options.Command is not set")
		assert.Len(t, pipeline.FieldErrors(err), 1)
	})
	t.Run("SetByBeforeEmit", func(t *testing.T) {
		p := chain(1)
		pipeline.Add(p, noCmd, struct{}{})
		art, err := pipeline.Compile(t.Context(), p, argo.New(nil, &argo.Options{Image: testImage}), &pipeline.CompileOptions{
			BeforeEmit: func(as func(any) bool) error {
				var wf *wfv1.Workflow
				if !as(&wf) {
					return errors.New("no workflow")
				}
				for i := range wf.Spec.Templates {
					if c := wf.Spec.Templates[i].Container; c != nil {
						c.Command = []string{"/entrypoint"}
					}
				}
				return nil
			},
		})
		require.NoError(t, err, "the templates have a command")
		checkDocument(t, art.Documents()[0])
	})
	t.Run("Exit", func(t *testing.T) {
		p := pipeline.New("exit", nil)
		pipeline.Add(p, inc, one{})
		pipeline.OnExit(p, noCmd.WithName("notify"), struct{}{})
		_, err := pipeline.Compile(t.Context(), p, argo.New(nil, testOptions()), nil)
		require.Error(t, err)
		require.Len(t, pipeline.FieldErrors(err), 1)
		assert.Equal(t, "pipeline.tasks[notify].command", pipeline.FieldErrors(err)[0].Field)
	})
}

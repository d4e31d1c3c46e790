package argo_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	"github.com/argoproj/argo-workflows/v3/util/expr/env"
	"github.com/argoproj/argo-workflows/v3/workflow/common"
	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/vm"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"

	"github.com/sluice-ml/sluice/backends"
	"github.com/sluice-ml/sluice/backends/argo"
	"github.com/sluice-ml/sluice/backends/backendtest"
	"github.com/sluice-ml/sluice/backends/kubepod"
	"github.com/sluice-ml/sluice/backends/local"
	"github.com/sluice-ml/sluice/internal/golden"
	"github.com/sluice-ml/sluice/internal/scribble"
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
	// share the one template: only the last two pass their step name.
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
	// list's template differs only in the larger in-band limit of a step
	// whose output a fan-out iterates over (MaxInlineItems).
	assert.Equal(t, []string{"main", "t1", "t2", "each-fan"}, names)
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
		// A WorkflowTemplate is not split into shards.
		_, err := pipeline.Compile(t.Context(), chain(200), argo.New(nil, &argo.Options{Pod: kubepod.Options{Image: testImage, Command: testCommand}, MaxSize: 10 << 10, Kind: argo.KindWorkflowTemplate}), nil)
		require.ErrorIs(t, err, argo.ErrTooLarge)
		assert.Contains(t, err.Error(), "200 tasks")
		assert.Contains(t, err.Error(), "only a Workflow is split into shards, and this is a WorkflowTemplate")
		t.Log(err)
		assert.Regexp(t, `the largest parts are (step|template) \S+ \(\d+ bytes\), `, err.Error())
		assert.Regexp(t, `a DAG task takes \d+ bytes on average`, err.Error())
		assert.Contains(t, err.Error(), "raise Options.MaxSize")
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

// retryStrategies compiles p and returns the retry strategy of each DAG
// task's template, by task name.
func retryStrategies(t *testing.T, p *pipeline.Pipeline) map[string]*wfv1.RetryStrategy {
	t.Helper()
	wf := compileWF(t, p, testOptions())
	rs := map[string]*wfv1.RetryStrategy{}
	for _, dt := range wf.Spec.Templates[0].DAG.Tasks {
		for _, tm := range wf.Spec.Templates {
			if tm.Name == dt.Template {
				rs[dt.Name] = tm.RetryStrategy
			}
		}
	}
	return rs
}

// lastRetry is what Argo v3.7 knows of a step's last attempt when it
// evaluates the retry expression.
type lastRetry struct {
	status  wfv1.NodePhase
	exit    string
	message string
}

// retries evaluates r as Argo does after retries retries: the limit, then
// the expression over retries and lastRetry.*.
func retries(t *testing.T, r *wfv1.RetryStrategy, retries int, last lastRetry) bool {
	t.Helper()
	if retries+1 > r.Limit.IntValue() {
		return false
	}
	scope := env.GetFuncMap(map[string]any{"retries": fmt.Sprint(retries), "lastRetry.status": string(last.status),
		"lastRetry.exitCode": last.exit, "lastRetry.message": last.message, "lastRetry.duration": "1"})
	prog, ok := compiledExprs.Load(r.Expression)
	if !ok {
		p, err := expr.Compile(r.Expression, expr.Env(scope))
		require.NoError(t, err)
		prog, _ = compiledExprs.LoadOrStore(r.Expression, p)
	}
	v, err := expr.Run(prog.(*vm.Program), scope)
	require.NoError(t, err)
	return v.(bool)
}

// compiledExprs caches compiled retry expressions by their text.
var compiledExprs sync.Map

// Messages Argo v3.7 gives Error nodes that no retry can mend.
var permanentMessages = []string{
	`failed to look-up entrypoint/cmd for image "registry.example/x:1", you must either explicitly specify the command, or list the image's command in the index: https://argo-workflows.readthedocs.io/en/latest/workflow-executors/#emissary-emissary: GET https://registry.example/v2/x/manifests/1: UNAUTHORIZED`,
	`Pod failed before main container starts due to ErrImagePull: rpc error: code = NotFound desc = failed to pull and unpack image "registry.example/x:1": not found`,
	`Pod failed before main container starts due to ImagePullBackOff: Back-off pulling image "registry.example/x:1"`,
	`Pod failed before main container starts due to InvalidImageName: Failed to apply default image tag "Registry/X": couldn't parse image name`,
	`pods "retries-x7k2p-inc-1234" is forbidden: violates PodSecurity "restricted:latest": allowPrivilegeEscalation != false (container "init" must set securityContext.allowPrivilegeEscalation=false)`,
	`Pod "retries-x7k2p-inc-1234" is invalid: spec.containers[0].resources.requests: Invalid value: "2": must be less than or equal to cpu limit of 1`,
}

// The retry expression, evaluated as Argo does, retries infrastructure
// failures up to the limit and application failures while fewer than App
// retries were made, and never a permanent error.
func TestRetries(t *testing.T) {
	p := pipeline.New("retries", nil)
	pipeline.Add(p, inc.WithName("both").WithRetry(task.Retry{App: 1, Infra: 2, Backoff: task.Backoff{Initial: time.Second, Max: time.Minute}}), one{})
	pipeline.Add(p, inc.WithName("app").WithRetry(task.Retry{App: 2}), one{})
	pipeline.Add(p, inc.WithName("infra").WithRetry(task.Retry{Infra: 3}), one{})
	pipeline.Add(p, task.Container[struct{}, struct{}]("ctr", "registry.example/ctr:1").WithCommand("/ctr").
		WithRetry(task.Retry{App: 1, Infra: 2}), struct{}{})
	rs := retryStrategies(t, p)
	require.NotNil(t, rs["both"].Backoff)
	assert.Equal(t, wfv1.Backoff{Duration: "1s", Factor: rs["both"].Backoff.Factor, Cap: "1m0s"}, *rs["both"].Backoff)
	assert.Equal(t, 2, rs["both"].Backoff.Factor.IntValue())

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
		// A container task's exit status 2 is its own, not a wrong
		// invocation of the task mode.
		{"ctr", 0, wfv1.NodeFailed, "2", true},
		{"ctr", 0, wfv1.NodeError, "", true},
	} {
		assert.Equal(t, tc.want, retries(t, rs[tc.step], tc.retries, lastRetry{tc.status, tc.exit, ""}), "%+v", tc)
	}
	// A permanent error is not retried, whatever the budgets left.
	for _, step := range []string{"both", "infra", "ctr"} {
		for _, msg := range permanentMessages {
			assert.False(t, retries(t, rs[step], 0, lastRetry{wfv1.NodeError, "", msg}), "%s: %s", step, msg)
		}
		assert.True(t, retries(t, rs[step], 0, lastRetry{wfv1.NodeError, "", "pod deleted"}), "%s: a preemption", step)
	}

	_, err := pipeline.Compile(t.Context(), func() *pipeline.Pipeline {
		p := pipeline.New("frac", nil)
		pipeline.Add(p, inc.WithRetry(task.Retry{App: 1, Backoff: task.Backoff{Initial: time.Second, Factor: 1.5}}), one{})
		return p
	}(), argo.New(nil, testOptions()), nil)
	require.ErrorIs(t, err, errors.ErrUnsupported)
}

// The compiled retry expression agrees with the documented rules (see
// "# Retries" in the package doc) on every combination of budgets, task
// kind, retry count and last attempt: status, exit code and message,
// permanent errors and messages that only look like them included.
func TestRetryExpressionFollowsTheRules(t *testing.T) {
	type policy struct {
		app, infra int
		container  bool
	}
	p := pipeline.New("rules", nil)
	var policies []policy
	for app := range 3 {
		for infra := range 3 {
			if app+infra == 0 {
				continue
			}
			for _, ctr := range []bool{false, true} {
				pol := policy{app, infra, ctr}
				policies = append(policies, pol)
				r := task.Retry{App: app, Infra: infra}
				name := fmt.Sprintf("a%d-i%d-c%t", app, infra, ctr)
				if ctr {
					pipeline.Add(p, task.Container[struct{}, struct{}](name, "registry.example/ctr:1").WithCommand("/ctr").WithRetry(r), struct{}{})
				} else {
					pipeline.Add(p, inc.WithName(name).WithRetry(r), one{})
				}
			}
		}
	}
	rs := retryStrategies(t, p)

	// rule is the package doc's "# Retries", written out.
	rule := func(pol policy, n int, last lastRetry) bool {
		if n+1 > pol.app+pol.infra {
			return false // the limit
		}
		permanent := last.status == wfv1.NodeError && slices.ContainsFunc([]string{
			"failed to look-up entrypoint/cmd", "due to ErrImagePull", "due to ImagePullBackOff", "due to InvalidImageName",
			"due to ErrImageNeverPull", "violates PodSecurity", " is invalid: ", " is forbidden: ",
		}, func(s string) bool { return strings.Contains(last.message, s) })
		if permanent || (!pol.container && last.exit == "2") {
			return false
		}
		// Stopped by SIGTERM (143) is infra, unless the kubelet stopped
		// the pod for its deadline, which Argo's message says.
		stopped := last.exit == "143" && !strings.Contains(last.message, "longer than the specified deadline")
		infra := last.status == wfv1.NodeError || strings.Contains(last.message, "Evicted") || last.exit == "3" || stopped
		require.Equal(t, infra, argo.InfraFailure(last.status, last.exit, last.message), "Watch's reason agrees: %+v", last)
		if infra {
			return pol.infra > 0
		}
		return n < pol.app
	}
	messages := append([]string{"", "pod deleted", "The node was low on resource: memory. Evicted", "Error (exit code 1)",
		// Text a task could print: not Argo's, on a Failed node.
		"Error (exit code 1): configmaps is forbidden: User cannot get resource",
		// A pod stopped by SIGTERM: deleted or evicted (the task mode's
		// termination message), or out of time (the kubelet's message).
		"main: Error (exit code 143): stopped (terminated signal received): context canceled",
		"Pod was active on the node longer than the specified deadline",
	}, permanentMessages...)
	checked := 0
	for _, pol := range policies {
		r := rs[fmt.Sprintf("a%d-i%d-c%t", pol.app, pol.infra, pol.container)]
		require.NotNil(t, r)
		for n := range pol.app + pol.infra + 2 {
			for _, status := range []wfv1.NodePhase{wfv1.NodeFailed, wfv1.NodeError} {
				for _, exit := range []string{"", "-1", "0", "1", "2", "3", "137", "143"} {
					for _, msg := range messages {
						// Argo writes permanentMessages on Error nodes
						// only; on a Failed node such text is a task's
						// own, and an application failure.
						last := lastRetry{status, exit, msg}
						require.Equal(t, rule(pol, n, last), retries(t, r, n, last), "policy %+v, retries %d, last %+v", pol, n, last)
						checked++
					}
				}
			}
		}
	}
	assert.Greater(t, checked, 5000)
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
		{"WorkflowTemplate", &argo.Options{Pod: kubepod.Options{Image: testImage, Command: testCommand, Namespace: "ml"}, Kind: argo.KindWorkflowTemplate}},
		{"CronWorkflow", &argo.Options{Pod: kubepod.Options{Image: testImage, Command: testCommand}, Kind: argo.KindCronWorkflow, Cron: &argo.CronOptions{
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
	_, err := pipeline.Compile(t.Context(), chain(1), argo.New(nil, &argo.Options{Pod: kubepod.Options{Image: testImage, Command: testCommand}, Kind: argo.KindCronWorkflow}), nil)
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
		}, []string{`pipeline.tasks[1a].name: Duplicate "1a"`, `"s-1a"`, "rename one of them"}},
		{"ContainerFieldName", func(p *pipeline.Pipeline) {
			pipeline.Add(p, task.Container[dotted, struct{}]("ctr", "busybox").WithCommand("echo").WithArgs("{{.X}}"), dotted{X: "x"})
		}, []string{`step "ctr"`, `"a.b"`, "give it a JSON name"}},
		{"FractionalBackoff", func(p *pipeline.Pipeline) {
			pipeline.Add(p, inc.WithRetry(task.Retry{App: 1, Backoff: task.Backoff{Initial: time.Second, Factor: 1.5}}), one{})
		}, []string{`pipeline.tasks[inc].retry.backoff.factor: Invalid 1.5`, "whole factors"}},
		{"PendingTimeout", func(p *pipeline.Pipeline) {
			pipeline.Add(p, inc.WithRetry(task.Retry{Infra: 1, PendingTimeout: time.Minute}), one{})
		}, []string{`pipeline.tasks[inc].retry.pendingTimeout: Invalid "1m0s"`, "no timeout for a pod that stays Pending"}},
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
	psc := kubepod.RestrictedPodSecurityContext()
	psc.RunAsUser = ptr.To(int64(65532))
	sc := kubepod.RestrictedSecurityContext()
	sc.ReadOnlyRootFilesystem = ptr.To(true)
	opts := &argo.Options{
		Pod: kubepod.Options{
			Image: testImage, Namespace: "ml", ServiceAccountName: "pipeline-runner",
			ImagePullPolicy:    corev1.PullAlways,
			Labels:             map[string]string{"team": "ml"},
			Annotations:        map[string]string{"owner": "ml-platform"},
			PodSecurityContext: psc, SecurityContext: sc,
			Command: []string{"/app/pipeline"},
		},
		PodGC: &wfv1.PodGC{Strategy: wfv1.PodGCOnPodSuccess},
		TTL:   &wfv1.TTLStrategy{SecondsAfterSuccess: ptr.To(int32(3600)), SecondsAfterFailure: ptr.To(int32(86400))},
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
		_, err := pipeline.Compile(t.Context(), chain(2), argo.New(nil, &argo.Options{Pod: kubepod.Options{Image: testImage}}), nil)
		require.Error(t, err)
		assert.Contains(t, err.Error(), "Options.Pod.Command is not set")
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
		assert.NotContains(t, err.Error(), "Options.Pod.Command", "the Go-task problem is not reported without Go tasks")
	})
	t.Run("Both", func(t *testing.T) {
		p := chain(1)
		pipeline.Add(p, noCmd, struct{}{})
		_, err := pipeline.Compile(t.Context(), p, argo.New(nil, &argo.Options{Pod: kubepod.Options{Image: testImage}}), nil)
		require.Error(t, err)
		assert.Contains(t, err.Error(), "Options.Pod.Command is not set")
		assert.Len(t, pipeline.FieldErrors(err), 1)
	})
	t.Run("SetByBeforeEmit", func(t *testing.T) {
		p := chain(1)
		pipeline.Add(p, noCmd, struct{}{})
		art, err := pipeline.Compile(t.Context(), p, argo.New(nil, &argo.Options{Pod: kubepod.Options{Image: testImage}}), &pipeline.CompileOptions{
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

// A BeforeEmit hook may edit the Workflow as it likes: nothing in it is
// shared with the Plan (node selectors, tolerations, resource lists…).
// Compile may then fail on what the hook wrote; that is not the question.
func TestBeforeEmitLeavesThePlanAlone(t *testing.T) {
	for _, c := range backendtest.Cases() {
		t.Run(c.Name, func(t *testing.T) {
			_, _ = pipeline.Compile(t.Context(), c.Build(), argo.New(nil, testOptions()),
				&pipeline.CompileOptions{BeforeEmit: scribble.Hook(t, new(*wfv1.Workflow))})
		})
	}
}

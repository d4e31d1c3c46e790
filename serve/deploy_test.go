package serve_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/utils/ptr"

	"github.com/sluice-ml/sluice/artifact"
	"github.com/sluice-ml/sluice/backends"
	"github.com/sluice-ml/sluice/backends/local"
	"github.com/sluice-ml/sluice/pipeline"
	"github.com/sluice-ml/sluice/serve"
	"github.com/sluice-ml/sluice/task"
)

// registerLinear registers the linear predictor as "linear-deploy" for
// t's run only.
func registerLinear(t *testing.T) {
	p := linear
	p.Name = "linear-deploy"
	serve.Register(p)
	t.Cleanup(func() { serve.Unregister(p.Name) })
}

type trainIn struct {
	W0  pipeline.Ref[float64] `json:"w0"`
	AUC pipeline.Ref[float64] `json:"auc"`
}

// deployPipeline trains a linear model y = w0·x0 - x1 + 0.5 (its
// weights are a Go model artifact), says its "auc" is the parameter auc,
// and deploys it to the local target behind a gate on auc.
func deployPipeline(t *testing.T, artifacts string) (*pipeline.Pipeline, pipeline.Step[serve.Deployed]) {
	return deployPipelineWith(t, artifacts, nil)
}

// deployPipelineWith is deployPipeline recording in reg (nil: the store's
// registry).
func deployPipelineWith(t *testing.T, artifacts string, reg serve.Registry) (*pipeline.Pipeline, pipeline.Step[serve.Deployed]) {
	p := pipeline.New("churn", &pipeline.Options{Artifacts: artifacts})
	w0 := pipeline.NewParam(p, "w0", 2.0).Ref()
	auc := pipeline.NewParam(p, "auc", 0.8).Ref()
	train := pipeline.Add(p, task.New("train", func(ctx context.Context, in trainIn) (serve.Candidate, error) {
		m, err := artifact.WriteJSON[artifact.Model](ctx, "model", map[string]any{"w": []float64{in.W0.Get(), -1}, "b": 0.5})
		return serve.Candidate{Model: m, Metrics: map[string]float64{"auc": in.AUC.Get()}, Note: "test"}, err
	}), trainIn{W0: w0, AUC: auc})
	target := serve.Target{Name: "churn", Level: serve.Staging, Platform: serve.Kubernetes,
		Runtime: serve.Runtime{Format: serve.GoModel, Image: "registry.example/churn:v1"}}
	d := serve.Deploy(p, target, train.Output(), &serve.DeployOptions{
		Predictor: "linear-deploy",
		Gate:      serve.Gate{Metric: "auc", Better: serve.Higher, Threshold: ptr.To(0.7)},
		Registry:  reg,
	})
	return p, d
}

func runDeploy(t *testing.T, root string, params map[string]string) serve.Deployed {
	t.Helper()
	return runDeployIn(t, root, nil, params)
}

func runDeployWith(t *testing.T, root string, reg serve.Registry, w0, auc string) serve.Deployed {
	t.Helper()
	return runDeployIn(t, root, reg, map[string]string{"w0": w0, "auc": auc})
}

func runDeployIn(t *testing.T, root string, reg serve.Registry, params map[string]string) serve.Deployed {
	t.Helper()
	p, d := deployPipelineWith(t, root, reg)
	b := local.New(nil)
	st, err := pipeline.Run(t.Context(), p, b, &pipeline.RunOptions{Params: params})
	require.NoError(t, err)
	for _, s := range st.Steps {
		if s.Name == d.Name() {
			var out serve.Deployed
			require.NoError(t, json.Unmarshal(s.Output, &out))
			return out
		}
	}
	t.Fatalf("no step %s in %+v", d.Name(), st)
	return serve.Deployed{}
}

func predict(t *testing.T, url string, x []float64) float64 {
	t.Helper()
	body, err := json.Marshal(map[string]any{"instances": []any{map[string]any{"x": x}}})
	require.NoError(t, err)
	resp, err := http.Post(url+"/v1/models/linear-deploy:predict", "application/json", bytes.NewReader(body))
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var out struct {
		Predictions []struct{ Y float64 } `json:"predictions"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&out))
	require.Len(t, out.Predictions, 1)
	return out.Predictions[0].Y
}

// On the local backend, Deploy registers the model, lets the gate
// decide, and serves the winner in process: a worse model is kept out,
// a better one replaces the live one, the same version again changes
// nothing.
func TestDeployLocalTarget(t *testing.T) {
	registerLinear(t)
	defer serve.StopLocal()
	root := "file://" + t.TempDir()

	first := runDeploy(t, root, map[string]string{"w0": "2", "auc": "0.8"})
	require.True(t, first.Decision.Deploy, "%+v", first.Decision)
	assert.Equal(t, "first deploy: auc 0.8 reaches the threshold 0.7", first.Decision.Reason)
	assert.True(t, first.Local)
	assert.Equal(t, 1, first.Version.Version)
	require.NotNil(t, first.Release)
	assert.Equal(t, 1, first.Release.Seq)
	assert.True(t, strings.HasPrefix(first.Endpoint, "http://127.0.0.1:"), first.Endpoint)
	assert.Equal(t, 2*1-1*3+0.5, predict(t, first.Endpoint, []float64{1, 3}))
	url, ok := serve.LocalEndpoint("churn", serve.Staging)
	require.True(t, ok)
	assert.Equal(t, first.Endpoint, url)

	worse := runDeploy(t, root, map[string]string{"w0": "5", "auc": "0.75"})
	assert.False(t, worse.Decision.Deploy)
	assert.Equal(t, "auc 0.75 does not beat churn v1's 0.8 (higher is better)", worse.Decision.Reason)
	assert.Equal(t, 2, worse.Version.Version, "registered all the same")
	assert.Nil(t, worse.Release)
	assert.Equal(t, 2*1-1*3+0.5, predict(t, first.Endpoint, []float64{1, 3}), "v1 still served")

	better := runDeploy(t, root, map[string]string{"w0": "4", "auc": "0.9"})
	require.True(t, better.Decision.Deploy, "%+v", better.Decision)
	assert.Equal(t, 3, better.Version.Version)
	assert.Equal(t, 2, better.Release.Seq)
	assert.Equal(t, 4*1-1*3+0.5, predict(t, better.Endpoint, []float64{1, 3}))

	s, err := artifact.Open(t.Context(), root)
	require.NoError(t, err)
	defer s.Close()
	reg := serve.NewRegistry(s)
	rels, err := reg.Releases(t.Context(), "churn", serve.Staging)
	require.NoError(t, err)
	require.Len(t, rels, 2)
	assert.Equal(t, []int{1, 3}, []int{rels[0].Version, rels[1].Version})
}

func TestDeployValidation(t *testing.T) {
	p := pipeline.New("churn", nil)
	c := pipeline.Add(p, task.New("eval", func(context.Context, struct{}) (serve.Candidate, error) {
		return serve.Candidate{}, nil
	}), struct{}{})
	serve.Deploy(p, serve.Target{Name: "churn", Level: "qa", Canary: 120}, c.Output(), &serve.DeployOptions{
		Gate: serve.Gate{Metric: "auc", Better: "up"},
	})
	err := p.Validate()
	require.Error(t, err)
	for _, want := range []string{
		`pipeline.tasks[deploy-churn-qa].target.level`,
		`pipeline.tasks[deploy-churn-qa].target.canary`,
		`pipeline.tasks[deploy-churn-qa].gate.better: NotSupported "up"`,
	} {
		assert.Contains(t, err.Error(), want)
	}
}

// Promote rolls the version live at a lower level out to a higher one:
// the same registered version, not a new one.
func TestPromote(t *testing.T) {
	registerLinear(t)
	defer serve.StopLocal()
	root := "file://" + t.TempDir()
	first := runDeploy(t, root, map[string]string{"w0": "2", "auc": "0.8"})
	require.True(t, first.Decision.Deploy)

	p := pipeline.New("churn", &pipeline.Options{Artifacts: root})
	prod := serve.Target{Name: "churn", Level: serve.Prod, Platform: serve.Kubernetes,
		Runtime: serve.Runtime{Format: serve.GoModel, Image: "registry.example/churn:v1"}}
	step := serve.Promote(p, prod, serve.Staging, &serve.DeployOptions{Predictor: "linear-deploy"})
	st, err := pipeline.Run(t.Context(), p, local.New(nil), nil)
	require.NoError(t, err)
	var out serve.Deployed
	for _, s := range st.Steps {
		if s.Name == step.Name() {
			require.NoError(t, json.Unmarshal(s.Output, &out))
		}
	}
	assert.Equal(t, "promote-churn-staging-prod", step.Name())
	require.True(t, out.Decision.Deploy, "%+v", out.Decision)
	assert.Equal(t, first.Version, out.Version, "the same version")
	require.NotNil(t, out.Release)
	assert.Equal(t, serve.Prod, out.Release.Level)
	assert.Equal(t, "promoted from staging (release 1)", out.Release.Note)
	assert.Equal(t, 2*1-1*3+0.5, predict(t, out.Endpoint, []float64{1, 3}))

	bad := pipeline.New("churn", nil)
	serve.Promote(bad, prod, serve.Prod, nil)
	assert.ErrorContains(t, bad.Validate(), "pipeline.tasks[promote-churn-prod-prod].from: Invalid \"prod\": promotes to the same level")
}

// On the local backend, a model in a KServe runtime's format gets a
// stand-in: it loads the model's bytes and reports ready, and answers a
// prediction 501 with the runtime it needs; a model that is not there
// fails the step.
func TestDeployLocalStandIn(t *testing.T) {
	defer serve.StopLocal()
	root := "file://" + t.TempDir()
	build := func(write bool) (*pipeline.Pipeline, pipeline.Step[serve.Deployed]) {
		p := pipeline.New("iris", &pipeline.Options{Artifacts: root})
		train := pipeline.Add(p, task.New("train", func(ctx context.Context, _ struct{}) (serve.Candidate, error) {
			m, err := artifact.WriteJSON[artifact.Model](ctx, "model", map[string]any{"pickled": "not really", "gone": !write})
			if !write {
				m.URI += ".gone" // a model that is not there
			}
			return serve.Candidate{Model: m, Metrics: map[string]float64{"accuracy": 0.9}}, err
		}), struct{}{})
		target := serve.Target{Name: "iris", Level: serve.Dev, Runtime: serve.Runtime{Format: serve.SKLearn}}
		return p, serve.Deploy(p, target, train.Output(), nil)
	}
	p, d := build(true)
	st, err := pipeline.Run(t.Context(), p, local.New(nil), nil)
	require.NoError(t, err)
	var out serve.Deployed
	require.NoError(t, json.Unmarshal(st.Step(d.Name()).Output, &out))
	require.True(t, out.Local)
	code, body := do(t, "GET", out.Endpoint+"/v2/health/ready", "")
	assert.Equal(t, 200, code, body)
	code, body = do(t, "POST", out.Endpoint+"/v1/models/iris:predict", `{"instances": [{"sepal_length": 5.1}]}`)
	assert.Equal(t, 501, code)
	assert.Contains(t, body, "a sklearn model is served by its KServe runtime in a cluster")

	p, d = build(false)
	st, err = pipeline.Run(t.Context(), p, local.New(nil), nil)
	require.Error(t, err)
	assert.Contains(t, st.Step(d.Name()).Message, "no object iris/")
}

// flakyRegistry is a registry whose Register or Release fails, as one
// that cannot be reached does.
type flakyRegistry struct {
	serve.Registry
	failRegister, failRelease bool
}

var errUnreachable = errors.New("dial tcp 127.0.0.1:9: connect: connection refused")

func (r *flakyRegistry) Register(ctx context.Context, v serve.ModelVersion) (serve.ModelVersion, error) {
	if r.failRegister {
		return v, errUnreachable
	}
	return r.Registry.Register(ctx, v)
}

func (r *flakyRegistry) Release(ctx context.Context, rel serve.Release) (serve.Release, error) {
	if r.failRelease {
		return rel, errUnreachable
	}
	return r.Registry.Release(ctx, rel)
}

// A registry that cannot be reached fails the deploy step with its
// error, and leaves nothing half-deployed: a model it could not register
// is not served; one served whose release it could not record is taken
// back, and the live version served again (or nothing, on a first
// deploy).
func TestDeployRegistryUnreachable(t *testing.T) {
	registerLinear(t)
	defer serve.StopLocal()
	root := "file://" + t.TempDir()
	s, err := artifact.Open(t.Context(), root)
	require.NoError(t, err)
	defer s.Close()
	reg := &flakyRegistry{Registry: serve.NewRegistry(s)}
	run := func(w0, auc string) (*backends.RunStatus, string, error) {
		t.Helper()
		p, d := deployPipelineWith(t, root, reg)
		st, err := pipeline.Run(t.Context(), p, local.New(nil), &pipeline.RunOptions{Params: map[string]string{"w0": w0, "auc": auc}})
		return st, d.Name(), err
	}

	reg.failRegister = true
	st, step, err := run("2", "0.8")
	require.Error(t, err)
	assert.Contains(t, st.Step(step).Message, "connection refused")
	_, ok := serve.LocalEndpoint("churn", serve.Staging)
	assert.False(t, ok, "a model the registry does not know is not served")

	reg.failRegister, reg.failRelease = false, true
	st, step, err = run("2", "0.8")
	require.Error(t, err)
	assert.Contains(t, st.Step(step).Message, "recording the release: dial tcp")
	assert.Contains(t, st.Step(step).Message, "rolled back to the previous version")
	_, ok = serve.LocalEndpoint("churn", serve.Staging)
	assert.False(t, ok, "a first deploy the registry does not record is taken back")

	reg.failRelease = false
	first := runDeployWith(t, root, reg, "2", "0.8")
	require.True(t, first.Decision.Deploy, "%+v", first.Decision)
	assert.Equal(t, 2*1-1*3+0.5, predict(t, first.Endpoint, []float64{1, 3}))

	reg.failRelease = true
	st, step, err = run("4", "0.9")
	require.Error(t, err)
	assert.Contains(t, st.Step(step).Message, "rolled back to the previous version")
	url, ok := serve.LocalEndpoint("churn", serve.Staging)
	require.True(t, ok)
	assert.Equal(t, 2*1-1*3+0.5, predict(t, url, []float64{1, 3}), "the live version is served again")
	rels, err := serve.NewRegistry(s).Releases(t.Context(), "churn", serve.Staging)
	require.NoError(t, err)
	assert.Len(t, rels, 1, "one release: the one recorded")
}

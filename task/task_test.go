package task_test

import (
	"context"
	"errors"
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sluice-ml/sluice/pipeline"
	"github.com/sluice-ml/sluice/resources"
	"github.com/sluice-ml/sluice/task"
)

type In struct {
	LR    float64 `json:"lr"`
	Data  string
	Debug bool
}
type Out struct {
	Accuracy float64
	Model    string `json:"model_uri"`
}

func fn(_ context.Context, in In) (Out, error) {
	if in.Data == "" {
		return Out{}, errors.New("no data")
	}
	return Out{Accuracy: in.LR * 10, Model: "s3://m/" + in.Data}, nil
}

func TestWithReturnsIndependentCopies(t *testing.T) {
	base := task.New("train", fn).WithCommand("a", "b").WithEnv("K", "V")
	cmd := []string{"x"}
	changed := base.WithCommand(cmd...).WithEnv("K2", "V2").
		WithResources(resources.Profile{CPU: "2", NodeSelector: map[string]string{"a": "b"}}).
		WithRetry(task.Retry{App: 2}).WithTimeout(time.Minute).WithName("train2").WithImage("img")
	cmd[0] = "mutated"

	assert.Equal(t, []string{"a", "b"}, base.Spec().Command)
	assert.Len(t, base.Spec().Env, 1)
	assert.Nil(t, base.Spec().Retry)
	assert.Equal(t, "train", base.Name())
	assert.Empty(t, base.Spec().Image)
	s := changed.Spec()
	assert.Equal(t, []string{"x"}, s.Command)
	assert.Len(t, s.Env, 2)
	assert.Equal(t, 2, s.Retry.App)
	assert.Equal(t, time.Minute, s.Timeout)
	assert.Equal(t, "train2", s.Name)

	// Spec returns a deep copy: changing it does not change the task.
	s.Resources.NodeSelector["a"] = "zzz"
	s.Retry.App = 9
	assert.Equal(t, "b", changed.Spec().Resources.NodeSelector["a"])
	assert.Equal(t, 2, changed.Spec().Retry.App)
}

func TestNewPanicsOnNilFunc(t *testing.T) {
	assert.Panics(t, func() { task.New[In, Out]("x", nil) })
}

func TestFuncInvokerRoundTripsJSON(t *testing.T) {
	inv := task.New("train", fn).Invoker()
	out, err := inv.Invoke(t.Context(), []byte(`{"lr":0.05,"Data":"d1"}`))
	require.NoError(t, err)
	assert.JSONEq(t, `{"Accuracy":0.5,"model_uri":"s3://m/d1"}`, string(out))

	_, err = inv.Invoke(t.Context(), []byte(`{"lr":"fast"}`))
	assert.ErrorContains(t, err, "decode input")
	_, err = inv.Invoke(t.Context(), nil)
	assert.EqualError(t, err, "no data")
	assert.Nil(t, task.Container[In, Out]("c", "img").Invoker())
}

func TestContainerDefaultsOutputsFromFields(t *testing.T) {
	c := task.Container[In, Out]("eval", "img:1").WithOutput("Model", "/out/model")
	assert.Equal(t, []task.Output{
		{Field: "Accuracy", Path: task.OutputDir + "/Accuracy"},
		{Field: "model_uri", Path: "/out/model"},
	}, c.Spec().Outputs)
	assert.Equal(t, task.KindContainer, c.Spec().Kind)
}

func TestPlaceholders(t *testing.T) {
	assert.Equal(t, []string{"LR", "Data"}, task.Placeholders("{{.LR}}-{{ .Data }}"))
	assert.Nil(t, task.Placeholders("--lr=0.1"))
}

func TestBackoffDelay(t *testing.T) {
	b := task.Backoff{Initial: time.Second, Factor: 3, Max: 20 * time.Second}
	var got []time.Duration
	for n := 1; n <= 5; n++ {
		got = append(got, b.Delay(n))
	}
	assert.Equal(t, []time.Duration{time.Second, 3 * time.Second, 9 * time.Second, 20 * time.Second, 20 * time.Second}, got)
	assert.Equal(t, 4*time.Second, task.Backoff{Initial: time.Second}.Delay(3), "factor defaults to 2")
	assert.Zero(t, task.Backoff{}.Delay(4))
	assert.Equal(t, 6, task.Retry{App: 2, Infra: 3}.MaxAttempts())
}

type key struct {
	Field string
	Type  pipeline.ErrorType
}

func keys(err error) []key {
	var out []key
	for _, e := range pipeline.FieldErrors(err) {
		out = append(out, key{e.Field, e.Type})
	}
	return out
}

func TestSpecValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		spec task.Spec
		want []key
	}{
		{"valid go", task.New("t", fn).WithRetry(task.Retry{App: 1, Infra: 2, OnDemandFallback: true, PendingTimeout: time.Minute}).Spec(), nil},
		{"valid container", task.Container[In, Out]("c", "img").WithArgs("--lr={{.LR}}", "{{.lr}}").WithEnv("D", "{{.Data}}").Spec(), nil},
		{"no name", task.New("", fn).Spec(), []key{{"name", pipeline.ErrorTypeRequired}}},
		{"no image", task.Container[In, Out]("c", "").Spec(), []key{{"image", pipeline.ErrorTypeRequired}}},
		{"unknown placeholder", task.Container[In, Out]("c", "i").WithArgs("ok", "{{.Nope}}").Spec(), []key{{"args[1]", pipeline.ErrorTypeNotFound}}},
		{"template syntax", task.Container[In, Out]("c", "i").WithCommand("{{if .LR}}x{{end}}").Spec(), []key{{"command[0]", pipeline.ErrorTypeInvalid}}},
		{"env", task.Container[In, Out]("c", "i").WithEnv("", "{{.X}}").Spec(), []key{{"env[0].name", pipeline.ErrorTypeRequired}, {"env[0].value", pipeline.ErrorTypeNotFound}}},
		{"outputs", task.Container[In, Out]("c", "i").WithOutput("Loss", "rel/path").Spec(), []key{{"outputs[2].field", pipeline.ErrorTypeNotFound}, {"outputs[2].path", pipeline.ErrorTypeInvalid}}},
		{"retry", task.New("t", fn).WithRetry(task.Retry{App: -1, Infra: -2, Backoff: task.Backoff{Initial: -time.Second, Factor: 0.5, Max: -1}}).Spec(), []key{
			{"retry.app", pipeline.ErrorTypeInvalid}, {"retry.infra", pipeline.ErrorTypeInvalid}, {"retry.backoff.initial", pipeline.ErrorTypeInvalid},
			{"retry.backoff.max", pipeline.ErrorTypeInvalid}, {"retry.backoff.factor", pipeline.ErrorTypeInvalid},
		}},
		{"factor NaN", task.New("t", fn).WithRetry(task.Retry{Backoff: task.Backoff{Factor: math.NaN()}}).Spec(), []key{{"retry.backoff.factor", pipeline.ErrorTypeInvalid}}},
		{"factor Inf", task.New("t", fn).WithRetry(task.Retry{Backoff: task.Backoff{Factor: math.Inf(1)}}).Spec(), []key{{"retry.backoff.factor", pipeline.ErrorTypeInvalid}}},
		{"max below initial", task.New("t", fn).WithRetry(task.Retry{Backoff: task.Backoff{Initial: time.Minute, Max: time.Second}}).Spec(), []key{{"retry.backoff.max", pipeline.ErrorTypeInvalid}}},
		{"fallback without infra", task.New("t", fn).WithRetry(task.Retry{OnDemandFallback: true}).Spec(), []key{{"retry.onDemandFallback", pipeline.ErrorTypeInvalid}}},
		{"negative pending timeout", task.New("t", fn).WithRetry(task.Retry{Infra: 1, PendingTimeout: -time.Second}).Spec(), []key{{"retry.pendingTimeout", pipeline.ErrorTypeInvalid}}},
		{"timeout", task.New("t", fn).WithTimeout(-time.Second).Spec(), []key{{"timeout", pipeline.ErrorTypeInvalid}}},
		{"cache", task.New("t", fn).WithCache(task.Cache{Enabled: true, ExcludeInputs: []string{"Debug", "debug_level"}}).Spec(), []key{{"cache.excludeInputs[1]", pipeline.ErrorTypeNotFound}}},
		{"kind", task.Spec{Name: "x", Kind: "wasm"}, []key{{"kind", pipeline.ErrorTypeNotSupported}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, keys(tc.spec.Validate()))
		})
	}
}

func TestAttemptContext(t *testing.T) {
	_, ok := task.AttemptFrom(t.Context())
	assert.False(t, ok)
	ctx := task.WithAttempt(t.Context(), task.Attempt{Step: "train", Instance: 2, Number: 3})
	a, ok := task.AttemptFrom(ctx)
	require.True(t, ok)
	assert.Equal(t, task.Attempt{Step: "train", Instance: 2, Number: 3}, a)
}

// Container's default outputs are Out's fields under encoding/json's
// rules: tags rename or drop, embedded structs are flattened.
func TestContainerOutputsFollowJSONRules(t *testing.T) {
	type Embedded struct{ E int }
	type S struct {
		Embedded
		A      int `json:"a,omitempty"`
		B      int `json:"-"`
		hidden int
		C      string
	}
	_ = S{}.hidden
	var fields []string
	for _, o := range task.Container[In, S]("c", "i").Spec().Outputs {
		fields = append(fields, o.Field)
	}
	assert.Equal(t, []string{"E", "a", "C"}, fields)
	assert.Empty(t, task.Container[In, int]("c", "i").Spec().Outputs)
}

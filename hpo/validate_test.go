package hpo_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sluice-ml/sluice/hpo"
	"github.com/sluice-ml/sluice/pipeline"
	"github.com/sluice-ml/sluice/task"
)

// HP has one field of each kind the spaces search.
type HP struct {
	LR     float64 `json:"lr"`
	Drop   float32
	Layers int
	Batch  uint8
	Act    string
	Epochs int
}

type hpIn struct{ HP pipeline.Ref[HP] }
type hpOut struct{ Loss float64 }

var hpTrial = task.New("train", func(ctx context.Context, in hpIn) (hpOut, error) {
	return hpOut{Loss: in.HP.Get().LR}, nil
})

func validSpace() hpo.Space[HP] {
	return hpo.Space[HP]{
		"LR":     hpo.LogFloat(1e-4, 1),
		"Drop":   hpo.FloatStep(0, 0.5, 0.1),
		"Layers": hpo.Int(1, 4),
		"Batch":  hpo.LogInt(8, 128),
		"Act":    hpo.Choice("relu", "tanh"),
		"Epochs": hpo.Fixed(10),
	}
}

func bindHP(hp pipeline.Ref[HP]) hpIn { return hpIn{HP: hp} }
func loss(o hpOut) float64            { return o.Loss }

type fieldKey struct {
	Field string
	Type  pipeline.ErrorType
}

func keys(err error) []fieldKey {
	var out []fieldKey
	for _, fe := range pipeline.FieldErrors(err) {
		out = append(out, fieldKey{fe.Field, fe.Type})
	}
	return out
}

func TestValidSearchValidates(t *testing.T) {
	p := pipeline.New("p", nil)
	hpo.Search(p, validSpace(), hpTrial, bindHP, loss, &hpo.Options{MaxTrials: 8, ParallelTrials: 2})
	require.NoError(t, p.Validate())
}

func TestSpaceErrorsHaveFieldPaths(t *testing.T) {
	const at = "pipeline.tasks[search].space."
	with := func(key string, d hpo.Dim) hpo.Space[HP] {
		s := validSpace()
		s[key] = d
		return s
	}
	without := func(key string) hpo.Space[HP] {
		s := validSpace()
		delete(s, key)
		return s
	}
	for _, tc := range []struct {
		name  string
		space hpo.Space[HP]
		want  []fieldKey
	}{
		{"missing field", without("Act"), []fieldKey{{at + "Act", pipeline.ErrorTypeRequired}}},
		{"unknown field", with("Momentum", hpo.Float(0, 1)), []fieldKey{{at + "Momentum", pipeline.ErrorTypeNotFound}}},
		{"same field twice", with("lr", hpo.Float(0, 1)), []fieldKey{{at + "lr", pipeline.ErrorTypeDuplicate}}},
		{"zero Dim", with("LR", hpo.Dim{}), []fieldKey{{at + "LR", pipeline.ErrorTypeRequired}}},
		{"float range on an int", with("Layers", hpo.Float(1, 4)), []fieldKey{{at + "Layers", pipeline.ErrorTypeInvalid}}},
		{"int range on a float", with("LR", hpo.Int(1, 4)), []fieldKey{{at + "LR", pipeline.ErrorTypeInvalid}}},
		{"lo > hi", with("LR", hpo.Float(1, 0.1)), []fieldKey{{at + "LR", pipeline.ErrorTypeInvalid}}},
		{"empty range", with("Layers", hpo.Int(3, 3)), []fieldKey{{at + "Layers", pipeline.ErrorTypeInvalid}}},
		{"log of zero", with("LR", hpo.LogFloat(0, 1)), []fieldKey{{at + "LR", pipeline.ErrorTypeInvalid}}},
		{"log int below 1", with("Batch", hpo.LogInt(0, 64)), []fieldKey{{at + "Batch", pipeline.ErrorTypeInvalid}}},
		{"zero step", with("Drop", hpo.FloatStep(0, 1, 0)), []fieldKey{{at + "Drop", pipeline.ErrorTypeInvalid}}},
		{"step wider than range", with("Layers", hpo.IntStep(1, 4, 5)), []fieldKey{{at + "Layers", pipeline.ErrorTypeInvalid}}},
		{"NaN bound", with("LR", hpo.Float(0, nan())), []fieldKey{{at + "LR", pipeline.ErrorTypeInvalid}}},
		{"does not fit uint8", with("Batch", hpo.Int(1, 1000)), []fieldKey{{at + "Batch", pipeline.ErrorTypeInvalid}}},
		{"negative uint", with("Batch", hpo.Int(-1, 10)), []fieldKey{{at + "Batch", pipeline.ErrorTypeInvalid}}},
		{"empty choice", with("Act", hpo.Choice[string]()), []fieldKey{{at + "Act", pipeline.ErrorTypeRequired}}},
		{"choice of the wrong type", with("Act", hpo.Choice(1, 2)), []fieldKey{{at + "Act[0]", pipeline.ErrorTypeInvalid}}},
		{"duplicate choice", with("Act", hpo.Choice("relu", "relu")), []fieldKey{{at + "Act[1]", pipeline.ErrorTypeDuplicate}}},
		{"fixed of the wrong type", with("Epochs", hpo.Fixed("ten")), []fieldKey{{at + "Epochs", pipeline.ErrorTypeInvalid}}},
		{"fixed not exact", with("Epochs", hpo.Fixed(2.5)), []fieldKey{{at + "Epochs", pipeline.ErrorTypeInvalid}}},
		{"all fixed", hpo.Space[HP]{"LR": hpo.Fixed(0.1), "Drop": hpo.Fixed(float32(0)), "Layers": hpo.Fixed(1), "Batch": hpo.Fixed(8), "Act": hpo.Fixed("relu"), "Epochs": hpo.Fixed(1)},
			[]fieldKey{{"pipeline.tasks[search].space", pipeline.ErrorTypeInvalid}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := pipeline.New("p", nil)
			hpo.Search(p, tc.space, hpTrial, bindHP, loss, &hpo.Options{MaxTrials: 4})
			assert.Equal(t, tc.want, keys(p.Validate()))
		})
	}
}

func nan() float64 { var z float64; return z / z }

func TestOptionErrorsHaveFieldPaths(t *testing.T) {
	const at = "pipeline.tasks[search]."
	for _, tc := range []struct {
		name string
		opts *hpo.Options
		want []fieldKey
	}{
		{"no options", nil, []fieldKey{{at + "maxTrials", pipeline.ErrorTypeRequired}}},
		{"negative max", &hpo.Options{MaxTrials: -1}, []fieldKey{{at + "maxTrials", pipeline.ErrorTypeInvalid}}},
		{"too many trials", &hpo.Options{MaxTrials: hpo.MaxTrialCount + 1}, []fieldKey{{at + "maxTrials", pipeline.ErrorTypeInvalid}}},
		{"max below parallel", &hpo.Options{MaxTrials: 4, ParallelTrials: 8}, []fieldKey{{at + "parallelTrials", pipeline.ErrorTypeInvalid}}},
		{"negative parallel", &hpo.Options{MaxTrials: 4, ParallelTrials: -1}, []fieldKey{{at + "parallelTrials", pipeline.ErrorTypeInvalid}}},
		{"more rounds than trials", &hpo.Options{MaxTrials: 4, Rounds: 5}, []fieldKey{{at + "rounds", pipeline.ErrorTypeInvalid}}},
		{"too many default rounds", &hpo.Options{MaxTrials: 2000}, []fieldKey{{at + "rounds", pipeline.ErrorTypeInvalid}}},
		{"failed above max", &hpo.Options{MaxTrials: 4, MaxFailedTrials: 5}, []fieldKey{{at + "maxFailedTrials", pipeline.ErrorTypeInvalid}}},
		{"negative failed", &hpo.Options{MaxTrials: 4, MaxFailedTrials: -1}, []fieldKey{{at + "maxFailedTrials", pipeline.ErrorTypeInvalid}}},
		{"unknown sampler", &hpo.Options{MaxTrials: 4, Sampler: "bayes"}, []fieldKey{{at + "sampler", pipeline.ErrorTypeNotSupported}}},
		{"unknown direction", &hpo.Options{MaxTrials: 4, Direction: "down"}, []fieldKey{{at + "direction", pipeline.ErrorTypeNotSupported}}},
		{"infinite goal", &hpo.Options{MaxTrials: 4, Goal: new(1 / zero())}, []fieldKey{{at + "goal", pipeline.ErrorTypeInvalid}}},
		{"grid over a continuous range", &hpo.Options{MaxTrials: 4, Sampler: hpo.Grid}, []fieldKey{{at + "space.LR", pipeline.ErrorTypeInvalid}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := pipeline.New("p", nil)
			hpo.Search(p, validSpace(), hpTrial, bindHP, loss, tc.opts)
			assert.Equal(t, tc.want, keys(p.Validate()))
		})
	}
}

func zero() float64 { return 0 }

func TestGridLargerThanMaxTrials(t *testing.T) {
	p := pipeline.New("p", nil)
	space := hpo.Space[Point]{"X1": hpo.FloatStep(0, 1, 0.5), "X2": hpo.Choice(1.0, 2.0)}
	hpo.Search(p, space, evaluate, func(pt pipeline.Ref[Point]) BraninIn { return BraninIn{P: pt} },
		func(o BraninOut) float64 { return o.Value }, &hpo.Options{Sampler: hpo.Grid, MaxTrials: 7})
	assert.Equal(t, []fieldKey{{"pipeline.tasks[search].maxTrials", pipeline.ErrorTypeInvalid}}, keys(p.Validate()))
}

func TestCMAESNeedsTwoFields(t *testing.T) {
	p := pipeline.New("p", nil)
	space := hpo.Space[Point]{"X1": hpo.Float(0, 1), "X2": hpo.Fixed(1.0)}
	hpo.Search(p, space, evaluate, func(pt pipeline.Ref[Point]) BraninIn { return BraninIn{P: pt} },
		func(o BraninOut) float64 { return o.Value }, &hpo.Options{Sampler: hpo.CMAES, MaxTrials: 4})
	assert.Equal(t, []fieldKey{{"pipeline.tasks[search].sampler", pipeline.ErrorTypeInvalid}}, keys(p.Validate()))
}

// The search's problems come with the pipeline's other problems, in one
// Validate, under the search's own name.
func TestSearchErrorsComeWithOtherErrors(t *testing.T) {
	p := pipeline.New("p", nil)
	pipeline.Add(p, task.New("", func(ctx context.Context, in struct{}) (int, error) { return 0, nil }), struct{}{})
	hpo.Search(p, hpo.Space[HP]{}, hpTrial, bindHP, loss, &hpo.Options{Name: "tune", MaxTrials: 2, ParallelTrials: 3})
	got := keys(p.Validate())
	assert.Contains(t, got, fieldKey{"pipeline.tasks[0].name", pipeline.ErrorTypeRequired})
	assert.Contains(t, got, fieldKey{"pipeline.tasks[tune].space.LR", pipeline.ErrorTypeRequired})
	assert.Contains(t, got, fieldKey{"pipeline.tasks[tune].parallelTrials", pipeline.ErrorTypeInvalid})
}

// A container trial is valid; one that should tolerate failed trials is
// not (yet), an error at maxFailedTrials.
func TestContainerTrialCannotTolerateFailures(t *testing.T) {
	c := task.Container[hpIn, hpOut]("train", "registry.example/train:1")
	p := pipeline.New("p", nil)
	hpo.Search(p, validSpace(), c, bindHP, loss, &hpo.Options{MaxTrials: 2})
	assert.NoError(t, p.Validate())

	p = pipeline.New("p", nil)
	hpo.Search(p, validSpace(), c, bindHP, loss, &hpo.Options{MaxTrials: 2, MaxFailedTrials: 1})
	assert.Equal(t, []fieldKey{{"pipeline.tasks[search].maxFailedTrials", pipeline.ErrorTypeInvalid}}, keys(p.Validate()))
}

func TestMisusePanics(t *testing.T) {
	assert.PanicsWithValue(t, "hpo: Search with a nil *pipeline.Pipeline; create one with pipeline.New", func() {
		hpo.Search(nil, validSpace(), hpTrial, bindHP, loss, nil)
	})
	assert.Panics(t, func() { hpo.Search(pipeline.New("p", nil), validSpace(), hpTrial, nil, loss, nil) })
	assert.Panics(t, func() { hpo.Search(pipeline.New("p", nil), validSpace(), hpTrial, bindHP, nil, nil) })
}

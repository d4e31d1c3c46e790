package pipelinetest_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sluice-ml/sluice/artifact"
	"github.com/sluice-ml/sluice/pipeline"
	"github.com/sluice-ml/sluice/pipeline/pipelinetest"
	"github.com/sluice-ml/sluice/task"
)

type Row struct {
	X, Y float64
}

type PrepIn struct {
	Raw artifact.Dataset // a fixed input: a test seeds it
}

type PrepOut struct {
	Train artifact.Dataset `json:"train"`
	Rows  int              `json:"rows"`
}

type FitIn struct {
	Data pipeline.Ref[PrepOut]
}

type FitOut struct {
	Model artifact.Model `json:"model"`
	Sum   float64        `json:"sum"`
}

var (
	makeRows = task.New("make-rows", func(ctx context.Context, _ struct{}) (PrepOut, error) {
		rows := []Row{{1, 2}, {3, 4}}
		ds, err := artifact.WriteJSON[artifact.Dataset](ctx, "train", rows)
		return PrepOut{Train: ds, Rows: len(rows)}, err
	})
	prepRaw = task.New("prep", func(ctx context.Context, in PrepIn) (PrepOut, error) {
		b, err := in.Raw.ReadAll(ctx)
		if err != nil {
			return PrepOut{}, err
		}
		var rows []Row
		for line := range strings.Lines(strings.TrimSpace(string(b))) {
			var r Row
			if _, err := fmt.Sscan(line, &r.X, &r.Y); err != nil {
				return PrepOut{}, err
			}
			rows = append(rows, r)
		}
		ds, err := artifact.WriteJSON[artifact.Dataset](ctx, "train", rows)
		return PrepOut{Train: ds, Rows: len(rows)}, err
	})
	fit = task.New("fit", func(ctx context.Context, in FitIn) (FitOut, error) {
		var rows []Row
		if err := in.Data.Get().Train.ReadJSON(ctx, &rows); err != nil {
			return FitOut{}, err
		}
		sum := 0.0
		for _, r := range rows {
			sum += r.X * r.Y
		}
		m, err := artifact.WriteJSON[artifact.Model](ctx, "model", map[string]float64{"w": sum}, artifact.Meta("framework", "toy"))
		return FitOut{Model: m, Sum: sum}, err
	})
)

func TestArtifactsFlowBetweenSteps(t *testing.T) {
	p := pipeline.New("flow", nil)
	data := pipeline.Add(p, makeRows, struct{}{})
	model := pipeline.Add(p, fit, FitIn{Data: data.Output()})
	env := pipelinetest.NewEnv(t)

	res := env.Run(p)

	require.NoError(t, res.Err())
	out := pipelinetest.Output(res, model)
	assert.Equal(t, 14.0, out.Sum)
	assert.Equal(t, artifact.KindModel, out.Model.Kind)
	assert.Equal(t, "toy", out.Model.Metadata["framework"])
	assert.Equal(t, "fit", out.Model.Producer.Step)
	got, err := env.ReadArtifact(out.Model.Artifact)
	require.NoError(t, err)
	assert.JSONEq(t, `{"w": 14}`, string(got))

	prep := pipelinetest.Output(res, data)
	rows, err := env.ReadArtifact(prep.Train.Artifact)
	require.NoError(t, err)
	assert.JSONEq(t, `[{"X":1,"Y":2},{"X":3,"Y":4}]`, string(rows))

	var keys []string
	for _, o := range res.Artifacts() {
		keys = append(keys, o.Key)
		assert.Positive(t, o.Size)
	}
	assert.Equal(t, []string{"flow/" + res.Status.RunID + "/fit/model", "flow/" + res.Status.RunID + "/make-rows/train"}, keys)
	assert.Equal(t, "mem", strings.SplitN(out.Model.URI, ":", 2)[0], "tests never touch the disk store")
}

func TestSeededArtifactFedToAStep(t *testing.T) {
	env := pipelinetest.NewEnv(t)
	raw := pipelinetest.Seed[artifact.Dataset](env, "raw", []byte("1 2\n5 6\n"), artifact.MediaType("text/plain"))
	assert.Equal(t, artifact.KindDataset, raw.Kind)
	assert.Equal(t, "text/plain", raw.MediaType)
	assert.Equal(t, int64(8), raw.Size)

	p := pipeline.New("seeded", nil)
	data := pipeline.Add(p, prepRaw, PrepIn{Raw: raw})
	model := pipeline.Add(p, fit, FitIn{Data: data.Output()})

	res := env.Run(p)

	require.NoError(t, res.Err())
	assert.Equal(t, 2, pipelinetest.Output(res, data).Rows)
	assert.Equal(t, 32.0, pipelinetest.Output(res, model).Sum)
	assert.Len(t, res.Artifacts(), 2, "the seed is not the run's")
}

func TestStubReturnsAnArtifact(t *testing.T) {
	p := pipeline.New("stubbed", nil)
	data := pipeline.Add(p, makeRows, struct{}{})
	model := pipeline.Add(p, fit, FitIn{Data: data.Output()})

	t.Run("Seeded", func(t *testing.T) {
		env := pipelinetest.NewEnv(t)
		seeded := pipelinetest.Seed[artifact.Dataset](env, "rows", []byte(`[{"X":10,"Y":10}]`))
		pipelinetest.Stub(env, makeRows, func(context.Context, struct{}) (PrepOut, error) {
			return PrepOut{Train: seeded, Rows: 1}, nil
		})

		res := env.Run(p)

		require.NoError(t, res.Err())
		assert.Equal(t, 100.0, pipelinetest.Output(res, model).Sum)
		assert.Equal(t, seeded.URI, pipelinetest.Output(res, data).Train.URI)
	})
	t.Run("WrittenByTheStub", func(t *testing.T) {
		env := pipelinetest.NewEnv(t)
		pipelinetest.Stub(env, makeRows, func(ctx context.Context, _ struct{}) (PrepOut, error) {
			ds, err := artifact.WriteJSON[artifact.Dataset](ctx, "train", []Row{{2, 3}})
			return PrepOut{Train: ds, Rows: 1}, err
		})

		res := env.Run(p)

		require.NoError(t, res.Err())
		assert.Equal(t, 6.0, pipelinetest.Output(res, model).Sum)
		assert.Len(t, res.Artifacts(), 2)
	})
	t.Run("Local", func(t *testing.T) {
		env := pipelinetest.NewEnv(t)
		path := t.TempDir() + "/rows.json"
		require.NoError(t, os.WriteFile(path, []byte(`[{"X":1,"Y":7}]`), 0o644))
		pipelinetest.Stub(env, makeRows, func(context.Context, struct{}) (PrepOut, error) {
			return PrepOut{Train: artifact.Local[artifact.Dataset](path), Rows: 1}, nil
		})

		res := env.Run(p)

		require.NoError(t, res.Err())
		assert.Equal(t, 7.0, pipelinetest.Output(res, model).Sum)
		assert.Equal(t, "stubbed/"+res.Status.RunID+"/make-rows/train", res.Artifacts()[1].Key, "uploaded under its field's JSON name")
	})
}

func TestEnvsHaveTheirOwnStores(t *testing.T) {
	a, b := pipelinetest.NewEnv(t), pipelinetest.NewEnv(t)
	seeded := pipelinetest.Seed[artifact.File](a, "x", []byte("only in a"))

	got, err := a.ReadArtifact(seeded.Artifact)
	require.NoError(t, err)
	assert.Equal(t, "only in a", string(got))
	_, err = b.ReadArtifact(seeded.Artifact)
	assert.Error(t, err)
}

func TestReadArtifactChecksTheDigest(t *testing.T) {
	env := pipelinetest.NewEnv(t)
	old := pipelinetest.Seed[artifact.File](env, "x", []byte("first"))
	pipelinetest.Seed[artifact.File](env, "x", []byte("second"))

	_, err := env.ReadArtifact(old.Artifact)

	assert.ErrorIs(t, err, artifact.ErrCorrupt)
}

func TestArtifactContextCallsATaskDirectly(t *testing.T) {
	env := pipelinetest.NewEnv(t)
	ctx := env.ArtifactContext(t.Context())
	_, err := fit.Func()(ctx, FitIn{})
	assert.Error(t, err, "a zero Ref holds no artifact")

	ds, err := artifact.WriteJSON[artifact.Dataset](ctx, "d", []Row{{1, 1}})
	require.NoError(t, err)
	var rows []Row
	require.NoError(t, ds.ReadJSON(ctx, &rows))
	assert.Equal(t, []Row{{1, 1}}, rows)
}

func TestRunsOfOnePipelineKeepTheirArtifacts(t *testing.T) {
	p := pipeline.New("twice", nil)
	data := pipeline.Add(p, makeRows, struct{}{})
	env := pipelinetest.NewEnv(t)

	first, second := env.Run(p), env.Run(p)

	require.NoError(t, first.Err())
	require.NoError(t, second.Err())
	assert.Equal(t, "twice-1", first.Status.RunID)
	assert.Equal(t, "twice-2", second.Status.RunID)
	require.Len(t, first.Artifacts(), 1)
	assert.Equal(t, "twice/twice-1/make-rows/train", first.Artifacts()[0].Key)
	_, err := env.ReadArtifact(pipelinetest.Output(first, data).Train.Artifact)
	assert.NoError(t, err, "the second run did not replace the first's artifact")
}

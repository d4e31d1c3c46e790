package pipeline_test

import (
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sluice-ml/sluice/artifact"
	"github.com/sluice-ml/sluice/backends"
	"github.com/sluice-ml/sluice/pipeline"
	"github.com/sluice-ml/sluice/task"
)

type bigOut struct {
	Rows  []float64        `json:"rows"`
	N     int              `json:"n"`
	Model artifact.Model   `json:"model"`
	Note  string           `json:"note"`
	Extra map[string]int64 `json:"extra,omitempty"`
}

type useIn struct {
	Rows  pipeline.Ref[[]float64]
	Model pipeline.Ref[artifact.Model]
}

// artifactPipeline has a step with a large output and an artifact, and a
// step that reads both.
func artifactPipeline() *pipeline.Pipeline {
	p := pipeline.New("arts", nil)
	make := task.New("make", func(ctx context.Context, _ struct{}) (bigOut, error) {
		m, err := artifact.WriteJSON[artifact.Model](ctx, "model", map[string]float64{"w": 2})
		return bigOut{Rows: make([]float64, 2000), N: 2000, Model: m, Note: "small"}, err
	})
	use := task.New("use", func(ctx context.Context, in useIn) (string, error) {
		var w map[string]float64
		if err := in.Model.Get().ReadJSON(ctx, &w); err != nil {
			return "", err
		}
		return jsonOf(len(in.Rows.Get()), w["w"]), nil
	})
	s := pipeline.Add(p, make, struct{}{})
	pipeline.Add(p, use, useIn{Rows: pipeline.Field[[]float64](s.Output(), "Rows"), Model: pipeline.Field[artifact.Model](s.Output(), "Model")})
	return p
}

func jsonOf(v ...any) string { b, _ := json.Marshal(v); return string(b) }

// The task mode in a pod: the store, run and step come from the
// environment; a large output is stored out of band to fit the backend's
// limit, and the consumer's input is restored before it is decoded.
func TestTaskModeArtifactsAndPromotion(t *testing.T) {
	root := "file://" + filepath.Join(t.TempDir(), "store")
	t.Setenv(backends.ArtifactsEnv, root)
	t.Setenv(backends.RunIDEnv, "arts-7")
	t.Setenv(backends.InlineMaxEnv, "4096")
	dir := t.TempDir()
	out := filepath.Join(dir, "make.json")

	code, _, errs := exec(t, artifactPipeline(), []string{"task", "-step", "make", "-output-file", out})
	require.Equal(t, pipeline.ExitOK, code, errs)
	got, err := os.ReadFile(out)
	require.NoError(t, err)
	assert.LessOrEqual(t, len(got), 4096, "the output fits in-band")
	var m map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(got, &m))
	assert.Contains(t, string(m["rows"]), `"kind":"value"`, "the large field went out of band")
	assert.Equal(t, "2000", string(m["n"]), "small fields stay in-band for refs")
	assert.Contains(t, string(m["model"]), "/arts/arts-7/make/model", "the artifact is at its layout path")

	// The orchestrator selects fields in-band and passes them on.
	in, _ := json.Marshal(map[string]json.RawMessage{"Rows": m["rows"], "Model": m["model"]})
	out2 := filepath.Join(dir, "use.json")
	code, _, errs = exec(t, artifactPipeline(), []string{"task", "-step", "use", "-input", string(in), "-output-file", out2})
	require.Equal(t, pipeline.ExitOK, code, errs)
	got, _ = os.ReadFile(out2)
	assert.Equal(t, `"[2000,2]"`, string(got))
}

func TestTaskModeTooLargeWithoutStore(t *testing.T) {
	t.Setenv(backends.InlineMaxEnv, "4096")
	t.Setenv(backends.ArtifactsEnv, "")
	out := filepath.Join(t.TempDir(), "o.json")
	p := pipeline.New("big", nil)
	pipeline.Add(p, task.New("make", func(ctx context.Context, _ struct{}) ([]float64, error) {
		return make([]float64, 3000), nil
	}), struct{}{})
	code, _, errs := exec(t, p, []string{"task", "-step", "make", "-output-file", out})
	assert.Equal(t, pipeline.ExitInvalid, code)
	assert.Contains(t, errs, "more than the 4096 this backend carries in-band")
	assert.Contains(t, errs, "set the pipeline's artifact store")
}

func TestTaskModeWritesWithoutStore(t *testing.T) {
	t.Setenv(backends.ArtifactsEnv, "")
	out := filepath.Join(t.TempDir(), "o.json")
	p := pipeline.New("w", nil)
	pipeline.Add(p, task.New("make", func(ctx context.Context, _ struct{}) (artifact.File, error) {
		return artifact.Write[artifact.File](ctx, "f", func(w io.Writer) error { return nil })
	}), struct{}{})
	code, _, errs := exec(t, p, []string{"task", "-step", "make", "-output-file", out})
	assert.Equal(t, pipeline.ExitFailed, code)
	assert.Contains(t, errs, "no artifact store in this context")
}

package hpo_test

import (
	"bytes"
	"encoding/csv"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sluice-ml/sluice/backends/local"
	"github.com/sluice-ml/sluice/hpo"
	"github.com/sluice-ml/sluice/pipeline"
	"github.com/sluice-ml/sluice/pipeline/pipelinetest"
)

// The result step stores the report as artifacts of its step, and records
// them in the Result.
func TestSearchStoresItsReport(t *testing.T) {
	p, search := braninSearch(&hpo.Options{Sampler: hpo.Random, Seed: 3, MaxTrials: 5, ParallelTrials: 2}, nil)
	env := pipelinetest.NewEnv(t)
	stub(env, nil)

	res := env.Run(p)

	require.NoError(t, res.Err())
	out := pipelinetest.Output(res, search)
	assert.Equal(t, hpo.Minimize, out.Direction)
	assert.Equal(t, []hpo.DimInfo{{Name: "X1", Scale: hpo.Linear}, {Name: "X2", Scale: hpo.Linear}}, out.Dims)
	var keys []string
	for _, o := range res.Artifacts() {
		keys = append(keys, o.Key)
	}
	prefix := "tune/" + res.Status.RunID + "/search/"
	assert.Equal(t, []string{prefix + "plot.png", prefix + "plot.svg", prefix + "trials.csv", prefix + "trials.json"}, keys)

	csvBytes, err := env.ReadArtifact(out.Files.CSV.Artifact)
	require.NoError(t, err)
	var want bytes.Buffer
	require.NoError(t, out.WriteCSV(&want))
	assert.Equal(t, want.String(), string(csvBytes))
	recs, err := csv.NewReader(bytes.NewReader(csvBytes)).ReadAll()
	require.NoError(t, err)
	assert.Len(t, recs, 6, "a header and five trials")

	svg, err := env.ReadArtifact(out.Files.SVG.Artifact)
	require.NoError(t, err)
	assert.Contains(t, string(svg), "<svg")
	assert.Equal(t, "image/svg+xml", out.Files.SVG.MediaType)
	png, err := env.ReadArtifact(out.Files.PNG.Artifact)
	require.NoError(t, err)
	assert.True(t, bytes.HasPrefix(png, []byte("\x89PNG")))
	assert.Empty(t, out.Files.PlotError)

	j, err := env.ReadArtifact(out.Files.JSON.Artifact)
	require.NoError(t, err)
	assert.Contains(t, string(j), `"bestTrial":`)
	assert.Contains(t, string(j), out.Files.CSV.Digest, "trials.json holds the other files' descriptions")
}

// The run command prints the search's table below the summary, and
// "prog hpo" shows it from the store and copies the files, on the local
// backend.
func TestHPOCommandOnLocal(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("XDG_CACHE_HOME", filepath.Join(dir, "xdg"))
	t.Setenv("HOME", filepath.Join(dir, "home"))
	root := filepath.Join(dir, "artifacts")
	p, _ := braninSearch(&hpo.Options{Sampler: hpo.Sobol, Seed: 1, MaxTrials: 24, ParallelTrials: 4}, nil)
	b := local.New(nil)
	exec := func(args ...string) (int, string, string) {
		var stdout, stderr bytes.Buffer
		code := pipeline.Exec(t.Context(), p, args, &stdout, &stderr, b)
		return code, stdout.String(), stderr.String()
	}

	code, out, errs := exec("run", "-artifacts", root, "-run-id", "r1", "-no-cache", "-q")
	require.Equal(t, pipeline.ExitOK, code, errs)
	summary := out[strings.Index(out, "\nsearch:\n"):]
	assert.Contains(t, summary, "  24 trials: 24 complete; best trial ")
	assert.Contains(t, summary, "  id  round  state     objective  X1")
	assert.Contains(t, summary, "  … 4 more (tune hpo -run r1 -step search)", "at most 20 rows, then where to see the rest")
	assert.Equal(t, 1+1+20+1, strings.Count(summary, "\n  "), "the headline, the header, 20 rows and the rest")

	code, out, errs = exec("hpo", "-run", "r1", "-artifacts", root, "-o", filepath.Join(dir, "out"))
	require.Equal(t, pipeline.ExitOK, code, errs)
	assert.True(t, strings.HasPrefix(out, "search: 24 trials: 24 complete; best trial "), out)
	assert.NotContains(t, out, "more", "the command shows every trial")
	for _, name := range []string{"plot.svg", "plot.png", "trials.csv", "trials.json"} {
		path := filepath.Join(dir, "out", "search", name)
		assert.Contains(t, out, "wrote "+path+"\n")
		fi, err := os.Stat(path)
		if assert.NoError(t, err) {
			assert.NotZero(t, fi.Size())
		}
	}
	csvBytes, err := os.ReadFile(filepath.Join(dir, "out", "search", "trials.csv"))
	require.NoError(t, err)
	assert.Equal(t, 25, strings.Count(string(csvBytes), "\n"))

	for _, tc := range []struct {
		name    string
		args    []string
		code    int
		wantErr string
	}{
		{"NoRunFlag", []string{"hpo", "-artifacts", root}, pipeline.ExitInvalid, "-run is required"},
		{"BadRunID", []string{"hpo", "-run", "../x", "-artifacts", root}, pipeline.ExitInvalid, "is not a run id"},
		{"NoSuchRun", []string{"hpo", "-run", "r2", "-artifacts", root}, pipeline.ExitFailed, "no run r2 of pipeline tune"},
		{"NoSuchStore", []string{"hpo", "-run", "r1", "-artifacts", filepath.Join(dir, "nothing")}, pipeline.ExitFailed, "the artifact store does not exist"},
		{"UnknownScheme", []string{"hpo", "-run", "r1", "-artifacts", "ftp://host/x"}, pipeline.ExitInvalid, "ftp"},
		{"NoSuchSearch", []string{"hpo", "-run", "r1", "-artifacts", root, "-step", "tuning"}, pipeline.ExitInvalid, `run r1 has no search "tuning"; its searches: search`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, errs := exec(tc.args...)
			assert.Equal(t, tc.code, code, errs)
			assert.Contains(t, errs, tc.wantErr)
		})
	}

	// A run that stored something, but no search.
	require.NoError(t, os.MkdirAll(filepath.Join(root, "tune", "r3", "prep"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(root, "tune", "r3", "prep", "data.csv"), []byte("a\n"), 0o644))
	code, _, errs = exec("hpo", "-run", "r3", "-artifacts", root)
	assert.Equal(t, pipeline.ExitFailed, code)
	assert.Contains(t, errs, "run r3 has no search: no step stored trials.json")

	_, out, _ = exec("help")
	assert.Contains(t, out, "tune hpo -run ID [-step NAME] [-artifacts URL] [-o DIR]")
}

package main

import (
	"bytes"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sluice-ml/sluice/artifact"
	"github.com/sluice-ml/sluice/backends"
	"github.com/sluice-ml/sluice/backends/argo"
	"github.com/sluice-ml/sluice/backends/kubejob"
	"github.com/sluice-ml/sluice/backends/kubepod"
	"github.com/sluice-ml/sluice/backends/local"
	"github.com/sluice-ml/sluice/internal/golden"
	"github.com/sluice-ml/sluice/pipeline"
)

// newLocal is the executor main.go uses: a machine with two 1g.10gb MIG
// slices, so two trials train at once. Its artifacts are in memory, so
// that tests write nothing into the user's cache directory (the store
// main.go's runs default to).
func newLocal() *local.Backend {
	return local.New(&local.Options{
		Capacity:  &local.Capacity{CPU: "8", Memory: "32Gi", MIG: map[string]int{"1g.10gb": 2}},
		Artifacts: "mem://quickstart",
	})
}

// The whole pipeline, run in process, once with the default accuracy
// threshold (publish runs) and once with one no model reaches (publish is
// skipped, and the run still succeeds).
func TestRunLocal(t *testing.T) {
	for _, tc := range []struct {
		name        string
		minAccuracy string
		publishes   bool
	}{
		{"Publishes", "0.85", true},
		{"BelowThreshold", "0.99", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			st, err := pipeline.Run(t.Context(), build(), newLocal(), &pipeline.RunOptions{
				Params: map[string]string{"min_accuracy": tc.minAccuracy, "publish_dir": dir},
			})
			require.NoError(t, err)
			require.Equal(t, backends.PhaseSucceeded, st.Phase, "run %s: %s", st.RunID, st.Message)

			// Every trial of the grid ran, at most two at a time.
			tr := st.Step(stepTrain)
			require.NotNil(t, tr)
			require.Len(t, tr.Instances, 12)
			for i, in := range tr.Instances {
				assert.Equal(t, backends.PhaseSucceeded, in.Phase, "trial %d: %s", i, in.Message)
				require.False(t, in.Started.IsZero() || in.Finished.IsZero(), "trial %d has no timestamps", i)
			}
			assert.LessOrEqual(t, maxOverlap(tr.Instances), 2, "Limit(2) and two MIG slices")
			var trials []Trial
			require.NoError(t, json.Unmarshal(tr.Output, &trials))
			require.Len(t, trials, 12)
			for i, trial := range trials {
				assert.Equal(t, i, trial.HP.Trial, "collected in grid order")
			}

			// select-best picked the lowest validation log-loss.
			var best Trial
			require.NoError(t, json.Unmarshal(st.Step(stepSelect).Output, &best))
			for _, trial := range trials {
				assert.LessOrEqual(t, best.ValLogLoss, trial.ValLogLoss, "trial %d beats the chosen one", trial.HP.Trial)
			}
			assert.Contains(t, trials, best)

			// The model is well above chance on the held-out test set.
			var m Metrics
			require.NoError(t, json.Unmarshal(st.Step(stepEvaluate).Output, &m))
			assert.Greater(t, m.Accuracy, 0.8)
			assert.Greater(t, m.AUC, 0.9)
			threshold, err := strconv.ParseFloat(tc.minAccuracy, 64)
			require.NoError(t, err)
			assert.Equal(t, tc.publishes, m.Accuracy >= threshold, "the case's premise")

			// publish ran if and only if the model was accurate enough.
			model := filepath.Join(dir, "model.json")
			if tc.publishes {
				assert.Equal(t, backends.PhaseSucceeded, st.Step(stepPublish).Phase)
				assert.FileExists(t, model)
			} else {
				assert.Equal(t, backends.PhaseSkipped, st.Step(stepPublish).Phase)
				assert.NoFileExists(t, model)
			}
			assert.Equal(t, backends.PhaseSucceeded, st.Step(stepReport).Phase, "the exit handler ran")
		})
	}
}

// inBandLimit is what a step's output may take in-band in the test below:
// well under the 4 KiB a kubejob step's termination message keeps.
const inBandLimit = 3 << 10

// The data sets and models travel as artifacts, so that every output
// that crosses a step boundary in-band is small whatever the data's size:
// each step's, each trial's, and each element of the collected trials.
// The store is a directory with a path as long as a real one.
func TestInBandOutputsAreSmall(t *testing.T) {
	store := filepath.Join(t.TempDir(), "home", "someone", ".cache", "sluice", "artifacts")
	st, err := pipeline.Run(t.Context(), build(), newLocal(), &pipeline.RunOptions{
		Params:    map[string]string{"publish_dir": t.TempDir()},
		Artifacts: store,
	})
	require.NoError(t, err)
	require.Equal(t, backends.PhaseSucceeded, st.Phase, "run %s: %s", st.RunID, st.Message)
	total := 0
	for _, s := range st.Steps {
		total += len(s.Output)
		if len(s.Instances) == 0 {
			t.Logf("%-13s %5d bytes", s.Name, len(s.Output))
			assert.Less(t, len(s.Output), inBandLimit, "the output of %s", s.Name)
			continue
		}
		// A fan-out: each instance's output leaves its own pod; the
		// collected list is the orchestrator's (a list, like the grid).
		var elems []json.RawMessage
		require.NoError(t, json.Unmarshal(s.Output, &elems))
		require.Len(t, elems, len(s.Instances))
		most := 0
		for i, in := range s.Instances {
			most = max(most, len(in.Output))
			assert.Less(t, len(in.Output), inBandLimit, "the output of %s[%d]", s.Name, i)
			assert.Less(t, len(elems[i]), inBandLimit, "element %d of the collected output of %s", i, s.Name)
		}
		t.Logf("%-13s %5d bytes at most per instance, %d collected", s.Name, most, len(s.Output))
	}
	// Argo keeps a run's outputs in its Workflow object, 1 MiB in all.
	t.Logf("all steps: %d bytes", total)
	assert.Less(t, total, 32<<10, "the run's outputs together")

	// The data went to the store instead: the data set, its three splits
	// and a model per trial, each described in-band by its digest.
	var splits Splits
	require.NoError(t, json.Unmarshal(st.Step(stepSplit).Output, &splits))
	assert.Equal(t, "1400", splits.Train.Metadata["rows"])
	assert.Equal(t, "8", splits.Train.Metadata["features"])
	assert.Equal(t, "application/jsonl", splits.Test.MediaType)
	assert.Greater(t, splits.Train.Size, int64(50_000), "the training rows are not in-band")
	assert.FileExists(t, filepath.Join(store, "quickstart", st.RunID, stepDataset, "data"))
	var best Trial
	require.NoError(t, json.Unmarshal(st.Step(stepSelect).Output, &best))
	assert.Equal(t, "sluice-logreg", best.Model.Metadata["framework"])
	assert.Equal(t, strconv.Itoa(best.HP.Epochs), best.Model.Metadata["epochs"])
	assert.Equal(t, "sha256:", best.Model.Digest[:7])
	assert.FileExists(t, filepath.Join(store, "quickstart", st.RunID, stepTrain, strconv.Itoa(best.HP.Trial), "model"))
}

// maxOverlap is the largest number of instances running at one instant.
func maxOverlap(ins []backends.StepStatus) int {
	most := 0
	for _, a := range ins {
		n := 0
		for _, b := range ins {
			if !b.Started.After(a.Started) && b.Finished.After(a.Started) {
				n++
			}
		}
		most = max(most, n)
	}
	return most
}

// The same seed gives the same model.
func TestRunIsDeterministic(t *testing.T) {
	var outputs []json.RawMessage
	for range 2 {
		st, err := pipeline.Run(t.Context(), build(), newLocal(), &pipeline.RunOptions{
			Params: map[string]string{"publish_dir": t.TempDir()},
		})
		require.NoError(t, err)
		outputs = append(outputs, st.Step(stepEvaluate).Output)
	}
	assert.JSONEq(t, string(outputs[0]), string(outputs[1]))
}

// What each backend will run: the local run record with every resolved
// profile, the Argo Workflow, the Kubernetes Jobs
// (testdata/TestCompile/*.golden.yaml; -update rewrites them).
func TestCompile(t *testing.T) {
	for _, tc := range []struct {
		name    string
		backend backends.Backend
	}{
		{"local", newLocal()},
		{"argo", argo.New(nil, &argo.Options{Pod: kubepod.Options{Image: image, Command: command}})},
		{"kubejob", kubejob.New(nil, &kubejob.Options{Pod: kubepod.Options{Image: image}, RunID: "quickstart-1"})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			art, err := pipeline.Compile(t.Context(), build(), tc.backend, nil)
			require.NoError(t, err)
			golden.Assert(t, bytes.Join(art.Documents(), []byte("---\n")))
		})
	}
}

// The command line runs it too; compile for the local backend works.
func TestExec(t *testing.T) {
	var stdout, stderr bytes.Buffer
	code := pipeline.Exec(t.Context(), build(), []string{"-p", "publish_dir=" + t.TempDir()}, &stdout, &stderr, newLocal())
	assert.Equal(t, pipeline.ExitOK, code, "stderr:\n%s", stderr.String())
	assert.Contains(t, stdout.String(), "quickstart: Succeeded")

	stdout.Reset()
	stderr.Reset()
	code = pipeline.Exec(t.Context(), build(), []string{"compile", "-backend", "local"}, &stdout, &stderr, newLocal())
	assert.Equal(t, pipeline.ExitOK, code, "stderr:\n%s", stderr.String())
	assert.NotEmpty(t, stdout.String())

	stderr.Reset()
	code = pipeline.Exec(t.Context(), build(), []string{"lint", "-p", "rows=many"}, &stdout, &stderr, newLocal())
	assert.Equal(t, pipeline.ExitInvalid, code)
	assert.Contains(t, stderr.String(), "pipeline.params[rows]")
}

// The command line: lint passes and the graph matches
// testdata/TestGraph.mermaid (rewrite it with go test -run TestGraph -update).

func TestLint(t *testing.T) {
	var stdout, stderr bytes.Buffer
	code := pipeline.Exec(t.Context(), build(), []string{"lint"}, &stdout, &stderr)
	assert.Equal(t, pipeline.ExitOK, code, "stderr:\n%s", stderr.String())
	assert.Equal(t, "quickstart: valid, 7 steps\n", stdout.String())
}

func TestGraph(t *testing.T) {
	var stdout, stderr bytes.Buffer
	code := pipeline.Exec(t.Context(), build(), []string{"graph"}, &stdout, &stderr)
	require.Equal(t, pipeline.ExitOK, code, "stderr:\n%s", stderr.String())
	golden.Assert(t, stdout.Bytes(), ".mermaid")
}

// The README's example is readme_test.go, verbatim from the type
// declarations on, so it compiles and passes.
func TestReadmeExampleIsTested(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	require.NoError(t, err)
	_, block, ok := strings.Cut(string(readme), "## A pipeline and its test\n\n```go\n")
	require.True(t, ok, "README.md has no Go block under \"## A pipeline and its test\"")
	block, _, _ = strings.Cut(block, "```\n")

	src, err := os.ReadFile("readme_test.go")
	require.NoError(t, err)
	_, code, ok := strings.Cut(string(src), "\ntype TrainIn ")
	require.True(t, ok)
	assert.Equal(t, "type TrainIn "+code, block, "README.md and readme_test.go differ; keep them in step")
}

// The resource profiles resolve against the node pools: preprocessing on
// the CPU pool, trials on spot MIG slices with an on-demand fall-back.
func TestPlanResources(t *testing.T) {
	plan, err := build().Plan(nil)
	require.NoError(t, err)

	prep := plan.Step(stepDataset)
	require.NotNil(t, prep)
	assert.Empty(t, prep.Task.Image, "a Go task's image is the cluster backends' (main.go)")
	assert.Equal(t, map[string]string{"cloud.google.com/gke-nodepool": "cpu-pool"}, prep.Resolved.Placement.NodeSelector)

	tr := plan.Step(stepTrain)
	require.NotNil(t, tr)
	require.NotNil(t, tr.ForEach)
	assert.Equal(t, 2, tr.ForEach.Parallelism)
	assert.Equal(t, "A100-80GB", tr.Resolved.GPUModel, "the model comes from the pool")
	// GKE's managed GPU stack: a 1g.10gb partition is one nvidia.com/gpu
	// on a node labelled with that partition size.
	q := tr.Resolved.Limits["nvidia.com/gpu"]
	assert.Equal(t, int64(1), q.Value())
	assert.Equal(t, map[string]string{
		"cloud.google.com/gke-nodepool":           "a100-mig",
		"cloud.google.com/gke-spot":               "true",
		"cloud.google.com/gke-accelerator":        "nvidia-a100-80gb",
		"cloud.google.com/gke-gpu-partition-size": "1g.10gb",
	}, tr.Resolved.Placement.NodeSelector)
	assert.NotNil(t, tr.Resolved.OnDemand)
	assert.Equal(t, 1, tr.Task.Retry.App)
	assert.Equal(t, 3, tr.Task.Retry.Infra)
	assert.True(t, tr.Task.Retry.OnDemandFallback)
}

// The machine learning, step by step.

func TestGenerateIsDeterministic(t *testing.T) {
	a, wa := generate(7, 500, features)
	b, wb := generate(7, 500, features)
	c, _ := generate(8, 500, features)
	assert.Equal(t, a, b)
	assert.Equal(t, wa, wb)
	assert.NotEqual(t, a, c)
	require.Equal(t, 500, a.Len())
	for _, x := range a.X {
		require.Len(t, x, features)
	}
	pos := 0
	for _, y := range a.Y {
		require.Contains(t, []int{0, 1}, y)
		pos += y
	}
	assert.InDelta(t, 0.5, float64(pos)/500, 0.2, "both classes are well represented")
}

func TestSplitSizes(t *testing.T) {
	d, _ := generate(7, 2000, features)
	tr, va, te := splitRows(d, 7)
	assert.Equal(t, []int{1400, 300, 300}, []int{tr.Len(), va.Len(), te.Len()})

	// Every row lands in exactly one set.
	var got, want [][]float64
	for _, s := range []Dataset{tr, va, te} {
		got = append(got, s.X...)
	}
	want = append(want, d.X...)
	cmpRows := func(a, b []float64) int { return slices.Compare(a, b) }
	slices.SortFunc(got, cmpRows)
	slices.SortFunc(want, cmpRows)
	assert.Equal(t, want, got)

	tr2, va2, te2 := splitRows(d, 7)
	assert.Equal(t, []Dataset{tr, va, te}, []Dataset{tr2, va2, te2}, "deterministic")
}

func TestGradientStepDecreasesLoss(t *testing.T) {
	d, _ := generate(3, 400, features)
	all := make([]int, d.Len())
	for i := range all {
		all[i] = i
	}
	m := Model{Weights: make([]float64, features)}
	const l2 = 0.01
	before := m.loss(d, l2)
	assert.InDelta(t, math.Ln2, before, 1e-12, "a zero model predicts 0.5 everywhere")
	for range 5 {
		prev := m.loss(d, l2)
		m.step(d, all, 0.1, l2)
		assert.Less(t, m.loss(d, l2), prev)
	}
}

func TestFitLearnsTheRule(t *testing.T) {
	d, _ := generate(11, 2000, features)
	tr, va, _ := splitRows(d, 11)
	m := fit(tr, 1, 1e-3, 16, 32, newRand(11, 100))
	assert.Greater(t, accuracy(m, va), 0.85)
	assert.Less(t, logLoss(m, va), 0.35)
}

func TestAUC(t *testing.T) {
	for _, tc := range []struct {
		name   string
		scores []float64
		labels []int
		want   float64
	}{
		{"Perfect", []float64{0.1, 0.2, 0.8, 0.9}, []int{0, 0, 1, 1}, 1},
		{"Reversed", []float64{0.9, 0.8, 0.2, 0.1}, []int{0, 0, 1, 1}, 0},
		{"AllTied", []float64{0.5, 0.5, 0.5, 0.5}, []int{0, 1, 0, 1}, 0.5},
		// Positives at 0.4 and 0.8, negatives at 0.2 and 0.4: 3.5 of 4
		// pairs are ordered right (the 0.4 tie counts half).
		{"TieCountsHalf", []float64{0.2, 0.4, 0.4, 0.8}, []int{0, 0, 1, 1}, 0.875},
		{"OneClass", []float64{0.1, 0.9}, []int{1, 1}, 0.5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.InDelta(t, tc.want, auc(tc.scores, tc.labels), 1e-12)
		})
	}
}

func TestGridAndBestTrial(t *testing.T) {
	pts, err := grid(t.Context(), GridIn{LearningRates: []float64{0.1, 1}, L2: []float64{0}, Epochs: []int{1, 2}})
	require.NoError(t, err)
	require.Len(t, pts, 4)
	for i, hp := range pts {
		assert.Equal(t, i, hp.Trial)
	}
	_, err = grid(t.Context(), GridIn{})
	assert.Error(t, err)

	trials := []Trial{
		{HP: HParams{Trial: 0}, ValLogLoss: 0.30, ValAccuracy: 0.90},
		{HP: HParams{Trial: 1}, ValLogLoss: 0.20, ValAccuracy: 0.88},
		{HP: HParams{Trial: 2}, ValLogLoss: 0.20, ValAccuracy: 0.91}, // tie: more accurate wins
		{HP: HParams{Trial: 3}, ValLogLoss: 0.20, ValAccuracy: 0.91}, // full tie: earlier wins
	}
	assert.Equal(t, 2, bestTrial(trials).HP.Trial)
}

// Data sets and models read back from their artifacts exactly as they
// were written, so steps compute on the very numbers upstream produced.
func TestArtifactsRoundTrip(t *testing.T) {
	store, err := artifact.Open(t.Context(), "mem://roundtrip")
	require.NoError(t, err)
	defer store.Close()
	ctx := artifact.NewContext(t.Context(), artifact.Scope{
		Store:    store,
		Producer: artifact.Producer{Pipeline: "quickstart", Run: "quickstart-1", Step: stepTrain},
	})

	d, _ := generate(7, 300, features)
	a, err := writeDataset(ctx, "data", d)
	require.NoError(t, err)
	assert.Equal(t, map[string]string{"rows": "300", "features": "8"}, a.Metadata)
	assert.Equal(t, "application/jsonl", a.MediaType)
	got, err := readDataset(ctx, a)
	require.NoError(t, err)
	assert.Equal(t, d, got)

	hp := HParams{Trial: 3, LearningRate: 0.1, L2: 3e-2, Epochs: 16, BatchSize: 32}
	m := fit(d, hp.LearningRate, hp.L2, hp.Epochs, hp.BatchSize, newRand(7, 103))
	ma, err := writeModel(ctx, m, hp)
	require.NoError(t, err)
	assert.Equal(t, map[string]string{
		"framework": "sluice-logreg", "trial": "3", "learningRate": "0.1", "l2": "0.03", "epochs": "16", "batchSize": "32",
	}, ma.Metadata)
	gotM, err := readModel(ctx, ma)
	require.NoError(t, err)
	assert.Equal(t, m, gotM)

	ma.Metadata = map[string]string{"framework": "onnx"}
	_, err = readModel(ctx, ma)
	assert.ErrorContains(t, err, `framework "onnx"`)
}

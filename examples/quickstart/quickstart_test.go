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
	"github.com/sluice-ml/sluice/hpo"
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

			// The search ran its 12 trials in 5 rounds of at most four
			// runs, at most two at a time (two MIG slices). ASHA: every
			// trial trained 1 epoch, the best third of them (4) 3 epochs,
			// the best of those 9: 17 runs in all, all succeeded.
			var instances []backends.StepStatus
			for r := range rounds {
				tr := st.Step(trialsStep(r))
				require.NotNil(t, tr, "round %d", r)
				assert.LessOrEqual(t, len(tr.Instances), 4, "round %d", r)
				for i, in := range tr.Instances {
					assert.Equal(t, backends.PhaseSucceeded, in.Phase, "round %d, run %d: %s", r, i, in.Message)
					require.False(t, in.Started.IsZero() || in.Finished.IsZero(), "round %d, run %d has no timestamps", r, i)
				}
				instances = append(instances, tr.Instances...)
			}
			assert.Len(t, instances, 12+4+1)
			assert.LessOrEqual(t, maxOverlap(instances), 2, "two MIG slices")
			res := searchResult(t, st)
			require.Len(t, res.Trials, 12)
			byBudget := map[float64]int{}
			for i, tr := range res.Trials {
				byBudget[tr.Budget]++
				want := hpo.Pruned
				if tr.Budget == 9 {
					want = hpo.Complete
				}
				assert.Equal(t, want, tr.State, "trial %d: %s", i, tr.Error)
				assert.Equal(t, tr.Output.ValLogLoss, tr.Objective, "trial %d: the objective is the validation log-loss", i)
				hp := tr.Params
				assert.True(t, hp.LearningRate >= 0.01 && hp.LearningRate <= 10 && hp.L2 >= 1e-5 && hp.L2 <= 0.1, "trial %d: %v", i, hp)
				assert.Equal(t, HParams{LearningRate: hp.LearningRate, L2: hp.L2, Epochs: int(tr.Budget), BatchSize: 32}, hp, "trial %d: the budget and the fixed field", i)
				require.NotEmpty(t, tr.Rungs, "trial %d", i)
				assert.Equal(t, tr.Objective, tr.Rungs[len(tr.Rungs)-1].Objective, "trial %d: its last rung", i)
			}
			assert.Equal(t, map[float64]int{1: 8, 3: 3, 9: 1}, byBudget, "trials by the epochs they reached")

			// The search picked the trial trained longest (the only one
			// at 9 epochs), and evaluate and publish used that trial.
			assert.Equal(t, 9, res.BestParams.Epochs)
			assert.Equal(t, res.Trials[res.BestTrial].Output, res.BestOutput)
			assert.Less(t, res.BestObjective, 0.25, "a good model was found")

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
				require.FileExists(t, model)
				b, err := os.ReadFile(model)
				require.NoError(t, err)
				var pub struct {
					HP HParams `json:"hp"`
				}
				require.NoError(t, json.Unmarshal(b, &pub))
				assert.Equal(t, res.BestParams, pub.HP, "the best trial's model was published")
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

// The data sets and models travel as artifacts, so that the outputs that
// cross a step boundary in-band are small whatever the data's size: each
// step's, each trial's, and each element of a round's collected trials.
// The search's own steps carry every trial so far: less than Argo's
// budget, but more than a kubejob step may return in-band (they go
// through the artifact store there). The store is a directory with a path
// as long as a real one.
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
			t.Logf("%-17s %5d bytes", s.Name, len(s.Output))
			if s.Name == stepSearch || strings.HasPrefix(s.Name, stepSearch+"-suggest-") {
				assert.Less(t, len(s.Output), 16<<10, "the output of %s: about 800 bytes a trial", s.Name)
				continue
			}
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
		t.Logf("%-17s %5d bytes at most per instance, %d collected", s.Name, most, len(s.Output))
	}
	// Argo keeps a run's outputs in its Workflow object, 1 MiB in all.
	t.Logf("all steps: %d bytes", total)
	assert.Less(t, total, 128<<10, "the run's outputs together")

	// The data went to the store instead: the data set, its three splits
	// and a model per trial, each described in-band by its digest.
	var splits Splits
	require.NoError(t, json.Unmarshal(st.Step(stepSplit).Output, &splits))
	assert.Equal(t, "1400", splits.Train.Metadata["rows"])
	assert.Equal(t, "8", splits.Train.Metadata["features"])
	assert.Equal(t, "application/jsonl", splits.Test.MediaType)
	assert.Greater(t, splits.Train.Size, int64(50_000), "the training rows are not in-band")
	assert.FileExists(t, filepath.Join(store, "quickstart", st.RunID, stepDataset, "data"))
	res := searchResult(t, st)
	best := res.BestOutput
	assert.Equal(t, "sluice-logreg", best.Model.Metadata["framework"])
	assert.Equal(t, strconv.Itoa(res.BestParams.Epochs), best.Model.Metadata["epochs"])
	assert.Equal(t, "sha256:", best.Model.Digest[:7])
	// Its model is where its last run, in some round's fan-out, wrote it.
	p := best.Model.Producer
	require.NotNil(t, p.Instance)
	assert.Equal(t, st.RunID, p.Run)
	assert.FileExists(t, filepath.Join(store, "quickstart", st.RunID, p.Step, strconv.Itoa(*p.Instance), "model"))
}

// rounds is the number of rounds of the search: 12 trials under ASHA
// (1, 3 and 9 epochs), four runs at a time.
const rounds = 5

// trialsStep is the name of round r's fan-out of trials.
func trialsStep(r int) string { return stepSearch + "-trials-" + strconv.Itoa(r) }

// searchResult is the output of the search in the run st.
func searchResult(t *testing.T, st *backends.RunStatus) hpo.Result[HParams, Trial] {
	t.Helper()
	s := st.Step(stepSearch)
	require.NotNil(t, s)
	var res hpo.Result[HParams, Trial]
	require.NoError(t, json.Unmarshal(s.Output, &res))
	return res
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

// The same seed gives the same trials and model, run after run: TPE is
// seeded, as main.go's //go:debug line (which applies to this test binary
// too) allows.
func TestRunIsDeterministic(t *testing.T) {
	var outputs []json.RawMessage
	var trials [][]hpo.Trial[HParams, Trial]
	for range 2 {
		st, err := pipeline.Run(t.Context(), build(), newLocal(), &pipeline.RunOptions{
			Params: map[string]string{"publish_dir": t.TempDir()},
		})
		require.NoError(t, err)
		outputs = append(outputs, st.Step(stepEvaluate).Output)
		res := searchResult(t, st)
		for i := range res.Trials {
			// Models are written per run: same bytes, other URIs.
			res.Trials[i].Output.Model = artifact.Model{Artifact: artifact.Artifact{Digest: res.Trials[i].Output.Model.Digest}}
			// Durations are the local backend's wall clock.
			res.Trials[i].Duration = 0
			for k := range res.Trials[i].Rungs {
				res.Trials[i].Rungs[k].Duration = 0
			}
		}
		trials = append(trials, res.Trials)
	}
	assert.Equal(t, trials[0], trials[1])
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
	assert.Equal(t, "quickstart: valid, 18 steps\n", stdout.String())
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

	tr := plan.Step(trialsStep(0))
	require.NotNil(t, tr)
	require.NotNil(t, tr.ForEach)
	assert.Equal(t, 4, tr.ForEach.Parallelism)
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
	m := fit(tr, 1, 1e-3, 16, 32, 11)
	assert.Greater(t, accuracy(m, va), 0.85)
	assert.Less(t, logLoss(m, va), 0.35)
}

// Training 3 epochs and then 6 more from the checkpoint gives the model
// of 9 epochs at once: what a promoted trial resumes from is exact.
func TestFitResumesWhereItStopped(t *testing.T) {
	d, _ := generate(11, 500, features)
	once := fit(d, 0.5, 1e-3, 9, 32, 11)
	resumed := fitFrom(fit(d, 0.5, 1e-3, 3, 32, 11), d, 0.5, 1e-3, 3, 9, 32, 11)
	assert.Equal(t, once, resumed)
	assert.NotEqual(t, once, fit(d, 0.5, 1e-3, 3, 32, 11))
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

// The search's space is valid, and every trial's hyperparameters are
// in it: Validate checks the space with the rest of the pipeline.
func TestSearchSpace(t *testing.T) {
	require.NoError(t, build().Validate())
	p := pipeline.New("space", nil)
	bad := hpo.Space[HParams]{"LearningRate": hpo.LogFloat(0, 10), "L2": hpo.Fixed(0.0), "Epochs": hpo.Fixed(8)}
	hpo.Search(p, bad, trainTask, func(hp pipeline.Ref[HParams]) TrainIn { return TrainIn{HP: hp} },
		func(t Trial) float64 { return t.ValLogLoss }, &hpo.Options{MaxTrials: 2})
	err := p.Validate()
	require.Error(t, err)
	assert.ErrorContains(t, err, "pipeline.tasks[search].space.LearningRate")
	assert.ErrorContains(t, err, "pipeline.tasks[search].space.BatchSize")
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

	hp := HParams{LearningRate: 0.1, L2: 3e-2, Epochs: 16, BatchSize: 32}
	m := fit(d, hp.LearningRate, hp.L2, hp.Epochs, hp.BatchSize, 7)
	ma, err := writeModel(ctx, m, hp)
	require.NoError(t, err)
	assert.Equal(t, map[string]string{
		"framework": "sluice-logreg", "learningRate": "0.1", "l2": "0.03", "epochs": "16", "batchSize": "32",
	}, ma.Metadata)
	gotM, err := readModel(ctx, ma)
	require.NoError(t, err)
	assert.Equal(t, m, gotM)

	ma.Metadata = map[string]string{"framework": "onnx"}
	_, err = readModel(ctx, ma)
	assert.ErrorContains(t, err, `framework "onnx"`)
}

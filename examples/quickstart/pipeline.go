package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/sluice-ml/sluice/artifact"
	"github.com/sluice-ml/sluice/hpo"
	"github.com/sluice-ml/sluice/pipeline"
	"github.com/sluice-ml/sluice/resources"
	"github.com/sluice-ml/sluice/task"
)

// The quickstart trains a binary classifier end to end:
//
//	make-dataset ─ split ─┬─ search-suggest-0 ─ search-trials-0 (train, four runs a round)
//	                      ├─ search-suggest-1 ─ search-trials-1 (each round knows the earlier ones)
//	                      │  …
//	                      ├─ search-suggest-4 ─ search-trials-4
//	                      │                     └─ search (the best trial)
//	                      └─ evaluate (the best trial's model, on the test set) ─ publish (if accurate enough)
//	report (on exit)
//
// The hyperparameter search is hpo.Search: 12 trials of train, whose
// learning rate and L2 penalty goptuna's TPE chooses from the results of
// the earlier rounds, with ASHA early stopping over the epochs: every
// trial trains 1 epoch, the best third of them 3, the best of those 9,
// a promoted trial continuing from the model its last run wrote (train,
// hpo.Previous). Each round is a suggest step and a fan-out of up to four
// runs (two at once here: the local capacity has two MIG slices), and
// the step "search" gathers the typed hpo.Result. The search is seeded (searchSeed, and the line
// //go:debug randseednop=0 in main.go, which TPE needs to repeat), so
// every run gives the same trials.
//
// Data sets and models travel as artifacts (package artifact, and
// artifacts.go): make-dataset writes its 2 000 rows to the run's artifact
// store, split writes the train, validation and test sets there, and each
// trial writes its model there. What crosses a step boundary in-band is
// only their descriptions — URI, size, digest, metadata, a few hundred
// bytes — and small values: parameters, each trial's hyperparameters and
// validation metrics, the test metrics. So each trial's output fits the
// cluster backends' in-band limits (4 KiB a step on kubejob) whatever the
// data's size; the search's steps, which carry every trial so far, do
// not on kubejob, which then passes them through the artifact store too
// (package artifact promotes them). The store is the run flag -artifacts
// (s3://, gs://, azblob://, a directory); locally it defaults to a
// directory under the user's cache directory.

// Names of the steps, as they appear in run status and on the command line.
const (
	stepDataset  = "make-dataset"
	stepSplit    = "split"
	stepTrain    = "train"  // the trial task; its fan-outs are search-trials-R
	stepSearch   = "search" // the search's result step; its rounds are search-suggest-R and search-trials-R
	stepEvaluate = "evaluate"
	stepPublish  = "publish"
	stepReport   = "report"
)

// features is the width of the synthetic data set.
const features = 8

// Node pools of the target cluster (GKE). The local executor ignores
// placement and schedules against its own capacity (see main.go); compile
// for a cluster backend to see node selectors, tolerations and requests.
var (
	// cpuPool is general-purpose n2-standard-8 nodes: 8 vCPU, 32 GB.
	cpuPool = resources.NodePool{
		Name:     "cpu-pool",
		Provider: resources.ProviderGKE,
		Labels:   map[string]string{"cloud.google.com/gke-nodepool": "cpu-pool"},
		Node:     resources.Capacity{CPU: "8", Memory: "32Gi"},
	}
	// gpuPool is a2-ultragpu-1g nodes (12 vCPU, 170 GB, one A100 80GB)
	// created with gpu-partition-size=1g.10gb, so GKE's managed GPU stack
	// cuts the GPU into seven 1g.10gb MIG partitions, each one
	// nvidia.com/gpu on nodes labelled
	// cloud.google.com/gke-gpu-partition-size=1g.10gb. It has Spot VMs,
	// which trials use; GKE taints GPU nodes with nvidia.com/gpu, which
	// every GPU task tolerates. (A pool running the NVIDIA GPU Operator
	// instead would set GPUStack: resources.GPUStackNVIDIA and its
	// MIGStrategy.)
	gpuPool = resources.NodePool{
		Name:     "gpu-pool",
		Provider: resources.ProviderGKE,
		Labels:   map[string]string{"cloud.google.com/gke-nodepool": "a100-mig"},
		Node:     resources.Capacity{CPU: "12", Memory: "170Gi", GPUModel: "A100-80GB", GPUs: 1, MIG: map[string]int{"1g.10gb": 7}},
		Spot:     true,
	}
)

// Tasks. Each is an immutable definition; every With method returns a
// copy. Tasks without a profile get the pipeline's default one.
var (
	makeDatasetTask = task.New(stepDataset, makeDataset)
	splitTask       = task.New(stepSplit, split)
	evaluateTask    = task.New(stepEvaluate, evaluate)
	publishTask     = task.New(stepPublish, publish)
)

// small is the profile of tasks that only handle a little in-band JSON.
var small = resources.Profile{CPU: "250m", Memory: "256Mi"}

var reportTask = task.New(stepReport, report).WithResources(small)

// trainTask is the GPU step: one trial of the search on a 1g.10gb MIG slice of the
// A100 pool's spot capacity. A preemption consumes the Infra budget (3
// retries), a bug the App budget (1), and the last infra retry falls back
// to on-demand nodes.
var trainTask = task.New(stepTrain, train).
	WithResources(resources.Profile{
		CPU:         "2",
		Memory:      "8Gi",
		MIG:         "1g.10gb",
		NodePool:    gpuPool.Name,
		Preemptible: true,
	}).
	WithRetry(task.Retry{
		App:              1,
		Infra:            3,
		OnDemandFallback: true,
		Backoff:          task.Backoff{Initial: 30 * time.Second, Factor: 2, Max: 5 * time.Minute},
	}).
	WithTimeout(time.Hour)

// build defines the quickstart pipeline.
func build() *pipeline.Pipeline {
	p := pipeline.New("quickstart", &pipeline.Options{
		Defaults: pipeline.Defaults{
			Resources: resources.Profile{CPU: "1", Memory: "2Gi", NodePool: cpuPool.Name},
			Retry:     task.Retry{Infra: 2},
			Timeout:   15 * time.Minute,
		},
		NodePools: []resources.NodePool{cpuPool, gpuPool},
	})
	seed := pipeline.NewParam(p, "seed", int64(7))
	rows := pipeline.NewParam(p, "rows", 2000)
	minAccuracy := pipeline.NewParam(p, "min_accuracy", 0.85)
	publishDir := pipeline.NewParam(p, "publish_dir", "") // empty: $TMPDIR/sluice-quickstart

	data := pipeline.Add(p, makeDatasetTask, DatasetIn{Seed: seed.Ref(), Rows: rows.Ref()})
	splits := pipeline.Add(p, splitTask, SplitIn{Data: data.Output(), Seed: seed.Ref()})
	search := hpo.Search(p, space, trainTask,
		func(hp pipeline.Ref[HParams]) TrainIn {
			return TrainIn{
				Train:      pipeline.Field[artifact.Dataset](splits.Output(), "Train"),
				Validation: pipeline.Field[artifact.Dataset](splits.Output(), "Validation"),
				HP:         hp,
				Seed:       seed.Ref(),
			}
		},
		func(t Trial) float64 { return t.ValLogLoss },
		&hpo.Options{
			Name: stepSearch, Sampler: hpo.TPE, Seed: searchSeed, MaxTrials: 12, ParallelTrials: 4,
			// ASHA over epochs: every trial trains 1 epoch, the best third
			// of them 3, the best third of those 9, each continuing from
			// its checkpoint (train, hpo.Previous).
			EarlyStopping: &hpo.EarlyStopping{Rule: hpo.ASHA, Budget: "Epochs", Min: 1, Max: 9, Eta: 3},
		})
	bestHP := pipeline.Field[HParams](search.Output(), "BestParams")
	best := pipeline.Field[Trial](search.Output(), "BestOutput")
	metrics := pipeline.Add(p, evaluateTask, EvalIn{
		HP:   bestHP,
		Best: best,
		Test: pipeline.Field[artifact.Dataset](splits.Output(), "Test"),
	})
	// The promotion gate: publish only a model at least as accurate as the
	// min_accuracy parameter (-p min_accuracy=0.9).
	accuracy := pipeline.Field[float64](metrics.Output(), "Accuracy")
	pipeline.Add(p, publishTask, PublishIn{HP: bestHP, Best: best, Metrics: metrics.Output(), Dir: publishDir.Ref()}).
		When(pipeline.Compare(accuracy, ">=", minAccuracy.Ref()))
	addServing(p, best, metrics.Output(), pipeline.Field[artifact.Dataset](splits.Output(), "Test"))
	pipeline.OnExit(p, reportTask, ReportIn{Run: p.Status()})
	return p
}

// DatasetIn is the input of make-dataset.
type DatasetIn struct {
	Seed pipeline.Ref[int64] `json:"seed"`
	Rows pipeline.Ref[int]   `json:"rows"`
}

// makeDataset generates the data set and writes it to the artifact
// "data" (JSON lines).
func makeDataset(ctx context.Context, in DatasetIn) (artifact.Dataset, error) {
	if in.Rows.Get() < 20 {
		return artifact.Dataset{}, fmt.Errorf("make-dataset: rows is %d; ask for at least 20", in.Rows.Get())
	}
	d, _ := generate(in.Seed.Get(), in.Rows.Get(), features)
	return writeDataset(ctx, "data", d)
}

// SplitIn is the input of split.
type SplitIn struct {
	Data pipeline.Ref[artifact.Dataset] `json:"data"`
	Seed pipeline.Ref[int64]            `json:"seed"`
}

// Splits are the train, validation and test sets (70/15/15), each an
// artifact of split's.
type Splits struct {
	Train      artifact.Dataset `json:"train"`
	Validation artifact.Dataset `json:"validation"`
	Test       artifact.Dataset `json:"test"`
}

func split(ctx context.Context, in SplitIn) (Splits, error) {
	d, err := readDataset(ctx, in.Data.Get())
	if err != nil {
		return Splits{}, fmt.Errorf("split: %w", err)
	}
	var out Splits
	tr, va, te := splitRows(d, in.Seed.Get())
	for _, s := range []struct {
		name string
		rows Dataset
		to   *artifact.Dataset
	}{{"train", tr, &out.Train}, {"validation", va, &out.Validation}, {"test", te, &out.Test}} {
		if *s.to, err = writeDataset(ctx, s.name, s.rows); err != nil {
			return Splits{}, fmt.Errorf("split: %w", err)
		}
	}
	return out, nil
}

// HParams are the hyperparameters of one trial: the search's space is
// over their fields (hpo.Space, keyed by field name).
type HParams struct {
	LearningRate float64 `json:"learningRate"`
	L2           float64 `json:"l2"`
	Epochs       int     `json:"epochs"`
	BatchSize    int     `json:"batchSize"`
}

func (h HParams) String() string {
	return fmt.Sprintf("lr=%.3g l2=%.3g epochs=%d", h.LearningRate, h.L2, h.Epochs)
}

// space is what the search explores: the learning rate and the L2
// penalty on log scales, the batch size fixed. Epochs is the budget of
// the search's early stopping (hpo.EarlyStopping), which sets it for
// each run of a trial, so the space leaves it out.
var space = hpo.Space[HParams]{
	"LearningRate": hpo.LogFloat(0.01, 10),
	"L2":           hpo.LogFloat(1e-5, 0.1),
	"BatchSize":    hpo.Fixed(32),
}

// searchSeed seeds the search's sampler. It is a constant rather than
// the seed parameter: a search's options are part of the pipeline's
// definition, fixed when it is built.
const searchSeed = 7

// TrainIn is the input of one trial.
type TrainIn struct {
	Train      pipeline.Ref[artifact.Dataset] `json:"train"`
	Validation pipeline.Ref[artifact.Dataset] `json:"validation"`
	HP         pipeline.Ref[HParams]          `json:"hp"`
	Seed       pipeline.Ref[int64]            `json:"seed"`
}

// Trial is the outcome of one trial: its model, an artifact, and its
// validation metrics, in-band for the search to compare (its objective
// is ValLogLoss). The search's result pairs it with its HParams.
type Trial struct {
	Model       artifact.Model `json:"model"`
	ValLogLoss  float64        `json:"valLogLoss"`
	ValAccuracy float64        `json:"valAccuracy"`
}

func train(ctx context.Context, in TrainIn) (Trial, error) {
	hp := in.HP.Get()
	tr, err := readDataset(ctx, in.Train.Get())
	if err != nil {
		return Trial{}, fmt.Errorf("train: %w", err)
	}
	va, err := readDataset(ctx, in.Validation.Get())
	if err != nil {
		return Trial{}, fmt.Errorf("train: %w", err)
	}
	if tr.Len() == 0 || va.Len() == 0 {
		return Trial{}, errors.New("train: empty training or validation set")
	}
	if err := ctx.Err(); err != nil {
		return Trial{}, err
	}
	// A trial that the search promotes to more epochs continues from the
	// model its previous run wrote (its checkpoint), for the epochs it
	// has not trained yet. Every trial shuffles with the same streams, so
	// trials differ only in their hyperparameters and do not depend on
	// the order they run in.
	m, from := Model{Weights: make([]float64, len(tr.X[0]))}, 0
	if prev, epochs, ok := hpo.Previous[Trial](ctx); ok {
		if m, err = readModel(ctx, prev.Model); err != nil {
			return Trial{}, fmt.Errorf("train: resuming from epoch %v: %w", epochs, err)
		}
		from = int(epochs)
	}
	m = fitFrom(m, tr, hp.LearningRate, hp.L2, from, hp.Epochs, hp.BatchSize, in.Seed.Get())
	model, err := writeModel(ctx, m, hp)
	if err != nil {
		return Trial{}, fmt.Errorf("train: %w", err)
	}
	return Trial{Model: model, ValLogLoss: logLoss(m, va), ValAccuracy: accuracy(m, va)}, nil
}

// EvalIn is the input of evaluate.
type EvalIn struct {
	HP   pipeline.Ref[HParams]          `json:"hp"`   // the best trial's hyperparameters
	Best pipeline.Ref[Trial]            `json:"best"` // its outcome
	Test pipeline.Ref[artifact.Dataset] `json:"test"`
}

// Metrics are the chosen model's scores on the held-out test set.
type Metrics struct {
	Accuracy float64 `json:"accuracy"`
	LogLoss  float64 `json:"logLoss"`
	AUC      float64 `json:"auc"`
}

func evaluate(ctx context.Context, in EvalIn) (Metrics, error) {
	best := in.Best.Get()
	model, err := readModel(ctx, best.Model)
	if err != nil {
		return Metrics{}, fmt.Errorf("evaluate: %w", err)
	}
	test, err := readDataset(ctx, in.Test.Get())
	if err != nil {
		return Metrics{}, fmt.Errorf("evaluate: %w", err)
	}
	scores := make([]float64, test.Len())
	for i, x := range test.X {
		scores[i] = model.Prob(x)
	}
	m := Metrics{
		Accuracy: accuracy(model, test),
		LogLoss:  logLoss(model, test),
		AUC:      auc(scores, test.Y),
	}
	fmt.Printf("best trial: %v  val logloss=%.3f  test accuracy=%.3f logloss=%.3f auc=%.3f\n",
		in.HP.Get(), best.ValLogLoss, m.Accuracy, m.LogLoss, m.AUC)
	return m, nil
}

// PublishIn is the input of publish.
type PublishIn struct {
	HP      pipeline.Ref[HParams] `json:"hp"`
	Best    pipeline.Ref[Trial]   `json:"best"`
	Metrics pipeline.Ref[Metrics] `json:"metrics"`
	// Dir is where the model goes; empty means $TMPDIR/sluice-quickstart,
	// chosen where the step runs rather than baked into the manifests.
	Dir pipeline.Ref[string] `json:"dir"`
}

// Published says where the model was written.
type Published struct {
	Path string `json:"path"`
}

// publish "publishes" the model: it reads the model artifact and writes its
// hyperparameters, weights and metrics as JSON. A real pipeline would
// push to a model registry.
func publish(ctx context.Context, in PublishIn) (Published, error) {
	best := in.Best.Get()
	model, err := readModel(ctx, best.Model)
	if err != nil {
		return Published{}, fmt.Errorf("publish: %w", err)
	}
	dir := in.Dir.Get()
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "sluice-quickstart")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return Published{}, fmt.Errorf("publish: %w", err)
	}
	b, err := json.MarshalIndent(struct {
		HP      HParams `json:"hp"`
		Model   Model   `json:"model"`
		Metrics Metrics `json:"metrics"`
	}{in.HP.Get(), model, in.Metrics.Get()}, "", "  ")
	if err != nil {
		return Published{}, fmt.Errorf("publish: %w", err)
	}
	path := filepath.Join(dir, "model.json")
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return Published{}, fmt.Errorf("publish: %w", err)
	}
	fmt.Printf("published model to %s\n", path)
	return Published{Path: path}, nil
}

// ReportIn is the input of the exit handler.
type ReportIn struct {
	Run pipeline.Ref[pipeline.RunInfo] `json:"run"`
}

// report runs last, whatever happened, and says how the run ended.
func report(_ context.Context, in ReportIn) (struct{}, error) {
	run := in.Run.Get()
	line := "quickstart: " + strings.ToLower(string(run.Phase))
	if len(run.Failed) > 0 {
		line += " (failed: " + strings.Join(run.Failed, ", ") + ")"
	}
	fmt.Println(line)
	return struct{}{}, nil
}

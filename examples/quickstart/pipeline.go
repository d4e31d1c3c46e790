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

	"github.com/sluice-ml/sluice/pipeline"
	"github.com/sluice-ml/sluice/resources"
	"github.com/sluice-ml/sluice/task"
)

// The quickstart trains a binary classifier end to end:
//
//	make-dataset ─┐
//	              split ──┐
//	grid ─────────────────┴─ train (for each grid point, 2 at a time)
//	                              └─ select-best ─ evaluate ─ publish (if accurate enough)
//	report (on exit)
//
// Data travels in-band, as the JSON every step boundary uses: 2 000 rows of
// 8 features rounded to 4 decimals are about 130 KB, and the 1 400 training
// rows each trial reads about 90 KB. A real data set would be written to
// object storage by make-dataset and passed on as a URI instead.

// Names of the steps, as they appear in run status and on the command line.
const (
	stepDataset  = "make-dataset"
	stepSplit    = "split"
	stepGrid     = "grid"
	stepTrain    = "train"
	stepSelect   = "select-best"
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
	// whose GPU is cut into seven 1g.10gb MIG slices, exposed by the NVIDIA
	// device plugin with the mixed strategy (nvidia.com/mig-1g.10gb). It
	// has Spot VMs, which trials use; GKE taints GPU nodes with
	// nvidia.com/gpu, which every GPU task tolerates.
	gpuPool = resources.NodePool{
		Name:        "gpu-pool",
		Provider:    resources.ProviderGKE,
		Labels:      map[string]string{"cloud.google.com/gke-nodepool": "a100-mig"},
		Node:        resources.Capacity{CPU: "12", Memory: "170Gi", GPUModel: "A100-80GB", GPUs: 1, MIG: map[string]int{"1g.10gb": 7}},
		MIGStrategy: resources.MIGMixed,
		Spot:        true,
	}
)

// Tasks. Each is an immutable definition; every With method returns a
// copy. Tasks without a profile get the pipeline's default one.
var (
	makeDatasetTask = task.New(stepDataset, makeDataset)
	splitTask       = task.New(stepSplit, split)
	selectTask      = task.New(stepSelect, selectBest)
	evaluateTask    = task.New(stepEvaluate, evaluate)
	publishTask     = task.New(stepPublish, publish)
)

// small is the profile of tasks that only shuffle a little JSON.
var small = resources.Profile{CPU: "250m", Memory: "256Mi"}

var gridTask = task.New(stepGrid, grid).WithResources(small)

var reportTask = task.New(stepReport, report).WithResources(small)

// trainTask is the GPU step: one trial on a 1g.10gb MIG slice of the
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
	points := pipeline.Add(p, gridTask, GridIn{
		LearningRates: []float64{0.1, 1, 5},
		L2:            []float64{1e-3, 3e-2},
		Epochs:        []int{4, 16},
	})
	trials := pipeline.ForEach(p, trainTask, points.Output(), func(hp pipeline.Ref[HParams]) TrainIn {
		return TrainIn{
			Train:      pipeline.Field[Dataset](splits.Output(), "Train"),
			Validation: pipeline.Field[Dataset](splits.Output(), "Validation"),
			HP:         hp,
			Seed:       seed.Ref(),
		}
	}).Limit(2)
	best := pipeline.Add(p, selectTask, SelectIn{Trials: trials.Collect()})
	metrics := pipeline.Add(p, evaluateTask, EvalIn{
		Best: best.Output(),
		Test: pipeline.Field[Dataset](splits.Output(), "Test"),
	})
	// The promotion gate: publish only a model at least as accurate as the
	// min_accuracy parameter (-p min_accuracy=0.9).
	accuracy := pipeline.Field[float64](metrics.Output(), "Accuracy")
	pipeline.Add(p, publishTask, PublishIn{Best: best.Output(), Metrics: metrics.Output(), Dir: publishDir.Ref()}).
		When(pipeline.Compare(accuracy, ">=", minAccuracy.Ref()))
	pipeline.OnExit(p, reportTask, ReportIn{Run: p.Status()})
	return p
}

// DatasetIn is the input of make-dataset.
type DatasetIn struct {
	Seed pipeline.Ref[int64] `json:"seed"`
	Rows pipeline.Ref[int]   `json:"rows"`
}

func makeDataset(_ context.Context, in DatasetIn) (Dataset, error) {
	if in.Rows.Get() < 20 {
		return Dataset{}, fmt.Errorf("make-dataset: rows is %d; ask for at least 20", in.Rows.Get())
	}
	d, _ := generate(in.Seed.Get(), in.Rows.Get(), features)
	return d, nil
}

// SplitIn is the input of split.
type SplitIn struct {
	Data pipeline.Ref[Dataset] `json:"data"`
	Seed pipeline.Ref[int64]   `json:"seed"`
}

// Splits are the train, validation and test sets (70/15/15).
type Splits struct {
	Train      Dataset `json:"train"`
	Validation Dataset `json:"validation"`
	Test       Dataset `json:"test"`
}

func split(_ context.Context, in SplitIn) (Splits, error) {
	tr, va, te := splitRows(in.Data.Get(), in.Seed.Get())
	return Splits{Train: tr, Validation: va, Test: te}, nil
}

// GridIn is the search space: every combination is one trial.
type GridIn struct {
	LearningRates []float64 `json:"learningRates"`
	L2            []float64 `json:"l2"`
	Epochs        []int     `json:"epochs"`
}

// HParams are the hyperparameters of one trial.
type HParams struct {
	Trial        int     `json:"trial"`
	LearningRate float64 `json:"learningRate"`
	L2           float64 `json:"l2"`
	Epochs       int     `json:"epochs"`
	BatchSize    int     `json:"batchSize"`
}

func (h HParams) String() string {
	return fmt.Sprintf("lr=%g l2=%g epochs=%d", h.LearningRate, h.L2, h.Epochs)
}

func grid(_ context.Context, in GridIn) ([]HParams, error) {
	var out []HParams
	for _, lr := range in.LearningRates {
		for _, l2 := range in.L2 {
			for _, e := range in.Epochs {
				out = append(out, HParams{Trial: len(out), LearningRate: lr, L2: l2, Epochs: e, BatchSize: 32})
			}
		}
	}
	if len(out) == 0 {
		return nil, errors.New("grid: the search space is empty")
	}
	return out, nil
}

// TrainIn is the input of one trial.
type TrainIn struct {
	Train      pipeline.Ref[Dataset] `json:"train"`
	Validation pipeline.Ref[Dataset] `json:"validation"`
	HP         pipeline.Ref[HParams] `json:"hp"`
	Seed       pipeline.Ref[int64]   `json:"seed"`
}

// Trial is the outcome of one trial: its model and validation metrics.
type Trial struct {
	HP          HParams `json:"hp"`
	Model       Model   `json:"model"`
	ValLogLoss  float64 `json:"valLogLoss"`
	ValAccuracy float64 `json:"valAccuracy"`
}

func train(ctx context.Context, in TrainIn) (Trial, error) {
	hp, tr, va := in.HP.Get(), in.Train.Get(), in.Validation.Get()
	if tr.Len() == 0 || va.Len() == 0 {
		return Trial{}, errors.New("train: empty training or validation set")
	}
	if err := ctx.Err(); err != nil {
		return Trial{}, err
	}
	// Each trial shuffles with its own stream: trials are independent of
	// each other and of the order they run in.
	m := fit(tr, hp.LearningRate, hp.L2, hp.Epochs, hp.BatchSize, newRand(in.Seed.Get(), 100+uint64(hp.Trial)))
	return Trial{HP: hp, Model: m, ValLogLoss: logLoss(m, va), ValAccuracy: accuracy(m, va)}, nil
}

// SelectIn is the fan-in of all trials.
type SelectIn struct {
	Trials pipeline.Ref[[]Trial] `json:"trials"`
}

func selectBest(_ context.Context, in SelectIn) (Trial, error) {
	trials := in.Trials.Get()
	if len(trials) == 0 {
		return Trial{}, errors.New("select-best: no trials")
	}
	return bestTrial(trials), nil
}

// bestTrial returns the trial with the lowest validation log-loss; ties go
// to the higher accuracy, then to the earlier trial.
func bestTrial(trials []Trial) Trial {
	best := trials[0]
	for _, t := range trials[1:] {
		if t.ValLogLoss < best.ValLogLoss || t.ValLogLoss == best.ValLogLoss && t.ValAccuracy > best.ValAccuracy {
			best = t
		}
	}
	return best
}

// EvalIn is the input of evaluate.
type EvalIn struct {
	Best pipeline.Ref[Trial]   `json:"best"`
	Test pipeline.Ref[Dataset] `json:"test"`
}

// Metrics are the chosen model's scores on the held-out test set.
type Metrics struct {
	Accuracy float64 `json:"accuracy"`
	LogLoss  float64 `json:"logLoss"`
	AUC      float64 `json:"auc"`
}

func evaluate(_ context.Context, in EvalIn) (Metrics, error) {
	best, test := in.Best.Get(), in.Test.Get()
	scores := make([]float64, test.Len())
	for i, x := range test.X {
		scores[i] = best.Model.Prob(x)
	}
	m := Metrics{
		Accuracy: accuracy(best.Model, test),
		LogLoss:  logLoss(best.Model, test),
		AUC:      auc(scores, test.Y),
	}
	fmt.Printf("best trial: %v  val logloss=%.3f  test accuracy=%.3f logloss=%.3f auc=%.3f\n",
		best.HP, best.ValLogLoss, m.Accuracy, m.LogLoss, m.AUC)
	return m, nil
}

// PublishIn is the input of publish.
type PublishIn struct {
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

// publish "publishes" the model: it writes its hyperparameters, weights and
// metrics as JSON. A real pipeline would push to a model registry.
func publish(_ context.Context, in PublishIn) (Published, error) {
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
	}{in.Best.Get().HP, in.Best.Get().Model, in.Metrics.Get()}, "", "  ")
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

package hpo_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log"
	"math"

	"github.com/sluice-ml/sluice/backends/local"
	"github.com/sluice-ml/sluice/hpo"
	"github.com/sluice-ml/sluice/pipeline"
	"github.com/sluice-ml/sluice/task"
)

// Point is the hyperparameter struct: Branin's two inputs.
type Point struct {
	X1 float64
	X2 float64
}

// BraninIn is a trial's input; a real trial would also take a dataset.
type BraninIn struct {
	P pipeline.Ref[Point]
}

// BraninOut is a trial's output.
type BraninOut struct {
	Value float64
}

// branin is the Branin-Hoo function, whose minimum is 0.397887 at
// (-π, 12.275), (π, 2.275) and (9.42478, 2.475).
func branin(x1, x2 float64) float64 {
	const a, b, c, r, s, t = 1, 5.1 / (4 * math.Pi * math.Pi), 5 / math.Pi, 6, 10, 1 / (8 * math.Pi)
	return a*math.Pow(x2-b*x1*x1+c*x1-r, 2) + s*(1-t)*math.Cos(x1) + s
}

var evaluate = task.New("branin", func(ctx context.Context, in BraninIn) (BraninOut, error) {
	p := in.P.Get()
	return BraninOut{Value: branin(p.X1, p.X2)}, nil
})

// A CMA-ES search over Branin's domain: 60 trials in 15 rounds of 4, run
// on the local backend. The result step's output is a typed hpo.Result;
// the same seed gives the same trials on every backend.
func ExampleSearch() {
	p := pipeline.New("branin", nil)
	space := hpo.Space[Point]{
		"X1": hpo.Float(-5, 10),
		"X2": hpo.Float(0, 15),
	}
	search := hpo.Search(p, space, evaluate,
		func(pt pipeline.Ref[Point]) BraninIn { return BraninIn{P: pt} },
		func(out BraninOut) float64 { return out.Value },
		&hpo.Options{Sampler: hpo.CMAES, Seed: 4, MaxTrials: 60, ParallelTrials: 4})

	st, err := pipeline.Run(context.Background(), p, local.New(nil), nil)
	if err != nil {
		log.Fatal(err)
	}
	var res hpo.Result[Point, BraninOut]
	if err := json.Unmarshal(st.Step(search.Name()).Output, &res); err != nil {
		log.Fatal(err)
	}
	fmt.Println(len(st.Steps), "steps,", len(res.Trials), "trials")
	fmt.Printf("best: trial %d, x1=%.2f x2=%.2f, branin %.3f\n", res.BestTrial, res.BestParams.X1, res.BestParams.X2, res.BestObjective)
	// Output:
	// 31 steps, 60 trials
	// best: trial 46, x1=3.07 x2=2.51, branin 0.454
}

// Epochs is the budget of an early-stopping search: the search sets it.
type Epochs struct {
	X      float64
	Epochs int
}

type EpochsIn struct {
	HP pipeline.Ref[Epochs]
}

// EpochsOut names the trial's checkpoint; a real trial would write one
// as an artifact.
type EpochsOut struct {
	Loss       float64
	Checkpoint string
}

// Successive halving (ASHA) over the epochs a trial trains: 9 trials at
// 1 epoch, the best 3 go on to 3 epochs and the best of those to 9, each
// continuing from its checkpoint (hpo.Previous). Three rounds of at most
// 9 runs.
func ExampleSearch_earlyStopping() {
	train := task.New("train", func(ctx context.Context, in EpochsIn) (EpochsOut, error) {
		hp := in.HP.Get()
		from := 0
		if prev, prevEpochs, ok := hpo.Previous[EpochsOut](ctx); ok {
			_ = prev.Checkpoint // load the model from it, then train the remaining epochs
			from = int(prevEpochs)
		}
		// Train epochs from+1 … hp.Epochs; here, a loss that falls with
		// the epochs.
		loss := (hp.X-0.3)*(hp.X-0.3) + 1/float64(hp.Epochs)
		return EpochsOut{Loss: loss, Checkpoint: fmt.Sprintf("x%.1f-e%d (%d epochs trained now)", hp.X, hp.Epochs, hp.Epochs-from)}, nil
	})
	p := pipeline.New("asha", nil)
	search := hpo.Search(p, hpo.Space[Epochs]{"X": hpo.FloatStep(0, 0.8, 0.1)}, train,
		func(hp pipeline.Ref[Epochs]) EpochsIn { return EpochsIn{HP: hp} },
		func(out EpochsOut) float64 { return out.Loss },
		&hpo.Options{Sampler: hpo.Grid, MaxTrials: 9, ParallelTrials: 9,
			EarlyStopping: &hpo.EarlyStopping{Rule: hpo.ASHA, Budget: "Epochs", Min: 1, Max: 9, Eta: 3}})

	st, err := pipeline.Run(context.Background(), p, local.New(nil), nil)
	if err != nil {
		log.Fatal(err)
	}
	var res hpo.Result[Epochs, EpochsOut]
	if err := json.Unmarshal(st.Step(search.Name()).Output, &res); err != nil {
		log.Fatal(err)
	}
	runs := map[float64]int{}
	states := map[hpo.State]int{}
	for _, t := range res.Trials {
		states[t.State]++
		for _, r := range t.Rungs {
			runs[r.Budget]++
		}
	}
	fmt.Println("runs at 1, 3, 9 epochs:", runs[1], runs[3], runs[9])
	fmt.Println("pruned:", states[hpo.Pruned], "complete:", states[hpo.Complete])
	fmt.Printf("best: trial %d, x=%.1f epochs=%d, checkpoint %s\n", res.BestTrial, res.BestParams.X, res.BestParams.Epochs, res.BestOutput.Checkpoint)
	// Output:
	// runs at 1, 3, 9 epochs: 9 3 1
	// pruned: 8 complete: 1
	// best: trial 3, x=0.3 epochs=9, checkpoint x0.3-e9 (6 epochs trained now)
}

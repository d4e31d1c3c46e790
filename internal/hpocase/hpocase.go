// Package hpocase holds the hpo.Search that the backends' tests run to
// check that a search gives the same trials on them as on the local
// backend.
package hpocase

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sluice-ml/sluice/backends"
	"github.com/sluice-ml/sluice/backends/local"
	"github.com/sluice-ml/sluice/hpo"
	"github.com/sluice-ml/sluice/pipeline"
	"github.com/sluice-ml/sluice/task"
)

// XY are the hyperparameters.
type XY struct{ X, Y float64 }

// In is a trial's input.
type In struct{ P pipeline.Ref[XY] }

// Search returns a pipeline "tune" with an adaptive search (CMA-ES, 12
// trials in four rounds of three) over a quadratic whose minimum is 0 at
// (1, -2), and the name of the search's result step. With goal, the
// search stops once a trial's objective is at most 4.
func Search(goal bool) (*pipeline.Pipeline, string) { return search(goal, 0) }

// FailingBudget is the MaxFailedTrials of SearchFailing.
const FailingBudget = 2

// SearchFailing is Search without a goal whose trials fail (an error)
// when X is above 2, tolerating FailingBudget failed trials.
func SearchFailing() (*pipeline.Pipeline, string) { return search(false, 2) }

// Quad is the container trial of SearchContainer: a shell script that
// prints the quadratic of Search at its input with awk, every digit of
// the double, into its output file.
func Quad() task.Task[QuadIn, QuadOut] {
	return task.Container[QuadIn, QuadOut]("f", QuadImage).
		WithCommand("/bin/sh", "-c", `awk -v x="$1" -v y="$2" 'BEGIN { printf "%.17g\n", (x-1)*(x-1) + (y+2)*(y+2) }' > "$3"`, "sh").
		WithArgs("{{.x}}", "{{.y}}", "{{outputs.loss}}")
}

// QuadImage is Quad's image: any with /bin/sh and awk.
const QuadImage = "registry.example/quad:1"

// QuadIn is Quad's input: each hyperparameter a field its command line
// takes through a placeholder.
type QuadIn struct {
	X pipeline.Ref[float64] `json:"x"`
	Y pipeline.Ref[float64] `json:"y"`
}

// QuadOut is Quad's output, the file its script writes.
type QuadOut struct {
	Loss float64 `json:"loss"`
}

// SearchContainer is Search(false) with a container trial (Quad): the
// trials run as the container they are, and the suggest steps read their
// outputs in the order of the round's proposals.
func SearchContainer() (*pipeline.Pipeline, string) {
	p := pipeline.New("tune", nil)
	s := hpo.Search(p, hpo.Space[XY]{"X": hpo.Float(-5, 5), "Y": hpo.Float(-5, 5)}, Quad(),
		func(v pipeline.Ref[XY]) QuadIn {
			return QuadIn{X: pipeline.Field[float64](v, "X"), Y: pipeline.Field[float64](v, "Y")}
		},
		func(o QuadOut) float64 { return o.Loss },
		&hpo.Options{Sampler: hpo.CMAES, Seed: 5, MaxTrials: 12, ParallelTrials: 3})
	return p, s.Name()
}

func search(goal bool, failAbove float64) (*pipeline.Pipeline, string) {
	p := pipeline.New("tune", nil)
	f := task.New("f", func(ctx context.Context, in In) (float64, error) {
		v := in.P.Get()
		if failAbove > 0 && v.X > failAbove {
			return 0, fmt.Errorf("X %v is above %v", v.X, failAbove)
		}
		return (v.X-1)*(v.X-1) + (v.Y+2)*(v.Y+2), nil
	})
	opts := &hpo.Options{Sampler: hpo.CMAES, Seed: 5, MaxTrials: 12, ParallelTrials: 3}
	if goal {
		opts.Goal = new(4.0)
	}
	if failAbove > 0 {
		opts.MaxFailedTrials = FailingBudget
	}
	s := hpo.Search(p, hpo.Space[XY]{"X": hpo.Float(-5, 5), "Y": hpo.Float(-5, 5)}, f,
		func(v pipeline.Ref[XY]) In { return In{P: v} },
		func(v float64) float64 { return v },
		opts)
	return p, s.Name()
}

// RunLikeLocal runs Search(goal) on b and on the local backend and fails
// t unless both give the same Result; it returns that Result as JSON
// values.
func RunLikeLocal(t *testing.T, b backends.Backend, goal bool) map[string]any {
	t.Helper()
	return runLikeLocal(t, b, func() (*pipeline.Pipeline, string) { return Search(goal) })
}

// RunFailingLikeLocal runs SearchFailing on b and on the local backend
// and fails t unless both give the same Result, with at least one and at
// most FailingBudget failed trials; it returns that Result as JSON
// values.
func RunFailingLikeLocal(t *testing.T, b backends.Backend) map[string]any {
	t.Helper()
	res := runLikeLocal(t, b, SearchFailing)
	failed := 0
	trials, _ := res["trials"].([]any)
	for _, tr := range trials {
		if m, _ := tr.(map[string]any); m["state"] == "failed" {
			failed++
		}
	}
	assert.Positive(t, failed, "some trials failed")
	assert.LessOrEqual(t, failed, FailingBudget, "within the budget")
	return res
}

// XYSteps are the hyperparameters of SearchEarlyStopping: Steps is the
// budget.
type XYSteps struct {
	X, Y  float64
	Steps int
}

// StepsIn is a trial's input in SearchEarlyStopping.
type StepsIn struct{ P pipeline.Ref[XYSteps] }

// StepsOut is a trial's output in SearchEarlyStopping: its loss and the
// budget of the run it continued (hpo.Previous), 0 for a first run.
type StepsOut struct {
	Loss float64
	From float64
}

// SearchEarlyStopping returns a pipeline "tune" with a search that stops
// trials early (ASHA, eta 3, budgets 1, 3 and 9 steps: 9 trials, 3
// rounds of at most 9 runs) over the quadratic of Search plus 1/steps,
// and the name of its result step.
func SearchEarlyStopping() (*pipeline.Pipeline, string) {
	p := pipeline.New("tune", nil)
	f := task.New("f", func(ctx context.Context, in StepsIn) (StepsOut, error) {
		v := in.P.Get()
		_, from, _ := hpo.Previous[StepsOut](ctx)
		return StepsOut{Loss: (v.X-1)*(v.X-1) + (v.Y+2)*(v.Y+2) + 1/float64(v.Steps), From: from}, nil
	})
	s := hpo.Search(p, hpo.Space[XYSteps]{"X": hpo.Float(-5, 5), "Y": hpo.Float(-5, 5)}, f,
		func(v pipeline.Ref[XYSteps]) StepsIn { return StepsIn{P: v} },
		func(o StepsOut) float64 { return o.Loss },
		&hpo.Options{Seed: 5, MaxTrials: 9, ParallelTrials: 9,
			EarlyStopping: &hpo.EarlyStopping{Rule: hpo.ASHA, Budget: "Steps", Min: 1, Max: 9}})
	return p, s.Name()
}

// RunEarlyStoppingLikeLocal runs SearchEarlyStopping on b and on the
// local backend and fails t unless both give the same Result, with 8
// trials pruned and the best one at 9 steps, continued from its run at
// 3; it returns that Result as JSON values.
func RunEarlyStoppingLikeLocal(t *testing.T, b backends.Backend) map[string]any {
	t.Helper()
	res := runLikeLocal(t, b, SearchEarlyStopping)
	states := map[any]int{}
	trials, _ := res["trials"].([]any)
	for _, tr := range trials {
		m, _ := tr.(map[string]any)
		states[m["state"]]++
	}
	assert.Equal(t, map[any]int{"pruned": 8, "complete": 1}, states)
	assert.Equal(t, map[string]any{"Loss": res["bestObjective"], "From": 3.0}, res["bestOutput"], "the last run resumed from the one at 3 steps")
	return res
}

func runLikeLocal(t *testing.T, b backends.Backend, build func() (*pipeline.Pipeline, string)) map[string]any {
	t.Helper()
	var out [2]map[string]any
	for i, be := range []backends.Backend{b, local.New(nil)} {
		p, name := build()
		st, err := pipeline.Run(t.Context(), p, be, nil)
		require.NoError(t, err, "%+v", st)
		require.NoError(t, json.Unmarshal(st.Step(name).Output, &out[i]))
		DropVolatile(out[i])
	}
	assert.Equal(t, out[1], out[0], "the Result on the backend, then locally")
	return out[0]
}

// volatileKeys are output fields that differ between two correct runs of
// the same pipeline, left out of comparisons: a search's trial durations
// (the wall clock of whichever machine ran them) and the descriptions of
// its report's files (in each run's own store, written at their own
// times). No other case of the suites has fields of those names.
var volatileKeys = []string{"duration", "files"}

// DropVolatile deletes volatileKeys from every object in v, a decoded
// JSON value.
func DropVolatile(v any) {
	switch v := v.(type) {
	case map[string]any:
		for _, k := range volatileKeys {
			delete(v, k)
		}
		for _, e := range v {
			DropVolatile(e)
		}
	case []any:
		for _, e := range v {
			DropVolatile(e)
		}
	}
}

package local_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log"

	"github.com/sluice-ml/sluice/backends/local"
	"github.com/sluice-ml/sluice/pipeline"
	"github.com/sluice-ml/sluice/task"
)

type PrepIn struct{ Source string }

type Dataset struct{ Rows int }

type FitIn struct {
	Data pipeline.Ref[Dataset]
	LR   pipeline.Ref[float64]
}

type Model struct{ Loss float64 }

var (
	prep = task.New("prep", func(_ context.Context, in PrepIn) (Dataset, error) {
		return Dataset{Rows: 100 * len(in.Source)}, nil
	})
	fit = task.New("fit", func(_ context.Context, in FitIn) (Model, error) {
		return Model{Loss: in.LR.Get() * 1000 / float64(in.Data.Get().Rows)}, nil
	})
)

func buildChurn() *pipeline.Pipeline {
	p := pipeline.New("churn", nil)
	lr := pipeline.NewParam(p, "lr", 0.5)
	data := pipeline.Add(p, prep, PrepIn{Source: "s3://b/raw"})
	pipeline.Add(p, fit, FitIn{Data: data.Output(), LR: lr.Ref()}).
		When(pipeline.Gt(pipeline.Field[int](data.Output(), "Rows"), 0))
	return p
}

// A pipeline runs in process: Go tasks are function calls.
func Example() {
	st, err := pipeline.Run(context.Background(), buildChurn(), local.New(nil), &pipeline.RunOptions{
		Params: map[string]string{"lr": "0.1"},
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(st.RunID, st.Phase)
	for _, s := range st.Steps {
		fmt.Println(s.Name, s.Phase, string(s.Output))
	}
	// Output:
	// churn-1 Succeeded
	// prep Succeeded {"Rows":1000}
	// fit Succeeded {"Loss":0.1}
}

// A dry run runs nothing; what each step would run with is in the
// compiled record.
func Example_dryRun() {
	st, err := pipeline.Run(context.Background(), buildChurn(), local.New(&local.Options{DryRun: true}), nil)
	if err != nil {
		log.Fatal(err)
	}
	for _, s := range st.Steps {
		fmt.Printf("%s %s: %s\n", s.Name, s.Phase, s.Message)
	}
	// Output:
	// prep Succeeded: dry run
	// fit Succeeded: dry run; condition prep.Rows > 0 depends on run-time values
}

// CacheDiff explains why a step missed the cache. The cache stores the key
// parts next to each entry; a miss also reports the difference in the
// step's message.
func ExampleCacheDiff() {
	old := local.KeyParts{Task: "fit", Kind: task.KindGo, Input: json.RawMessage(`{"Data":{"Rows":1000},"LR":0.5}`)}
	now := old
	now.Input = json.RawMessage(`{"Data":{"Rows":1000},"LR":0.1}`)
	fmt.Println(local.CacheDiff(old, now))
	// Output:
	// [input LR changed]
}

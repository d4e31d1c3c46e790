// This file is the example of the top-level README.md, verbatim from the
// type declarations on, so that the README cannot show code that does not
// compile or pass. Keep the two in step.
package main_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/sluice-ml/sluice/backends/local"
	"github.com/sluice-ml/sluice/pipeline"
	"github.com/sluice-ml/sluice/resources"
	"github.com/sluice-ml/sluice/task"
)

type TrainIn struct {
	Rows pipeline.Ref[[]float64] // an upstream step's output: a typed edge
	LR   pipeline.Ref[float64]   // a run-time parameter (-p lr=0.1)
}

type Model struct{ Weight, Loss float64 }

var (
	load = task.New("load", func(ctx context.Context, _ struct{}) ([]float64, error) {
		return []float64{1, 2, 3, 4}, nil
	})
	train = task.New("train", func(ctx context.Context, in TrainIn) (Model, error) {
		var m Model // fit y = w·x to y = 2x by gradient descent
		for range 100 {
			for _, x := range in.Rows.Get() {
				m.Weight -= in.LR.Get() * (m.Weight*x - 2*x) * x
			}
		}
		m.Loss = (m.Weight - 2) * (m.Weight - 2)
		return m, nil
	}).WithResources(resources.Profile{CPU: "1", Memory: "2Gi"})
)

func build() *pipeline.Pipeline {
	p := pipeline.New("churn", nil)
	lr := pipeline.NewParam(p, "lr", 0.01)
	data := pipeline.Add(p, load, struct{}{})
	pipeline.Add(p, train, TrainIn{Rows: data.Output(), LR: lr.Ref()})
	return p
}

func TestChurn(t *testing.T) {
	st, err := pipeline.Run(t.Context(), build(), local.New(nil),
		&pipeline.RunOptions{Params: map[string]string{"lr": "0.02"}})
	if err != nil {
		t.Fatal(err)
	}
	var m Model
	if err := json.Unmarshal(st.Step("train").Output, &m); err != nil || m.Loss > 1e-6 {
		t.Fatalf("train gave %+v (%v); want the weight 2", m, err)
	}
}

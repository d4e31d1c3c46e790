package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"

	"k8s.io/utils/ptr"

	"github.com/sluice-ml/sluice/artifact"
	"github.com/sluice-ml/sluice/pipeline"
	"github.com/sluice-ml/sluice/serve"
	"github.com/sluice-ml/sluice/task"
)

// Serving: the search's best model is registered in the model registry
// (in the artifact store), deployed only when its test AUC beats the live
// version's (the first one needs 0.8), and then called once, for real.
// Locally the deploy step serves it in this process (a local-only
// target); "go run ./examples/quickstart serve -model URI" serves any
// model artifact of this program for a person to try in a browser, and
// "go run ./examples/quickstart models" lists the registry.

const (
	stepCandidate = "candidate"
	stepTry       = "try"
)

// Features is one row to score: what the served model takes.
type Features struct {
	X []float64 `json:"x"`
}

// Score is what it answers.
type Score struct {
	Probability float64 `json:"probability"` // P(y=1 | x)
	Label       int     `json:"label"`       // 1 when Probability ≥ 0.5
}

// predictor serves this program's logistic regressions.
var predictor = serve.Predictor[Features, Score]{
	Name:        "quickstart",
	Description: "the quickstart's logistic regression: P(y=1 | x) for 8 features",
	Example:     Features{X: []float64{0.5, -1, 0.25, 2, -0.5, 1, 0, -2}},
	Load: func(ctx context.Context, m serve.Model) (serve.Func[Features, Score], error) {
		b, err := serve.ReadModel(ctx, m) // checked against the digest
		if err != nil {
			return nil, err
		}
		var model Model
		if err := json.Unmarshal(b, &model); err != nil {
			return nil, fmt.Errorf("not a quickstart model: %w", err)
		}
		return func(_ context.Context, in Features) (Score, error) {
			if len(in.X) != len(model.Weights) {
				return Score{}, &serve.InputError{Field: "x", Reason: fmt.Sprintf("give %d features, not %d", len(model.Weights), len(in.X))}
			}
			p := model.Prob(in.X)
			label := 0
			if p >= 0.5 {
				label = 1
			}
			return Score{Probability: p, Label: label}, nil
		}, nil
	},
}

func init() { serve.Register(predictor) }

// target is where the model goes: on a cluster, a Deployment of this
// program's image in its serve mode; in this example, only ever the
// local process (LocalOnly below).
var target = serve.Target{
	Name:     "quickstart",
	Level:    serve.Dev,
	Platform: serve.Kubernetes,
	Runtime:  serve.Runtime{Format: serve.GoModel, Image: image},
}

// CandidateIn is the input of candidate.
type CandidateIn struct {
	Best    pipeline.Ref[Trial]   `json:"best"`
	Metrics pipeline.Ref[Metrics] `json:"metrics"`
}

// candidate names the best trial's model and its test metrics as a
// candidate for deployment.
func candidate(_ context.Context, in CandidateIn) (serve.Candidate, error) {
	m := in.Metrics.Get()
	return serve.Candidate{
		Model:   in.Best.Get().Model,
		Metrics: map[string]float64{"auc": m.AUC, "accuracy": m.Accuracy, "logloss": m.LogLoss},
	}, nil
}

// TryIn is the input of try.
type TryIn struct {
	Deployed pipeline.Ref[serve.Deployed]   `json:"deployed"`
	Test     pipeline.Ref[artifact.Dataset] `json:"test"`
}

// Tried is what the served model answered for the first test row.
type Tried struct {
	Score Score `json:"score"`
	Label int   `json:"label"` // the row's true label
}

// try sends the first test row to the served model, as any client would
// (KServe's v1 JSON protocol), and prints the prediction.
func try(ctx context.Context, in TryIn) (Tried, error) {
	d := in.Deployed.Get()
	if d.Endpoint == "" {
		fmt.Printf("not served: %s\n", d.Decision.Reason)
		return Tried{}, nil
	}
	test, err := readDataset(ctx, in.Test.Get())
	if err != nil {
		return Tried{}, fmt.Errorf("try: %w", err)
	}
	body, err := json.Marshal(map[string]any{"instances": []Features{{X: test.X[0]}}})
	if err != nil {
		return Tried{}, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.Endpoint+"/v1/models/"+predictor.Name+":predict", bytes.NewReader(body))
	if err != nil {
		return Tried{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return Tried{}, fmt.Errorf("try: %w", err)
	}
	defer resp.Body.Close()
	var out struct {
		Predictions []Score `json:"predictions"`
		Error       string  `json:"error"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != http.StatusOK || len(out.Predictions) != 1 {
		return Tried{}, fmt.Errorf("try: %s answered %s: %v %s", d.Endpoint, resp.Status, err, out.Error)
	}
	t := Tried{Score: out.Predictions[0], Label: int(test.Y[0])}
	fmt.Printf("served %s at %s: P(y=1)=%.3f for the first test row (label %d)\n", d.Serving, d.Endpoint, t.Score.Probability, t.Label)
	return t, nil
}

var (
	candidateTask = task.New(stepCandidate, candidate).WithResources(small)
	tryTask       = task.New(stepTry, try).WithResources(small)
)

// addServing adds the candidate, deploy and try steps.
func addServing(p *pipeline.Pipeline, best pipeline.Ref[Trial], metrics pipeline.Ref[Metrics], test pipeline.Ref[artifact.Dataset]) {
	c := pipeline.Add(p, candidateTask, CandidateIn{Best: best, Metrics: metrics})
	d := serve.Deploy(p, target, c.Output(), &serve.DeployOptions{
		LocalOnly: true,
		Gate:      serve.Gate{Metric: "auc", Better: serve.Higher, Threshold: ptr.To(0.8)},
	})
	pipeline.Add(p, tryTask, TryIn{Deployed: d.Output(), Test: test})
}

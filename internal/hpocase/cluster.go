package hpocase

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/sluice-ml/sluice/hpo"
	"github.com/sluice-ml/sluice/pipeline"
	"github.com/sluice-ml/sluice/task"
)

// Names of the searches Build knows. A program whose pods run a search's
// steps (the e2e tests' image) builds the search by name, as the test
// process that compiles and orchestrates it does.
const (
	// Adaptive is Search(false).
	Adaptive = "hpo-adaptive"
	// Goal is Search(true).
	Goal = "hpo-goal"
	// Failing is SearchFailing.
	Failing = "hpo-failing"
	// OverBudget is SearchOverBudget: a suggest step counts more failed
	// trials than FailingBudget.
	OverBudget = "hpo-over-budget"
	// OverBudgetRound is SearchOverBudgetRound: one round's fan-out has
	// more failed trials than FailingBudget.
	OverBudgetRound = "hpo-over-budget-round"
	// Large is SearchLarge.
	Large = "hpo-large"
	// Container is SearchContainer.
	Container = "hpo-container"
)

// Names returns every name Build knows.
func Names() []string {
	return []string{Adaptive, Goal, Failing, OverBudget, OverBudgetRound, Large, Container}
}

// Build returns a new copy of search name and the name of the step whose
// output the tests compare (the search's Result, or for Large its
// Digest), or nil and "".
func Build(name string) (*pipeline.Pipeline, string) {
	switch name {
	case Adaptive:
		return Search(false)
	case Goal:
		return Search(true)
	case Failing:
		return SearchFailing()
	case OverBudget:
		return SearchOverBudget()
	case OverBudgetRound:
		return SearchOverBudgetRound()
	case Large:
		return SearchLarge()
	case Container:
		return SearchContainer()
	}
	return nil, ""
}

// SearchOverBudget is SearchFailing with trials failing when X is above
// 0.5: with the seed, each round's fan-out tolerates its failures (at
// most FailingBudget), but the third round brings the count to four and
// the fourth suggest step fails the search, naming the failed trials.
func SearchOverBudget() (*pipeline.Pipeline, string) { return search(false, 0.5) }

// SearchOverBudgetRound is SearchFailing with trials failing when X is
// above 1: with the seed, all three trials of the fourth round fail, more
// than its fan-out tolerates, and that fan-out fails the search.
func SearchOverBudgetRound() (*pipeline.Pipeline, string) { return search(false, 1) }

// LargeTrials is the number of trials of SearchLarge, and LargeLog the
// length of each trial's Log.
const (
	LargeTrials = 40
	LargeLog    = 600
)

// LargeOut is the output of a trial of SearchLarge: the objective and a
// log that makes the search's state large.
type LargeOut struct {
	Loss float64
	Log  string
}

// Digest sums up a search's Result in a few hundred bytes, so that a
// Result too large to travel in-band (and deleted from the artifact store
// when its run ends) can still be compared after the run: the best
// trial, the trials' states and the SHA-256 of the whole Result's JSON.
type Digest struct {
	BestTrial     int
	BestObjective float64
	BestParams    XY
	States        map[hpo.State]int
	Stopped       string `json:",omitempty"`
	SHA256        string
}

// SearchLarge returns a pipeline "tune" with a random search of
// LargeTrials trials (five rounds of eight) whose outputs carry a log of
// LargeLog bytes, and the name of a step "digest" after it whose output
// is the Result's Digest. The search's state outgrows the in-band limits:
// from the second round on, every suggest step's output is larger than
// kubejob's 4 KiB termination message, and the Result (about 27 KB) is
// larger than an Argo output parameter's 16 KiB, so on a cluster backend
// the search runs only with an artifact store, which carries them as
// promoted values.
func SearchLarge() (*pipeline.Pipeline, string) {
	p := pipeline.New("tune", nil)
	f := task.New("f", func(ctx context.Context, in In) (LargeOut, error) {
		v := in.P.Get()
		line := fmt.Sprintf("x=%.6f y=%.6f; ", v.X, v.Y)
		log := strings.Repeat(line, LargeLog/len(line)+1)[:LargeLog]
		return LargeOut{Loss: (v.X-1)*(v.X-1) + (v.Y+2)*(v.Y+2), Log: log}, nil
	})
	s := hpo.Search(p, hpo.Space[XY]{"X": hpo.Float(-5, 5), "Y": hpo.Float(-5, 5)}, f,
		func(v pipeline.Ref[XY]) In { return In{P: v} },
		func(o LargeOut) float64 { return o.Loss },
		&hpo.Options{Sampler: hpo.Random, Seed: 11, MaxTrials: LargeTrials, ParallelTrials: 8})
	d := task.New("digest", func(ctx context.Context, in DigestIn) (Digest, error) {
		return digest(in.Result.Get())
	})
	pipeline.Add(p, d, DigestIn{Result: s.Output()})
	return p, d.Name()
}

// DigestIn is the input of SearchLarge's digest step.
type DigestIn struct {
	Result pipeline.Ref[hpo.Result[XY, LargeOut]]
}

func digest(r hpo.Result[XY, LargeOut]) (Digest, error) {
	// Durations are the wall clock of whichever machine ran the trials,
	// and the report's files are in each run's store: not part of the sum.
	r.Files = hpo.Files{}
	r.Trials = slices.Clone(r.Trials)
	for i := range r.Trials {
		r.Trials[i].Duration = 0
		r.Trials[i].Rungs = nil
	}
	doc, err := json.Marshal(r)
	if err != nil {
		return Digest{}, err
	}
	sum := sha256.Sum256(doc)
	d := Digest{BestTrial: r.BestTrial, BestObjective: r.BestObjective, BestParams: r.BestParams,
		States: map[hpo.State]int{}, Stopped: r.Stopped, SHA256: hex.EncodeToString(sum[:])}
	for _, t := range r.Trials {
		d.States[t.State]++
	}
	return d, nil
}

// FailedTrials returns the ids of the failed trials of a Result given as
// JSON values (as RunLikeLocal returns it), in order.
func FailedTrials(res map[string]any) []int {
	var ids []int
	trials, _ := res["trials"].([]any)
	for _, tr := range trials {
		m, _ := tr.(map[string]any)
		if id, ok := m["id"].(float64); ok && m["state"] == string(hpo.Failed) {
			ids = append(ids, int(id))
		}
	}
	slices.Sort(ids)
	return ids
}

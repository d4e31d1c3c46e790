package main

// The tasks. The data are synthetic so that the template runs anywhere:
// extract draws a partition's rows from a seed derived from its name, and
// the "model" is a fixed logistic regression. Replace both with your own
// reads and your own model; the wiring stays.

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"io"
	"math"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/sluice-ml/sluice/artifact"
	"github.com/sluice-ml/sluice/pipeline"
)

// features is the width of a row.
const features = 4

// bins is the number of equal-width bins of the score histogram over [0, 1].
const bins = 10

// weights and bias are the model: score = σ(weights·x + bias).
var (
	weights = [features]float64{0.8, -0.5, 0.3, 0.6}
	bias    = -0.2
)

// ExtractIn is the input of extract.
type ExtractIn struct {
	Partition pipeline.Ref[string]    `json:"partition"`
	Scheduled pipeline.Ref[time.Time] `json:"scheduled"`
	Rows      pipeline.Ref[int]       `json:"rows"`
	Shift     pipeline.Ref[float64]   `json:"shift"`
}

// Extracted is extract's output: the partition's rows, as an artifact.
type Extracted struct {
	// Partition is the day scored, YYYY-MM-DD.
	Partition string           `json:"partition"`
	Features  artifact.Dataset `json:"features"`
	Rows      int              `json:"rows"`
}

// extract writes the feature rows of the partition to the artifact
// "features", one JSON array a line: in.Partition, or when it is empty
// the day before in.Scheduled.
func extract(ctx context.Context, in ExtractIn) (Extracted, error) {
	day := in.Partition.Get()
	if day == "" {
		day = in.Scheduled.Get().UTC().AddDate(0, 0, -1).Format(time.DateOnly)
	} else if _, err := time.Parse(time.DateOnly, day); err != nil {
		return Extracted{}, fmt.Errorf("extract: partition %q is not a day; give it as YYYY-MM-DD, or leave it empty for the day before the run's scheduled time", day)
	}
	n := in.Rows.Get()
	if n < 1 || n > 10_000_000 {
		return Extracted{}, fmt.Errorf("extract: rows is %d; give 1 to 10000000", n)
	}
	x := sample(day, n, in.Shift.Get())
	a, err := artifact.Write[artifact.Dataset](ctx, "features", func(w io.Writer) error {
		bw := bufio.NewWriter(w)
		enc := json.NewEncoder(bw)
		for _, r := range x {
			if err := enc.Encode(r); err != nil {
				return err
			}
		}
		return bw.Flush()
	}, artifact.MediaType("application/jsonl"), artifact.Meta("partition", day), artifact.Meta("rows", strconv.Itoa(n)))
	return Extracted{Partition: day, Features: a, Rows: n}, err
}

// sample draws n rows for partition, each feature normal with mean shift
// and unit variance, from a seed derived from the partition's name.
func sample(partition string, n int, shift float64) [][features]float64 {
	h := fnv.New64a()
	h.Write([]byte(partition))
	rng := rand.New(rand.NewPCG(h.Sum64(), 0x5eed))
	x := make([][features]float64, n)
	for i := range x {
		for j := range x[i] {
			x[i][j] = rng.NormFloat64() + shift
		}
	}
	return x
}

// ScoreIn is the input of score.
type ScoreIn struct {
	Features pipeline.Ref[artifact.Dataset] `json:"features"`
}

// Scored is score's output: every row's score as an artifact, and their
// histogram and mean in-band (small: they decide the drift alert).
type Scored struct {
	Scores    artifact.Dataset `json:"scores"`
	Histogram []float64        `json:"histogram"`
	Mean      float64          `json:"mean"`
}

// score scores every row of in.Features and writes the scores to the
// artifact "scores", one a line.
func score(ctx context.Context, in ScoreIn) (Scored, error) {
	r, err := in.Features.Get().Open(ctx)
	if err != nil {
		return Scored{}, err
	}
	defer r.Close()
	var out []float64
	dec := json.NewDecoder(bufio.NewReader(r))
	for {
		var x [features]float64
		if err := dec.Decode(&x); err == io.EOF {
			break
		} else if err != nil {
			return Scored{}, fmt.Errorf("score: read features: %w", err)
		}
		out = append(out, predict(x))
	}
	a, err := artifact.Write[artifact.Dataset](ctx, "scores", func(w io.Writer) error {
		bw := bufio.NewWriter(w)
		for _, s := range out {
			bw.WriteString(strconv.FormatFloat(s, 'g', -1, 64))
			bw.WriteByte('\n')
		}
		return bw.Flush()
	}, artifact.MediaType("text/plain"), artifact.Meta("rows", strconv.Itoa(len(out))))
	if err != nil {
		return Scored{}, err
	}
	mean := 0.0
	for _, s := range out {
		mean += s / float64(len(out))
	}
	return Scored{Scores: a, Histogram: histogram(out), Mean: mean}, nil
}

func predict(x [features]float64) float64 {
	z := bias
	for j, w := range weights {
		z += w * x[j]
	}
	return 1 / (1 + math.Exp(-z))
}

// histogram returns the fraction of scores in each of bins equal-width
// bins of [0, 1].
func histogram(scores []float64) []float64 {
	h := make([]float64, bins)
	for _, s := range scores {
		h[min(int(s*bins), bins-1)]++
	}
	for i := range h {
		h[i] /= float64(max(len(scores), 1))
	}
	return h
}

// reference is the score histogram of the data the model was validated
// on: here a large sample of unshifted rows.
var reference = func() []float64 {
	x := sample("reference", 50_000, 0)
	s := make([]float64, len(x))
	for i, r := range x {
		s[i] = predict(r)
	}
	return histogram(s)
}()

// DriftIn is the input of drift.
type DriftIn struct {
	Histogram pipeline.Ref[[]float64] `json:"histogram"`
}

// Drift is drift's output.
type Drift struct {
	// PSI is the population stability index of the scores against the
	// reference: below 0.1 no real change, 0.1 to 0.25 some, above 0.25 a
	// shift worth a look.
	PSI float64 `json:"psi"`
}

func drift(ctx context.Context, in DriftIn) (Drift, error) {
	h := in.Histogram.Get()
	if len(h) != len(reference) {
		return Drift{}, fmt.Errorf("drift: the histogram has %d bins; want %d", len(h), len(reference))
	}
	return Drift{PSI: psi(h, reference)}, nil
}

// psi is the population stability index of actual against expected,
// with empty bins counted as 0.01% so that the logarithm stays finite.
func psi(actual, expected []float64) float64 {
	const floor = 1e-4
	v := 0.0
	for i := range actual {
		a, e := max(actual[i], floor), max(expected[i], floor)
		v += (a - e) * math.Log(a/e)
	}
	return v
}

// AlertIn is the input of the alert container: each field is rendered
// into its environment ({{.PSI}} and so on).
type AlertIn struct {
	Partition pipeline.Ref[string]  `json:"partition"`
	PSI       pipeline.Ref[float64] `json:"psi"`
	MaxDrift  pipeline.Ref[float64] `json:"max_drift"`
}

// AlertOut is what the alert container wrote to task.OutputDir/message.
type AlertOut struct {
	Message string `json:"message"`
}

package main

// The machine learning of the quickstart, in plain Go: a synthetic data
// set, a deterministic split, logistic regression trained by mini-batch
// gradient descent with L2 regularization, and the usual metrics. It knows
// nothing about Sluice; the tasks in pipeline.go wrap it.

import (
	"cmp"
	"math"
	"math/rand/v2"
	"slices"
)

// Dataset is a labelled binary classification data set: row i has
// features X[i] and label Y[i] (0 or 1).
type Dataset struct {
	X [][]float64 `json:"x"`
	Y []int       `json:"y"`
}

// Len returns the number of rows.
func (d Dataset) Len() int { return len(d.Y) }

// subset returns the rows idx of d, in that order.
func (d Dataset) subset(idx []int) Dataset {
	out := Dataset{X: make([][]float64, len(idx)), Y: make([]int, len(idx))}
	for i, k := range idx {
		out.X[i], out.Y[i] = d.X[k], d.Y[k]
	}
	return out
}

// newRand returns a generator that is a pure function of seed and stream,
// so every step and trial draws the same numbers on every run.
func newRand(seed int64, stream uint64) *rand.Rand {
	return rand.New(rand.NewPCG(uint64(seed), stream))
}

// generate draws rows points with features features from a hidden linear
// rule: x ~ N(0, scale²) per feature, y = 1 if w·x + b + ε > 0, with
// Gaussian noise ε whose spread is a quarter of the signal's, so about 8%
// of labels disagree with the rule and no model can be perfect. Two of
// the features carry no signal. Values are rounded to 4 decimals to keep
// the data set's JSON (artifacts.go) small.
func generate(seed int64, rows, features int) (Dataset, []float64) {
	rng := newRand(seed, 1)
	w := make([]float64, features)
	scale := make([]float64, features)
	var norm float64
	for j := range w {
		scale[j] = 0.5 + 1.5*rng.Float64()
		if j%4 == 3 {
			continue // a feature that carries no signal
		}
		w[j] = rng.NormFloat64() / scale[j]
		norm += w[j] * w[j] * scale[j] * scale[j]
	}
	bias := 0.25
	noise := 0.25 * math.Sqrt(norm)
	d := Dataset{X: make([][]float64, rows), Y: make([]int, rows)}
	for i := range rows {
		x := make([]float64, features)
		z := bias + noise*rng.NormFloat64()
		for j := range x {
			x[j] = round4(scale[j] * rng.NormFloat64())
			z += w[j] * x[j]
		}
		d.X[i] = x
		if z > 0 {
			d.Y[i] = 1
		}
	}
	return d, w
}

func round4(v float64) float64 { return math.Round(v*1e4) / 1e4 }

// splitRows shuffles d's rows with seed and cuts them into train,
// validation and test sets of fractions 70%, 15% and 15%.
func splitRows(d Dataset, seed int64) (train, val, test Dataset) {
	idx := newRand(seed, 2).Perm(d.Len())
	nTrain := d.Len() * 70 / 100
	nVal := d.Len() * 15 / 100
	return d.subset(idx[:nTrain]), d.subset(idx[nTrain : nTrain+nVal]), d.subset(idx[nTrain+nVal:])
}

// Model is a logistic regression: P(y=1 | x) = σ(w·x + b).
type Model struct {
	Weights []float64 `json:"weights"`
	Bias    float64   `json:"bias"`
}

// Prob returns P(y=1 | x).
func (m Model) Prob(x []float64) float64 {
	z := m.Bias
	for j, w := range m.Weights {
		z += w * x[j]
	}
	return 1 / (1 + math.Exp(-z))
}

// loss is the mean log-loss of m on d plus the L2 penalty l2/2·‖w‖².
func (m Model) loss(d Dataset, l2 float64) float64 {
	var pen float64
	for _, w := range m.Weights {
		pen += w * w
	}
	return logLoss(m, d) + l2/2*pen
}

// step takes one gradient descent step of size lr on the regularized loss
// over the rows batch of d.
func (m *Model) step(d Dataset, batch []int, lr, l2 float64) {
	grad := make([]float64, len(m.Weights))
	var gb float64
	for _, i := range batch {
		r := m.Prob(d.X[i]) - float64(d.Y[i])
		for j, x := range d.X[i] {
			grad[j] += r * x
		}
		gb += r
	}
	n := float64(len(batch))
	for j := range m.Weights {
		m.Weights[j] -= lr * (grad[j]/n + l2*m.Weights[j])
	}
	m.Bias -= lr * gb / n // the bias is not regularized
}

// fit trains a model on d by mini-batch gradient descent: epochs passes
// over the rows in an order shuffled by rng, in batches of batchSize.
func fit(d Dataset, lr, l2 float64, epochs, batchSize int, seed int64) Model {
	return fitFrom(Model{Weights: make([]float64, len(d.X[0]))}, d, lr, l2, 0, epochs, batchSize, seed)
}

// fitFrom continues training m from epoch from to epoch to. Each epoch
// shuffles with a stream of its own (seed, 100+epoch), so a model
// trained for 3 epochs and then 6 more is the model trained for 9 at
// once: a trial that an early-stopping search promotes resumes from its
// checkpoint and ends where a fresh run would.
func fitFrom(m Model, d Dataset, lr, l2 float64, from, to, batchSize int, seed int64) Model {
	m.Weights = slices.Clone(m.Weights)
	idx := make([]int, d.Len())
	for epoch := from; epoch < to; epoch++ {
		for i := range idx {
			idx[i] = i
		}
		rng := newRand(seed, 100+uint64(epoch))
		rng.Shuffle(len(idx), func(i, j int) { idx[i], idx[j] = idx[j], idx[i] })
		for lo := 0; lo < len(idx); lo += batchSize {
			m.step(d, idx[lo:min(lo+batchSize, len(idx))], lr, l2)
		}
	}
	return m
}

// logLoss is the mean negative log-likelihood of d's labels under m, with
// probabilities clipped away from 0 and 1.
func logLoss(m Model, d Dataset) float64 {
	const eps = 1e-15
	var s float64
	for i, x := range d.X {
		p := min(max(m.Prob(x), eps), 1-eps)
		if d.Y[i] == 1 {
			s -= math.Log(p)
		} else {
			s -= math.Log(1 - p)
		}
	}
	return s / float64(d.Len())
}

// accuracy is the fraction of d's rows that m classifies right at the 0.5
// threshold.
func accuracy(m Model, d Dataset) float64 {
	right := 0
	for i, x := range d.X {
		if (m.Prob(x) >= 0.5) == (d.Y[i] == 1) {
			right++
		}
	}
	return float64(right) / float64(d.Len())
}

// auc is the area under the ROC curve of scores for labels: the
// probability that a random positive scores above a random negative, ties
// counting half (the Mann–Whitney U statistic). It is 0.5 when one class
// is missing.
func auc(scores []float64, labels []int) float64 {
	idx := make([]int, len(scores))
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(a, b int) int { return cmp.Compare(scores[a], scores[b]) })
	var pos, neg, rankSum float64
	for lo := 0; lo < len(idx); {
		hi := lo
		for hi < len(idx) && scores[idx[hi]] == scores[idx[lo]] {
			hi++
		}
		rank := float64(lo+hi+1) / 2 // mean of the 1-based ranks lo+1..hi
		for _, i := range idx[lo:hi] {
			if labels[i] == 1 {
				pos++
				rankSum += rank
			} else {
				neg++
			}
		}
		lo = hi
	}
	if pos == 0 || neg == 0 {
		return 0.5
	}
	return (rankSum - pos*(pos+1)/2) / (pos * neg)
}

package tpe

import (
	"errors"
	"math/rand"

	"gonum.org/v1/gonum/floats"
)

// multinomial and argMaxMultinomial are goptuna v0.9.0's
// internal/random functions drawing from rng instead of math/rand's
// process-wide source, which Go 1.24 and later cannot seed: the one
// change that makes this copy of the TPE sampler repeat for a seed.

// multinomial draws samples from a multinomial distribution like numpy.random.multinomial.
func multinomial(rng *rand.Rand, n int, pvals []float64, size int) [][]int {
	result := make([][]int, size)
	l := len(pvals)
	x := make([]float64, l)
	floats.CumSum(x, pvals)

	for i := range result {
		result[i] = make([]int, l)

		for j := 0; j < n; j++ {

			var index int
			r := rng.Float64()
			for i := range x {
				if x[i] > r {
					index = i
					break
				}
			}
			result[i][index]++
		}
	}
	return result
}

// argMaxMultinomial returns the index sampled by multinomial distribution with given probabilities.
func argMaxMultinomial(rng *rand.Rand, pvals []float64) (int, error) {
	x := make([]float64, len(pvals))
	floats.CumSum(x, pvals)

	r := rng.Float64()
	for i := range x {
		if x[i] > r {
			return i, nil
		}
	}
	return 0, errors.New("invalid pvals")
}

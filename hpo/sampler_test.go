package hpo

import (
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type kinds struct {
	F  float64
	LF float32
	FS float64
	I  int
	LI int64
	IS uint16
	C  string
	X  bool
}

func kindsPlan(t *testing.T) *spacePlan {
	sp, errs := Space[kinds]{
		"F":  Float(-1, 1),
		"LF": LogFloat(1e-3, 10),
		"FS": FloatStep(0, 1, 0.25),
		"I":  Int(1, 3),
		"LI": LogInt(1, 4),
		"IS": IntStep(10, 20, 5),
		"C":  Choice("a", "b", "c"),
		"X":  Fixed(true),
	}.plan(nil)
	require.Empty(t, errs)
	return sp
}

// Every sampler's proposals stay in the space, and those that explore
// (all but CMA-ES, which converges) reach every value of every discrete
// field, both ends included.
func TestSamplersCoverTheSpace(t *testing.T) {
	sp := kindsPlan(t)
	for _, s := range []Sampler{Random, TPE, CMAES, Sobol} {
		t.Run(string(s), func(t *testing.T) {
			st, err := newStudy(sp, s, 1, Minimize)
			require.NoError(t, err)
			seen := map[string]map[any]bool{"FS": {}, "I": {}, "LI": {}, "IS": {}, "C": {}}
			for range 100 {
				id, xs, err := st.ask()
				require.NoError(t, err)
				k, err := fromSampler[kinds](sp, xs)
				require.NoError(t, err)
				assert.True(t, k.F >= -1 && k.F <= 1 && k.LF >= 1e-3 && k.LF <= 10 && k.X, "%+v", k)
				seen["FS"][k.FS], seen["I"][k.I], seen["LI"][k.LI], seen["IS"][k.IS], seen["C"][k.C] = true, true, true, true, true
				// Tell a varied objective, so that model-based samplers keep exploring.
				require.NoError(t, st.tell(id, math.Sin(float64(id)), true))
			}
			if s == CMAES {
				return
			}
			assert.Equal(t, map[any]bool{0.0: true, 0.25: true, 0.5: true, 0.75: true, 1.0: true}, seen["FS"])
			assert.Equal(t, map[any]bool{1: true, 2: true, 3: true}, seen["I"])
			assert.Equal(t, map[any]bool{int64(1): true, int64(2): true, int64(3): true, int64(4): true}, seen["LI"])
			assert.Equal(t, map[any]bool{uint16(10): true, uint16(15): true, uint16(20): true}, seen["IS"])
			assert.Equal(t, map[any]bool{"a": true, "b": true, "c": true}, seen["C"])
		})
	}
}

// Round trip between a field's value and the sampler's value.
func TestToSampler(t *testing.T) {
	sp := kindsPlan(t)
	k := kinds{F: 0.5, LF: 2, FS: 0.75, I: 3, LI: 4, IS: 15, C: "b", X: true}
	xs, err := toSampler(sp, k)
	require.NoError(t, err)
	assert.Equal(t, []float64{0.5, 2, 3, 3, 4, 1, 1}, xs)
	back, err := fromSampler[kinds](sp, xs)
	require.NoError(t, err)
	assert.Equal(t, k, back)
}

func TestGridPoints(t *testing.T) {
	sp, errs := Space[kinds]{
		"F": Fixed(0.5), "LF": Fixed(float32(1)), "FS": Fixed(0.0), "I": Int(1, 2),
		"LI": Fixed(int64(1)), "IS": Fixed(uint16(3)), "C": Choice("a", "b", "c"), "X": Choice(false, true),
	}.plan(nil)
	require.Empty(t, errs)
	assert.Equal(t, 12, gridSize(sp, 100))
	assert.Equal(t, 11, gridSize(sp, 10), "capped at limit+1")
	first, err := gridPoint[kinds](sp, 0)
	require.NoError(t, err)
	assert.Equal(t, kinds{F: 0.5, LF: 1, I: 1, LI: 1, IS: 3, C: "a", X: false}, first)
	p, err := gridPoint[kinds](sp, 7) // 7 = 1·6 + 0·2 + 1: I's second value, C's first, X's second
	require.NoError(t, err)
	assert.Equal(t, kinds{F: 0.5, LF: 1, I: 2, LI: 1, IS: 3, C: "a", X: true}, p)
}

func branin(x1, x2 float64) float64 {
	const a, b, c, r, s, t = 1, 5.1 / (4 * math.Pi * math.Pi), 5 / math.Pi, 6, 10, 1 / (8 * math.Pi)
	return a*math.Pow(x2-b*x1*x1+c*x1-r, 2) + s*(1-t)*math.Cos(x1) + s
}

type point struct{ X1, X2 float64 }

// bestOnBranin runs n trials one at a time and returns the best value.
func bestOnBranin(t *testing.T, s Sampler, seed int64, n int) float64 {
	sp, errs := Space[point]{"X1": Float(-5, 10), "X2": Float(0, 15)}.plan(nil)
	require.Empty(t, errs)
	st, err := newStudy(sp, s, seed, Minimize)
	require.NoError(t, err)
	best := math.Inf(1)
	for range n {
		id, xs, err := st.ask()
		require.NoError(t, err)
		v := branin(xs[0], xs[1])
		best = min(best, v)
		require.NoError(t, st.tell(id, v, true))
	}
	return best
}

// A sanity check, not the benchmark: CMA-ES finds a lower Branin value
// than random search with the same 60 trials for most seeds. (goptuna
// v0.9.0's TPE ties random search here: it wins for about half of the
// seeds, so it is not checked.)
func TestCMAESBeatsRandomOnBranin(t *testing.T) {
	wins := 0
	for seed := int64(1); seed <= 20; seed++ {
		if bestOnBranin(t, CMAES, seed, 60) < bestOnBranin(t, Random, seed, 60) {
			wins++
		}
	}
	t.Logf("CMA-ES beat random search for %d of 20 seeds", wins)
	assert.GreaterOrEqual(t, wins, 15)
}

// Maximizing tells the samplers the negated objective: CMA-ES finds a
// high value of -branin as it finds a low value of branin.
func TestMaximizeFlipsTheObjective(t *testing.T) {
	sp, errs := Space[point]{"X1": Float(-5, 10), "X2": Float(0, 15)}.plan(nil)
	require.Empty(t, errs)
	st, err := newStudy(sp, CMAES, 3, Maximize)
	require.NoError(t, err)
	best := math.Inf(-1)
	for range 60 {
		id, xs, err := st.ask()
		require.NoError(t, err)
		v := -branin(xs[0], xs[1])
		best = max(best, v)
		require.NoError(t, st.tell(id, v, true))
	}
	assert.Equal(t, -bestOnBranin(t, CMAES, 3, 60), best)
}

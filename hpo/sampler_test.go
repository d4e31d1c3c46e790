// The line below lets math/rand.Seed take effect in this package's test
// binary (//go:debug lines in _test.go files apply to it), so that the
// tests of seeded TPE run; TestSeedingOff runs it without.
//
//go:debug randseednop=0
package hpo

import (
	"context"
	"fmt"
	"math"
	"math/rand"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/sluice-ml/sluice/pipeline"
	"github.com/sluice-ml/sluice/pipeline/pipelinetest"
	"github.com/sluice-ml/sluice/task"

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
	first, err := gridPoints[kinds](sp, 0, 1)
	require.NoError(t, err)
	assert.Equal(t, []kinds{{F: 0.5, LF: 1, I: 1, LI: 1, IS: 3, C: "a", X: false}}, first)
	p, err := gridPoints[kinds](sp, 7, 1) // 7 = 1·6 + 0·2 + 1: I's second value, C's first, X's second
	require.NoError(t, err)
	assert.Equal(t, []kinds{{F: 0.5, LF: 1, I: 2, LI: 1, IS: 3, C: "a", X: true}}, p)
	all, err := gridPoints[kinds](sp, 10, 5)
	require.NoError(t, err)
	assert.Len(t, all, 2, "past the grid's end: only what is left")
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

// tpeOnBranin asks a TPE study for n points one at a time, past its 10
// random start-up trials, telling it Branin's value of each; between
// asks, other code draws from math/rand's process-wide source, as other
// goroutines of a program may.
func tpeOnBranin(t *testing.T, seed int64, n int, seedGlobal bool) []point {
	sp, errs := Space[point]{"X1": Float(-5, 10), "X2": Float(0, 15)}.plan(nil)
	require.Empty(t, errs)
	st, err := newStudy(sp, TPE, seed, Minimize)
	require.NoError(t, err)
	st.seedGlobal = seedGlobal
	var out []point
	for range n {
		rand.Float64() //nolint:gosec // another user of the global source
		id, xs, err := st.ask()
		require.NoError(t, err)
		out = append(out, point{xs[0], xs[1]})
		require.NoError(t, st.tell(id, branin(xs[0], xs[1]), true))
	}
	return out
}

// This test binary enables seeding (the //go:debug line above), and
// seedable finds it out.
func TestSeedingOn(t *testing.T) {
	require.True(t, seedable(), "//go:debug randseednop=0 in a _test.go file applies to the package's test binary")
}

// With seeding on, TPE proposes the same points for a seed, past its
// random start-up trials, whatever other code draws from the global
// source between proposals; another seed gives other points. Without
// it (the control), the same seed gives other points: goptuna's TPE
// draws from the global source.
func TestTPERepeatsForASeed(t *testing.T) {
	a, b := tpeOnBranin(t, 7, 20, true), tpeOnBranin(t, 7, 20, true)
	assert.Equal(t, a, b)
	assert.NotEqual(t, a, tpeOnBranin(t, 8, 20, true))

	c, d := tpeOnBranin(t, 7, 20, false), tpeOnBranin(t, 7, 20, false)
	assert.Equal(t, c[:10], d[:10], "the random start-up trials use TPE's own seeded source")
	assert.NotEqual(t, c[10:], d[10:], "unseeded, the Parzen estimators' components come from the global source")
}

// A TPE search, with rounds rebuilt in every suggest step, gives the same
// trials run after run when seeding is on.
func TestTPESearchRepeatsForASeed(t *testing.T) {
	type in struct{ P pipeline.Ref[point] }
	type out struct{ V float64 }
	evaluate := task.New("branin", func(_ context.Context, in in) (out, error) {
		p := in.P.Get()
		return out{branin(p.X1, p.X2)}, nil
	})
	run := func(seed int64) []Trial[point, out] {
		p := pipeline.New("tpe", nil)
		search := Search(p, Space[point]{"X1": Float(-5, 10), "X2": Float(0, 15)}, evaluate,
			func(pt pipeline.Ref[point]) in { return in{P: pt} },
			func(o out) float64 { return o.V },
			&Options{Sampler: TPE, Seed: seed, MaxTrials: 24, ParallelTrials: 4})
		res := pipelinetest.NewEnv(t).Run(p)
		require.NoError(t, res.Err())
		return pipelinetest.Output(res, search).Trials
	}
	a, b := run(7), run(7)
	assert.Equal(t, a, b)
	assert.NotEqual(t, a, run(8))
}

// seedingEnv names the environment variable that makes
// TestSeedingOff report in a child process.
const seedingEnv = "HPO_TEST_SEEDABLE"

// GODEBUG=randseednop=1 in the environment overrides the //go:debug line
// of this binary: in a child process run so, seedable finds that seeding
// has no effect, and TPE studies do not seed the global source.
func TestSeedingOff(t *testing.T) {
	if os.Getenv(seedingEnv) == "1" {
		sp, errs := Space[point]{"X1": Float(-5, 10), "X2": Float(0, 15)}.plan(nil)
		require.Empty(t, errs)
		st, err := newStudy(sp, TPE, 1, Minimize)
		require.NoError(t, err)
		fmt.Printf("seedable=%v seedGlobal=%v\n", seedable(), st.seedGlobal)
		return
	}
	cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestSeedingOff$", "-test.count=1")
	cmd.Env = append(os.Environ(), seedingEnv+"=1", "GODEBUG=randseednop=1")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	assert.True(t, strings.Contains(string(out), "seedable=false seedGlobal=false"), "%s", out)
}

// Each ask of a study has its own stream.
func TestAskSeeds(t *testing.T) {
	seen := map[int64]bool{}
	for k := range 100 {
		seen[askSeed(7, k)] = true
	}
	assert.Len(t, seen, 100)
}

// CMA-ES moves along a wide log range even when another field's range is
// narrow: it searches the unit cube, not the fields' own ranges (in
// which goptuna's first step size, a sixth of the narrowest range, kept
// it near the centre of the wide one).
func TestCMAESMixedScales(t *testing.T) {
	type mixed struct {
		LR    float64
		Beta2 float64
	}
	sp, errs := Space[mixed]{"LR": LogFloat(1e-6, 1), "Beta2": LogFloat(0.9, 0.9999)}.plan(nil)
	require.Empty(t, errs)
	st, err := newStudy(sp, CMAES, 5, Minimize)
	require.NoError(t, err)
	best := math.Inf(1)
	var bestLR float64
	for range 60 {
		id, xs, err := st.ask()
		require.NoError(t, err)
		p, err := fromSampler[mixed](sp, xs)
		require.NoError(t, err)
		// The optimum, LR 1e-5, is 3 decades from the range's centre.
		v := math.Pow(math.Log10(p.LR)+5, 2) + math.Pow(p.Beta2-0.95, 2)
		if v < best {
			best, bestLR = v, p.LR
		}
		require.NoError(t, st.tell(id, v, true))
	}
	assert.InDelta(t, -5, math.Log10(bestLR), 0.5, "best LR %g", bestLR)
}

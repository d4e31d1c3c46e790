package hpocase

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sluice-ml/sluice/backends/local"
	"github.com/sluice-ml/sluice/hpo"
	"github.com/sluice-ml/sluice/pipeline"
)

// Every name builds a valid search, and an unknown one nothing.
func TestBuild(t *testing.T) {
	for _, name := range Names() {
		p, step := Build(name)
		require.NotNil(t, p, name)
		assert.NotEmpty(t, step, name)
		assert.NoError(t, p.Validate(), name)
	}
	p, step := Build("nope")
	assert.Nil(t, p)
	assert.Empty(t, step)
}

// The over-budget searches fail where their docs say, locally.
func TestOverBudget(t *testing.T) {
	for _, c := range []struct{ name, step, msg string }{
		{OverBudget, "search-suggest-3", "4 of 9 trials failed, more than MaxFailedTrials (2): trial 2: the trial failed; step search-trials-0 says why;"},
		{OverBudgetRound, "search-trials-3", "3 of 3 instances failed, more than the 2 tolerated"},
	} {
		p, _ := Build(c.name)
		st, err := pipeline.Run(t.Context(), p, local.New(nil), nil)
		require.ErrorIs(t, err, pipeline.ErrRunFailed, c.name)
		assert.Contains(t, st.Step(c.step).Message, c.msg, c.name)
		assert.Equal(t, `step "`+c.step+`" failed: `+st.Step(c.step).Message, st.Message, c.name)
	}
}

// SearchLarge's state is as large as its doc says: the suggest steps'
// outputs from the second round on are over 4 KiB, the Result over
// 16 KiB, and the digest sums up the Result.
func TestSearchLargeSizes(t *testing.T) {
	p, step := SearchLarge()
	st, err := pipeline.Run(t.Context(), p, local.New(nil), nil)
	require.NoError(t, err)
	for r := 1; r < 5; r++ {
		name := "search-suggest-" + string(rune('0'+r))
		assert.Greater(t, len(st.Step(name).Output), 4<<10, name)
	}
	assert.Greater(t, len(st.Step("search").Output), 16<<10)
	var res hpo.Result[XY, LargeOut]
	require.NoError(t, json.Unmarshal(st.Step("search").Output, &res))
	var d Digest
	require.NoError(t, json.Unmarshal(st.Step(step).Output, &d))
	assert.Equal(t, map[hpo.State]int{hpo.Complete: LargeTrials}, d.States)
	assert.Equal(t, res.BestTrial, d.BestTrial)
	assert.Equal(t, res.BestParams, d.BestParams)
	assert.Len(t, d.SHA256, 64)
	assert.Len(t, res.Trials[0].Output.Log, LargeLog)
	assert.Less(t, len(st.Step(step).Output), 1<<10, "the digest travels in-band everywhere")
}

// SearchContainer, whose trial is a script, proposes and finds what
// Search(false), whose trial is the same quadratic in Go, does: the same
// twelve trials over four rounds of CMA-ES (which adapts to the
// objectives, so they are equal to the last bit), on the local backend,
// which runs the script as a host process.
func TestSearchContainerIsSearch(t *testing.T) {
	results := map[string]hpo.Result[XY, json.RawMessage]{}
	for name, build := range map[string]func() (*pipeline.Pipeline, string){
		"container": SearchContainer, "go": func() (*pipeline.Pipeline, string) { return Search(false) },
	} {
		p, step := build()
		st, err := pipeline.Run(t.Context(), p, local.New(nil), nil)
		require.NoError(t, err, name)
		var res hpo.Result[XY, json.RawMessage]
		require.NoError(t, json.Unmarshal(st.Step(step).Output, &res), name)
		results[name] = res
	}
	c, g := results["container"], results["go"]
	require.Len(t, c.Trials, 12)
	require.Len(t, g.Trials, 12)
	for i := range c.Trials {
		assert.Equal(t, g.Trials[i].Params, c.Trials[i].Params, "trial %d", i)
		assert.Equal(t, g.Trials[i].Objective, c.Trials[i].Objective, "trial %d", i)
		assert.Equal(t, hpo.Complete, c.Trials[i].State, "trial %d", i)
		assert.JSONEq(t, `{"loss":`+string(g.Trials[i].Output)+`}`, string(c.Trials[i].Output), "trial %d", i)
	}
	assert.Equal(t, g.BestTrial, c.BestTrial)
}

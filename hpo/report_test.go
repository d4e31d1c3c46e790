package hpo_test

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sluice-ml/sluice/hpo"
	"github.com/sluice-ml/sluice/internal/golden"
)

// netParams is a hyperparameter struct with a nested one, whose fields
// the CSV dots.
type netParams struct {
	LR     float64 `json:"lr"`
	Layers int     `json:"layers"`
	Act    string  `json:"act"`
	Opt    struct {
		Beta float64 `json:"beta"`
	} `json:"opt"`
}

type netOut struct {
	Loss float64 `json:"loss"`
}

// fixedResult is a Result as a search of netParams would make it: six
// trials over two rounds, one failed (with an error that CSV must
// quote).
func fixedResult(dir hpo.Direction) hpo.Result[netParams, netOut] {
	mk := func(id, round int, lr float64, layers int, act string, state hpo.State, obj float64, errText string) hpo.Trial[netParams, netOut] {
		p := netParams{LR: lr, Layers: layers, Act: act}
		p.Opt.Beta = 0.9
		t := hpo.Trial[netParams, netOut]{ID: id, Round: round, Params: p, State: state, Objective: obj, Error: errText}
		if state == hpo.Complete {
			t.Output = netOut{Loss: obj}
		}
		return t
	}
	r := hpo.Result[netParams, netOut]{
		Trials: []hpo.Trial[netParams, netOut]{
			mk(0, 0, 0.0123456789, 2, "relu", hpo.Complete, 0.52, ""),
			mk(1, 0, 0.3, 4, "tanh", hpo.Complete, 0.81, ""),
			mk(2, 0, 0.0002, 1, "relu", hpo.Failed, 0, `trial task failed: "out of memory", exit 137`),
			mk(3, 1, 0.004, 3, "tanh", hpo.Complete, 0.31, ""),
			mk(4, 1, 0.05, 2, "relu", hpo.Complete, 0.44, ""),
			mk(5, 1, 0.9, 1, "tanh", hpo.Complete, 1.25, ""),
		},
		Direction: dir,
		Dims: []hpo.DimInfo{
			{Name: "lr", Scale: hpo.Log},
			{Name: "layers", Scale: hpo.Linear},
			{Name: "act", Scale: hpo.Categorical, Choices: []json.RawMessage{json.RawMessage(`"relu"`), json.RawMessage(`"tanh"`)}},
		},
	}
	best := 3
	if dir == hpo.Maximize {
		best = 5
	}
	r.BestTrial, r.BestObjective, r.BestParams, r.BestOutput = best, r.Trials[best].Objective, r.Trials[best].Params, r.Trials[best].Output
	return r
}

func TestWriteCSV(t *testing.T) {
	r := fixedResult(hpo.Minimize)
	var buf bytes.Buffer
	require.NoError(t, r.WriteCSV(&buf))
	golden.Assert(t, buf.Bytes(), ".golden.csv")

	recs, err := csv.NewReader(bytes.NewReader(buf.Bytes())).ReadAll()
	require.NoError(t, err, "RFC 4180: encoding/csv reads it back")
	require.Len(t, recs, 7)
	assert.Equal(t, []string{"id", "round", "state", "objective", "lr", "layers", "act", "opt.beta", "error"}, recs[0])
	assert.Equal(t, []string{"2", "0", "failed", "", "0.0002", "1", "relu", "0.9", `trial task failed: "out of memory", exit 137`}, recs[3],
		"a failed trial has no objective; its error is quoted")
	assert.Equal(t, "0.0123456789", recs[1][4], "full precision")

	// The CLI reads trials.json without the types: the same CSV.
	j, err := json.Marshal(r)
	require.NoError(t, err)
	var raw hpo.Result[json.RawMessage, json.RawMessage]
	require.NoError(t, json.Unmarshal(j, &raw))
	var rawBuf bytes.Buffer
	require.NoError(t, raw.WriteCSV(&rawBuf))
	assert.Equal(t, buf.String(), rawBuf.String())
}

func TestWriteTable(t *testing.T) {
	for _, tc := range []struct {
		name  string
		dir   hpo.Direction
		limit int
		first []string // the ids of the rows, in order
	}{
		{name: "Minimize", dir: hpo.Minimize, first: []string{"3", "4", "0", "1", "5", "2"}},
		{name: "Maximize", dir: hpo.Maximize, first: []string{"5", "1", "0", "4", "3", "2"}},
		{name: "Limited", dir: hpo.Minimize, limit: 2, first: []string{"3", "4"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := fixedResult(tc.dir)
			var buf bytes.Buffer
			buf.WriteString(r.Headline() + "\n")
			require.NoError(t, r.WriteTable(&buf, tc.limit))
			golden.Assert(t, buf.Bytes(), ".golden.txt")

			lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
			var ids []string
			for _, l := range lines[2:] {
				if strings.HasPrefix(l, "…") {
					assert.Equal(t, "… 4 more", l)
					continue
				}
				ids = append(ids, strings.Fields(l)[0])
			}
			assert.Equal(t, tc.first, ids, "best first, the failed trial last")
		})
	}
}

func TestPlot(t *testing.T) {
	r := fixedResult(hpo.Minimize)
	var svg bytes.Buffer
	require.NoError(t, r.Plot(&svg, "svg"))
	golden.Assert(t, svg.Bytes(), ".golden.svg")
	for _, want := range []string{"objective per trial (1 failed, not shown)", "best so far", ">lr<", ">layers<", ">relu<", ">tanh<"} {
		assert.Contains(t, svg.String(), want)
	}

	var again bytes.Buffer
	require.NoError(t, r.Plot(&again, "svg"))
	assert.Equal(t, svg.String(), again.String(), "the same Result, the same bytes")

	var png bytes.Buffer
	require.NoError(t, r.Plot(&png, "png"))
	assert.True(t, bytes.HasPrefix(png.Bytes(), []byte("\x89PNG\r\n\x1a\n")), "a PNG")

	assert.ErrorContains(t, r.Plot(&bytes.Buffer{}, "pdf"), `plot format "pdf": use svg or png`)
}

// A Result without Dims (decoded from an older trials.json) plots every
// numeric field that varies.
func TestPlotWithoutDims(t *testing.T) {
	r := fixedResult(hpo.Minimize)
	r.Dims = nil
	var svg bytes.Buffer
	require.NoError(t, r.Plot(&svg, "svg"))
	assert.Contains(t, svg.String(), ">layers<")
	assert.NotContains(t, svg.String(), ">beta<", "opt.beta is the same in every trial")
	assert.NotContains(t, svg.String(), ">act<", "not a number")
}

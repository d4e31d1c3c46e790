package argo_test

import (
	"bytes"
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/argoproj/argo-workflows/v3/pkg/client/clientset/versioned/fake"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"

	"github.com/sluice-ml/sluice/backends"
	"github.com/sluice-ml/sluice/backends/argo"
	"github.com/sluice-ml/sluice/backends/runstate"
	"github.com/sluice-ml/sluice/internal/argosim"
	"github.com/sluice-ml/sluice/internal/golden"
	"github.com/sluice-ml/sluice/pipeline"
	"github.com/sluice-ml/sluice/task"
)

// tolerantSquares fans the container task square out over [2 3 5],
// tolerating what tolerate sets, and sums the outputs collected.
func tolerantSquares(tolerate func(pipeline.Fan[sqOut]) pipeline.Fan[sqOut]) *pipeline.Pipeline {
	p := pipeline.New("tol", nil)
	fan := tolerate(pipeline.ForEach(p, square, pipeline.Const([]int{2, 3, 5}), func(x pipeline.Ref[int]) sqIn { return sqIn{X: x, Tag: "t"} }))
	pipeline.Add(p, task.New("sum", func(_ context.Context, in struct{ Ys pipeline.Ref[[]sqOut] }) (int, error) {
		total := 0
		for _, o := range in.Ys.Get() {
			total += o.Y
		}
		return total, nil
	}), struct{ Ys pipeline.Ref[[]sqOut] }{Ys: fan.Collect()})
	return p
}

// A tolerant container fan-out: the instances whose square fails are
// left out of the output, the others come back in element order with
// every output field; more failures than tolerated fail the fan-out in
// runstate's words, and the step after it is skipped.
func TestTolerantContainerFanOut(t *testing.T) {
	for _, tc := range []struct {
		name     string
		tolerate func(pipeline.Fan[sqOut]) pipeline.Fan[sqOut]
		fail     map[int]bool // x -> its square fails
		want     string       // the fan-out's output; "" when it fails
		sum      string
	}{
		{"OneOfOneTolerated", func(f pipeline.Fan[sqOut]) pipeline.Fan[sqOut] { return f.Tolerate(1) }, map[int]bool{3: true},
			`[{"Y":4,"Note":"2:t"},{"Y":25,"Note":"5:t"}]`, "29"},
		{"AllTolerated", func(f pipeline.Fan[sqOut]) pipeline.Fan[sqOut] { return f.TolerateFraction(1) }, map[int]bool{2: true, 3: true, 5: true},
			`[]`, "0"},
		{"NoneFailed", func(f pipeline.Fan[sqOut]) pipeline.Fan[sqOut] { return f.Tolerate(1) }, nil,
			`[{"Y":4,"Note":"2:t"},{"Y":9,"Note":"3:t"},{"Y":25,"Note":"5:t"}]`, "38"},
		{"TwoOverAThird", func(f pipeline.Fan[sqOut]) pipeline.Fan[sqOut] { return f.TolerateFraction(0.34) }, map[int]bool{3: true, 5: true},
			"", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cs := fake.NewSimpleClientset()
			nameOnCreate(cs)
			s := newSim(cs, &argosim.Options{Containers: func(_ context.Context, c *corev1.Container) (map[string]string, error) {
				x, err := strconv.Atoi(strings.TrimPrefix(c.Args[0], "--x="))
				if err != nil {
					return nil, err
				}
				if tc.fail[x] {
					return nil, fmt.Errorf("no square for %d", x)
				}
				return map[string]string{task.OutputDir + "/Y": strconv.Itoa(x * x), task.OutputDir + "/Note": fmt.Sprintf("%d:t\n", x)}, nil
			}})
			t.Cleanup(s.Close)
			b := &simBackend{Backend: argo.New(cs, testOptions()), sim: s}
			st, err := pipeline.Run(t.Context(), tolerantSquares(tc.tolerate), b, nil)
			plan, perr := tolerantSquares(tc.tolerate).Plan(nil)
			require.NoError(t, perr)
			sq := st.Step("square")
			require.NotNil(t, sq)
			require.Len(t, sq.Instances, 3)
			end := runstate.FanOutEnd(plan.Step("square"), sq.Instances)
			assert.Equal(t, end.Phase, sq.Phase)
			assert.Equal(t, end.Message, sq.Message, "runstate's words")
			for i, x := range []int{2, 3, 5} {
				if tc.fail[x] && tc.want != "" { // a tolerated failure: each is named
					assert.Contains(t, sq.Message, fmt.Sprintf("instance %d failed: ", i))
				}
			}
			if tc.want == "" {
				require.ErrorIs(t, err, pipeline.ErrRunFailed)
				assert.Equal(t, backends.PhaseFailed, sq.Phase)
				assert.Equal(t, backends.PhaseSkipped, st.Step("sum").Phase)
				assert.Equal(t, backends.PhaseFailed, st.Phase)
				return
			}
			require.NoError(t, err, "%+v", st)
			assert.Equal(t, backends.PhaseSucceeded, st.Phase)
			assert.JSONEq(t, tc.want, string(sq.Output), "the successful outputs, in element order")
			assert.JSONEq(t, tc.sum, string(st.Step("sum").Output))
		})
	}
}

// A tolerant fan-out compiles to a Workflow that passes Argo's own
// validation and matches its golden file: Go tasks with a count and a
// fraction, and a container task.
func TestTolerantGolden(t *testing.T) {
	p := pipeline.New("tolerant", nil)
	items := pipeline.Const([]int{1, 2, 3})
	a := pipeline.ForEach(p, inc.WithName("count"), items, func(pipeline.Ref[int]) one { return one{} }).Tolerate(1)
	b := pipeline.ForEach(p, inc.WithName("frac"), items, func(pipeline.Ref[int]) one { return one{} }).TolerateFraction(0.5).After(a)
	pipeline.ForEach(p, square, items, func(x pipeline.Ref[int]) sqIn { return sqIn{X: x} }).Tolerate(2).TolerateFraction(0.25).After(b)
	art, err := pipeline.Compile(t.Context(), p, argo.New(nil, testOptions()), nil)
	require.NoError(t, err)
	spec := checkDocument(t, art.Documents()[0])
	var tol []string
	for _, tm := range spec.Templates {
		if v, ok := tm.Metadata.Annotations[argo.AnnotationTolerate]; ok {
			tol = append(tol, tm.Name+" "+v)
		}
	}
	assert.Equal(t, []string{`each-count {"maxFailed":1}`, `each-frac {"maxFailedFraction":0.5}`, `each-square {"maxFailed":2,"maxFailedFraction":0.25}`}, tol)
	golden.Assert(t, bytes.Join(art.Documents(), []byte("---\n")))
}

package argo_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/argoproj/argo-workflows/v3/pkg/client/clientset/versioned/fake"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/sluice-ml/sluice/artifact"
	"github.com/sluice-ml/sluice/backends"
	"github.com/sluice-ml/sluice/backends/argo"
	"github.com/sluice-ml/sluice/pipeline"
	"github.com/sluice-ml/sluice/task"
)

// promotingBackend is a simBackend whose Go tasks do with large values
// what the task mode does in a pod (the simulator invokes tasks as they
// are): read back the promoted values of their input, and store the
// parts of their output over the in-band limit in the run's store
// (artifact.Promote); a step a fan-out iterates over has the larger
// limit, as Compile gives it. The tasks share store, the run's store
// opened once: opening a file:// store lists it, which fails now and then
// while another task renames a file into it.
type promotingBackend struct {
	*simBackend
	store  *artifact.Store
	limits map[string]int // by step; else argo.MaxInlineOutput
}

func (b *promotingBackend) Submit(ctx context.Context, a backends.Artifact, opts *backends.SubmitOptions) (string, error) {
	id, err := b.Backend.Submit(ctx, a, opts)
	if err != nil {
		return id, err
	}
	var plan *backends.Plan
	if !a.As(&plan) {
		return "", fmt.Errorf("%T holds no plan", a)
	}
	for i := range plan.Steps {
		if s := &plan.Steps[i]; s.Invoke != nil {
			limit := argo.MaxInlineOutput
			if l, ok := b.limits[s.Name]; ok {
				limit = l
			}
			s.Invoke = &promoter{inner: s.Invoke, store: b.store, prod: artifact.Producer{Pipeline: plan.Name, Run: id, Step: s.Name}, limit: limit, fanOut: s.ForEach != nil}
		}
	}
	b.sim.Start(id, plan)
	return id, nil
}

type promoter struct {
	inner task.Invoker
	store *artifact.Store
	prod  artifact.Producer
	limit int
	// The simulator does not tell an instance its index, which the
	// task mode reads from its pod: instances are numbered as they
	// start, so that each stores its values in a place of its own.
	fanOut bool
	n      atomic.Int64
}

func (p *promoter) Invoke(ctx context.Context, in []byte) ([]byte, error) {
	prod := p.prod
	if p.fanOut {
		i := int(p.n.Add(1))
		prod.Instance = &i
	}
	ctx = artifact.NewContext(ctx, artifact.Scope{Store: p.store, Producer: prod})
	in, err := artifact.Resolve(ctx, in)
	if err != nil {
		return nil, err
	}
	out, err := p.inner.Invoke(ctx, in)
	if err != nil {
		return nil, err
	}
	return artifact.Promote(ctx, out, p.limit)
}

type madeOut struct {
	Blob   string
	Chunks []string
}

func bigChunks() []string {
	return []string{strings.Repeat("a", 6000), strings.Repeat("b", 6000), strings.Repeat("c", 6000)}
}

// bigPipeline: "make" outputs a 300 KB blob, over the in-band limit of
// a step a fan-out iterates over, and three 6000-byte chunks; "grow"
// fans out over the chunks, each instance returning its chunk three
// times (over 16 KiB); "total" adds up the lengths of what grow
// collected.
func bigPipeline() *pipeline.Pipeline {
	p := pipeline.New("big", nil)
	mk := pipeline.Add(p, task.New("make", func(context.Context, struct{}) (madeOut, error) {
		return madeOut{Blob: strings.Repeat("z", 300_000), Chunks: bigChunks()}, nil
	}), struct{}{})
	type chunkIn struct{ Chunk pipeline.Ref[string] }
	grow := pipeline.ForEach(p, task.New("grow", func(_ context.Context, in chunkIn) (string, error) {
		return strings.Repeat(in.Chunk.Get(), 3), nil
	}), pipeline.Field[[]string](mk.Output(), "Chunks"), func(c pipeline.Ref[string]) chunkIn { return chunkIn{c} })
	type xsIn struct{ Xs pipeline.Ref[[]string] }
	pipeline.Add(p, task.New("total", func(_ context.Context, in xsIn) (int, error) {
		n := 0
		for _, x := range in.Xs.Get() {
			n += len(x)
		}
		return n, nil
	}), xsIn{grow.Collect()})
	return p
}

// The run's promoted values are deleted when Watch sees it end, but the
// final status holds the outputs they stood for: the step's, each
// fan-out instance's and the collected one. The Workflow keeps the
// references. A second Watch after the end finds the values gone and
// gets the references.
func TestFinalStatusHoldsPromotedValues(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	cs := fake.NewSimpleClientset()
	nameOnCreate(cs)
	sim := newSim(cs, nil)
	defer sim.Close()
	root := "file://" + t.TempDir()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	s, err := artifact.Open(ctx, root)
	require.NoError(t, err)
	defer s.Close()
	b := &promotingBackend{simBackend: &simBackend{Backend: argo.New(cs, testOptions()), sim: sim}, store: s, limits: map[string]int{"make": argo.MaxInlineItems}}

	var last *backends.RunStatus
	art, err := pipeline.Compile(ctx, bigPipeline(), b, &pipeline.CompileOptions{Artifacts: root})
	require.NoError(t, err)
	id, err := b.Submit(ctx, art, &backends.SubmitOptions{})
	require.NoError(t, err)
	st, err := b.Watch(ctx, id, &backends.WatchOptions{Progress: func(s *backends.RunStatus) {
		if m := s.Step("make"); !s.Phase.Done() && m.Phase == backends.PhaseSucceeded {
			assert.True(t, artifact.HasValues(m.Output), "make's output went out of band: %.200s", m.Output)
		}
		last = s
	}})
	require.NoError(t, err)
	require.Equal(t, backends.PhaseSucceeded, st.Phase, "%+v", st)
	assert.Equal(t, st, last, "the last progress is the final status")

	made, _ := json.Marshal(madeOut{Blob: strings.Repeat("z", 300_000), Chunks: bigChunks()})
	assert.JSONEq(t, string(made), string(step(t, st, "make").Output))
	var grown []string
	for i, c := range bigChunks() {
		g := strings.Repeat(c, 3)
		grown = append(grown, g)
		in := step(t, st, "grow").Instances[i]
		var got string
		require.NoError(t, json.Unmarshal(in.Output, &got), "%s: %.200s", in.Name, in.Output)
		assert.Equal(t, g, got, in.Name)
	}
	all, _ := json.Marshal(grown)
	assert.JSONEq(t, string(all), string(step(t, st, "grow").Output), "the collected output")
	assert.Equal(t, "54000", string(step(t, st, "total").Output))

	objs, err := s.List(ctx, "big", id)
	require.NoError(t, err)
	for _, o := range objs {
		assert.NotContains(t, o.Key, "/"+artifact.ValuesDir+"/", "a promoted value is left after the run")
	}
	// Only the status: the Workflow still holds the references.
	wf, err := cs.ArgoprojV1alpha1().Workflows("default").Get(ctx, id, metav1.GetOptions{})
	require.NoError(t, err)
	assert.True(t, artifact.HasValues(step(t, argo.Status(wf), "make").Output))

	again, err := b.Watch(ctx, id, nil)
	require.NoError(t, err)
	assert.True(t, artifact.HasValues(step(t, again, "make").Output), "the values are gone: %.200s", step(t, again, "make").Output)
	assert.Equal(t, "54000", string(step(t, again, "total").Output))
}

func step(t *testing.T, st *backends.RunStatus, name string) *backends.StepStatus {
	t.Helper()
	s := st.Step(name)
	require.NotNil(t, s, "step %q in %v", name, st)
	return s
}

// A ref to a field of a Go task's output is an expression Argo evaluates
// through float64 (see "# Size budget" in the package doc): an integer
// beyond 2^53 arrives rounded. The whole output, a plain tag, arrives
// exactly, as on every other backend.
func TestFieldRefNumbersGoThroughFloat64(t *testing.T) {
	type big struct{ N int64 }
	const n = 1<<53 + 1
	p := pipeline.New("numbers", nil)
	src := pipeline.Add(p, task.New("src", func(context.Context, struct{}) (big, error) { return big{N: n}, nil }), struct{}{})
	type in struct {
		Field pipeline.Ref[int64]
		Whole pipeline.Ref[big]
	}
	pipeline.Add(p, task.New("use", func(_ context.Context, in in) ([2]int64, error) {
		return [2]int64{in.Field.Get(), in.Whole.Get().N}, nil
	}), in{Field: pipeline.Field[int64](src.Output(), "N"), Whole: src.Output()})

	cs := fake.NewSimpleClientset()
	nameOnCreate(cs)
	s := newSim(cs, nil)
	t.Cleanup(s.Close)
	st, err := pipeline.Run(t.Context(), p, &simBackend{Backend: argo.New(cs, testOptions()), sim: s}, nil)
	require.NoError(t, err)
	assert.Equal(t, fmt.Sprintf("[%d,%d]", n-1, n), string(st.Step("use").Output))
}

package kubejob_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/sluice-ml/sluice/artifact"
	"github.com/sluice-ml/sluice/backends"
	"github.com/sluice-ml/sluice/backends/kubejob"
	"github.com/sluice-ml/sluice/backends/kubepod"
	"github.com/sluice-ml/sluice/pipeline"
	"github.com/sluice-ml/sluice/task"
)

// promoting is a simBackend whose Go tasks do with large values what the
// task mode does in a pod (the simulator invokes tasks as they are): read
// back the promoted values of their input, and store the parts of their
// output over the termination message's limit in the run's store
// (artifact.Promote).
// A step named in gates starts its task once its channel is closed. The
// tasks share store, the run's store opened once: opening a file:// store
// lists it, which fails now and then while another task renames a file
// into it.
type promoting struct {
	*simBackend
	run   string
	store *artifact.Store
	gates map[string]chan struct{}
}

func (b *promoting) Compile(ctx context.Context, plan *backends.Plan, opts *backends.CompileOptions) (backends.Artifact, error) {
	for i := range plan.Steps {
		if s := &plan.Steps[i]; s.Invoke != nil {
			s.Invoke = &promoter{inner: s.Invoke, store: b.store, pipeline: plan.Name, run: b.run, step: s.Name, gate: b.gates[s.Name]}
		}
	}
	return b.simBackend.Compile(ctx, plan, opts)
}

type promoter struct {
	inner               task.Invoker
	store               *artifact.Store
	pipeline, run, step string
	gate                chan struct{}
}

func (p *promoter) Invoke(ctx context.Context, in []byte) ([]byte, error) {
	if p.gate != nil {
		select {
		case <-p.gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	prod := artifact.Producer{Pipeline: p.pipeline, Run: p.run, Step: p.step}
	if a, ok := task.AttemptFrom(ctx); ok && a.Instance >= 0 {
		prod.Instance = &a.Instance
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
	return artifact.Promote(ctx, out, kubejob.MaxTerminationMessage)
}

type madeOut struct {
	Chunks []string
	N      int
}

// bigPipeline: "make" outputs three 2000-byte chunks, over the 4 KiB
// termination message; "grow" fans out over them, each instance
// returning its chunk three times (6000 bytes); "total" adds up the
// lengths of what grow collected.
func bigPipeline() *pipeline.Pipeline {
	p := pipeline.New("big", nil)
	mk := pipeline.Add(p, task.New("make", func(context.Context, struct{}) (madeOut, error) {
		return madeOut{Chunks: bigChunks(), N: 3}, nil
	}), struct{}{})
	grow := pipeline.ForEach(p, task.New("grow", func(_ context.Context, in struct{ Chunk pipeline.Ref[string] }) (string, error) {
		return strings.Repeat(in.Chunk.Get(), 3), nil
	}), pipeline.Field[[]string](mk.Output(), "Chunks"), func(c pipeline.Ref[string]) struct{ Chunk pipeline.Ref[string] } {
		return struct{ Chunk pipeline.Ref[string] }{c}
	})
	pipeline.Add(p, task.New("total", func(_ context.Context, in struct{ Xs pipeline.Ref[[]string] }) (int, error) {
		n := 0
		for _, x := range in.Xs.Get() {
			n += len(x)
		}
		return n, nil
	}), struct{ Xs pipeline.Ref[[]string] }{grow.Collect()})
	return p
}

// openStore opens a file:// store for t.
func openStore(t *testing.T) (string, *artifact.Store) {
	t.Helper()
	root := "file://" + t.TempDir()
	s, err := artifact.Open(t.Context(), root)
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	return root, s
}

func bigChunks() []string {
	return []string{strings.Repeat("a", 2000), strings.Repeat("b", 2000), strings.Repeat("c", 2000)}
}

// assertWholeOutputs checks that st, the final status of a run of
// bigPipeline, holds every output whole, as the local backend gives
// them, and that the run's store holds none of its promoted values.
func assertWholeOutputs(t *testing.T, st *backends.RunStatus, root string) {
	t.Helper()
	require.Equal(t, backends.PhaseSucceeded, st.Phase, "%+v", st)
	made, _ := json.Marshal(madeOut{Chunks: bigChunks(), N: 3})
	assert.JSONEq(t, string(made), string(step(t, st, "make").Output))
	var grown []string
	for i, c := range bigChunks() {
		g := strings.Repeat(c, 3)
		grown = append(grown, g)
		in := step(t, st, "grow").Instances[i]
		assert.False(t, artifact.HasValues(in.Output), "instance %s keeps a reference: %.200s", in.Name, in.Output)
		var got string
		require.NoError(t, json.Unmarshal(in.Output, &got), in.Name)
		assert.Equal(t, g, got, in.Name)
	}
	all, _ := json.Marshal(grown)
	assert.JSONEq(t, string(all), string(step(t, st, "grow").Output), "the collected output")
	assert.Equal(t, "18000", string(step(t, st, "total").Output))

	s, err := artifact.Open(t.Context(), root)
	require.NoError(t, err)
	defer s.Close()
	objs, err := s.List(t.Context(), "big", st.RunID)
	require.NoError(t, err)
	for _, o := range objs {
		assert.NotContains(t, o.Key, "/"+artifact.ValuesDir+"/", "a promoted value is left after the run")
	}
}

// The run's promoted values are deleted when it ends, but its final
// status holds the outputs they stood for: the step's, each fan-out
// instance's and the collected one.
func TestFinalStatusHoldsPromotedValues(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	h := newHarness(t)
	defer h.Close()
	root, store := openStore(t)
	const id = "big-1"
	b := &promoting{simBackend: h.backend(&kubejob.Options{Pod: kubepod.Options{Image: testImage}}), run: id, store: store}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()

	var last *backends.RunStatus
	art, err := pipeline.Compile(ctx, bigPipeline(), b, &pipeline.CompileOptions{Artifacts: root})
	require.NoError(t, err)
	_, err = b.Submit(ctx, art, &backends.SubmitOptions{RunID: id})
	require.NoError(t, err)
	st, err := b.Watch(ctx, id, &backends.WatchOptions{Progress: func(s *backends.RunStatus) {
		if !s.Phase.Done() {
			// Before the end, outputs are as they travelled.
			if m := s.Step("make"); m.Phase == backends.PhaseSucceeded {
				assert.True(t, artifact.HasValues(m.Output), "make's output went out of band: %.200s", m.Output)
			}
		}
		last = s
	}})
	require.NoError(t, err)
	assertWholeOutputs(t, st, root)
	assert.Equal(t, st, last, "the last progress is the final status")
}

// Watching a run orchestrated in the cluster, the submitter reads each
// promoted output back as soon as it sees its step succeed, before the
// in-cluster orchestrator deletes the values when the run ends, so its
// final status holds the outputs too.
func TestInClusterFinalStatusHoldsPromotedValues(t *testing.T) {
	h := newHarness(t)
	defer h.Close()
	root, store := openStore(t)
	const id = "big-remote"
	opts := &kubejob.Options{Pod: kubepod.Options{Image: testImage}, RunID: id, InCluster: true}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()

	// total, the last step, waits until the submitter has seen grow
	// succeed: the run cannot end, and its values cannot be deleted,
	// before the submitter has had the chance to read them. grow waits
	// until it has seen make succeed, so that both orchestrators open
	// the store (a file:// store is listed then) while no task writes.
	seenMake, seenGrow := make(chan struct{}), make(chan struct{})
	p := bigPipeline()
	sub := &promoting{simBackend: h.backend(opts), run: id}
	art, err := pipeline.Compile(ctx, p, sub, &pipeline.CompileOptions{Artifacts: root})
	require.NoError(t, err)
	_, err = sub.Submit(ctx, art, &backends.SubmitOptions{})
	require.NoError(t, err)

	t.Setenv(kubejob.EnvOrchestrator, "1")
	inPod := &promoting{simBackend: h.backend(opts), run: id, store: store, gates: map[string]chan struct{}{"grow": seenMake, "total": seenGrow}}
	art2, err := pipeline.Compile(ctx, p, inPod, &pipeline.CompileOptions{Artifacts: root})
	require.NoError(t, err)
	_, err = inPod.Submit(ctx, art2, &backends.SubmitOptions{RunID: id})
	require.NoError(t, err)

	opened := map[string]bool{}
	open := func(step string, gate chan struct{}, s *backends.RunStatus) {
		if !opened[step] && s.Step(step).Phase == backends.PhaseSucceeded {
			opened[step] = true
			close(gate)
		}
	}
	st, err := sub.Watch(ctx, id, &backends.WatchOptions{Progress: func(s *backends.RunStatus) {
		open("make", seenMake, s)
		open("grow", seenGrow, s)
	}})
	require.NoError(t, err)
	// The in-cluster orchestrator's run ends once it deleted the values.
	_, err = inPod.Watch(ctx, id, nil)
	require.NoError(t, err)
	assertWholeOutputs(t, st, root)
}

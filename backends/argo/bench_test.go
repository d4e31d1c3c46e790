package argo_test

import (
	"context"
	"fmt"
	"runtime"
	"runtime/debug"
	rtmetrics "runtime/metrics"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"sigs.k8s.io/yaml"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"

	"github.com/sluice-ml/sluice/backends"
	"github.com/sluice-ml/sluice/backends/argo"
	"github.com/sluice-ml/sluice/backends/kubepod"
	"github.com/sluice-ml/sluice/internal/benchdag"
	"github.com/sluice-ml/sluice/pipeline"
	"github.com/sluice-ml/sluice/task"
)

// BenchmarkCompile10k compiles a 10,000-task DAG (from its Plan) and, in
// the same run, yaml.Marshal of the resulting Workflow: the floor. It
// reports the ratio of the two. Each iteration times both sides three
// times, interleaved, and keeps the fastest of each, so that a burst of
// load from other processes on a shared machine does not decide the ratio.
func BenchmarkCompile10k(b *testing.B) {
	plan, err := chain(10000).Plan(nil)
	require.NoError(b, err)
	be := argo.New(nil, &argo.Options{Pod: kubepod.Options{Image: testImage, Command: testCommand}, MaxSize: 64 << 20})
	opts := &backends.CompileOptions{}
	// Warm up both sides (type caches of encoding/json and go-yaml) so
	// that with -benchtime 1x neither pays the first-use cost alone.
	warm, err := be.Compile(context.Background(), plan, opts)
	require.NoError(b, err)
	_, err = yaml.Marshal(mustWF(b, warm))
	require.NoError(b, err)
	var compile, marshal time.Duration
	var size int
	for b.Loop() {
		var bestCompile, bestMarshal time.Duration
		for range 3 {
			// Collect before each timed half, so that neither pays for
			// the other's garbage.
			runtime.GC()
			t0 := time.Now()
			art, err := be.Compile(context.Background(), plan, opts)
			d := time.Since(t0)
			require.NoError(b, err)
			if bestCompile == 0 || d < bestCompile {
				bestCompile = d
			}
			w := mustWF(b, art)
			runtime.GC()
			t1 := time.Now()
			_, err = yaml.Marshal(w)
			d = time.Since(t1)
			require.NoError(b, err)
			if bestMarshal == 0 || d < bestMarshal {
				bestMarshal = d
			}
			size = len(art.Documents()[0])
		}
		compile += bestCompile
		marshal += bestMarshal
	}
	b.ReportMetric(float64(compile)/float64(marshal), "compile/marshal")
	b.ReportMetric(float64(size)/10000, "bytes/task")
}

func mustWF(tb testing.TB, art backends.Artifact) any {
	var p *wfv1.Workflow
	require.True(tb, art.As(&p))
	return p
}

// Bytes per static task with dedup: the growth of the document per added
// identical step.
func TestBytesPerStaticTask(t *testing.T) {
	size := func(n int) int {
		art, err := pipeline.Compile(t.Context(), chain(n), argo.New(nil, &argo.Options{Pod: kubepod.Options{Image: testImage, Command: testCommand}, MaxSize: 64 << 20}), nil)
		require.NoError(t, err)
		return len(art.Documents()[0])
	}
	per := float64(size(1001)-size(1)) / 1000
	t.Logf("bytes per static task: %.1f", per)
	assert.LessOrEqual(t, per, 200.0, "the goal: at most 200 bytes per static task")
}

// A dynamic fan-out compiles to the same size whatever the width of the
// list at run time: one task over withParam, never one task per element.
// When the list is a parameter, whose default the document holds, the
// document grows by the default's text and nothing else.
func TestFanOutSizeIndependentOfWidth(t *testing.T) {
	compile := func(p *pipeline.Pipeline, items pipeline.Ref[[]int]) string {
		sq := pipeline.ForEach(p, task.New("sq", func(_ context.Context, in pipeline.Ref[int]) (int, error) { return in.Get() * in.Get(), nil }),
			items, func(it pipeline.Ref[int]) pipeline.Ref[int] { return it }).Limit(8)
		pipeline.Add(p, task.New("sum", func(_ context.Context, in struct{ Xs pipeline.Ref[[]int] }) (int, error) { return 0, nil }),
			struct{ Xs pipeline.Ref[[]int] }{Xs: sq.Collect()})
		art, err := pipeline.Compile(t.Context(), p, argo.New(nil, testOptions()), nil)
		require.NoError(t, err)
		return string(art.Documents()[0])
	}
	fromStep := func(n int) string {
		p := pipeline.New("fan", nil)
		list := pipeline.Add(p, task.New("list", func(context.Context, struct{}) ([]int, error) { return make([]int, n), nil }), struct{}{})
		return compile(p, list.Output())
	}
	fromParam := func(n int) string {
		p := pipeline.New("fan", nil)
		return compile(p, pipeline.NewParam(p, "xs", make([]int, n)).Ref())
	}
	ten, thousand := fromStep(10), fromStep(1000)
	t.Logf("fan-out document: %d bytes 10 wide, %d bytes 1000 wide", len(ten), len(thousand))
	assert.Equal(t, len(ten), len(thousand))
	assert.Equal(t, 1, strings.Count(thousand, "withParam:"))

	ten, thousand = fromParam(10), fromParam(1000)
	zeros := func(n int) int { return len(strings.Repeat("0,", n)) - 1 }
	assert.Equal(t, zeros(1000)-zeros(10), len(thousand)-len(ten), "only the parameter's default grows")
	assert.Equal(t, 1, strings.Count(thousand, "withParam:"))
}

// BenchmarkUserPath measures a user's compile end to end — build the
// pipeline, validate and lower it, compile it for Argo and render the
// YAML — on the random DAG of package benchdag (three reads per task), of
// Go and of container tasks, 1k and 10k of them, and in the same run its
// floor: sigs.k8s.io/yaml's Marshal of the same Workflow object. It
// reports per task the time, the document's bytes and the allocations of
// the path alone; path/floor, the time over the floor's; and
// peak-heap-MiB, the most heap in objects (live and not yet collected)
// seen during the path, sampled every millisecond from a collected start;
// live-heap-MiB, what the compiled artifact holds after a collection; and
// peak-live-MiB, the most live heap the collector found during a second
// compile run at GOGC 5 (peak-live/doc: over the document's size).
//
//	go test -run '^$' -bench BenchmarkUserPath -benchtime 3x ./backends/argo/
func BenchmarkUserPath(b *testing.B) {
	for _, k := range []benchdag.Kind{benchdag.Go, benchdag.Container} {
		for _, n := range []int{1000, 10000} {
			b.Run(fmt.Sprintf("%s/tasks=%d", k, n), func(b *testing.B) {
				be := argo.New(nil, &argo.Options{Pod: kubepod.Options{Image: testImage, Command: testCommand}, MaxSize: 64 << 20})
				var path, floor time.Duration
				var mallocs uint64
				var size, iters int
				var peak, live uint64
				for b.Loop() {
					runtime.GC()
					var before, after runtime.MemStats
					runtime.ReadMemStats(&before)
					stop := samplePeakHeap()
					t0 := time.Now()
					art, err := pipeline.Compile(context.Background(), benchdag.Pipeline(n, k, 7), be, nil)
					d := time.Since(t0)
					peak = max(peak, stop())
					runtime.ReadMemStats(&after)
					require.NoError(b, err)
					// What the compile holds on to at its end, when all
					// it built is there (the pipeline, its plan, the
					// Workflow and its document): the live heap, without
					// the garbage the peak above counts until the
					// collector runs.
					runtime.GC()
					live = max(live, heapObjects()-before.HeapAlloc)
					runtime.KeepAlive(art)
					path += d
					mallocs += after.Mallocs - before.Mallocs
					size = len(art.Documents()[0])
					wf := mustWF(b, art)
					runtime.GC()
					t1 := time.Now()
					_, err = yaml.Marshal(wf)
					floor += time.Since(t1)
					require.NoError(b, err)
					iters++
				}
				// The peak of the live heap, in a pass of its own: with
				// the collector running at every 5% of growth, the live
				// heap it marks at each cycle follows the path closely.
				pl, doc := peakLiveHeap(func() backends.Artifact {
					art, err := pipeline.Compile(context.Background(), benchdag.Pipeline(n, k, 7), be, nil)
					require.NoError(b, err)
					return art
				})
				per := float64(iters * n)
				b.ReportMetric(float64(path.Nanoseconds())/per, "ns/task")
				b.ReportMetric(float64(size)/float64(n), "bytes/task")
				b.ReportMetric(float64(mallocs)/per, "allocs/task")
				b.ReportMetric(float64(path)/float64(floor), "path/floor")
				b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
				b.ReportMetric(float64(live)/(1<<20), "live-heap-MiB")
				b.ReportMetric(float64(pl)/(1<<20), "peak-live-MiB")
				b.ReportMetric(float64(pl)/float64(doc), "peak-live/doc")
			})
		}
	}
}

// peakLiveHeap runs compile with the collector at GOGC 5 and returns the
// most live heap any collection during it found, over the live heap
// before it, and the size of the compiled document.
func peakLiveHeap(compile func() backends.Artifact) (peak uint64, doc int) {
	const name = "/gc/heap/live:bytes"
	runtime.GC()
	base := readMetric(name)
	defer debug.SetGCPercent(debug.SetGCPercent(5))
	stop := sampleMax(name)
	art := compile()
	runtime.GC() // the end, with the artifact live
	m := stop()
	doc = len(art.Documents()[0])
	runtime.KeepAlive(art)
	if m < base {
		return 0, doc
	}
	return m - base, doc
}

// heapObjects is the heap's bytes in objects now.
func heapObjects() uint64 { return readMetric("/memory/classes/heap/objects:bytes") }

// samplePeakHeap samples the heap's bytes in objects every millisecond
// until the returned function is called, which returns the most seen.
func samplePeakHeap() (stop func() uint64) { return sampleMax("/memory/classes/heap/objects:bytes") }

// sampleMax samples the runtime metric name every millisecond until the
// returned function is called, which returns the most seen (its value
// then included).
func sampleMax(name string) (stop func() uint64) {
	done := make(chan struct{})
	peak := make(chan uint64)
	go func() {
		m := readMetric(name)
		t := time.NewTicker(time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				m = max(m, readMetric(name))
			case <-done:
				peak <- max(m, readMetric(name))
				return
			}
		}
	}()
	return func() uint64 { close(done); return <-peak }
}

// readMetric reads the runtime metric name, a uint64.
func readMetric(name string) uint64 {
	s := []rtmetrics.Sample{{Name: name}}
	rtmetrics.Read(s)
	return s[0].Value.Uint64()
}

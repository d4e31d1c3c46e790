package kubejob_test

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"

	"github.com/sluice-ml/sluice/backends"
	"github.com/sluice-ml/sluice/backends/kubejob"
	"github.com/sluice-ml/sluice/backends/kubepod"
	"github.com/sluice-ml/sluice/internal/benchdag"
)

// BenchmarkCompile compiles the Plan of the random DAG of package benchdag
// (three reads per task), of Go and of container tasks, 10,000 of them,
// for Kubernetes Jobs: a Job per step and each rendered as YAML. In the
// same run it measures its floor, json.Marshal of the compiled Jobs (the
// least a compile that produces them must write), and reports per task
// the time and the allocations of the compile alone, and compile/floor.
// Each iteration times both three times, interleaved, after a GC each,
// and keeps the fastest of each, so that a burst of load from other
// processes on a shared machine does not decide the ratio.
//
//	go test -run '^$' -bench BenchmarkCompile -benchtime 3x ./backends/kubejob/
func BenchmarkCompile(b *testing.B) {
	const n = 10000
	for _, k := range []benchdag.Kind{benchdag.Go, benchdag.Container} {
		b.Run(fmt.Sprintf("%s/tasks=%d", k, n), func(b *testing.B) {
			plan, err := benchdag.Pipeline(n, k, 7).Plan(nil)
			if err != nil {
				b.Fatal(err)
			}
			be := kubejob.New(nil, &kubejob.Options{Pod: kubepod.Options{Image: testImage}, RunID: "bench"})
			ctx, opts := context.Background(), &backends.CompileOptions{}
			jobsOf := func(art backends.Artifact) []*batchv1.Job {
				var jobs []*batchv1.Job
				if !art.As(&jobs) || len(jobs) != n {
					b.Fatalf("%d Jobs, want %d", len(jobs), n)
				}
				return jobs
			}
			// Warm up both sides (the type caches of encoding/json).
			art, err := be.Compile(ctx, plan, opts)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := json.Marshal(jobsOf(art)); err != nil {
				b.Fatal(err)
			}
			var compile, floor time.Duration
			var mallocs uint64
			iters := 0
			for b.Loop() {
				var bestCompile, bestFloor time.Duration
				for range 3 {
					runtime.GC()
					var before, after runtime.MemStats
					runtime.ReadMemStats(&before)
					t0 := time.Now()
					art, err := be.Compile(ctx, plan, opts)
					d := time.Since(t0)
					runtime.ReadMemStats(&after)
					if err != nil {
						b.Fatal(err)
					}
					mallocs += after.Mallocs - before.Mallocs
					if bestCompile == 0 || d < bestCompile {
						bestCompile = d
					}
					jobs := jobsOf(art)
					runtime.GC()
					t1 := time.Now()
					_, err = json.Marshal(jobs)
					d = time.Since(t1)
					if err != nil {
						b.Fatal(err)
					}
					if bestFloor == 0 || d < bestFloor {
						bestFloor = d
					}
				}
				compile += bestCompile
				floor += bestFloor
				iters++
			}
			per := float64(iters * n)
			b.ReportMetric(float64(compile.Nanoseconds())/per, "ns/task")
			b.ReportMetric(float64(mallocs)/(3*per), "allocs/task")
			b.ReportMetric(float64(floor.Nanoseconds())/per, "floor-ns/task")
			b.ReportMetric(float64(compile)/float64(floor), "compile/floor")
		})
	}
}

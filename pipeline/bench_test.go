package pipeline_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"testing"

	"github.com/sluice-ml/sluice/pipeline"
	"github.com/sluice-ml/sluice/resources"
	"github.com/sluice-ml/sluice/task"
)

// Identifiers in this file start with "bench" because package pipeline_test
// is shared with other test files.

type benchOut struct {
	V int `json:"v"`
}

type benchIn struct {
	Seed int                          `json:"seed"`
	Deps []pipeline.Ref[benchOut]     `json:"deps"`
	Opts map[string]string            `json:"opts,omitempty"`
	Grid []float64                    `json:"grid,omitempty"`
	Meta struct{ Owner, Team string } `json:"meta"`
}

func benchWork(context.Context, benchIn) (benchOut, error) { return benchOut{}, nil }

// benchDAG is a random DAG over n tasks: data[i] are the (up to 3) earlier
// tasks task i reads, after[i] the earlier tasks it is ordered after.
type benchDAG struct {
	n           int
	data, after [][]int32
}

func newBenchDAG(n int) benchDAG {
	r := rand.New(rand.NewPCG(42, uint64(n)))
	g := benchDAG{n: n, data: make([][]int32, n), after: make([][]int32, n)}
	for i := 1; i < n; i++ {
		for len(g.data[i]) < min(i, 3) {
			if j := int32(r.IntN(i)); !slices.Contains(g.data[i], j) {
				g.data[i] = append(g.data[i], j)
			}
		}
		if i%10 == 0 {
			g.after[i] = append(g.after[i], int32(r.IntN(i)))
		}
	}
	return g
}

// pipeline adds the DAG's tasks to a new pipeline, each with a resource
// profile and its data dependencies as Ref fields of its input.
func (g benchDAG) pipeline() *pipeline.Pipeline {
	p := pipeline.New("bench", &pipeline.Options{
		Defaults:  pipeline.Defaults{Resources: resources.Profile{CPU: "500m", Memory: "1Gi"}},
		NodePools: []resources.NodePool{{Name: "cpu", Provider: resources.ProviderGKE, Node: resources.Capacity{CPU: "32", Memory: "128Gi"}}},
	})
	base := task.New("task", benchWork)
	profiles := []resources.Profile{
		{CPU: "1", Memory: "2Gi"},
		{CPU: "250m", Memory: "512Mi", NodePool: "cpu"},
		{CPU: "4", Memory: "16Gi", EphemeralStorage: "10Gi"},
	}
	steps := make([]pipeline.Step[benchOut], g.n)
	for i := range g.n {
		in := benchIn{Seed: i, Grid: []float64{0.1, 0.01}}
		in.Meta.Owner = "bench"
		for _, j := range g.data[i] {
			in.Deps = append(in.Deps, steps[j].Output())
		}
		t := base.WithName(fmt.Sprintf("Task %05d", i)).WithResources(profiles[i%len(profiles)])
		steps[i] = pipeline.Add(p, t, in)
		for _, j := range g.after[i] {
			steps[i].After(steps[j])
		}
	}
	return p
}

// kahn is the baseline: a plain topological sort of the same edges, with
// the adjacency built on each call as the validator builds its own.
func (g benchDAG) kahn() []int32 {
	indeg := make([]int32, g.n)
	users := make([][]int32, g.n)
	for i := range g.n {
		for _, deps := range [2][]int32{g.data[i], g.after[i]} {
			for _, j := range deps {
				indeg[i]++
				users[j] = append(users[j], int32(i))
			}
		}
	}
	queue := make([]int32, 0, g.n)
	for i := range g.n {
		if indeg[i] == 0 {
			queue = append(queue, int32(i))
		}
	}
	for k := 0; k < len(queue); k++ {
		for _, u := range users[queue[k]] {
			if indeg[u]--; indeg[u] == 0 {
				queue = append(queue, u)
			}
		}
	}
	return queue
}

// benchLoop runs f in a b.Loop and reports time and allocations per task,
// and the process's CPU time per task (cpu-ns/task, where the system
// reports it): on a machine shared with other work, the wall-clock time
// grows with their load and the CPU time much less.
func benchLoop(b *testing.B, tasks int, f func()) {
	b.ReportAllocs()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	cpu0, cpuOK := processCPU()
	iters := 0
	for b.Loop() {
		f()
		iters++
	}
	cpu1, _ := processCPU()
	runtime.ReadMemStats(&after)
	per := float64(iters * tasks)
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/per, "ns/task")
	b.ReportMetric(float64(after.Mallocs-before.Mallocs)/per, "allocs/task")
	if cpuOK {
		b.ReportMetric(float64((cpu1-cpu0).Nanoseconds())/per, "cpu-ns/task")
	}
}

func BenchmarkValidatePlan(b *testing.B) {
	sizes := []int{1000, 10000}
	for _, n := range sizes {
		b.Run(fmt.Sprintf("tasks=%d", n), func(b *testing.B) {
			p := newBenchDAG(n).pipeline()
			plan, err := p.Plan(nil)
			if err != nil || len(plan.Steps) != n {
				b.Fatalf("setup: %d steps, %v", len(plan.Steps), err)
			}
			benchLoop(b, n, func() {
				if _, err := p.Plan(nil); err != nil {
					b.Fatal(err)
				}
			})
		})
	}
	for _, n := range sizes {
		b.Run(fmt.Sprintf("baseline-kahn/tasks=%d", n), func(b *testing.B) {
			g := newBenchDAG(n)
			if len(g.kahn()) != n {
				b.Fatal("setup: the DAG has a cycle")
			}
			benchLoop(b, n, func() { g.kahn() })
		})
	}
}

package pipeline_test

import (
	"context"
	"fmt"
	"log"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/sluice-ml/sluice/pipeline"
	"github.com/sluice-ml/sluice/resources"
	"github.com/sluice-ml/sluice/task"
)

type PrepIn struct{ Source string }
type PrepOut struct{ Rows int }

type TrainIn struct {
	Data pipeline.Ref[PrepOut] // wired from an upstream step
	LR   pipeline.Ref[float64] // wired from a parameter
}
type TrainOut struct{ Loss float64 }

var prep = task.New("prep", func(ctx context.Context, in PrepIn) (PrepOut, error) {
	return PrepOut{Rows: 1000}, nil
})

var train = task.New("train", func(ctx context.Context, in TrainIn) (TrainOut, error) {
	return TrainOut{Loss: 1 / float64(in.Data.Get().Rows)}, nil
})

// Wiring: Add returns a typed Step, and a Ref field in the next task's input
// is the data dependency. Passing a Ref of the wrong type does not compile.
func ExampleAdd() {
	p := pipeline.New("churn", nil)
	lr := pipeline.NewParam(p, "lr", 0.01)
	data := pipeline.Add(p, prep, PrepIn{Source: "s3://bucket/raw"})
	pipeline.Add(p, train, TrainIn{Data: data.Output(), LR: lr.Ref()})

	plan, err := p.Plan(map[string]string{"lr": "0.05"})
	if err != nil {
		log.Fatal(err)
	}
	for _, s := range plan.Steps {
		fmt.Printf("%s after %v: %s %v\n", s.Name, s.DependsOn, s.Input.Template, s.Input.Refs)
	}
	fmt.Printf("lr = %s\n", plan.Params[0].Value)
	// Output:
	// prep after []: {"Source":"s3://bucket/raw"} []
	// train after [prep]: {"Data":{"$sluice":0},"LR":{"$sluice":1}} [prep params.lr]
	// lr = 0.05
}

// One validation pass reports every problem, each with a field path and a
// type; tests match on those, never on message text.
func ExamplePipeline_Validate() {
	p := pipeline.New("", nil)
	pipeline.Add(p, train.WithResources(resources.Profile{
		CPU:      "four",
		GPUModel: "A100-80GB",
		GPUs:     1,
		MIG:      "3g.20gb",
	}), TrainIn{})
	pipeline.Add(p, train, TrainIn{}).After(pipeline.Step[TrainOut]{})

	for _, fe := range pipeline.FieldErrors(p.Validate()) {
		fmt.Println(fe.Field, fe.Type)
	}
	// Output:
	// pipeline.name Required
	// pipeline.tasks[train].resources.cpu Invalid
	// pipeline.tasks[train].resources.mig Forbidden
	// pipeline.tasks[train].resources.mig Invalid
	// pipeline.tasks[train].name Duplicate
	// pipeline.tasks[train].after NotFound
}

// A MIG slice on a spot GKE pool: the profile names the pool and asks for
// preemptible capacity; the plan carries exactly the requests, node selector
// and tolerations a cluster autoscaler needs to grow that pool.
func Example_migOnSpotPool() {
	pools := []resources.NodePool{{
		Name:        "gpu-a100",
		Provider:    resources.ProviderGKE,
		Labels:      map[string]string{"cloud.google.com/gke-nodepool": "gpu-a100"},
		Taints:      []corev1.Taint{{Key: "nvidia.com/gpu", Value: "present", Effect: corev1.TaintEffectNoSchedule}},
		Spot:        true,
		MIGStrategy: resources.MIGMixed,
		Node:        resources.Capacity{CPU: "12", Memory: "170Gi", GPUModel: "A100-80GB", GPUs: 1, MIG: map[string]int{"3g.40gb": 2}},
	}}
	p := pipeline.New("finetune", &pipeline.Options{NodePools: pools})
	pipeline.Add(p, train.WithResources(resources.Profile{
		CPU: "4", Memory: "32Gi", MIG: "3g.40gb", NodePool: "gpu-a100", Preemptible: true,
	}).WithRetry(task.Retry{App: 1, Infra: 4, OnDemandFallback: true}), TrainIn{})

	plan, err := p.Plan(nil)
	if err != nil {
		log.Fatal(err)
	}
	r := plan.Steps[0].Resolved
	fmt.Println("limits:", r.Limits.Name("nvidia.com/mig-3g.40gb", "").String(), "x nvidia.com/mig-3g.40gb")
	fmt.Println("node selector:", r.Placement.NodeSelector)
	for _, t := range r.Placement.Tolerations {
		fmt.Printf("toleration: %s %s %s %s\n", t.Key, t.Operator, t.Value, t.Effect)
	}
	fmt.Println("on-demand fall-back selector:", r.OnDemand.NodeSelector)
	// Output:
	// limits: 1 x nvidia.com/mig-3g.40gb
	// node selector: map[cloud.google.com/gke-nodepool:gpu-a100 cloud.google.com/gke-spot:true]
	// toleration: cloud.google.com/gke-spot Equal true NoSchedule
	// toleration: nvidia.com/gpu Exists  NoSchedule
	// on-demand fall-back selector: map[cloud.google.com/gke-nodepool:gpu-a100]
}

// A dynamic fan-out over a list known only at run time, capped at two
// instances at once, gathered by a typed fan-in; a conditional step reads a
// field of the fan-in's consumer.
func ExampleForEach() {
	type Trial struct{ LR float64 }
	type TrialIn struct {
		Data  pipeline.Ref[PrepOut]
		Trial pipeline.Ref[Trial]
	}
	type PickIn struct{ Results pipeline.Ref[[]TrainOut] }
	type PickOut struct{ Best float64 }

	grid := task.New("grid", func(context.Context, struct{}) ([]Trial, error) {
		return []Trial{{0.1}, {0.01}, {0.001}}, nil
	})
	trial := task.New("trial", func(ctx context.Context, in TrialIn) (TrainOut, error) {
		return TrainOut{Loss: in.Trial.Get().LR}, nil
	})
	pick := task.New("pick", func(ctx context.Context, in PickIn) (PickOut, error) {
		return PickOut{}, nil
	})
	deploy := task.New("deploy", func(ctx context.Context, in struct{}) (struct{}, error) {
		return struct{}{}, nil
	})

	p := pipeline.New("sweep", nil)
	data := pipeline.Add(p, prep, PrepIn{Source: "s3://bucket/raw"})
	points := pipeline.Add(p, grid, struct{}{})
	trials := pipeline.ForEach(p, trial, points.Output(), func(t pipeline.Ref[Trial]) TrialIn {
		return TrialIn{Data: data.Output(), Trial: t}
	}).Limit(2)
	best := pipeline.Add(p, pick, PickIn{Results: trials.Collect()})
	pipeline.Add(p, deploy, struct{}{}).When(pipeline.Lt(pipeline.Field[float64](best.Output(), "Best"), 0.05))

	plan, err := p.Plan(nil)
	if err != nil {
		log.Fatal(err)
	}
	var sb strings.Builder
	if err := pipeline.WriteGraph(&sb, plan, pipeline.Mermaid); err != nil {
		log.Fatal(err)
	}
	fmt.Print(sb.String())
	// Output:
	// flowchart TD
	//   s0["prep"]
	//   s1["grid"]
	//   s2["trial<br/>for each in grid (2 at a time)"]
	//   s3["pick"]
	//   s4["deploy<br/>when pick.Best < 0.05"]
	//   s1 --> s2
	//   s0 --> s2
	//   s2 --> s3
	//   s3 --> s4
}

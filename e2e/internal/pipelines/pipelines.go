// Package pipelines holds the pipelines of the e2e tests, built by name
// both in the test process (which compiles and orchestrates them) and in
// the pods (program e2eprog, which runs their steps). Build also knows
// the conformance suite's pipelines and internal/hpocase's searches.
package pipelines

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/sluice-ml/sluice/artifact"
	"github.com/sluice-ml/sluice/backends/backendtest"
	"github.com/sluice-ml/sluice/internal/hpocase"
	"github.com/sluice-ml/sluice/pipeline"
	"github.com/sluice-ml/sluice/resources"
	"github.com/sluice-ml/sluice/serve"
	"github.com/sluice-ml/sluice/task"
)

// Environment of the e2e program.
const (
	// Env names the pipeline the program builds.
	Env = "SLUICE_E2E_PIPELINE"
	// ImageEnv is the image the program's cluster backends compile Go
	// tasks to (the orchestrator tests run the program as the
	// orchestrator).
	ImageEnv = "SLUICE_E2E_IMAGE"
	// Entrypoint is the program's path in its image.
	Entrypoint = "/ko-app/e2eprog"
)

// Names of the e2e tests' own pipelines.
const (
	Placement = "placement"
	Preempt   = "preempt"
	Steady    = "steady"
	Chain     = "chain"
	Stockout  = "stockout"
	Stuck     = "stuck"
	DAG200    = "dag200"
	Tolerant  = "tolerant"
	// TolerantOver is Tolerant with a quarter of its instances tolerated
	// (one of five, counted at run time), fewer than fail.
	TolerantOver = "tolerant-over"
	Cancel       = "cancel"
	BigValues    = "bigvalues"
	// ShardFail and ShardCancel are the sharded-run tests' pipelines.
	ShardFail   = "shardfail"
	ShardCancel = "shardcancel"
)

// Names returns every pipeline name Build knows.
func Names() []string {
	names := []string{Placement, Preempt, Steady, Chain, DAG200, Stockout, Stuck, Tolerant, TolerantOver, Cancel, BigValues, ShardFail, ShardCancel, Deploy, backendtest.RunMetadataName}
	names = append(names, hpocase.Names()...)
	for _, c := range backendtest.Cases() {
		names = append(names, c.Name)
	}
	return names
}

// Build returns a new copy of pipeline name, or nil.
func Build(name string) *pipeline.Pipeline {
	switch name {
	case Placement:
		return placement()
	case Preempt:
		return preempt()
	case Steady:
		return steady()
	case Chain:
		return chain(ChainLength)
	case Stockout:
		return stockout()
	case Stuck:
		return stuck()
	case DAG200:
		return layered(DAGLayers, DAGWidth)
	case Tolerant:
		return tolerant(Tolerant, func(f pipeline.Fan[int]) { f.Tolerate(2) })
	case TolerantOver:
		return tolerant(TolerantOver, func(f pipeline.Fan[int]) { f.TolerateFraction(0.25) })
	case Cancel:
		return cancelMidRun()
	case BigValues:
		return bigValues()
	case ShardFail:
		return shardFail()
	case ShardCancel:
		return shardCancel()
	case backendtest.RunMetadataName:
		return backendtest.RunMetadata()
	case Deploy:
		return DeployTo(os.Getenv(DeployNamespaceEnv), serve.Platform(os.Getenv(DeployPlatformEnv)))
	}
	if p, _ := hpocase.Build(name); p != nil {
		return p
	}
	i := slices.IndexFunc(backendtest.Cases(), func(c backendtest.Case) bool { return c.Name == name })
	if i < 0 {
		return nil
	}
	return backendtest.Cases()[i].Build()
}

// The node pools of testcluster.DefaultPools, as a pipeline declares them.
var (
	CPUPool = resources.NodePool{
		Name:     "cpu-pool",
		Provider: resources.ProviderGKE,
		Labels:   map[string]string{"cloud.google.com/gke-nodepool": "cpu-pool"},
		Node:     resources.Capacity{CPU: "8", Memory: "32Gi"},
	}
	CPUSpotPool = resources.NodePool{
		Name:     "spot",
		Provider: resources.ProviderGKE,
		Labels:   map[string]string{"cloud.google.com/gke-nodepool": "spot"},
		Node:     resources.Capacity{CPU: "8", Memory: "32Gi"},
		Spot:     true,
	}
	// GPUPool is on GKE's managed GPU stack: 1g.10gb partitions.
	GPUPool = resources.NodePool{
		Name:     "a100-mig",
		Provider: resources.ProviderGKE,
		Labels:   map[string]string{"cloud.google.com/gke-nodepool": "a100-mig"},
		Node:     resources.Capacity{CPU: "12", Memory: "170Gi", GPUModel: "A100-80GB", GPUs: 1, MIG: map[string]int{"1g.10gb": 7}},
		Spot:     true,
	}
)

var quick = task.Backoff{Initial: 100 * time.Millisecond, Factor: 2, Max: time.Second}

// Out is what the e2e pipelines' steps return.
type Out struct {
	Step    string `json:"step"`
	Attempt int    `json:"attempt"`
}

type none struct{}

func named(name string, f func(ctx context.Context, n int) error) task.Task[none, Out] {
	return task.New(name, func(ctx context.Context, _ none) (Out, error) {
		n := backendtest.CallNumber(name)
		if err := f(ctx, n); err != nil {
			return Out{}, err
		}
		return Out{Step: name, Attempt: n}, nil
	})
}

func ok(context.Context, int) error { return nil }

// placement: a step per kind of placement. "fallback" is preempted (an
// infrastructure failure) on its first attempt, so its last attempt runs
// on demand.
func placement() *pipeline.Pipeline {
	p := pipeline.New("placement", &pipeline.Options{
		NodePools: []resources.NodePool{CPUPool, CPUSpotPool, GPUPool},
		Defaults:  pipeline.Defaults{Resources: resources.Profile{CPU: "100m", Memory: "64Mi"}},
	})
	pipeline.Add(p, named("plain", ok), none{})
	pipeline.Add(p, named("cpu", ok).WithResources(resources.Profile{CPU: "1", Memory: "1Gi", NodePool: CPUPool.Name}), none{})
	pipeline.Add(p, named("spot", ok).WithResources(resources.Profile{CPU: "1", Memory: "1Gi", NodePool: CPUSpotPool.Name, Preemptible: true}), none{})
	pipeline.Add(p, named("mig", ok).WithResources(resources.Profile{CPU: "1", Memory: "1Gi", MIG: "1g.10gb", NodePool: GPUPool.Name}), none{})
	pipeline.Add(p, named("fallback", func(_ context.Context, n int) error {
		if n == 1 {
			return fmt.Errorf("spot VM reclaimed: %w", task.ErrInfrastructure)
		}
		return nil
	}).WithResources(resources.Profile{CPU: "1", Memory: "1Gi", MIG: "1g.10gb", NodePool: GPUPool.Name, Preemptible: true}).
		WithRetry(task.Retry{Infra: 1, OnDemandFallback: true, Backoff: quick}), none{})
	return p
}

// preempt: "work" blocks on its first attempt until it is stopped (the
// test evicts its pod); later attempts return at once. It may be retried
// once for infrastructure failures and never for its own.
func preempt() *pipeline.Pipeline {
	p := pipeline.New("preempt", &pipeline.Options{NodePools: []resources.NodePool{CPUSpotPool}})
	pipeline.Add(p, named("work", func(ctx context.Context, n int) error {
		if n > 1 {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Minute):
			return fmt.Errorf("work: not preempted within 10 minutes")
		}
	}).WithResources(resources.Profile{CPU: "500m", Memory: "256Mi", NodePool: CPUSpotPool.Name, Preemptible: true}).
		WithRetry(task.Retry{Infra: 1, Backoff: quick}), none{})
	return p
}

// ScarcePool is a spot pool whose spot capacity has run out: the cluster
// has only on-demand nodes of it.
var ScarcePool = resources.NodePool{
	Name:     "scarce",
	Provider: resources.ProviderGKE,
	Labels:   map[string]string{"cloud.google.com/gke-nodepool": "scarce"},
	Node:     resources.Capacity{CPU: "8", Memory: "32Gi"},
	Spot:     true,
}

// PendingTimeout is how long the stockout pipeline's step waits for spot
// capacity.
const PendingTimeout = 3 * time.Second

// stockout: a preemptible step on a pool without spot capacity gives up
// waiting after PendingTimeout and falls back to on-demand nodes.
func stockout() *pipeline.Pipeline {
	p := pipeline.New("stockout", &pipeline.Options{NodePools: []resources.NodePool{ScarcePool}})
	pipeline.Add(p, named("wait-for-spot", ok).
		WithResources(resources.Profile{CPU: "500m", Memory: "256Mi", NodePool: ScarcePool.Name, Preemptible: true}).
		WithRetry(task.Retry{Infra: 1, OnDemandFallback: true, PendingTimeout: PendingTimeout, Backoff: quick}), none{})
	return p
}

// stuck: a preemptible step on a pool without spot capacity, with no
// pending timeout, waits until the run is canceled.
func stuck() *pipeline.Pipeline {
	p := pipeline.New("stuck", &pipeline.Options{NodePools: []resources.NodePool{ScarcePool}})
	pipeline.Add(p, named("wait-for-spot", ok).
		WithResources(resources.Profile{CPU: "500m", Memory: "256Mi", NodePool: ScarcePool.Name, Preemptible: true}), none{})
	return p
}

// StepDelay is how long each step of the steady pipeline works.
const StepDelay = 1500 * time.Millisecond

// SteadySteps are the steps of the steady pipeline, in order.
var SteadySteps = []string{"s1", "s2", "s3", "s4", "s5"}

// steady: a chain of steps that each take StepDelay, so an orchestrator
// can be killed between two of them.
func steady() *pipeline.Pipeline {
	p := pipeline.New("steady", nil)
	var prev pipeline.Dependency
	for _, name := range SteadySteps {
		s := pipeline.Add(p, named(name, func(ctx context.Context, _ int) error {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(StepDelay):
				return nil
			}
		}), none{})
		if prev != nil {
			s.After(prev)
		}
		prev = s
	}
	return p
}

// Sizes of the benchmark pipelines.
const (
	ChainLength = 20
	DAGLayers   = 20
	DAGWidth    = 10
)

// chain: n trivial steps, each after the one before.
func chain(n int) *pipeline.Pipeline {
	p := pipeline.New("chain", nil)
	var prev pipeline.Dependency
	for i := range n {
		s := pipeline.Add(p, named(fmt.Sprintf("c%02d", i), ok), none{})
		if prev != nil {
			s.After(prev)
		}
		prev = s
	}
	return p
}

// Pair is the input of a layered DAG's step: two steps of the layer
// before.
type Pair struct {
	A, B pipeline.Ref[Out]
}

// layered: layers × width trivial steps; each step of a layer reads two
// steps of the layer before (its own column and the next), so the DAG is
// connected and every layer waits for the one before.
func layered(layers, width int) *pipeline.Pipeline {
	p := pipeline.New("dag", nil)
	var prev []pipeline.Step[Out]
	for l := range layers {
		var cur []pipeline.Step[Out]
		for w := range width {
			name := fmt.Sprintf("l%02d-%02d", l, w)
			if l == 0 {
				cur = append(cur, pipeline.Add(p, named(name, ok), none{}))
				continue
			}
			t := task.New(name, func(ctx context.Context, in Pair) (Out, error) {
				return Out{Step: name, Attempt: backendtest.CallNumber(name)}, nil
			})
			cur = append(cur, pipeline.Add(p, t, Pair{A: prev[w].Output(), B: prev[(w+1)%width].Output()}))
		}
		prev = cur
	}
	return p
}

// item is the input of an instance of the tolerant pipeline's fan-out.
type item struct{ X pipeline.Ref[int] }

// sumIn is the input of the tolerant pipeline's last step.
type sumIn struct{ Xs pipeline.Ref[[]int] }

// tolerant: "try" runs once per element of [0 1 2 3 4]; the odd ones
// fail, and the fan-out tolerates what tolerate sets (two failures for
// Tolerant); "count" adds up what was collected (0 + 20 + 40).
func tolerant(name string, tolerate func(pipeline.Fan[int])) *pipeline.Pipeline {
	p := pipeline.New(name, nil)
	try := task.New("try", func(_ context.Context, in item) (int, error) {
		if v := in.X.Get(); v%2 == 1 {
			return 0, fmt.Errorf("item %d: no convergence", v)
		}
		return in.X.Get() * 10, nil
	})
	fan := pipeline.ForEach(p, try, pipeline.Const([]int{0, 1, 2, 3, 4}), func(x pipeline.Ref[int]) item { return item{X: x} })
	tolerate(fan)
	pipeline.Add(p, task.New("count", func(_ context.Context, in sumIn) (int, error) {
		n := 0
		for _, v := range in.Xs.Get() {
			n += v
		}
		return n, nil
	}), sumIn{Xs: fan.Collect()})
	return p
}

// reportIn is the input of the cancel pipeline's exit handler.
type reportIn struct {
	Run pipeline.Ref[pipeline.RunInfo]
}

// cancelMidRun: "bad" fails at once; "block" runs until it is stopped;
// "join" needs both and "later" needs "block"; the exit handler returns
// the RunInfo it got. The test cancels the run once "bad" has failed and
// "block" runs.
func cancelMidRun() *pipeline.Pipeline {
	p := pipeline.New("cancel", nil)
	bad := pipeline.Add(p, named("bad", func(context.Context, int) error { return errors.New("bad: scripted failure") }), none{})
	block := pipeline.Add(p, blockUntilStopped(), none{})
	pipeline.Add(p, named("join", ok), none{}).After(bad, block)
	pipeline.Add(p, named("later", ok), none{}).After(block)
	pipeline.OnExit(p, task.New("report", func(_ context.Context, in reportIn) (pipeline.RunInfo, error) {
		return in.Run.Get(), nil
	}), reportIn{Run: p.Status()})
	return p
}

// shardFail: "bad" fails, "good" succeeds; "after-bad" runs after
// "bad", "after-good" after "good".
func shardFail() *pipeline.Pipeline {
	p := pipeline.New("shardfail", nil)
	bad := pipeline.Add(p, named("bad", func(context.Context, int) error { return errors.New("bad: scripted failure") }), none{})
	good := pipeline.Add(p, named("good", ok), none{})
	pipeline.Add(p, named("after-bad", ok), none{}).After(bad)
	pipeline.Add(p, named("after-good", ok), none{}).After(good)
	return p
}

// shardCancel: "block" runs until it is stopped, "later" runs after it.
func shardCancel() *pipeline.Pipeline {
	p := pipeline.New("shardcancel", nil)
	block := pipeline.Add(p, blockUntilStopped(), none{})
	pipeline.Add(p, named("later", ok), none{}).After(block)
	return p
}

// blockUntilStopped is the task "block", which runs until it is stopped
// (or fails after 10 minutes).
func blockUntilStopped() task.Task[none, Out] {
	return named("block", func(ctx context.Context, _ int) error {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Minute):
			return errors.New("block: not canceled within 10 minutes")
		}
	})
}

// bigOut is an output far over every backend's in-band limits: Rows alone
// is about 550 KB, each of Chunks 2 KB.
type bigOut struct {
	Rows   []float64 `json:"rows"`
	N      int       `json:"n"`
	Chunks []string  `json:"chunks"`
}

type rowsIn struct {
	Rows pipeline.Ref[[]float64]
	N    pipeline.Ref[int]
}

type chunkIn struct {
	Chunk pipeline.Ref[string]
}

// bigValues: "make" outputs bigOut; "sum" takes its Rows and N by field
// ref; "each" fans out over its Chunks; "total" collects their lengths.
// On kubejob (4 KiB) and Argo (16 KiB, 256 KiB for a fan-out's list) the
// large parts travel out of band and come back identical.
func bigValues() *pipeline.Pipeline {
	p := pipeline.New("bigvalues", nil)
	mk := pipeline.Add(p, task.New("make", func(context.Context, struct{}) (bigOut, error) {
		out := bigOut{N: 30000}
		for i := range out.N {
			out.Rows = append(out.Rows, float64(i)/7)
		}
		for i := range 20 {
			out.Chunks = append(out.Chunks, strings.Repeat(string(rune('a'+i)), 2000))
		}
		return out, nil
	}), struct{}{})
	pipeline.Add(p, task.New("sum", func(_ context.Context, in rowsIn) (float64, error) {
		if len(in.Rows.Get()) != in.N.Get() {
			return 0, fmt.Errorf("got %d rows, want %d", len(in.Rows.Get()), in.N.Get())
		}
		s := 0.0
		for _, r := range in.Rows.Get() {
			s += r
		}
		return math.Round(s), nil
	}), rowsIn{Rows: pipeline.Field[[]float64](mk.Output(), "Rows"), N: pipeline.Field[int](mk.Output(), "N")})
	each := pipeline.ForEach(p, task.New("each", func(_ context.Context, in chunkIn) (int, error) {
		return len(in.Chunk.Get()), nil
	}), pipeline.Field[[]string](mk.Output(), "Chunks"), func(c pipeline.Ref[string]) chunkIn { return chunkIn{Chunk: c} })
	pipeline.Add(p, task.New("total", func(_ context.Context, in sumIn) (int, error) {
		n := 0
		for _, v := range in.Xs.Get() {
			n += v
		}
		return n, nil
	}), sumIn{Xs: each.Collect()})
	return p
}

// Deploy is a pipeline that evaluates a model (its AUC is the parameter
// "auc") and deploys it with serve.Deploy to a target at level staging in
// the namespace DeployNamespaceEnv names, on the platform
// DeployPlatformEnv names (plain Kubernetes by default; KServe in
// RawDeployment mode), gated on a higher AUC. Built by DeployTo in the
// test process.
const (
	Deploy             = "deploy"
	DeployNamespaceEnv = "SLUICE_E2E_DEPLOY_NAMESPACE"
	DeployPlatformEnv  = "SLUICE_E2E_DEPLOY_PLATFORM"
)

// DeployIn is the evaluation step's input.
type DeployIn struct {
	AUC pipeline.Ref[float64] `json:"auc"`
}

// EvalDeploy adds to p an evaluation step "eval", which writes a model
// whose AUC is the pipeline's parameter "auc" (0.8 by default; the same
// AUC, the same bytes), and the deploy step of that model to target.
func EvalDeploy(p *pipeline.Pipeline, target serve.Target, opts *serve.DeployOptions) pipeline.Step[serve.Deployed] {
	auc := pipeline.NewParam(p, "auc", 0.8).Ref()
	eval := pipeline.Add(p, task.New("eval", func(ctx context.Context, in DeployIn) (serve.Candidate, error) {
		m, err := artifact.WriteJSON[artifact.Model](ctx, "model", map[string]any{"auc": in.AUC.Get()})
		return serve.Candidate{Model: m, Metrics: map[string]float64{"auc": in.AUC.Get()}, Note: "e2e"}, err
	}), DeployIn{AUC: auc})
	return serve.Deploy(p, target, eval.Output(), opts)
}

// DeployTo is the Deploy pipeline with its target in namespace ns, on
// platform ("" for plain Kubernetes).
func DeployTo(ns string, platform serve.Platform) *pipeline.Pipeline {
	p := pipeline.New(Deploy, nil)
	if platform == "" {
		platform = serve.Kubernetes
	}
	target := serve.Target{Name: "scorer", Level: serve.Staging, Namespace: ns, Platform: platform,
		Runtime:   serve.Runtime{Format: serve.GoModel, Image: "registry.example/scorer:v1"},
		Resources: resources.Profile{CPU: "100m", Memory: "128Mi", NodePool: CPUPool.Name},
		NodePools: []resources.NodePool{CPUPool},
	}
	if platform == serve.KServe {
		target.Mode = serve.RawDeployment
	}
	EvalDeploy(p, target, &serve.DeployOptions{Name: "deploy", Timeout: 2 * time.Minute,
		Gate: serve.Gate{Metric: "auc", Better: serve.Higher}})
	return p
}

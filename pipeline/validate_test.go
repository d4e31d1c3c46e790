package pipeline_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sluice-ml/sluice/backends"
	"github.com/sluice-ml/sluice/pipeline"
	"github.com/sluice-ml/sluice/resources"
	"github.com/sluice-ml/sluice/task"
)

// Identifiers in this file start with "v" because package pipeline_test is
// shared with other test files.

// vOut is the output of the test tasks.
type vOut struct {
	Accuracy float64 `json:"accuracy"`
	Model    string  `json:"model"`
	Shards   []int   `json:"shards"`
	OK       bool    `json:"ok"`
}

// vIn is the input of the test tasks: one Ref of each shape the cases need.
type vIn struct {
	Data  pipeline.Ref[vOut]             `json:"data"`
	All   pipeline.Ref[[]vOut]           `json:"all"`
	Score pipeline.Ref[float64]          `json:"score"`
	Name  pipeline.Ref[string]           `json:"name"`
	Shard pipeline.Ref[int]              `json:"shard"`
	Run   pipeline.Ref[pipeline.RunInfo] `json:"run"`
	Note  string                         `json:"note,omitempty"`
}

func vWork(context.Context, vIn) (vOut, error) { return vOut{}, nil }

// vTree and vList are recursive inputs.
type vTree struct {
	Kids []*vTree
	R    pipeline.Ref[vOut]
}

type vList struct {
	Next *vList
	R    pipeline.Ref[vOut]
}

// vTask returns a Go task named name.
func vTask(name string) task.Task[vIn, vOut] { return task.New(name, vWork) }

// vCIn and vCOut are the interface of the container task.
type vCIn struct {
	Data   string `json:"data"`
	Epochs int    `json:"epochs"`
}
type vCOut struct {
	Model string  `json:"model"`
	Score float64 `json:"score"`
}

// vCtr returns a container task named "ctr"; its default outputs are
// outputs[0] (model) and outputs[1] (score).
func vCtr() task.Task[vCIn, vCOut] {
	return task.Container[vCIn, vCOut]("ctr", "registry.example/ctr:1")
}

// vKey identifies a field error the way tests match it: field and type.
type vKey struct {
	Field string
	Type  pipeline.ErrorType
}

func vk(f string, t pipeline.ErrorType) vKey { return vKey{f, t} }

func vKeys(err error) []vKey {
	var out []vKey
	for _, fe := range pipeline.FieldErrors(err) {
		out = append(out, vKey{fe.Field, fe.Type})
	}
	return out
}

const (
	vRequired     = pipeline.ErrorTypeRequired
	vInvalid      = pipeline.ErrorTypeInvalid
	vDuplicate    = pipeline.ErrorTypeDuplicate
	vNotSupported = pipeline.ErrorTypeNotSupported
	vNotFound     = pipeline.ErrorTypeNotFound
	vForbidden    = pipeline.ErrorTypeForbidden
	vTooLong      = pipeline.ErrorTypeTooLong
)

// vOne returns a pipeline named "p" (with opts) holding one valid step "a"
// and the step, for cases that add the mistake.
func vOne(opts *pipeline.Options) (*pipeline.Pipeline, pipeline.Step[vOut]) {
	p := pipeline.New("p", opts)
	return p, pipeline.Add(p, vTask("a"), vIn{})
}

// vWithTask returns a pipeline named "p" with one step made from t.
func vWithTask[In, Out any](opts *pipeline.Options, t task.Task[In, Out], in In) func() *pipeline.Pipeline {
	return func() *pipeline.Pipeline {
		p := pipeline.New("p", opts)
		pipeline.Add(p, t, in)
		return p
	}
}

// vRes returns a pipeline with one step "train" asking for r, on pools.
func vRes(r resources.Profile, pools ...resources.NodePool) func() *pipeline.Pipeline {
	return vWithTask(&pipeline.Options{NodePools: pools}, vTask("train").WithResources(r), vIn{})
}

// vRetry returns a pipeline with one step "train" with retry policy r.
func vRetry(r task.Retry) func() *pipeline.Pipeline {
	return vWithTask(nil, vTask("train").WithRetry(r), vIn{})
}

var (
	vCPUPool = resources.NodePool{Name: "cpu", Provider: resources.ProviderGKE,
		Node: resources.Capacity{CPU: "8", Memory: "32Gi"}}
	vGPUPool = resources.NodePool{Name: "gpu", Provider: resources.ProviderGKE, Spot: true,
		Node: resources.Capacity{CPU: "32", Memory: "256Gi", GPUModel: "A100-80GB", GPUs: 4}}
)

type vCase struct {
	name   string
	build  func() *pipeline.Pipeline
	params map[string]string // overrides for ValidateParams
	want   []vKey
}

func TestValidateRejects(t *testing.T) {
	long := strings.Repeat("a", pipeline.MaxNameLength+1)
	tests := []vCase{
		// Names.
		{
			name:  "PipelineNameEmpty",
			build: func() *pipeline.Pipeline { p := pipeline.New("", nil); pipeline.Add(p, vTask("a"), vIn{}); return p },
			want:  []vKey{vk("pipeline.name", vRequired)},
		},
		{
			name:  "PipelineNameTooLong",
			build: func() *pipeline.Pipeline { p := pipeline.New(long, nil); pipeline.Add(p, vTask("a"), vIn{}); return p },
			want:  []vKey{vk("pipeline.name", vTooLong)},
		},
		{
			name: "PipelineNameNoASCIIAlnum",
			build: func() *pipeline.Pipeline {
				p := pipeline.New("日本語 -- ü", nil)
				pipeline.Add(p, vTask("a"), vIn{})
				return p
			},
			want: []vKey{vk("pipeline.name", vInvalid)},
		},
		{
			name:  "TaskNameEmpty",
			build: vWithTask(nil, vTask(""), vIn{}),
			want:  []vKey{vk("pipeline.tasks[0].name", vRequired)},
		},
		{
			name: "TaskNameDuplicate",
			build: func() *pipeline.Pipeline {
				p, _ := vOne(nil)
				pipeline.Add(p, vTask("a"), vIn{})
				return p
			},
			want: []vKey{vk("pipeline.tasks[a].name", vDuplicate)},
		},
		{
			name:  "TaskNameTooLong",
			build: vWithTask(nil, vTask(long), vIn{}),
			want:  []vKey{vk("pipeline.tasks["+long+"].name", vTooLong)},
		},
		{
			name:  "TaskNameNoASCIIAlnum",
			build: vWithTask(nil, vTask("日本語"), vIn{}),
			want:  []vKey{vk("pipeline.tasks[日本語].name", vInvalid)},
		},
		{
			name: "TaskNamesCollideAfterSanitizing",
			build: func() *pipeline.Pipeline {
				p := pipeline.New("p", nil)
				pipeline.Add(p, vTask("Train Model"), vIn{})
				pipeline.Add(p, vTask("train-model"), vIn{})
				return p
			},
			want: []vKey{vk("pipeline.tasks[train-model].name", vDuplicate)},
		},
		{
			name: "FanOutOfUnnamedTask",
			build: func() *pipeline.Pipeline {
				p := pipeline.New("p", nil)
				pipeline.FanOut(p, vTask(""), []vIn{{}, {}})
				return p
			},
			want: []vKey{vk("pipeline.tasks[-0].name", vRequired), vk("pipeline.tasks[-1].name", vRequired)},
		},
		{
			name: "ZeroTask",
			build: func() *pipeline.Pipeline {
				p := pipeline.New("p", nil)
				pipeline.Add(p, task.Task[vIn, vOut]{}, vIn{})
				return p
			},
			want: []vKey{vk("pipeline.tasks[0].name", vRequired), vk("pipeline.tasks[0].kind", vNotSupported)},
		},

		// Ordering and cycles.
		{
			name: "CycleOfTwoThroughAfter",
			build: func() *pipeline.Pipeline {
				p, a := vOne(nil)
				b := pipeline.Add(p, vTask("b"), vIn{}).After(a)
				a.After(b)
				return p
			},
			want: []vKey{vk("pipeline.tasks[a].after", vInvalid)},
		},
		{
			name: "CycleOfThreeThroughDataAndAfter",
			build: func() *pipeline.Pipeline {
				p, a := vOne(nil)
				b := pipeline.Add(p, vTask("b"), vIn{Data: a.Output()})
				c := pipeline.Add(p, vTask("c"), vIn{Data: b.Output()})
				a.After(c)
				return p
			},
			want: []vKey{vk("pipeline.tasks[a].after", vInvalid)},
		},
		{
			name: "TwoSeparateCyclesEachReportedOnce",
			build: func() *pipeline.Pipeline {
				p, a := vOne(nil)
				b := pipeline.Add(p, vTask("b"), vIn{}).After(a)
				c := pipeline.Add(p, vTask("c"), vIn{Data: b.Output()}) // downstream of a cycle only
				d := pipeline.Add(p, vTask("d"), vIn{Data: c.Output()})
				e := pipeline.Add(p, vTask("e"), vIn{}).After(d)
				a.After(b)
				d.After(e)
				return p
			},
			want: []vKey{vk("pipeline.tasks[a].after", vInvalid), vk("pipeline.tasks[d].after", vInvalid)},
		},
		{
			name: "SelfAfter",
			build: func() *pipeline.Pipeline {
				p, a := vOne(nil)
				a.After(a)
				return p
			},
			want: []vKey{vk("pipeline.tasks[a].after[0]", vInvalid)},
		},
		{
			name: "SelfReadThroughPointerInput",
			build: func() *pipeline.Pipeline {
				p := pipeline.New("p", nil)
				in := &vIn{}
				s := pipeline.Add(p, task.New("a", func(context.Context, *vIn) (vOut, error) { return vOut{}, nil }), in)
				in.Data = s.Output() // the input is walked when validating, so this is seen
				return p
			},
			want: []vKey{vk("pipeline.tasks[a].input.Data", vInvalid)},
		},
		{
			name: "AfterZeroStep",
			build: func() *pipeline.Pipeline {
				p, a := vOne(nil)
				a.After(pipeline.Step[vOut]{}, pipeline.Fan[vOut]{}, nil)
				return p
			},
			want: []vKey{vk("pipeline.tasks[a].after", vNotFound)},
		},
		{
			name: "AfterStepOfAnotherPipeline",
			build: func() *pipeline.Pipeline {
				_, o := vOne(nil)
				p := pipeline.New("q", nil)
				pipeline.Add(p, vTask("b"), vIn{}).After(o)
				return p
			},
			want: []vKey{vk("pipeline.tasks[b].after[0]", vInvalid)},
		},

		// References.
		{
			name: "RefFromAnotherPipeline",
			build: func() *pipeline.Pipeline {
				_, o := vOne(nil)
				p := pipeline.New("q", nil)
				pipeline.Add(p, vTask("b"), vIn{Data: o.Output()})
				return p
			},
			want: []vKey{vk("pipeline.tasks[b].input.Data", vInvalid)},
		},
		{
			name:  "RefFromZeroStep",
			build: vWithTask(nil, vTask("b"), vIn{Data: pipeline.Step[vOut]{}.Output()}),
			want:  []vKey{vk("pipeline.tasks[b].input.Data", vNotFound)},
		},
		{
			name: "CollectWithZeroStep",
			build: func() *pipeline.Pipeline {
				p, a := vOne(nil)
				pipeline.Add(p, vTask("b"), vIn{All: pipeline.Collect(a, pipeline.Step[vOut]{})})
				return p
			},
			want: []vKey{vk("pipeline.tasks[b].input.All[1]", vNotFound)},
		},
		{
			name:  "CollectOfZeroFan",
			build: vWithTask(nil, vTask("b"), vIn{All: pipeline.Fan[vOut]{}.Collect()}),
			want:  []vKey{vk("pipeline.tasks[b].input.All", vNotFound)},
		},
		{
			name: "RefToExitHandlerOutput",
			build: func() *pipeline.Pipeline {
				p := pipeline.New("p", nil)
				exit := pipeline.OnExit(p, vTask("cleanup"), vIn{})
				pipeline.Add(p, vTask("b"), vIn{Data: exit.Output()})
				return p
			},
			want: []vKey{vk("pipeline.tasks[b].input.Data", vInvalid)},
		},
		{
			name: "ExitHandlerReadsStepOutput",
			build: func() *pipeline.Pipeline {
				p, a := vOne(nil)
				pipeline.OnExit(p, vTask("cleanup"), vIn{Score: pipeline.Field[float64](a.Output(), "accuracy")})
				return p
			},
			want: []vKey{vk("pipeline.tasks[cleanup].input.Score", vInvalid)},
		},
		{
			name: "StatusOutsideExitHandler",
			build: func() *pipeline.Pipeline {
				p := pipeline.New("p", nil)
				pipeline.Add(p, vTask("a"), vIn{Run: p.Status()})
				return p
			},
			want: []vKey{vk("pipeline.tasks[a].input.Run", vInvalid)},
		},
		{
			name: "StatusOfAnotherPipeline",
			build: func() *pipeline.Pipeline {
				other := pipeline.New("other", nil)
				p := pipeline.New("p", nil)
				pipeline.OnExit(p, vTask("cleanup"), vIn{Run: other.Status()})
				return p
			},
			want: []vKey{vk("pipeline.tasks[cleanup].input.Run", vInvalid)},
		},
		{
			name: "TwoExitHandlers",
			build: func() *pipeline.Pipeline {
				p := pipeline.New("p", nil)
				pipeline.OnExit(p, vTask("cleanup"), vIn{Run: p.Status()})
				pipeline.OnExit(p, vTask("notify"), vIn{Run: p.Status()})
				return p
			},
			want: []vKey{vk("pipeline.onExit", vDuplicate)},
		},
		{
			name: "ExitHandlerWithAfter",
			build: func() *pipeline.Pipeline {
				p, a := vOne(nil)
				pipeline.OnExit(p, vTask("cleanup"), vIn{}).After(a)
				return p
			},
			want: []vKey{vk("pipeline.tasks[cleanup].after", vInvalid)},
		},
		{
			name: "AfterExitHandler",
			build: func() *pipeline.Pipeline {
				p, a := vOne(nil)
				exit := pipeline.OnExit(p, vTask("cleanup"), vIn{})
				a.After(exit)
				return p
			},
			want: []vKey{vk("pipeline.tasks[a].after[0]", vInvalid)},
		},
		{
			name: "FieldUnknownName",
			build: func() *pipeline.Pipeline {
				p, a := vOne(nil)
				pipeline.Add(p, vTask("b"), vIn{Score: pipeline.Field[float64](a.Output(), "precision")})
				return p
			},
			want: []vKey{vk("pipeline.tasks[b].input.Score", vInvalid)},
		},
		{
			name: "FieldWrongTypeArgument",
			build: func() *pipeline.Pipeline {
				p, a := vOne(nil)
				pipeline.Add(p, vTask("b"), vIn{Name: pipeline.Field[string](a.Output(), "Accuracy")})
				return p
			},
			want: []vKey{vk("pipeline.tasks[b].input.Name", vInvalid)},
		},
		{
			name:  "FieldOfConstantUnknownName",
			build: vWithTask(nil, vTask("b"), vIn{Score: pipeline.Field[float64](pipeline.Const(vOut{}), "nope")}),
			want:  []vKey{vk("pipeline.tasks[b].input.Score", vInvalid)},
		},
		{
			name:  "InputNotJSONEncodable",
			build: vWithTask(nil, task.New("a", func(context.Context, chan int) (vOut, error) { return vOut{}, nil }), make(chan int)),
			want:  []vKey{vk("pipeline.tasks[a].input", vInvalid)},
		},
		{
			name:  "InputNaN",
			build: vWithTask(nil, task.New("a", func(context.Context, float64) (vOut, error) { return vOut{}, nil }), math.NaN()),
			want:  []vKey{vk("pipeline.tasks[a].input", vInvalid)},
		},
		{
			name: "SelfReferencingInputIsRejectedQuickly",
			build: func() *pipeline.Pipeline {
				n := &vTree{}
				n.Kids = []*vTree{n, n, n, n, n, n, n, n} // 8^10 paths within walkRefs' depth limit
				return vWithTask(nil, task.New("a", func(context.Context, *vTree) (vOut, error) { return vOut{}, nil }), n)()
			},
			want: []vKey{vk("pipeline.tasks[a].input", vInvalid)}, // encoding/json: a cycle
		},
		{
			name: "InputUsesReservedPlaceholderKey",
			build: func() *pipeline.Pipeline {
				p, a := vOne(nil)
				type in struct {
					Data pipeline.Ref[vOut]
					Meta map[string]int
				}
				pipeline.Add(p, task.New("b", func(context.Context, in) (vOut, error) { return vOut{}, nil }),
					in{Data: a.Output(), Meta: map[string]int{"$sluice": 0}})
				return p
			},
			want: []vKey{vk("pipeline.tasks[b].input", vInvalid)},
		},

		// Fan-outs and conditions.
		{
			name: "ForEachOverNonList",
			build: func() *pipeline.Pipeline {
				p, a := vOne(nil)
				// model is a string: Field reports the type mismatch at the items.
				pipeline.ForEach(p, vTask("fan"), pipeline.Field[[]int](a.Output(), "model"),
					func(it pipeline.Ref[int]) vIn { return vIn{Shard: it} })
				return p
			},
			want: []vKey{vk("pipeline.tasks[fan].forEach.items", vInvalid)},
		},
		{
			name: "ForEachLimitNegative",
			build: func() *pipeline.Pipeline {
				p, a := vOne(nil)
				pipeline.ForEach(p, vTask("fan"), pipeline.Field[[]int](a.Output(), "shards"),
					func(it pipeline.Ref[int]) vIn { return vIn{Shard: it} }).Limit(-1)
				return p
			},
			want: []vKey{vk("pipeline.tasks[fan].forEach.parallelism", vInvalid)},
		},
		{
			name: "ForEachToleranceOutOfRange",
			build: func() *pipeline.Pipeline {
				p, a := vOne(nil)
				pipeline.ForEach(p, vTask("fan"), pipeline.Field[[]int](a.Output(), "shards"),
					func(it pipeline.Ref[int]) vIn { return vIn{Shard: it} }).Tolerate(-2).TolerateFraction(1.5)
				return p
			},
			want: []vKey{
				vk("pipeline.tasks[fan].forEach.maxFailed", vInvalid),
				vk("pipeline.tasks[fan].forEach.maxFailedFraction", vInvalid),
			},
		},
		{
			name: "ForEachOverExitHandlerOutput",
			build: func() *pipeline.Pipeline {
				p := pipeline.New("p", nil)
				exit := pipeline.OnExit(p, vTask("cleanup"), vIn{})
				pipeline.ForEach(p, vTask("fan"), pipeline.Field[[]int](exit.Output(), "shards"),
					func(it pipeline.Ref[int]) vIn { return vIn{Shard: it} })
				return p
			},
			want: []vKey{vk("pipeline.tasks[fan].forEach.items", vInvalid)},
		},
		{
			name: "ItemRefOutsideItsFanOut",
			build: func() *pipeline.Pipeline {
				p := pipeline.New("p", nil)
				var item pipeline.Ref[int]
				pipeline.ForEach(p, vTask("fan"), pipeline.Const([]int{1, 2}),
					func(it pipeline.Ref[int]) vIn { item = it; return vIn{Shard: it} })
				pipeline.Add(p, vTask("b"), vIn{Shard: item})
				return p
			},
			want: []vKey{vk("pipeline.tasks[b].input.Shard", vInvalid)},
		},
		{
			name: "ConditionReadsFanOutItem",
			build: func() *pipeline.Pipeline {
				p := pipeline.New("p", nil)
				var item pipeline.Ref[int]
				pipeline.ForEach(p, vTask("fan"), pipeline.Const([]int{1, 2}),
					func(it pipeline.Ref[int]) vIn { item = it; return vIn{Shard: it} }).
					When(pipeline.Gt(item, 0))
				return p
			},
			want: []vKey{vk("pipeline.tasks[fan].when", vInvalid)},
		},
		{
			name: "ConditionOnRefOfAnotherPipeline",
			build: func() *pipeline.Pipeline {
				_, o := vOne(nil)
				p := pipeline.New("q", nil)
				pipeline.Add(p, vTask("b"), vIn{}).When(pipeline.IsTrue(pipeline.Field[bool](o.Output(), "ok")))
				return p
			},
			want: []vKey{vk("pipeline.tasks[b].when", vInvalid)},
		},
		{
			name: "NestedConditionPath",
			build: func() *pipeline.Pipeline {
				_, o := vOne(nil)
				p := pipeline.New("q", nil)
				a := pipeline.Add(p, vTask("a"), vIn{})
				acc := pipeline.Field[float64](a.Output(), "accuracy")
				pipeline.Add(p, vTask("b"), vIn{}).
					When(pipeline.Gt(acc, 0.5)).
					When(pipeline.Or(pipeline.Lt(acc, 0.9), pipeline.Not(pipeline.Eq(pipeline.Field[string](o.Output(), "model"), "x"))))
				return p
			},
			want: []vKey{vk("pipeline.tasks[b].when[1][1][0]", vInvalid)},
		},
		{
			name: "ConditionValueNotJSON",
			build: func() *pipeline.Pipeline {
				p, a := vOne(nil)
				pipeline.Add(p, vTask("b"), vIn{}).When(pipeline.Ge(pipeline.Field[float64](a.Output(), "accuracy"), math.Inf(1)))
				return p
			},
			want: []vKey{vk("pipeline.tasks[b].when", vInvalid)},
		},

		// Resources.
		{
			name:  "BadCPUQuantity",
			build: vRes(resources.Profile{CPU: "four"}),
			want:  []vKey{vk("pipeline.tasks[train].resources.cpu", vInvalid)},
		},
		{
			name:  "BadMemoryQuantity",
			build: vRes(resources.Profile{Memory: "16GB"}),
			want:  []vKey{vk("pipeline.tasks[train].resources.memory", vInvalid)},
		},
		{
			name:  "SharedMemoryOverMemory",
			build: vRes(resources.Profile{Memory: "8Gi", SharedMemory: "16Gi"}),
			want:  []vKey{vk("pipeline.tasks[train].resources.sharedMemory", vInvalid)},
		},
		{
			name:  "UnknownGPUModel",
			build: vRes(resources.Profile{GPUModel: "A200", GPUs: 1}),
			want:  []vKey{vk("pipeline.tasks[train].resources.gpuModel", vNotSupported)},
		},
		{
			name:  "MIGProfileNotOfferedByModel",
			build: vRes(resources.Profile{GPUModel: "A100-80GB", MIG: "3g.20gb"}),
			want:  []vKey{vk("pipeline.tasks[train].resources.mig", vInvalid)},
		},
		{
			name:  "GPUsAndMIG",
			build: vRes(resources.Profile{GPUModel: "A100-80GB", GPUs: 1, MIG: "3g.40gb"}),
			want:  []vKey{vk("pipeline.tasks[train].resources.mig", vForbidden)},
		},
		{
			name:  "MIGCountTooLarge",
			build: vRes(resources.Profile{GPUModel: "A100-80GB", MIG: "3g.40gb", MIGCount: 17}),
			want:  []vKey{vk("pipeline.tasks[train].resources.migCount", vInvalid)},
		},
		{
			name:  "UnknownNodePool",
			build: vRes(resources.Profile{NodePool: "gpus"}, vCPUPool, vGPUPool),
			want:  []vKey{vk("pipeline.tasks[train].resources.nodePool", vNotFound)},
		},
		{
			name:  "PreemptibleOnPoolWithoutSpot",
			build: vRes(resources.Profile{NodePool: "cpu", Preemptible: true}, vCPUPool),
			want:  []vKey{vk("pipeline.tasks[train].resources.preemptible", vInvalid)},
		},
		{
			name:  "LargerThanNamedPool",
			build: vRes(resources.Profile{CPU: "64", GPUs: 8, NodePool: "gpu"}, vCPUPool, vGPUPool),
			want: []vKey{
				vk("pipeline.tasks[train].resources.cpu", vInvalid),
				vk("pipeline.tasks[train].resources.gpus", vInvalid),
			},
		},
		{
			name:  "LargerThanEveryPoolWhenNoneNamed",
			build: vRes(resources.Profile{CPU: "48", Memory: "16Gi"}, vCPUPool, vGPUPool),
			want:  []vKey{vk("pipeline.tasks[train].resources.cpu", vInvalid)},
		},
		{
			name:  "DuplicateNodePools",
			build: vRes(resources.Profile{}, vCPUPool, vGPUPool, vCPUPool),
			want:  []vKey{vk("pipeline.nodePools[2].name", vDuplicate)},
		},
		{
			name:  "BadNodePoolName",
			build: vRes(resources.Profile{}, resources.NodePool{Name: "GPU_Pool", Provider: resources.ProviderGKE}),
			want:  []vKey{vk("pipeline.nodePools[0].name", vInvalid)},
		},

		// Retries, timeouts, caching.
		{
			name:  "NegativeAppRetries",
			build: vRetry(task.Retry{App: -1}),
			want:  []vKey{vk("pipeline.tasks[train].retry.app", vInvalid)},
		},
		{
			name:  "NegativeInfraRetries",
			build: vRetry(task.Retry{Infra: -3}),
			want:  []vKey{vk("pipeline.tasks[train].retry.infra", vInvalid)},
		},
		{
			name:  "BackoffFactorBelowOne",
			build: vRetry(task.Retry{App: 2, Backoff: task.Backoff{Initial: time.Second, Factor: 0.5}}),
			want:  []vKey{vk("pipeline.tasks[train].retry.backoff.factor", vInvalid)},
		},
		{
			name:  "OnDemandFallbackWithoutInfraBudget",
			build: vRetry(task.Retry{App: 2, OnDemandFallback: true}),
			want:  []vKey{vk("pipeline.tasks[train].retry.onDemandFallback", vInvalid)},
		},
		{
			name:  "NegativeTimeout",
			build: vWithTask(nil, vTask("train").WithTimeout(-time.Minute), vIn{}),
			want:  []vKey{vk("pipeline.tasks[train].timeout", vInvalid)},
		},
		{
			name:  "CacheExcludesMissingInput",
			build: vWithTask(nil, vTask("train").WithCache(task.Cache{Enabled: true, ExcludeInputs: []string{"note", "verbosity"}}), vIn{}),
			want:  []vKey{vk("pipeline.tasks[train].cache.excludeInputs[1]", vNotFound)},
		},

		// Defaults.
		{
			name: "NegativeDefaultTimeout",
			build: func() *pipeline.Pipeline {
				p, _ := vOne(&pipeline.Options{Defaults: pipeline.Defaults{Timeout: -1}})
				return p
			},
			want: []vKey{vk("pipeline.defaults.timeout", vInvalid)},
		},
		{
			name: "BadDefaultRetry",
			build: func() *pipeline.Pipeline {
				p, _ := vOne(&pipeline.Options{Defaults: pipeline.Defaults{Retry: task.Retry{Infra: -1}}})
				return p
			},
			want: []vKey{vk("pipeline.defaults.retry.infra", vInvalid)},
		},
		{
			name: "BadDefaultResources",
			build: func() *pipeline.Pipeline {
				p, _ := vOne(&pipeline.Options{Defaults: pipeline.Defaults{Resources: resources.Profile{CPU: "lots"}}})
				return p
			},
			// The task inherits the bad value; one mistake, one report.
			want: []vKey{vk("pipeline.defaults.resources.cpu", vInvalid)},
		},

		// Container tasks.
		{
			name:  "ContainerWithoutImage",
			build: vWithTask(nil, task.Container[vCIn, vCOut]("ctr", ""), vCIn{}),
			want:  []vKey{vk("pipeline.tasks[ctr].image", vRequired)},
		},
		{
			name:  "ContainerArgNamesMissingField",
			build: vWithTask(nil, vCtr().WithArgs("--data={{.Data}}", "--lr={{.LR}}"), vCIn{}),
			want:  []vKey{vk("pipeline.tasks[ctr].args[1]", vNotFound)},
		},
		{
			name:  "ContainerArgTemplateSyntax",
			build: vWithTask(nil, vCtr().WithArgs("{{if .Epochs}}--epochs={{.Epochs}}{{end}}"), vCIn{}),
			want:  []vKey{vk("pipeline.tasks[ctr].args[0]", vInvalid)},
		},
		{
			name:  "ContainerEnvNamesMissingField",
			build: vWithTask(nil, vCtr().WithEnv("SEED", "{{.Seed}}"), vCIn{}),
			want:  []vKey{vk("pipeline.tasks[ctr].env[0].value", vNotFound)},
		},
		{
			name:  "ContainerOutputForMissingField",
			build: vWithTask(nil, vCtr().WithOutput("loss", "/tmp/sluice/outputs/loss"), vCIn{}),
			want:  []vKey{vk("pipeline.tasks[ctr].outputs[2].field", vNotFound)},
		},
		{
			name:  "ContainerRelativeOutputPath",
			build: vWithTask(nil, vCtr().WithOutput("Model", "out/model"), vCIn{}),
			want:  []vKey{vk("pipeline.tasks[ctr].outputs[0].path", vInvalid)},
		},

		// Parameters.
		{
			name: "ParamOverrideDoesNotParse",
			build: func() *pipeline.Pipeline {
				p := pipeline.New("p", nil)
				lr := pipeline.NewParam(p, "lr", 0.01)
				pipeline.Add(p, vTask("a"), vIn{Score: lr.Ref()})
				return p
			},
			params: map[string]string{"lr": "abc"},
			want:   []vKey{vk("pipeline.params[lr]", vInvalid)},
		},
		{
			name: "OverrideOfUnknownParam",
			build: func() *pipeline.Pipeline {
				p, _ := vOne(nil)
				pipeline.NewParam(p, "lr", 0.01)
				return p
			},
			params: map[string]string{"lr": "0.1", "epochs": "3"},
			want:   []vKey{vk("pipeline.params[epochs]", vNotFound)},
		},
		{
			name: "DuplicateParam",
			build: func() *pipeline.Pipeline {
				p, _ := vOne(nil)
				pipeline.NewParam(p, "lr", 0.01)
				pipeline.NewParam(p, "lr", 0.02)
				return p
			},
			want: []vKey{vk("pipeline.params[lr]", vDuplicate)},
		},
		{
			name: "InvalidParamName",
			build: func() *pipeline.Pipeline {
				p, _ := vOne(nil)
				pipeline.NewParam(p, "learning-rate", 0.01)
				return p
			},
			want: []vKey{vk("pipeline.params[learning-rate]", vInvalid)},
		},
		{
			name: "EmptyParamName",
			build: func() *pipeline.Pipeline {
				p, _ := vOne(nil)
				pipeline.NewParam(p, "lr", 0.01)
				pipeline.NewParam(p, "", 1)
				return p
			},
			want: []vKey{vk("pipeline.params[1].name", vRequired)},
		},
		{
			name: "ParamDefaultNotJSON",
			build: func() *pipeline.Pipeline {
				p, _ := vOne(nil)
				pipeline.NewParam(p, "lr", math.NaN())
				return p
			},
			want: []vKey{vk("pipeline.params[lr].default", vInvalid)},
		},
		{
			name: "ParamOfAnotherPipeline",
			build: func() *pipeline.Pipeline {
				other := pipeline.New("other", nil)
				lr := pipeline.NewParam(other, "lr", 0.01)
				p := pipeline.New("p", nil)
				pipeline.Add(p, vTask("a"), vIn{Score: lr.Ref()})
				return p
			},
			want: []vKey{vk("pipeline.tasks[a].input.Score", vInvalid)},
		},
	}
	require.GreaterOrEqual(t, len(tests), 45)
	seen := map[string]bool{}
	for _, tc := range tests {
		require.False(t, seen[tc.name], "duplicate case name %s", tc.name)
		seen[tc.name] = true
		t.Run(tc.name, func(t *testing.T) {
			p := tc.build()
			err := p.ValidateParams(tc.params)
			require.Error(t, err)
			assert.Equal(t, tc.want, vKeys(err), "got:\n%v", err)

			// Plan reports the same problems, and Validate is stable.
			_, planErr := p.Plan(tc.params)
			assert.Equal(t, tc.want, vKeys(planErr))
			assert.Equal(t, err.Error(), p.ValidateParams(tc.params).Error())
		})
	}
}

type vAccept struct {
	name  string
	build func() *pipeline.Pipeline
	check func(t *testing.T, plan *backends.Plan)
}

// vStep returns the plan step named name.
func vStep(t *testing.T, plan *backends.Plan, name string) *backends.Step {
	t.Helper()
	s := plan.Step(name)
	require.NotNil(t, s, "no step %q in %v", name, vNames(plan))
	return s
}

func vNames(plan *backends.Plan) []string {
	var names []string
	for _, s := range plan.Steps {
		names = append(names, s.Name)
	}
	return names
}

// vDeps returns a function that checks step name depends on exactly deps.
func vDeps(name string, deps ...string) func(t *testing.T, plan *backends.Plan) {
	return func(t *testing.T, plan *backends.Plan) {
		assert.Equal(t, deps, vStep(t, plan, name).DependsOn)
	}
}

func TestValidateAccepts(t *testing.T) {
	long63 := strings.Repeat("x", pipeline.MaxNameLength)
	tests := []vAccept{
		{
			name: "WeirdNamesMapDeterministically",
			build: func() *pipeline.Pipeline {
				p := pipeline.New("Churn Model — v2 日本", nil)
				for _, n := range []string{"Train Model", "2024 eval", "résumé-v2", "  --x__y--  ", "UPPER", "a.b/c", long63} {
					pipeline.Add(p, vTask(n), vIn{})
				}
				return p
			},
			check: func(t *testing.T, plan *backends.Plan) {
				assert.Equal(t, "churn-model-v2", plan.Name)
				assert.Equal(t, "Churn Model — v2 日本", plan.DisplayName)
				assert.Equal(t, []string{"train-model", "2024-eval", "r-sum-v2", "x-y", "upper", "a-b-c", long63}, vNames(plan))
				assert.Equal(t, "Train Model", plan.Steps[0].DisplayName)
			},
		},
		{
			name: "LeadingDigitsAndUnicodeMixed",
			build: func() *pipeline.Pipeline {
				p := pipeline.New("0pipeline", nil)
				pipeline.Add(p, vTask("0"), vIn{})
				pipeline.Add(p, vTask("données 2"), vIn{})
				return p
			},
			check: func(t *testing.T, plan *backends.Plan) {
				assert.Equal(t, "0pipeline", plan.Name)
				assert.Equal(t, []string{"0", "donn-es-2"}, vNames(plan))
			},
		},
		{
			name: "LongFanOutNamesAreFitted",
			build: func() *pipeline.Pipeline {
				p := pipeline.New("p", nil)
				pipeline.FanOut(p, vTask(strings.Repeat("y", 62)), []vIn{{}, {}, {}})
				return p
			},
			check: func(t *testing.T, plan *backends.Plan) {
				require.Len(t, plan.Steps, 3)
				for _, s := range plan.Steps {
					assert.Len(t, s.Name, pipeline.MaxNameLength)
				}
			},
		},
		{
			name: "RefNestedInSliceMapPointerInterfaceAndEmbedded",
			build: func() *pipeline.Pipeline {
				type Inner struct{ R pipeline.Ref[vOut] }
				type Embedded struct{ E pipeline.Ref[vOut] }
				type in struct {
					Embedded
					List  []pipeline.Ref[vOut]
					ByKey map[string]pipeline.Ref[vOut]
					Ptr   *Inner
					RefP  *pipeline.Ref[vOut]
					Any   any
				}
				p := pipeline.New("p", nil)
				var outs []pipeline.Step[vOut]
				for _, n := range []string{"s0", "s1", "s2", "s3", "s4", "s5", "s6"} {
					outs = append(outs, pipeline.Add(p, vTask(n), vIn{}))
				}
				r5 := outs[5].Output()
				pipeline.Add(p, task.New("sink", func(context.Context, in) (vOut, error) { return vOut{}, nil }), in{
					Embedded: Embedded{E: outs[6].Output()},
					List:     []pipeline.Ref[vOut]{outs[0].Output()},
					ByKey:    map[string]pipeline.Ref[vOut]{"k": outs[1].Output(), "j": outs[2].Output()},
					Ptr:      &Inner{R: outs[3].Output()},
					Any:      Inner{R: outs[4].Output()},
					RefP:     &r5,
				})
				return p
			},
			check: func(t *testing.T, plan *backends.Plan) {
				sink := vStep(t, plan, "sink")
				assert.Equal(t, []string{"s0", "s1", "s2", "s3", "s4", "s5", "s6"}, sink.DependsOn)
				assert.Len(t, sink.Input.Refs, 7)
			},
		},
		{
			name: "NilRefPointerIsNotADependency",
			build: func() *pipeline.Pipeline {
				type in struct{ R *pipeline.Ref[vOut] }
				p := pipeline.New("p", nil)
				pipeline.Add(p, task.New("a", func(context.Context, in) (vOut, error) { return vOut{}, nil }), in{})
				return p
			},
			check: vDeps("a"),
		},
		{
			name: "RefDeepInALinkedList",
			build: func() *pipeline.Pipeline {
				p, a := vOne(nil)
				head := &vList{R: a.Output()}
				for range 20 {
					head = &vList{Next: head}
				}
				pipeline.Add(p, task.New("b", func(context.Context, *vList) (vOut, error) { return vOut{}, nil }), head)
				return p
			},
			check: vDeps("b", "a"),
		},
		{
			name: "RefInUnexportedFieldIsNotADependency",
			build: func() *pipeline.Pipeline {
				type in struct {
					Public string
					hidden pipeline.Ref[vOut]
				}
				p, a := vOne(nil)
				v := in{Public: "x", hidden: a.Output()}
				_ = v.hidden
				pipeline.Add(p, task.New("b", func(context.Context, in) (vOut, error) { return vOut{}, nil }), v)
				return p
			},
			check: func(t *testing.T, plan *backends.Plan) {
				b := vStep(t, plan, "b")
				assert.Empty(t, b.DependsOn)
				assert.Empty(t, b.Input.Refs)
				assert.JSONEq(t, `{"Public":"x"}`, string(b.Input.Template))
			},
		},
		{
			name: "SameRefTwiceIsOneInputRef",
			build: func() *pipeline.Pipeline {
				p, a := vOne(nil)
				out := a.Output()
				pipeline.Add(p, vTask("b"), vIn{Data: out, All: pipeline.Collect(a, a)})
				return p
			},
			check: func(t *testing.T, plan *backends.Plan) {
				b := vStep(t, plan, "b")
				assert.Equal(t, []string{"a"}, b.DependsOn)
				assert.Len(t, b.Input.Refs, 2) // out, and the collect
			},
		},
		{
			name: "DataConditionAndAfterDependenciesAreMergedAndSorted",
			build: func() *pipeline.Pipeline {
				p := pipeline.New("p", nil)
				z := pipeline.Add(p, vTask("z"), vIn{})
				m := pipeline.Add(p, vTask("m"), vIn{})
				a := pipeline.Add(p, vTask("a"), vIn{})
				pipeline.Add(p, vTask("sink"), vIn{Data: z.Output()}).
					When(pipeline.IsTrue(pipeline.Field[bool](m.Output(), "OK"))).
					After(a, z)
				return p
			},
			check: vDeps("sink", "a", "m", "z"),
		},
		{
			name: "ExitHandlerReadsStatusAndParams",
			build: func() *pipeline.Pipeline {
				p, a := vOne(nil)
				tag := pipeline.NewParam(p, "tag", "dev")
				pipeline.Add(p, vTask("b"), vIn{Data: a.Output(), Name: tag.Ref()})
				pipeline.OnExit(p, vTask("notify"), vIn{Run: p.Status(), Name: tag.Ref()})
				return p
			},
			check: func(t *testing.T, plan *backends.Plan) {
				require.NotNil(t, plan.Exit)
				assert.Equal(t, "notify", plan.Exit.Name)
				assert.Empty(t, plan.Exit.DependsOn)
				assert.Equal(t, []string{"a", "b"}, vNames(plan))
			},
		},
		{
			name: "FanOutAndCollect",
			build: func() *pipeline.Pipeline {
				p := pipeline.New("p", nil)
				shards := pipeline.FanOut(p, vTask("shard"), []vIn{{Note: "0"}, {Note: "1"}})
				pipeline.Add(p, vTask("merge"), vIn{All: pipeline.Collect(shards...)})
				return p
			},
			check: func(t *testing.T, plan *backends.Plan) {
				assert.Equal(t, []string{"shard-0", "shard-1", "merge"}, vNames(plan))
				assert.Equal(t, []string{"shard-0", "shard-1"}, vStep(t, plan, "merge").DependsOn)
			},
		},
		{
			name: "ForEachOverConstantParamAndStepOutput",
			build: func() *pipeline.Pipeline {
				p, a := vOne(nil)
				sizes := pipeline.NewParam(p, "sizes", []int{1, 2})
				bind := func(it pipeline.Ref[int]) vIn { return vIn{Shard: it} }
				f1 := pipeline.ForEach(p, vTask("f1"), pipeline.Const([]int{1, 2, 3}), bind).Limit(2)
				pipeline.ForEach(p, vTask("f2"), sizes.Ref(), bind).When(pipeline.Gt(pipeline.Const(1), 0))
				pipeline.ForEach(p, vTask("f3"), pipeline.Field[[]int](a.Output(), "shards"), bind).After(f1)
				return p
			},
			check: func(t *testing.T, plan *backends.Plan) {
				assert.Equal(t, 2, vStep(t, plan, "f1").ForEach.Parallelism)
				assert.Equal(t, backends.RefParam, vStep(t, plan, "f2").ForEach.Items.Kind)
				assert.Equal(t, []string{"a", "f1"}, vStep(t, plan, "f3").DependsOn)
				assert.Equal(t, []string{"shards"}, vStep(t, plan, "f3").ForEach.Items.Path)
			},
		},
		{
			name: "ProfilesThatFitTheirPools",
			build: func() *pipeline.Pipeline {
				p := pipeline.New("p", &pipeline.Options{
					NodePools: []resources.NodePool{vCPUPool, vGPUPool},
					Defaults:  pipeline.Defaults{Resources: resources.Profile{CPU: "1", Memory: "2Gi"}},
				})
				pipeline.Add(p, vTask("small"), vIn{})
				pipeline.Add(p, vTask("exact").WithResources(resources.Profile{CPU: "8", NodePool: "cpu"}), vIn{})
				pipeline.Add(p, vTask("spot").WithResources(resources.Profile{GPUs: 4, NodePool: "gpu", Preemptible: true}).
					WithRetry(task.Retry{App: 1, Infra: 3, OnDemandFallback: true}), vIn{})
				return p
			},
			check: func(t *testing.T, plan *backends.Plan) {
				assert.Equal(t, "2Gi", vStep(t, plan, "exact").Task.Resources.Memory, "inherited from defaults")
				assert.NotNil(t, vStep(t, plan, "spot").Resolved.OnDemand)
			},
		},
		{
			name: "ZeroCondAndZeroRefAreFine",
			build: func() *pipeline.Pipeline {
				p := pipeline.New("p", nil)
				pipeline.Add(p, vTask("a"), vIn{}).When(pipeline.Cond{}).When(pipeline.And())
				return p
			},
			check: vDeps("a"),
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := tc.build()
			require.NoError(t, p.Validate())
			plan, err := p.Plan(nil)
			require.NoError(t, err)
			vCheckPlan(t, plan)
			tc.check(t, plan)
		})
	}
}

// vCheckPlan checks the guarantees written on backends.Plan.
func vCheckPlan(t *testing.T, plan *backends.Plan) {
	t.Helper()
	assert.True(t, vIsLabel(plan.Name), "plan name %q", plan.Name)
	pos := map[string]int{}
	for i, s := range plan.Steps {
		assert.True(t, vIsLabel(s.Name), "step name %q", s.Name)
		_, dup := pos[s.Name]
		assert.False(t, dup, "duplicate step name %q", s.Name)
		pos[s.Name] = i
		assert.True(t, slices.IsSorted(s.DependsOn), "%s: DependsOn not sorted: %v", s.Name, s.DependsOn)
		for _, d := range s.DependsOn {
			j, ok := pos[d]
			assert.True(t, ok && j < i, "%s depends on %s, which is not an earlier step", s.Name, d)
		}
		assert.NotNil(t, s.Task.Retry, s.Name)
		_, err := s.Input.Render(func(int) (string, error) { return "null", nil })
		assert.NoError(t, err, s.Name)
	}
	if plan.Exit != nil {
		_, dup := pos[plan.Exit.Name]
		assert.False(t, dup, "exit handler name %q is also a step", plan.Exit.Name)
		assert.Empty(t, plan.Exit.DependsOn)
	}
}

func vIsLabel(s string) bool {
	if s == "" || len(s) > pipeline.MaxNameLength || s[0] == '-' || s[len(s)-1] == '-' {
		return false
	}
	for _, c := range []byte(s) {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

func TestValidateReportsEveryProblem(t *testing.T) {
	p := pipeline.New("", nil)
	pipeline.NewParam(p, "lr", 0.01)
	a := pipeline.Add(p, vTask("train").WithResources(resources.Profile{CPU: "lots"}), vIn{})
	pipeline.Add(p, vTask("eval").WithRetry(task.Retry{App: -1}), vIn{Data: a.Output()})
	pipeline.Add(p, task.Container[vCIn, vCOut]("report", ""), vCIn{})

	err := p.ValidateParams(map[string]string{"lr": "fast"})

	assert.Equal(t, []vKey{
		vk("pipeline.name", vRequired),
		vk("pipeline.params[lr]", vInvalid),
		vk("pipeline.tasks[train].resources.cpu", vInvalid),
		vk("pipeline.tasks[eval].retry.app", vInvalid),
		vk("pipeline.tasks[report].image", vRequired),
	}, vKeys(err))
}

// vNoBackend fails the test if the pipeline reaches the backend.
type vNoBackend struct{ t *testing.T }

func (b vNoBackend) Compile(context.Context, *backends.Plan, *backends.CompileOptions) (backends.Artifact, error) {
	b.t.Error("the backend was called with an invalid pipeline")
	return nil, errors.New("unreachable")
}

func TestValidationErrorShape(t *testing.T) {
	p := pipeline.New("p", nil)
	pipeline.Add(p, vTask("train").WithResources(resources.Profile{GPUModel: "A100-80GB", MIG: "3g.20gb"}), vIn{})
	pipeline.Add(p, vTask("eval").WithTimeout(-time.Second), vIn{})

	_, err := pipeline.Compile(t.Context(), p, vNoBackend{t}, nil)
	require.Error(t, err)

	var fe *pipeline.FieldError
	require.ErrorAs(t, err, &fe, "errors.As sees through Compile's wrapping")
	assert.Equal(t, "pipeline.tasks[train].resources.mig", fe.Field)
	assert.Equal(t, vInvalid, fe.Type)
	assert.Contains(t, fe.Detail, `did you mean "3g.40gb"`)
	fe2, ok := errors.AsType[*pipeline.FieldError](err)
	require.True(t, ok)
	assert.Same(t, fe, fe2)

	fes := pipeline.FieldErrors(err)
	require.Len(t, fes, 2)
	assert.Equal(t, []vKey{
		vk("pipeline.tasks[train].resources.mig", vInvalid),
		vk("pipeline.tasks[eval].timeout", vInvalid),
	}, vKeys(err))

	// One problem per line, after Plan's one-line header.
	lines := strings.Split(err.Error(), "\n")
	require.Len(t, lines, 1+len(fes), "%s", err)
	for i, fe := range fes {
		assert.Equal(t, fe.Error(), lines[1+i])
	}
	// Validate itself has no header: exactly one line per problem.
	assert.Equal(t, strings.Join(lines[1:], "\n"), p.Validate().Error())
}

func TestPlanIsTopologicalWithSortedDependsOn(t *testing.T) {
	p := pipeline.New("p", nil)
	d := pipeline.Add(p, vTask("d"), vIn{})
	c := pipeline.Add(p, vTask("c"), vIn{})
	b := pipeline.Add(p, vTask("b"), vIn{Data: c.Output()}).After(d)
	a := pipeline.Add(p, vTask("a"), vIn{All: pipeline.Collect(d, b, c)})
	e := pipeline.Add(p, vTask("e"), vIn{})
	d.After(e) // added later, runs earlier
	c.After(e)
	pipeline.Add(p, vTask("f"), vIn{}) // independent: stays in insertion order
	_ = a

	plan, err := p.Plan(nil)
	require.NoError(t, err)
	vCheckPlan(t, plan)
	// Ties are broken by insertion order: e is the only root among the
	// first five, and f comes last because it was added last.
	assert.Equal(t, []string{"e", "d", "c", "b", "a", "f"}, vNames(plan))
	assert.Equal(t, []string{"c", "d"}, vStep(t, plan, "b").DependsOn)
	assert.Equal(t, []string{"b", "c", "d"}, vStep(t, plan, "a").DependsOn)
}

// vDiamond builds the same pipeline every time it is called.
func vDiamond() *pipeline.Pipeline {
	p := pipeline.New("Diamond", &pipeline.Options{
		Defaults:  pipeline.Defaults{Retry: task.Retry{App: 1}, Resources: resources.Profile{CPU: "1"}},
		NodePools: []resources.NodePool{vCPUPool, vGPUPool},
	})
	lr := pipeline.NewParam(p, "lr", 0.01)
	src := pipeline.Add(p, vTask("source"), vIn{Note: "s3://bucket"})
	left := pipeline.Add(p, vTask("left").WithResources(resources.Profile{GPUs: 1, NodePool: "gpu", Preemptible: true}).
		WithRetry(task.Retry{Infra: 2, OnDemandFallback: true}), vIn{Data: src.Output(), Score: lr.Ref()})
	right := pipeline.Add(p, vTask("right"), vIn{Data: src.Output()})
	fan := pipeline.ForEach(p, vTask("fan"), pipeline.Field[[]int](right.Output(), "shards"),
		func(it pipeline.Ref[int]) vIn { return vIn{Shard: it, Data: left.Output()} }).Limit(3)
	pipeline.Add(p, vCtr().WithArgs("--data={{.Data}}"), vCIn{Data: "x"}).After(fan)
	pipeline.Add(p, vTask("join"), vIn{All: pipeline.Collect(left, right)}).
		When(pipeline.Gt(pipeline.Field[float64](left.Output(), "accuracy"), 0.9))
	pipeline.OnExit(p, vTask("notify"), vIn{Run: p.Status()})
	return p
}

func TestPlanIsDeterministic(t *testing.T) {
	plan1, err := vDiamond().Plan(map[string]string{"lr": "0.1"})
	require.NoError(t, err)
	plan2, err := vDiamond().Plan(map[string]string{"lr": "0.1"})
	require.NoError(t, err)
	vCheckPlan(t, plan1)

	for _, plan := range []*backends.Plan{plan1, plan2} {
		for i := range plan.Steps {
			plan.Steps[i].Invoke = nil // funcs never compare equal
		}
		plan.Exit.Invoke = nil
	}
	assert.Equal(t, plan1, plan2)
	assert.Equal(t, []string{"source", "left", "right", "fan", "ctr", "join"}, vNames(plan1))
}

func TestPlanConcurrentSafe(t *testing.T) {
	p := vDiamond()
	want, err := p.Plan(nil)
	require.NoError(t, err)
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Go(func() {
			plan, err := p.Plan(nil)
			if err == nil && len(plan.Steps) != len(want.Steps) {
				err = fmt.Errorf("%d steps, want %d", len(plan.Steps), len(want.Steps))
			}
			if err == nil {
				err = p.Validate()
			}
			errs[i] = err
		})
	}
	wg.Wait()
	for _, err := range errs {
		assert.NoError(t, err)
	}
}

func TestParamDefaultOfInterfaceType(t *testing.T) {
	p := pipeline.New("p", nil)
	pm := pipeline.NewParam[any](p, "x", nil)
	require.NoError(t, p.ValidateParams(map[string]string{"x": "[1]"}))
	assert.NotPanics(t, func() { assert.Nil(t, pm.Default()) })
}

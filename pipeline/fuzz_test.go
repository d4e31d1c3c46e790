package pipeline_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/sluice-ml/sluice/backends"
	"github.com/sluice-ml/sluice/pipeline"
	"github.com/sluice-ml/sluice/resources"
	"github.com/sluice-ml/sluice/task"
)

// Identifiers in this file start with "fz" because package pipeline_test is
// shared with other test files.

type fzOut struct {
	Accuracy float64 `json:"accuracy"`
	Model    string  `json:"model"`
	Shards   []int   `json:"shards"`
	OK       bool    `json:"ok"`
}

// fzIn has a field for every shape of reference the generator wires.
type fzIn struct {
	A    pipeline.Ref[fzOut]
	B    pipeline.Ref[float64]
	S    pipeline.Ref[string]
	I    pipeline.Ref[int]
	L    []pipeline.Ref[fzOut]
	M    map[string]pipeline.Ref[int]
	C    pipeline.Ref[[]fzOut]
	R    pipeline.Ref[pipeline.RunInfo]
	P    *pipeline.Ref[bool]
	X    any
	Meta map[string]int
	Note string `json:"note"`
}

// fzNewIn returns an input with P set: a nil P is a choice of wire.
func fzNewIn() *fzIn { return &fzIn{P: &pipeline.Ref[bool]{}} }

func fzWork(context.Context, *fzIn) (fzOut, error) { return fzOut{}, nil }

// fzDec turns fuzz bytes into choices. Past the end every choice is 0, and
// choice 0 is always the harmless one, so short inputs build valid graphs.
type fzDec struct {
	b []byte
	i int
	// raw makes str sometimes take a string from the input itself (see
	// FuzzStringsAndEdges); FuzzValidate picks from the lists only.
	raw bool
}

// str returns a string for a string field: one of xs or, when the decoder
// takes raw strings, sometimes the next bytes of the input (a length byte,
// then up to that many bytes), alone or after one of xs, so that the
// fuzzer both invents strings and mutates ones that are almost valid.
func (d *fzDec) str(xs []string) string {
	if !d.raw {
		return fzPick(d, xs)
	}
	switch d.intn(4) {
	case 2:
		return d.rawStr()
	case 3:
		return fzPick(d, xs) + d.rawStr()
	}
	return fzPick(d, xs)
}

func (d *fzDec) rawStr() string {
	n := d.intn(100)
	end := min(d.i+n, len(d.b))
	s := string(d.b[min(d.i, end):end])
	d.i = end
	return s
}

func (d *fzDec) byte() byte {
	if d.i >= len(d.b) {
		return 0
	}
	c := d.b[d.i]
	d.i++
	return c
}

// intn returns a choice in [0, n).
func (d *fzDec) intn(n int) int {
	if n <= 1 {
		return 0
	}
	return int(d.byte()) % n
}

// oneIn is true with probability about 1/n (false past the end).
func (d *fzDec) oneIn(n int) bool { return d.intn(n) == n-1 }

func fzPick[T any](d *fzDec, xs []T) T { return xs[d.intn(len(xs))] }

var (
	fzWeirdNames = []string{"train", "Train Model", "train-model", "日本語", "2024 eval", strings.Repeat("x", 64),
		strings.Repeat("y", 63), "", "t0", "t1-0", "résumé", "--", "a.b/c", "UPPER", "0"}
	fzParamNames  = []string{"lr", "shards", "tag", "flag", "learning-rate", "", "_x", "9x", strings.Repeat("p", 64)}
	fzOverrideVal = []string{"0.1", "abc", "[1,2]", `"s"`, "true", "1e400", "", "null"}
	fzQuantities  = []string{"", "1", "500m", "16Gi", "abc", "-1", "0", "1.5G", "64", "1e3", "9999999Ei"}
	fzModels      = []string{"", "A100-80GB", "a100-80gb", "T4", "A200", "H100-94GB", "A30-24GB"}
	fzMIGs        = []string{"", "3g.40gb", "3g.20gb", "1g.10gb+me", "7g.80gb", "bogus", "1g.6gb"}
	fzPoolNames   = []string{"", "cpu", "gpu", "spot", "nope", "GPU_Pool"}
	fzDurations   = []time.Duration{0, time.Minute, -time.Second, time.Millisecond}
	fzFields      = []string{"accuracy", "Accuracy", "model", "shards", "ok", "OK", "nope", ""}
	fzArgs        = []string{"--a={{.A}}", "{{.note}}", "{{ .B }}", "{{.Nope}}", "{{if .A}}x{{end}}", "}}", "plain"}
	fzPools       = []resources.NodePool{
		{Name: "cpu", Provider: resources.ProviderGKE, Node: resources.Capacity{CPU: "8", Memory: "32Gi"}},
		{Name: "gpu", Provider: resources.ProviderGKE, Spot: true, MIGStrategy: resources.MIGSingle,
			Node: resources.Capacity{CPU: "32", GPUModel: "A100-80GB", GPUs: 4, MIG: map[string]int{"3g.40gb": 8}}},
		{Name: "spot", Spot: true, SpotLabels: map[string]string{"example.com/spot": "true"}},
		{Name: "GPU_Pool"},
		{Name: "cpu", Provider: resources.ProviderEKS, Spot: true},
		{Name: "spot", Spot: true},
		{Name: "gpu", Provider: "azure"},
		{Name: "big", Provider: resources.ProviderAKS, Spot: true, Node: resources.Capacity{CPU: "96", Memory: "1Ti", GPUs: 8}},
	}
)

func fzProfile(d *fzDec) resources.Profile {
	var r resources.Profile
	if d.oneIn(2) {
		r.CPU = d.str(fzQuantities)
	}
	if d.oneIn(2) {
		r.Memory = d.str(fzQuantities)
	}
	if d.oneIn(4) {
		r.SharedMemory = d.str(fzQuantities)
	}
	if d.oneIn(3) {
		r.GPUModel = d.str(fzModels)
		r.GPUs = d.intn(10) - 1
	}
	if d.oneIn(3) {
		r.MIG = d.str(fzMIGs)
		r.MIGCount = d.intn(20) - 1
		r.MIGStrategy = fzPick(d, []resources.MIGStrategy{"", resources.MIGMixed, resources.MIGSingle, "odd"})
	}
	if d.oneIn(2) {
		r.NodePool = d.str(fzPoolNames)
		r.Preemptible = d.oneIn(2)
	}
	return r
}

// fzPool returns a node pool whose strings come from the input.
func fzPool(d *fzDec) resources.NodePool {
	np := resources.NodePool{
		Name:     d.str(fzPoolNames),
		Provider: resources.Provider(d.str([]string{"", "gke", "eks", "aks"})),
		Spot:     d.oneIn(2),
		Node:     resources.Capacity{CPU: d.str(fzQuantities), Memory: d.str(fzQuantities), GPUModel: d.str(fzModels), GPUs: d.intn(9)},
	}
	labelKeys := []string{"pool", "example.com/pool", "cloud.google.com/gke-nodepool", "", "a/b/c"}
	labelValues := []string{"gpu", "", "a b", strings.Repeat("v", 64)}
	taintEffects := []corev1.TaintEffect{corev1.TaintEffectNoSchedule, corev1.TaintEffectPreferNoSchedule, corev1.TaintEffectNoExecute, "", "Sometimes"}
	for range d.intn(3) {
		if np.Labels == nil {
			np.Labels = map[string]string{}
		}
		np.Labels[d.str(labelKeys)] = d.str(labelValues)
	}
	for range d.intn(3) {
		np.Taints = append(np.Taints, corev1.Taint{Key: d.str(labelKeys), Value: d.str(labelValues), Effect: fzPick(d, taintEffects)})
	}
	if d.oneIn(2) {
		np.SpotLabels = map[string]string{d.str(labelKeys): d.str(labelValues)}
	}
	if d.oneIn(3) {
		np.SpotTaints = []corev1.Taint{{Key: d.str(labelKeys), Value: d.str(labelValues), Effect: fzPick(d, taintEffects)}}
	}
	return np
}

func fzRetry(d *fzDec) task.Retry {
	return task.Retry{
		App:   fzPick(d, []int{0, 1, 3, -1}),
		Infra: fzPick(d, []int{0, 2, -1}),
		Backoff: task.Backoff{
			Initial: fzPick(d, fzDurations),
			Factor:  fzPick(d, []float64{0, 2, 1, 0.5, math.Inf(1)}),
			Max:     fzPick(d, fzDurations),
		},
		OnDemandFallback: d.oneIn(3),
	}
}

func fzTask(d *fzDec, name string) task.Task[*fzIn, fzOut] {
	var t task.Task[*fzIn, fzOut]
	if d.oneIn(4) {
		t = task.Container[*fzIn, fzOut](name, d.str([]string{"registry.example/x:1", ""}))
		if d.oneIn(2) {
			t = t.WithArgs(d.str(fzArgs), d.str(fzArgs))
		}
		if d.oneIn(3) {
			t = t.WithEnv(d.str([]string{"K", ""}), d.str(fzArgs))
		}
		if d.oneIn(3) {
			t = t.WithOutput(d.str(fzFields), d.str([]string{"/out/x", "rel", ""}))
		}
	} else {
		t = task.New(name, fzWork)
	}
	if d.raw && d.oneIn(4) {
		t = t.WithCommand(d.str(fzArgs), d.str([]string{"-c", "/bin/sh"}))
	}
	if d.raw && d.oneIn(4) {
		t = t.WithImage(d.str([]string{"registry.example/x:1", "x", "localhost:5000/a/b@sha256:" + strings.Repeat("ab", 32)}))
	}
	if d.oneIn(3) {
		t = t.WithResources(fzProfile(d))
	}
	if d.oneIn(4) {
		t = t.WithRetry(fzRetry(d))
	}
	if d.oneIn(6) {
		t = t.WithTimeout(fzPick(d, fzDurations))
	}
	if d.oneIn(6) {
		t = t.WithCache(task.Cache{Enabled: true, ExcludeInputs: []string{d.str(fzFields)}})
	}
	return t
}

// fzNode is one added step (or fan-out) and the input it will be wired with.
type fzNode struct {
	in    *fzIn
	step  *pipeline.Step[fzOut]
	fan   *pipeline.Fan[fzOut]
	after func(...pipeline.Dependency)
	when  func(pipeline.Cond)
	dep   pipeline.Dependency
}

// fzGraph builds one pipeline from fuzz bytes.
type fzGraph struct {
	d         *fzDec
	p         *pipeline.Pipeline
	other     *pipeline.Pipeline
	otherStep pipeline.Step[fzOut]
	otherLR   pipeline.Param[float64]
	nodes     []*fzNode
	cur       int // index of the node being wired
	items     []pipeline.Ref[int]
	floats    []pipeline.Param[float64]
	lists     []pipeline.Param[[]int]
	strs      []pipeline.Param[string]
}

func fzBuild(data []byte) (*pipeline.Pipeline, map[string]string) {
	return fzBuildFrom(&fzDec{b: data})
}

func fzBuildFrom(d *fzDec) (*pipeline.Pipeline, map[string]string) {
	g := &fzGraph{d: d}
	g.other = pipeline.New("other", nil)
	g.otherStep = pipeline.Add(g.other, task.New("o", fzWork), fzNewIn())
	g.otherLR = pipeline.NewParam(g.other, "lr", 0.1)

	opts := &pipeline.Options{}
	for range d.intn(4) {
		opts.NodePools = append(opts.NodePools, fzPick(d, fzPools))
	}
	if d.raw && d.oneIn(2) {
		opts.NodePools = append(opts.NodePools, fzPool(d))
	}
	if d.oneIn(3) {
		opts.Defaults = pipeline.Defaults{
			Resources: fzProfile(d),
			Retry:     fzRetry(d),
			Timeout:   fzPick(d, fzDurations),
		}
	}
	name := "p"
	if d.oneIn(4) {
		name = d.str(fzWeirdNames)
	}
	g.p = pipeline.New(name, opts)

	for range d.intn(5) {
		pn := d.str(fzParamNames)
		switch d.intn(4) {
		case 0:
			g.floats = append(g.floats, pipeline.NewParam(g.p, pn, 0.01))
		case 1:
			g.lists = append(g.lists, pipeline.NewParam(g.p, pn, []int{1, 2}))
		case 2:
			g.strs = append(g.strs, pipeline.NewParam(g.p, pn, d.str([]string{"dev"})))
		case 3:
			pipeline.NewParam(g.p, pn, math.NaN())
		}
	}

	for i := range (d.intn(10) + 3) % 10 { // 3 nodes past the end
		name := fmt.Sprintf("t%d", i)
		if d.oneIn(4) {
			name = d.str(fzWeirdNames)
		}
		t := fzTask(d, name)
		switch d.intn(8) {
		case 5:
			g.addForEach(t)
		case 6:
			ins := make([]*fzIn, 1+d.intn(3))
			for k := range ins {
				ins[k] = fzNewIn()
			}
			for k, s := range pipeline.FanOut(g.p, t, ins) {
				g.addStep(s, ins[k])
			}
		case 7:
			in := fzNewIn()
			g.addStep(pipeline.OnExit(g.p, t, in), in)
		default:
			var in *fzIn
			if !d.oneIn(16) {
				in = fzNewIn()
			}
			g.addStep(pipeline.Add(g.p, t, in), in)
		}
	}

	// Wire inputs, conditions and ordering once every node exists, so that
	// references and edges may point forwards (making cycles) and to the
	// exit handler.
	for i, n := range g.nodes {
		g.cur = i
		if n.in != nil {
			g.wire(n.in)
		}
		if d.oneIn(4) {
			n.when(g.cond(0))
		}
	}
	for range d.intn(6) {
		if len(g.nodes) == 0 {
			break
		}
		g.cur = d.intn(len(g.nodes))
		from := g.nodes[g.cur]
		switch d.intn(6) {
		case 3:
			from.after(pipeline.Step[fzOut]{})
		case 4:
			from.after(g.otherStep)
		case 5:
			from.after(nil)
		default:
			from.after(g.pickNode().dep)
		}
	}

	var overrides map[string]string
	for range d.intn(3) {
		if overrides == nil {
			overrides = map[string]string{}
		}
		overrides[d.str(slices.Concat(fzParamNames, []string{"epochs"}))] = d.str(fzOverrideVal)
	}
	return g.p, overrides
}

func (g *fzGraph) addStep(s pipeline.Step[fzOut], in *fzIn) {
	g.nodes = append(g.nodes, &fzNode{
		in:    in,
		step:  &s,
		after: func(deps ...pipeline.Dependency) { s.After(deps...) },
		when:  func(c pipeline.Cond) { s.When(c) },
		dep:   s,
	})
}

func (g *fzGraph) addForEach(t task.Task[*fzIn, fzOut]) {
	var in *fzIn
	fan := pipeline.ForEach(g.p, t, g.itemsRef(), func(it pipeline.Ref[int]) *fzIn {
		in = fzNewIn()
		in.I = it
		g.items = append(g.items, it)
		return in
	})
	if g.d.oneIn(3) {
		fan = fan.Limit(g.d.intn(4) - 1)
	}
	g.nodes = append(g.nodes, &fzNode{
		in:    in,
		fan:   &fan,
		after: func(deps ...pipeline.Dependency) { fan.After(deps...) },
		when:  func(c pipeline.Cond) { fan.When(c) },
		dep:   fan,
	})
}

// itemsRef returns the list a new fan-out iterates over: only nodes that
// already exist can be named here.
func (g *fzGraph) itemsRef() pipeline.Ref[[]int] {
	d := g.d
	switch d.intn(8) {
	case 1:
		return pipeline.Field[[]int](g.out(), d.str([]string{"shards", "Shards", "model", "nope"}))
	case 2:
		if len(g.lists) > 0 {
			return fzPick(d, g.lists).Ref()
		}
	case 3:
		return pipeline.Field[[]int](pipeline.Step[fzOut]{}.Output(), "shards")
	case 4:
		return pipeline.Field[[]int](g.otherStep.Output(), "shards")
	case 5:
		return pipeline.Field[[]int](pipeline.Const(fzOut{Shards: []int{1}}), d.str(fzFields))
	case 6:
		if len(g.nodes) > 0 {
			if n := g.nodes[d.intn(len(g.nodes))]; n.fan != nil {
				return pipeline.Field[[]int](n.fan.Collect(), "shards")
			}
		}
	}
	return pipeline.Const([]int{1, 2, 3})
}

// pickNode returns a node, usually one added before the node being wired
// (a valid dependency), sometimes any node (a cycle, a self-reference, the
// exit handler); nil when there is none.
func (g *fzGraph) pickNode() *fzNode {
	if len(g.nodes) == 0 {
		return nil
	}
	if g.cur > 0 && !g.d.oneIn(5) {
		return g.nodes[g.d.intn(g.cur)]
	}
	return g.nodes[g.d.intn(len(g.nodes))]
}

// out returns a reference to some node's output (or a bad reference).
func (g *fzGraph) out() pipeline.Ref[fzOut] {
	d := g.d
	switch d.intn(8) {
	case 5:
		return pipeline.Step[fzOut]{}.Output()
	case 6:
		return g.otherStep.Output()
	case 7:
		return pipeline.Const(fzOut{Model: "m"})
	}
	n := g.pickNode()
	if n == nil {
		return pipeline.Const(fzOut{})
	}
	if n.step != nil {
		return n.step.Output()
	}
	// A fan-out's output is a list: projecting a field of it is an error.
	return pipeline.Field[fzOut](n.fan.Collect(), "A")
}

func (g *fzGraph) floatRef() pipeline.Ref[float64] {
	d := g.d
	switch d.intn(6) {
	case 1:
		if len(g.floats) > 0 {
			return fzPick(d, g.floats).Ref()
		}
	case 2:
		return g.otherLR.Ref()
	case 3:
		return pipeline.Const(1.5)
	case 4:
		return pipeline.Field[float64](g.p.Status(), "phase")
	}
	return pipeline.Field[float64](g.out(), d.str(fzFields))
}

func (g *fzGraph) strRef() pipeline.Ref[string] {
	d := g.d
	switch d.intn(4) {
	case 1:
		if len(g.strs) > 0 {
			return fzPick(d, g.strs).Ref()
		}
	case 2:
		return pipeline.Const(d.str([]string{"x"}))
	}
	return pipeline.Field[string](g.out(), d.str(fzFields))
}

func (g *fzGraph) intRef() pipeline.Ref[int] {
	d := g.d
	switch d.intn(4) {
	case 1:
		return pipeline.Const(3)
	case 2:
		return pipeline.Field[int](g.out(), d.str(fzFields))
	}
	if len(g.items) > 0 {
		return fzPick(d, g.items)
	}
	return pipeline.Const(1)
}

func (g *fzGraph) list() pipeline.Ref[[]fzOut] {
	d := g.d
	switch d.intn(4) {
	case 1:
		var fans []*fzNode
		for _, n := range g.nodes {
			if n.fan != nil {
				fans = append(fans, n)
			}
		}
		if len(fans) > 0 {
			return fzPick(d, fans).fan.Collect()
		}
	case 2:
		return pipeline.Fan[fzOut]{}.Collect()
	}
	var steps []pipeline.Step[fzOut]
	for range 1 + d.intn(3) {
		if len(g.nodes) == 0 || d.oneIn(6) {
			steps = append(steps, pipeline.Step[fzOut]{})
			continue
		}
		if n := g.pickNode(); n.step != nil {
			steps = append(steps, *n.step)
		}
	}
	return pipeline.Collect(steps...)
}

func (g *fzGraph) wire(in *fzIn) {
	d := g.d
	if d.oneIn(3) {
		in.A = g.out()
	}
	if d.oneIn(3) {
		in.B = g.floatRef()
	}
	if d.oneIn(4) {
		in.S = g.strRef()
	}
	if d.oneIn(4) {
		in.I = g.intRef()
	}
	if d.oneIn(5) {
		for range 1 + d.intn(3) {
			in.L = append(in.L, g.out())
		}
	}
	if d.oneIn(5) {
		in.M = map[string]pipeline.Ref[int]{"k": g.intRef(), "j": g.intRef()}
	}
	if d.oneIn(4) {
		in.C = g.list()
	}
	if d.oneIn(4) {
		in.R = fzPick(d, []pipeline.Ref[pipeline.RunInfo]{g.p.Status(), g.other.Status()})
	}
	if d.oneIn(5) {
		r := pipeline.Field[bool](g.out(), d.str(fzFields))
		in.P = &r
	} else if d.oneIn(5) {
		in.P = nil
	}
	if d.oneIn(5) {
		switch d.intn(5) {
		case 0:
			in.X = g.out()
		case 1:
			in.X = []any{g.floatRef(), "x"}
		case 2:
			in.X = map[string]any{"s": g.strRef()}
		case 3:
			in.X = math.NaN()
		case 4:
			in.X = make(chan int)
		}
	}
	if d.raw && d.oneIn(6) {
		// A constant map whose key the program chose: long keys are
		// longer than YAML's implicit keys.
		in.X = map[string]any{strings.Repeat(d.str([]string{"k", "key "}), 1+5*d.intn(256)): g.strRef()}
	}
	if d.oneIn(8) {
		in.Meta = map[string]int{"$sluice": 0}
	}
}

func (g *fzGraph) cond(depth int) pipeline.Cond {
	d := g.d
	sub := func() pipeline.Cond {
		if depth >= 2 {
			return pipeline.Cond{}
		}
		return g.cond(depth + 1)
	}
	switch d.intn(9) {
	case 0:
		return pipeline.Gt(pipeline.Field[float64](g.out(), d.str(fzFields)), 0.5)
	case 1:
		return pipeline.IsTrue(pipeline.Field[bool](g.out(), d.str(fzFields)))
	case 2:
		return pipeline.Eq(g.intRef(), 1)
	case 3:
		return pipeline.Le(g.floatRef(), 0.1)
	case 4:
		return pipeline.And(sub(), sub())
	case 5:
		return pipeline.Or(sub(), sub())
	case 6:
		return pipeline.Not(sub())
	case 7:
		return pipeline.Ge(g.floatRef(), math.NaN())
	}
	return pipeline.Ne(g.strRef(), d.str([]string{"x"}))
}

var fzTypes = []pipeline.ErrorType{pipeline.ErrorTypeRequired, pipeline.ErrorTypeInvalid, pipeline.ErrorTypeDuplicate, pipeline.ErrorTypeNotSupported,
	pipeline.ErrorTypeNotFound, pipeline.ErrorTypeForbidden, pipeline.ErrorTypeTooLong, pipeline.ErrorTypeTooMany}

// fzCheck builds the pipeline data describes and checks the validator's
// promises on it.
func fzCheck(t *testing.T, data []byte) {
	p, overrides := fzBuild(data)
	verr := p.ValidateParams(overrides)
	plan, perr := p.Plan(overrides)
	if (verr == nil) != (perr == nil) {
		t.Fatalf("ValidateParams: %v\nbut Plan: %v", verr, perr)
	}
	if (p.Validate() == nil) != (fzPlanErr(p) == nil) {
		t.Fatalf("Validate and Plan(nil) disagree")
	}

	if verr != nil {
		fes := pipeline.FieldErrors(verr)
		if len(fes) == 0 {
			t.Fatalf("an error without field errors: %v", verr)
		}
		for _, fe := range fes {
			if !strings.HasPrefix(fe.Field, "pipeline.") {
				t.Errorf("field %q does not start with pipeline.", fe.Field)
			}
			if !slices.Contains(fzTypes, fe.Type) {
				t.Errorf("%s: unknown type %q", fe.Field, fe.Type)
			}
			if fe.Detail == "" {
				t.Errorf("%s: no detail", fe)
			}
		}
		if got := pipeline.FieldErrors(perr); len(got) != len(fes) {
			t.Errorf("Plan reports %d problems, ValidateParams %d", len(got), len(fes))
		}
		// Deterministic: the same pipeline again, and the same bytes again.
		if again := p.ValidateParams(overrides); again == nil || again.Error() != verr.Error() {
			t.Fatalf("second validation differs:\n%v\nthen:\n%v", verr, again)
		}
		p2, o2 := fzBuild(data)
		if again := p2.ValidateParams(o2); again == nil || again.Error() != verr.Error() {
			t.Fatalf("a rebuilt pipeline validates differently:\n%v\nthen:\n%v", verr, again)
		}
		return
	}
	fzCheckPlan(t, plan)
}

func fzPlanErr(p *pipeline.Pipeline) error {
	_, err := p.Plan(nil)
	return err
}

// fzCheckPlan checks the guarantees written on backends.Plan.
func fzCheckPlan(t *testing.T, plan *backends.Plan) {
	t.Helper()
	if msgs := validation.IsDNS1123Label(plan.Name); len(msgs) > 0 {
		t.Errorf("plan name %q: %v", plan.Name, msgs)
	}
	pos := map[string]int{}
	all := slices.Clone(plan.Steps)
	if plan.Exit != nil {
		all = append(all, *plan.Exit)
	}
	for i, s := range all {
		exit := i == len(plan.Steps)
		if msgs := validation.IsDNS1123Label(s.Name); len(msgs) > 0 {
			t.Errorf("step name %q: %v", s.Name, msgs)
		}
		if _, dup := pos[s.Name]; dup {
			t.Errorf("duplicate step name %q", s.Name)
		}
		if !slices.IsSorted(s.DependsOn) {
			t.Errorf("%s: DependsOn not sorted: %v", s.Name, s.DependsOn)
		}
		for _, dep := range s.DependsOn {
			if j, ok := pos[dep]; !ok || j >= i || exit {
				t.Errorf("%s depends on %q, which is not an earlier step", s.Name, dep)
			}
		}
		refs := slices.Clone(s.Input.Refs)
		if s.When != nil {
			refs = append(refs, s.When.Refs()...)
		}
		if s.ForEach != nil {
			if s.ForEach.Items.Kind == backends.RefItem || s.ForEach.Items.Kind == backends.RefRun {
				t.Errorf("%s iterates over %s", s.Name, s.ForEach.Items)
			}
			refs = append(refs, s.ForEach.Items)
		}
		for len(refs) > 0 {
			r := refs[0]
			refs = append(refs[1:], r.Elems...)
			switch r.Kind {
			case backends.RefStep:
				if j, ok := pos[r.Step]; !ok || j >= i || !slices.Contains(s.DependsOn, r.Step) {
					t.Errorf("%s reads %q, which is not an earlier step it depends on", s.Name, r.Step)
				}
			case backends.RefItem:
				if s.ForEach == nil {
					t.Errorf("%s reads a fan-out item but is no fan-out", s.Name)
				}
			case backends.RefRun:
				if !exit {
					t.Errorf("%s reads the run status but is not the exit handler", s.Name)
				}
			}
		}
		if s.Task.Retry == nil {
			t.Errorf("%s: nil Retry", s.Name)
		}
		out, err := s.Input.Render(func(int) (string, error) { return "null", nil })
		if err != nil {
			t.Errorf("%s: Render: %v", s.Name, err)
		} else if !json.Valid([]byte(out)) {
			t.Errorf("%s: rendered input is not JSON: %s", s.Name, out)
		} else if strings.Contains(out, `"Meta":{"$sluice"`) != strings.Contains(string(s.Input.Template), `"Meta":{"$sluice"`) {
			t.Errorf("%s: constant data was taken for a placeholder: %s", s.Name, s.Input.Template)
		}
		pos[s.Name] = i
	}
	for _, pm := range plan.Params {
		if !json.Valid(pm.Default) || !json.Valid(pm.Value) {
			t.Errorf("param %s: default %s, value %s", pm.Name, pm.Default, pm.Value)
		}
	}
}

// fzSeeds are inputs worth keeping in every run: an empty graph, a chain,
// a diamond with a fan-out, a graph with a cycle, and random ones.
func fzSeeds() [][]byte {
	seeds := [][]byte{
		nil,
		{0, 0, 0, 0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0},
		{0, 0, 0, 0, 1, 0, 0, 3, 0, 0, 0, 0, 2, 0, 0, 5, 1, 7, 0, 0, 0, 0, 0, 7, 2, 4},
		{2, 1, 0, 2, 0, 0, 0, 2, 1, 0, 4, 0, 0, 0, 0, 0, 0, 3, 1, 0, 2, 3, 3, 3, 0, 0, 5, 0, 1, 0},
		[]byte("the quick brown fox jumps over the lazy dog, twice: the quick brown fox"),
		[]byte(strings.Repeat("\x07\x03\x01", 40)),
	}
	r := rand.New(rand.NewPCG(7, 11))
	for range 10 {
		b := make([]byte, 40+r.IntN(200))
		for i := range b {
			b[i] = byte(r.UintN(256))
		}
		seeds = append(seeds, b)
	}
	return seeds
}

func FuzzValidate(f *testing.F) {
	for _, s := range fzSeeds() {
		f.Add(s)
	}
	f.Fuzz(fzCheck)
}

// TestFuzzGeneratorReachesValidAndInvalid keeps the generator honest: over
// many random inputs it must produce both valid pipelines (so the Plan
// checks run) and invalid ones.
func TestFuzzGeneratorReachesValidAndInvalid(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	valid, invalid, steps := 0, 0, 0
	for range 2000 {
		b := make([]byte, r.IntN(120))
		for i := range b {
			b[i] = byte(r.UintN(256))
		}
		// Bias towards benign choices, as the fuzzer's minimizer does.
		for i := range b {
			if r.IntN(2) == 0 {
				b[i] = 0
			}
		}
		p, o := fzBuild(b)
		plan, err := p.Plan(o)
		if err != nil {
			invalid++
			continue
		}
		valid++
		steps += len(plan.Steps)
		fzCheckPlan(t, plan)
	}
	t.Logf("valid %d (%d steps), invalid %d", valid, steps, invalid)
	if valid < 100 || invalid < 100 || steps < 200 {
		t.Errorf("generator is lopsided: %d valid pipelines with %d steps, %d invalid", valid, steps, invalid)
	}
}

package backendtest

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluice-ml/sluice/backends"
	"github.com/sluice-ml/sluice/hpo"
	"github.com/sluice-ml/sluice/pipeline"
	"github.com/sluice-ml/sluice/resources"
	"github.com/sluice-ml/sluice/task"
)

// Case is a canonical pipeline of the suite, for golden tests of a
// backend's compiled output.
type Case struct {
	// Name is a TitleCase phrase, usable as a subtest and file name.
	Name string
	// Build returns a fresh copy of the pipeline.
	Build func() *pipeline.Pipeline
}

// Cases returns the suite's canonical pipelines, in a stable order.
func Cases() []Case {
	return []Case{
		{"Diamond", func() *pipeline.Pipeline { return diamond(newRecorder()) }},
		{"ParamsAndFields", func() *pipeline.Pipeline { return paramsAndFields(newRecorder()) }},
		{"WideFanOutWithParallelismCap", func() *pipeline.Pipeline { return wideFanOut(newRecorder(), 20, 3) }},
		{"DynamicFanOutFanIn", func() *pipeline.Pipeline { return dynamicFanOut(newRecorder()) }},
		{"StaticFanOutFanIn", func() *pipeline.Pipeline { return staticFanOut(newRecorder()) }},
		{"ConditionSkipAndPropagation", func() *pipeline.Pipeline { return conditions(newRecorder()) }},
		{"Retries", func() *pipeline.Pipeline { return retries(newRecorder()) }},
		{"Timeout", func() *pipeline.Pipeline { return timeouts(newRecorder()) }},
		{"ExitHandler", func() *pipeline.Pipeline { return exitHandler(newRecorder(), true) }},
		{"Cache", func() *pipeline.Pipeline { return cached(newRecorder()) }},
		{"WeirdNames", func() *pipeline.Pipeline { return weirdNames(newRecorder()) }},
		{"HyperparameterSearch", func() *pipeline.Pipeline { return search(newRecorder()) }},
	}
}

// recorder is what the suite's tasks report to. It is safe for concurrent
// use.
type recorder struct {
	mu      sync.Mutex
	calls   map[string]int
	events  []string
	runInfo *pipeline.RunInfo

	running, maxRunning atomic.Int64
}

func newRecorder() *recorder { return &recorder{calls: map[string]int{}} }

// StateEnv names an environment variable holding a directory. When it is
// set, the suite's tasks count their calls there as well as in memory, and
// number them by that count: so a scripted failure ("fail the first
// attempt") means the same when each attempt runs in a process of its own,
// as in the pods of a cluster backend. Use a new directory per run.
const StateEnv = "SLUICE_BACKENDTEST_STATE"

// call counts an invocation of key and returns its number, from 1.
func (r *recorder) call(key string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls[key]++
	r.events = append(r.events, "start:"+key)
	if dir := os.Getenv(StateEnv); dir != "" {
		return sharedCall(dir, key)
	}
	return r.calls[key]
}

// CallNumber counts a call of key and returns its number, from 1: across
// processes when StateEnv is set (as the suite's own tasks do), else in
// this process. Tasks of other test pipelines use it to script what their
// n-th attempt does.
func CallNumber(key string) int {
	if dir := os.Getenv(StateEnv); dir != "" {
		return sharedCall(dir, key)
	}
	return global.call(key)
}

var global = newRecorder()

// sharedCall numbers a call of key across processes: the n-th call is the
// one that creates the file "<key>.<n>" in dir (O_EXCL makes that atomic).
func sharedCall(dir, key string) int {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		panic(fmt.Sprintf("backendtest: %s: %v", StateEnv, err))
	}
	for n := 1; ; n++ {
		f, err := os.OpenFile(filepath.Join(dir, fmt.Sprintf("%x.%d", key, n)), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
		if err == nil {
			f.Close()
			return n
		}
		if !errors.Is(err, fs.ErrExist) {
			panic(fmt.Sprintf("backendtest: %s: %v", StateEnv, err))
		}
	}
}

func (r *recorder) end(key string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, "end:"+key)
}

func (r *recorder) count(key string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.calls[key]
}

func (r *recorder) index(event string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Index(r.events, event)
}

// enter and leave track how many tasks run at once.
func (r *recorder) enter() {
	n := r.running.Add(1)
	for {
		m := r.maxRunning.Load()
		if n <= m || r.maxRunning.CompareAndSwap(m, n) {
			return
		}
	}
}

func (r *recorder) leave() { r.running.Add(-1) }

// num is the value most of the suite's tasks pass around.
type num struct{ V int }

// one is an input with one upstream number.
type one struct{ X pipeline.Ref[num] }

// two is an input with two upstream numbers.
type two struct{ A, B pipeline.Ref[num] }

// many is an input with a list of upstream numbers.
type many struct{ Xs pipeline.Ref[[]num] }

// none is an empty input.
type none struct{}

func constant(r *recorder, name string, v int) task.Task[none, num] {
	return task.New(name, func(ctx context.Context, _ none) (num, error) {
		r.call(name)
		defer r.end(name)
		return num{v}, nil
	})
}

func apply(r *recorder, name string, f func(int) int) task.Task[one, num] {
	return task.New(name, func(ctx context.Context, in one) (num, error) {
		r.call(name)
		defer r.end(name)
		return num{f(in.X.Get().V)}, nil
	})
}

func sum(r *recorder, name string) task.Task[many, num] {
	return task.New(name, func(ctx context.Context, in many) (num, error) {
		r.call(name)
		defer r.end(name)
		s := 0
		for _, x := range in.Xs.Get() {
			s += x.V
		}
		return num{s}, nil
	})
}

// diamond: source → (left, right) → join; join = (1+10) + (1*3) = 14.
func diamond(r *recorder) *pipeline.Pipeline {
	p := pipeline.New("diamond", nil)
	src := pipeline.Add(p, constant(r, "source", 1), none{})
	left := pipeline.Add(p, apply(r, "left", func(v int) int { return v + 10 }), one{X: src.Output()})
	right := pipeline.Add(p, apply(r, "right", func(v int) int { return v * 3 }), one{X: src.Output()})
	pipeline.Add(p, task.New("join", func(ctx context.Context, in two) (num, error) {
		r.call("join")
		defer r.end("join")
		return num{in.A.Get().V + in.B.Get().V}, nil
	}), two{A: left.Output(), B: right.Output()})
	return p
}

// stats is a struct-valued output read field by field.
type stats struct {
	Count int     `json:"count"`
	Mean  float64 `json:"mean"`
}

// scaleIn reads one field of stats and a parameter.
type scaleIn struct {
	Count pipeline.Ref[int]
	Scale pipeline.Ref[int]
	Label pipeline.Ref[string]
}

// paramsAndFields: stats → scale(Count × param scale), with a string
// parameter passed through.
func paramsAndFields(r *recorder) *pipeline.Pipeline {
	p := pipeline.New("params-and-fields", nil)
	scale := pipeline.NewParam(p, "scale", 2)
	label := pipeline.NewParam(p, "label", "base")
	stats := pipeline.Add(p, task.New("stats", func(ctx context.Context, _ none) (stats, error) {
		r.call("stats")
		return stats{Count: 7, Mean: 0.5}, nil
	}), none{})
	pipeline.Add(p, task.New("scale", func(ctx context.Context, in scaleIn) (string, error) {
		r.call("scale")
		return fmt.Sprintf("%s:%d", in.Label.Get(), in.Count.Get()*in.Scale.Get()), nil
	}), scaleIn{Count: pipeline.Field[int](stats.Output(), "Count"), Scale: scale.Ref(), Label: label.Ref()})
	return p
}

// wideFanOut: a list of n numbers, squared at most limit at a time, summed.
func wideFanOut(r *recorder, n, limit int) *pipeline.Pipeline {
	p := pipeline.New("wide-fan-out", nil)
	list := pipeline.Add(p, task.New("list", func(ctx context.Context, _ none) ([]int, error) {
		out := make([]int, n)
		for i := range out {
			out[i] = i
		}
		return out, nil
	}), none{})
	squares := pipeline.ForEach(p, task.New("square", func(ctx context.Context, in pipeline.Ref[int]) (num, error) {
		r.enter()
		defer r.leave()
		r.call("square")
		time.Sleep(5 * time.Millisecond)
		return num{in.Get() * in.Get()}, nil
	}), list.Output(), func(item pipeline.Ref[int]) pipeline.Ref[int] { return item }).Limit(limit)
	pipeline.Add(p, sum(r, "total"), many{Xs: squares.Collect()})
	return p
}

// point is an element of a dynamic fan-out.
type point struct {
	Index int
	Label string
}

// grid is an output holding the list to fan out over.
type grid struct{ Points []point }

// labelIn is the input of one instance of the dynamic fan-out.
type labelIn struct {
	P      pipeline.Ref[point]
	Suffix string
}

// joinIn gathers the instances' outputs.
type joinIn struct{ Labels pipeline.Ref[[]string] }

// dynamicFanOut: a grid of 6 points (a field of the grid step's output),
// one instance per point finishing in reverse order, gathered in element
// order.
func dynamicFanOut(r *recorder) *pipeline.Pipeline {
	p := pipeline.New("dynamic-fan-out", nil)
	grid := pipeline.Add(p, task.New("grid", func(ctx context.Context, _ none) (grid, error) {
		var g grid
		for i := range 6 {
			g.Points = append(g.Points, point{Index: i, Label: string(rune('a' + i))})
		}
		return g, nil
	}), none{})
	labels := pipeline.ForEach(p, task.New("label", func(ctx context.Context, in labelIn) (string, error) {
		pt := in.P.Get()
		r.call(fmt.Sprintf("label-%d", pt.Index))
		time.Sleep(time.Duration(6-pt.Index) * 2 * time.Millisecond)
		return strings.ToUpper(pt.Label) + in.Suffix, nil
	}), pipeline.Field[[]point](grid.Output(), "Points"), func(pt pipeline.Ref[point]) labelIn {
		return labelIn{P: pt, Suffix: "!"}
	})
	pipeline.Add(p, task.New("join", func(ctx context.Context, in joinIn) (string, error) {
		r.call("join")
		return strings.Join(in.Labels.Get(), ","), nil
	}), joinIn{Labels: labels.Collect()})
	return p
}

// staticFanOut: three doubles added by FanOut, gathered by Collect.
func staticFanOut(r *recorder) *pipeline.Pipeline {
	p := pipeline.New("static-fan-out", nil)
	var ins []one
	for i := 1; i <= 3; i++ {
		ins = append(ins, one{X: pipeline.Const(num{i})})
	}
	doubles := pipeline.FanOut(p, apply(r, "double", func(v int) int { return 2 * v }), ins)
	pipeline.Add(p, sum(r, "total"), many{Xs: pipeline.Collect(doubles...)})
	return p
}

// score is the output conditions read.
type score struct {
	Value float64
	Ready bool
}

// conditions: score 0.4; "promote" needs ≥ the parameter min_score 0.5
// (skipped), "announce" depends on it (skipped by propagation), "retrain"
// needs < 0.5 (runs), "check" needs Ready (runs), "hold" needs the
// parameter deploy (false) or a score of at least 0.5 (skipped: both
// operands of its "or" decide); the exit handler "report" runs only
// when the run failed (skipped). The skip messages give the values that
// decided them, in the same words on every backend.
func conditions(r *recorder) *pipeline.Pipeline {
	p := pipeline.New("conditions", nil)
	minScore := pipeline.NewParam(p, "min_score", 0.5)
	deploy := pipeline.NewParam(p, "deploy", false)
	score := pipeline.Add(p, task.New("score", func(ctx context.Context, _ none) (score, error) {
		return score{Value: 0.4, Ready: true}, nil
	}), none{})
	value := pipeline.Field[float64](score.Output(), "Value")
	ready := pipeline.IsTrue(pipeline.Field[bool](score.Output(), "Ready"))
	promote := pipeline.Add(p, constant(r, "promote", 1), none{}).When(pipeline.Compare(value, ">=", minScore.Ref()))
	pipeline.Add(p, apply(r, "announce", func(v int) int { return v }), one{X: promote.Output()})
	pipeline.Add(p, constant(r, "retrain", 2), none{}).When(pipeline.Lt(value, 0.5))
	pipeline.Add(p, constant(r, "check", 3), none{}).
		When(pipeline.And(ready, pipeline.Not(pipeline.Eq(value, 1.0))))
	pipeline.Add(p, constant(r, "hold", 4), none{}).
		When(pipeline.Or(pipeline.IsTrue(deploy.Ref()), pipeline.And(ready, pipeline.Not(pipeline.Lt(value, 0.5)))))
	pipeline.OnExit(p, reporter(r), reportIn{Run: p.Status()}).
		When(pipeline.Eq(pipeline.Field[backends.Phase](p.Status(), "Phase"), backends.PhaseFailed))
	return p
}

// Skip messages of the conditions pipeline, with the values that decided
// them.
const (
	msgPromoteSkipped = "condition score.Value >= params.min_score is false: score.Value = 0.4 < params.min_score = 0.5"
	msgHoldSkipped    = "condition (params.deploy or (score.Ready and not score.Value < 0.5)) is false: params.deploy = false; score.Value = 0.4 < 0.5"
	msgReportSkipped  = `condition run.phase == "Failed" is false: run.phase = "Succeeded" != "Failed"`
)

var errScripted = errors.New("scripted failure")

// flaky fails its first len(script) calls as the script says ("app" or
// "infra"), then succeeds with 1.
func flaky(r *recorder, name string, script ...string) task.Task[none, num] {
	return task.New(name, func(ctx context.Context, _ none) (num, error) {
		n := r.call(name)
		if n <= len(script) {
			if script[n-1] == "infra" {
				return num{}, fmt.Errorf("%s: node preempted: %w", name, task.ErrInfrastructure)
			}
			return num{}, fmt.Errorf("%s attempt %d: %w", name, n, errScripted)
		}
		return num{1}, nil
	})
}

// spotPool is a GKE pool with spot capacity, for the fall-back test.
var spotPool = resources.NodePool{
	Name:     "spot",
	Provider: resources.ProviderGKE,
	Labels:   map[string]string{"cloud.google.com/gke-nodepool": "spot"},
	Spot:     true,
}

var quick = task.Backoff{Initial: time.Millisecond, Factor: 2, Max: 10 * time.Millisecond}

// retries: one step per retry behaviour; see the retry tests.
func retries(r *recorder) *pipeline.Pipeline {
	p := pipeline.New("retries", &pipeline.Options{NodePools: []resources.NodePool{spotPool}})
	pipeline.Add(p, flaky(r, "app-twice", "app", "app").WithRetry(task.Retry{App: 2, Backoff: quick}), none{})
	pipeline.Add(p, flaky(r, "preempted", "infra").WithRetry(task.Retry{Infra: 2, Backoff: quick}), none{})
	pipeline.Add(p, flaky(r, "mixed", "infra", "app", "infra").WithRetry(task.Retry{App: 1, Infra: 2, Backoff: quick, OnDemandFallback: true}).
		WithResources(resources.Profile{NodePool: spotPool.Name, Preemptible: true}), none{})
	return p
}

// timeouts: "hang" never returns before its 150ms timeout; "slow-once"
// hangs on its first attempt only.
func timeouts(r *recorder) *pipeline.Pipeline {
	p := pipeline.New("timeouts", nil)
	hang := func(name string, times int) task.Task[none, num] {
		return task.New(name, func(ctx context.Context, _ none) (num, error) {
			if r.call(name) <= times {
				<-ctx.Done()
				return num{}, ctx.Err()
			}
			return num{1}, nil
		})
	}
	pipeline.Add(p, hang("hang", 100).WithTimeout(150*time.Millisecond), none{})
	pipeline.Add(p, hang("slow-once", 1).WithTimeout(150*time.Millisecond).WithRetry(task.Retry{App: 1}), none{})
	return p
}

// reportIn is the exit handler's input.
type reportIn struct {
	Run pipeline.Ref[pipeline.RunInfo]
}

// exitHandler: "ok" succeeds, "bad" fails when fail is set, "after-bad"
// depends on it; the exit handler records what it saw.
func exitHandler(r *recorder, fail bool) *pipeline.Pipeline {
	p := pipeline.New("exit-handler", nil)
	pipeline.Add(p, constant(r, "ok", 1), none{})
	var bad task.Task[none, num]
	if fail {
		bad = flaky(r, "bad", "app")
	} else {
		bad = constant(r, "bad", 2)
	}
	b := pipeline.Add(p, bad, none{})
	pipeline.Add(p, apply(r, "after-bad", func(v int) int { return v }), one{X: b.Output()})
	pipeline.OnExit(p, reporter(r), reportIn{Run: p.Status()})
	return p
}

// reporter is an exit handler that records the RunInfo it gets.
func reporter(r *recorder) task.Task[reportIn, none] {
	return task.New("report", func(ctx context.Context, in reportIn) (none, error) {
		info := in.Run.Get()
		r.mu.Lock()
		r.runInfo = &info
		r.mu.Unlock()
		r.call("report")
		return none{}, nil
	})
}

// trainIn is the cached task's input; Verbose is excluded from the key.
type trainIn struct {
	LR      pipeline.Ref[float64]
	Verbose pipeline.Ref[bool]
}

// cached: one cached step whose key depends on lr and not on verbose.
func cached(r *recorder) *pipeline.Pipeline {
	p := pipeline.New("cache", nil)
	lr := pipeline.NewParam(p, "lr", 0.1)
	verbose := pipeline.NewParam(p, "verbose", false)
	pipeline.Add(p, task.New("train", func(ctx context.Context, in trainIn) (float64, error) {
		r.call("train")
		return in.LR.Get() * 2, nil
	}).WithCache(task.Cache{Enabled: true, Version: "v1", ExcludeInputs: []string{"Verbose"}}),
		trainIn{LR: lr.Ref(), Verbose: verbose.Ref()})
	return p
}

// weirdNames: names with spaces, capitals, leading digits, punctuation and
// non-ASCII letters, each mapped to a DNS-1123 name.
func weirdNames(r *recorder) *pipeline.Pipeline {
	p := pipeline.New("Weird Names ✓", nil)
	a := pipeline.Add(p, constant(r, "Train Model", 1), none{})
	b := pipeline.Add(p, apply(r, "2024 eval", func(v int) int { return v + 1 }), one{X: a.Output()})
	c := pipeline.Add(p, apply(r, "ünï cödé", func(v int) int { return v + 1 }), one{X: b.Output()})
	pipeline.Add(p, apply(r, "a.b/c_d", func(v int) int { return v + 1 }), one{X: c.Output()})
	return p
}

var (
	retryApp1   = task.Retry{App: 1, Backoff: quick}
	retryInfra1 = task.Retry{Infra: 1, Backoff: quick}
)

// searchHP are the hyperparameters of the suite's search.
type searchHP struct {
	Width int     `json:"width"`
	Rate  float64 `json:"rate"`
}

// searchIn is the input of one trial of the suite's search.
type searchIn struct {
	HP pipeline.Ref[searchHP] `json:"hp"`
}

// searchFailWidth is the width whose trial fails in the suite's search.
const searchFailWidth = 3

// search: an HPO round as graph structure (package hpo): a grid of six
// points in two rounds of three (suggest → fan-out of trials → collect),
// whose trial at width searchFailWidth fails — within the search's
// failure budget of one — and a step that reads the best trial's
// hyperparameters from the Result.
func search(r *recorder) *pipeline.Pipeline {
	p := pipeline.New("search", nil)
	trial := task.New("trial", func(ctx context.Context, in searchIn) (float64, error) {
		hp := in.HP.Get()
		r.call(fmt.Sprintf("trial-%d", hp.Width))
		if hp.Width == searchFailWidth {
			return 0, fmt.Errorf("width %d does not fit", hp.Width)
		}
		return float64((hp.Width-4)*(hp.Width-4)) + hp.Rate, nil
	})
	res := hpo.Search(p, hpo.Space[searchHP]{"Width": hpo.IntStep(1, 6, 1), "Rate": hpo.Fixed(0.5)}, trial,
		func(hp pipeline.Ref[searchHP]) searchIn { return searchIn{HP: hp} },
		func(loss float64) float64 { return loss },
		&hpo.Options{Name: "tune", Sampler: hpo.Grid, MaxTrials: 6, ParallelTrials: 3, MaxFailedTrials: 1})
	pipeline.Add(p, task.New("use", func(ctx context.Context, in searchIn) (int, error) {
		r.call("use")
		return in.HP.Get().Width, nil
	}), searchIn{HP: pipeline.Field[searchHP](res.Output(), "BestParams")})
	return p
}

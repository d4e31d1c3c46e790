package argo_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	"github.com/argoproj/argo-workflows/v3/pkg/client/clientset/versioned/fake"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"

	"github.com/sluice-ml/sluice/backends"
	"github.com/sluice-ml/sluice/backends/argo"
	"github.com/sluice-ml/sluice/internal/argosim"
	"github.com/sluice-ml/sluice/pipeline"
	"github.com/sluice-ml/sluice/task"
)

type sqIn struct {
	X   pipeline.Ref[int]
	Tag string `json:"tag"`
}

type sqOut struct {
	Y    int
	Note string
}

type fetchIn struct {
	URL     string
	Verbose bool
}

// square is a container task: "square --x=N --tag=T" writes N*N and a
// note to its output files.
var square = task.Container[sqIn, sqOut]("square", "registry.example/square:1").
	WithCommand("/usr/bin/square").WithArgs("--x={{.X}}", "--tag={{.Tag}}").WithEnv("TAG", "{{.Tag}}")

// containerPipeline fans the container task square out over a list made
// by a Go task, sums the outputs in a Go task, and runs a cached
// container task.
func containerPipeline(cacheSquares bool) *pipeline.Pipeline {
	p := pipeline.New("ctr", nil)
	list := pipeline.Add(p, task.New("list", func(context.Context, struct{}) ([]int, error) { return []int{2, 3, 5}, nil }), struct{}{})
	sq := square
	if cacheSquares {
		sq = sq.WithCache(task.Cache{Enabled: true, Version: "v1"})
	}
	fan := pipeline.ForEach(p, sq, list.Output(), func(it pipeline.Ref[int]) sqIn { return sqIn{X: it, Tag: "a \"b\"\n{{c}}"} }).Limit(2)
	pipeline.Add(p, task.New("sum", func(_ context.Context, in struct{ Ys pipeline.Ref[[]sqOut] }) (string, error) {
		var parts []string
		total := 0
		for _, o := range in.Ys.Get() {
			total += o.Y
			parts = append(parts, o.Note)
		}
		return fmt.Sprintf("%d %q", total, parts), nil
	}), struct{ Ys pipeline.Ref[[]sqOut] }{Ys: fan.Collect()})
	fetch := task.Container[fetchIn, struct{ Rows int }]("fetch", "registry.example/fetch:1").
		WithCommand("/usr/bin/fetch").WithArgs("{{.URL}}").WithCache(task.Cache{Enabled: true, Version: "v2", ExcludeInputs: []string{"Verbose"}})
	pipeline.Add(p, fetch, fetchIn{URL: "s3://bucket/data", Verbose: true})
	return p
}

// runContainer plays the two container images.
func runContainer(calls *sync.Map) argosim.ContainerFunc {
	return func(_ context.Context, c *corev1.Container) (map[string]string, error) {
		n, _ := calls.LoadOrStore(c.Image, new(atomic.Int32))
		n.(*atomic.Int32).Add(1)
		switch c.Image {
		case "registry.example/square:1":
			x, err := strconv.Atoi(strings.TrimPrefix(c.Args[0], "--x="))
			if err != nil {
				return nil, err
			}
			tag := strings.TrimPrefix(c.Args[1], "--tag=")
			if env := c.Env[0]; env.Name != "TAG" || env.Value != tag {
				return nil, fmt.Errorf("env %v, want TAG=%q", env, tag)
			}
			return map[string]string{
				task.OutputDir + "/Y":    strconv.Itoa(x * x),
				task.OutputDir + "/Note": fmt.Sprintf("%d:%s\n", x, tag),
			}, nil
		case "registry.example/fetch:1":
			if c.Args[0] != "s3://bucket/data" {
				return nil, fmt.Errorf("args %q", c.Args)
			}
			return map[string]string{task.OutputDir + "/Rows": "42"}, nil
		}
		return nil, fmt.Errorf("unknown image %s", c.Image)
	}
}

// A container task can be fanned out (withParam over items holding the
// placeholder texts) and cached (memoize with the key the local backend
// computes), and its outputs come back typed.
func TestContainerFanOutAndCache(t *testing.T) {
	for _, cached := range []bool{false, true} {
		t.Run(fmt.Sprintf("CachedSquares=%v", cached), func(t *testing.T) {
			art, err := pipeline.Compile(t.Context(), containerPipeline(cached), argo.New(nil, testOptions()), nil)
			require.NoError(t, err)
			checkDocument(t, art.Documents()[0])

			cs := fake.NewSimpleClientset()
			nameOnCreate(cs)
			var calls sync.Map
			s := newSim(cs, &argosim.Options{Containers: runContainer(&calls)})
			t.Cleanup(s.Close)
			b := &simBackend{Backend: argo.New(cs, testOptions()), sim: s}

			st, err := pipeline.Run(t.Context(), containerPipeline(cached), b, nil)
			require.NoError(t, err, "%+v", st)
			sq := st.Step("square")
			require.NotNil(t, sq)
			assert.JSONEq(t, `[{"Y":4,"Note":"2:a \"b\"\n{{c}}"},{"Y":9,"Note":"3:a \"b\"\n{{c}}"},{"Y":25,"Note":"5:a \"b\"\n{{c}}"}]`, string(sq.Output),
				"outputs in element order; a string output is its file without the trailing line break")
			require.Len(t, sq.Instances, 3)
			assert.Equal(t, "square[1]", sq.Instances[1].Name)
			assert.JSONEq(t, `{"Y":9,"Note":"3:a \"b\"\n{{c}}"}`, string(sq.Instances[1].Output))
			var sum string
			require.NoError(t, json.Unmarshal(st.Step("sum").Output, &sum))
			assert.Equal(t, `38 ["2:a \"b\"\n{{c}}" "3:a \"b\"\n{{c}}" "5:a \"b\"\n{{c}}"]`, sum)

			fetch := st.Step("fetch")
			require.NotNil(t, fetch)
			assert.Equal(t, backends.PhaseSucceeded, fetch.Phase)
			assert.JSONEq(t, `{"Rows":42}`, string(fetch.Output))
			plan, err := containerPipeline(cached).Plan(nil)
			require.NoError(t, err)
			parts, err := backends.NewCacheKeyParts(plan.Step("fetch"), json.RawMessage(`{"URL":"s3://bucket/data","Verbose":true}`))
			require.NoError(t, err)
			assert.Equal(t, parts.Key(), fetch.CacheKey, "the local backend's key for the same input")

			// A second run hits the cache: the cached containers do not run.
			st, err = pipeline.Run(t.Context(), containerPipeline(cached), b, nil)
			require.NoError(t, err)
			assert.Equal(t, backends.PhaseCached, st.Step("fetch").Phase)
			assert.JSONEq(t, `{"Rows":42}`, string(st.Step("fetch").Output))
			n, _ := calls.Load("registry.example/fetch:1")
			assert.Equal(t, int32(1), n.(*atomic.Int32).Load())
			n, _ = calls.Load("registry.example/square:1")
			want := int32(6)
			if cached {
				want = 3
				for _, inst := range st.Step("square").Instances {
					assert.Equal(t, backends.PhaseCached, inst.Phase, inst.Name)
				}
			}
			assert.Equal(t, want, n.(*atomic.Int32).Load(), "square runs")
		})
	}
}

// The compiled fan-out passes each instance only its placeholder texts.
func TestContainerFanOutTemplates(t *testing.T) {
	wf := compileWF(t, containerPipeline(false), testOptions())
	var each *wfv1.Template
	for i := range wf.Spec.Templates {
		if wf.Spec.Templates[i].Name == "each-square" {
			each = &wf.Spec.Templates[i]
		}
	}
	require.NotNil(t, each)
	var names []string
	for _, p := range each.DAG.Tasks[0].Arguments.Parameters {
		names = append(names, p.Name)
	}
	assert.Equal(t, []string{"in-X", "in-tag"}, names)
	assert.Equal(t, int64(2), *each.Parallelism)
}

// A string output whose file holds JSON ("42") is still text: for the
// steps downstream and in the status Watch reports.
func TestContainerTextOutputThatLooksLikeJSON(t *testing.T) {
	type out struct {
		Note string
		N    int
	}
	p := pipeline.New("text", nil)
	ctr := pipeline.Add(p, task.Container[struct{}, out]("ctr", "registry.example/ctr:1").WithCommand("/ctr"), struct{}{})
	pipeline.Add(p, task.New("use", func(_ context.Context, in struct{ C pipeline.Ref[out] }) (string, error) {
		return fmt.Sprintf("%q %d", in.C.Get().Note, in.C.Get().N), nil
	}), struct{ C pipeline.Ref[out] }{C: ctr.Output()})

	cs := fake.NewSimpleClientset()
	nameOnCreate(cs)
	s := newSim(cs, &argosim.Options{Containers: func(context.Context, *corev1.Container) (map[string]string, error) {
		return map[string]string{task.OutputDir + "/Note": "42\n", task.OutputDir + "/N": "7"}, nil
	}})
	t.Cleanup(s.Close)
	st, err := pipeline.Run(t.Context(), p, &simBackend{Backend: argo.New(cs, testOptions()), sim: s}, nil)
	require.NoError(t, err)
	assert.JSONEq(t, `{"Note":"42","N":7}`, string(st.Step("ctr").Output))
	assert.JSONEq(t, `"\"42\" 7"`, string(st.Step("use").Output))
}

package argo_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/argoproj/argo-workflows/v3/pkg/client/clientset/versioned/fake"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"

	"github.com/sluice-ml/sluice/backends/argo"
	"github.com/sluice-ml/sluice/backends/kubepod"
	"github.com/sluice-ml/sluice/backends/local"
	"github.com/sluice-ml/sluice/internal/argosim"
	"github.com/sluice-ml/sluice/internal/benchdag"
	"github.com/sluice-ml/sluice/pipeline"
	"github.com/sluice-ml/sluice/task"
)

// Bytes per container task on the random DAG of package benchdag.
func TestBytesPerContainerTask(t *testing.T) {
	size := func(n int) int {
		art, err := pipeline.Compile(t.Context(), benchdag.Pipeline(n, benchdag.Container, 7), argo.New(nil, &argo.Options{Pod: kubepod.Options{Image: testImage, Command: testCommand}, MaxSize: 64 << 20}), nil)
		require.NoError(t, err)
		return len(art.Documents()[0])
	}
	per := float64(size(1003)-size(3)) / 1000
	t.Logf("bytes per container task: %.1f", per)
	// A field of a container's output is read straight from its output
	// parameter ({{tasks.X.outputs.parameters.out-F}}), not through the
	// whole output object three times over (1701 bytes per task before).
	assert.LessOrEqual(t, per, 450.0, "the goal: at most 450 bytes per container task")

	// Within the default budget of 1 MiB: 2,500 such tasks (about 600
	// before).
	_, err := pipeline.Compile(t.Context(), benchdag.Pipeline(2500, benchdag.Container, 7), argo.New(nil, &argo.Options{Pod: kubepod.Options{Image: testImage, Command: testCommand}}), nil)
	require.NoError(t, err)
}

type textOut struct {
	Out string         `json:"out"`
	N   int            `json:"n"`
	Obj map[string]int `json:"obj"`
}

type echoIn struct {
	S pipeline.Ref[string] `json:"s"`
	N pipeline.Ref[int]    `json:"n"`
}

type echoOut struct {
	Echo string `json:"echo"`
}

type readIn struct {
	S    pipeline.Ref[string]         `json:"s"`
	N    pipeline.Ref[int]            `json:"n"`
	Obj  pipeline.Ref[map[string]int] `json:"obj"`
	Echo pipeline.Ref[string]         `json:"echo"`
}

// textPipeline passes a container's outputs on, field by field: a string
// whose file ends in two line breaks, a number and an object, to another
// container's placeholders and to a Go task.
func textPipeline() *pipeline.Pipeline {
	p := pipeline.New("text", nil)
	a := pipeline.Add(p, task.Container[struct{}, textOut]("write", "registry.example/write:1").WithCommand("/usr/bin/write"), struct{}{})
	b := pipeline.Add(p, task.Container[echoIn, echoOut]("echo", "registry.example/echo:1").WithCommand("/usr/bin/echo").WithArgs("{{.s}}", "{{.n}}"),
		echoIn{S: pipeline.Field[string](a.Output(), "out"), N: pipeline.Field[int](a.Output(), "n")})
	pipeline.Add(p, task.New("read", func(_ context.Context, in readIn) (string, error) {
		return fmt.Sprintf("%q %d %v %q", in.S.Get(), in.N.Get(), in.Obj.Get(), in.Echo.Get()), nil
	}), readIn{S: pipeline.Field[string](a.Output(), "out"), N: pipeline.Field[int](a.Output(), "n"),
		Obj: pipeline.Field[map[string]int](a.Output(), "obj"), Echo: pipeline.Field[string](b.Output(), "echo")})
	return p
}

// writeFiles are the files the two images write, by output field.
func writeFiles(image string, args []string) (map[string]string, error) {
	switch image {
	case "registry.example/write:1":
		return map[string]string{"out": "two breaks\n\n", "n": "7\n", "obj": "{ \"b\": 1, \"a\": 2 }\n"}, nil
	case "registry.example/echo:1":
		return map[string]string{"echo": strings.Join(args, "|") + "\n"}, nil
	}
	return nil, fmt.Errorf("unknown image %s", image)
}

// A container's outputs read field by field (the short expressions) give
// the same values on Argo as on the local backend: Argo's executor and
// the local backend take one trailing line break off a text file, and a
// JSON file is parsed.
func TestContainerFieldsLikeLocal(t *testing.T) {
	runner := &fileRunner{}
	want, err := pipeline.Run(t.Context(), textPipeline(), local.New(&local.Options{Runner: runner}), nil)
	require.NoError(t, err)

	cs := fake.NewSimpleClientset()
	nameOnCreate(cs)
	s := newSim(cs, &argosim.Options{Containers: func(_ context.Context, c *corev1.Container) (map[string]string, error) {
		files, err := writeFiles(c.Image, c.Args)
		out := map[string]string{}
		for f, v := range files {
			out[task.OutputDir+"/"+f] = v
		}
		return out, err
	}})
	t.Cleanup(s.Close)
	got, err := pipeline.Run(t.Context(), textPipeline(), &simBackend{Backend: argo.New(cs, testOptions()), sim: s}, nil)
	require.NoError(t, err)
	for _, step := range []string{"write", "echo", "read"} {
		assert.JSONEq(t, string(want.Step(step).Output), string(got.Step(step).Output), step)
	}
	assert.JSONEq(t, `"\"two breaks\\n\" 7 map[a:2 b:1] \"two breaks\\n|7\""`, string(got.Step("read").Output))
}

// fileRunner is a local Runner that plays writeFiles.
type fileRunner struct{}

func (fileRunner) Run(_ context.Context, c local.Container) (map[string][]byte, error) {
	files, err := writeFiles(c.Image, c.Args)
	out := map[string][]byte{}
	for f, v := range files {
		out[f] = []byte(v)
	}
	return out, err
}

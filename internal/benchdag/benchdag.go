// Package benchdag builds the random DAGs the compile benchmarks measure:
// n tasks, each but the first three reading the outputs of three earlier
// tasks drawn from a seeded source, as Go tasks or as container tasks, so
// that every benchmark of the user's path (build, validate, compile,
// render) measures the same shape.
package benchdag

import (
	"context"
	"fmt"
	"math/rand/v2"

	"github.com/sluice-ml/sluice/pipeline"
	"github.com/sluice-ml/sluice/task"
)

// Kind is the kind of the DAG's tasks.
type Kind string

const (
	// Go tasks: functions of the program, each reading three upstream
	// outputs as Refs.
	Go Kind = "go"
	// Container tasks: a shell command per task, each reading three
	// upstream string outputs through placeholders.
	Container Kind = "container"
)

// Out is a task's output.
type Out struct {
	Out string `json:"out"`
}

// In is a task's input: three upstream outputs.
type In struct {
	A pipeline.Ref[string] `json:"a"`
	B pipeline.Ref[string] `json:"b"`
	C pipeline.Ref[string] `json:"c"`
}

// Image is the container tasks' image.
const Image = "registry.example/tool:1"

func work(_ context.Context, in In) (Out, error) {
	return Out{Out: in.A.Get() + in.B.Get() + in.C.Get()}, nil
}

// Pipeline returns the random DAG of n tasks of kind k drawn from seed:
// task i ≥ 3 reads the outputs of three tasks drawn from 0..i-1.
func Pipeline(n int, k Kind, seed uint64) *pipeline.Pipeline {
	rng := rand.New(rand.NewPCG(seed, 1))
	p := pipeline.New("dag", nil)
	var body task.Task[In, Out]
	switch k {
	case Container:
		body = task.Container[In, Out]("t", Image).
			WithCommand("/bin/sh", "-c", `printf '%s %s %s' "$1" "$2" "$3" > "$4"`, "sh").
			WithArgs("{{.a}}", "{{.b}}", "{{.c}}", "{{outputs.out}}")
	default:
		body = task.New("t", work)
	}
	outs := make([]pipeline.Ref[string], 0, n)
	for i := range n {
		in := In{A: pipeline.Const("x"), B: pipeline.Const("y"), C: pipeline.Const("z")}
		if i >= 3 {
			in.A, in.B, in.C = outs[rng.IntN(i)], outs[rng.IntN(i)], outs[rng.IntN(i)]
		}
		s := pipeline.Add(p, body.WithName(fmt.Sprintf("t%d", i)), in)
		outs = append(outs, pipeline.Field[string](s.Output(), "out"))
	}
	return p
}

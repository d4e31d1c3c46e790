package task

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/sluice-ml/sluice/artifact"
	"reflect"
	"slices"
	"time"

	"github.com/sluice-ml/sluice/resources"
)

// Func is the Go implementation of a task.
type Func[In, Out any] func(ctx context.Context, in In) (Out, error)

// Kind says how a task runs.
type Kind string

const (
	// KindGo is a Go function. Remote backends run it inside the pipeline's
	// own binary (built into Spec.Image) in task-invocation mode.
	KindGo Kind = "go"
	// KindContainer is an arbitrary image and command.
	KindContainer Kind = "container"
)

// Task is a typed task definition. Task values are immutable: every With
// method returns a modified copy, so a base definition can be shared, for
// example as a package-level variable. The zero value has no name and no
// implementation; use [New] or [Container].
type Task[In, Out any] struct {
	spec Spec
	fn   Func[In, Out]
	// inv, if set, is the Invoker in place of FuncInvoker(fn) (see Wrap).
	inv Invoker
}

// New returns a Go task named name implemented by fn. In and Out are
// inferred from fn. New panics if fn is nil, a programmer error found at
// initialization.
func New[In, Out any](name string, fn Func[In, Out]) Task[In, Out] {
	if fn == nil {
		panic(fmt.Sprintf("task: New(%q) with a nil Func", name))
	}
	return Task[In, Out]{spec: newSpec[In, Out](name, KindGo), fn: fn}
}

// Container returns a task named name that runs image. In is rendered into
// the command line and environment through {{.Field}} placeholders (see
// [Task.WithArgs]); each exported field of Out is read from a file the
// container writes, by default OutputDir/<json name> (see [Task.WithOutput]).
// The type arguments are the task's interface and must be written out:
//
//	task.Container[TrainIn, TrainOut]("train", "registry.example/train:1")
func Container[In, Out any](name, image string) Task[In, Out] {
	s := newSpec[In, Out](name, KindContainer)
	s.Image = image
	for _, f := range jsonNames(s.OutputType) {
		s.Outputs = append(s.Outputs, Output{Field: f, Path: OutputDir + "/" + f})
	}
	return Task[In, Out]{spec: s}
}

// OutputDir is where a container task writes its outputs by default.
const OutputDir = "/tmp/sluice/outputs"

func newSpec[In, Out any](name string, k Kind) Spec {
	return Spec{
		Name:       name,
		Kind:       k,
		InputType:  reflect.TypeFor[In](),
		OutputType: reflect.TypeFor[Out](),
	}
}

// Spec returns a copy of the non-generic description of t.
func (t Task[In, Out]) Spec() Spec { return t.spec.Clone() }

// Name returns the task's name.
func (t Task[In, Out]) Name() string { return t.spec.Name }

// Func returns the Go implementation, or nil for a container task.
func (t Task[In, Out]) Func() Func[In, Out] { return t.fn }

// Invoker returns the task's implementation as JSON in, JSON out, or nil for a
// container task. It is what executors and the in-pod invocation call.
func (t Task[In, Out]) Invoker() Invoker {
	if t.inv != nil {
		return t.inv
	}
	if t.fn == nil {
		return nil
	}
	return FuncInvoker(t.fn)
}

// WithName returns a copy of t with another name, for adding the same
// definition twice to one pipeline.
func (t Task[In, Out]) WithName(name string) Task[In, Out] {
	t.spec.Name = name
	return t
}

// WithImage returns a copy of t that runs in the given container image.
// Validate checks ref against the OCI distribution reference grammar
// ([registry[:port]/]repository[:tag][@digest], repository in lowercase),
// as container runtimes read it.
func (t Task[In, Out]) WithImage(ref string) Task[In, Out] {
	t.spec = t.spec.Clone()
	t.spec.Image = ref
	return t
}

// WithCommand returns a copy of t with the container command replaced.
// Placeholders {{.Field}} name exported fields of In. An empty element is
// a Validate error.
func (t Task[In, Out]) WithCommand(cmd ...string) Task[In, Out] {
	t.spec = t.spec.Clone()
	t.spec.Command = slices.Clone(cmd)
	return t
}

// WithArgs returns a copy of t with the container arguments replaced.
// A placeholder {{.Field}} is replaced at run time by the value of that
// exported field of In (by Go or JSON name): a string as is, anything else
// as JSON. A placeholder {{outputs.Field}} is replaced by the path the
// command must write output field Field of Out to (see "Container tasks"
// in the package doc). No other template syntax is accepted.
func (t Task[In, Out]) WithArgs(args ...string) Task[In, Out] {
	t.spec = t.spec.Clone()
	t.spec.Args = slices.Clone(args)
	return t
}

// WithEnv returns a copy of t with one more environment variable; value may
// hold {{.Field}} placeholders as in [Task.WithArgs]. Validate checks that
// name is one Kubernetes accepts, is set once, and does not start with
// [ReservedEnvPrefix].
func (t Task[In, Out]) WithEnv(name, value string) Task[In, Out] {
	t.spec = t.spec.Clone()
	t.spec.Env = append(t.spec.Env, EnvVar{Name: name, Value: value})
	return t
}

// WithOutput returns a copy of t that reads the output field named field
// (Go or JSON name of an exported field of Out) from path. The file holds
// JSON, or raw text for a string field. path must be one file inside
// [OutputDir]: absolute, clean, without "..", and no other output's file
// or directory (Validate reports any other path).
func (t Task[In, Out]) WithOutput(field, path string) Task[In, Out] {
	t.spec = t.spec.Clone()
	name := jsonName(t.spec.OutputType, field)
	for i, o := range t.spec.Outputs {
		if o.Field == name {
			t.spec.Outputs[i].Path = path
			return t
		}
	}
	t.spec.Outputs = append(t.spec.Outputs, Output{Field: name, Path: path})
	return t
}

// WithResources returns a copy of t with its resource profile replaced. The
// profile is merged over the pipeline's default profile by
// [resources.Merge].
func (t Task[In, Out]) WithResources(p resources.Profile) Task[In, Out] {
	t.spec = t.spec.Clone()
	t.spec.Resources = resources.Merge(resources.Profile{}, p)
	return t
}

// WithRetry returns a copy of t with its retry policy replaced; it overrides
// the pipeline's default policy as a whole.
func (t Task[In, Out]) WithRetry(r Retry) Task[In, Out] {
	t.spec = t.spec.Clone()
	t.spec.Retry = &r
	return t
}

// WithTimeout returns a copy of t whose every attempt is stopped after d,
// at most [MaxTimeout]. Zero inherits the pipeline's default.
func (t Task[In, Out]) WithTimeout(d time.Duration) Task[In, Out] {
	t.spec.Timeout = d
	return t
}

// WithCache returns a copy of t with its cache policy replaced.
func (t Task[In, Out]) WithCache(c Cache) Task[In, Out] {
	t.spec = t.spec.Clone()
	c.ExcludeInputs = slices.Clone(c.ExcludeInputs)
	t.spec.Cache = c
	return t
}

// Invoker runs a task on JSON input and returns its JSON output. It is the
// non-generic form of a Go task that backends and the task-invocation mode
// use. Implementations are safe for concurrent use.
type Invoker interface {
	Invoke(ctx context.Context, input []byte) ([]byte, error)
}

// FuncInvoker adapts fn to an [Invoker]: the input is decoded into In with
// encoding/json (pipeline.Ref fields decode their resolved values), and the
// output is encoded with encoding/json. FuncInvoker panics if fn is nil,
// as [New] does.
func FuncInvoker[In, Out any](fn Func[In, Out]) Invoker {
	if fn == nil {
		panic(fmt.Sprintf("task: FuncInvoker[%v, %v] with a nil Func", reflect.TypeFor[In](), reflect.TypeFor[Out]()))
	}
	return funcInvoker[In, Out](fn)
}

type funcInvoker[In, Out any] Func[In, Out]

func (f funcInvoker[In, Out]) Invoke(ctx context.Context, input []byte) ([]byte, error) {
	var in In
	if len(input) > 0 {
		if err := json.Unmarshal(input, &in); err != nil {
			return nil, fmt.Errorf("task: decode input as %v: %w", reflect.TypeFor[In](), err)
		}
	}
	out, err := f(ctx, in)
	if err != nil {
		return nil, err
	}
	if artifact.Holds(reflect.TypeFor[Out]()) {
		// Artifacts given as local paths are uploaded now, under the
		// names of their fields.
		if err := artifact.Finish(ctx, &out); err != nil {
			return nil, err
		}
	}
	b, err := json.Marshal(out)
	if err != nil {
		return nil, fmt.Errorf("task: encode output %v: %w", reflect.TypeFor[Out](), err)
	}
	return b, nil
}

// ErrInfrastructure marks a failure caused by the infrastructure rather
// than the task: preemption, eviction, node loss, a broken device. An
// attempt whose error wraps it consumes the Infra retry budget instead of
// the App budget. Backends wrap it when they observe such a failure; a task
// may wrap it too (say, on a GPU ECC error) to ask for a retry elsewhere.
var ErrInfrastructure = errors.New("infrastructure failure")

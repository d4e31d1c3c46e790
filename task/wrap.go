package task

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
)

// Wrapper is implemented by the [Invoker] of a task made by [Wrap]: it
// runs another task's implementation inside code of its own. Tools that
// replace a task's implementation by name, such as pipelinetest.Stub,
// find wrappers with a type assertion and replace the inner
// implementation only, so the wrapping code still runs.
type Wrapper interface {
	Invoker
	// Wrapped returns the name of the task whose implementation runs
	// inside.
	Wrapped() string
	// Rewrap returns a copy that runs inner (JSON in, JSON out, as the
	// wrapped task's In and Out) in place of the wrapped implementation.
	Rewrap(inner Invoker) Invoker
}

// Wrap returns a Go task named name that runs t's implementation inside
// around: around gets the wrapper's input and a function that runs t.
// The wrapper keeps t's image, resources, retry policy, timeout and cache
// policy, except the cache's ExcludeInputs, which name fields of t's
// input and are dropped. Its Invoker implements [Wrapper]. Package hpo
// uses it to tag each trial's output with the trial's id.
//
// Wrap panics if t is not a Go task or around is nil: a programmer error
// found when the pipeline is defined.
func Wrap[In, Out, WIn, WOut any](name string, t Task[In, Out], around func(ctx context.Context, in WIn, run Func[In, Out]) (WOut, error)) Task[WIn, WOut] {
	if t.fn == nil {
		panic(fmt.Sprintf("task: Wrap(%q) of %q, which is not a Go task", name, t.spec.Name))
	}
	if around == nil {
		panic(fmt.Sprintf("task: Wrap(%q) with a nil func", name))
	}
	s := t.spec.Clone()
	s.Name = name
	s.InputType, s.OutputType = reflect.TypeFor[WIn](), reflect.TypeFor[WOut]()
	s.Cache.ExcludeInputs = nil
	w := &wrapper[In, Out, WIn, WOut]{wrapped: t.spec.Name, around: around, run: t.fn}
	return Task[WIn, WOut]{spec: s, fn: w.fn, inv: w}
}

type wrapper[In, Out, WIn, WOut any] struct {
	wrapped string
	around  func(context.Context, WIn, Func[In, Out]) (WOut, error)
	run     Func[In, Out]
}

func (w *wrapper[In, Out, WIn, WOut]) fn(ctx context.Context, in WIn) (WOut, error) {
	return w.around(ctx, in, w.run)
}

func (w *wrapper[In, Out, WIn, WOut]) Invoke(ctx context.Context, input []byte) ([]byte, error) {
	return FuncInvoker(w.fn).Invoke(ctx, input)
}

func (w *wrapper[In, Out, WIn, WOut]) Wrapped() string { return w.wrapped }

func (w *wrapper[In, Out, WIn, WOut]) Rewrap(inner Invoker) Invoker {
	c := *w
	c.run = func(ctx context.Context, in In) (Out, error) {
		var out Out
		b, err := json.Marshal(in)
		if err != nil {
			return out, fmt.Errorf("task: encode input of %q: %w", w.wrapped, err)
		}
		res, err := inner.Invoke(ctx, b)
		if err != nil {
			return out, err
		}
		if err := json.Unmarshal(res, &out); err != nil {
			return out, fmt.Errorf("task: decode output of %q as %v: %w", w.wrapped, reflect.TypeFor[Out](), err)
		}
		return out, nil
	}
	return &c
}

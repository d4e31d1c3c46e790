package pipeline

import (
	"errors"
	"fmt"
	"io"
	"reflect"

	"github.com/sluice-ml/sluice/backends"
	"github.com/sluice-ml/sluice/internal/isnil"
)

// Misuse of the API itself — a nil *Pipeline, a nil backend or writer, a
// nil bind function, a method called on a Step or Fan that Add or
// ForEach never returned — is not a problem of the pipeline's content:
// there may be no pipeline to record it in. The rules, one place for all:
//
//   - builders (Add, OnExit, ForEach, FanOut, NewParam, Pipeline.Status,
//     the With-like methods of Step and Fan) panic at the call site with a
//     message naming the misuse, as task.New does for a nil Func: it is a
//     programmer error found when the pipeline is defined;
//   - functions that return an error (Validate, Plan, Compile, Run,
//     WriteGraph) return one wrapping [ErrMisuse].
//
// A zero Step, Fan or Param used as data (its Output, Collect or Ref in an
// input) is reported by Validate at the field that holds it.

// ErrMisuse is wrapped by the errors returned for a nil *Pipeline,
// backend, plan or writer.
var ErrMisuse = errors.New("pipeline: misuse of the API")

// misuse returns an error wrapping ErrMisuse.
func misuse(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrMisuse, fmt.Sprintf(format, args...))
}

// mustPipeline panics when a builder is given a nil *Pipeline.
func mustPipeline(p *Pipeline, fn string) {
	if p == nil {
		panic(fmt.Sprintf("pipeline: %s with a nil *Pipeline; create one with pipeline.New", fn))
	}
}

// mustAdded panics when a method is called on a Step or Fan that was
// never added: there is no pipeline to record the setting in, and
// dropping it silently would hide the mistake.
func mustAdded(n *node, method string) {
	if n == nil {
		panic(fmt.Sprintf("pipeline: %s on a zero value; call it on the value that Add, OnExit or ForEach returned", method))
	}
}

// checkPipelineAndBackend returns the error for a nil *Pipeline or a nil backend given to
// fn, or nil.
func checkPipelineAndBackend(fn string, p *Pipeline, b any) error {
	switch {
	case p == nil:
		return misuse("%s with a nil *Pipeline; create one with pipeline.New", fn)
	case isNil(b):
		return misuse("%s of %q with a nil backend; pass one such as kubejob.New(nil, nil)", fn, p.name)
	}
	return nil
}

// isNil reports whether v is nil or holds a nil pointer, map, slice,
// func or channel: a typed nil *Backend is as unusable as a nil interface.
func isNil(v any) bool { return isnil.IsNil(v) }

// zeroParamSource is what the zero Param refers to: nothing, which
// Validate reports where the Ref is used.
func zeroParamSource(t reflect.Type) *source {
	return newSource(&source{kind: srcInvalid, typ: t,
		err: "refers to a parameter that was never declared; use the Param that NewParam returned"})
}

// checkGraphArgs returns the error for a nil writer or plan given to
// WriteGraph, or nil.
func checkGraphArgs(w io.Writer, plan *backends.Plan) error {
	switch {
	case isNil(w):
		return misuse("WriteGraph with a nil io.Writer")
	case plan == nil:
		return misuse("WriteGraph with a nil *backends.Plan; get one from Pipeline.Plan")
	}
	return nil
}
